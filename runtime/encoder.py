"""The user encoder on the device: histories of item rows -> user vectors, for either format.

ONNX encoders take any batch and history length; TFLite encoders have the
fixed length L recorded in the manifest, so histories are truncated to their
newest L items and left-padded with 0 (padding is invisible to the model).
An ONNX file whose manifest input shape fixes the history axis (an integer L,
e.g. a user's encoder made by another tool) is padded to L the same way, one
fixing the batch at 1 is run one history at a time, and ids are fed in the
input's declared dtype (int64 or int32).
"""

from __future__ import annotations

import numpy as np

from edgerec.errors import BundleError
from edgerec.runtime.backends import Backend, TfliteBackend
from edgerec.runtime.bundle import ModelEntry
from edgerec.runtime.model_rules import history_axis


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
        axis = history_axis(entry)  # spec §3: a fixed history axis is the length (it was the bundle's default)
        self.max_len = entry.history_length or axis or max_len
        tflite = isinstance(backend, TfliteBackend)
        shape = list(entry.inputs[0].shape) if entry.inputs else []
        self.fixed = tflite or axis is not None
        self.one_by_one = tflite or shape[:1] == [1]
        self.dtype = np.int32 if tflite or (entry.inputs and entry.inputs[0].dtype == "int32") else np.int64
        if not backend.input_names:  # a graph of constants: nothing of the history would reach it
            raise BundleError(f"the user encoder {entry.file} takes no input; re-export the bundle")
        self.input_name = backend.input_names[0]

    def encode_rows(self, rows: np.ndarray) -> np.ndarray:
        """rows: (B, L) int64, left-padded model rows -> (B, D) float32."""
        rows = rows.astype(self.dtype)
        if self.one_by_one:
            out = [self.backend.run({self.input_name: rows[i:i + 1]})[0] for i in range(len(rows))]
            return np.concatenate(out).astype(np.float32)
        return self.backend.run({self.input_name: rows})[0].astype(np.float32)

    def encode(self, histories: list[np.ndarray]) -> np.ndarray:
        """Histories as model rows (item index + 1), oldest first -> (B, D) user vectors."""
        length = self.max_len if self.fixed else max(1, min(self.max_len, max((len(h) for h in histories), default=1)))
        return self.encode_rows(pad_histories(histories, length))
