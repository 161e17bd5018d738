"""The transfer study: its metric and protocol pieces by hand, and one run on a small coupled world."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgerec.data import SynthConfig
from edgerec.data.split import Sequences
from edgerec.errors import ConfigError
from edgerec.studies.transfer import (
    METHODS,
    ORACLE,
    SOURCE_ORACLE,
    TransferStudy,
    ndcg_at_k,
    without_users,
)


def test_ndcg_at_k_by_hand():
    relevant = np.array([7, 9, 11])
    assert ndcg_at_k(np.array([7, 9, 11, 1]), relevant) == pytest.approx(1.0)
    # hits at ranks 2 and 4 of an ideal 3
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert ndcg_at_k(np.array([1, 9, 2, 7]), relevant) == pytest.approx(expected)
    assert ndcg_at_k(np.array([1, 2]), relevant) == 0.0


def test_without_users_hides_exactly_their_rows():
    seq = Sequences(np.array([0, 2, 3, 5]), np.array([1, 2, 3, 4, 5], np.int32), np.arange(5, dtype=np.int64))
    hidden = without_users(seq, np.array([1]))
    assert [hidden.of(u).tolist() for u in range(3)] == [[1, 2], [], [4, 5]]


def test_transfer_study_on_a_coupled_world():
    study = TransferStudy(synth=SynthConfig(users=800, items=2_400, events=40_000, seed=1), couplings=(1.0,))
    result = study.run()
    run = result.record["runs"][0]
    methods = run["methods"]
    assert list(methods) == [*METHODS, ORACLE, SOURCE_ORACLE] and run["domain_coupling"] == 1.0
    assert methods["popularity"]["x_popularity"] == 1.0
    assert run["test_users"] + run["train_users"] > 100 and run["source_items"] + run["target_items"] == 2_400
    # the learned bridge carries the source history into the target better than the model with no history
    assert methods["mapping"]["NDCG@10"] > methods["target-only"]["NDCG@10"]
    # the direct bridge (fit to the target's item scores, with its prior) beats popularity here: 0.212 vs 0.196
    assert methods["direct"]["NDCG@10"] > methods["popularity"]["NDCG@10"]
    assert run["ceiling_x_popularity"] == round(1 / methods["popularity"]["NDCG@10"], 2)
    # knowing half the user's own target history ranks the other half far above popularity in this world
    reference = run["in_domain_reference"]
    assert reference["target model"] > 2 * reference["popularity"] > 0
    assert result.tables[1].rows[0]["target model"] == reference["target model"]
    assert [row["method"] for row in result.tables[0].rows] == [*METHODS, ORACLE, SOURCE_ORACLE]
    # the generator's own tastes rank the hidden history better than anything learned from data
    assert methods[ORACLE]["NDCG@10"] > max(methods[m]["NDCG@10"] for m in METHODS)
    with pytest.raises(ConfigError, match="data folder or a synthetic world"):
        TransferStudy().run()


def test_the_source_taste_oracle_carries_taste_only_when_the_world_couples_it():
    study = TransferStudy(synth=SynthConfig(users=800, items=2_400, events=40_000, seed=1), couplings=(1.0, 0.0))
    coupled, independent = (run["methods"] for run in study.run().record["runs"])

    def gain(methods: dict, method: str) -> float:
        return methods[method]["NDCG@10"] - methods["popularity"]["NDCG@10"]

    # the video taste read off the true audio taste gains about what the true video taste gains over
    # popularity when audio follows video (0.107 vs 0.113 here), and little of it when the tastes are
    # independent (0.013 vs 0.057)
    assert gain(coupled, SOURCE_ORACLE) > 0.8 * gain(coupled, ORACLE) > 0
    assert gain(independent, SOURCE_ORACLE) < 0.5 * gain(independent, ORACLE)
    with pytest.raises(ConfigError, match="no domain 'books'"):
        TransferStudy(synth=SynthConfig(users=300, items=900, events=9_000), target="books").run()


def with_events(dataset, users: np.ndarray, items: np.ndarray):
    """A copy of `dataset` where each of `users` also finished each of `items` (codes), after everything else."""
    from edgerec.data.schema import EVENT_CODE, Interactions

    log = dataset.interactions
    user, item = np.repeat(users, len(items)).astype(np.int32), np.tile(items, len(users)).astype(np.int32)
    n = len(user)
    extra = Interactions(user, item, np.full(n, log.timestamp.max() + 1, np.int64),
                         np.full(n, EVENT_CODE["finish"], np.int8), np.ones(n, np.float32))
    joined = Interactions(*(np.concatenate([getattr(log, c), getattr(extra, c)])
                            for c in ("user", "item", "timestamp", "event", "value", "device")))
    return type(dataset)(dataset.catalog, joined.sorted_by_time(), dataset.user_ids, dataset.meta)


def test_the_direct_bridge_is_fit_on_training_users_only():
    from edgerec.data.domains import item_domains
    from edgerec.data.synth import synth_dataset
    from edgerec.studies.transfer import fit_transfer

    dataset = synth_dataset(SynthConfig(users=400, items=1_200, events=16_000, seed=2))
    fit = fit_transfer(dataset, "audio", "video")
    video = np.flatnonzero(item_domains(dataset) == "video")[:40]  # poison: 40 video items for every user listed
    hidden = fit_transfer(with_events(dataset, fit.test, video), "audio", "video")
    assert np.array_equal(hidden.test, fit.test)  # the same split, the test users' video history poisoned
    for a, b in ((fit.direct.weights, hidden.direct.weights), (fit.direct.bias, hidden.direct.bias),
                 (fit.direct.prior, hidden.direct.prior), (fit.bridge.weights, hidden.bridge.weights),
                 (fit.popularity, hidden.popularity)):
        np.testing.assert_array_equal(a, b)
    # the same poison on training users moves the prior of those items (video codes 0-39 there) up, no other
    seen = fit_transfer(with_events(dataset, fit.train[:20], video), "audio", "video")
    moved = np.flatnonzero(~np.isclose(seen.direct.prior, fit.direct.prior))
    assert len(moved) > 20 and moved.max() < 40
    assert np.all(seen.direct.prior[moved] > fit.direct.prior[moved])
    assert not np.allclose(seen.direct.weights, fit.direct.weights)
    # the prior is each target item's share of the training users who consumed it
    consumed = np.zeros(len(fit.direct.prior))
    for user in fit.train:
        consumed[np.unique(fit.seq_b.of(int(user)))] += 1
    np.testing.assert_allclose(fit.direct.prior, consumed / len(fit.train), rtol=1e-6)


def test_the_in_domain_reference_splits_each_test_users_target_history_in_halves():
    from edgerec.studies.transfer import TransferFit, in_domain_reference

    # three target items; item 0 is the most popular, items 1 and 2 always go together
    items_b = np.array([[1, 0], [0, 1], [0, 1]], np.float32)
    seq_b = Sequences(np.array([0, 2, 4]), np.array([1, 2, 2, 1], np.int32), np.arange(4, dtype=np.int64))
    fit = TransferFit(None, None, None, seq_b, np.array([0, 1]), np.array([], np.int64), None, items_b,
                      np.array([5, 1, 0], np.float32), None, None, None, None, None, None)
    ref = in_domain_reference(fit)
    # each user gives one of {1, 2} and must find the other: the model puts it first, popularity second
    assert ref["target model"] == pytest.approx(1.0)
    assert ref["popularity"] == pytest.approx(1 / math.log2(3), abs=1e-4)  # rounded to 4 places
    assert ref["x_popularity"] == pytest.approx(math.log2(3), abs=0.01)
