"""The order of a list (spec §5): the kept head, MMR diversity and the per-creator/genre caps, the
newcomer spread's passing over (cold_spread.py). numpy only."""

from __future__ import annotations

import heapq

import numpy as np

from edgerec.runtime.caps import within_caps, within_one_cap
from edgerec.runtime.policies import Policy, standardize


def mmr(scores: np.ndarray, vectors: np.ndarray, k: int, weight: float, creators: np.ndarray | None = None,
        genres: np.ndarray | None = None, max_per_creator: int | None = None,
        max_per_genre: int | None = None, keep: np.ndarray | None = None,
        tiers: np.ndarray | None = None) -> np.ndarray:
    """Greedy maximal marginal relevance with optional caps; returns positions into the short list.

    keep: positions placed first, in their order, whatever their scores (Policy.keep_top); the rest
    is chosen after them, their vectors and creators/genres counting for diversity and the caps.
    tiers (a newcomer's spread, see cold_spread.py): the creator cap passes rows over instead of dropping
    them: a row whose creator has its cap comes after the rows of its tier (and of higher tiers) whose
    creator has not, so the list spreads over creators without shortening or leaving the chosen tier."""
    n = len(scores)
    keep = np.zeros(0, np.int64) if keep is None else np.asarray(keep, np.int64)[:k]
    if weight <= 0 and not max_per_creator and not max_per_genre:  # no re-ranking asked: the k best
        best = best_first(scores)
        if len(keep):
            best = np.r_[keep, best[~np.isin(best, keep)]]
        return best[:k]
    relevance = standardize(scores.astype(np.float64))
    if weight <= 0:  # no diversity: a row's value never changes, so the picks walk the best-first order
        return capped_walk((1 - weight) * relevance, np.isfinite(relevance), k, keep, creators, genres,
                           max_per_creator, max_per_genre, tiers)
    base = (1 - weight) * relevance  # once: the same values each pick compared
    chosen: list[int] = []
    max_sim = np.full(n, 0.0)
    per_creator: dict = {}
    per_genre: dict = {}
    over = np.zeros(n, bool)  # with tiers: rows whose creator has its cap (passed over, not dropped)
    available = np.isfinite(relevance)
    rows_of = creator_rows(group_codes(creators)) if tiers is not None and creators is not None else None

    def take(best: int) -> None:
        chosen.append(best)
        if creators is not None:
            creator = creators[best]
            per_creator[creator] = per_creator.get(creator, 0) + 1
            if tiers is not None and creator and per_creator[creator] >= max_per_creator:
                over[rows_of(best)] = True  # the creator's rows, found once (a compare over the pool per take)
        if genres is not None:
            per_genre[genres[best]] = per_genre.get(genres[best], 0) + 1
        np.maximum(max_sim, vectors @ vectors[best], out=max_sim)

    def genre_full(best: int) -> bool:
        return bool(max_per_genre and genres is not None and genres[best]
                    and per_genre.get(genres[best], 0) >= max_per_genre)

    for best in keep.tolist():  # the kept head: counted as chosen, never capped
        available[best] = False
        take(best)
    live = np.flatnonzero(available)  # the rows still available, in order: each pick reads only these
    while len(chosen) < k and len(live):
        # similarity in units of its spread over the items still available, as relevance is in its own: a
        # fixed 3 x the dot product hardly moved lists in spaces whose items sit close together
        # (MovieLens-100K: 3.86 -> 3.89 genres in the top 10 at diversity 0.5)
        value = base[live] - weight * standardize(max_sim[live])
        at = int(np.argmax(value)) if tiers is None else spread_pick(value, over[live], tiers[live])
        best, live = int(live[at]), np.delete(live, at)
        if tiers is None and max_per_creator and creators is not None and creators[best] and per_creator.get(creators[best], 0) >= max_per_creator:
            continue
        if not genre_full(best):
            take(best)
    return np.asarray(chosen, np.int64)


def capped_walk(value: np.ndarray, finite: np.ndarray, k: int, keep: np.ndarray, creators, genres,
                max_per_creator: int | None, max_per_genre: int | None, tiers: np.ndarray | None) -> np.ndarray:
    """mmr without diversity: the list its loop of picks gives, in one walk down the best-first order
    (ties: the first row), the caps applied as in caps.py. A pick used to pass over every row, and rows the
    caps drop cost a pick each: one per genre over 100k rows, more items than genres, took 23 s."""
    rows = np.flatnonzero(finite)
    order = rows[np.argsort(-value[rows], kind="stable")]
    order, room = order[~np.isin(order, keep)], max(k - len(keep), 0)
    creator = group_codes(creators) if max_per_creator and creators is not None else None
    genre = group_codes(genres) if max_per_genre and genres is not None else None
    if tiers is not None and creator is not None:
        rest = spread_walk(order, room, keep, creator, max_per_creator, genre, max_per_genre, tiers)
        return np.asarray(keep.tolist() + rest, np.int64)
    caps = [(codes, cap) for codes, cap in ((None if tiers is not None else creator, max_per_creator),
                                            (genre, max_per_genre)) if codes is not None]
    if caps and room:  # counts the kept head already used up, then the rows each cap keeps, up to `room`
        before = [np.bincount(codes[keep][codes[keep] >= 0], minlength=codes.max(initial=-1) + 2)
                  for codes, _ in caps]
        ordered = [(codes[order], cap) for codes, cap in caps]
        order = order[within_one_cap(*ordered[0], before[0]) if len(caps) == 1 else
                      within_caps(ordered, room, before=before)]
    return np.r_[keep, order[:room]].astype(np.int64)


def spread_walk(order: np.ndarray, room: int, keep: np.ndarray, creators: np.ndarray, cap: int,
                genres: np.ndarray | None, genre_cap: int | None, tiers: np.ndarray) -> list[int]:
    """The newcomer spread without diversity (codes: group_codes), the rows spread_pick's loop would pick
    after `keep`: the best free row from a pointer down `order`, the best passed-over row of each tier from
    a heap of positions in `order`, filled once per creator as it reaches its cap. A pick used to run
    spread_pick over the pool and each take a compare over it: k=10000 over 100k rows took 12 s."""
    position = np.empty(len(creators), np.int64)
    position[order] = np.arange(len(order))
    available, over = np.zeros(len(creators), bool), np.zeros(len(creators), bool)
    available[order] = True
    rows_of, left = creator_rows(creators), len(order)
    heaps: dict = {t: [] for t in np.unique(tiers[order]).tolist()}
    per_creator, per_genre = np.zeros(len(creators) + 1, np.int64), np.zeros(len(creators) + 1, np.int64)
    picked: list[int] = []

    def count(row: int) -> None:
        if genres is not None and genres[row] >= 0:
            per_genre[genres[row]] += 1
        creator = creators[row]
        if creator >= 0:
            per_creator[creator] += 1
            if per_creator[creator] >= cap and not over[row]:  # now passed over: its open rows into the heaps
                rows = rows_of(row)
                over[rows] = True
                for r in rows[available[rows]].tolist():
                    heapq.heappush(heaps[int(tiers[r])], int(position[r]))

    for row in keep.tolist():
        count(row)
    free = 0
    while len(picked) < room and left:
        while free < len(order) and (not available[order[free]] or over[order[free]]):
            free += 1  # a row once taken or passed over stays so: the pointer only moves on
        floor = int(tiers[order[free]]) if free < len(order) else None
        best = None  # the best passed-over row of a higher tier than the best free row (of any, if none)
        for tier, heap in heaps.items():
            while heap and not available[order[heap[0]]]:
                heapq.heappop(heap)
            if heap and (floor is None or tier > floor) and (best is None or heap[0] < best):
                best = heap[0]
        row = int(order[free if best is None else best])
        available[row], left = False, left - 1
        if genres is not None and genres[row] >= 0 and per_genre[genres[row]] >= genre_cap:
            continue  # dropped by the genre cap (it still stood for its tier while it was the best free row)
        picked.append(row)
        count(row)
    return picked


def group_codes(values) -> np.ndarray:
    """A cap's groups (creators, genres) as integer codes, -1 for a row without one (a falsy value)."""
    values = np.asarray(values)
    try:
        uniques, inverse = np.unique(values, return_inverse=True)
    except TypeError:  # mixed types in an object column do not sort: number them as met
        code_of: dict = {}
        inverse = np.array([code_of.setdefault(v, len(code_of)) for v in values.tolist()], np.int64)
        uniques = list(code_of)
    named = np.array([bool(v) for v in uniques], bool)
    inverse = np.asarray(inverse, np.int64).reshape(-1)
    return np.where(named[inverse], inverse, -1) if len(inverse) else inverse


def creator_rows(codes: np.ndarray):
    """row -> the rows of its creator (codes: group_codes), grouped once."""
    by_code = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[by_code], np.arange(codes.max(initial=-1) + 2))
    return lambda row: by_code[bounds[codes[row]]:bounds[codes[row] + 1]]


def spread_pick(value: np.ndarray, over: np.ndarray, tiers: np.ndarray) -> int:
    """The newcomer spread's next row (value -inf: not available): the first best row whose creator is
    not at its cap, unless a row that is has a higher tier: then the first best of those rows."""
    free = np.where(over, -np.inf, value)
    best = int(np.argmax(free))
    higher = over & np.isfinite(value)
    if np.isfinite(free[best]):
        higher &= tiers > tiers[best]
    return int(np.argmax(np.where(higher, value, -np.inf))) if higher.any() else best


def policy_order(relevance: np.ndarray, vectors: np.ndarray, k: int, policy: Policy, catalog,
                 pool: np.ndarray, keep: np.ndarray | None = None, tiers: np.ndarray | None = None) -> np.ndarray:
    """The list as positions into the short list: `keep` first, then `policy`'s MMR diversity and
    per-creator/genre caps (tiers: see mmr)."""
    return mmr(relevance, vectors, k, policy.diversity or 0.0,
               catalog.column("creator", pool) if policy.max_per_creator else None,
               catalog.column("genre", pool) if policy.max_per_genre else None,
               policy.max_per_creator, policy.max_per_genre, keep, tiers)


def kept_head(relevance: np.ndarray, policy: Policy, k: int) -> np.ndarray | None:
    """Positions of the `policy.keep_top` (at most k) best of `relevance`, best first (stable), or None.

    The levers that spread lists over the catalog (freshness, popularity, hub penalty, diversity)
    cost accuracy most at the top of a list, where most hits are; keeping the first places in the
    model's order spends them on the lower places only."""
    count = min(policy.keep_top, k)
    return best_first(relevance)[:count] if count > 0 else None


def best_first(scores: np.ndarray) -> np.ndarray:
    """Positions of the finite scores, best first; ties keep their order."""
    finite = np.flatnonzero(np.isfinite(scores))
    return finite[np.argsort(-scores[finite], kind="stable")]
