"""The device's federated round after audit B2 (Dec 2026): a retried round is declined, an fp16 round cannot
overflow after its epsilon is spent, the clip bound holds for the values the server decodes, and a DP upload
covering the whole table holds no all-zero row in int8."""

from __future__ import annotations

import numpy as np
import pytest
from test_federated_guard import play, task

from edgerec.errors import ConfigError, PrivacyBudgetError
from edgerec.runtime import Recommender
from edgerec.runtime.fed_format import ClientUpdate, clip_for_upload, decode_update, encode_update
from edgerec.runtime.federated import Consent, Personal, take_part
from edgerec.runtime.privacy_ledger import Budget, PrivacyLedger

OFF = Personal(enabled=False)
AGAIN = "already took part in this round (an app re-sends its first upload's bytes)"


@pytest.fixture
def rec(golden_bundle, tmp_path):  # a history in a file: a round's ledger may not live in memory
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "history.db") as opened:
        yield opened


# ---------------------------------------------------------------- 1: one upload per round and space

def test_a_retried_round_is_declined_and_charged_once(rec):
    """A retry of take_part for the same round gave a second, different upload (the personal vector had moved)
    that the server admitted: the device counted twice in a DP round and its ledger was charged twice."""
    play(rec, "ana", [3, 17, 8, 40, 22, 5])
    ledger = PrivacyLedger(rec.history, Budget(per_day=10.0, per_30_days=10.0))
    first = take_part(rec, "ana", task(rec), ledger=ledger, now=5_000.0, consent=Consent(opted_in=True))
    again = take_part(rec, "ana", task(rec), ledger=ledger, now=5_001.0, consent=Consent(opted_in=True))
    assert first.payload is not None
    assert (again.payload, again.update, again.refused) == (None, None, AGAIN)
    assert ledger.entries() == [(5_000.0, "federated round 0", 0.1),
                                (5_001.0, f"federated round 0: declined ({AGAIN})", 0.0)]
    # another profile of the same device is the same device: one upload a round
    play(rec, "bo", [50, 12, 44, 9])
    assert take_part(rec, "bo", task(rec), ledger=ledger, now=5_002.0, consent=Consent(opted_in=True)).refused == AGAIN
    assert take_part(rec, "ana", task(rec, round=1), ledger=ledger, now=5_003.0, consent=Consent(opted_in=True)).payload is not None


def test_a_round_without_dp_is_taken_once_too_and_a_decline_does_not_count_as_taken(rec):
    play(rec, "ana", [3, 17, 8, 40])
    ledger = PrivacyLedger(rec.history)
    no_dp, consent = task(rec, epsilon=None, round=4), Consent(opted_in=True, without_dp=True)
    assert take_part(rec, "ana", no_dp, consent=Consent(opted_in=True, allowed=False), ledger=ledger).refused.startswith("not now")
    assert take_part(rec, "ana", no_dp, consent=consent, ledger=ledger).payload is not None  # after "not now"
    assert take_part(rec, "ana", no_dp, consent=consent, ledger=ledger).refused == AGAIN


def test_the_ledger_holds_a_key_once_whatever_its_entry(rec):
    ledger = PrivacyLedger(rec.history, Budget(per_day=10.0, per_30_days=10.0))
    key = f"federated round 3 of space {rec.manifest.embedding_space}"
    assert not ledger.taken(key)
    ledger.charge("federated round 3", 0.5, 1_000.0, key=key)
    for spend in (lambda: ledger.charge("federated round 3", 0.5, 1_001.0, key=key),
                  lambda: ledger.note("federated round 3 (no DP)", 1_001.0, key=key)):
        with pytest.raises(PrivacyBudgetError, match="counts once. Nothing was reported"):
            spend()
    other = "federated round 3 of space " + "0" * 24  # the same round number of another bundle's run
    ledger.charge("federated round 3", 0.5, 1_002.0, key=other)
    assert ledger.taken(key) and ledger.taken(other) and [e[2] for e in ledger.entries()] == [0.5, 0.5]


# ---------------------------------------------------------------- 5: fp16 and float16's range

def test_an_fp16_round_with_a_clip_past_float16s_range_is_refused_before_the_ledger(rec):
    """fp16 with clip 1e9: the update held infinities as float16, was sent, epsilon spent, then refused by the
    server."""
    play(rec, "ana", [3, 17, 8, 40, 22, 5])
    ledger = PrivacyLedger(rec.history, Budget(per_day=10.0, per_30_days=10.0))
    big = task(rec, encoding="fp16", clip=1e9, lr=1000.0, temperature=1e-3)
    with pytest.raises(ConfigError, match="RoundTask.clip of an fp16 round is at most 65504"):
        take_part(rec, "ana", big, ledger=ledger, personal=OFF, consent=Consent(opted_in=True))
    assert ledger.entries() == []
    task(rec, encoding="int8", clip=1e9).check()  # int8 has a scale per row: any clip
    at_edge = take_part(rec, "ana", task(rec, encoding="fp16", clip=65504.0, lr=1000.0, temperature=1e-3),
                        ledger=ledger, personal=OFF, consent=Consent(opted_in=True))
    assert np.all(np.isfinite(decode_update(at_edge.payload).delta))  # the server takes it


def test_encoding_refuses_values_that_float16_turns_into_infinities():
    update = ClientUpdate(0, "ab" * 12, np.array([1, 2]), np.array([[7e4, 0.0], [1.0, 2.0]], np.float32), 1.0)
    with pytest.raises(ConfigError, match="pass float16's range"):
        encode_update(update, "fp16")
    assert decode_update(encode_update(update, "int8")).delta[0, 0] == pytest.approx(7e4, rel=1e-2)


# ---------------------------------------------------------------- 6: the bound of what the server decodes

@pytest.mark.parametrize("encoding", ["int8", "fp16"])
def test_the_decoded_update_is_within_the_clip_bound_for_many_random_updates(encoding):
    """Clipped in float32 and then rounded to int8 steps or float16, an upload's decoded norm was up to
    1.00047 (int8) or 1.00007 (fp16) times the bound the server's DP accounting assumes."""
    rng = np.random.default_rng(7)
    for trial in range(300):
        rows, dim = int(rng.integers(1, 80)), int(rng.integers(1, 40))
        delta = rng.normal(size=(rows, dim)) * 10.0 ** rng.uniform(-6, 3, size=(rows, 1))
        clip = float(10.0 ** rng.uniform(-4, 1))
        out = clip_for_upload(delta, clip, encoding)
        update = ClientUpdate(0, "ab" * 12, np.arange(rows), out, 1.0)
        decoded = decode_update(encode_update(update, encoding)).delta.astype(np.float64)
        assert np.linalg.norm(decoded) <= clip, (trial, np.linalg.norm(decoded) / clip)
        if np.linalg.norm(delta) > clip:  # clipped, not shrunk more than rounding needs (half an int8 step)
            assert np.linalg.norm(decoded) >= clip * (1 - 1e-2) and np.linalg.norm(out) >= clip * (1 - 1e-2)
            assert np.allclose(out / np.linalg.norm(out), delta / np.linalg.norm(delta), atol=1e-3)
    small = rng.normal(size=(5, 4)) * 1e-3  # within the bound: left as it is
    np.testing.assert_array_equal(clip_for_upload(small, 1.0, "int8"), small.astype(np.float32))


def test_every_upload_of_a_round_decodes_within_its_clip_bound(rec):
    rng = np.random.default_rng(0)
    ledger = PrivacyLedger(rec.history, Budget(per_day=1e6, per_30_days=1e6))
    for r in range(24):
        user = f"u{r}"
        play(rec, user, rng.choice(rec.catalog.base_count, 6, replace=False))
        clip = [0.2, 0.05, 1e-3, 1.0][r % 4]
        t = task(rec, round=r, lr=5.0, clip=clip, encoding=("int8", "fp16")[r % 2], upload_rows=32)
        result = take_part(rec, user, t, ledger=ledger, personal=OFF, consent=Consent(opted_in=True))
        decoded = decode_update(result.payload).delta.astype(np.float64)
        assert result.norm > clip and clip * (1 - 1e-2) <= np.linalg.norm(decoded) <= clip


# ---------------------------------------------------------------- 8: no all-zero rows in a DP upload (int8)

def test_a_dp_upload_of_the_whole_table_holds_no_all_zero_row_in_int8(rec):
    """The change was the new row value minus the old in float32: a tiny step added to a row's value vanished,
    and a DP upload covering the whole table held rows of zeros. The change is now summed in float64."""
    play(rec, "ana", [3, 17, 8, 40, 22, 5, 31, 12, 44, 9])
    ledger = PrivacyLedger(rec.history, Budget(per_day=1e6, per_30_days=1e6))
    for r, (temperature, lr) in enumerate([(0.05, 0.0002), (0.02, 0.002), (0.01, 0.0002)]):
        t = task(rec, round=r, temperature=temperature, lr=lr, upload_rows=256)  # the golden table: 56 rows
        result = take_part(rec, "ana", t, ledger=ledger, personal=OFF, consent=Consent(opted_in=True))
        decoded = decode_update(result.payload)
        assert len(decoded.rows) == rec.catalog.base_count
        assert np.all(decoded.delta.any(axis=1)), (temperature, lr, int(np.sum(~decoded.delta.any(axis=1))))
