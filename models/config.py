"""Model configuration: one plain dataclass, saved as JSON beside the weights."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from edgerec.errors import ConfigError

ARCHS = ("sasrec", "two-tower", "ranker")


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
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.dim < 4 or self.dim % self.heads:
            raise ConfigError(f"dim must be >= 4 and divisible by heads (dim={self.dim}, heads={self.heads})")
        if self.max_len < 2:
            raise ConfigError(f"max_len must be at least 2 (got {self.max_len})")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown model config keys {sorted(unknown)}; is the checkpoint from a newer edgerec?")
        return cls(**values).validate()
