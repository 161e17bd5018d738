"""Ranker features: one definition, used to train the ranker on the host and to run it on the device.

For each candidate item of a user at a moment: the user and item vectors'
elementwise product and cosine, the context (hour of day, device type), the
item's modality, length, popularity and age, and how it relates to the
user's history (share of the history in its language, by its creator; whether
it is the next episode of a series the user is watching). numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgerec.runtime.vocab import DEVICES, MODALITIES  # noqa: F401  (MODALITIES re-exported)

VERSION = 1
EXTRA = 2 + len(DEVICES) + len(MODALITIES) + 8  # features besides the vector product
COUNT_LIMIT = 1024  # codes below it are counted in one array; larger ones are sorted


_ONE_HOT = np.eye(len(MODALITIES) + 1, len(MODALITIES), dtype=np.float32)  # by modality code, then -1: none
_ONE_HOT.flags.writeable = False


def feature_count(dim: int) -> int:
    return dim + 1 + EXTRA


@dataclass
class ItemTable:
    """Per-item integer/float attributes the features need (aligned with the item table rows)."""

    modality: np.ndarray  # int, index into MODALITIES, -1 unknown
    duration: np.ndarray  # seconds
    popularity: np.ndarray  # training consumptions
    release_ts: np.ndarray  # epoch seconds, 0 unknown
    language: np.ndarray  # int code, -1 unknown
    creator: np.ndarray  # int code, -1 unknown
    series: np.ndarray  # int code, -1 not in a series
    episode: np.ndarray  # int, 0 not an episode

    def __post_init__(self):
        self.log_pop_max = float(np.log1p(self.popularity.max())) if len(self.popularity) else 1.0


ITEM_FEATURES = ("length", "popularity", "age", "language match", "creator match", "series you watch",
                 "next episode")  # the ranker's per-item block, in its column order (the scorer reuses it)


def ranker_features(user: np.ndarray, items: np.ndarray, candidates: np.ndarray, table: ItemTable,
                    history: np.ndarray, hour: float, device: int, now: int,
                    side: HistorySide | None = None) -> np.ndarray:
    """(C, F) float32 features of `candidates` (item indices) for one user.

    user: (D,) user vector; items: (C, D) candidate vectors; history: item
    indices consumed so far, oldest first; device: index into DEVICES or -1;
    side: history_side(table, history) when the caller keeps it between requests.
    """
    c = len(candidates)
    out = np.zeros((c, feature_count(user.shape[0])), np.float32)
    d = user.shape[0]
    np.multiply(items, user[None, :], out=out[:, :d], casting="unsafe")  # as an assignment, without a temporary
    out[:, d] = items @ user
    col = d + 1
    angle = 2 * np.pi * (hour % 24) / 24
    out[:, col], out[:, col + 1] = np.sin(angle), np.cos(angle)
    col += 2
    if 0 <= device < len(DEVICES):
        out[:, col + device] = 1.0
    col += len(DEVICES)
    out[:, col:col + len(MODALITIES)] = _ONE_HOT[table.modality[candidates]]  # code -1 reads a row of zeros
    col += len(MODALITIES)
    out[:, col:col + len(ITEM_FEATURES)] = item_features(table, candidates, history, now, side)
    out[:, col + len(ITEM_FEATURES)] = 1.0  # bias input, so cross layers can form linear terms
    return out


@dataclass
class Shares:
    """How often each code occurs in a pool of codes (unknown ones, -1, left out), to read the
    share of many values at once: one count per code when the codes are small, else sorted."""

    size: int
    counts: np.ndarray | None = None  # small codes: count per code, then a 0 read by -1 and codes above
    codes: np.ndarray | None = None  # large codes: the distinct codes, sorted, and their counts
    code_counts: np.ndarray | None = None

    @classmethod
    def of(cls, pool: np.ndarray) -> Shares:
        pool = pool[pool >= 0]
        if len(pool) == 0:
            return cls(0)
        top = int(pool.max())
        if top < COUNT_LIMIT:
            return cls(len(pool), counts=np.bincount(pool, minlength=top + 2))
        codes, counts = np.unique(pool, return_counts=True)
        return cls(len(pool), codes=codes, code_counts=counts)

    def share(self, values: np.ndarray) -> np.ndarray:
        """For each value, the fraction of the pool equal to it (float32; unknown values get 0)."""
        if self.size == 0:
            return np.zeros(len(values), np.float32)
        if self.counts is not None:
            return (self.counts[np.minimum(values, len(self.counts) - 1)] / self.size).astype(np.float32)
        pos = np.clip(np.searchsorted(self.codes, values), 0, len(self.codes) - 1)
        hit = (self.codes[pos] == values) & (values >= 0)
        return np.where(hit, self.code_counts[pos] / self.size, 0.0).astype(np.float32)


@dataclass
class HistorySide:
    """The history's part of the item features (its languages, recent creators, series watched),
    read once per history: a device keeps it until the user's next event."""

    language: Shares
    creator: Shares
    shows: np.ndarray  # series watched, sorted, each with the latest episode watched (below)
    episodes: np.ndarray


def history_side(table: ItemTable, history: np.ndarray) -> HistorySide:
    if not len(history):
        return HistorySide(Shares(0), Shares(0), np.zeros(0, np.int64), np.zeros(0, np.int64))
    series = table.series[history]
    watched = series >= 0
    shows, episodes = series[:0], np.zeros(0, np.int64)
    if watched.any():  # (no episode of a series in the history: no episode is read)
        shows, episodes = series[watched], table.episode[history][watched].astype(np.int64)
        order = np.lexsort((episodes, shows))  # by (series, episode): a series' last entry holds its latest episode
        shows, episodes = shows[order], episodes[order]
    return HistorySide(Shares.of(table.language[history]), Shares.of(table.creator[history[-20:]]), shows, episodes)


def item_features(table: ItemTable, candidates: np.ndarray, history: np.ndarray, now: int,
                  side: HistorySide | None = None) -> np.ndarray:
    """(C, len(ITEM_FEATURES)) float32: each candidate's length, popularity and age, and how it relates
    to the history (through `side`, history_side(table, history), read here when not given)."""
    c = len(candidates)
    out = np.zeros((c, len(ITEM_FEATURES)), np.float32)
    out[:, 0] = np.log1p(table.duration[candidates] / 60.0) / 5.0
    out[:, 1] = np.log1p(table.popularity[candidates]) / max(table.log_pop_max, 1e-6)
    release = table.release_ts[candidates]
    age = np.log1p(np.maximum(now - release, 0) / 86_400.0) / 7.0
    age[release == 0] = 0.0  # release unknown (before 1970 is a date: MovieLens has films of the 1920s)
    out[:, 2] = age
    if not len(history):
        return out
    side = history_side(table, history) if side is None else side
    # a part of the history with no value (no language, creator or series known) leaves its columns 0:
    # their candidates' columns are not read
    if side.language.size:
        out[:, 3] = side.language.share(table.language[candidates])
    if side.creator.size:
        out[:, 4] = side.creator.share(table.creator[candidates])
    if len(side.shows):
        in_watched, next_ep = _series_position(table.series[candidates], side.shows, side.episodes)
        out[:, 5] = in_watched
        out[:, 6] = in_watched & (table.episode[candidates] == next_ep)
    return out


def _series_position(cand_series: np.ndarray, shows: np.ndarray,
                     episodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each candidate: is it in a series the history watched, and that series' next episode (0 if not).
    shows, episodes: the history's watched series sorted by (series, episode), as in HistorySide."""
    if not len(shows) or cand_series.max(initial=-1) < 0:  # no series on one side: nothing to continue
        return np.zeros(len(cand_series), bool), np.zeros(len(cand_series), np.int64)
    last = np.searchsorted(shows, cand_series, "right") - 1  # -1 (before every series) is masked below
    hit = (last >= 0) & (shows[last] == cand_series) & (cand_series >= 0)
    return hit, np.where(hit, episodes[last] + 1, 0)
