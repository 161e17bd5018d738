"""How far down a short list the per-creator / per-genre caps must go to keep k rows (spec §4).

Rows are taken best first; a row whose creator or genre already has its cap among the rows kept so
far is dropped (rows without one are never dropped). The retrieve stage widens the short list until
the caps keep k. With one cap the walk is vectorised (a row is kept when fewer than `cap` rows of its
group come before it): a request capped at one item per genre, asking for more items than the
catalog has genres, walks every row, and a Python loop over a million rows took seconds.
"""

from __future__ import annotations

import numpy as np


def capped_reach(cat, rows: np.ndarray, policy, k: int, spread: bool = False) -> tuple[int, int]:
    """(how many of `rows`, best first, the caps keep, stopping at k; how many rows that took).

    `spread`: the creator cap is a newcomer's spread (cold_spread.py), which passes items over and never
    drops one, so it does not widen the short list (on a catalog of few creators it walked every row)."""
    creator_cap = None if spread else policy.max_per_creator
    caps = [(cat.code_column(name)[rows], cap) for name, cap in (("creator", creator_cap),
                                                                 ("genre", policy.max_per_genre)) if cap]
    if not caps or not len(rows):
        return min(k, len(rows)), min(k, len(rows))
    count = np.cumsum(within_one_cap(*caps[0]) if len(caps) == 1 else within_caps(caps, k))
    if count[-1] < k:
        return int(count[-1]), len(rows)
    return k, int(np.searchsorted(count, k)) + 1


def within_one_cap(groups: np.ndarray, cap: int) -> np.ndarray:
    """True for each row kept under one cap: no group, or fewer than `cap` rows of its group before it."""
    order = np.argsort(groups, kind="stable")  # each group's rows together, in list order
    ordered = groups[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(groups) else np.zeros(0, np.int64)
    rank = np.empty(len(groups), np.int64)
    rank[order] = np.arange(len(groups)) - np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
    return (groups < 0) | (rank < cap)


def within_caps(caps: list[tuple[np.ndarray, int]], k: int) -> np.ndarray:
    """Rows kept under several caps at once, up to the k-th (a dropped row counts toward none, so the walk
    is in order; the rows after the k-th kept one are left False)."""
    n = len(caps[0][0])
    kept = np.zeros(n, bool)
    counts, total = [{} for _ in caps], 0
    for i in range(n):
        if total == k:
            break
        if any(groups[i] >= 0 and seen.get(groups[i], 0) >= cap for seen, (groups, cap) in zip(counts, caps)):
            continue
        for seen, (groups, _) in zip(counts, caps):
            if groups[i] >= 0:
                seen[groups[i]] = seen.get(groups[i], 0) + 1
        kept[i] = True
        total += 1
    return kept
