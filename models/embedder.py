"""Item index -> vector: id row + field embeddings + mean tag embedding + projected content vectors."""

from __future__ import annotations

import torch
from torch import nn

from edgerec.models.config import check_content_name
from edgerec.models.items import ItemData


class ItemEmbedder(nn.Module):
    """Fuses everything known about an item into one vector (multimodal fusion by summed projections).

    Item data (codes, tags, id rows, content vectors) are buffers, so they are
    saved and loaded with the weights.
    """

    def __init__(self, items: ItemData, dim: int, use_features: bool = True):
        super().__init__()
        self.use_features = use_features
        self.ids = nn.Embedding(items.n_id_rows, dim, padding_idx=0)
        nn.init.normal_(self.ids.weight, std=0.05)
        with torch.no_grad():
            self.ids.weight[0].zero_()
        self.register_buffer("id_rows", torch.as_tensor(items.id_rows))
        self.register_buffer("field_codes", torch.as_tensor(items.field_codes))
        self.register_buffer("tag_codes", torch.as_tensor(items.tag_codes))
        self.fields = nn.ModuleList(nn.Embedding(size, dim, padding_idx=0) for size in items.vocab_sizes())
        self.tags = nn.Embedding(len(items.vocab["tags"]) + 1, dim, padding_idx=0)
        for table in (*self.fields, self.tags):
            nn.init.normal_(table.weight, std=0.05)
            with torch.no_grad():
                table.weight[0].zero_()
        # a name becomes part of weight names (content_NAME, content.NAME): a dot would split it
        self.content_names = sorted(check_content_name(name) for name in items.content)
        for name in self.content_names:
            self.register_buffer(f"content_{name}", torch.as_tensor(items.content[name]))
        self.content = nn.ModuleDict({n: nn.Linear(items.content[n].shape[1], dim) for n in self.content_names})

    @property
    def n_rows(self) -> int:
        return self.id_rows.shape[0]

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        """index: any shape of model rows (0 = padding) -> (..., dim)."""
        vec = self.ids(self.id_rows[index])
        if self.use_features:
            codes = self.field_codes[index]
            for j, table in enumerate(self.fields):
                vec = vec + table(codes[..., j])
            tags = self.tag_codes[index]
            # codes are left-aligned: slots past the longest tag list hold padding only, and summing their
            # zero rows added nothing but (items, 8, dim) floats (0.19 GB at 93k tracks, dim 64; a bare log: all)
            tags = tags[..., :int((tags > 0).sum(-1).max()) if tags.numel() else 0]
            count = (tags > 0).sum(-1, keepdim=True).clamp(min=1).to(vec.dtype)
            vec = vec + self.tags(tags).sum(-2) / count
        for name in self.content_names:
            vec = vec + self.content[name](getattr(self, f"content_{name}")[index])
        return vec * (index > 0).unsqueeze(-1).to(vec.dtype)

    def table(self) -> torch.Tensor:
        """Vectors of every row (row 0 = zeros)."""
        return self(torch.arange(self.n_rows, device=self.id_rows.device))


