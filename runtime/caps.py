"""How far down a short list the per-creator / per-genre caps must go to keep k rows (spec §4).

Rows are taken best first; a row whose creator or genre already has its cap among the rows kept so
far is dropped (rows without one are never dropped). The retrieve stage widens the short list until
the caps keep k. A request capped at one item per genre, asking for more items than the catalog has
genres, walks every row, and a Python loop over a million rows took seconds: with one cap the walk is
vectorised (a row is kept when fewer than `cap` rows of its group come before it), with two it skips
the rows already full a block at a time.
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


def within_one_cap(groups: np.ndarray, cap: int, before: np.ndarray | None = None) -> np.ndarray:
    """True for each row kept under one cap: no group, or fewer than `cap` rows of its group before it.

    `before`: each group's count already used up by rows placed ahead of the list (the kept head of mmr)."""
    order = np.argsort(groups, kind="stable")  # each group's rows together, in list order
    ordered = groups[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(groups) else np.zeros(0, np.int64)
    rank = np.empty(len(groups), np.int64)
    rank[order] = np.arange(len(groups)) - np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
    limit = cap if before is None else cap - np.asarray(before)[np.maximum(groups, 0)]
    return (groups < 0) | (rank < limit)


def within_caps(caps: list[tuple[np.ndarray, int]], k: int, block: int = 0,
                before: list[np.ndarray] | None = None) -> np.ndarray:
    """Rows kept under several caps at once, up to the k-th (a dropped row counts toward none, so the walk
    is in order; the rows after the k-th kept one are left False).

    A row whose group is full stays dropped (counts only grow), so each block of rows is first filtered
    at once to the rows still open and only those are walked; when a kept row fills its group and many
    open rows are left in the block, they are filtered again. So two caps that can never fill k no longer
    walk a million rows one by one. Blocks start at 4 k rows (at least 64: a list usually fills within
    them) and double up to 64k rows (`block` > 0 fixes their size). `before`: each cap's counts per group
    used up ahead of the list (as within_one_cap; at least one entry per group)."""
    n = len(caps[0][0])
    kept = np.zeros(n, bool)
    counts = [[0] * (int(groups.max(initial=0)) + 1) for groups, _ in caps] if before is None else [
        np.asarray(b, np.int64).tolist() for b in before]  # lists: read row by row
    total = 0

    def open_rows(lo: int, hi: int) -> tuple[list[int], list[list[int]]]:
        if not total and before is None:  # nothing counted yet: every row is open
            return list(range(lo, hi)), [groups[lo:hi].tolist() for groups, _ in caps]
        ok = np.ones(hi - lo, bool)
        for count, (groups, cap) in zip(counts, caps):
            part = groups[lo:hi]
            ok &= (part < 0) | (np.array(count)[np.maximum(part, 0)] < cap)
        rows = lo + np.flatnonzero(ok)
        return rows.tolist(), [groups[rows].tolist() for groups, _ in caps]

    start, size = 0, block or max(4 * k, 64)
    while start < n:
        stop = min(start + size, n)
        (rows, groups), j = open_rows(start, stop), 0
        while j < len(rows):
            i, row_groups, j = rows[j], [g[j] for g in groups], j + 1
            if any([g >= 0 and count[g] >= cap for g, count, (_, cap) in zip(row_groups, counts, caps)]):
                continue
            kept[i], total, filled = True, total + 1, False
            if total == k:
                return kept
            for g, count, (_, cap) in zip(row_groups, counts, caps):
                if g >= 0:
                    count[g] += 1
                    filled |= bool(count[g] == cap)
            if filled and len(rows) - j > 64:  # many rows left that may now be full: filter them at once
                (rows, groups), j = open_rows(i + 1, stop), 0
        start, size = stop, size if block else min(2 * size, 65_536)
    return kept
