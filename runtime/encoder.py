"""The user encoder on the device: histories of item rows -> user vectors, for either format.

ONNX encoders take any batch and history length; TFLite encoders have the
fixed length L recorded in the manifest, so histories are truncated to their
newest L items and left-padded with 0 (padding is invisible to the model).
"""

from __future__ import annotations

import numpy as np

from edgerec.runtime.backends import Backend, TfliteBackend
from edgerec.runtime.bundle import ModelEntry


def pad_histories(histories: list[np.ndarray], length: int) -> np.ndarray:
    """Newest `length` model rows of each history, left-padded with 0 (int64, (B, length))."""
    out = np.zeros((len(histories), length), np.int64)
    for r, rows in enumerate(histories):
        rows = np.asarray(rows, np.int64)[-length:]
        if len(rows):
            out[r, length - len(rows):] = rows
    return out


class UserEncoder:
    def __init__(self, backend: Backend, entry: ModelEntry, max_len: int):
        self.backend, self.entry = backend, entry
        self.max_len = entry.history_length or max_len
        self.fixed = isinstance(backend, TfliteBackend)
        self.input_name = backend.input_names[0]

    def encode_rows(self, rows: np.ndarray) -> np.ndarray:
        """rows: (B, L) int64, left-padded model rows -> (B, D) float32."""
        if self.fixed:
            out = [self.backend.run({self.input_name: rows[i:i + 1].astype(np.int32)})[0] for i in range(len(rows))]
            return np.concatenate(out).astype(np.float32)
        return self.backend.run({self.input_name: rows.astype(np.int64)})[0].astype(np.float32)

    def encode(self, histories: list[np.ndarray]) -> np.ndarray:
        """Histories as model rows (item index + 1), oldest first -> (B, D) user vectors."""
        length = self.max_len if self.fixed else max(1, min(self.max_len, max((len(h) for h in histories), default=1)))
        return self.encode_rows(pad_histories(histories, length))
