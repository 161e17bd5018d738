"""The "replay" stage: played favourites that come back into the list (Policy.replay; spec §5 Replays).

The seen filter (§2) keeps every played item out of the list, which is right for a film and wrong
for a song: most listening is replays of the listener's own favourites. With a replay weight above
0 a plain request (a user vector, a history of at least cold_start_items) adds to its short list
the user's favourites: items with at least `replay_min_plays` plays in the history window, never
skipped, refused or asked "more like", not cooling down (among the newest `replay_gap` plays, or
played within `replay_minutes` of the request, before or after it: a play dated further ahead is a
device clock set back since, not a recent play), not a video, not removed, passing the filters. The policies stage
then adds `replay x strength / max strength` to their relevance, where strength is the item's plays
weighted by recency (halved every HALF_LIFE plays): the classic baseline of repeat consumption.
"""

from __future__ import annotations

import numpy as np

from edgerec.runtime.explain import Reason
from edgerec.runtime.policies import filter_mask
from edgerec.runtime.request import Request
from edgerec.runtime.vocab import DEVICE_EVENTS, NEVER_REPLAYED, VIDEO_MODALITIES

HALF_LIFE = 100.0  # plays after which a play counts half
CANDIDATES = 50  # favourites at most that join a short list
_PLAY = DEVICE_EVENTS.index("play")
_NEVER = [DEVICE_EVENTS.index(e) for e in NEVER_REPLAYED]


def favourite_table(rows: np.ndarray, codes: np.ndarray, times: np.ndarray, min_plays: int) -> tuple:
    """The favourites of a history window (catalog rows, -1 unknown; event codes; times; oldest first)
    from its `play` events (a listen starts with one; its finish and like are the same listen):
    (rows ascending, strength, plays, plays newer than the item's newest play, that play's time).
    Items with a skip, not_interested or more_like_this event in the window are left out."""
    known = rows >= 0
    rows, codes, times = rows[known], codes[known], times[known]
    played = codes == _PLAY
    p_rows, p_times = rows[played], times[played]
    age = np.arange(len(p_rows))[::-1]  # plays newer than each
    items, inverse = np.unique(p_rows, return_inverse=True)
    strength = np.bincount(inverse, 0.5 ** (age / HALF_LIFE), len(items))
    plays = np.bincount(inverse, minlength=len(items)).astype(np.int64)
    newest_age = np.full(len(items), len(p_rows), np.int64)
    np.minimum.at(newest_age, inverse, age)
    newest_time = np.full(len(items), -np.inf)
    np.maximum.at(newest_time, inverse, p_times)
    keep = (plays >= min_plays) & ~np.isin(items, rows[np.isin(codes, _NEVER)])
    return items[keep], strength[keep], plays[keep], newest_age[keep], newest_time[keep]


def recent_plays(window, now: float, policy) -> np.ndarray:
    """Rows played within replay_minutes of `now`, either side: only a play that close to the request cools
    down; one dated further ahead was recorded before the device clock went back (an RTC reset kept every
    favourite cooling down for as long as the clock was set back)."""
    span = 60.0 * policy.replay_minutes
    times = window.times
    return window.rows[(window.codes == _PLAY) & (times > now - span) & (times <= now + span)]


def replay_applies(request: Request) -> bool:
    """A replay weight above 0 and a plain request: a user vector and a history of cold_start_items."""
    policy = request.policy
    return (bool(policy.replay) and not request.cold and request.query is not None and request.fallback is None
            and len(request.state.consumed) >= policy.cold_start_items
            and getattr(request.entry, "window", None) is not None)


def replay_stage(request: Request) -> Request:
    """Append the favourites that may come back to the short list (best strength first, at most
    CANDIDATES) and keep their term for the policies stage."""
    cat, policy, window = request.catalog, request.policy, request.entry.window
    # one table a user state, of every played item: a table per replay_min_plays grew without bound
    items, strength, plays, newest_age, _ = request.for_user(
        "favourites", lambda: favourite_table(window.rows, window.codes, window.times, 1))
    keep = (plays >= policy.replay_min_plays) & (newest_age >= policy.replay_gap)
    keep &= ~np.isin(items, recent_plays(window, request.now, policy))
    keep &= ~np.isin(items, cat.inactive_rows()) & ~np.isin(items, request.pool)
    if "modality" in cat.categorical and keep.any():
        keep[keep] = ~cat.matches("modality", items[keep], VIDEO_MODALITIES)  # watched once is enough
    if request.filters is not None and keep.any():
        keep[keep] = filter_mask(cat, items[keep], request.filters)
    items, strength, plays = items[keep], strength[keep], plays[keep]
    order = np.lexsort((items, -strength))[:CANDIDATES]  # strongest first, ties to the lower row
    if not len(order):
        return request
    rows, strength = items[order], strength[order]
    term = policy.replay * strength / strength.max()
    request.replay = np.r_[np.zeros(len(request.pool)), term]
    request.replay_plays = dict(zip(rows.tolist(), plays[order].tolist()))
    request.pool_scores = np.r_[request.pool_scores, cat.vectors(rows) @ request.query].astype(np.float32)
    request.pool = np.r_[request.pool, rows].astype(np.int64)
    request.count("replay_candidates", len(rows))
    return request


def replay_reasons(request: Request, rows: np.ndarray, reasons: list[Reason]) -> list[Reason]:
    """A favourite the replay brought back is explained as such (naming itself), with its tags."""
    plays = request.replay_plays
    if not plays:
        return reasons
    return [Reason("replay", f"one of your favourites: played {plays[row]} times lately",
                   request.catalog.item_id(row), reason.tags) if row in plays else reason
            for row, reason in zip(rows.tolist(), reasons)]
