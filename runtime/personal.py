"""The on-device personal vector: a user-side offset learned from the local history, never uploaded.

It is added to the user encoder's output before retrieval (the "personal"
stage, after "encode"). It is kept with the profile's preferences, so
`forget(user)` erases it and `export_history(user)` shows it, and it is tied to
the embedding space it was learned in: a bundle of another space (a federated
update among them) finds no vector and starts again from zero.
"""

from __future__ import annotations

import numpy as np

from edgerec.runtime.history import HistoryStore
from edgerec.runtime.pipeline import Stage
from edgerec.runtime.request import Request

KIND = "personal_vector"  # the preference kind it is stored under


def load_personal(history: HistoryStore, user: str, space: str, dim: int) -> np.ndarray:
    """The user's personal vector for `space` (zeros when there is none, or only one of another space)."""
    for value in history.preferences(user).get(KIND, []):
        stored_space, _, blob = value.partition(":")
        if stored_space == space:
            try:
                vector = np.frombuffer(bytes.fromhex(blob), "<f2").astype(np.float32)
            except ValueError:  # a damaged or altered entry: learn again from zero
                continue
            if vector.shape == (dim,) and np.all(np.isfinite(vector)):
                return vector
    return np.zeros(dim, np.float32)


def save_personal(history: HistoryStore, user: str, space: str, vector: np.ndarray) -> None:
    """Keep the vector (float16) for `space`, replacing the user's vector of any space."""
    blob = np.asarray(vector, np.float32).astype("<f2").tobytes().hex()
    history.set_preferences(user, KIND, [f"{space}:{blob}"])


class PersonalStage:
    """personal: the user vector plus the user's personal vector of this bundle's space."""

    def __init__(self, history: HistoryStore, space: str):
        self.history, self.space = history, space

    @staticmethod
    def applies(request: Request) -> bool:
        return request.vector is not None

    def __call__(self, request: Request) -> Request:
        offset = load_personal(self.history, request.user, self.space, len(request.vector))
        if np.any(offset):  # a new array: the cached encoder output stays as it was
            request.vector = (request.vector + offset).astype(np.float32)
        return request


def use_personal(rec) -> None:
    """Serve `rec` (a Recommender) with each user's personal vector added (an optional stage)."""
    if "personal" not in rec.pipeline.names:
        stage = PersonalStage(rec.history, rec.manifest.embedding_space)
        rec.pipeline.insert_after("encode", Stage("personal", stage, required=False, applies=stage.applies))
