"""Item hubness (models/hubness.py) and the hub penalty replayed on the host (models/policy_scorer.py)."""

import numpy as np
import pytest

from edgerec.data.split import Sequences
from edgerec.errors import ConfigError
from edgerec.models import hubness as hubness_module
from edgerec.models.hubness import hubness, model_hubness
from edgerec.models.policy_scorer import PolicyScorer
from edgerec.runtime.policies import Policy, hub_boost


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def brute(users: np.ndarray, items: np.ndarray, kappa: int) -> np.ndarray:
    return np.sort(unit(users) @ unit(items).T, axis=0)[-kappa:].mean(axis=0)


@pytest.mark.parametrize("cells", [10**7, 40, 1])  # one chunk, several, one user at a time
def test_hubness_is_the_mean_of_each_items_best_cosines(monkeypatch, cells):
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(37, 6)) * 3, rng.normal(size=(11, 6))
    monkeypatch.setattr(hubness_module, "CHUNK_CELLS", cells)
    assert np.allclose(hubness(users, items, kappa=4), brute(users, items, 4), atol=1e-6)
    assert np.allclose(hubness(users, items, kappa=100), brute(users, items, 37), atol=1e-6)  # kappa > users


def test_an_item_near_every_user_is_the_hub():
    rng = np.random.default_rng(1)
    users = unit(rng.normal(size=(200, 8)) + np.array([2.0] + [0.0] * 7))  # users lean one way
    items = unit(rng.normal(size=(30, 8)))
    items[7] = unit(users.mean(axis=0, keepdims=True))[0]
    assert int(np.argmax(hubness(users, items))) == 7


@pytest.mark.parametrize("users, items, kappa", [
    (np.full((3, 4), np.nan), np.ones((2, 4)), 2),
    (np.ones(4), np.ones((2, 4)), 2),
    (np.ones((3, 4)), np.ones((2, 5)), 2),
    (np.zeros((0, 4)), np.ones((2, 4)), 2),
    (np.ones((3, 4)), np.ones((2, 4)), 0),
    (np.ones((3, 4)), np.ones((2, 4)), True),
    (np.ones((3, 4)), np.ones((2, 4)), 2.5),
])
def test_bad_inputs_are_config_errors(users, items, kappa):
    with pytest.raises(ConfigError):
        hubness(users, items, kappa)


class RecordingScorer:
    def __init__(self):
        self.asked, self.rng = [], np.random.default_rng(2)

    def user_vectors(self, users, history):
        self.asked.append(np.asarray(users))
        return self.rng.normal(size=(len(users), 4))


def test_model_hubness_samples_only_users_with_a_history():
    history = Sequences(np.array([0, 2, 2, 5, 5, 8, 9]), np.arange(9, dtype=np.int32), np.arange(9))
    scorer = RecordingScorer()
    model_hubness(scorer, history, np.ones((3, 4)), max_users=10)
    assert scorer.asked[0].tolist() == [0, 2, 4, 5]  # users 1 and 3 have no history
    model_hubness(scorer, history, np.ones((3, 4)), max_users=2, seed=5)
    model_hubness(scorer, history, np.ones((3, 4)), max_users=2, seed=5)
    assert len(scorer.asked[1]) == 2 and set(scorer.asked[1]) <= {0, 2, 4, 5}
    assert scorer.asked[1].tolist() == scorer.asked[2].tolist()  # seeded


def test_hub_boost_is_in_units_of_the_cosines_spread():
    cosines = np.array([0.9, 0.7, 0.5, 0.3])
    hubs = np.array([0.8, 0.1, 0.1, 0.1])
    boost = hub_boost(hubs, cosines, Policy(hub_penalty=0.5))
    assert np.allclose(boost, -0.5 * hubs / cosines.std())
    order = np.argsort(-((cosines - cosines.mean()) / cosines.std() + boost), kind="stable")
    assert order.tolist() == np.argsort(-(cosines - 0.5 * hubs), kind="stable").tolist()
    assert not hub_boost(hubs, cosines, Policy()).any()
    assert not hub_boost(hubs, np.full(4, 0.5), Policy(hub_penalty=1.0)).any()  # no spread: no term


@pytest.mark.parametrize("bad", [-0.1, 10.5, float("nan"), "1"])
def test_the_hub_penalty_is_range_checked(bad):
    with pytest.raises(ConfigError):
        Policy(hub_penalty=bad)


class Fixed:
    """A model scorer over fixed user and item vectors."""

    def __init__(self, users, items):
        self.users, self.items = users, items

    def item_matrix(self):
        return self.items

    def user_vectors(self, users, history):
        return self.users[users]


def policy_scorer(policy, hubs, users, items):
    n = len(items)
    return PolicyScorer(Fixed(users, items), np.zeros(n, np.int64), np.ones(n), np.zeros(len(users)), policy,
                        k=3, hubness=hubs)


def test_the_host_replay_lowers_the_hub_and_leaves_lists_alone_without_the_penalty():
    rng = np.random.default_rng(3)
    users = unit(rng.normal(size=(50, 6)) + np.array([3.0, 0, 0, 0, 0, 0]))
    items = unit(rng.normal(size=(40, 6)))
    items[0] = unit(users.mean(axis=0, keepdims=True))[0]  # near everyone: first in most lists
    hubs = hubness(users, items)
    empty = Sequences(np.zeros(51, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64))
    everyone = np.arange(50)

    def lists(policy):
        scores = policy_scorer(policy, hubs, users, items).score(everyone, empty)
        return np.argsort(-scores, axis=1, kind="stable")[:, :3]

    plain, penalised = lists(Policy()), lists(Policy(hub_penalty=1.0))
    assert (plain == 0).any(axis=1).mean() > 0.6
    assert (penalised == 0).any(axis=1).mean() < (plain == 0).any(axis=1).mean()
    assert len(np.unique(penalised)) > len(np.unique(plain))  # coverage
    cosines = users @ items.T
    assert np.array_equal(plain, np.argsort(-cosines, axis=1, kind="stable")[:, :3])


def test_the_host_replay_needs_hubness_for_the_penalty():
    items = np.eye(3)
    with pytest.raises(ConfigError):
        policy_scorer(Policy(hub_penalty=0.5), None, np.eye(3), items)
    with pytest.raises(ConfigError):
        policy_scorer(Policy(hub_penalty=0.5), np.zeros(2), np.eye(3), items)


def test_the_exported_column_is_the_models_hubness_against_the_shipped_table(tiny_bundle):
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset
    from edgerec.models.checkpoint import load_model
    from edgerec.models.scoring import ModelScorer
    from edgerec.runtime import Bundle
    from edgerec.runtime.catalog import ItemCatalog

    root = tiny_bundle.parent
    model, _ = load_model(root / "ckpt")
    split = leave_last_out(load_dataset(root / "data"))
    catalog = ItemCatalog(Bundle.open(tiny_bundle))
    shipped = catalog.vectors(np.arange(len(catalog)))
    expected = model_hubness(ModelScorer(model), split.train, shipped)
    column = catalog.hubness(np.arange(len(catalog)))
    assert np.allclose(column, expected, atol=1e-3)  # stored in float16 steps
    assert np.load(tiny_bundle / "items" / "hubness.npy").dtype == np.float16
    assert column.std() > 0.01  # items differ: the statistic is not a constant
