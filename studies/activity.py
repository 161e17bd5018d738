"""How active each simulated user is: visits per day and lists per session, fixed per user for the whole run.

Real audiences differ by orders of magnitude in how much they use an app,
and a heavy user stays heavy from one week to the next. That persistent
between-user spread is most of the variance of a per-user metric: it is what
CUPED removes with the pre-period and what interleaving (a comparison
within each user) never sees, while an A/B test (a comparison between
users) must average it out. A simulator without it understates what CUPED
can remove (docs/experiments.md: 4% of the variance with identical users, 21% at the
default spread, 30% at 1.3).

Each user gets two numbers, drawn once:

- visit rate v (expected sessions per day) = visits_median x exp(visits_sigma x z):
  lognormal across users. z is the user's normal score in the data's own
  activity (the synthetic world's per-user activity, itself lognormal; the
  user's event count in an imported log), so whoever was heavy in the log
  that seeded the device stays heavy in the simulation. A day's sessions are
  Poisson(v x how the last active day went); the user is active on the day
  when there is at least one.
- session depth d (extra lists a session holds while its lists satisfy) =
  extra_lists_median x exp(lists_sigma x w), w ~ N(0, 1) drawn from the
  generator seeded by (seed, user): after a list that satisfied (a finish;
  Reactions.satisfied) the user asks
  for another with probability d / (1 + d) (a geometric session of mean
  1 + d), after any other list with STOP_UNSATISFIED times that.

Defaults (docs/experiments.md says where they come from):
visits_sigma 0.9 is the spread of log events per user measured on
MovieLens-100K (0.88, a floor: that data set keeps only users with 20 or more
ratings), close to the synthetic generator's own 0.8; lists_sigma 0.5 is
about half the spread of log events per session on the same data (0.87,
sessions cut at 30 minutes of silence), halved because a rating session
there is batch rating, not viewing. Setting both sigmas to 0 gives every user
the median activity (the homogeneous world, kept for comparison).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgerec.errors import ConfigError

STOP_UNSATISFIED = 0.4  # a list that did not satisfy (no finish) makes the next one this much less likely
# bounds: a median x exp(sigma x z) visit rate must stay a Poisson rate numpy draws (below 9e18) for every
# normal score z of up to a million users (|z| < 5): 1000 x exp(5 x 5) = 7e13 (--visits-sigma 1000 overflowed)
MAX_MEDIAN, MAX_SIGMA, MAX_COUNT = 1000.0, 5.0, 1000


@dataclass
class ActivityConfig:
    visits_median: float = 0.5  # sessions per day of the median user
    visits_sigma: float = 0.9  # sd of log(sessions per day) across users
    extra_lists_median: float = 1.0  # lists after the first in a satisfying session, median user
    lists_sigma: float = 0.5  # sd of log(session depth) across users
    max_sessions: int = 8  # per day (a cap that bounds the cost of the heaviest users)
    max_lists: int = 12  # per session

    def validate(self) -> None:
        rates = (self.visits_median, self.extra_lists_median, self.visits_sigma, self.lists_sigma)
        if not all(math.isfinite(v) for v in rates) or min(rates[:2]) <= 0 or min(rates[2:]) < 0:
            raise ConfigError(f"activity needs positive medians and sigmas >= 0 (got {self})")
        if max(rates[:2]) > MAX_MEDIAN or max(rates[2:]) > MAX_SIGMA:
            raise ConfigError(f"activity needs medians <= {MAX_MEDIAN:g} and sigmas (--visits-sigma, --lists-sigma) "
                              f"<= {MAX_SIGMA:g} (got {self}); real audiences spread about 0.9")
        if not 1 <= self.max_sessions <= MAX_COUNT or not 1 <= self.max_lists <= MAX_COUNT:
            raise ConfigError(f"activity needs max_sessions and max_lists in 1..{MAX_COUNT} (got {self})")


@dataclass
class UserActivity:
    visits: float  # expected sessions per day
    depth: float  # expected extra lists per session while lists satisfy

    def sessions(self, rng: np.random.Generator, mood: float, cfg: ActivityConfig) -> int:
        """Sessions today; `mood` scales the rate (how the last active day went, 1 = neutral)."""
        return int(min(rng.poisson(self.visits * mood), cfg.max_sessions))

    def goes_on(self, rng: np.random.Generator, satisfied: bool) -> bool:
        """Whether the user asks for another list after this one."""
        go_on = self.depth / (1.0 + self.depth)
        return bool(rng.random() < (go_on if satisfied else STOP_UNSATISFIED * go_on))


def normal_scores(values: np.ndarray) -> np.ndarray:
    """Each value's rank as a standard normal quantile (ties share their mean rank)."""
    from scipy import stats as sps  # here: the CLI reads ActivityConfig's defaults without scipy

    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return np.zeros(len(values))
    return sps.norm.ppf((sps.rankdata(values) - 0.5) / len(values))


def user_activity(cfg: ActivityConfig, score: float, rng: np.random.Generator) -> UserActivity:
    """One user's activity from its normal score in the data and its own generator."""
    w = rng.standard_normal()
    return UserActivity(cfg.visits_median * float(np.exp(cfg.visits_sigma * score)),
                        cfg.extra_lists_median * float(np.exp(cfg.lists_sigma * w)))
