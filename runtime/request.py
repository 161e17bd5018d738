"""The records that flow through a recommend() call: the request, the user's state, the results.

A `Request` starts with what the app asked (user, k, context, filters,
policy) and the catalog snapshot it reads; each stage fills a few more fields
(see stages.py for which stage writes what). Stages pass this one record,
never chains of positional values.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from edgerec.errors import ConfigError
from edgerec.runtime import checks
from edgerec.runtime.explain import Reason
from edgerec.runtime.features import DEVICES
from edgerec.runtime.policies import Filters, Policy


@dataclass
class Recommendation:
    item_id: str
    score: float
    title: str
    reason: Reason
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"item_id": self.item_id, "score": self.score, "title": self.title,
                "reason": self.reason.to_dict(), "meta": self.meta}


@dataclass
class UserState:
    """What the history says about a user, as catalog rows of the request's snapshot."""

    consumed: list[int]  # first consumption order
    excluded: set[int]  # never recommend again: consumed, skipped, not interested
    liked: list[int]  # "more like this", newest last
    disliked: list[int]  # "not interested"
    tags: Counter
    languages: Counter
    loved: list[int] = field(default_factory=list)  # rows with a `like` event, newest last
    finished: list[int] = field(default_factory=list)  # rows played to the end, newest last
    choices: dict[str, list[str]] = field(default_factory=dict)  # onboarding: "genre", "tag", "language"


@dataclass
class Request:
    """One recommend() call. Fields below the first group are filled by the stages, in order."""

    user: str
    k: int
    now: float  # epoch seconds
    hour: float  # local hour of day, 0-24
    device: int  # index into DEVICES, -1 when unknown
    filters: Filters | None
    policy: Policy
    catalog: object  # the ItemCatalog snapshot every stage of this request reads
    # history, encode
    state: UserState | None = None
    vector: np.ndarray | None = None  # the user encoder's output (None: nothing to encode, or it failed)
    encoded: bool = False  # the vector is final: from the cache, from encode, or nothing to encode
    entry: object = None  # the user's cache entry (encode stores the vector in it)
    fallback: str | None = None  # set when the list falls back to popularity: why, in the user's words
    # retrieve
    query: np.ndarray | None = None  # what items are scored against: the user vector pulled towards likes
    cold: bool = True  # no query: popularity, onboarding choices and tags decide
    spread: bool = False  # the creator cap is a newcomer's spread (cold_spread.py): it never shortens the list
    tiers: np.ndarray | None = None  # per row: 1 if its newcomer score holds an onboarding term (§4; None: 0)
    pool: np.ndarray | None = None  # candidate rows, best first
    pool_scores: np.ndarray | None = None  # their retrieval scores
    pool_cut: bool = False  # candidates that pass the filters were left out of the pool (a wider one has more)
    unretrieved: Request | None = None  # a copy of the request as retrieve got it (to run it on a wider pool)
    scores: np.ndarray | None = None  # every row's score, when retrieval needed them all
    # replay (runtime/replay.py): favourites appended to the pool
    replay: np.ndarray | None = None  # the replay term per pool position (0 for the rest)
    replay_plays: dict = field(default_factory=dict)  # row -> plays, for the rows the replay added
    # rank, ranker, policies
    vectors: np.ndarray | None = None  # the pool's item vectors
    relevance: np.ndarray | None = None  # one value per pool row, higher is better
    order: np.ndarray | None = None  # positions into the pool: the list, best first
    head: np.ndarray | None = None  # positions the list keeps first (Policy.keep_top), in their order
    scorer_features: np.ndarray | None = None  # (pool, features): what the interpretable scorer read
    scorer: object = None  # the LinearScorer behind them (names, words)
    # explain
    results: list[Recommendation] = field(default_factory=list)
    # bookkeeping
    top_scores: tuple | None = None  # drift.DriftSample: raw top-1 and top-k scores and the user, for the drift monitor
    counts: Counter = field(default_factory=Counter)  # counters the stages raise (added to stats())
    done: bool = False  # the list is decided (e.g. no candidates): later stages are not run

    def __copy__(self) -> Request:
        """A shallow copy (an optional stage runs on one): the fields as they are, without the copy
        module's generic protocol, which costs several times more per request."""
        new = object.__new__(Request)
        new.__dict__.update(self.__dict__)
        return new

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def for_user(self, name: str, build):
        """A value derived from the user's state, built once per state: kept in the user's cache
        entry, which a new event or a catalog change replaces (built anew without an entry)."""
        kept = getattr(self.entry, "derived", None)
        if kept is None:
            return build()
        if name not in kept:
            kept[name] = build()
        return kept[name]


CONTEXT_KEYS = ("now", "hour", "device")


def parse_context(context: dict | None) -> tuple[float, float, int]:
    """(now, hour of day, device code) of a request's context."""
    raw = context if isinstance(context, dict) else {}
    # the numbers before the JSON check, which would call a NaN or an infinity "not JSON"
    now = checks.timestamp(raw.get("now", time.time()), "context 'now'", allow_none=False)
    local = time.localtime(now)
    hour = checks.number(raw.get("hour", local.tm_hour + local.tm_min / 60), "context 'hour'", 0.0, 24.0)
    context = checks.json_object(context, "context") or {}
    unknown = sorted(set(context) - set(CONTEXT_KEYS))
    if unknown:  # a misspelt key ("Device") would be ignored: a list for another context, without a word
        raise ConfigError(f"unknown context key {checks.shown(unknown)}; a request's context takes "
                          f"{', '.join(CONTEXT_KEYS)} (record() keeps any keys with the event)")
    device = context.get("device")
    code = DEVICES.index(device) if isinstance(device, str) and device in DEVICES else -1
    if device is not None and code < 0:
        raise ConfigError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    return now, hour, code
