"""The device's policies stage replayed on the host: a model's short list re-ordered by a `Policy`, as a Scorer.

Tuning the runtime's policy weights against logged data needs the same
re-ordering the device does. This scorer takes a model's scores, keeps the
device's short list, adds the runtime's own freshness, popularity and hub
boosts and runs its MMR (all from `edgerec.runtime.policies`), and returns scores
whose order is that list, so the evaluation protocol measures it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgerec.data.split import Sequences
from edgerec.errors import ConfigError
from edgerec.runtime.list_order import kept_head, mmr
from edgerec.runtime.policies import (
    Policy,
    freshness_boost,
    hub_boost,
    popularity_boost,
    standardize,
)
from edgerec.runtime.retrieve import FRESH_CANDIDATES


@dataclass
class PolicyScorer:
    """Wraps a ModelScorer: top `policy.short_list` by the model, the first `policy.keep_top` kept, then
    the device's boosts and MMR below them."""

    inner: object  # a ModelScorer (item_matrix + user_vectors)
    release_ts: np.ndarray  # per item, epoch seconds (0 = unknown)
    popularity: np.ndarray  # per item, training consumptions
    now: np.ndarray  # per user: the moment of the request (the held-out item's time)
    policy: Policy
    k: int = 10
    name: str = "policy"
    hubness: np.ndarray | None = None  # per item (models/hubness.py); needed when policy.hub_penalty > 0
    plain_ranks: dict | None = None  # when a dict: user -> each listed item's rank in the model's own order

    def __post_init__(self) -> None:
        self.policy = self.policy.with_defaults()  # no bundle here: short list 100, diversity 0 where unset
        if self.policy.hub_penalty and (self.hubness is None or len(self.hubness) != len(self.popularity)):
            raise ConfigError("Policy.hub_penalty needs one hubness value per item (models/hubness.py)")

    def score(self, users: np.ndarray, history: Sequences) -> np.ndarray:
        vectors = self.inner.item_matrix()
        user_vectors = np.asarray(self.inner.user_vectors(users, history), np.float64)
        base = user_vectors @ vectors.T
        # the device scores against the unit query: its cosines set the hub penalty's units
        cosines = base / np.maximum(np.linalg.norm(user_vectors, axis=1, keepdims=True), 1e-12)
        out = base.copy()
        short = min(max(self.policy.short_list, self.k), base.shape[1])  # the device's want
        for row, user in enumerate(users):
            scores = base[row].copy()
            scores[history.of(user)] = -np.inf  # the device never re-offers what was consumed
            pool = self._pool(scores, short, float(self.now[user]))
            relevance = standardize(scores[pool])
            head = kept_head(relevance, self.policy, self.k)  # before the catalog-wide levers, as on the device
            relevance = relevance + freshness_boost(self.release_ts[pool], float(self.now[user]), self.policy)
            relevance = relevance + popularity_boost(self.popularity[pool], self.policy)
            if self.policy.hub_penalty:
                relevance = relevance + hub_boost(self.hubness[pool], cosines[row, pool], self.policy)
            order = mmr(relevance, vectors[pool], self.k, self.policy.diversity, keep=head)
            top = pool[order]
            if self.plain_ranks is not None:  # the model's rank of each listed item (joined new releases
                # come from anywhere below the pool's best rows: their pool position is not their rank)
                ranked = np.sort(-scores[np.isfinite(scores)])
                self.plain_ranks[int(user)] = np.searchsorted(ranked, -scores[top], side="left").astype(np.int64)
            ceiling = float(np.max(scores[pool])) if len(pool) else 0.0
            out[row, top] = ceiling + 1.0 + (len(top) - np.arange(len(top)))  # the list, in its order, first
        return out

    def _pool(self, scores: np.ndarray, short: int, now: float) -> np.ndarray:
        """The device's short list (spec §4): the best `short` rows, best first with ties by row; with
        freshness the new releases are a group of candidates, as on the device: 20 more best rows, and
        the 20 best new releases wherever they rank."""
        cut = short
        if self.policy.freshness:
            cut += FRESH_CANDIDATES
            age = now - self.release_ts
            new = np.flatnonzero((self.release_ts > 0) & (age >= 0) & (age <= 3 * self.policy.freshness_days * 86_400)
                                 & np.isfinite(scores))
            new = new[np.lexsort((new, -scores[new]))][:FRESH_CANDIDATES]
        cut = min(cut, len(scores))
        pool = np.argpartition(-scores, cut - 1)[:cut]
        pool = pool[np.isfinite(scores[pool])]
        if self.policy.freshness:
            pool = np.union1d(pool, new)
        return pool[np.lexsort((pool, -scores[pool]))]


def request_times(n_users: int, users: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Per-user request moments from a phase's (users, times)."""
    now = np.zeros(n_users, np.float64)
    now[users] = times
    return now


__all__ = ["PolicyScorer", "request_times"]
