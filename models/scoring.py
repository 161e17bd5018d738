"""Adapters from trained recommenders to the evaluation protocol's Scorer."""

from __future__ import annotations

import numpy as np
import torch

from edgerec.data.split import Sequences


def history_rows(history: Sequences, users: np.ndarray, max_len: int) -> np.ndarray:
    """The last `max_len` items of each user as model rows (catalog code + 1), left-padded with 0."""
    return history.last(max_len, users, pad=-1) + 1


class ModelScorer:
    """Scores the whole catalog with a next-item model: cosine of user and item vectors."""

    def __init__(self, model, name: str = "model", batch: int = 512):
        self.model, self.name, self.batch = model, name, batch
        self._items: np.ndarray | None = None

    def refresh(self) -> None:
        """Forget cached item vectors (call after the weights change)."""
        self._items = None

    @torch.no_grad()
    def item_matrix(self) -> np.ndarray:
        if self._items is None:
            was_training = self.model.training
            self.model.eval()
            self._items = self.model.item_vectors()[1:].float().numpy()
            self.model.train(was_training)
        return self._items

    @torch.no_grad()
    def user_vectors(self, users: np.ndarray, history: Sequences) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        rows = history_rows(history, users, self.model.config.max_len)
        out = [self.model.user_vector(torch.as_tensor(rows[i:i + self.batch])).numpy()
               for i in range(0, len(rows), self.batch)]
        self.model.train(was_training)
        return np.concatenate(out) if out else np.zeros((0, self.model.config.dim), np.float32)

    def score(self, users: np.ndarray, history: Sequences) -> np.ndarray:
        return self.user_vectors(users, history) @ self.item_matrix().T
