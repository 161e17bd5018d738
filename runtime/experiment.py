"""The device's part of an experiment: stable arm assignment, exploration with logged propensities,
and the aggregate outcome counts that are all a device reports.

    arm = assign(device_key, "ranker-v2", ("control", "treatment"))
    log = explore(rec, temperature=2.0)          # Plackett-Luce sampling of the short list
    rec.recommend("alice", k=10)
    shown = log.pop()                            # items and each position's probability
    counts = OutcomeCounts(); counts.add("play")
    pre = pre_period(rec.history, "alice", begin=start - 14 * DAY, end=start)  # runtime/pre_period.py
    PrivateReporter(rec).experiment("ranker-v2", arm, {**counts.counts, **pre}, bounds, epsilon=2.0)

Assignment is a keyed hash (HMAC-SHA256) of the experiment name under a
secret key that never leaves the device, so a user stays in one arm for the
life of the experiment and no server learns who is in which arm beyond the
counts each device sends. What an A/B test or an interleaving reports is the
arm id and sums of outcomes, nothing per item or per event, and only through
`PrivateReporter.experiment` (clipped sums with discrete Laplace noise, charged to
the privacy ledger), with `pre_period`'s figures for CUPED beside them.

Exploration is different: off-policy evaluation needs per-list records. Each
`Exposure` holds the items shown by position, their propensities and marginal
probabilities, the greedy list, the short list and its position table; joined
with the plays at each position (which the app knows), that is a per-event log
of what this user was shown and did, as personal as the history. It stays on
the device: nothing here sends it, and an app must not either. Evaluate it on
the device and send at most aggregated estimates (bounded sums per device)
through `PrivateReporter.experiment`; edgerec has no on-device estimator yet
(studies/ope.py runs on simulated logs on the host).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections import Counter
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import numpy as np

from edgerec.errors import ConfigError
from edgerec.runtime import checks, plackett_luce
from edgerec.runtime.fairness import fairness_applies
from edgerec.runtime.pipeline import Stage
from edgerec.runtime.request import Request

EXPLORE_STAGE = "explore"
# the position table's work (plackett_luce.work) one request may start: 0.2 to 0.6 s on one core here. At
# the default width 30 and temperature 2 it admits lists of up to 30 items; k = 60 took 1.9 s, k = 120 25 s
TABLE_BUDGET = 3e7


def unit_hash(key: bytes | str, experiment: str) -> float:
    """A number in [0, 1) fixed by (key, experiment) and uniform over keys."""
    if not isinstance(key, (str, bytes)) or not key:
        raise ConfigError(f"the assignment key must be non-empty bytes or str (got {type(key).__name__}); use "
                          "the device's secret install key")
    key = checks.text(key, "the assignment key", 4096).encode() if isinstance(key, str) else key
    digest = hmac.new(key, checks.text(experiment, "the experiment name", 1000).encode(), hashlib.sha256).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / 2.0 ** 53  # 53 bits: exact, never rounds up to 1.0


def assign(key: bytes | str, experiment: str, arms: Sequence[str], weights: Sequence[float] | None = None) -> str:
    """The arm of this device in `experiment`: stable for the key, split by `weights` (default even)."""
    for given, what in ((arms, "arms"), (weights, "weights")):
        if isinstance(given, AbstractSet):  # a set's order changes between app starts (str hashing is salted)
            raise ConfigError(f"{what} must be in a fixed order (a list or tuple), not a set: the order pairs "
                              "arms with weights and must not change between app starts")
    arms = checks.names(arms, "arms", allow_none=False)  # a lone string is not a list of arms
    if len(arms) < 2 or len(set(arms)) != len(arms):
        raise ConfigError(f"an experiment needs two or more distinct arms (got {list(arms)})")
    weights = [1.0] * len(arms) if weights is None else [
        checks.number(w, "each arm weight", 0.0, 1e12) for w in checks.values(weights, "weights")]
    if len(weights) != len(arms) or sum(weights) <= 0:
        raise ConfigError(f"weights must be one non-negative number per arm, not all zero (got {weights})")
    point, edge = unit_hash(key, experiment) * sum(weights), 0.0
    for arm, weight in zip(arms, weights):
        edge += weight
        if point < edge:
            return arm
    return arms[-1]


@dataclass
class OutcomeCounts:
    """Sums of outcomes on this device for one experiment; they leave it only through
    `PrivateReporter.experiment`, clipped and noised."""

    counts: Counter = field(default_factory=Counter)

    def add(self, outcome: str, n: float = 1) -> None:
        self.counts[checks.text(outcome, "an outcome name", 200)] += checks.number(n, "an outcome count", 0.0, 1e12)


# ------------------------------------------------------------------ exploration


@dataclass
class Exposure:
    """One list shown under exploration: items by position and P(item at r | items before r).

    A per-event record: it stays on the device (module docstring). `user` is the request's user, a name
    on this device that may be an e-mail address; it is kept only to tell the lists of a device's
    profiles apart and is left out of the repr, so an app logging exposures does not log it. Estimates
    across devices need no user id (a device's lists are one cluster)."""

    user: str = field(repr=False)
    items: tuple[str, ...]
    propensities: tuple[float, ...]
    greedy: tuple[str, ...]  # the list the policy would have shown without exploration
    marginals: tuple[float, ...] = ()  # P(this item at this position) under the sampler
    candidates: tuple[str, ...] = ()  # the short list the items were drawn from, in weight order
    positions: np.ndarray | None = None  # [j, r]: P(candidate j at position r), shared by lists of one shape

    def position_probabilities(self, item: str) -> np.ndarray:
        """P(the sampler puts `item` at each position): zeros for an item outside the short list
        (what an off-policy estimate of another policy's list needs for items it shows)."""
        k = len(self.items)
        if self.positions is None or item not in self.candidates:
            return np.zeros(k)
        return np.asarray(self.positions[self.candidates.index(item), :k], np.float64)

    @property
    def list_propensity(self) -> float:
        return math.prod(self.propensities)


class ExposureLog:
    """The exposures of this device, newest last, bounded (the oldest dropped past `limit`). The app takes
    them with pop() for evaluation on the device; they are per-event records and must not leave it."""

    def __init__(self, limit: int = 10_000):
        self.limit = checks.integer(limit, "ExposureLog limit", 1, 10_000_000)
        self.entries: list[Exposure] = []

    def add(self, exposure: Exposure) -> None:
        self.entries.append(exposure)
        del self.entries[:-self.limit]

    def pop(self) -> Exposure | None:
        return self.entries.pop() if self.entries else None


class ExplorationStage:
    """explore (required, just before explain): Plackett-Luce sampling of the list from the short list.

    The candidates are the policy's list followed by the rest of the pool by
    relevance, `width` of them; candidate j has weight exp(-j / temperature),
    so the policy's first item stays the likeliest at the top. Positions are
    drawn one by one without replacement, and each drawn item's probability
    given the items above it is logged: their product is the probability of
    the shown list. The marginal probability of each shown item at its
    position (what item-position estimators weight by) is computed once per
    list shape by runtime/plackett_luce.py.

    Refused in words (a ConfigError from recommend(), never a silent skip
    that would leave the app's log a list short): a temperature so low that
    the k-th candidate's weight underflows, a list whose table costs more than
    TABLE_BUDGET, and a policy with a hard cap (max_per_creator,
    max_per_genre, keep_top, the fairness cap): the sampler ignores caps,
    and the probability of a list drawn under caps is not what it logs. A
    newcomer's creator spread (cold_spread.py) passes items over rather than
    capping, so exploration samples over it.
    """

    def __init__(self, log: ExposureLog, temperature: float = 2.0, width: int = 30, seed: int | None = None):
        checks.number(temperature, "exploration temperature", 0.0, 1e6, low_open=True)
        checks.integer(width, "exploration width", 1, 10_000)
        self.log, self.temperature, self.width = log, float(temperature), int(width)
        self.rng = np.random.default_rng(checks.integer(seed, "seed", 0, 2**63, allow_none=True))
        self._tables: dict[tuple[int, int], np.ndarray] = {}  # (candidates, k) -> P(candidate at position)

    def table(self, logits: np.ndarray, k: int) -> np.ndarray:
        """P(candidate j lands at position r) for every candidate and position (runtime/plackett_luce.py).

        The weights depend only on a candidate's place in the list, so the table
        of every candidate's chance at every position is the same for every
        request of a given width and k: it is computed once and kept.
        """
        key = (len(logits), k)
        if key not in self._tables:
            cost = plackett_luce.work(logits, k)  # first: refuses a temperature too low for k, in words
            if cost > TABLE_BUDGET:
                raise ConfigError(f"exploring a list of {k} among {len(logits)} candidates at temperature "
                                  f"{self.temperature:g} needs a position table of about {cost:.1g} steps, more "
                                  f"than a request may spend ({TABLE_BUDGET:.0g}: lists of up to 30 at the default "
                                  "width 30 and temperature 2); ask for fewer items or lower the width")
            self._tables[key] = plackett_luce.marginals(logits, k)
            self._tables[key].flags.writeable = False  # shared by every exposure of this shape
        return self._tables[key]

    def marginals(self, logits: np.ndarray, chosen: list[int]) -> tuple[float, ...]:
        """P(candidate chosen[r] lands at position r) under the sampler."""
        table = self.table(logits, len(chosen))
        return tuple(float(table[j, r]) for r, j in enumerate(chosen))

    def candidates(self, request: Request) -> np.ndarray:
        """Positions into the pool: the policy's list, then the other pool rows by relevance."""
        order = [int(i) for i in request.order]
        taken = set(order)
        rest = [int(i) for i in np.argsort(-request.relevance, kind="stable") if int(i) not in taken]
        excluded = request.state.excluded if request.state is not None else set()
        rest = [i for i in rest if int(request.pool[i]) not in excluded]
        return np.array((order + rest)[: max(self.width, len(order))], np.int64)

    def __call__(self, request: Request) -> Request:
        caps = hard_caps(request)
        if caps:
            raise ConfigError(f"exploration cannot keep the policy's {', '.join(caps)}: it samples the list "
                              "without caps, and the probabilities it logs are not those of a capped list; explore "
                              f"under a policy without them, or switch exploration off (pipeline.remove({EXPLORE_STAGE!r}))")
        cand = self.candidates(request)
        k = len(request.order)
        logits = -np.arange(len(cand)) / self.temperature
        table = self.table(logits, k)  # first: a temperature too low for k is refused in words, not 0 / 0 below
        weight = np.exp(logits)
        left = np.ones(len(cand), bool)
        chosen, probs = [], []
        for _ in range(k):
            w = np.where(left, weight, 0.0)
            p = w / w.sum()
            j = int(self.rng.choice(len(cand), p=p))
            chosen.append(j)
            probs.append(float(p[j]))
            left[j] = False
        ids = request.catalog.item_id
        greedy = tuple(ids(int(request.pool[i])) for i in request.order)
        request.order = cand[chosen]
        self.log.add(Exposure(request.user, tuple(ids(int(request.pool[i])) for i in request.order),
                              tuple(probs), greedy, self.marginals(logits, chosen),
                              tuple(ids(int(request.pool[i])) for i in cand), table))
        return request


def hard_caps(request: Request) -> list[str]:
    """The policy's caps a sampled list would break (a newcomer's spread is not one: cold_spread.py)."""
    policy = getattr(request, "policy", None)
    if policy is None:  # a request built by hand, without a policy: nothing to keep
        return []
    caps = [name for name in ("max_per_genre", "keep_top") if getattr(policy, name)]
    if policy.max_per_creator and not getattr(request, "spread", False):
        caps.insert(0, "max_per_creator")
    if policy.fairness_method == "cap" and fairness_applies(request):
        caps.append("fairness_method 'cap'")
    return caps


def explore(rec, temperature: float = 2.0, width: int = 30, seed: int | None = None) -> ExposureLog:
    """Switch exploration on for a Recommender; returns the log its exposures go to.

    The stage runs last before explain, after the optional fairness stage (which sets the order
    again), so what it logs is what is shown. It is required: a refusal (ExplorationStage) reaches
    the app as a ConfigError instead of a list shown greedy with nothing logged."""
    log = ExposureLog()
    stage = ExplorationStage(log, temperature, width, seed)
    rec.pipeline.insert_before("explain", Stage(EXPLORE_STAGE, stage, applies=_has_list))
    return log


def _has_list(request: Request) -> bool:
    return request.order is not None and len(request.order) > 0  # nothing to sample in an empty list
