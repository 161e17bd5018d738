"""Off-policy evaluation: a new policy's expected plays per list from exploration logs, without showing it.

Logs come from the runtime's exploration stage (Plackett-Luce sampling of
the short list, runtime/experiment.py) and record the marginal probability
p of each shown item at its position. Under the position-based model a
click at position r depends only on the item there, so with m = [the
target policy puts the same item at r]:

    IPS    = mean_n sum_r  m c / p
    SNIPS  = sum_r  (sum_n m c / p) / (sum_n m / p)         (self-normalised per position)
    DR     = mean_n sum_r  q(target item, r) + m / p (c - q(shown item, r))
    DM     = mean_n sum_r  q(target item, r)                (the direct model alone: biased when q is)
    DR-PBM = mean_n sum_r  e_r (a_t + [t shown at s] (c_s - e_s a_t) / sum_s' P(t at s') e_s')

q = e_r a is a position-based click model fitted on the logs alone
(`fit_click_model`, EM: examination e per position is not observed):
attraction a = a(g) x b(item), g the item's rank in the logging policy's
greedy list (k: outside it) and b an item factor shrunk towards 1 by SHRINK
pseudo-views, so a rarely shown item keeps its greedy rank's attraction.
q is fitted on the same logs it serves. Cross-fitting it (each half of the
lists served by a q fitted on the other half) moved no estimate by more than
0.2 points on the simulator's logs and cost accuracy on small ones: not kept.

DR-PBM is the item-level doubly robust estimate: a target item t counts
whenever the logger showed it, at any position s, its click rescaled by the
fitted examination (Li et al., KDD 2018, estimators under click models). It
needs the logger's probability of putting t at each position (the
exploration stage logs the table) and is unbiased when the examination
curve is right, whatever the attraction model; DR needs neither but uses
only the lists where the item sits at the very same position.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from edgerec.errors import ConfigError
from edgerec.studies.stats import count_arg, number_arg

SHRINK = 20.0  # pseudo-views of an item at its greedy rank's attraction
EM_ITERATIONS = 100
GOAL = 0.05  # issue 16: an estimate within 5% of the true value


@dataclass
class LoggedList:
    clicks: np.ndarray  # 0/1 per position of the shown list
    marginals: np.ndarray  # P(shown item at its position) under the logging policy
    match: np.ndarray  # bool per position: the target policy shows the same item there
    shown_rank: np.ndarray  # rank of each shown item in the logging policy's greedy list (k: not in it)
    target_rank: np.ndarray  # ... of each item of the target's list
    shown_items: np.ndarray | None = None  # item ids of the shown list (host side, for the direct model)
    target_items: np.ndarray | None = None  # ... of the target's list
    target_exposure: np.ndarray | None = None  # [r, s]: P(the logger puts the target's item r at position s)


MAX_RANK = 100_000  # a greedy list's rank: far past any short list a device ranks


class Logs:
    """The logged lists as arrays (n lists x k positions), built once; `take` picks lists (bootstrap)."""

    def __init__(self, logs: list[LoggedList] | None = None, arrays: dict | None = None, n_items: int = 1):
        self.n_items = n_items  # item codes run 0 .. n_items - 1 (one code for all without item ids)
        if arrays is not None:
            self.a = arrays
            return
        logs = list(logs or ())
        if not logs:
            raise ConfigError("no logged lists: an off-policy estimate needs the exploration logs of at least one "
                              "list (run more users or days)")
        k = np.size(logs[0].clicks)
        if k == 0:
            raise ConfigError("a logged list has no positions: log the lists that were shown")
        rank = (f"whole numbers from 0 to {MAX_RANK:,} (the item's rank in the logging policy's greedy list, k: "
                "outside it)")  # a rank of 10**9 made the click model ask for 7 GiB
        a = {"clicks": _numbers(logs, "clicks", (k,), 1, "in [0, 1] (1: clicked)"),
             "marginals": _floats(logs, "marginals", (k,)),
             "match": _numbers(logs, "match", (k,), 1, "True or False per position", whole=True).astype(bool),
             "shown_rank": _numbers(logs, "shown_rank", (k,), MAX_RANK, rank, whole=True).astype(np.int64),
             "target_rank": _numbers(logs, "target_rank", (k,), MAX_RANK, rank, whole=True).astype(np.int64)}
        n = len(logs)
        bad = ~((a["marginals"] > 0) & (a["marginals"] <= 1))  # NaN too
        if bad.any():
            # a shown item had some chance to be shown; 0 made IPS and DR NaN and SNIPS drop the position
            raise ConfigError(f"a logged list's marginal probability is {float(a['marginals'][bad][0])}: each shown "
                              "item's probability of its position must be in (0, 1]; log the exploration "
                              "policy's probability of the item it showed (runtime exploration does)")
        if all(lg.shown_items is not None and lg.target_items is not None for lg in logs):
            shown, target = _field(logs, "shown_items", (k,)), _field(logs, "target_items", (k,))
            try:
                _, codes = np.unique(np.concatenate([shown.ravel(), target.ravel()]), return_inverse=True)
            except TypeError:  # ids of mixed types (None among strings) have no order
                raise ConfigError("a logged list's item ids must be all strings or all numbers") from None
            a["shown_item"], a["target_item"] = codes[: n * k].reshape(n, k), codes[n * k:].reshape(n, k)
            same = a["target_item"][:, :, None] == a["shown_item"][:, None, :]  # [n, r, s]
            a["target_at"] = np.where(same.any(2), same.argmax(2), -1)  # where the logger showed target item r
            self.n_items = int(codes.max()) + 1
        else:
            a["shown_item"] = a["target_item"] = np.zeros((n, k), np.int64)
        if "target_at" in a and all(lg.target_exposure is not None for lg in logs):
            a["target_exposure"] = _numbers(logs, "target_exposure", (k, k), 1, "probabilities in [0, 1]")
        self.a = a

    def __len__(self) -> int:
        return len(self.a["clicks"])

    def take(self, rows: np.ndarray) -> Logs:
        return Logs(arrays={name: v[rows] for name, v in self.a.items()}, n_items=self.n_items)


def _field(logs: list[LoggedList], name: str, shape: tuple) -> np.ndarray:
    """One field of every list stacked to (n,) + shape; a ragged or missing field is named, not a numpy error."""
    try:
        raw = np.array([getattr(lg, name) for lg in logs])
    except ValueError:  # lists of different lengths
        raw = None
    if raw is None or raw.shape[1:] != shape:
        raise ConfigError(f"every logged list needs `{name}` with {' x '.join(map(str, shape))} values (one per "
                          f"position of its {shape[0]}-item list)")
    return raw


def _floats(logs: list[LoggedList], name: str, shape: tuple) -> np.ndarray:
    raw = _field(logs, name, shape)
    if raw.dtype.kind not in "biuf":
        raise ConfigError(f"a logged list's `{name}` must be numbers (got {raw.dtype.name} values)")
    return raw.astype(np.float64)


def _numbers(logs: list[LoggedList], name: str, shape: tuple, high: float, what: str,
             whole: bool = False) -> np.ndarray:
    """A numeric field in [0, high] (whole numbers if `whole`); NaN or out of range is refused."""
    values = _floats(logs, name, shape)
    ok = np.isfinite(values) & (values >= 0) & (values <= high)
    if not ok.all() or (whole and (values != np.floor(values)).any()):
        raise ConfigError(f"a logged list's `{name}` must be {what}")
    return values


def _as_logs(logs) -> Logs:
    return logs if isinstance(logs, Logs) else Logs(logs)


def ips(logs) -> float:
    a = _as_logs(logs).a
    return float(np.mean((a["match"] * a["clicks"] / a["marginals"]).sum(1)))


def snips(logs) -> float:
    a = _as_logs(logs).a
    num = (a["match"] * a["clicks"] / a["marginals"]).sum(0)
    den = (a["match"] / a["marginals"]).sum(0)
    return float(np.sum(np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)))


@dataclass
class ClickModel:
    """P(click at r) = examination[r] x min(attraction[g] x item_factor[item], 1)."""

    examination: np.ndarray  # per position
    attraction: np.ndarray  # per greedy rank (the last: outside the greedy list, or never seen)
    item_factor: np.ndarray  # per item code of the Logs it was fitted on (1: no item information)

    def attract(self, ranks: np.ndarray, items: np.ndarray) -> np.ndarray:
        g = np.minimum(ranks, len(self.attraction) - 1)
        factor = self.item_factor[items]
        return np.minimum(self.attraction[g] * factor, 1.0)


def fit_click_model(logs, shrink: float = SHRINK, iterations: int = EM_ITERATIONS) -> ClickModel:
    """EM for the position-based model on the shown lists. Each shown item's examination and
    attraction are hidden; a click means both happened. The item factor's update adds `shrink`
    pseudo-views at factor 1 to the item's attracted and expected counts."""
    logs = _as_logs(logs)
    shrink, iterations = number_arg("shrink", shrink), count_arg("iterations", iterations, 1)
    if shrink <= 0:  # an item seen only in target lists would get the factor 0 / 0
        raise ConfigError(f"shrink must be above 0 pseudo-views (got {shrink})")
    a = logs.a
    n, k = a["clicks"].shape
    clicks, rank, item = a["clicks"].ravel(), a["shown_rank"].ravel(), a["shown_item"].ravel()
    pos = np.tile(np.arange(k), n)
    n_ranks = max(k, int(rank.max()) + 1, int(a["target_rank"].max()) + 1)
    n_items = logs.n_items
    seen = np.bincount(rank, minlength=n_ranks)
    # start below 1: examination 1 everywhere is a fixed point of EM (a non-click would mean "not attracted")
    ctr = np.bincount(pos, clicks, minlength=k) + 1.0
    exam, attr, factor = 0.5 * ctr / ctr.max(), np.full(n_ranks, 0.5), np.ones(n_items)
    clicked = clicks > 0
    for _ in range(iterations):
        e, p = exam[pos], np.clip(attr[rank] * factor[item], 1e-6, 1 - 1e-6)
        missed = 1 - e * p
        post_e = np.where(clicked, 1.0, e * (1 - p) / missed)  # P(examined | what happened)
        post_a = np.where(clicked, 1.0, (1 - e) * p / missed)  # P(attracted | what happened)
        exam = np.bincount(pos, post_e, minlength=k) / n
        attr = np.bincount(rank, post_a, minlength=n_ranks) / np.maximum(
            np.bincount(rank, factor[item], minlength=n_ranks), 1e-12)
        if "target_at" in a:  # item ids were logged
            factor = (np.bincount(item, post_a, minlength=n_items) + shrink) / (
                np.bincount(item, attr[rank], minlength=n_items) + shrink)
    # a greedy rank never shown (it can still hold a target item) gets the shown items' mean attraction
    attr = np.where(seen > 0, attr, np.average(attr, weights=np.maximum(seen, 1e-12)))
    return ClickModel(exam, attr, factor)


def model_terms(logs, q: ClickModel) -> dict[str, np.ndarray]:
    """Per list: the DR, DM and (with item-level logs) DR-PBM terms under the click model q."""
    logs = _as_logs(logs)
    a = logs.a
    q = _check_model(q, a["clicks"].shape[1], logs.n_items)
    exam = q.examination[None, :]
    alpha = q.attract(a["target_rank"], a["target_item"])
    shown_q = exam * q.attract(a["shown_rank"], a["shown_item"])
    dm = (exam * alpha).sum(1)
    out = {"DR": dm + (a["match"] / a["marginals"] * (a["clicks"] - shown_q)).sum(1), "DM": dm}
    if "target_exposure" in a:
        reach = a["target_exposure"] @ q.examination  # [n, r]: examination the logger gives target item r
        at = a["target_at"]
        s = np.maximum(at, 0)
        hit = (at >= 0) & (reach > 0)
        got = np.take_along_axis(a["clicks"], s, 1) - q.examination[s] * alpha
        out["DR-PBM"] = (exam * (alpha + np.where(hit, got / np.where(hit, reach, 1.0), 0.0))).sum(1)
    return out


def _check_model(q: ClickModel, k: int, n_items: int) -> ClickModel:
    """q as float arrays, if it speaks of these logs: one examination per position, a factor for each item
    code, probabilities."""
    try:
        parts = [np.asarray(v, np.float64) for v in (q.examination, q.attraction, q.item_factor)]
    except (TypeError, ValueError):
        raise ConfigError("the click model's examination, attraction and item factors must be numbers") from None
    if (parts[0].shape != (k,) or parts[1].ndim != 1 or len(parts[1]) == 0 or parts[2].ndim != 1
            or len(parts[2]) < n_items):
        raise ConfigError(f"the click model does not fit these logs: it needs {k} examination values, at least one "
                          f"attraction and {n_items} item factor(s) (fit it on these logs: fit_click_model)")
    if not all(np.isfinite(v).all() and (v >= 0).all() for v in parts) or (parts[0] > 1).any():
        raise ConfigError("the click model's examination must be probabilities and its attraction and item "
                          "factors finite numbers >= 0")
    return ClickModel(*parts)


def fitted_terms(logs, q: ClickModel | None = None) -> dict[str, np.ndarray]:
    """model_terms under `q`, or under a click model fitted on the same logs."""
    logs = _as_logs(logs)
    return model_terms(logs, fit_click_model(logs) if q is None else q)


def doubly_robust(logs, q: ClickModel | None = None) -> float:
    return float(np.mean(fitted_terms(logs, q)["DR"]))


def direct_method(logs, q: ClickModel | None = None) -> float:
    return float(np.mean(fitted_terms(logs, q)["DM"]))


def doubly_robust_pbm(logs, q: ClickModel | None = None) -> float:
    logs = _as_logs(logs)
    _need_exposure(logs, "DR-PBM")
    return float(np.mean(fitted_terms(logs, q)["DR-PBM"]))


def _need_exposure(logs: Logs, what: str) -> None:
    if "target_exposure" not in logs.a:
        raise ConfigError(f"{what} needs item-level logs: each list's shown and target item ids and the logger's "
                          "table of where it puts each target item (target_exposure; runtime exploration logs it)")


def estimates(logs) -> dict[str, float]:
    """IPS, SNIPS, DR, DM and, when the logs hold item ids and target exposures, DR-PBM."""
    logs = _as_logs(logs)
    found = {"IPS": ips(logs), "SNIPS": snips(logs)}
    found.update({name: float(np.mean(t)) for name, t in fitted_terms(logs).items()})
    return found


def thin_support(logs, q: ClickModel | None = None) -> dict[str, float] | None:
    """Where the logs can hardly see the target: (list, position) pairs whose item the logger puts at
    that position with probability below 1 / lists (not expected once in these logs; 0 for an item
    outside the short list). IPS, SNIPS and DR's correction learn nothing there: IPS mostly misses that
    value (skewed low, now and then far high), SNIPS imputes it. Returns the share of the target's
    positions and the share of its value under the click model q; None without the logger's tables."""
    logs = _as_logs(logs)
    a = logs.a
    if "target_exposure" not in a:
        return None
    k = a["clicks"].shape[1]
    thin = a["target_exposure"][:, np.arange(k), np.arange(k)] < 1.0 / len(logs)
    q = _check_model(fit_click_model(logs) if q is None else q, k, logs.n_items)
    value = q.examination[None, :] * q.attract(a["target_rank"], a["target_item"])
    return {"positions": float(thin.mean()), "value": float(value[thin].sum() / max(value.sum(), 1e-12)),
            "outside_short_list": float((a["target_exposure"].sum(2) == 0).mean()),
            "ips_lists_for_goal": lists_for_goal(ips_spread(logs, q), float(value.sum(1).mean()), 1)}


def expected_under_logger(logs, values, q: ClickModel | None = None) -> dict[str, float]:
    """What IPS, SNIPS and DR come to on average over the logger's draws on these lists' states, given the
    true click probability of each target item at its position (`values`, n lists x k: a simulator knows
    it, examination x attraction). The logger puts target item r at position r with probability P (its
    table, `target_exposure`) and a click there then counts c / P, so

        E[IPS] = mean_n sum_r v [P > 0]             (short of the truth by the value where P = 0)
        E[DR]  = DM + mean_n sum_r [P > 0] (v - q)  (q, the fitted click model, held fixed; it rates an
                                                    item alike shown or targeted: one greedy rank each)
        SNIPS -> sum_r mean_n(v [P > 0]) / mean_n([P > 0])   (per position; its limit, not its mean)

    Beside the truth these are each estimator's bias; what the realised estimate adds to them is noise.
    On MovieLens-100K a run 34% off for IPS and 29% for DR had these at -0.5% and +0.3%."""
    logs = _as_logs(logs)
    _need_exposure(logs, "the estimators' expectation")
    a = logs.a
    n, k = a["clicks"].shape
    v = np.asarray(values, np.float64)
    if v.shape != (n, k) or not np.isfinite(v).all() or (v < 0).any() or (v > 1).any():
        raise ConfigError(f"values must be the true click probability of each target item at its position: "
                          f"{n} x {k} numbers in [0, 1] (got shape {v.shape})")
    q = _check_model(fit_click_model(logs) if q is None else q, k, logs.n_items)
    seen = a["target_exposure"][:, np.arange(k), np.arange(k)] > 0
    modelled = q.examination[None, :] * q.attract(a["target_rank"], a["target_item"])
    share = seen.mean(0)
    snips = float(np.sum(np.where(share > 0, (v * seen).mean(0) / np.maximum(share, 1e-300), 0.0)))
    return {"IPS": float((v * seen).sum(1).mean()), "SNIPS": snips,
            "DR": float(modelled.sum(1).mean() + ((v - modelled) * seen).sum(1).mean())}


def ips_spread(logs, q: ClickModel) -> float:
    """IPS's standard deviation per list under the click model q, the rare large weights included: a target
    item at position r that the logger puts there with probability P and that is clicked with probability
    c adds c / P to the second moment (pairs of positions counted as if independent). A bootstrap of 5,000 lists cannot
    show a weight of 1 / P = 10^6 that those lists never drew, so it understates IPS's noise exactly where
    support is thin; this does not. Needs the logger's tables (`target_exposure`)."""
    logs = _as_logs(logs)
    _need_exposure(logs, "IPS's spread")
    q = _check_model(q, logs.a["clicks"].shape[1], logs.n_items)
    a = logs.a
    k = a["clicks"].shape[1]
    p = a["target_exposure"][:, np.arange(k), np.arange(k)]
    c = q.examination[None, :] * q.attract(a["target_rank"], a["target_item"])
    c = np.where(p > 0, c, 0.0)  # outside the short list IPS has no weight: a bias, not noise
    # E[(sum_r m c / P)^2]: each position's c / P, and the pairs as if drawn independently
    second = (c / np.where(p > 0, p, 1.0) + c.sum(1, keepdims=True) * c - c ** 2).sum(1).mean()
    return float(np.sqrt(max(second - c.sum(1).mean() ** 2, 0.0)))


def standard_errors(logs, resamples: int = 200, seed: int = 0, users=None) -> dict[str, float | None]:
    """Bootstrap standard error of each estimator (the click model refitted each time).

    `users`: who logged each list (one label per list). A user's lists share the user's tastes, so they
    are resampled together (a cluster bootstrap): resampling lists as if independent understated the
    errors 1.5x on 150 users x 5 days. Without `users` the lists are resampled (one list per user).

    None where every resample gave the same figure: the lists then show none of the estimator's noise
    (IPS on two lists, none matching the target, drew 0 each time), which a 0 would report as none at all."""
    logs = _as_logs(logs)
    rng = np.random.default_rng(count_arg("seed", seed, 0))
    resamples = count_arg("resamples", resamples, 2)  # a standard deviation needs two draws
    rows = _clusters(users, len(logs))
    draws: dict[str, list[float]] = {}
    for _ in range(resamples):
        pick = np.concatenate([rows[i] for i in rng.integers(0, len(rows), len(rows))])
        for name, v in estimates(logs.take(pick)).items():
            draws.setdefault(name, []).append(v)
    return {name: float(np.std(v, ddof=1)) if np.ptp(v) > 0 else None for name, v in draws.items()}


def _clusters(users, lists: int) -> list[np.ndarray]:
    """The rows of each user's lists (each list its own user when `users` is None)."""
    if users is None:
        return [np.array([i]) for i in range(lists)]
    users = np.asarray(users)
    if users.shape != (lists,):
        raise ConfigError(f"need one user per logged list ({lists}), got shape {users.shape}")
    try:
        _, code = np.unique(users, return_inverse=True)
    except TypeError:  # names of mixed types (None among strings) have no order
        raise ConfigError("the users of the lists must be all strings or all numbers") from None
    order = np.argsort(code, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(code[order])) + 1)


def cluster_standard_error(values, users) -> float | None:
    """Standard error of the mean of per-list `values` when each user's lists are one cluster (the
    sandwich of a mean: sqrt(G / (G - 1) sum_g (sum of user g's deviations)^2) / lists, G users).
    With one list per user it is std / sqrt(n) (ddof 1); with several, it counts that a user's lists
    move together (std / sqrt(lists) said 0.019 where this says 0.037 on 150 users x 5 days)."""
    v = np.asarray(values, np.float64)
    if v.ndim != 1 or not np.isfinite(v).all():
        raise ConfigError("the per-list values must be one finite number per list")
    rows = _clusters(users, len(v))
    if len(rows) < 2:  # one user: their lists tell nothing of how another user's would spread (not "exact")
        return None
    deviation = v - v.mean()
    sums = np.array([deviation[r].sum() for r in rows])
    return float(np.sqrt(len(rows) / (len(rows) - 1) * (sums ** 2).sum()) / len(v))


def between_user_share(values, users) -> float:
    """The share of the variance of the mean of per-list `values` that more lists of the same users
    cannot shrink: the between-user part of a one-way random-effects split, from the cluster and the
    independent-lists variances (user mean variance s_b^2, within s_w^2: lists x var_lists = s_b^2 + s_w^2,
    lists x var_cluster = m s_b^2 + s_w^2, m lists per user). 0 with one list per user, or one user (nothing
    to split)."""
    v = np.asarray(values, np.float64)
    rows = _clusters(users, len(v))
    m = len(v) / len(rows)
    if m <= 1 or len(v) < 2:
        return 0.0
    independent = float(v.var(ddof=1)) / len(v)
    cluster = (cluster_standard_error(v, users) or 0.0) ** 2
    if cluster <= 0:
        return 0.0
    between = max(len(v) * (cluster - independent) / (m - 1), 0.0)  # s_b^2
    return float(min(max(m * between / (len(v) * cluster), 0.0), 1.0))


def list_terms(logs) -> dict[str, np.ndarray]:
    """Each estimator's per-list terms (SNIPS: IPS's, its numerator), to split its variance by user."""
    logs = _as_logs(logs)
    a = logs.a
    ips_terms = (a["match"] * a["clicks"] / a["marginals"]).sum(1)
    return {"IPS": ips_terms, "SNIPS": ips_terms, **fitted_terms(logs)}


def lists_for_goal(standard_error: float | None, truth: float, lists: int, goal: float = GOAL,
                   z: float = 1.96) -> float | None:
    """Logged lists an estimator needs for its noise alone to keep 95% of runs within `goal` of the truth
    (z standard errors at most goal x truth; the standard error shrinks as 1 / sqrt(lists)). Above the
    lists at hand, a "within 5%" verdict on one run is mostly luck. None when the noise was not measured
    or the truth is 0 (no relative goal). With a user-cluster standard error (standard_errors with users)
    the lists are meant from more users at the same lists per user; more days of the same users shrink
    only the within-user part (days_for_goal with between_share)."""
    if standard_error is None:
        return None
    standard_error, truth = number_arg("standard_error", standard_error), number_arg("truth", truth)
    lists, goal, z = count_arg("lists", lists, 1), number_arg("goal", goal), number_arg("z", z)
    if standard_error < 0 or goal <= 0 or z <= 0:
        raise ConfigError(f"need a standard error >= 0 and a goal and z above 0 (got {standard_error}, {goal}, {z})")
    if truth <= 0:
        return None
    ratio = z * standard_error / (goal * truth)
    return lists * ratio * ratio  # a Python float: inf past float64, never an OverflowError


def days_for_goal(lists_needed: float | None, lists: int, days: int, between_share: float = 0.0) -> int | None:
    """Days of the same users a run needs to bring its variance from what `lists` lists over `days` days
    gave down to that of `lists_needed` lists: what to pass as --days for a verdict that is not luck (at
    least the days run; None if not known).

    `between_share` (between_user_share): the share of that variance that comes from the users themselves
    and does not shrink with more days of them. The variance after f times the days is
    V (b + (1 - b) / f), so f = (1 - b) / (r - b) with r = lists / lists_needed; with b >= r no number of
    days gets there (None: more users are needed). b = 0 is the old rule, days x lists_needed / lists."""
    if lists_needed is None:
        return None
    if isinstance(lists, bool) or isinstance(days, bool) or not (isinstance(lists, numbers.Integral)
                                                                 and isinstance(days, numbers.Integral)):
        raise ConfigError(f"lists and days must be whole numbers (got {lists!r} and {days!r})")
    if lists <= 0 or days <= 0:
        raise ConfigError(f"need a run that logged lists (got {lists} lists over {days} days)")
    share = number_arg("between_share", between_share)
    if not 0 <= share <= 1:
        raise ConfigError(f"between_share must be in [0, 1] (got {between_share}): the share of the variance "
                          "that comes from the users (ope.between_user_share)")
    needed = days * number_arg("lists_needed", lists_needed) / lists
    if needed < 0:
        raise ConfigError(f"lists_needed must be >= 0 (got {lists_needed})")
    if share == 0 or needed <= days:
        return max(int(days), math.ceil(needed))
    ratio = lists / float(lists_needed)  # the variance wanted, as a share of the run's
    if ratio <= share:
        return None
    return max(int(days), math.ceil(days * (1 - share) / (ratio - share)))


def seed_summary(rows: list[dict], goal: float = GOAL) -> dict[str, dict]:
    """Over runs of several seeds (each row: every estimator's estimate and `true_value`), each
    estimator's relative error: mean signed (its bias), mean absolute with its standard error over the
    seeds (`se`) and standard deviation (`sd`), root mean square, the share of seeds within `goal` of the
    truth and the share on which it is closer than IPS: one seed's error says little, the order of the
    estimators changes from seed to seed."""
    if not rows:
        raise ConfigError("no runs to summarise: pass one row per seed")
    truth = np.array([r["true_value"] for r in rows], np.float64)
    if not (np.isfinite(truth).all() and (truth != 0).all()):
        raise ConfigError("a relative error needs a finite, non-zero true value in every row")
    names = [name for name in rows[0] if name not in ("seed", "lists", "true_value", "true_value_se")]
    signed = {name: (np.array([r[name] for r in rows]) - truth) / truth for name in names}
    err = {name: np.abs(e) for name, e in signed.items()}
    spread = lambda e: float(e.std(ddof=1)) if len(e) > 1 else 0.0  # noqa: E731
    return {name: {"mean": float(e.mean()), "sd": spread(e), "se": spread(e) / np.sqrt(len(e)),
                   "signed": float(signed[name].mean()), "rmse": float(np.sqrt(np.mean(e ** 2))),
                   "within_goal": float(np.mean(e <= goal)),
                   "closer_than_ips": float(np.mean(e < err["IPS"])) if "IPS" in err else None}
            for name, e in err.items()}
