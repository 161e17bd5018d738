"""Team-draft interleaving on the device: two lists merged into one, each click credited to its team.

    rec.pipeline.insert_after("explain", Stage("interleave", InterleaveStage(other_list, seed=7)))
    shown = rec.recommend("alice", k=10)        # r.meta["team"] is "A" (this pipeline) or "B" (other)
    a, b = credit([r.meta["team"] for r in shown], clicked_positions)

Team draft (Radlinski, Kurup and Joachims, CIKM 2008): in each round the
team with fewer picks so far (a fair coin when tied) adds its best item not
yet in the list. Whichever list users prefer gathers more clicks; a device
reports only who won its sessions. An item both lists hold goes to the team
that reaches it first, so its clicks follow where the two lists rank it, not
which list is better; each result's meta says whether it is `shared`, and a
study can count how much of the credit such items carry (docs/experiments.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from edgerec.errors import ConfigError
from edgerec.runtime import checks
from edgerec.runtime.features import DEVICES
from edgerec.runtime.request import Recommendation, Request

TEAMS = ("A", "B")


@dataclass
class Interleaved:
    items: list[str]
    teams: list[str]  # "A" or "B", one per item
    shared: list[bool] = field(default_factory=list)  # per item: both input lists hold it


def team_draft(a: Sequence[str], b: Sequence[str], k: int, rng: np.random.Generator) -> Interleaved:
    """Merge two rankings into at most k items, each credited to the team that picked it."""
    a, b = checks.names(a, "team A's list", allow_none=False), checks.names(b, "team B's list", allow_none=False)
    k = checks.integer(k, "k", 0, checks.MAX_LIST)
    items: list[str] = []
    teams: list[str] = []
    taken: set[str] = set()
    picks = {"A": 0, "B": 0}
    cursor = {"A": 0, "B": 0}
    lists = {"A": list(a), "B": list(b)}
    while len(items) < k:
        if picks["A"] != picks["B"]:
            team = "A" if picks["A"] < picks["B"] else "B"
        else:
            team = "A" if rng.random() < 0.5 else "B"
        own = lists[team]
        while cursor[team] < len(own) and own[cursor[team]] in taken:
            cursor[team] += 1
        if cursor[team] >= len(own):  # this team has run out: the other one fills the list
            team = "B" if team == "A" else "A"
            own = lists[team]
            while cursor[team] < len(own) and own[cursor[team]] in taken:
                cursor[team] += 1
            if cursor[team] >= len(own):
                break
        item = own[cursor[team]]
        items.append(item)
        teams.append(team)
        taken.add(item)
        picks[team] += 1
    both = set(a) & set(b)
    return Interleaved(items, teams, [i in both for i in items])


def credit(teams: Sequence[str], clicked: Sequence[int]) -> tuple[int, int]:
    """Clicks of team A and of team B, from the clicked positions of an interleaved list."""
    teams = checks.values(teams, "teams")
    clicked = [checks.integer(p, "a clicked position", 0, len(teams) - 1) for p in checks.values(clicked, "clicked")]
    if len(set(clicked)) != len(clicked) or any(t not in TEAMS for t in teams):
        raise ConfigError("credit() takes the list's teams ('A' or 'B', one per position) and each clicked "
                          "position once")
    a = sum(1 for p in clicked if teams[p] == "A")
    return a, len(clicked) - a


def winner(a_clicks: int, b_clicks: int) -> str | None:
    """"A", "B", or None for a tie (no clicks, or as many for each)."""
    return "A" if a_clicks > b_clicks else "B" if b_clicks > a_clicks else None


class InterleaveStage:
    """interleave (after explain): this pipeline's list is team A, `other(request)`'s list team B.

    `other` returns B's recommendations for the same request, e.g. another
    bundle's Recommender opened on the same history file, or this bundle
    under another Policy. Each result's meta gets its "team".
    """

    def __init__(self, other: Callable[[Request], list[Recommendation]], seed: int | None = None):
        if not callable(other):
            raise ConfigError(f"InterleaveStage needs a function giving team B's list (got {type(other).__name__}); "
                              "e.g. other_recommender(rec_b)")
        self.other = other
        self.rng = np.random.default_rng(checks.integer(seed, "seed", 0, 2**63, allow_none=True))
        # B may be this very pipeline under another policy: no merging inside B. Per thread: another
        # thread's request meanwhile is merged as usual.
        self._asking = threading.local()

    def __call__(self, request: Request) -> Request:
        if getattr(self._asking, "now", False):
            return request
        self._asking.now = True
        try:
            theirs = {r.item_id: r for r in self.other(request)}
        finally:
            self._asking.now = False
        mine = {r.item_id: r for r in request.results}
        merged = team_draft(list(mine), list(theirs), request.k, self.rng)
        request.results = [replace(mine.get(i) or theirs[i],
                                   meta={**(mine.get(i) or theirs[i]).meta, "team": t, "shared": both})
                           for i, t, both in zip(merged.items, merged.teams, merged.shared)]
        return request


def other_recommender(rec, policy=None) -> Callable[[Request], list[Recommendation]]:
    """Team B from another Recommender (or this one under another policy), asked in the same context.
    Asking this very Recommender is not counted as a request of its own in its stats() (monitor.begin)."""
    def lists(request: Request) -> list[Recommendation]:
        context = {"now": request.now, "hour": request.hour}
        if request.device >= 0:
            context["device"] = DEVICES[request.device]
        return rec.recommend(request.user, request.k, context=context, filters=request.filters, policy=policy)
    return lists
