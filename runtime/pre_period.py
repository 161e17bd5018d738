"""What the device knew of its user before an experiment began: CUPED's covariates.

    pre = pre_period(rec.history, "alice", begin=start - 14 * DAY, end=start)

An experiment's test removes much of its noise by regressing each user's
outcome on the same user's activity before the experiment (CUPED). Those
figures come from the on-device history, so only the device can compute them;
they leave it as its outcome sums do, through `PrivateReporter.experiment`
(clipped, noised, charged to the privacy ledger), never as events. The
simulator computes its covariates through this same call.
"""

from __future__ import annotations

from itertools import accumulate

from edgerec.errors import ConfigError
from edgerec.runtime import checks
from edgerec.runtime.vocab import FEEDBACK

DAY = 86_400
SESSION_GAP = 1800  # seconds of silence that end a session (the usual 30 minutes)
PRE_FEATURES = ("pre_plays", "pre_finishes", "pre_active_days", "older_events_per_day", "pre_sessions",
                "pre_watch_s")


def pre_period(history, user: str, begin: float, end: float | None = None) -> dict[str, float]:
    """The user's figures in [begin, end) (end None: up to now): items played (finished or skipped
    included), finishes, active days (days, counted from `begin`, on which a session began), sessions
    (runs of events with no SESSION_GAP of silence), seconds watched (the value the app records with each
    play); and the rate of the events before `begin` (per day over their span). `end` is when the device
    first served the experiment's arm: a late session of the last pre-period day may run past midnight."""
    begin = checks.timestamp(begin, "the pre-period's begin", allow_none=False)
    end = checks.timestamp(end, "the pre-period's end (when the experiment's arm was first served)")
    if end is not None and end < begin:
        raise ConfigError(f"the pre-period ends ({end}) before it begins ({begin}); pass the time the "
                          "experiment began as its end and an earlier time as its begin")
    events = history.events(user)
    pre = [e for e in events if begin <= e.ts and (end is None or e.ts < end)]
    is_play = [e.event != "like" and e.event not in FEEDBACK for e in pre]
    played = [e for e, play in zip(pre, is_play) if play]
    older = [e.ts for e in events if e.ts < begin]
    rate = len(older) / max((max(older) - min(older)) / DAY, 1.0) if older else 0.0
    # an event is stamped when the viewing ends: a session is cut when the silence between the end of
    # one event and the start of the next (its time less the seconds watched) exceeds SESSION_GAP
    spans = sorted((e.ts - (e.value or 0.0) if play else e.ts, e.ts) for e, play in zip(pre, is_play))
    ends = list(accumulate((last for _, last in spans), max))  # the latest end so far: a
    starts = [first for latest, (first, _) in zip([float("-inf"), *ends], spans)  # like within a 3-hour film is
              if first - latest > SESSION_GAP]                                    # the same session
    values = (len(played), sum(e.event == "finish" for e in pre), len({int((t - begin) // DAY) for t in starts}),
              rate, len(starts), sum(e.value or 0.0 for e in played))
    return {name: float(v) for name, v in zip(PRE_FEATURES, values)}
