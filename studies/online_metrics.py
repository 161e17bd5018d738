"""Online metrics of a simulated log, per arm, per day and overall.

CTR (plays per item shown), completion rate (finishes per play), plays and
watch minutes per active user-day, session length (lists and watch minutes
per session: a session is one opening of the app, simulator.FIELDS
"sessions"), return rate (share of the users active on a day who come back the
next; None, not 0, when nobody was active on a day before: a one-day period
without a pre-period has no return to measure), and exposure diversity
(distinct items per item shown) and novelty (mean self-information -log2 p
of the shown items under the log's popularity).
"""

from __future__ import annotations

import numpy as np

from edgerec.studies.simulator import SimLog

METRICS = ("CTR", "completion", "plays_per_day", "watch_min_per_day", "lists_per_session", "minutes_per_session",
           "return_rate", "diversity", "novelty")


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def _summary(values: dict[str, np.ndarray], shown: list[str], popularity: dict[str, float],
             returned: tuple[float, float]) -> dict:
    get = {f: float(v.sum()) for f, v in values.items()}
    active = get["active"]
    # an unknown item counts as the rarest; the floor is found once (as .get's default it was a scan of the
    # whole catalog per shown item: 51 s for 50k items shown from a 50k catalog, 4 s from 3,706)
    floor = min(popularity.values(), default=1e-6)
    novelty = [-np.log2(popularity.get(i, floor)) for i in shown]
    return {
        "CTR": _ratio(get["plays"], get["impressions"]),
        "completion": _ratio(get["finishes"], get["plays"]),
        "plays_per_day": _ratio(get["plays"], active),
        "watch_min_per_day": _ratio(get["watch_s"] / 60, active),
        # per session, not per active day (which it was): a heavy user's day holds several sessions
        "lists_per_session": _ratio(get["lists"], get["sessions"]),
        "minutes_per_session": _ratio(get["watch_s"] / 60, get["sessions"]),
        "return_rate": _ratio(*returned) if returned[1] else None,  # nobody active the day before: no rate
        "diversity": _ratio(len(set(shown)), len(shown)),
        "novelty": float(np.mean(novelty)) if novelty else 0.0,
        "active_user_days": int(active),
    }


def online_metrics(log: SimLog, popularity: dict[str, float], unmeasured=()) -> dict:
    """{arm: {"overall": {...}, "days": [{day, ...}, ...]}} over the experiment period; the `unmeasured`
    metrics (ones the click model has nothing to base on, e.g. completion on a ratings log) are None."""
    arms = np.array(log.arms)
    out = {}
    for arm in sorted(set(log.arms)):
        rows = arms == arm
        vals = {f: v[rows] for f, v in log.values.items()}
        active = vals["active"]
        days = []
        for d, day in enumerate(log.days):
            if day < 0:
                continue
            before = active[:, d - 1] > 0 if d > 0 else np.zeros(len(active), bool)
            back = (before & (active[:, d] > 0)).sum(), before.sum()
            days.append({"day": int(day), **_summary({f: v[:, d] for f, v in vals.items()},
                                                     log.shown.get(arm, {}).get(int(day), []), popularity, back),
                         **dict.fromkeys(unmeasured)})
        cols = log.days >= 0
        prev, nxt = active[:, :-1][:, cols[1:]] > 0, active[:, 1:][:, cols[1:]] > 0
        shown = [i for day, items in log.shown.get(arm, {}).items() if day >= 0 for i in items]
        overall = _summary({f: v[:, cols] for f, v in vals.items()}, shown, popularity,
                           ((prev & nxt).sum(), prev.sum()))
        out[arm] = {"users": int(rows.sum()), "overall": overall | dict.fromkeys(unmeasured), "days": days}
    return out


def popularity_shares(dataset) -> dict[str, float]:
    """Each item's share of the log's events (for novelty)."""
    counts = np.bincount(dataset.interactions.item, minlength=len(dataset.catalog.item_ids)) + 1.0
    share = counts / counts.sum()
    return dict(zip(dataset.catalog.item_ids, share.tolist()))
