"""Per-user activity of simulated users: lognormal across users, fixed per user, driven by the data's activity."""

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.studies.activity import ActivityConfig, UserActivity, normal_scores, user_activity


def _draw(cfg, scores, seed=0):
    return [user_activity(cfg, s, np.random.default_rng([seed, i])) for i, s in enumerate(scores)]


def test_visits_and_depth_are_lognormal_with_the_configured_spread():
    scores = normal_scores(np.arange(4000))
    cfg = ActivityConfig(visits_median=0.5, visits_sigma=0.9, extra_lists_median=1.0, lists_sigma=0.5)
    users = _draw(cfg, scores)
    visits, depth = np.log([u.visits for u in users]), np.log([u.depth for u in users])
    assert np.std(visits) == pytest.approx(0.9, rel=0.03) and np.median(visits) == pytest.approx(np.log(0.5), abs=0.01)
    assert np.std(depth) == pytest.approx(0.5, rel=0.05) and np.median(depth) == pytest.approx(0.0, abs=0.05)
    # the heaviest user visits orders of magnitude more often than the lightest
    assert np.exp(visits.max() - visits.min()) > 100


def test_visits_follow_the_datas_activity_and_zero_sigma_makes_users_alike():
    activity = np.random.default_rng(1).lognormal(0, 0.8, 500)
    users = _draw(ActivityConfig(), normal_scores(activity))
    visits = np.array([u.visits for u in users])
    assert np.array_equal(np.argsort(visits, kind="stable"), np.argsort(activity, kind="stable"))  # same order
    flat = _draw(ActivityConfig(visits_sigma=0.0, lists_sigma=0.0), normal_scores(activity))
    assert {u.visits for u in flat} == {0.5} and {u.depth for u in flat} == {1.0}
    assert [u.depth for u in _draw(ActivityConfig(), [0.0] * 5, seed=3)] == \
        [u.depth for u in _draw(ActivityConfig(), [0.0] * 5, seed=3)]  # seeded: the same draw again


def test_sessions_and_session_depth_follow_the_user():
    cfg = ActivityConfig(max_sessions=50)
    rng = np.random.default_rng(2)
    light, heavy = UserActivity(0.2, 0.5), UserActivity(3.0, 4.0)
    assert np.mean([light.sessions(rng, 1.0, cfg) for _ in range(4000)]) == pytest.approx(0.2, abs=0.03)
    assert np.mean([heavy.sessions(rng, 1.0, cfg) for _ in range(4000)]) == pytest.approx(3.0, abs=0.1)
    assert np.mean([heavy.sessions(rng, 0.5, cfg) for _ in range(4000)]) == pytest.approx(1.5, abs=0.1)
    assert max(heavy.sessions(rng, 1.0, ActivityConfig(max_sessions=2)) for _ in range(100)) == 2
    # a satisfied session goes on with probability depth / (1 + depth), an unsatisfied one less often
    assert np.mean([heavy.goes_on(rng, True) for _ in range(4000)]) == pytest.approx(0.8, abs=0.03)
    assert np.mean([heavy.goes_on(rng, False) for _ in range(4000)]) == pytest.approx(0.32, abs=0.03)


def test_activity_config_is_checked():
    with pytest.raises(ConfigError, match="positive medians"):
        ActivityConfig(visits_median=0).validate()
    with pytest.raises(ConfigError, match="max_sessions"):
        ActivityConfig(max_lists=0).validate()
