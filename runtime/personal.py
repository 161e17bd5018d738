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
from edgerec.runtime.vocab import MAX_ID

KIND = "personal_vector"  # the preference kind it is stored under
PART = "{:04d}"  # an entry's place in the vector, zero-padded: sorting keeps the order (dim <= 65536: 1,155 entries)


def load_personal(history: HistoryStore, user: str, space: str, dim: int) -> np.ndarray:
    """The user's personal vector for `space` (zeros when there is none, or only one of another space)."""
    parts = {}
    for value in history.preferences(user).get(KIND, []):
        stored_space, _, rest = value.partition(":")
        if stored_space == space:
            index, split, blob = rest.partition(":")
            parts[index if split else PART.format(0)] = blob if split else rest  # one entry before it was split
    try:
        vector = np.frombuffer(bytes.fromhex("".join(parts[i] for i in sorted(parts))), "<f2").astype(np.float32)
    except ValueError:  # a damaged or altered entry: learn again from zero
        return np.zeros(dim, np.float32)
    return vector if vector.shape == (dim,) and np.all(np.isfinite(vector)) else np.zeros(dim, np.float32)


def save_personal(history: HistoryStore, user: str, space: str, vector: np.ndarray) -> None:
    """Keep the vector (float16) for `space`, replacing the user's vector of any space. A preference value
    holds at most MAX_ID characters, so the hex is split over numbered entries (a 64-d vector is 256)."""
    blob = np.asarray(vector, np.float32).astype("<f2").tobytes().hex()
    width = MAX_ID - len(space) - len(PART.format(0)) - 2  # the two ":"
    parts = [blob[i:i + width] for i in range(0, len(blob), width)] or [""]
    history.set_preferences(user, KIND, [f"{space}:{PART.format(i)}:{part}" for i, part in enumerate(parts)])


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
