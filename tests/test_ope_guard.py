"""Guards of the off-policy estimators (studies/ope.py): IPS, SNIPS, DR, DM and DR-PBM worked by hand, the
click model's EM against a loop written from its update rules, the invariant that a target equal to the
logging policy estimates the logged mean, the bootstrap, the goal arithmetic and hostile logs, which must
be a ConfigError, never a numpy warning, an IndexError or a NaN estimate. Mutation note 34."""

import math
import warnings

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.studies import ope


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _list(clicks, marginals, match, shown_rank, target_rank, shown=None, target=None, exposure=None):
    arr = lambda v, dtype=None: None if v is None else np.array(v, dtype)  # noqa: E731
    return ope.LoggedList(arr(clicks, float), arr(marginals, float), arr(match, bool), arr(shown_rank),
                          arr(target_rank), arr(shown), arr(target), arr(exposure, float))


def _item_level():
    """Two lists of two positions with item ids and the logger's exposure tables.

    List 1 shows [10, 20] and is clicked at position 1; the target wants [20, 30]: item 20 sits at position 1,
    not 0 (no match), item 30 was not shown. List 2 shows [20, 10], clicked at 0; the target wants [20, 10]
    (both match)."""
    return [_list([0, 1], [0.5, 0.5], [False, False], [0, 1], [1, 2], [10, 20], [20, 30],
                  [[0.3, 0.5], [0.1, 0.2]]),
            _list([1, 0], [0.25, 0.5], [True, True], [1, 0], [1, 0], [20, 10], [20, 10],
                  [[0.25, 0.5], [0.4, 0.5]])]


Q = ope.ClickModel(np.array([1.0, 0.5]), np.array([0.4, 0.2, 0.1]), np.array([1.0, 1.0, 2.0]))  # codes 10, 20, 30


def test_every_estimator_on_item_level_logs_worked_by_hand():
    logs = _item_level()
    # IPS: list 1 has no match; list 2 matches both, click at 0 with P 0.25: 4
    assert ope.ips(logs) == 2.0
    # SNIPS per position: 0: (0 + 1 / .25) / (0 + 1 / .25) = 1; 1: (0 + 0) / (0 + 1 / .5) = 0
    assert ope.snips(logs) == 1.0
    # target attraction (rank, item factor): list 1: 20 at rank 1 -> .2, 30 at rank 2 x 2 -> .2; list 2: .2, .4
    # DM: list 1: 1 x .2 + .5 x .2 = .3; list 2: .2 + .5 x .4 = .4
    assert ope.direct_method(logs, Q) == pytest.approx(0.35, rel=1e-12)
    # DR: list 2's corrections: (1 - 1 x .2) / .25 = 3.2 and (0 - .5 x .4) / .5 = -.4 -> .4 + 2.8 = 3.2
    assert ope.doubly_robust(logs, Q) == pytest.approx((0.3 + 3.2) / 2, rel=1e-12)
    # DR-PBM, list 1: item 20 reaches .3 x 1 + .5 x .5 = .55 examination; shown at 1, clicked:
    #   1 x (.2 + (1 - .5 x .2) / .55) and item 30 (never shown) .5 x .2
    # list 2: item 20 reaches .25 + .25 = .5, shown at 0, clicked: .2 + (1 - .2) / .5 = 1.8;
    #   item 10 reaches .4 + .25 = .65, shown at 1, no click: .5 x (.4 + (0 - .5 x .4) / .65)
    one = 0.2 + 0.9 / 0.55 + 0.5 * 0.2
    two = 1.8 + 0.5 * (0.4 - 0.2 / 0.65)
    assert ope.doubly_robust_pbm(logs, Q) == pytest.approx((one + two) / 2, rel=1e-12)
    terms = ope.model_terms(logs, Q)
    assert terms["DR-PBM"] == pytest.approx([one, two], rel=1e-12) and terms["DM"] == pytest.approx([0.3, 0.4])


def test_an_explicit_click_model_is_the_one_used():
    logs = _item_level()
    fitted = ope.fit_click_model(logs)
    for estimator in (ope.doubly_robust, ope.direct_method, ope.doubly_robust_pbm):
        assert estimator(logs, Q) != estimator(logs)
        assert estimator(logs) == estimator(logs, fitted) == estimator(ope.Logs(logs), fitted)


def test_a_target_equal_to_the_logging_policy_estimates_the_logged_mean():
    """A deterministic logger (every marginal 1) and a target showing the same lists: every estimator but DM
    is the mean of the logged clicks per list, whatever the click model."""
    rng = np.random.default_rng(50)
    k, n = 3, 40
    logs = []
    for _ in range(n):
        items = rng.permutation(9)[:k]
        logs.append(_list(rng.random(k) < 0.4, np.ones(k), np.ones(k, bool), np.arange(k), np.arange(k), items,
                          items, np.eye(k)))
    logged = float(np.mean([lg.clicks.sum() for lg in logs]))
    wrong = ope.ClickModel(np.array([0.9, 0.1, 0.05]), np.array([0.8, 0.01, 0.3, 0.2]), np.full(9, 0.5))
    for q in (None, wrong):
        found = {"IPS": ope.ips(logs), "SNIPS": ope.snips(logs), "DR": ope.doubly_robust(logs, q),
                 "DR-PBM": ope.doubly_robust_pbm(logs, q)}
        assert found == pytest.approx(dict.fromkeys(found, logged), rel=1e-12)
    assert ope.estimates(logs)["DM"] != pytest.approx(logged, rel=1e-6)


def test_snips_normalises_each_position_by_its_own_weights():
    """SNIPS does not change when the logger's probabilities at one position are all scaled; IPS does."""
    logs = [_list([1, 0], [0.5, 0.4], [True, True], [0, 1], [0, 1]),
            _list([0, 1], [0.5, 0.8], [True, True], [0, 1], [0, 1]),
            _list([1, 1], [0.25, 0.8], [True, False], [0, 1], [0, 1])]
    # position 0: (2 + 0 + 4) / (2 + 2 + 4); position 1: (0 + 1.25) / (2.5 + 1.25)
    assert ope.snips(logs) == pytest.approx(6 / 8 + 1.25 / 3.75, rel=1e-12)
    half = [_list(lg.clicks, lg.marginals * [0.5, 1.0], lg.match, lg.shown_rank, lg.target_rank) for lg in logs]
    assert ope.snips(half) == pytest.approx(ope.snips(logs), rel=1e-12)
    assert ope.ips(half) == pytest.approx(ope.ips(logs) + (2 + 0 + 4) / 3, rel=1e-12)
    # one match with probability 1: its click counts as it is; a position nobody matches counts 0
    assert ope.snips([_list([1, 1], [1.0, 0.5], [True, False], [0, 1], [0, 1])]) == 1.0
    assert ope.snips([_list([1, 1], [1.0, 0.5], [False, False], [0, 1], [0, 1])]) == 0.0


# ---- the click model -----------------------------------------------------------------------------------------

def _em_by_hand(logs, shrink=20.0, iterations=100):
    """The EM of fit_click_model written as loops over the observations, from its update rules."""
    a = ope.Logs(logs).a
    n, k = a["clicks"].shape
    items = "target_at" in a
    obs = [(r, a["clicks"][i, r], a["shown_rank"][i, r], a["shown_item"][i, r]) for i in range(n) for r in range(k)]
    n_ranks = max(k, a["shown_rank"].max() + 1, a["target_rank"].max() + 1)
    n_items = max(a["shown_item"].max(), a["target_item"].max()) + 1
    ctr = [1.0 + sum(c for r, c, _, _ in obs if r == pos) for pos in range(k)]
    exam = [0.5 * v / max(ctr) for v in ctr]
    attr, factor = [0.5] * n_ranks, [1.0] * n_items
    for _ in range(iterations):
        e_sum, a_sum, a_den = [0.0] * k, [0.0] * n_ranks, [0.0] * n_ranks
        i_sum = [0.0] * n_items
        for r, c, g, item in obs:
            e, p = exam[r], min(max(attr[g] * factor[item], 1e-6), 1 - 1e-6)
            post_e = 1.0 if c else e * (1 - p) / (1 - e * p)
            post_a = 1.0 if c else (1 - e) * p / (1 - e * p)
            e_sum[r] += post_e
            a_sum[g] += post_a
            a_den[g] += factor[item]
            i_sum[item] += post_a
        exam = [v / n for v in e_sum]
        attr = [s / max(d, 1e-12) for s, d in zip(a_sum, a_den)]
        if items:
            i_den = [0.0] * n_items
            for _, _, g, item in obs:
                i_den[item] += attr[g]
            factor = [(s + shrink) / (d + shrink) for s, d in zip(i_sum, i_den)]
    seen = [sum(1 for _, _, g, _ in obs if g == rank) for rank in range(n_ranks)]
    mean = sum(s * v for s, v in zip(seen, attr)) / sum(seen)
    return exam, [v if s else mean for s, v in zip(seen, attr)], factor


def _em_logs():
    """Five lists of 3 with item ids: greedy ranks 2 and 3 are shown once and never, 5 and 6 only in the
    target, item "z" only in the target; "c" (clicked once) and "e" (never) share greedy rank 4, and "e" is
    rank 3's only view (its attraction is divided by e's factor, below 1)."""
    rows = [(["a", "b", "c"], [0, 1, 4], [1, 0, 0], ["a", "d", "z"], [0, 5, 6]),
            (["b", "a", "c"], [1, 0, 4], [0, 1, 0], ["a", "b", "c"], [0, 1, 4]),
            (["a", "e", "b"], [0, 4, 1], [0, 0, 1], ["a", "c", "b"], [0, 4, 1]),
            (["c", "b", "a"], [4, 1, 0], [1, 0, 0], ["a", "b", "z"], [0, 1, 6]),
            (["d", "a", "e"], [2, 0, 3], [0, 0, 0], ["a", "b", "c"], [0, 1, 4])]
    return [_list(c, [0.5, 0.5, 0.5], np.array(s) == np.array(t), sr, tr, s, t, np.full((3, 3), 0.2))
            for s, sr, c, t, tr in rows]


@pytest.mark.parametrize("kwargs", [{}, {"shrink": 5.0, "iterations": 3}, {"iterations": 1}])
def test_the_click_models_em_is_its_update_rules(kwargs):
    logs = _em_logs()
    exam, attr, factor = _em_by_hand(logs, **kwargs)
    q = ope.fit_click_model(logs, **kwargs)
    assert q.examination == pytest.approx(exam, rel=1e-9)
    assert q.attraction == pytest.approx(attr, rel=1e-9) and len(q.attraction) == 7
    assert q.item_factor == pytest.approx(factor, rel=1e-9) and len(q.item_factor) == 6
    assert q.item_factor[4] < 1 < q.item_factor[2] and q.item_factor[5] == 1.0  # "z" never shown: the prior's 1


def test_the_click_model_without_item_ids_has_one_factor_and_the_defaults():
    logs = [_list(lg.clicks, lg.marginals, lg.match, lg.shown_rank, lg.target_rank) for lg in _em_logs()]
    q = ope.fit_click_model(logs)
    exam, attr, _ = _em_by_hand(logs)
    assert q.item_factor.tolist() == [1.0] and q.examination == pytest.approx(exam, rel=1e-9)
    assert q.attraction == pytest.approx(attr, rel=1e-9)
    fitted = ope.fit_click_model(_em_logs())
    same = ope.fit_click_model(_em_logs(), shrink=20.0, iterations=100)
    assert fitted.attraction.tolist() == same.attraction.tolist()
    assert fitted.item_factor.tolist() == same.item_factor.tolist()


def test_shown_ranks_past_the_targets_set_the_number_of_ranks():
    logs = [_list([1, 0], [0.5, 0.5], [True, False], [0, 5], [0, 1]), _list([0, 1], [0.5, 0.5], [True, False],
                                                                           [5, 1], [1, 0])]
    q = ope.fit_click_model(logs)
    assert len(q.attraction) == 6 and q.attraction == pytest.approx(_em_by_hand(logs)[1], rel=1e-9)


def test_a_short_greedy_list_keeps_an_attraction_for_every_position():
    """Every shown item at greedy rank 0 of k = 3: the model still has k ranks (the unseen at the mean)."""
    logs = [_list([1, 0, 0], [1, 1, 1], [True] * 3, [0, 0, 0], [0, 0, 0]) for _ in range(3)]
    q = ope.fit_click_model(logs)
    assert len(q.attraction) == 3 and q.attraction[1:] == pytest.approx([q.attraction[0]] * 2, rel=1e-12)


def test_attract_caps_at_one_and_reads_ranks_past_the_list_as_its_last():
    q = ope.ClickModel(np.ones(2), np.array([0.6, 0.3]), np.array([1.0, 2.5]))
    assert q.attract(np.array([0, 1, 7]), np.array([1, 1, 0])).tolist() == [1.0, 0.75, 0.3]


# ---- the spread of IPS, thin support -------------------------------------------------------------------------

def test_ips_spread_worked_by_hand():
    """One list, target items clicked with c = (.5, .2, .1) where the logger puts them with P = (.5, .1, 0):
    E[IPS^2] = c0 / P0 + c1 / P1 + 2 c0 c1 (the third has no weight: a bias, not noise); E[IPS] = c0 + c1."""
    q = ope.ClickModel(np.array([1.0, 0.5, 0.25]), np.array([0.5, 0.4, 0.4]), np.ones(3))
    logs = [_list([0, 0, 0], [1.0, 1.0, 1.0], [False] * 3, [0, 1, 2], [0, 1, 2], [1, 2, 3], [1, 2, 3],
                  [[0.5, 0.2, 0.3], [0.4, 0.1, 0.5], [0.0, 0.6, 0.0]])]
    second = 0.5 / 0.5 + 0.2 / 0.1 + 2 * 0.5 * 0.2
    assert ope.ips_spread(logs, q) == pytest.approx(math.sqrt(second - 0.7 ** 2), rel=1e-12)
    # a target nobody can click has no spread (not a negative variance, not 1)
    assert ope.ips_spread(logs, ope.ClickModel(np.zeros(3), np.full(3, 0.5), np.ones(3))) == 0.0


def test_thin_support_at_exactly_once_in_the_logs():
    """Four lists: a position the logger fills with P = 1/4 is expected once, so it is not thin."""
    table = [[0.25, 0.5], [0.2, 0.0]]
    logs = [_list([0, 0], [0.5, 0.5], [False, False], [0, 1], [0, 1], [1, 2], [3, 4], table) for _ in range(4)]
    q = ope.ClickModel(np.array([0.5, 0.25]), np.array([0.4, 0.2]), np.ones(4))
    out = ope.thin_support(logs, q)
    value = [0.5 * 0.4, 0.25 * 0.2]  # position 0 is not thin (1/4), position 1 is (0)
    assert out["positions"] == 0.5 and out["value"] == pytest.approx(value[1] / sum(value), rel=1e-12)
    assert out["outside_short_list"] == 0.0
    assert out != ope.thin_support(logs)  # the click model given is the one used
    assert out["ips_lists_for_goal"] == pytest.approx(ope.lists_for_goal(ope.ips_spread(logs, q), sum(value), 1))
    # value shares on a small scale are not rounded away: all of it thin
    tiny = ope.ClickModel(np.array([1e-3, 1e-3]), np.array([1e-3, 1e-3]), np.ones(4))
    thin = [_list([0, 0], [0.5, 0.5], [False, False], [0, 1], [0, 1], [1, 2], [3, 4], [[0.1, 0], [0, 0.1]])
            for _ in range(4)]
    assert ope.thin_support(thin, tiny)["value"] == pytest.approx(1.0, rel=1e-12)


def test_dr_pbm_ignores_a_shown_target_item_the_logger_could_never_place():
    """Contradictory logs (the item was shown but its exposure row is 0) must not divide by zero."""
    logs = [_list([1, 0], [0.5, 0.5], [False, False], [0, 1], [0, 1], [10, 20], [20, 30], [[0.0, 0.0], [0.1, 0.2]])]
    assert ope.doubly_robust_pbm(logs, Q) == pytest.approx(1.0 * 0.4 + 0.5 * 0.4, rel=1e-12)


# ---- the bootstrap and the goal ------------------------------------------------------------------------------

def _bootstrap_by_hand(logs, resamples, seed):
    rng = np.random.default_rng(seed)
    draws = {}
    for _ in range(resamples):
        picked = [logs[i] for i in rng.integers(0, len(logs), len(logs))]
        for name, v in ope.estimates(picked).items():
            draws.setdefault(name, []).append(v)
    return {name: float(np.std(v, ddof=1)) if max(v) > min(v) else None for name, v in draws.items()}


def test_standard_errors_are_the_spread_of_estimates_over_resampled_lists():
    logs = _item_level() + _em_logs()[:0]
    logs = logs + [_list([0, 0], [0.5, 0.5], [True, False], [0, 1], [1, 2], [10, 30], [10, 20],
                         [[0.5, 0.1], [0.3, 0.3]])]
    got = ope.standard_errors(logs, resamples=12, seed=3)
    assert got == pytest.approx(_bootstrap_by_hand(logs, 12, 3), rel=1e-9)
    assert set(got) == {"IPS", "SNIPS", "DR", "DM", "DR-PBM"} and all(v > 0 for v in got.values())
    assert ope.standard_errors(logs, 200, 0) == ope.standard_errors(logs) != ope.standard_errors(logs, seed=1)
    assert ope.standard_errors(logs) != ope.standard_errors(logs, resamples=201)
    # the first list is drawn too: only it has a click on a match at position 0
    first = [logs[1], logs[0], logs[0]]
    assert ope.standard_errors(first, resamples=30)["IPS"] is not None


def test_a_small_standard_error_is_reported_not_dropped():
    """Estimates that vary by less than 1 across resamples still have a standard error."""
    logs = [_list([i % 2, 0], [1.0, 1.0], [True, True], [0, 1], [0, 1]) for i in range(6)]
    got = ope.standard_errors(logs, resamples=20)
    assert 0 < got["IPS"] < 1 and got["IPS"] == pytest.approx(_bootstrap_by_hand(logs, 20, 0)["IPS"], rel=1e-9)


def test_lists_and_days_for_goal_arithmetic():
    assert ope.lists_for_goal(0.2, 2.0, 300, goal=0.1, z=2.5) == pytest.approx(300 * (2.5 * 0.2 / 0.2) ** 2)
    assert ope.lists_for_goal(0.0, 2.0, 300) == 0.0 and ope.lists_for_goal(None, 2.0, 300) is None
    assert ope.lists_for_goal(0.1, 1.0, 50, goal=0.2, z=1.0) == pytest.approx(50 * 0.25, rel=1e-12)
    assert ope.lists_for_goal(0.1, 0.0, 300) is None and ope.lists_for_goal(0.1, -1.0, 300) is None
    assert ope.days_for_goal(1000.0, 300, 7) == math.ceil(7 * 1000 / 300) == 24
    assert ope.days_for_goal(10.0, 300, 7) == 7  # fewer lists than logged: at least the days run
    assert ope.days_for_goal(600.0, 300, 1) == 2 and ope.days_for_goal(0.0, 300, 3) == 3
    assert ope.days_for_goal(None, 0, 0) is None
    assert ope.days_for_goal(301.0, 300, np.int64(1)) == 2
    assert ope.days_for_goal(3.0, 1, 2) == 6  # a run that logged one list


@pytest.mark.parametrize("args, message", [
    ((-0.1, 1.0, 100), r"standard error >= 0"), ((float("nan"), 1.0, 100), "standard_error must be finite"),
    ((0.1, float("nan"), 100), "truth must be finite"), ((0.1, 1.0, 0), "lists must be a whole number of at least 1"),
    ((0.1, 1.0, 2.5), "lists must be"), ((0.1, 1.0, 100, 0.0), r"goal and z above 0"),
    ((0.1, 1.0, 100, 0.05, 0.0), "goal and z above 0"), ((0.1, 1.0, 100, "5%"), "goal must be a number"),
    ((0.1, 1.0, 100, 0.05, "1.96"), r"^z must be a number \(got str\)$"),
])
def test_lists_for_goal_refuses_what_has_no_answer(args, message):
    """A goal of 0 was a ZeroDivisionError; a NaN standard error a NaN number of lists."""
    with pytest.raises(ConfigError, match=message):
        ope.lists_for_goal(*args)


@pytest.mark.parametrize("args, message", [
    ((10.0, 0, 7), r"need a run that logged lists \(got 0 lists over 7 days\)"),
    ((10.0, 300, 0), r"got 300 lists over 0 days"), ((10.0, -1, 7), "need a run that logged lists"),
    ((float("nan"), 300, 7), "lists_needed must be finite"), ((float("inf"), 300, 7), "lists_needed must be finite"),
    ((-5.0, 300, 7), r"lists_needed must be >= 0"), ((10.0, 300, 2.5), "whole numbers"),
    ((10.0, "300", 7), "whole numbers"), ((10.0, True, 7), "whole numbers"),
])
def test_days_for_goal_refuses_what_has_no_answer(args, message):
    with pytest.raises(ConfigError, match=message):
        ope.days_for_goal(*args)


# ---- the summary over seeds ------------------------------------------------------------------------------------

def test_seed_summary_of_one_and_two_seeds_and_the_goal_boundary():
    one = ope.seed_summary([{"seed": 0, "true_value": 2.0, "IPS": 2.5, "DR": 1.5}], goal=0.25)
    assert one["DR"] == {"mean": 0.25, "sd": 0.0, "se": 0.0, "signed": -0.25, "rmse": 0.25, "within_goal": 1.0,
                         "closer_than_ips": 0.0}
    two = ope.seed_summary([{"true_value": 1.0, "DR": 1.5}, {"true_value": 1.0, "DR": 1.25}])
    assert two["DR"]["sd"] == pytest.approx(np.std([0.5, 0.25], ddof=1)) and two["DR"]["closer_than_ips"] is None
    assert two["DR"]["within_goal"] == 0.0


@pytest.mark.parametrize("rows, message", [
    ([], "^no runs to summarise: pass one row per seed$"),
    ([{"true_value": 0.0, "IPS": 1.0}], "^a relative error needs a finite, non-zero true value in every row$"),
    ([{"true_value": float("nan"), "IPS": 1.0}], "^a relative error needs a finite, non-zero true value"),
    ([{"true_value": None, "IPS": 1.0}], "^a relative error needs a finite, non-zero true value"),
])
def test_seed_summary_refuses_rows_without_a_relative_error(rows, message):
    with pytest.raises(ConfigError, match=message):
        ope.seed_summary(rows)


# ---- hostile logs -------------------------------------------------------------------------------------------

def _good(**change):
    fields = {"clicks": [1, 0], "marginals": [0.5, 0.5], "match": [True, False], "shown_rank": [0, 1],
              "target_rank": [0, 2], "shown": [1, 2], "target": [1, 3], "exposure": [[0.5, 0.2], [0.1, 0.1]]}
    return _list(**{**fields, **change})


@pytest.mark.parametrize("logs, message", [
    ([], r"^no logged lists: an off-policy estimate needs the exploration logs of at least one list \(run more "
         r"users or days\)$"),
    (None, "^no logged lists"),
    ([_good(clicks=[], marginals=[], match=[], shown_rank=[], target_rank=[], shown=[], target=[])],
     "^a logged list has no positions: log the lists that were shown$"),
    ([_good(), _good(clicks=[1, 0, 0])], r"`clicks` with 2 values"),
    ([_good(marginals=[0.5])], r"`marginals` with 2 values"),
    ([_good(match=[True, False, True])], "`match` with 2 values"),
    ([_good(clicks=[float("nan"), 0])], r"`clicks` must be in \[0, 1\]"),
    ([_good(clicks=[2, 0])], r"`clicks` must be in \[0, 1\]"),
    ([_good(clicks=[-1, 0])], r"`clicks` must be in \[0, 1\]"),
    ([ope.LoggedList(np.array(["1", "0"]), np.full(2, 0.5), np.ones(2, bool), np.arange(2), np.arange(2))],
     "`clicks` must be numbers"),
    ([ope.LoggedList(np.ones(2), np.array(["a", "b"]), np.ones(2, bool), np.arange(2), np.arange(2))],
     "`marginals` must be numbers"),
    ([ope.LoggedList(np.ones(2), np.full(2, 0.5), np.array([0.5, 1.0]), np.arange(2), np.arange(2))],
     "`match` must be True or False"),
    ([ope.LoggedList(np.ones(2), np.full(2, 0.5), np.array([2, 0]), np.arange(2), np.arange(2))],
     "`match` must be True or False"),
    ([_good(shown_rank=[0.5, 1])], "`shown_rank` must be whole numbers from 0 to 100,000"),
    ([_good(shown_rank=[-1, 1])], "`shown_rank` must be whole numbers from 0 to 100,000"),
    ([_good(target_rank=[0.5, 1])], "`target_rank` must be whole numbers from 0 to 100,000"),
    ([_good(target_rank=[float("nan"), 1])], "`target_rank` must be whole numbers"),
    ([_good(target_rank=[float("inf"), 1])], "`target_rank` must be whole numbers"),
    ([_good(shown=[1, 2, 3])], "`shown_items` with 2 values"),
    ([_good(shown=["a", None])], "^a logged list's item ids must be all strings or all numbers$"),
    ([_good(marginals=[0.0, 0.5])], r"^a logged list's marginal probability is 0\.0: each shown item's probability "
                                    r"of its position must be in \(0, 1\]; log the exploration policy's probability "
                                    r"of the item it showed \(runtime exploration does\)$"),
    ([_good(exposure=[[0.5, 0.2]])], r"`target_exposure` with 2 x 2 values"),
    ([_good(exposure=[[1.5, 0.2], [0.1, 0.1]])], r"`target_exposure` must be probabilities in \[0, 1\]"),
    ([_good(exposure=[[float("nan"), 0.2], [0.1, 0.1]])], "`target_exposure` must be probabilities"),
])
def test_hostile_logs_are_a_config_error(logs, message):
    for estimator in (ope.ips, ope.snips, ope.estimates, ope.fit_click_model):
        with pytest.raises(ConfigError, match=message):
            estimator(logs)


@pytest.mark.parametrize("q, message", [
    (ope.ClickModel(np.ones(3), np.ones(3), np.ones(4)), "needs 2 examination values"),
    (ope.ClickModel(np.ones(2), np.ones(0), np.ones(4)), "at least one attraction"),
    (ope.ClickModel(np.ones(2), np.ones(3), np.ones(2)), r"3 item factor\(s\)"),
    (ope.ClickModel(np.ones(2), np.ones((3, 1)), np.ones(3)), "needs 2 examination"),
    (ope.ClickModel(np.ones(2), np.ones(3), np.ones((3, 1))), "needs 2 examination"),
    (ope.ClickModel(np.array([1.0, np.nan]), np.ones(3), np.ones(3)), "examination must be probabilities"),
    (ope.ClickModel(np.array([1.0, 1.5]), np.ones(3), np.ones(3)), "examination must be probabilities"),
    (ope.ClickModel(np.ones(2), np.array([0.5, -0.1, 0.2]), np.ones(3)),
     "^the click model's examination must be probabilities and its attraction and item factors finite numbers >= 0$"),
    (ope.ClickModel(np.array([1.0, None]), np.ones(3), np.ones(3)), "examination must be probabilities"),
    (ope.ClickModel(np.array(["a", "b"]), np.ones(3), np.ones(3)),
     "^the click model's examination, attraction and item factors must be numbers$"),
    (ope.ClickModel(np.ones(2), np.ones(3), np.array([1.0, np.inf, 1.0])), "finite numbers >= 0"),
])
def test_a_click_model_that_does_not_fit_the_logs_is_refused(q, message):
    """A model of other logs read item factors past its end (IndexError) or broadcast a wrong shape."""
    logs = _item_level()
    for call in (ope.doubly_robust, ope.direct_method, ope.doubly_robust_pbm, ope.model_terms, ope.ips_spread,
                 ope.thin_support):
        with pytest.raises(ConfigError, match=message):
            call(logs, q)


def test_estimators_that_need_the_loggers_tables_say_so():
    bare = [_list([1, 0], [0.5, 0.5], [True, False], [0, 1], [0, 1])]
    tail = (r"needs item-level logs: each list's shown and target item ids and the logger's table of where it puts "
            r"each target item \(target_exposure; runtime exploration logs it\)$")
    with pytest.raises(ConfigError, match="^DR-PBM " + tail):
        ope.doubly_robust_pbm(bare)
    with pytest.raises(ConfigError, match="^IPS's spread " + tail):
        ope.ips_spread(bare, Q)
    assert ope.thin_support(bare) is None and "DR-PBM" not in ope.estimates(bare)
    # exposure tables without item ids, or shown ids without the target's: no item-level estimate, no error
    tables = [_list([1, 0], [0.5, 0.5], [True, False], [0, 1], [0, 1], exposure=[[0.5, 0.2], [0.1, 0.1]])]
    shown_only = [_list([1, 0], [0.5, 0.5], [True, False], [0, 1], [0, 1], shown=[4, 5])]
    for logs in (tables, shown_only):
        assert ope.estimates(logs) == ope.estimates(bare) and ope.thin_support(logs) is None


def test_a_shrinkage_below_one_pseudo_view_is_allowed():
    q = ope.fit_click_model(_em_logs(), shrink=0.5, iterations=4)
    assert q.item_factor == pytest.approx(_em_by_hand(_em_logs(), 0.5, 4)[2], rel=1e-9)


@pytest.mark.parametrize("kwargs, message", [
    ({"shrink": 0.0}, r"shrink must be above 0 pseudo-views \(got 0.0\)"), ({"shrink": -1.0}, "shrink must be above"),
    ({"shrink": float("nan")}, "shrink must be finite"), ({"shrink": "20"}, "shrink must be a number"),
    ({"iterations": 0}, "iterations must be a whole number of at least 1"), ({"iterations": 2.5}, "iterations"),
])
def test_the_click_model_refuses_settings_that_break_em(kwargs, message):
    """shrink 0 gave an item seen only in target lists the factor 0 / 0 (NaN, DM NaN)."""
    with pytest.raises(ConfigError, match=message):
        ope.fit_click_model(_item_level(), **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"resamples": 1}, "resamples must be a whole number of at least 2"), ({"resamples": 0}, "resamples"),
    ({"resamples": 10.0}, "resamples"), ({"seed": -1}, "seed must be"), ({"seed": 0.5}, "seed must be"),
])
def test_standard_errors_refuse_too_few_resamples(kwargs, message):
    """One resample was a NaN standard error with a numpy warning; none an empty answer."""
    with pytest.raises(ConfigError, match=message):
        ope.standard_errors(_item_level(), **kwargs)


def test_a_rank_past_any_greedy_list_is_refused_before_it_sizes_the_click_model():
    """target_rank 10**9 made the click model allocate 7.45 GiB (and, without a memory limit, the process died)."""
    with pytest.raises(ConfigError, match=r"`target_rank` must be whole numbers from 0 to 100,000"):
        ope.fit_click_model([_list([1, 0], [0.5, 0.5], [True, False], [0, 1], [0, 10 ** 9])])
