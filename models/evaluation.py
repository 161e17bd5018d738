"""The full-ranking evaluation protocol shared by baselines and models.

For each evaluated user, a scorer scores every item of the catalog; items the
user already consumed are excluded; the held-out item's rank and the top-k
list feed the metrics of `metrics.py`. Users are processed in chunks so
memory stays bounded (chunk x catalog scores at a time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edgerec.data.schema import Catalog
from edgerec.data.split import Sequences, Split, require_targets
from edgerec.errors import ModelError
from edgerec.models import metrics


class Scorer(Protocol):
    """Anything that scores the whole catalog for a batch of users given their histories."""

    name: str

    def score(self, users: np.ndarray, history: Sequences) -> np.ndarray:
        """(len(users), n_items) float scores, compared in float32; higher is better. -inf means "never
        recommend" (as for the items the user consumed): such an item is left out of the lists and its
        rank, as a target, is never a hit, so a scorer must not give -inf to items it merely rates lowest
        (the log of a zero count: floor it). NaN is refused."""
        ...


@dataclass
class NewestOnly:
    """A scorer that reads only each user's newest `items` items, as a device that has seen only the
    user's last few events (the seen filter still takes out the whole history)."""

    inner: Scorer
    items: int

    @property
    def name(self) -> str:
        return f"{self.inner.name}, newest {self.items} items"

    def score(self, users: np.ndarray, history: Sequences) -> np.ndarray:
        return self.inner.score(users, history.newest(self.items))


def tag_matrix(catalog: Catalog, max_tags: int | None = None) -> np.ndarray:
    """(n_items, width) integer tag codes padded with -1; genre counts as a tag. The width is the longest
    item's (a cut at 16 made items of 19 tags, 15 shared, read as identical), or `max_tags`."""
    vocab: dict[str, int] = {}
    genres = catalog.text["genre"]
    rows = [list(dict.fromkeys(([genres[i]] if genres[i] else []) + list(tags))) for i, tags in enumerate(catalog.tags)]
    width = max(map(len, rows), default=0) if max_tags is None else max_tags
    out = np.full((len(catalog), max(width, 1)), -1, np.int32)
    for i, names in enumerate(rows):
        for j, name in enumerate(names[:width]):
            out[i, j] = vocab.setdefault(name, len(vocab))
    return out


def train_popularity(split: Split) -> np.ndarray:
    """How many training users consumed each item."""
    return np.bincount(split.train.items, minlength=split.n_items)


MAX_USERS = 20_000  # users of a phase scored by default: NDCG@10's standard error is about 0.002 at this
# size; with every user of a 300k-user, 150k-item log the demo's first baseline ran past 5 minutes unfinished


def sample_rows(count: int, most: int, seed: int = 0) -> np.ndarray | None:
    """Sorted rows of a seeded sample of `most` out of `count` (None: all of them, `most` 0 or enough).
    The same rows for every model and run, so paired comparisons stay paired."""
    if most <= 0 or count <= most:
        return None
    return np.sort(np.random.default_rng(seed).choice(count, most, replace=False))


@dataclass
class Evaluator:
    """The full-ranking protocol: every item of the catalog is ranked for each user scored. A phase with
    more than `max_users` users (0: no limit) is scored on a seeded sample of them, and says so."""

    split: Split
    catalog: Catalog
    k: int = 10
    max_users: int = MAX_USERS
    chunk_users: int = 1024
    cells: int = 1 << 24  # scores held at once: a batch has at most cells // n_items users (a music catalog
    # of 93k tracks held 1,024 x 93k scores and their temporaries, 2.7 GB at the peak; 1 << 25, 1.3 GB)

    def __post_init__(self):
        self.tags = tag_matrix(self.catalog)
        self.tagged = bool((self.tags >= 0).any())
        self.popularity = train_popularity(self.split)
        self.percentile = metrics.popularity_percentile(self.popularity)

    def ranks_and_lists(self, scorer: Scorer, phase: str = "test",
                        progress: Callable[[int, int], None] | None = None,
                        rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Ranks of the held-out items and top-k lists; `rows` picks a subset of the phase's users (default:
        all of them, or the class docstring's sample)."""
        history = self.split.history(phase)
        users, targets = self.split.targets(phase)
        require_targets(self.split, phase)  # not a row of 0.0000 for nobody
        rows = sample_rows(len(users), self.max_users) if rows is None else rows
        if rows is not None:
            users, targets = users[rows], targets[rows]
        ranks = np.empty(len(users), np.int64)
        lists = np.empty((len(users), self.k), np.int64)
        n_items = self.split.n_items
        chunk = max(1, min(self.chunk_users, self.cells // max(n_items, 1)))
        for start in range(0, len(users), chunk):
            batch = users[start:start + chunk]
            raw = np.asarray(scorer.score(batch, history))
            if raw.shape != (len(batch), n_items):
                raise ModelError(f"scorer {scorer.name} returned shape {raw.shape}, "
                                 f"expected {(len(batch), n_items)}")
            if raw.dtype.kind not in "fiub":
                raise ModelError(f"scorer {scorer.name} returned {raw.dtype} scores, not numbers; check the model")
            scores = raw.astype(np.float32)  # a copy, compared as the device compares (float32)
            if np.isnan(scores).any():
                raise ModelError(f"scorer {scorer.name} returned NaN scores; check the model")
            rows = np.repeat(np.arange(len(batch)), history.lengths()[batch])
            cols = np.concatenate([history.of(u) for u in batch])  # a batch is never empty
            scores[rows, cols] = -np.inf  # consumed items are never recommended again
            # ties go by each user's tie key, never by item index (catalogs numbered by popularity)
            ranks[start:start + len(batch)] = rank_of(scores, targets[start:start + len(batch)], batch)
            lists[start:start + len(batch)] = top_k(scores, self.k, batch)
            if progress:
                progress(min(start + chunk, len(users)), len(users))
        return ranks, lists

    def evaluate(self, scorer: Scorer, phase: str = "test",
                 progress: Callable[[int, int], None] | None = None, rows: np.ndarray | None = None) -> dict:
        began = time.perf_counter()
        ranks, lists = self.ranks_and_lists(scorer, phase, progress, rows)
        return self.summarize(ranks, lists, scorer.name, phase, began)

    def summarize(self, ranks: np.ndarray, lists: np.ndarray, name: str, phase: str,
                  began: float | None = None) -> dict:
        """The metrics of `ranks_and_lists`' output."""
        k = self.k
        valid = lists[lists >= 0]
        exposure = np.bincount(valid, minlength=self.split.n_items)
        return {
            "model": name,
            "phase": phase,
            "users": int(len(ranks)),
            "users_in_phase": int(len(self.split.targets(phase)[0])),
            f"HR@{k}": metrics.hit_rate(ranks, k),
            f"NDCG@{k}": metrics.ndcg(ranks, k),
            f"MRR@{k}": metrics.mrr(ranks, k),
            f"coverage@{k}": metrics.coverage(lists, self.split.n_items),
            f"novelty@{k}": metrics.novelty(lists, self.popularity, self.split.train.n_users),
            # None on items without tags or genre (a bare listening log): every list would score 1.0
            f"diversity@{k}": metrics.intra_list_diversity(lists, self.tags) if self.tagged else None,
            f"pop_percentile@{k}": float(self.percentile[valid].mean()) if valid.size else 0.0,
            f"gini@{k}": metrics.gini(exposure),
            "eval_seconds": round(time.perf_counter() - (began or time.perf_counter()), 2),
        }


def tie_keys(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """A pseudo-random uint64 key per (user, item) that orders tied scores: the same for a user on
    every model and run, and unrelated to the item index. Catalogs are often numbered by popularity
    (MovieLens-100K is), and ties going to the lower index gave a scorer that scores every item equal
    HR@10 0.020 on it, 3.2 times the 0.0064 of a random order. splitmix64's finaliser: distinct
    (user, item) pairs get distinct keys, so a user's order is strict."""
    x = (np.asarray(users, np.uint64) << np.uint64(32)) ^ np.asarray(items, np.uint64)
    with np.errstate(over="ignore"):  # the products wrap modulo 2^64 on purpose
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def rank_of(scores: np.ndarray, targets: np.ndarray, users: np.ndarray | None = None) -> np.ndarray:
    """0-based rank of each target in its row; ties go to the lower item index, or, given each row's
    user, to the lower tie key (as in top_k)."""
    rows = np.arange(len(targets))
    t = scores[rows, targets][:, None]
    above = (scores > t).sum(1)
    tied = scores == t
    excluded = np.isneginf(t[:, 0])  # never listed (top_k's -1), so never a hit, whatever its tie key
    if users is None:
        ranks = above + (tied & (np.arange(scores.shape[1])[None, :] < targets[:, None])).sum(1)
        return np.where(excluded, scores.shape[1], ranks)
    before = np.zeros(len(targets), np.int64)
    for row in np.flatnonzero((tied.sum(1) > 1) & ~excluded):  # only rows where the target shares its score
        cols = np.flatnonzero(tied[row])
        before[row] = (tie_keys(users[row], cols) < tie_keys(users[row], targets[row])).sum()
    return np.where(excluded, scores.shape[1], above + before)


def top_k(scores: np.ndarray, k: int, users: np.ndarray | None = None) -> np.ndarray:
    """Indices of the k best scores per row, best first; ties go to the lower index, or, given each
    row's user, to the lower tie key (as in rank_of).

    Excluded items (-inf) and missing places are -1.
    """
    n = scores.shape[1]
    kk = min(k, n)
    kth = np.partition(scores, n - kk, axis=1)[:, n - kk:n - kk + 1]  # the k-th best score of each row
    above = scores > kth
    tied = scores == kth
    chosen = above | tied
    # rows with more ties at the k-th score than places left keep their lowest tied indices or tie keys (a
    # running count over those rows only: over all of them it was 8 bytes a score)
    excess = np.flatnonzero(chosen.sum(1) > kk)
    if excess.size and users is None:
        ties, need = tied[excess], kk - above[excess].sum(1, keepdims=True)
        chosen[excess] = above[excess] | (ties & (np.cumsum(ties, axis=1, dtype=np.int32) <= need))
    for row in excess if users is not None else ():
        cols = np.flatnonzero(tied[row])
        need = kk - int(above[row].sum())
        chosen[row, cols[np.argsort(tie_keys(users[row], cols))[need:]]] = False
    del above, tied
    cols = np.nonzero(chosen)[1].reshape(len(scores), kk)
    vals = np.take_along_axis(scores, cols, 1)
    order = cols if users is None else tie_keys(np.asarray(users)[:, None], cols)
    best = np.take_along_axis(cols, np.lexsort((order, -vals), axis=1), 1)
    best = np.where(np.isneginf(np.take_along_axis(scores, best, 1)), -1, best)
    if kk < k:
        best = np.concatenate([best, np.full((len(scores), k - kk), -1)], 1)
    return best
