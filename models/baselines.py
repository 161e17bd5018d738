"""The classic personalization strategies, as scorers for the evaluation protocol.

most popular (global, and recent-trending), item-based CF (cosine item kNN),
user-based CF (cosine user kNN), content-based (tag/genre profile matching)
and a hybrid blend. They are fitted on the training part of a split only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from edgerec.data.schema import Catalog, Dataset
from edgerec.data.split import Sequences, Split
from edgerec.errors import ConfigError, DataError

DAY = 86_400


def recency_weights(history: Sequences, users: np.ndarray, decay: float, n_items: int) -> sp.csr_matrix:
    """Rows of a sparse (users x items) matrix: the latest item weighs 1, earlier ones decay^age."""
    lengths = history.lengths()[users]
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    cols = np.concatenate([history.of(u) for u in users]) if len(users) else np.zeros(0, np.int32)
    age = np.concatenate([np.arange(n - 1, -1, -1) for n in lengths]) if len(users) else np.zeros(0)
    data = np.power(decay, age).astype(np.float32)
    return sp.csr_matrix((data, cols, indptr), shape=(len(users), n_items))


def interaction_matrix(train: Sequences, n_items: int) -> sp.csr_matrix:
    data = np.ones(len(train.items), np.float32)
    # copies: scipy keeps the arrays it is given and sum_duplicates sorts them in place, which put every
    # user's training items in id order, not time order, for whatever ran on the split next
    matrix = sp.csr_matrix((data, train.items.copy(), train.indptr.copy()), shape=(train.n_users, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def require_co_consumption(x: sp.csr_matrix, name: str) -> None:
    """Refuse a training log where no user consumed two items: kNN similarities would all be zero."""
    if x.shape[0] == 0 or int(np.diff(x.indptr).max()) < 2:  # every score would tie: id order, not a result
        raise DataError(f"no training user consumed two distinct items, so {name} finds no similar "
                        "items or users and would rank the catalog in id order; it needs a log where "
                        "users consume at least four items (two to learn from, one to validate, one to test)")


def top_per_row(m: sp.csr_matrix, k: int, skip: np.ndarray | None = None) -> sp.csr_matrix:
    """Each row's k largest positive entries, ties to the lower column; `skip[r]` is a column row r leaves
    out (itself). Sparse in, sparse out: the work follows the stored entries, not rows x columns, which
    at a million items is what separates minutes from hours."""
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    keep = m.data > 0
    if skip is not None:
        keep &= m.indices != skip[rows]
    rows, cols, values = rows[keep], m.indices[keep], m.data[keep]
    order = np.lexsort((cols, -values, rows))  # by row, best first, then by column
    rows, cols, values = rows[order], cols[order], values[order]
    first = np.searchsorted(rows, np.arange(m.shape[0]))  # where each row's entries start
    best = np.arange(len(rows)) - first[rows] < k
    return sp.csr_matrix((values[best], (rows[best], cols[best])), shape=m.shape)


def co_occurrence_bound(x: sp.csr_matrix) -> np.ndarray:
    """For each item (column of users x items), the summed history lengths of its users: at least the
    entries of its row of co-occurrences (float64, exact for any real log)."""
    lengths = np.diff(x.indptr)
    return np.bincount(x.indices, np.repeat(lengths, lengths), minlength=x.shape[1])


def row_blocks(work: np.ndarray, cells: int) -> list[tuple[int, int]]:
    """Consecutive row ranges whose `work` (an upper bound of each row's stored entries) sums to
    `cells` at most; a row past the bound alone is a block of its own."""
    ends = np.cumsum(work)
    blocks, start = [], 0
    while start < len(work):
        before = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, before + cells, "right")))
        blocks.append((start, stop))
        start = stop
    return blocks


def trending_reference(times: np.ndarray, half_life: float) -> tuple[float, int]:
    """The "now" trending measures ages from, and how many events are dated after it.

    The latest event that is not far past the bulk of the log: a few events dated years ahead (a clock
    or unit slip) made every real play decades old, and trending ranked the catalog by those few alone
    (HR@10 0.11 -> 0.003 with 4 of 13,574 events in 2100). Later than the 95th percentile by more than
    the 5th-95th percentile span (at least one half-life) counts as misdated; a clean log's newest
    events are never that far out, so its reference stays its latest event."""
    if not len(times):
        return 0.0, 0
    low, high = np.quantile(times, [0.05, 0.95])
    plausible = times <= high + max(high - low, half_life)
    reference = float(times[plausible].max())
    late = int(np.count_nonzero(times > reference))
    if late:
        logging.getLogger("edgerec.models").warning(
            "trending: %s training event(s) are dated far after the rest of the log (a clock or time-unit "
            "error?); ages are measured from the latest plausible event instead and those count as new. "
            "Check the log's timestamps.", f"{late:,}")
    return reference, late


@dataclass
class Popular:
    """Most consumed items in training; `half_life_days` > 0 makes it recent-trending."""

    split: Split
    dataset: Dataset
    half_life_days: float = 0.0
    name: str = "popular"

    def __post_init__(self):
        log = self.dataset.interactions
        mask = self.split.train_events & log.consumed_mask()
        weights = np.ones(mask.sum())
        self.late_events = 0
        if self.half_life_days > 0:
            t = log.timestamp[mask].astype(np.float64)
            now, self.late_events = trending_reference(t, self.half_life_days * DAY)
            weights = np.power(0.5, np.maximum(now - t, 0.0) / (self.half_life_days * DAY))
            self.name = "trending"
        self.scores = np.bincount(log.item[mask], weights, minlength=self.split.n_items).astype(np.float32)

    def score(self, users: np.ndarray, history: Sequences) -> np.ndarray:
        return np.broadcast_to(self.scores, (len(users), len(self.scores)))


@dataclass
class ItemKNN:
    """Cosine item-item similarity over training users; history items vote with recency decay."""

    split: Split
    neighbors: int = 100
    decay: float = 0.8
    name: str = "itemknn"
    cells: int = 1 << 22  # co-occurrences held at once (about 40 bytes each while a block is ranked)

    def __post_init__(self):
        n = self.split.n_items
        x = interaction_matrix(self.split.train, n)
        require_co_consumption(x, self.name)
        norms = np.sqrt(np.asarray(x.sum(0)).ravel()).astype(np.float32)
        xt = x.T.tocsr()
        # blocks of rows sized by a bound of their co-occurrences: memory stays bounded on a dense world
        blocks = []
        for start, stop in row_blocks(co_occurrence_bound(x), self.cells):
            co = (xt[start:stop] @ x).tocsr()
            rows = np.repeat(np.arange(start, stop), np.diff(co.indptr))
            co.data /= norms[rows] * norms[co.indices]  # both at least 1: each item of a pair was consumed
            blocks.append(top_per_row(co, self.neighbors, skip=np.arange(start, stop)))
        self.similarity = sp.vstack(blocks).tocsr()

    def score(self, users: np.ndarray, history: Sequences) -> np.ndarray:
        h = recency_weights(history, users, self.decay, self.split.n_items)
        return np.asarray((h @ self.similarity).todense())


@dataclass
class UserKNN:
    """Cosine user-user similarity to training users; the nearest users' items vote."""

    split: Split
    neighbors: int = 50
    name: str = "userknn"

    def __post_init__(self):
        self.x = interaction_matrix(self.split.train, self.split.n_items)
        require_co_consumption(self.x, self.name)
        self.norms = np.sqrt(np.asarray(self.x.sum(1)).ravel()).astype(np.float32)
        self.xt = self.x.T.tocsr()

    def score(self, users: np.ndarray, history: Sequences) -> np.ndarray:
        h = recency_weights(history, users, 1.0, self.split.n_items)
        sim = (h @ self.xt).tocsr()  # sparse: a dense (users x every training user) block grows with the log
        h_norm = np.sqrt(np.asarray(h.sum(1)).ravel())
        rows = np.repeat(np.arange(len(users)), np.diff(sim.indptr))
        sim.data /= h_norm[rows] * self.norms[sim.indices]  # both at least 1 where users share an item
        near = top_per_row(sim, self.neighbors, skip=np.asarray(users))  # a user is not their own neighbour
        return np.asarray((near @ self.x).todense())


def content_features(catalog: Catalog) -> sp.csr_matrix:
    """TF-IDF weighted one-hot features (genre, mood, modality, language, creator, tags), rows L2-normalised."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    text = catalog.text
    for i in range(len(catalog)):
        names = {f"tag={t}" for t in catalog.tags[i]}
        for field_name in ("genre", "mood", "modality", "language", "creator"):
            if text[field_name][i]:
                names.add(f"{field_name}={text[field_name][i]}")
        for name in names:
            rows.append(i)
            cols.append(vocab.setdefault(name, len(vocab)))
    x = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(catalog), max(len(vocab), 1)))
    df = np.asarray((x > 0).sum(0)).ravel()
    x = x @ sp.diags(np.log((1 + len(catalog)) / (1 + df)).astype(np.float32) + 1.0)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
    return sp.diags(1.0 / np.maximum(norms, 1e-9)).astype(np.float32) @ x


def tells_apart(features: sp.spmatrix) -> bool:
    """Whether some feature is held by some items and not by others (a bare log's items hold none)."""
    held = np.diff(features.tocsc().indptr)  # items per feature
    return bool(np.any((held > 0) & (held < features.shape[0])))


@dataclass
class ContentBased:
    """Match a recency-weighted profile of the user's item features against every item."""

    split: Split
    catalog: Catalog
    decay: float = 0.9
    name: str = "content"

    def __post_init__(self):
        self.features = content_features(self.catalog).tocsr()
        if not tells_apart(self.features):  # every score would tie: a list in id order, not a result
            raise DataError("the items carry no tags, genres or other metadata that tell them apart (none, or "
                            "the same for every item), so the content baseline has nothing to match; give the "
                            "items tags or genres that differ (an items file: `data import --items`) to use it")
        self.features_t = self.features.T.tocsr()

    def score(self, users: np.ndarray, history: Sequences) -> np.ndarray:
        profile = recency_weights(history, users, self.decay, self.split.n_items) @ self.features
        return np.asarray((profile @ self.features_t).todense())


def _standardize(scores: np.ndarray) -> np.ndarray:
    mean = scores.mean(1, keepdims=True)
    std = scores.std(1, keepdims=True)
    return (scores - mean) / np.maximum(std, 1e-9)


@dataclass
class Hybrid:
    """A weighted blend of per-user standardised scores of other scorers."""

    parts: list = field(default_factory=list)  # (scorer, weight)
    name: str = "hybrid"

    def score(self, users: np.ndarray, history: Sequences) -> np.ndarray:
        total = None
        for scorer, weight in self.parts:
            part = weight * _standardize(np.asarray(scorer.score(users, history), np.float32))
            total = part if total is None else total + part
        return total


BASELINES = ("popular", "trending", "itemknn", "userknn", "content", "hybrid")


def make_baseline(name: str, dataset: Dataset, split: Split):
    if name == "popular":
        return Popular(split, dataset)
    if name == "trending":
        if dataset.meta.get("time") == "file order":  # its times are row numbers: every play is seconds old
            raise DataError("trending weighs each play by its age, and this log has no times (imported with "
                            "--no-time: a row's time is its place in the file); use popular")
        return Popular(split, dataset, half_life_days=14.0)
    if name == "itemknn":
        return ItemKNN(split)
    if name == "userknn":
        return UserKNN(split)
    if name == "content":
        return ContentBased(split, dataset.catalog)
    if name == "hybrid":
        popular = Popular(split, dataset)
        popular_log = _Log(popular)
        try:
            content = [(ContentBased(split, dataset.catalog), 0.4)]
        except DataError:  # items with no metadata (a bare log): the blend of the other two
            content = []
        try:
            knn = [(ItemKNN(split), 1.0)]
        except DataError:  # no user consumed two training items: nothing to find neighbours in
            knn = []
        if not content and not knn:
            raise DataError("the hybrid has nothing personal to blend: the items carry no metadata that "
                            "tells them apart and no training user consumed two distinct items; use the "
                            "popular baseline, or a log with longer histories and an items file")
        return Hybrid([*knn, *content, (popular_log, 0.3)])
    several = " (several: repeat --model, one name each)" if "," in name else ""
    raise ConfigError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}{several}")


@dataclass
class _Log:
    """log(1 + score) of another scorer, so heavy-tailed popularity blends gently."""

    inner: Popular
    name: str = "log-popular"

    def score(self, users: np.ndarray, history: Sequences) -> np.ndarray:
        return np.log1p(self.inner.score(users, history))


__all__ = ["BASELINES", "ContentBased", "Hybrid", "ItemKNN", "Popular", "UserKNN", "make_baseline"]
