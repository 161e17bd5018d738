"""The interpretable scorer: a linear model over named features whose score splits into contributions.

score = intercept + sum_j weight_j * (x_j - mean_j) / scale_j, so each feature's
contribution is one term of that sum and the terms add up to the score exactly.
The features are the ranker's (retrieval score, popularity, freshness, length,
language/creator share, series continuation) plus tag and genre match, the
similarity to liked items (feedback) and context x category indicators (device x
modality, part of day x modality). The same `Featurizer` computes them on the host
for training and on the device; the model is plain arrays (no code, no pickle).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgerec.runtime.features import (
    ITEM_FEATURES,
    HistorySide,
    ItemTable,
    Shares,
    history_side,
    item_features,
)
from edgerec.runtime.vocab import DEVICES, MODALITIES

TAG_ROWS_KEPT = 50_000  # rows whose tag codes stay decoded (a few MB at most)
SCORER_VERSION = 2  # 2: "retrieval score" is v . u (version 1 read a modality indicator there)
DAY_PARTS = ("night", "morning", "afternoon", "evening")  # 0-6, 6-12, 12-18, 18-24
BASE_FEATURES = ("retrieval score", "popularity", "age", "length", "language match", "creator match",
                 "series you watch", "next episode", "tag match", "genre match", "like similarity")
CONTEXT_FEATURES = tuple(f"{d} x {m}" for d in DEVICES for m in MODALITIES) + \
    tuple(f"{p} x {m}" for p in DAY_PARTS for m in MODALITIES)
FEATURES = BASE_FEATURES + CONTEXT_FEATURES
_RETRIEVAL, _TAG, _GENRE, _LIKE = (FEATURES.index(n) for n in
                                   ("retrieval score", "tag match", "genre match", "like similarity"))
_ITEM_COLUMNS = np.array([FEATURES.index(n) for n in ITEM_FEATURES])  # where the ranker's item block goes
_DEVICE_CELLS = len(BASE_FEATURES)  # first "device x modality" column, then the "part of day x modality" ones
_DAY_PART_CELLS = _DEVICE_CELLS + len(DEVICES) * len(MODALITIES)
TASTE = "taste match"  # the per-dimension products of user and item vectors: one contribution in reasons


def scorer_names(dim: int) -> tuple[str, ...]:
    """FEATURES, then one reweighted retrieval term per vector dimension (shown together as TASTE)."""
    return FEATURES + tuple(f"{TASTE} {i}" for i in range(dim))


def group_of(name: str) -> str:
    return TASTE if name.startswith(TASTE + " ") else name
# how a feature reads in a reason: (when it is above its average, when below)
WORDS = {"retrieval score": ("close to your taste", "far from your taste"),
         "popularity": ("popular", "niche"), "age": ("a proven title", "new"),
         "length": ("a long one", "a short one"), "language match": ("in your language", "in another language"),
         "creator match": ("from a creator you follow", "from a new creator"),
         "series you watch": ("from a series you watch", "not from your series"),
         "next episode": ("the next episode", "not the next episode"),
         "tag match": ("matches your tags", "unlike your tags"), "genre match": ("your genre", "another genre"),
         "like similarity": ("like what you liked", "unlike what you liked")}


def day_part(hour: float) -> int:
    return int((hour % 24) // 6)


@dataclass
class Featurizer:
    """Scorer features of candidates. Item side: the ranker's `ItemTable`, genre codes (-1 unknown),
    each item's tags (as `TagCodes`) and vectors by row (the host passes its arrays, the device its catalog)."""

    table: ItemTable
    genre: np.ndarray
    tags: TagCodes
    vectors_of: Callable[[np.ndarray], np.ndarray]

    def __call__(self, user: np.ndarray, items: np.ndarray, candidates: np.ndarray, history: np.ndarray,
                 hour: float, device: int, now: int, liked: np.ndarray, side: ScorerSide | None = None) -> np.ndarray:
        """(C, len(scorer_names(D))) float64. history: consumed rows, oldest first; liked: rows the user liked;
        side: self.side(history, liked) when the caller keeps it between requests.

        Values equal the ranker's features where they share a name (computed in float32 as there)."""
        if side is None or (side.tag_codes is not None and side.tag_codes() is not self.tags):  # other numbering
            side = self.side(history, liked)
        out = np.zeros((len(candidates), len(FEATURES) + user.shape[0]), np.float64)
        out[:, len(FEATURES):] = items * user[None, :]
        out[:, _RETRIEVAL] = items @ user
        out[:, _ITEM_COLUMNS] = item_features(self.table, candidates, history, now, side.items)
        if side.recent:
            out[:, _TAG] = self._tag_match(candidates, side)
            out[:, _GENRE] = side.genres.share(self.genre[candidates])
        if side.liked is not None:
            out[:, _LIKE] = (items @ side.liked.T).max(1)
        modality = self.table.modality[candidates]
        known = np.flatnonzero(modality >= 0)
        modality = modality[known]
        if 0 <= device < len(DEVICES):
            out[known, _DEVICE_CELLS + device * len(MODALITIES) + modality] = 1.0
        out[known, _DAY_PART_CELLS + day_part(hour) * len(MODALITIES) + modality] = 1.0
        return out

    def side(self, history: np.ndarray, liked: np.ndarray) -> ScorerSide:
        """The history's part of the features: read once per history (a device keeps it until the next event)."""
        recent, liked = np.asarray(history[-50:], np.int64), np.asarray(liked[-5:], np.int64)
        return ScorerSide(history_side(self.table, history), len(recent), Shares.of(self.genre[recent]),
                          self.tag_profile(recent), self.vectors_of(liked) if len(liked) else None,
                          weakref.ref(self.tags))

    def tag_profile(self, recent: np.ndarray) -> np.ndarray | None:
        """How many of the recent rows carry each tag, by tag code (None when they carry none)."""
        hist = self.tags.matrix(recent)[:, 1:] if len(recent) else np.zeros((0, 0), np.int64)
        hist = hist[hist >= 0]
        return np.bincount(hist, minlength=len(self.tags.vocab) + 1) if len(hist) else None  # last entry 0: read by -1

    def _tag_match(self, candidates: np.ndarray, side: ScorerSide) -> np.ndarray:
        """Mean share of the recent history carrying each of the item's tags."""
        if side.tag_profile is None:
            return np.zeros(len(candidates))
        codes = self.tags.matrix(candidates)
        lens, cand = codes[:, 0], codes[:, 1:]
        profile = side.tag_profile
        if len(profile) < len(self.tags.vocab) + 1:  # tags first seen among the candidates: counted 0 in the history
            profile = np.r_[profile[:-1], np.zeros(len(self.tags.vocab) + 1 - len(profile) + 1, profile.dtype)]
        return np.add.reduce(profile[cand], 1) / (side.recent * np.maximum(lens, 1))


@dataclass
class ScorerSide:
    """The user's history as the scorer reads it: the item features' side, the number of recent
    items, their genres, their tag counts (by tag code; None without tags) and the vectors of the
    newest 5 liked items (None without); the TagCodes that numbered the tags (a catalog version's
    codes are built anew when a request of another version ran in between, numbered afresh)."""

    items: HistorySide
    recent: int
    genres: Shares
    tag_profile: np.ndarray | None
    liked: np.ndarray | None = None
    tag_codes: weakref.ref | None = None  # weak: a kept side must not hold an old catalog version's codes


class TagCodes:
    """Each row's tags as integer codes in one padded matrix, decoded once per row.

    Line layout: [number of tags, code, code, ..., -1 padding]; line 0 is a placeholder. Which line
    holds a row is kept in an array over every row (0: not decoded yet), allocated zeroed, so the
    operating system backs only the pages of rows a device has asked for. Rows decoded are kept up
    to TAG_ROWS_KEPT, then decoded again as asked for.
    """

    def __init__(self, tags_of: Callable[[int], tuple], rows: int):
        self.tags_of = tags_of
        self.vocab: dict[str, int] = {}
        self._rows = rows
        self._line_of, self._lines = np.zeros(rows, np.int32), np.zeros((1, 1), np.int32)
        self._lock = threading.Lock()

    def matrix(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), 1 + width): each row's tag count, then its codes (-1 past the last)."""
        with self._lock:  # uncontended it costs nothing; requests in two threads share these arrays
            at = self._line_of[rows]
            if not at.all():
                self._decode(rows)
                at = self._line_of[rows]
            return self._lines[at]

    def _decode(self, rows: np.ndarray) -> None:
        new = np.unique(rows[self._line_of[rows] == 0])
        if len(self._lines) + len(new) > TAG_ROWS_KEPT + 1:  # bounded on a long-lived device
            self._line_of, self._lines = np.zeros(self._rows, np.int32), self._lines[:1]
            new = np.unique(rows)
        decoded = [[self.vocab.setdefault(t, len(self.vocab)) for t in self.tags_of(row)] for row in new.tolist()]
        lines = self._lines
        grown = np.full((len(lines) + len(new), 1 + max([lines.shape[1] - 1, *map(len, decoded)])), -1, np.int32)
        grown[: len(lines), : lines.shape[1]] = lines
        for i, codes in enumerate(decoded, start=len(lines)):
            grown[i, 0], grown[i, 1: 1 + len(codes)] = len(codes), codes
        self._line_of[new] = np.arange(len(lines), len(grown), dtype=np.int32)
        self._lines = grown


MAX_WEIGHT = 1e6  # bound on |weight| and |intercept|: past it, scores overflow float32 features' sums
MAX_MEAN = 1e9  # bound on |mean|: no feature averages near it (ages in days, lengths in seconds, shares); a
# larger one shifts every score by one huge term that swamps the differences between items
MAX_FOLDED = 1e12  # bound on |weight / scale|: MAX_WEIGHT over training's smallest scale (1e-6); past it a
# finite feature times the folded weight can overflow at request time


@dataclass
class LinearScorer:
    """Plain arrays: one weight, mean and scale per feature, an intercept, and the feature names."""

    names: tuple[str, ...]
    weights: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    intercept: float = 0.0

    def __post_init__(self):
        n = len(self.names)
        for field_name in ("weights", "mean", "scale"):
            value = np.asarray(getattr(self, field_name), np.float64).reshape(-1)
            if value.shape != (n,) or not np.all(np.isfinite(value)):
                got = f"{value.shape[0]}" if value.shape != (n,) else "a NaN or infinite value"
                raise ValueError(f"scorer {field_name} must hold {n} finite values (got {got})")
            setattr(self, field_name, value)
        if not (np.all(self.scale > 0) and np.isfinite(self.intercept)):
            raise ValueError("scorer scales must be positive and its intercept finite")
        if np.abs(self.weights).max(initial=0) > MAX_WEIGHT or abs(self.intercept) > MAX_WEIGHT:
            raise ValueError(f"scorer weights and intercept must be at most {MAX_WEIGHT:g} in size (found "
                             f"{max(np.abs(self.weights).max(initial=0), abs(self.intercept)):.3g}): a linear model of "
                             "standardised features has no such weight, and its scores would overflow")
        if np.abs(self.mean).max(initial=0) > MAX_MEAN:
            raise ValueError(f"scorer means must be at most {MAX_MEAN:g} in size (found "
                             f"{np.abs(self.mean).max():.3g}): no scorer feature averages that much, and the "
                             "scores would lose the differences between items")
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            self._folded = self.weights / self.scale  # one multiply per feature at scoring time
            self._offset = self.intercept - float(self._folded @ self.mean)
        if not (np.all(np.isfinite(self._folded)) and np.isfinite(self._offset)):  # else every score is NaN
            raise ValueError("scorer weights / scale and intercept - sum(mean * weights / scale) must be finite "
                             "float64 values")
        if np.abs(self._folded).max(initial=0) > MAX_FOLDED:
            raise ValueError(f"scorer weights / scale must be at most {MAX_FOLDED:g} in size (found "
                             f"{np.abs(self._folded).max():.3g}): a scale that small belongs to no trained "
                             "feature, and the scores would overflow")

    def score(self, features: np.ndarray) -> np.ndarray:
        return features @ self._folded + self._offset

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """(C, F + 1): each feature's term, then the intercept; rows sum to `score`."""
        terms = (features - self.mean) * (self.weights / self.scale)
        return np.concatenate([terms, np.full((len(features), 1), self.intercept)], 1)

    def grouped(self, contributions: np.ndarray) -> dict[str, float]:
        """One item's contributions by feature, the taste dimensions summed into one; plus the intercept."""
        out: dict[str, float] = {}
        for name, value in zip(self.names, contributions[: len(self.names)].tolist()):
            out[group_of(name)] = out.get(group_of(name), 0.0) + value
        out["intercept"] = float(contributions[len(self.names)])
        return out

    def top_reasons(self, contributions: np.ndarray, count: int = 2,
                    same: frozenset[str] = frozenset()) -> list[tuple[str, float]]:
        """The largest positive contributions of one item, as (feature name, value), leaving out the `same`
        features: equal for every candidate, they lift each alike and explain no item's place."""
        grouped = self.grouped(contributions)
        grouped.pop("intercept")
        ranked = sorted(((n, v) for n, v in grouped.items() if n not in same), key=lambda kv: -kv[1])
        return [(name, value) for name, value in ranked[:count] if value > 0]

    def same_for_all(self, features: np.ndarray) -> frozenset[str]:
        """The (grouped) features whose values are equal for every row of `features` (a request's
        candidates): 'like similarity' for a user who liked nothing read 'unlike what you liked'."""
        if len(features) < 2:
            return frozenset()
        varies: dict[str, bool] = {}
        for name, spread in zip(self.names, np.ptp(features, axis=0).tolist()):
            varies[group_of(name)] = varies.get(group_of(name), False) or spread > 0
        return frozenset(name for name, moves in varies.items() if not moves)

    def words(self, features: np.ndarray, contributions: np.ndarray, count: int = 2,
              same: frozenset[str] = frozenset()) -> str:
        """The top contributions of one item in words, e.g. 'close to your taste (+1.20), new (+0.31)'."""
        parts = []
        for name, value in self.top_reasons(contributions, count, same):
            if name == TASTE:
                parts.append(f"matches your taste (+{value:.2f})")
                continue
            high = features[self.names.index(name)] > self.mean[self.names.index(name)]
            if name in WORDS:
                phrase = WORDS[name][0 if high else 1]
            else:  # a context x category indicator
                phrase = f"suits {name.replace(' x ', ' / ')}" if high else f"fits better than {name}"
            parts.append(f"{phrase} (+{value:.2f})")
        return ", ".join(parts) if parts else "ranked by the interpretable scorer"

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "mean": self.mean, "scale": self.scale,
                "intercept": np.array([self.intercept], np.float64)}

    @classmethod
    def from_arrays(cls, names, arrays: dict) -> LinearScorer:
        intercept = np.asarray(arrays["intercept"])
        if intercept.size != 1:  # a second value would be ignored
            raise ValueError(f"scorer intercept must be one value (got shape {intercept.shape})")
        return cls(tuple(names), arrays["weights"], arrays["mean"], arrays["scale"], float(intercept.reshape(-1)[0]))
