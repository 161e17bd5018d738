"""The user simulator: users arrive over days, open the app, get lists from the real runtime, react.

Every list comes from `Recommender.recommend()` on a bundle, the code an
app runs; every reaction is recorded back through `Recommender.record()`,
so the next list sees it. Users are the data set's own: each starts with its
newest logged events on the device, then lives `pre_days` under the first
arm (the pre-period CUPED reads back from the device history) and `days`
under its assigned arm. How active each user is comes from
studies/activity.py: a visit rate and a session depth drawn once per user,
lognormal across users and persistent (a heavy user in the log stays heavy).
A day: Poisson(visit rate x mood) sessions, mood being how the last active
day went (satisfying plays per list: finishes, or on a log that records none,
plays not skipped; Reactions.satisfied); a session is one list and then another
with a probability from the user's depth, lower after a list that did not satisfy.
A user's pre-period
activity, CUPED's covariates, is read back from the device history
(PRE_FEATURES): its plays (counted exactly as the experiment's plays are),
finishes, sessions, watch time and active days in the pre-period, and the rate
of the older events. The pre-period begins the day after the log ends, so no
logged event falls into it. Every draw comes from generators seeded
by (seed, user), so a run is repeatable and one user's luck does not depend
on the others; `replicate` redraws every user's luck and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgerec.data.schema import Dataset
from edgerec.errors import ConfigError, DataError, UnknownIdError
from edgerec.runtime import Recommender
from edgerec.runtime.policies import Policy
from edgerec.runtime.pre_period import PRE_FEATURES, pre_period  # noqa: F401 (PRE_FEATURES re-exported)
from edgerec.runtime.vocab import LOG_EVENTS, LOG_TO_DEVICE
from edgerec.studies.activity import ActivityConfig, UserActivity, user_activity
from edgerec.studies.devices import open_device
from edgerec.studies.reactions import Consumed, Reaction, Reactions

DAY = 86_400
MOOD = (0.5, 1.5)  # a day with no satisfying play (Reactions.satisfied) halves the next day's visit rate; one in every list: x1.5
FIELDS = ("active", "sessions", "lists", "impressions", "plays", "finishes", "skips", "likes", "refused", "watch_s",
          "wins_a", "wins_b", "clicks_a", "clicks_b", "satisfied")
MAX_DAYS = 3650  # --days and --pre-days each: ten years (1e10 days asked numpy for 74.5 GiB)
MAX_USER_DAYS = 10_000_000  # users x (days + pre-days): 1.2 GB of per-day figures, hours of recommend() calls


@dataclass
class SimConfig:
    users: int = 200
    days: int = 7
    pre_days: int = 3
    k: int = 10
    history_events: int = 30  # newest logged events put on each user's device at the start
    click_model: str = "pbm"
    seed: int = 0
    replicate: int = 0  # > 0: other draws of the same users' sessions and reactions (same users, same activity)
    activity: ActivityConfig = field(default_factory=ActivityConfig)

    def validate(self) -> None:
        if self.users < 2 or self.days < 1 or self.pre_days < 0 or self.k < 1 or self.seed < 0:
            raise ConfigError(f"need --users >= 2, --days >= 1, --pre-days >= 0, --k >= 1, --seed >= 0 (got "
                              f"{self.users}, {self.days}, {self.pre_days}, {self.k}, {self.seed})")
        if max(self.days, self.pre_days) > MAX_DAYS or self.users * (self.days + self.pre_days) > MAX_USER_DAYS:
            raise ConfigError(f"--days and --pre-days are at most {MAX_DAYS:,} each and --users x (days + pre-days) "
                              f"at most {MAX_USER_DAYS:,} (got {self.users:,} users, {self.days:,} days, "
                              f"{self.pre_days:,} pre-days); simulate fewer days or users")
        self.activity.validate()


@dataclass
class Arm:
    """A bundle and the policy to serve it with (None: the bundle's defaults)."""

    name: str
    bundle: Path
    policy: dict | None = None

    def make_policy(self, rec: Recommender) -> Policy | None:
        if not self.policy:
            return None
        unknown = set(self.policy) - set(Policy.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown policy fields {sorted(unknown)}; use fields of Policy")
        base = rec.policy
        return Policy(**{**{f: getattr(base, f) for f in Policy.__dataclass_fields__}, **self.policy})


# lister(recommender-of-the-user's-arm, user, k, context) -> (item ids, teams or None)
Lister = Callable[[Recommender, str, int, dict], tuple[list[str], list[str] | None]]


@dataclass
class SimLog:
    """Per (user, day) outcomes; day < 0 is the pre-period. Plus what was shown, per arm and day."""

    users: list[str]
    arms: list[str]  # each user's arm
    days: np.ndarray  # the day index of each column, pre-period first
    values: dict[str, np.ndarray]  # field -> (users, days)
    shown: dict[str, dict[int, list[str]]] = field(default_factory=dict)  # arm -> day -> item ids shown
    pre_device: np.ndarray | None = None  # (users, len(PRE_FEATURES)): what the device history knew beforehand
    # interleaved lists: (user row, day, clicked positions, teams), for re-randomised A/A interleaving
    interleaved: list[tuple[int, int, tuple[int, ...], tuple[str, ...]]] = field(default_factory=list)
    # per interleaved list (same order): which positions hold an item both teams' lists hold
    interleaved_shared: list[tuple[bool, ...]] = field(default_factory=list)

    def period(self, name: str, pre: bool = False) -> np.ndarray:
        """Per-user sum of a field over the experiment (or the pre-) period."""
        cols = self.days < 0 if pre else self.days >= 0
        return self.values[name][:, cols].sum(1)


class Simulator:
    def __init__(self, dataset: Dataset, reactions: Reactions, cfg: SimConfig):
        cfg.validate()
        self.dataset, self.reactions, self.cfg = dataset, reactions, cfg
        log = dataset.interactions
        # the pre-period starts the day after the log ends, the experiment after the pre-period
        self.start = float(log.timestamp.max()) + DAY * (1 + cfg.pre_days)
        counts = np.bincount(log.user, minlength=dataset.n_users)
        eligible = np.flatnonzero(counts >= 3)
        if len(eligible) == 0:  # an empty log of the experiment, then a KeyError far from here
            raise DataError("no user in the log has three or more events, and a simulated user starts from "
                            "their own logged history; use a log with longer histories")
        rng = np.random.default_rng([cfg.seed, 1])
        self.user_codes = np.sort(rng.choice(eligible, min(cfg.users, len(eligible)), replace=False))
        self.item_code = {name: i for i, name in enumerate(dataset.catalog.item_ids)}

    @property
    def user_names(self) -> list[str]:
        return [self.dataset.user_ids[u] for u in self.user_codes]

    def seed_history(self, devices: Sequence[Recommender], code: int) -> None:
        """Put the user's newest logged events on the device(s)."""
        log, items = self.dataset.interactions, self.dataset.catalog.item_ids
        rows = np.flatnonzero(log.user == code)[-self.cfg.history_events:]
        for e in rows:
            for rec in devices:
                try:
                    rec.record(self.dataset.user_ids[code], items[log.item[e]],
                               LOG_TO_DEVICE[LOG_EVENTS[log.event[e]]], timestamp=float(log.timestamp[e]))
                except UnknownIdError:
                    raise ConfigError(f"the data holds item {items[log.item[e]]!r}, which the bundle does not know: "
                                      "pass the --data the bundle was built on") from None

    def run(self, arms: list[Arm], assign: Callable[[str], str], lister: Lister | None = None,
            mirrors: Sequence[Recommender] = ()) -> SimLog:
        """Simulate every user; `assign(user)` picks the arm (by name) for the experiment period.

        Each arm's Recommender keeps its device history in memory, and every
        event goes to all of them (and to `mirrors`, e.g. the other bundle of an
        interleaving), so whichever serves a user knows the user's whole past.
        """
        names = [a.name for a in arms]
        if len(set(names)) != len(names):
            raise ConfigError(f"arm names must differ (got {names})")
        recs = {a.name: open_device(a.bundle) for a in arms}
        try:
            policies = {a.name: a.make_policy(recs[a.name]) for a in arms}
            return self._run(arms, recs, policies, assign, lister, [*recs.values(), *mirrors])
        finally:
            for rec in recs.values():
                rec.close()

    def _run(self, arms, recs, policies, assign, lister, devices) -> SimLog:
        cfg = self.cfg
        days = np.arange(-cfg.pre_days, cfg.days)
        values = {f: np.zeros((len(self.user_codes), len(days))) for f in FIELDS}
        shown: dict[str, dict[int, list[str]]] = {a.name: {} for a in arms}
        user_arms, pre_device, interleaved = [], [], []
        first = arms[0].name
        for i, code in enumerate(self.user_codes):
            name = self.dataset.user_ids[code]
            arm = assign(name)
            if arm not in recs:
                raise ConfigError(f"assign() returned {arm!r}, not one of the arms {list(recs)}")
            user_arms.append(arm)
            self.seed_history(devices, int(code))
            consumed = self.consumed(int(code))
            rng = np.random.default_rng([cfg.seed, int(code), *([cfg.replicate] if cfg.replicate else [])])
            hour = float(rng.uniform(7, 23))
            user = self.activity(int(code))
            mood, begun = 1.0, np.inf  # begun: when the device first served the user's experiment arm
            for d, day in enumerate(days):
                now_arm = first if day < 0 else arm
                rec, policy = recs[now_arm], policies[now_arm]
                sessions = user.sessions(rng, mood, cfg.activity)
                if not sessions:
                    continue
                day_out = {f: 0.0 for f in FIELDS}
                clock = 0.0
                for s in range(sessions):
                    at = hour + 16 * s / sessions  # spread over the user's waking day
                    now = max(self.start + float(day) * DAY + at * 3600, clock)  # after the last session
                    begun = min(begun, now) if day >= 0 else begun
                    out = self._session(rec, policy, name, int(code), now, at, rng, lister, devices, user, consumed)
                    shown[now_arm].setdefault(int(day), []).extend(out.pop("items"))
                    interleaved += [(i, int(day), *one) for one in out.pop("interleaved")]
                    clock = out.pop("end")
                    for f, v in out.items():
                        day_out[f] += v
                day_out["sessions"] = float(sessions)  # opened the app, even when no list came
                for f, v in day_out.items():
                    values[f][i, d] = v
                values["active"][i, d] = 1.0
                mood = float(np.clip(0.5 + day_out["satisfied"] / max(day_out["lists"], 1), *MOOD))
            pre_device.append(self.pre_period(recs[first], name, begun))
        return SimLog(self.user_names, user_arms, days, values, shown, np.array(pre_device, np.float64),
                      interleaved)

    def activity(self, code: int) -> UserActivity:
        """The user's visit rate and session depth (studies/activity.py), the same in every run of a seed."""
        score = float(self.reactions.activity_score(np.array([code]))[0])
        return user_activity(self.cfg.activity, score, np.random.default_rng([self.cfg.seed, code, 0xAC]))

    def pre_period(self, rec: Recommender, user: str, begun: float = np.inf) -> list[float]:
        """What the device knows of the user before the experiment (CUPED's covariates, PRE_FEATURES), by
        the runtime's own call; the pre-period ends when the device first served the experiment's arm."""
        end = None if np.isinf(begun) else float(begun)
        return list(pre_period(rec.history, user, self.start - self.cfg.pre_days * DAY, end).values())

    def consumed(self, code: int) -> Consumed:
        """Everything the user played in the log (not only the newest events the device is given)."""
        log = self.dataset.interactions
        return Consumed(log.item[log.user == code])

    def _session(self, rec, policy, name, code, now, hour, rng, lister, devices, user: UserActivity,
                 consumed: Consumed) -> dict:
        cfg, react = self.cfg, self.reactions
        out = {f: 0.0 for f in FIELDS}
        out["items"], out["interleaved"] = [], []
        for _ in range(cfg.activity.max_lists):
            context = {"now": now, "hour": hour % 24}
            if lister is None:
                ids, teams = [r.item_id for r in rec.recommend(name, cfg.k, context=context, policy=policy)], None
            else:
                ids, teams = lister(rec, name, cfg.k, context)
            if not ids:
                break
            items = np.array([self.item_code[i] for i in ids], np.int64)
            reaction = react.react(code, items, rng, cfg.click_model, consumed)
            consumed.add(items[reaction.played])
            now = self.record(devices, name, ids, reaction, now)
            out["lists"] += 1
            out["impressions"] += len(ids)
            out["plays"] += reaction.played.sum()
            out["finishes"] += reaction.finished.sum()
            out["skips"] += reaction.skipped.sum()
            out["likes"] += reaction.liked.sum()
            out["refused"] += reaction.refused.sum()
            out["watch_s"] += reaction.watched_s.sum()
            out["items"] += ids
            if teams is not None:
                a = sum(1 for p in reaction.clicked if teams[p] == "A")
                b = len(reaction.clicked) - a
                out["clicks_a"] += a
                out["clicks_b"] += b
                out["wins_a"] += a > b
                out["wins_b"] += b > a
                out["interleaved"].append((tuple(reaction.clicked), tuple(teams)))
            out["satisfied"] += react.satisfied(reaction).sum()
            if not user.goes_on(rng, bool(react.satisfied(reaction).any())):
                break
        out["end"] = now
        return out

    @staticmethod
    def record(devices, name, ids, reaction: Reaction, now: float) -> float:
        """Record the list's outcomes in viewing order on every device; returns the time after them."""
        events = []
        for p, item in enumerate(ids):
            if reaction.played[p]:
                now += float(reaction.watched_s[p]) + 10
                events.append((item, "skip" if reaction.skipped[p] else "finish" if reaction.finished[p] else "play",
                               float(reaction.watched_s[p]), now))
                if reaction.liked[p]:
                    events.append((item, "like", None, now + 1))
            elif reaction.refused[p]:
                now += 2
                events.append((item, "not_interested", None, now))
        for rec in devices:
            for item, event, value, ts in events:
                rec.record(name, item, event, value=value, timestamp=ts)
        return now + 30
