"""Guards of the device's experiment parts (runtime/experiment.py), from its mutation run (note 20):
the assignment hash and split by hand, the outcome counts, the exposure log's bound, and the
exploration stage's short list, draws and logged probabilities on a request built by hand."""

from __future__ import annotations

import hashlib
import hmac
import math
from types import SimpleNamespace

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import Recommender, experiment
from edgerec.runtime.experiment import (
    EXPLORE_STAGE,
    ExplorationStage,
    Exposure,
    ExposureLog,
    OutcomeCounts,
    assign,
    explore,
    unit_hash,
)

KEYS = [f"install-key-{i}" for i in range(600)]


def by_hand(key: bytes, experiment: str) -> float:
    digest = hmac.new(key, experiment.encode(), hashlib.sha256).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / 2.0 ** 53


def test_the_unit_hash_is_the_first_8_bytes_of_hmac_sha256_of_the_experiment_under_the_key():
    for key in KEYS[:50]:
        assert unit_hash(key, "ranker-v2") == by_hand(key.encode(), "ranker-v2")
        assert unit_hash(key.encode(), "ranker-v2") == unit_hash(key, "ranker-v2")  # str keys are their UTF-8
    assert unit_hash("ключ", "exp") == by_hand("ключ".encode(), "exp")
    points = np.array([unit_hash(k, "e") for k in KEYS])
    assert points.min() >= 0.0 and points.max() < 1.0
    assert 0.45 < points.mean() < 0.55  # spread over [0, 1), not squeezed into a corner
    with pytest.raises(ConfigError, match="non-empty bytes or str"):
        unit_hash(b"", "e")
    with pytest.raises(ConfigError, match="non-empty bytes or str"):
        unit_hash(12345, "e")


def test_an_arm_is_the_slice_of_the_weights_the_hash_falls_in():
    arms = ("control", "wide", "narrow", "never")
    weights = (1.0, 2.5, 0.5, 0.0)
    edges = np.cumsum(weights)
    seen = set()
    for key in KEYS:
        point = unit_hash(key, "exp-7") * sum(weights)
        want = arms[int(np.searchsorted(edges, point, side="right"))]
        got = assign(key, "exp-7", list(arms), weights)
        assert got == want
        seen.add(got)
        # scaled weights split alike; default weights split evenly
        assert assign(key, "exp-7", arms, [4 * w for w in weights]) == want
        even = ("a", "b", "c")[min(int(unit_hash(key, "exp-7") * 3), 2)]
        assert assign(key, "exp-7", ("a", "b", "c")) == even
    assert seen == {"control", "wide", "narrow"}  # a zero-weight arm is never drawn
    first_zero = [assign(k, "exp-7", ("off", "on"), (0.0, 1.0)) for k in KEYS[:100]]
    assert set(first_zero) == {"on"}


def test_the_highest_hash_stays_below_1_and_never_draws_a_zero_weight_arm(monkeypatch):
    """Before, 8 bytes of 0xff divided by 2**64 rounded to exactly 1.0, and the point past every edge fell
    to the last arm whatever its weight."""
    top = SimpleNamespace(digest=lambda: b"\xff" * 32)
    monkeypatch.setattr(experiment.hmac, "new", lambda *a: top)
    assert unit_hash("k", "e") == 1 - 2.0 ** -53
    assert assign("k", "e", ("on", "off"), (1.0, 0.0)) == "on"
    assert assign("k", "e", ("a", "b", "c"), (1.0, 1.0, 0.0)) == "b"


def test_assignment_arguments_are_checked():
    with pytest.raises(ConfigError, match="two or more distinct arms"):
        assign("k", "e", ("a", "a"))
    with pytest.raises(ConfigError, match="two or more distinct arms"):
        assign("k", "e", ["a"])
    with pytest.raises(ConfigError, match="one non-negative number per arm"):
        assign("k", "e", ("a", "b"), (1.0,))
    with pytest.raises(ConfigError, match="one non-negative number per arm"):
        assign("k", "e", ("a", "b"), (1.0, 1.0, 1.0))
    with pytest.raises(ConfigError, match="not all zero"):
        assign("k", "e", ("a", "b"), (0.0, 0.0))
    with pytest.raises(ConfigError, match="arm weight"):
        assign("k", "e", ("a", "b"), (-1.0, 2.0))


def test_arms_in_a_set_are_refused_because_their_order_changes_between_app_starts():
    # a set of str iterates in an order salted per process: the same device key drew "control" in one
    # app start and "treatment" in the next (seen with PYTHONHASHSEED 0..5), breaking the experiment
    with pytest.raises(ConfigError, match="fixed order"):
        assign("device-7", "exp", {"control", "treatment"})
    with pytest.raises(ConfigError, match="fixed order"):
        assign("device-7", "exp", ["control", "treatment"], frozenset({0.5, 1.5}))


def test_outcome_counts_add_what_they_are_given():
    counts = OutcomeCounts()
    counts.add("watch_minutes", 2.5)
    counts.add("watch_minutes", 0)
    counts.add("play")
    counts.add("play")
    assert dict(counts.counts) == {"watch_minutes": 2.5, "play": 2}
    with pytest.raises(ConfigError, match="outcome count"):
        counts.add("play", -1)
    with pytest.raises(ConfigError, match="outcome name"):
        counts.add("")
    assert dict(counts.counts) == {"watch_minutes": 2.5, "play": 2}  # a refused add changes nothing


def exposure(name: str) -> Exposure:
    return Exposure("u", (name,), (1.0,), (name,))


def test_the_exposure_log_keeps_the_newest_up_to_its_limit_and_pops_newest_first():
    log = ExposureLog(limit=3)
    assert log.pop() is None
    for name in "abcde":
        log.add(exposure(name))
    assert [e.items[0] for e in log.entries] == ["c", "d", "e"]
    assert log.pop().items == ("e",) and log.pop().items == ("d",)
    assert len(log.entries) == 1
    assert ExposureLog().limit == 10_000
    one = ExposureLog(limit=1)
    one.add(exposure("x"))
    one.add(exposure("y"))
    assert [e.items[0] for e in one.entries] == ["y"]


def test_position_probabilities_read_the_logged_table_and_are_zero_off_the_short_list():
    table = np.arange(12, dtype=float).reshape(4, 3) / 100
    shown = Exposure("u", ("b", "a"), (0.5, 0.25), ("a", "b"), (0.04, 0.01), ("a", "b", "c", "d"), table)
    np.testing.assert_array_equal(shown.position_probabilities("c"), [0.06, 0.07])  # the first k positions
    assert shown.position_probabilities("c").dtype == np.float64
    np.testing.assert_array_equal(shown.position_probabilities("zz"), [0.0, 0.0])
    assert shown.list_propensity == 0.125
    bare = Exposure("u", ("b", "a"), (0.5, 0.5), ("a", "b"))  # logged without the table
    np.testing.assert_array_equal(bare.position_probabilities("a"), [0.0, 0.0])


class Catalog:
    @staticmethod
    def item_id(row: int) -> str:
        return f"i{row}"


def request(order, relevance, excluded=(), pool=None):
    relevance = np.asarray(relevance, float)
    pool = np.arange(100, 100 + len(relevance)) if pool is None else np.asarray(pool)
    return SimpleNamespace(order=np.asarray(order, np.int64), relevance=relevance, pool=pool, user="u",
                           catalog=Catalog(), state=SimpleNamespace(excluded=set(excluded)))


def test_the_short_list_is_the_policys_list_then_the_pool_by_relevance_without_excluded_items():
    stage = ExplorationStage(ExposureLog(), width=6, seed=0)
    relevance = [0.1, 0.9, 0.5, 0.9, 0.7, 0.2, 0.3, 0.8]
    got = stage.candidates(request([4, 0], relevance, excluded={101}))  # pool row 1 holds item 101
    # the list first, then by relevance (ties by position: 3 before 1), minus excluded 1 and listed 4, 0
    assert got.tolist() == [4, 0, 3, 7, 2, 6]
    assert got.dtype == np.int64
    assert stage.candidates(request([4, 0], relevance)).tolist() == [4, 0, 1, 3, 7, 2]
    narrow = ExplorationStage(ExposureLog(), width=1, seed=0)  # the width never cuts the policy's list
    assert narrow.candidates(request([5, 2, 7], relevance)).tolist() == [5, 2, 7]
    no_state = request([1], relevance)
    no_state.state = None
    assert narrow.candidates(no_state).tolist() == [1]


def test_each_draw_logs_its_chance_given_the_items_above_it():
    log = ExposureLog()
    stage = ExplorationStage(log, temperature=1.5, width=6, seed=3)
    relevance = np.linspace(1.0, 0.0, 9)
    for _ in range(30):
        req = stage(request([0, 1, 2, 3], relevance))
        shown = log.pop()
        cand = list(shown.candidates)
        assert cand == [f"i{100 + j}" for j in range(6)] and shown.greedy == ("i100", "i101", "i102", "i103")
        drawn = [cand.index(item) for item in shown.items]
        assert len(set(drawn)) == 4 and shown.items == tuple(f"i{100 + int(j)}" for j in req.order)
        weight, left, want = np.exp(-np.arange(6) / 1.5), list(range(6)), []
        for j in drawn:
            want.append(weight[j] / weight[left].sum())
            left.remove(j)
        assert shown.propensities == pytest.approx(want, rel=1e-12)
        table = stage.table(-np.arange(6) / 1.5, 4)
        assert shown.positions is table
        assert shown.marginals == tuple(float(table[j, r]) for r, j in enumerate(drawn))
    assert table.shape == (6, 4) and not table.flags.writeable
    assert stage.table(-np.arange(6) / 1.5, 3) is not table  # another list length, another table


def test_a_cold_sampler_shows_the_policys_list_and_a_flat_one_shows_others():
    cold = ExplorationStage(ExposureLog(), temperature=0.05, width=8, seed=0)  # weights 1, e^-20, ...
    flat = ExplorationStage(ExposureLog(), temperature=1e3, width=8, seed=0)
    relevance = np.linspace(1.0, 0.0, 10)
    for _ in range(20):
        assert cold(request([2, 5, 7], relevance)).order.tolist() == [2, 5, 7]
    lists = {tuple(flat(request([2, 5, 7], relevance)).order.tolist()) for _ in range(40)}
    assert len(lists) > 20  # nearly uniform over 8 * 7 * 6 ordered lists
    seeded = [ExplorationStage(ExposureLog(), width=8, seed=11)(request([2, 5, 7], relevance)).order.tolist()
              for _ in range(2)]
    assert seeded[0] == seeded[1]  # a seed makes the draws repeatable


def test_explore_puts_a_required_stage_before_explain_that_fills_the_returned_log(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "h.db") as rec:
        log = explore(rec, temperature=2.0, width=12, seed=5)
        names = rec.pipeline.names
        assert names.index(EXPLORE_STAGE) == names.index("explain") - 1  # after fairness: the list shown
        stage = rec.pipeline.stages[names.index(EXPLORE_STAGE)]
        assert stage.required is True
        shown = [r.item_id for r in rec.recommend("newcomer", k=4)]
        entry = log.pop()
        assert list(entry.items) == shown and len(entry.candidates) == 12
        assert entry.user == "newcomer" and math.isclose(entry.list_propensity, math.prod(entry.propensities))
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "h2.db") as rec:
        # too cold for a list of 10: the 10th candidate weighs e^-9000 of the first, which no float holds;
        # the app is told in words (an optional stage swallowed it and the study said "run more users")
        log = explore(rec, temperature=1e-3, width=12, seed=5)
        with pytest.raises(ConfigError, match="raise the exploration temperature"):
            rec.recommend("newcomer", k=10)
        assert log.pop() is None


def test_a_temperature_too_low_for_the_list_is_refused_in_words_before_any_draw():
    """Before, the draw came first and failed with numpy's "probabilities contain NaN" (0 / 0)."""
    stage = ExplorationStage(ExposureLog(), temperature=1e-3, width=12, seed=5)
    with pytest.raises(ConfigError, match=r"^the 10th heaviest candidate weighs exp\(-9000\) of the heaviest"):
        stage(request(list(range(10)), np.linspace(1, 0, 12)))
    assert stage.log.pop() is None


def test_the_sampler_settings_and_their_edges():
    log = ExposureLog()
    stage = ExplorationStage(log, temperature=1e6, width=10_000, seed=2**63)
    assert (stage.log, stage.temperature, stage.width) == (log, 1e6, 10_000)
    assert isinstance(stage.temperature, float) and isinstance(ExplorationStage(log, 3).temperature, float)
    assert (ExplorationStage(log).temperature, ExplorationStage(log).width) == (2.0, 30)
    ExplorationStage(log, temperature=1e-9, width=1, seed=0)
    for bad in (dict(temperature=0.0), dict(temperature=1e6 + 1), dict(width=0), dict(width=10_001),
                dict(seed=-1), dict(seed=2**63 + 1)):
        with pytest.raises(ConfigError):
            ExplorationStage(log, **bad)
    assert ExposureLog(limit=10_000_000).limit == 10_000_000
    with pytest.raises(ConfigError, match="limit"):
        ExposureLog(limit=10_000_001)


def test_refusals_name_the_argument():
    log = ExposureLog()
    for kw, named in ((dict(temperature=-1.0), "exploration temperature"), (dict(width=0), "exploration width"),
                      (dict(seed=-1), "seed")):
        with pytest.raises(ConfigError, match=named):
            ExplorationStage(log, **kw)
    counts = OutcomeCounts()
    counts.add("p" * 200, 1e12)
    for args, named in ((("p" * 201,), "an outcome name"), (("play", 1e12 + 1e6), "an outcome count"),
                        (("play", -0.5), "an outcome count")):
        with pytest.raises(ConfigError, match=named):
            counts.add(*args)
    assert dict(counts.counts) == {"p" * 200: 1e12}


def test_ties_in_relevance_keep_pool_order_in_the_short_list():
    stage = ExplorationStage(ExposureLog(), width=150, seed=0)
    relevance = np.zeros(200)
    relevance[[50, 120]] = 1.0
    got = stage.candidates(request([7], relevance)).tolist()
    assert got == [7, 50, 120] + [i for i in range(200) if i not in (7, 50, 120)][:147]


def test_explore_defaults_and_its_seed_make_the_draws_repeatable(golden_bundle, tmp_path):
    lists = []
    for run in range(2):
        with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / f"{run}.db") as rec:
            explore(rec, seed=123)
            stage = rec.pipeline[EXPLORE_STAGE].run
            assert (stage.temperature, stage.width) == (2.0, 30)
            lists.append([[r.item_id for r in rec.recommend("newcomer", k=6)] for _ in range(5)])
    assert lists[0] == lists[1] and len({tuple(x) for x in lists[0]}) > 1


ORDER = "must be in a fixed order (a list or tuple), not a set: the order pairs arms with weights and must not change " \
        "between app starts"
REFUSED = [
    (lambda: unit_hash(12345, "e"),
     "the assignment key must be non-empty bytes or str (got int); use the device's secret install key"),
    (lambda: unit_hash("k" * 4097, "e"), "the assignment key is 4,097 characters long; the limit is 4096"),
    (lambda: unit_hash("k", ""), "the experiment name must not be empty"),
    (lambda: unit_hash("k", "e" * 1001), "the experiment name is 1,001 characters long; the limit is 1000"),
    (lambda: assign("k", "e", None), "arms must be a list of strings (got NoneType None)"),
    (lambda: assign("k", "e", "ab"), "arms must be a list of strings, e.g. ['ab'], not a single string (got 'ab')"),
    (lambda: assign("k", "e", ["a", "b"], "ab"),
     "weights must be a list of values, e.g. ['ab'], not a single string (got 'ab')"),
    (lambda: assign("k", "e", ["a", "b"], [1e12 + 1e6, 1.0]),
     "each arm weight must be a finite number from 0 up to 1e+12 (got 1000001000000.0)"),
    (lambda: assign("k", "e", {"a", "b"}), f"arms {ORDER}"),
    (lambda: assign("k", "e", ["a", "b"], {1.0, 2.0}), f"weights {ORDER}"),
    (lambda: ExposureLog(0), "ExposureLog limit must be a positive integer of at most 10000000 (got 0)"),
    (lambda: assign("k", "e", ["a", "b"], [1e12 + 0.5, 1.0]),
     "each arm weight must be a finite number from 0 up to 1e+12 (got 1000000000000.5)"),
    (lambda: ExplorationStage(ExposureLog(), temperature=-1.0),
     "exploration temperature must be a finite number above 0 up to 1e+06 (got -1.0)"),
    (lambda: ExplorationStage(ExposureLog(), width=0),
     "exploration width must be a positive integer of at most 10000 (got 0)"),
    (lambda: OutcomeCounts().add(""), "an outcome name must not be empty"),
    (lambda: OutcomeCounts().add("play", -0.5), "an outcome count must be a finite number from 0 up to 1e+12 (got -0.5)"),
    (lambda: OutcomeCounts().add("play", 1e12 + 0.5),
     "an outcome count must be a finite number from 0 up to 1e+12 (got 1000000000000.5)"),
]


@pytest.mark.parametrize("call, message", REFUSED)
def test_each_refusal_says_what_was_wrong(call, message):
    with pytest.raises(ConfigError) as caught:
        call()
    assert str(caught.value) == message


def test_the_longest_accepted_key_experiment_and_weight():
    assert unit_hash("k" * 4096, "e" * 1000) == by_hand(b"k" * 4096, "e" * 1000)
    assert assign("k", "e", ["a", "b"], [1e12, 1e12]) in ("a", "b")
    with pytest.raises(ConfigError, match="SEED|seed") as caught:
        ExplorationStage(ExposureLog(), seed=-1)
    assert str(caught.value).startswith("seed ")
