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
BROADCAST_LIMIT = 1 << 16  # candidates x history pairs compared at once (a short list by a history)
COUNT_LIMIT = 1024  # codes below it are counted in one array (cheaper than comparing pairs)


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
                    history: np.ndarray, hour: float, device: int, now: int) -> np.ndarray:
    """(C, F) float32 features of `candidates` (item indices) for one user.

    user: (D,) user vector; items: (C, D) candidate vectors; history: item
    indices consumed so far, oldest first; device: index into DEVICES or -1.
    """
    c = len(candidates)
    out = np.zeros((c, feature_count(user.shape[0])), np.float32)
    d = user.shape[0]
    out[:, :d] = items * user[None, :]
    out[:, d] = items @ user
    col = d + 1
    angle = 2 * np.pi * (hour % 24) / 24
    out[:, col], out[:, col + 1] = np.sin(angle), np.cos(angle)
    col += 2
    if 0 <= device < len(DEVICES):
        out[:, col + device] = 1.0
    col += len(DEVICES)
    modality = table.modality[candidates]
    known = modality >= 0
    out[np.flatnonzero(known), col + modality[known]] = 1.0
    col += len(MODALITIES)
    out[:, col:col + len(ITEM_FEATURES)] = item_features(table, candidates, history, now)
    out[:, col + len(ITEM_FEATURES)] = 1.0  # bias input, so cross layers can form linear terms
    return out


def item_features(table: ItemTable, candidates: np.ndarray, history: np.ndarray, now: int) -> np.ndarray:
    """(C, len(ITEM_FEATURES)) float32: each candidate's length, popularity and age, and how it relates
    to the history. Each attribute is read once for candidates and history together (on the device a
    read goes through the catalog's memory-mapped columns, so reads, not arithmetic, cost the most)."""
    c = len(candidates)
    out = np.zeros((c, len(ITEM_FEATURES)), np.float32)
    out[:, 0] = np.log1p(table.duration[candidates] / 60.0) / 5.0
    out[:, 1] = np.log1p(table.popularity[candidates]) / max(table.log_pop_max, 1e-6)
    release = table.release_ts[candidates]
    age = np.log1p(np.maximum(now - release, 0) / 86_400.0) / 7.0
    age[release <= 0] = 0.0  # release unknown
    out[:, 2] = age
    if not len(history):
        return out
    both = np.concatenate([candidates, history])
    language, series, episode = table.language[both], table.series[both], table.episode[both]
    creator = table.creator[np.concatenate([candidates, history[-20:]])]
    out[:, 3] = share_in(language[:c], language[c:])
    out[:, 4] = share_in(creator[:c], creator[c:])
    in_watched, next_ep = _series_position(series[:c], series[c:], episode[c:])
    out[:, 5] = in_watched
    out[:, 6] = in_watched & (episode[:c] == next_ep)
    return out


def _series_position(cand_series: np.ndarray, hist_series: np.ndarray,
                     hist_episode: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each candidate: is it in a series the history watched, and that series' next episode (0 if not)."""
    watched = hist_series >= 0
    shows, episodes = hist_series[watched], hist_episode[watched].astype(np.int64)
    if not len(shows) or cand_series.max(initial=-1) < 0:  # no series on one side: nothing to continue
        return np.zeros(len(cand_series), bool), np.zeros(len(cand_series), np.int64)
    # history sorted by (series, episode): the last entry of a series holds its latest episode
    order = np.lexsort((episodes, shows))
    shows, episodes = shows[order], episodes[order]
    last = np.searchsorted(shows, cand_series, "right") - 1  # -1 (before every series) is masked below
    hit = (last >= 0) & (shows[last] == cand_series) & (cand_series >= 0)
    return hit, np.where(hit, episodes[last] + 1, 0)


def share_in(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """For each value, the fraction of `pool` equal to it; unknown values (-1) get 0."""
    pool = pool[pool >= 0]
    if len(pool) == 0:
        return np.zeros(len(values), np.float32)
    top = int(pool.max())
    if top < COUNT_LIMIT:  # small codes (languages, most creators): one count per code
        counts = np.bincount(pool, minlength=top + 2)  # its last entry, 0, is read by -1 and codes above top
        return (counts[np.minimum(values, top + 1)] / len(pool)).astype(np.float32)
    if len(values) * len(pool) <= BROADCAST_LIMIT:  # a short list: one comparison matrix is cheapest
        return (np.add.reduce(values[:, None] == pool[None, :], 1) / len(pool)).astype(np.float32)
    uniq, counts = np.unique(pool, return_counts=True)
    pos = np.clip(np.searchsorted(uniq, values), 0, len(uniq) - 1)
    hit = (uniq[pos] == values) & (values >= 0)
    return np.where(hit, counts[pos] / len(pool), 0.0).astype(np.float32)
