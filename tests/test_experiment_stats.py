"""Experiment statistics and the device's experiment pieces, without a bundle: assignment, team draft,
Welch, CUPED, mSPRT, power, the sign test, the verdict rule and the off-policy estimators."""

import numpy as np
import pytest
from scipy import stats as sps

from edgerec.errors import ConfigError
from edgerec.runtime.experiment import OutcomeCounts, assign, unit_hash
from edgerec.runtime.interleave import credit, team_draft, winner
from edgerec.studies import ope, stats
from edgerec.studies.experiments import aa_rates


def test_assignment_is_stable_balanced_and_weighted():
    keys = [f"device-{i}" for i in range(4000)]
    first = [assign(k, "exp-1", ("a", "b")) for k in keys]
    assert first == [assign(k, "exp-1", ("a", "b")) for k in keys]  # stable
    share = first.count("a") / len(first)
    assert sps.binomtest(first.count("a"), len(first)).pvalue > 0.001, share
    other = [assign(k, "exp-2", ("a", "b")) for k in keys]
    agree = sum(x == y for x, y in zip(first, other)) / len(keys)
    assert abs(agree - 0.5) < 0.05  # another experiment splits independently
    weighted = [assign(k, "exp-1", ("a", "b"), (0.9, 0.1)) for k in keys]
    assert abs(weighted.count("b") / len(keys) - 0.1) < 0.02
    assert unit_hash(b"k", "e") != unit_hash(b"k2", "e")
    with pytest.raises(ConfigError):
        assign("", "exp", ("a", "b"))
    with pytest.raises(ConfigError):
        assign("k", "exp", ("a",))


def test_outcome_counts_sum_per_outcome():
    counts = OutcomeCounts()
    counts.add("play", 3)
    counts.add("finish")
    counts.add("play")
    assert dict(counts.counts) == {"finish": 1, "play": 4}


def test_team_draft_of_identical_lists_favours_no_team():
    items = [f"i{j}" for j in range(10)]
    examine = 1 / (1 + np.arange(10)) ** 0.7
    clicks = {"A": 0, "B": 0}
    for seed in range(2000):
        rng = np.random.default_rng(seed)
        merged = team_draft(items, items, 10, rng)
        assert merged.items == items  # the same list, whoever picks
        assert abs(merged.teams.count("A") - merged.teams.count("B")) <= 1
        clicked = [p for p in range(10) if rng.random() < examine[p] * 0.5]
        a, b = credit(merged.teams, clicked)
        clicks["A"] += a
        clicks["B"] += b
    assert sps.binomtest(clicks["A"], clicks["A"] + clicks["B"]).pvalue > 0.01, clicks


def test_team_draft_lets_a_clearly_better_list_win():
    good = [f"g{j}" for j in range(10)]
    bad = [f"b{j}" for j in range(10)]
    wins = {"A": 0, "B": 0}
    for seed in range(300):
        rng = np.random.default_rng(seed)
        merged = team_draft(bad, good, 10, rng)
        assert len(merged.items) == 10 and set(merged.items) <= set(good) | set(bad)
        clicked = [p for p, item in enumerate(merged.items) if item.startswith("g") and rng.random() < 0.4]
        w = winner(*credit(merged.teams, clicked))
        if w:
            wins[w] += 1
    assert wins["A"] == 0 and wins["B"] > 200
    assert stats.sign_test(wins["A"], wins["B"]) < 1e-10


def test_team_draft_marks_shared_items_and_credits_them_fairly_under_position_only_clicks():
    # A ranks its own items first, B the items both hold: clicks that depend on the position alone
    # (every item equally attractive) must favour neither team. Team draft's credit of every click holds
    # that; crediting only the items one list holds would not (A's own items sit higher), which is why
    # shared items keep their credit although it follows the lists' ranks (docs/experiments.md)
    a = ["a1", "a2", "s1", "s2", "s3", "s4", "a3", "a4", "a5", "a6"]
    b = ["s1", "s2", "s3", "s4", "b1", "b2", "b3", "b4", "b5", "b6"]
    weight = 1 / (1 + np.arange(10)) ** 0.7  # the simulator's examination curve
    rng = np.random.default_rng(0)
    every, own_only = [], []
    for _ in range(4000):
        merged = team_draft(a, b, 10, rng)
        assert merged.shared == [i.startswith("s") for i in merged.items]
        sign = np.array([1.0 if t == "B" else -1.0 for t in merged.teams])
        every.append(float((weight * sign).sum()))
        own_only.append(float((weight * sign * ~np.array(merged.shared)).sum()))
    se = np.std(every) / np.sqrt(len(every))
    assert abs(np.mean(every)) < 3 * se
    assert np.mean(own_only) < -0.5  # about -1.2: A would win clicks nobody preferred


def test_team_draft_fills_from_the_longer_list():
    merged = team_draft(["x"], ["x", "y", "z"], 3, np.random.default_rng(0))
    assert merged.items == ["x", "y", "z"] and merged.teams.count("B") >= 2


def test_welch_matches_scipy_and_the_interval_covers_the_difference():
    rng = np.random.default_rng(0)
    c, t = rng.normal(1.0, 1.0, 300), rng.normal(1.3, 2.0, 200)
    out = stats.welch(c, t)
    assert out.p_value == pytest.approx(sps.ttest_ind(c, t, equal_var=False).pvalue, rel=1e-9)
    assert out.delta == pytest.approx(t.mean() - c.mean()) and out.ci_low < out.delta < out.ci_high
    lo, hi = stats.bootstrap_ci(c, t, resamples=1000)
    assert lo < out.delta < hi and hi - lo == pytest.approx(out.ci_high - out.ci_low, rel=0.2)


def test_cuped_reduces_variance_and_keeps_the_difference():
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 2.0, 4000)
    y = 2 * x + rng.normal(0, 2, 4000)
    y[2000:] += 0.5  # the treatment effect
    ac, at, reduction = stats.cuped(y[:2000], y[2000:], x[:2000], x[2000:])
    plain = y[2000:].mean() - y[:2000].mean()
    assert reduction > 0.8
    assert at.mean() - ac.mean() == pytest.approx(plain, abs=0.3)  # x is balanced: same difference
    assert np.concatenate([ac, at]).mean() == pytest.approx(y.mean())  # the overall mean is kept
    assert stats.welch(ac, at).p_value < stats.welch(y[:2000], y[2000:]).p_value
    # a covariate unrelated to y removes (almost) nothing
    _, _, none = stats.cuped(y[:2000], y[2000:], *np.split(rng.normal(size=4000), 2))
    assert none < 0.01


def test_msprt_keeps_false_positives_under_alpha_while_peeking_does_not():
    rng = np.random.default_rng(2)
    always_valid = naive = 0
    for _ in range(200):
        c, t = rng.normal(size=300), rng.normal(size=300)
        p = stats.msprt(c, t)
        assert all(b <= a for a, b in zip(p, p[1:]))  # always-valid p-values never go back up
        always_valid += min(p) < 0.05
        naive += any(stats.welch(c[:n], t[:n]).p_value < 0.05 for n in range(10, 301, 10))
    assert always_valid / 200 <= 0.06 and naive / 200 > 0.12
    c, t = rng.normal(size=300), rng.normal(0.5, 1, 300)
    assert stats.msprt(c, t)[-1] < 0.001  # a real effect is found


def test_power_and_mde_are_inverse():
    n = stats.sample_size(sigma=2.0, mde=0.1)
    assert stats.mde(2.0, n) == pytest.approx(0.1, rel=0.01)
    assert stats.sample_size(2.0, 0.1, arms=1) == pytest.approx(n / 4, rel=0.01)
    # simulated power of the computed size is close to 80%
    rng = np.random.default_rng(3)
    n = stats.sample_size(1.0, 0.3)
    hits = sum(stats.welch(rng.normal(0, 1, n // 2), rng.normal(0.3, 1, n // 2)).p_value < 0.05 for _ in range(300))
    assert 0.72 < hits / 300 < 0.88


def test_the_verdict_follows_the_interval():
    assert stats.verdict(0.2, 0.1, 0.3, 0.001).decision == "ship"
    assert stats.verdict(-0.2, -0.3, -0.1, 0.001).decision == "do not ship"
    assert stats.verdict(0.05, -0.1, 0.2, 0.4).decision == "inconclusive"
    assert "alpha 0.05" in stats.verdict(0.05, -0.1, 0.2, 0.4).rule


def test_aa_splits_of_one_log_reject_at_about_alpha():
    rng = np.random.default_rng(4)
    users = [f"u{i}" for i in range(400)]
    x = rng.gamma(2, 2, 400)
    y = x + rng.normal(0, 1, 400)
    out = aa_rates(users, y, x, experiments=300, alpha=0.05, seed=0)
    assert 0.02 <= out["false_positive_rate"] <= 0.08 and 0.02 <= out["false_positive_rate_cuped"] <= 0.08
    assert sum(out["p_value_deciles"]) == 300
    assert sps.chisquare(out["p_value_deciles"]).pvalue > 0.05  # A/A p-values are uniform (here 0.40)


def _uniform_logs(rng, n, k=4, m=8, attract=None, target=None, gamma=None):
    """Logs of a uniformly random top-k of m items (each item at each position with probability 1/m),
    clicks from the position-based model: examination gamma[r] x attraction of the item."""
    attract = np.linspace(0.6, 0.05, m) if attract is None else attract
    gamma = 1 / (1 + np.arange(k)) if gamma is None else gamma
    target = np.arange(k) if target is None else target
    logs = []
    for _ in range(n):
        shown = rng.permutation(m)[:k]
        clicks = (rng.random(k) < gamma * attract[shown]).astype(float)
        logs.append(ope.LoggedList(clicks, np.full(k, 1 / m), shown == target, np.minimum(shown, k),
                                   np.minimum(target, k), shown, target, np.full((k, k), 1 / m)))
    return logs, float((gamma * attract[target]).sum())


def test_off_policy_estimators_find_the_true_value():
    logs, truth = _uniform_logs(np.random.default_rng(5), 20000)
    found = ope.estimates(logs)
    assert set(found) == {"IPS", "SNIPS", "DR", "DM", "DR-PBM"}
    for name in found:
        assert found[name] == pytest.approx(truth, rel=0.05), (name, found, truth)
    # a direct model that is wrong is corrected by the doubly robust term (DR-PBM needs the right examination)
    wrong = ope.ClickModel(1 / (1 + np.arange(4)), np.zeros(5), np.ones(8))
    assert ope.doubly_robust(logs, wrong) == pytest.approx(truth, rel=0.05)
    assert ope.doubly_robust_pbm(logs, wrong) == pytest.approx(truth, rel=0.05)
    assert ope.direct_method(logs, wrong) == 0.0
    # without item ids the direct model falls back to (position, greedy rank) and DR-PBM is not offered
    bare = [ope.LoggedList(lg.clicks, lg.marginals, lg.match, lg.shown_rank, lg.target_rank) for lg in logs]
    assert set(ope.estimates(bare)) == {"IPS", "SNIPS", "DR", "DM"}
    assert ope.doubly_robust(bare) == pytest.approx(truth, rel=0.05)
    errors = {name: [] for name in ("IPS", "SNIPS")}
    for seed in range(40):
        small, _ = _uniform_logs(np.random.default_rng(100 + seed), 300)
        errors["IPS"].append(abs(ope.ips(small) - truth))
        errors["SNIPS"].append(abs(ope.snips(small) - truth))
    assert np.mean(errors["SNIPS"]) < np.mean(errors["IPS"])


def test_the_click_model_recovers_examination_and_attraction():
    # a position-based world with known examination and attraction; 8 items, greedy ranks 0..3 and "outside"
    gamma, attract = np.array([1.0, 0.6, 0.4, 0.3]), np.array([0.7, 0.5, 0.45, 0.3, 0.6, 0.2, 0.1, 0.05])
    logs, _ = _uniform_logs(np.random.default_rng(8), 20000, attract=attract, gamma=gamma)
    q = ope.fit_click_model(logs)
    assert q.examination / q.examination[0] == pytest.approx(gamma, abs=0.04)
    # items 4..7 share the greedy rank "outside": only the item factor tells them apart
    codes = ope.Logs(logs).a["shown_item"][0]  # item codes are the sorted ids, here the ids themselves
    items = np.arange(8)
    clicks_at_top = q.examination[0] * q.attract(np.minimum(items, 4), items)
    assert list(codes) == list(logs[0].shown_items)
    assert clicks_at_top == pytest.approx(attract, abs=0.04)


def test_a_good_direct_model_makes_doubly_robust_closer_than_ips():
    # the same world drawn 40 times, 300 lists each: the fitted click model takes the noise of the
    # attraction out of DR, and DR-PBM also counts a target item shown at another position. The target
    # shows two items from outside the greedy list (4 and 5, one greedy-rank bucket): only the item
    # factor tells their attraction (0.6 and 0.2) apart
    gamma, attract = np.array([1.0, 0.6, 0.4, 0.3]), np.array([0.7, 0.5, 0.45, 0.3, 0.6, 0.2, 0.1, 0.05])
    errors = {name: [] for name in ("IPS", "DR", "DR-PBM")}
    for seed in range(40):
        logs, truth = _uniform_logs(np.random.default_rng(200 + seed), 300, attract=attract, gamma=gamma,
                                    target=np.array([0, 4, 1, 5]))
        found = ope.estimates(logs)
        for name in errors:
            errors[name].append(abs(found[name] - truth) / truth)
    mean = {name: float(np.mean(v)) for name, v in errors.items()}
    assert mean["DR-PBM"] < 0.6 * mean["IPS"] and mean["DR"] < 0.8 * mean["IPS"], mean


def test_cuped_with_several_covariates_removes_what_each_explains():
    rng = np.random.default_rng(4)
    activity, taste = rng.gamma(2.0, 1.0, 4000), rng.normal(0, 1, 4000)
    y = 3 * activity + 2 * taste + rng.normal(0, 1, 4000)
    y[2000:] += 0.3
    both = np.column_stack([activity, taste, np.ones(4000)])  # a constant column is ignored
    ac, at, reduction = stats.cuped(y[:2000], y[2000:], both[:2000], both[2000:])
    _, _, one = stats.cuped(y[:2000], y[2000:], activity[:2000], activity[2000:])
    _, _, one_2d = stats.cuped(y[:2000], y[2000:], both[:2000, :1], both[2000:, :1])
    assert one == pytest.approx(one_2d)  # one column as a matrix is the one-covariate formula
    assert reduction > 0.9 > one  # 1 - 1/23 with both (var y = 9 * 2 + 4 + 1), 1 - 5/23 with activity alone
    assert np.concatenate([ac, at]).mean() == pytest.approx(y.mean())
    assert at.mean() - ac.mean() == pytest.approx(y[2000:].mean() - y[:2000].mean(), abs=0.15)
    with pytest.raises(ConfigError, match="same pre-period"):
        stats.cuped(y[:2000], y[2000:], both[:2000], both[2000:, :2])


def test_regression_adjustment_keeps_the_effect_in_expectation():
    # several heavy-tailed covariates, fitted on both arms pooled: over many random assignments the
    # adjusted difference is centred on the true effect (0 under A/A) while its spread shrinks
    rng = np.random.default_rng(7)
    n = 300
    rate = rng.lognormal(0, 0.9, n)
    pre = np.column_stack([rng.poisson(3 * rate), rng.poisson(rate), rng.poisson(2 * rate)])
    x = np.column_stack([pre, np.log1p(pre)])
    base = rng.poisson(7 * rate).astype(float)
    for effect in (0.0, 1.5):
        plain, adjusted = [], []
        for _ in range(600):
            t = rng.permutation(n) < n // 2
            y = base + effect * t
            ac, at, _ = stats.cuped(y[~t], y[t], x[~t], x[t])
            plain.append(y[t].mean() - y[~t].mean())
            adjusted.append(at.mean() - ac.mean())
        plain, adjusted = np.array(plain), np.array(adjusted)
        se = adjusted.std() / np.sqrt(len(adjusted))
        assert abs(adjusted.mean() - effect) < 3 * se, (effect, adjusted.mean(), se)
        assert adjusted.std() < 0.8 * plain.std()


def test_held_out_cuped_does_not_credit_noise():
    rng = np.random.default_rng(8)
    n = 300
    users = np.arange(n)
    noise = rng.normal(size=(n, 40))  # forty covariates that know nothing about y
    y = rng.normal(size=n)
    assert stats.cuped(y[:150], y[150:], noise[:150], noise[150:])[2] > 0.1  # in sample: overfitting
    assert stats.cuped_holdout(y, noise, users) < 0.0  # held out: nothing, or worse
    signal = y + rng.normal(0, 0.5, n)  # a covariate that explains 80% of the variance
    assert stats.cuped_holdout(y, signal, users) == pytest.approx(0.8, abs=0.06)
    # rows of one user stay in one fold: a duplicated user does not explain itself
    twice = np.concatenate([y, y]), np.concatenate([noise, noise]), np.concatenate([users, users])
    assert stats.cuped_holdout(*twice) < 0.0
    with pytest.raises(ConfigError, match="folds"):
        stats.cuped_holdout(y[:3], signal[:3], users[:3])


def test_the_credit_test_is_a_t_test_of_capped_per_user_credit_differences():
    rng = np.random.default_rng(9)
    a, b = rng.poisson(2.0, 200), rng.poisson(2.3, 200)
    mean, sd, p = stats.credit_test(a, b, cap_quantile=1.0)
    assert mean == pytest.approx((b - a).mean()) and sd == pytest.approx((b - a).std(ddof=1))
    assert p == pytest.approx(sps.ttest_1samp(b - a, 0.0).pvalue, rel=1e-9)
    d = b - a
    cap = np.quantile(np.abs(d[d != 0]), 0.9)
    capped = np.clip(d, -cap, cap)
    assert cap < np.abs(d).max() and stats.credit_test(a, b)[0] == pytest.approx(capped.mean())
    assert stats.credit_test(a, b)[2] == pytest.approx(sps.ttest_1samp(capped, 0.0).pvalue, rel=1e-9)
    assert stats.credit_test([1, 2], [1, 2])[2] == 1.0 and stats.credit_test([1, 1], [2, 2])[2] == 0.5
    with pytest.raises(ConfigError, match="one A and one B"):
        stats.credit_test([1, 2, 3], [1, 2])
    with pytest.raises(ConfigError, match="cap_quantile"):
        stats.credit_test(a, b, cap_quantile=0.0)


def test_the_credit_test_keeps_its_level_with_heavy_users():
    # no preference, plays per user lognormal: the capped differences stay symmetric about 0
    rng = np.random.default_rng(11)
    p_values = []
    for _ in range(600):
        plays = rng.poisson(rng.lognormal(0.0, 1.2, 300))
        b = rng.binomial(plays, 0.5)
        p_values.append(stats.credit_test(plays - b, b)[2])
    assert 0.03 <= np.mean(np.array(p_values) < 0.05) <= 0.07
    assert sps.chisquare(np.histogram(p_values, bins=10, range=(0, 1))[0]).pvalue > 0.01


def _interleaving_hits(spread: float) -> dict:
    """Rejections at 0.05 over 300 interleavings of 150 users who credit B with 56% of their plays on
    average, each user's own share spread by `spread`; plays per user lognormal."""
    rng = np.random.default_rng(10)
    hits = {"capped": 0, "uncapped": 0, "sign": 0}
    for _ in range(300):
        plays = rng.poisson(rng.lognormal(0.5, 1.0, 150))
        b = rng.binomial(plays, np.clip(rng.normal(0.56, spread, 150), 0, 1))
        a = plays - b
        hits["capped"] += stats.credit_test(a, b)[2] < 0.05
        hits["uncapped"] += stats.credit_test(a, b, cap_quantile=1.0)[2] < 0.05
        hits["sign"] += stats.sign_test(int((a > b).sum()), int((b > a).sum())) < 0.05
    return hits


def test_the_credit_test_sees_how_much_each_user_prefers():
    # heavy users credit B with several more plays than A; a sign per user throws that away
    same = _interleaving_hits(0.0)
    assert same["capped"] > 1.3 * same["sign"], same  # 194 against 142
    # when users differ in how much they prefer B, a heavy user's difference is mostly their own
    # taste: capping it gains power (91 against 81 uncapped, 73 for the sign test)
    differ = _interleaving_hits(0.25)
    assert differ["capped"] > differ["uncapped"] > differ["sign"], differ


def test_ope_seed_summary_counts_each_estimators_error_over_seeds():
    rows = [{"seed": 0, "lists": 10, "true_value": 1.0, "IPS": 1.02, "DR": 0.90},
            {"seed": 1, "lists": 10, "true_value": 2.0, "IPS": 2.20, "DR": 2.06},
            {"seed": 2, "lists": 10, "true_value": 1.0, "IPS": 0.96, "DR": 1.01}]
    out = ope.seed_summary(rows)
    assert set(out) == {"IPS", "DR"}  # the seed, the list count and the truth are not estimators
    assert out["IPS"]["mean"] == pytest.approx((0.02 + 0.10 + 0.04) / 3)
    assert out["DR"]["sd"] == pytest.approx(np.std([0.10, 0.03, 0.01], ddof=1))
    assert out["IPS"]["within_goal"] == pytest.approx(2 / 3) and out["DR"]["within_goal"] == pytest.approx(2 / 3)
    assert out["DR"]["closer_than_ips"] == pytest.approx(2 / 3) and out["IPS"]["closer_than_ips"] == 0.0
    # the sign is kept where it says something: DR's errors -0.10, +0.03, +0.01 lean low, IPS's lean high
    assert out["DR"]["signed"] == pytest.approx((-0.10 + 0.03 + 0.01) / 3)
    assert out["IPS"]["signed"] == pytest.approx((0.02 + 0.10 - 0.04) / 3)
    assert out["DR"]["rmse"] == pytest.approx(np.sqrt((0.01 + 0.0009 + 0.0001) / 3))
    assert out["DR"]["se"] == pytest.approx(out["DR"]["sd"] / np.sqrt(3))
    # the per-seed truth's standard error is not an estimator either
    assert set(ope.seed_summary([{**r, "true_value_se": 0.01} for r in rows])) == {"IPS", "DR"}


def test_lists_for_goal_is_where_the_noise_alone_keeps_95_percent_within_the_goal():
    # 1.96 standard errors of 0.05 at 5,000 lists on a truth of 1: exactly 5% off, so 5,000 lists
    assert ope.lists_for_goal(0.05 / 1.96, 1.0, 5000) == pytest.approx(5000)
    # twice the noise needs four times the lists; a truth twice as large halves the relative noise
    assert ope.lists_for_goal(0.1 / 1.96, 1.0, 5000) == pytest.approx(20000)
    assert ope.lists_for_goal(0.1 / 1.96, 2.0, 5000) == pytest.approx(5000)
    # and it holds on simulated logs: at the lists it names, about 95% of runs of IPS are within 5%
    logs, truth = _uniform_logs(np.random.default_rng(9), 2000)
    a = ope.Logs(logs).a
    se = np.std((a["match"] * a["clicks"] / a["marginals"]).sum(1), ddof=1) / np.sqrt(2000)
    n, rng = int(np.ceil(ope.lists_for_goal(se, truth, 2000))), np.random.default_rng(10)
    gamma, attract = 1 / (1 + np.arange(4)), np.linspace(0.6, 0.05, 8)  # _uniform_logs' world, 200 runs at once
    shown = rng.random((200, n, 8)).argsort(-1)[..., :4]
    clicks = rng.random((200, n, 4)) < gamma * attract[shown]
    within = np.abs((clicks * (shown == np.arange(4)) * 8).sum(-1).mean(-1) - truth) <= 0.05 * truth
    assert 0.88 <= np.mean(within) <= 0.99


def test_thin_support_names_the_target_positions_the_logs_cannot_see():
    logs, _ = _uniform_logs(np.random.default_rng(6), 400, m=10, target=np.array([0, 1, 2, 9]))
    for lg in logs:
        lg.target_exposure[3] = 0.0  # the logger cannot put item 9 anywhere
        lg.target_exposure[1, 1] = 1e-4  # ... and puts item 1 at position 1 far less than once in 400 lists
    out = ope.thin_support(logs)
    assert out["positions"] == pytest.approx(0.5) and out["outside_short_list"] == pytest.approx(0.25)
    q = ope.fit_click_model(logs)
    value = q.examination * q.attract(np.array([0, 1, 2, 4]), ope.Logs(logs).a["target_item"][0])
    assert out["value"] == pytest.approx((value[1] + value[3]) / value.sum())
    assert ope.thin_support([ope.LoggedList(lg.clicks, lg.marginals, lg.match, lg.shown_rank, lg.target_rank)
                             for lg in logs]) is None  # no exposure tables: nothing to say


def test_ips_spread_counts_the_rare_weights_a_bootstrap_never_sees():
    logs, truth = _uniform_logs(np.random.default_rng(11), 20000)
    a = ope.Logs(logs).a
    observed = np.std((a["match"] * a["clicks"] / a["marginals"]).sum(1), ddof=1)
    q = ope.fit_click_model(logs)
    assert ope.ips_spread(logs, q) == pytest.approx(observed, rel=0.03)  # 2.897 against 2.906
    # the logger puts the target's last item at its position once in 100,000 lists: these 2,000 lists never
    # drew it, so their spread is what it was; IPS's real spread is sqrt(c / P), about 100 plays
    rare, _ = _uniform_logs(np.random.default_rng(12), 2000, m=8)
    for lg in rare:
        lg.match[3], lg.target_exposure[3, 3] = False, 1e-5
    a = ope.Logs(rare).a
    observed = np.std((a["match"] * a["clicks"] / a["marginals"]).sum(1), ddof=1)
    spread = ope.ips_spread(rare, ope.fit_click_model(rare))
    assert observed < 3 and 50 < spread < 200, (observed, spread)
    assert ope.thin_support(rare)["ips_lists_for_goal"] == pytest.approx(
        ope.lists_for_goal(spread, truth, 1), rel=0.1)
