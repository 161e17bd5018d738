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

from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain

import numpy as np

from edgerec.runtime.features import EXTRA, ItemTable, ranker_features
from edgerec.runtime.vocab import DEVICES, MODALITIES

SCORER_VERSION = 1
DAY_PARTS = ("night", "morning", "afternoon", "evening")  # 0-6, 6-12, 12-18, 18-24
# columns taken from runtime.features (offset from the end of its vector-product block)
_FROM_RANKER = {"retrieval score": -1, "length": 0, "popularity": 1, "age": 2, "language match": 3,
                "creator match": 4, "series you watch": 5, "next episode": 6}
BASE_FEATURES = ("retrieval score", "popularity", "age", "length", "language match", "creator match",
                 "series you watch", "next episode", "tag match", "genre match", "like similarity")
CONTEXT_FEATURES = tuple(f"{d} x {m}" for d in DEVICES for m in MODALITIES) + \
    tuple(f"{p} x {m}" for p in DAY_PARTS for m in MODALITIES)
FEATURES = BASE_FEATURES + CONTEXT_FEATURES
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


def part_of_day_name(hour: float) -> str:
    return DAY_PARTS[day_part(hour)]


@dataclass
class Featurizer:
    """Scorer features of candidates. Item side: the ranker's `ItemTable`, genre codes (-1 unknown),
    each item's tags (as `TagCodes`) and vectors by row (the host passes its arrays, the device its catalog)."""

    table: ItemTable
    genre: np.ndarray
    tags: TagCodes
    vectors_of: Callable[[np.ndarray], np.ndarray]

    def __call__(self, user: np.ndarray, items: np.ndarray, candidates: np.ndarray, history: np.ndarray,
                 hour: float, device: int, now: int, liked: np.ndarray) -> np.ndarray:
        """(C, len(scorer_names(D))) float64. history: consumed rows, oldest first; liked: rows the user liked."""
        c, d = len(candidates), user.shape[0]
        out = np.zeros((c, len(FEATURES) + d), np.float64)
        base = ranker_features(user, items, candidates, self.table, history, hour, device, now)
        out[:, len(FEATURES):] = base[:, :d]
        start = base.shape[1] - EXTRA + 2 + len(DEVICES) + len(MODALITIES)  # first column after one-hots
        for name, offset in _FROM_RANKER.items():
            out[:, FEATURES.index(name)] = base[:, start + offset]
        recent = history[-50:]
        if len(recent):
            out[:, FEATURES.index("tag match")] = self._tag_match(candidates, recent)
            genres = self.genre[recent]
            genres = genres[genres >= 0]
            if len(genres):
                counts = np.bincount(genres) / len(genres)
                cand = self.genre[candidates]
                seen = (cand >= 0) & (cand < len(counts))
                out[:, FEATURES.index("genre match")] = np.where(seen, counts[np.clip(cand, 0, len(counts) - 1)], 0.0)
        if len(liked):
            sims = items @ self.vectors_of(np.asarray(liked[-5:], np.int64)).T
            out[:, FEATURES.index("like similarity")] = sims.max(1)
        modality = self.table.modality[candidates]
        known = np.flatnonzero(modality >= 0)
        if 0 <= device < len(DEVICES):
            out[known, len(BASE_FEATURES) + device * len(MODALITIES) + modality[known]] = 1.0
        part = len(BASE_FEATURES) + len(DEVICES) * len(MODALITIES) + day_part(hour) * len(MODALITIES)
        out[known, part + modality[known]] = 1.0
        return out

    def _tag_match(self, candidates: np.ndarray, recent: np.ndarray) -> np.ndarray:
        """Mean share of the recent history carrying each of the item's tags."""
        hist, _ = self.tags.codes(recent)
        flat, lens = self.tags.codes(candidates)
        if not len(hist) or not len(flat):
            return np.zeros(len(candidates))
        profile = np.bincount(hist, minlength=len(self.tags.vocab))
        sums = np.add.reduceat(profile[flat], np.r_[0, np.cumsum(lens)[:-1]]) * (lens > 0)
        return np.where(lens > 0, sums / (len(recent) * np.maximum(lens, 1)), 0.0)


class TagCodes:
    """Each row's tags as integer codes, decoded once per row (kept per catalog version on the device)."""

    def __init__(self, tags_of: Callable[[int], tuple]):
        self.tags_of = tags_of
        self.vocab: dict[str, int] = {}
        self._rows: dict[int, np.ndarray] = {}

    def codes(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(all codes of `rows` concatenated, how many each row has)."""
        known, vocab, parts = self._rows, self.vocab, []
        for row in rows.tolist():
            got = known.get(row)
            if got is None:  # tuples of ints: cheaper to keep and to chain than small arrays
                got = known[row] = tuple(vocab.setdefault(t, len(vocab)) for t in self.tags_of(row))
            parts.append(got)
        lens = np.fromiter(map(len, parts), np.int64, len(parts))
        return np.fromiter(chain.from_iterable(parts), np.int64, int(lens.sum())), lens


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
                raise ValueError(f"scorer {field_name} must hold {n} finite values (got shape {value.shape})")
            setattr(self, field_name, value)
        if not (np.all(self.scale > 0) and np.isfinite(self.intercept)):
            raise ValueError("scorer scales must be positive and its intercept finite")
        self._folded = self.weights / self.scale  # one multiply per feature at scoring time
        self._offset = self.intercept - float(self._folded @ self.mean)

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

    def top_reasons(self, contributions: np.ndarray, count: int = 2) -> list[tuple[str, float]]:
        """The largest positive contributions of one item, as (feature name, value)."""
        grouped = self.grouped(contributions)
        grouped.pop("intercept")
        ranked = sorted(grouped.items(), key=lambda kv: -kv[1])
        return [(name, value) for name, value in ranked[:count] if value > 0]

    def words(self, features: np.ndarray, contributions: np.ndarray, count: int = 2) -> str:
        """The top contributions of one item in words, e.g. 'close to your taste (+1.20), new (+0.31)'."""
        parts = []
        for name, value in self.top_reasons(contributions, count):
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
        return cls(tuple(names), arrays["weights"], arrays["mean"], arrays["scale"],
                   float(np.asarray(arrays["intercept"]).reshape(-1)[0]))
