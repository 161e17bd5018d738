"""Model configuration: one plain dataclass, saved as JSON beside the weights."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from numbers import Integral, Real

from edgerec.errors import ConfigError

ARCHS = ("sasrec", "two-tower", "ranker")
# a modality's name becomes part of a weight's name (items.content_NAME), where a dot would split it
CONTENT_NAME = re.compile(r"[A-Za-z0-9_]+")


def check_content_name(name) -> str:
    if not isinstance(name, str) or not CONTENT_NAME.fullmatch(name):
        raise ConfigError(f"content modality name {name!r} must be letters, digits and '_' only (e.g. clip_vit)")
    return name


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


@dataclass
class ModelConfig:
    arch: str = "sasrec"
    dim: int = 64
    layers: int = 2
    heads: int = 2
    max_len: int = 50
    dropout: float = 0.2
    temperature: float = 0.05  # softmax temperature over cosine scores
    own_rows: int | None = None  # items with an own id row (most consumed); None = every item
    hash_buckets: int = 0  # shared id rows for the other items
    use_features: bool = True  # add field/tag embeddings to the id embedding
    content: dict[str, int] = field(default_factory=dict)  # precomputed vectors per modality: name -> width

    def validate(self) -> ModelConfig:
        self._check_types()
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.heads < 1 or self.dim < 4 or self.dim % self.heads:
            raise ConfigError(f"dim must be >= 4 and divisible by heads >= 1 (dim={self.dim}, heads={self.heads})")
        if self.max_len < 2:
            raise ConfigError(f"max_len must be at least 2 (got {self.max_len})")
        if self.layers < 0 or self.hash_buckets < 0 or (self.own_rows is not None and self.own_rows < 0):
            raise ConfigError(f"layers, own rows and hash buckets cannot be negative (layers={self.layers}, "
                              f"own_rows={self.own_rows}, hash_buckets={self.hash_buckets})")
        if not (0 <= self.dropout < 1 and self.temperature > 0 and math.isfinite(self.temperature)):
            raise ConfigError(f"dropout must be in [0, 1) and temperature finite and > 0 (dropout={self.dropout}, "
                              f"temperature={self.temperature})")
        return self

    def _check_types(self) -> None:
        """Each field of the type it is used as (a config read from JSON can hold anything)."""
        wrong = [name for name in ("dim", "layers", "heads", "max_len", "hash_buckets")
                 if not _is_int(getattr(self, name))]
        wrong += [name for name in ("dropout", "temperature")
                  if not isinstance(getattr(self, name), Real) or isinstance(getattr(self, name), bool)]
        if self.own_rows is not None and not _is_int(self.own_rows):
            wrong.append("own_rows")
        if not isinstance(self.arch, str):
            wrong.append("arch")
        if not isinstance(self.use_features, bool):
            wrong.append("use_features")
        if not isinstance(self.content, dict) or not all(_is_int(w) and w >= 1 for w in self.content.values()):
            wrong.append("content")
        if wrong:
            raise ConfigError(f"model config values of the wrong type: {', '.join(wrong)} (dims, counts and content "
                              "widths are whole numbers, dropout and temperature numbers, use_features true/false)")
        for name in self.content:
            check_content_name(name)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        if not isinstance(values, dict):
            raise ConfigError(f"a model config is a JSON object, not a {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown model config keys {sorted(unknown)}; is the checkpoint from a newer edgerec?")
        return cls(**values).validate()
