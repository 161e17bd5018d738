"""Bytes on disk of a model's int8 bundle parts: the weight-only int8 ONNX user encoder and the int8 item table
(its values and scales, each an .npy file)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import torch

from edgerec.compress.quantize import fake_quantize, quantize_onnx
from edgerec.data.split import Split
from edgerec.export.formats import export_onnx
from edgerec.models.recommenders import NextItemModel
from edgerec.models.scoring import history_rows
from edgerec.runtime.item_table import StoredTable


def verify_bytes(model: NextItemModel, split: Split) -> dict:
    """Export the int8 ONNX encoder and the int8 item table for real; their bytes on disk."""
    max_len = model.config.max_len
    sample = history_rows(split.train, split.val_users[:2], max_len)
    with tempfile.TemporaryDirectory(prefix="edgerec-budget-") as scratch:
        raw, final = Path(scratch) / "encoder.raw.onnx", Path(scratch) / "encoder.onnx"
        export_onnx(fake_quantize(model.deploy().eval()), {"ids": torch.as_tensor(sample)},
                    {"ids": {0: "batch", 1: "history"}}, ["user_vector"], raw, max_sizes={"history": max_len})
        quantize_onnx(raw, final, "int8")
        encoder = final.stat().st_size
    with torch.no_grad():
        stored = StoredTable.quantize(model.item_vectors()[1:].numpy().astype(np.float32), "int8")
    table = stored_bytes(stored)
    return {"encoder": int(encoder), "table": int(table), "total": int(encoder + table)}


def stored_bytes(stored) -> int:
    """The bytes of an item table as the bundle stores it: its values and (int8) scales, .npy headers and all."""
    return npy_bytes(stored.values) + (npy_bytes(stored.scales) if stored.scales is not None else 0)


def npy_bytes(array: np.ndarray) -> int:
    """The bytes of `array` as a bundle stores it (BundleWriter.add_array: np.save, header included)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.tell()


__all__ = ["npy_bytes", "stored_bytes", "verify_bytes"]
