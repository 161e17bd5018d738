"""A user's own user encoder as the teacher of ranking distillation (`edgerec distill --teacher FILE|MOD:FN`).

`distill_model` reads a teacher's hidden state at every position of a training window and its item
vectors. A user encoder maps a whole history to one vector, so its state at position t is its vector
of the window's items up to t (the newest `history_length`, left-padded with 0, as the device feeds
it), and its item vectors are the user's (items, dim) array. Scores are plain dot products divided
by `temperature` (--kd-temperature also applies).
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from edgerec.errors import ModelError

PREFIX_BATCH = 4096  # histories per call of the user's encoder


class OwnTeacher(nn.Module):
    def __init__(self, encode: Callable[[np.ndarray], np.ndarray], item_vectors: np.ndarray, history_length: int,
                 temperature: float = 1.0, arch: str = "sasrec"):
        super().__init__()
        self.encode = encode
        table = np.vstack([np.zeros((1, item_vectors.shape[1]), np.float32), item_vectors.astype(np.float32)])
        self.register_buffer("items", torch.as_tensor(table), persistent=False)
        self.config = SimpleNamespace(max_len=int(history_length), temperature=float(temperature), arch=arch)

    def item_vectors(self) -> torch.Tensor:
        return self.items.clone()

    @torch.no_grad()
    def hidden(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, T) item rows, left-padded -> (B, T, dim): the encoder's vector of each prefix."""
        rows = np.asarray(inputs, np.int64)
        batch, positions = rows.shape
        length = self.config.max_len
        prefixes = np.zeros((batch, positions, length), np.int64)
        for t in range(positions):
            window = rows[:, max(0, t + 1 - length):t + 1]
            prefixes[:, t, length - window.shape[1]:] = window
        flat = prefixes.reshape(batch * positions, length)
        # all padding: positions the loss masks out, never encoded (a mean over nothing is NaN, and a file's
        # own check refuses NaN before it could be zeroed); their state is 0
        filled = (flat > 0).any(1)
        real = flat[filled]
        out = np.zeros((len(flat), self.items.shape[1]), np.float32)
        if len(real):
            got = np.concatenate([np.asarray(self.encode(real[s:s + PREFIX_BATCH]), np.float32)
                                  for s in range(0, len(real), PREFIX_BATCH)])
            if got.shape != out[:len(real)].shape:
                raise ModelError(f"the teacher returned shape {got.shape} for {len(real)} histories; it must return "
                                 f"(histories, {self.items.shape[1]}), the item vectors' width")
            out[filled] = got
        broken = ~np.isfinite(out).all(1)
        if broken.any():  # zeroed, they were targets the student learnt from without a word
            held = flat[np.argmax(broken)]
            raise ModelError(f"the teacher returned NaN or infinite values for {int(broken.sum())} of {len(flat)} "
                             f"histories (the first holds item rows {sorted(set(held[held > 0].tolist()))[:10]}); "
                             "every history of real items must give a finite vector")
        return torch.as_tensor(out).view(batch, positions, -1)
