"""Each item's hubness: the mean of its `kappa` best cosines over a sample of users.

An item that sits near the centre of the user space lands in many users' top
lists because it is close to everyone, not because it suits each of them: a
"hub". Subtracting a share of this score on the device (`Policy.hub_penalty`)
spreads the lists over more of the catalog at little cost to accuracy. It is
the CSLS correction of cross-lingual word retrieval (Conneau et al., ICLR 2018)
applied to users and items. The value is an aggregate over users, like the
popularity column: it names no user and no history.
"""

from __future__ import annotations

import numpy as np

from edgerec.data.split import Sequences
from edgerec.errors import ConfigError

KAPPA = 10  # neighbours per item: the CSLS paper's choice
MAX_USERS = 2_000  # a seeded sample bounds the cost on large user bases (users x items x dim)
CHUNK_CELLS = 20_000_000  # scores held at once (80 MB of float32)


def hubness(user_vectors: np.ndarray, items: np.ndarray, kappa: int = KAPPA) -> np.ndarray:
    """(n_items,) mean of each item's `kappa` highest cosines over the rows of `user_vectors`."""
    users, items = _unit_rows(user_vectors, "user vectors"), _unit_rows(items, "item vectors")
    if users.shape[1] != items.shape[1]:
        raise ConfigError(f"user vectors have {users.shape[1]} dimensions and item vectors {items.shape[1]}")
    if not isinstance(kappa, int) or isinstance(kappa, bool) or kappa < 1:
        raise ConfigError(f"kappa must be a whole number >= 1 (got {kappa!r})")
    if len(users) == 0:
        raise ConfigError("no user vectors to measure hubness against: the data has no training histories")
    kappa = min(kappa, len(users))
    chunk = max(1, CHUNK_CELLS // max(len(items), 1) - kappa)
    best = np.full((0, len(items)), -np.inf, np.float32)
    for start in range(0, len(users), chunk):
        both = np.concatenate([best, users[start:start + chunk] @ items.T])
        best = both if len(both) <= kappa else np.partition(both, len(both) - kappa, axis=0)[-kappa:]
    return best.astype(np.float64).mean(axis=0)


def model_hubness(scorer, history: Sequences, items: np.ndarray, *, max_users: int = MAX_USERS,
                  kappa: int = KAPPA, seed: int = 0) -> np.ndarray:
    """Hubness of `items` (the table the device scores) against a model's users.

    scorer: a ModelScorer (its `user_vectors`); history: the training histories
    (never the held-out items). Users without history are left out; above
    `max_users`, a seeded sample is taken.
    """
    users = np.flatnonzero(history.lengths() > 0)
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    return hubness(scorer.user_vectors(users, history), items, kappa)


def _unit_rows(vectors, what: str) -> np.ndarray:
    array = np.asarray(vectors, np.float32)
    if array.ndim != 2:
        raise ConfigError(f"{what} must be a 2-D array (got shape {array.shape})")
    if not np.all(np.isfinite(array)):
        raise ConfigError(f"{what} hold NaN or infinite values; check the model before measuring hubness")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.maximum(norms, 1e-12)


__all__ = ["KAPPA", "MAX_USERS", "hubness", "model_hubness"]
