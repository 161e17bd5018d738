"""The transfer study: its metric and protocol pieces by hand, and one run on a small coupled world."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgerec.data import SynthConfig
from edgerec.data.split import Sequences
from edgerec.errors import ConfigError
from edgerec.studies.transfer import METHODS, ORACLE, TransferStudy, ndcg_at_k, without_users


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
    assert list(methods) == [*METHODS, ORACLE] and run["domain_coupling"] == 1.0
    assert methods["popularity"]["x_popularity"] == 1.0
    assert run["test_users"] + run["train_users"] > 100 and run["source_items"] + run["target_items"] == 2_400
    # the learned bridge carries the source history into the target better than the model with no history
    assert methods["mapping"]["NDCG@10"] > methods["target-only"]["NDCG@10"]
    assert [row["method"] for row in result.tables[0].rows] == [*METHODS, ORACLE]
    # the generator's own tastes rank the hidden history better than anything learned from data
    assert methods[ORACLE]["NDCG@10"] > max(methods[m]["NDCG@10"] for m in METHODS)
    with pytest.raises(ConfigError, match="data folder or a synthetic world"):
        TransferStudy().run()
    with pytest.raises(ConfigError, match="no domain 'books'"):
        TransferStudy(synth=SynthConfig(users=300, items=900, events=9_000), target="books").run()
