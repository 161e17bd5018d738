"""Building blocks that export to both ONNX and TFLite.

Attention is written by hand (matmul + softmax) with masks taken from
precomputed buffers: the TFLite converter cannot lower `nn.TransformerEncoder`'s
fast path, and masks built in `forward` with arange/eye/tril become iota ops
the LiteRT interpreter cannot run. Nothing in `forward` branches on data.
"""

from __future__ import annotations

import torch
from torch import nn

MASK_VALUE = -1e4  # large enough to zero a softmax weight, small enough for int8/fp16 graphs


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """x over its length, a zero x staying zero. The floor is a clamp, not `+ eps`: the ONNX exporter's
    optimizer folds an added 1e-12 away as zero, and a zero vector then came out NaN from the file."""
    return x / torch.sqrt((x * x).sum(-1, keepdim=True).clamp(min=eps))


class AttentionBlock(nn.Module):
    """Pre-norm transformer block: masked multi-head self-attention, then a GELU feed-forward."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, ffn_mult: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ffn_mult * dim), nn.GELU(approximate="tanh"),
                                nn.Linear(ffn_mult * dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, newest_only: bool = False) -> torch.Tensor:
        """x: (B, L, D); bias: (B, 1, L, L) additive attention mask (0 or MASK_VALUE).

        newest_only: only the last position asks (keys and values still come from every
        position), so the result is (B, 1, D): what a deployed encoder's final block needs.
        """
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        if newest_only:
            x, q, bias, n = x[:, -1:], q[:, -1:], bias[:, :, -1:], 1
        q = q.reshape(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = k.reshape(b, -1, self.heads, self.head_dim).transpose(1, 2)
        v = v.reshape(b, -1, self.heads, self.head_dim).transpose(1, 2)
        weights = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.head_dim ** -0.5 + bias, dim=-1)
        mixed = torch.matmul(self.dropout(weights), v).transpose(1, 2).reshape(b, n, d)
        x = x + self.dropout(self.out(mixed))
        return x + self.dropout(self.ff(self.norm2(x)))


class CausalEncoder(nn.Module):
    """Item vectors of a left-padded history -> hidden state at every position.

    Positions are aligned to the right end, so the newest item always has the
    same position embedding whatever the history length; padding (mask 0) is
    invisible to every real position, and no position sees a later one.
    """

    def __init__(self, dim: int, layers: int, heads: int, max_len: int, dropout: float = 0.0):
        super().__init__()
        self.max_len = max_len
        self.position = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        self.blocks = nn.ModuleList(AttentionBlock(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("causal", torch.ones(max_len, max_len, dtype=torch.bool).tril(), persistent=False)
        self.register_buffer("diagonal", torch.eye(max_len, dtype=torch.bool), persistent=False)

    def forward(self, x: torch.Tensor, valid: torch.Tensor, newest_only: bool = False) -> torch.Tensor:
        """x: (B, L, D) item vectors; valid: (B, L) bool (False = padding). Returns (B, L, D), or
        (B, 1, D) with newest_only: the same newest state without the other positions' last block."""
        n = x.shape[1]
        x = (x + self.position[self.max_len - n:].unsqueeze(0)) * valid.unsqueeze(-1).to(x.dtype)
        allowed = self.causal[:n, :n].unsqueeze(0) & valid.unsqueeze(1)
        allowed = allowed | self.diagonal[:n, :n].unsqueeze(0)  # a padded query still has one key: no NaN
        bias = torch.where(allowed, 0.0, MASK_VALUE).to(x.dtype).unsqueeze(1)
        x = self.dropout(x)
        for i, block in enumerate(self.blocks):
            x = block(x, bias, newest_only and i == len(self.blocks) - 1)
        return self.norm(x)


def gelu_mlp(sizes: list[int], dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers += [nn.GELU(approximate="tanh"), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


__all__ = ["MASK_VALUE", "AttentionBlock", "CausalEncoder", "gelu_mlp", "l2_normalize"]
