"""Next-item recommenders: a SASRec-style sequential encoder and a two-tower model.

Both map a left-padded history of model rows (B, L) to an L2-normalised
hidden state at every position (B, L, D), and items to L2-normalised vectors;
the score of an item is their cosine. `deploy()` returns the small module that
ships: integer ids in, one user vector out, with the item input table baked
in, so the same module exports to ONNX and TFLite.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from edgerec.models.config import ModelConfig
from edgerec.models.embedder import ItemEmbedder
from edgerec.models.items import ItemData
from edgerec.models.layers import CausalEncoder, gelu_mlp, l2_normalize


class NextItemModel(nn.Module):
    """What training, distillation, evaluation and export need from a recommender."""

    config: ModelConfig

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B, L, D), normalised
        raise NotImplementedError

    def item_vectors(self, index: torch.Tensor | None = None) -> torch.Tensor:  # normalised
        raise NotImplementedError

    def deploy(self) -> nn.Module:
        raise NotImplementedError

    def user_vector(self, ids: torch.Tensor) -> torch.Tensor:
        return self.hidden(ids)[:, -1]


class SASRec(NextItemModel):
    """Item vectors + right-aligned positions -> causal self-attention blocks."""

    def __init__(self, config: ModelConfig, items: ItemData):
        super().__init__()
        self.config, self.item_data = config, items
        self.items = ItemEmbedder(items, config.dim, config.use_features)
        self.encoder = CausalEncoder(config.dim, config.layers, config.heads, config.max_len, config.dropout)

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:
        return l2_normalize(self.encoder(self.items(ids), ids > 0))

    def item_vectors(self, index: torch.Tensor | None = None) -> torch.Tensor:
        return l2_normalize(self.items.table() if index is None else self.items(index))

    def user_vector(self, ids: torch.Tensor) -> torch.Tensor:  # the newest state only: no other position's last block
        return l2_normalize(self.encoder(self.items(ids), ids > 0, newest_only=True)[:, -1])

    def deploy(self) -> nn.Module:
        return DeployedSequenceEncoder(self.items.table().detach(), self.encoder)


class DeployedSequenceEncoder(nn.Module):
    """ids (B, L) int32/int64, 0 = padding, left-padded -> user vector (B, D)."""

    def __init__(self, table: torch.Tensor, encoder: CausalEncoder):
        super().__init__()
        self.table = nn.Embedding.from_pretrained(table.clone(), freeze=True, padding_idx=0)
        self.encoder = copy.deepcopy(encoder).eval()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return l2_normalize(self.encoder(self.table(ids), ids > 0, newest_only=True)[:, -1])


class TwoTower(NextItemModel):
    """Item tower: fused item features -> MLP. User tower: position-weighted mean of the history -> MLP."""

    def __init__(self, config: ModelConfig, items: ItemData):
        super().__init__()
        self.config, self.item_data = config, items
        d = config.dim
        self.items = ItemEmbedder(items, d, config.use_features)
        self.item_mlp = gelu_mlp([d, 2 * d, d], config.dropout)
        self.pool = CausalPooling(config.max_len)
        self.user_mlp = gelu_mlp([d, 2 * d, d], config.dropout)

    def item_vectors(self, index: torch.Tensor | None = None) -> torch.Tensor:
        raw = self.items.table() if index is None else self.items(index)
        return l2_normalize(raw + self.item_mlp(raw))

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:
        pooled = self.pool.all_positions(self.item_vectors(ids), ids > 0)
        return l2_normalize(pooled + self.user_mlp(pooled))

    def deploy(self) -> nn.Module:
        table = self.item_vectors().detach()
        return DeployedPoolingEncoder(table, self.pool, self.user_mlp)


class CausalPooling(nn.Module):
    """Weighted mean of the history with one learned weight per (right-aligned) position."""

    def __init__(self, max_len: int):
        super().__init__()
        self.max_len = max_len
        self.logits = nn.Parameter(torch.linspace(-1.0, 1.0, max_len))  # newer items start heavier
        self.register_buffer("causal", torch.ones(max_len, max_len).tril(), persistent=False)

    def weights(self, valid: torch.Tensor) -> torch.Tensor:
        n = valid.shape[1]
        return torch.exp(self.logits[self.max_len - n:]).unsqueeze(0) * valid.to(self.logits.dtype)

    def all_positions(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        w = self.causal[:n, :n].unsqueeze(0) * self.weights(valid).unsqueeze(1)  # (B, L, L)
        return torch.matmul(w, x) / (w.sum(-1, keepdim=True) + 1e-6)

    def last(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        w = self.weights(valid).unsqueeze(-1)  # (B, L, 1)
        return (w * x).sum(1) / (w.sum(1) + 1e-6)


class DeployedPoolingEncoder(nn.Module):
    """ids (B, L) -> user vector (B, D) of the two-tower user tower."""

    def __init__(self, table: torch.Tensor, pool: CausalPooling, mlp: nn.Module):
        super().__init__()
        self.table = nn.Embedding.from_pretrained(table.clone(), freeze=True, padding_idx=0)
        self.pool = copy.deepcopy(pool)
        self.mlp = copy.deepcopy(mlp).eval()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pooled = self.pool.last(self.table(ids), ids > 0)
        return l2_normalize(pooled + self.mlp(pooled))


def build_model(config: ModelConfig, items: ItemData) -> NextItemModel:
    config.validate()
    if config.arch == "sasrec":
        return SASRec(config, items)
    if config.arch == "two-tower":
        return TwoTower(config, items)
    raise ValueError(f"{config.arch} is not a next-item model")
