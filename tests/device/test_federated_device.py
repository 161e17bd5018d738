"""The device's part of federated learning on the golden bundle: updates, clipping, refusals, bytes, personal state."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import Recommender
from edgerec.runtime.fed_format import ClientUpdate, decode_update, encode_update
from edgerec.runtime.federated import (
    Consent,
    Personal,
    RoundTask,
    step_losses,
    take_part,
    user_vectors,
)
from edgerec.runtime.personal import load_personal, use_personal
from edgerec.runtime.privacy_ledger import Budget, PrivacyLedger


@pytest.fixture
def rec(golden_bundle, tmp_path):  # a history in a file: a round's ledger may not live in memory
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "history.db") as opened:
        yield opened


def play(rec, user, rows):
    recent = time.time() - 3_600  # explicit times retention keeps (reads drop what it would remove)
    for i, row in enumerate(rows):
        rec.record(user, rec.catalog.item_id(int(row)), "play", timestamp=recent + i)


def task(rec, **kw):
    return RoundTask(round=kw.pop("round", 0), space=rec.manifest.embedding_space, epsilon=kw.pop("epsilon", 0.1),
                     **kw)


def test_the_update_moves_the_consumed_rows_towards_the_user(rec):
    rows = [3, 17, 8, 40, 22, 5, 31]
    play(rec, "ana", rows)
    result = take_part(rec, "ana", task(rec, clip=100.0, negatives=8), personal=Personal(enabled=False), consent=Consent(opted_in=True))
    update = result.update
    assert result.refused is None and result.examples == len(rows) - 1
    targets = rows[1:]
    assert set(targets) <= set(update.rows.tolist())  # every next item is trained
    table = rec.catalog.stored.dequantize()
    users = user_vectors(rec, rows, np.arange(1, len(rows)))
    for user, target in zip(users, targets):
        at = int(np.searchsorted(update.rows, target))
        assert user @ update.delta[at] > 0  # the target row moved towards the user who went on to it
    # the rows that are not targets are sampled negatives: pushed away on average
    negative = [i for i, r in enumerate(update.rows) if r not in targets]
    assert np.mean([users.mean(0) @ update.delta[i] for i in negative]) < 0
    assert table.shape[0] == rec.catalog.base_count


def test_another_history_gives_another_update(rec):
    play(rec, "ana", [3, 17, 8, 40])
    play(rec, "bo", [50, 12, 44, 9])
    a = take_part(rec, "ana", task(rec, upload_rows=7), consent=Consent(opted_in=True)).update  # a DP round: 7 rows, the 3 items among them
    b = take_part(rec, "bo", task(rec, upload_rows=7, round=1), consent=Consent(opted_in=True)).update  # one upload a round and device
    assert {17, 8, 40} <= set(a.rows.tolist()) and {12, 44, 9} <= set(b.rows.tolist())
    assert not {12, 44, 9} <= set(a.rows.tolist())
    assert not (a.rows.shape == b.rows.shape and np.allclose(a.delta, b.delta))


def test_the_update_is_clipped_to_the_bound(rec):
    play(rec, "ana", [3, 17, 8, 40, 22, 5])
    result = take_part(rec, "ana", task(rec, lr=5.0, clip=0.05), consent=Consent(opted_in=True))
    assert result.norm > 0.05  # the raw change was larger
    assert result.update.norm == pytest.approx(0.05, rel=1e-5)
    free = take_part(rec, "ana", task(rec, lr=5.0, clip=1e6, round=1), consent=Consent(opted_in=True))
    assert free.update.norm == pytest.approx(free.norm, rel=1e-5) and free.norm > 0.05


def test_a_device_takes_no_part_until_its_user_opts_in(rec):
    """Privacy by default: Consent() was a yes, so an app that never asked its user sent their updates."""
    play(rec, "ana", [3, 17, 8, 40])
    ledger = PrivacyLedger(rec.history, Budget(per_day=1.0, per_30_days=4.0))
    for consent in (None, Consent()):
        result = take_part(rec, "ana", task(rec), consent=consent, ledger=ledger, now=5_000.0)
        assert result.payload is None and result.refused == "the user has not opted in"
    assert ledger.spent(5_000.0).day == 0
    assert take_part(rec, "ana", task(rec), consent=Consent(opted_in=True), ledger=ledger, now=5_000.0).payload


def test_refusals_are_entered_in_the_ledger_and_nothing_is_sent(rec):
    play(rec, "ana", [3, 17, 8, 40])
    ledger = PrivacyLedger(rec.history, Budget(per_day=0.25, per_30_days=1.0))
    cases = [(Consent(opted_in=False), task(rec), "not opted in"),
             (Consent(opted_in=True, allowed=False), task(rec), "battery"),
             (Consent(opted_in=True), task(rec, epsilon=None), "no differential privacy"),
             (Consent(opted_in=True), RoundTask(round=0, space="0" * 24, epsilon=0.1), "another bundle")]
    for consent, round_task, why in cases:
        result = take_part(rec, "ana", round_task, consent=consent, ledger=ledger, now=5_000.0)
        assert result.payload is None and why in result.refused
    assert take_part(rec, "ana", task(rec, epsilon=0.2), ledger=ledger, now=5_000.0, consent=Consent(opted_in=True)).payload is not None
    over = take_part(rec, "ana", task(rec, epsilon=0.2, round=1), ledger=ledger, now=5_001.0, consent=Consent(opted_in=True))
    assert over.payload is None and over.refused == "privacy budget"
    entries = ledger.entries()
    assert [e[2] for e in entries] == [0, 0, 0, 0, 0.2, 0]
    assert all("declined" in e[1] for i, e in enumerate(entries) if i != 4)
    assert entries[4][1] == "federated round 0" and "privacy budget" in entries[5][1]
    # a round without DP is taken only with consent, and is entered as spending nothing
    taken = take_part(rec, "ana", task(rec, epsilon=None, round=2), consent=Consent(opted_in=True, without_dp=True), ledger=ledger)
    assert taken.payload is not None and ledger.entries()[-1][1:] == ("federated round 2 (no DP)", 0.0)


def test_a_round_dated_back_into_an_empty_day_still_counts_on_the_real_day(rec):
    """take_part(now=..., consent=Consent(opted_in=True)) dated rounds a day apart into empty days of the ledger: each fitted the daily cap,
    so a device could upload past it in one real day. The ledger now counts each on its real day too."""
    play(rec, "ana", [3, 17, 8, 40])
    ledger = PrivacyLedger(rec.history, Budget(per_day=1.0, per_30_days=10.0))
    day = 86_400.0
    first = take_part(rec, "ana", task(rec, epsilon=0.75), ledger=ledger, now=time.time() - 3 * day, consent=Consent(opted_in=True))
    second = take_part(rec, "ana", task(rec, epsilon=0.75, round=1), ledger=ledger, now=time.time() - day, consent=Consent(opted_in=True))
    assert first.payload is not None and (second.payload, second.refused) == (None, "privacy budget")
    assert [e[2] for e in ledger.entries()] == [0.75, 0.0]
    # a simulation says so with its ledger: its days are the dates it gives
    simulated = PrivacyLedger(rec.history, Budget(per_day=1.0, per_30_days=10.0), simulation=True)
    assert take_part(rec, "ana", task(rec, epsilon=0.75, round=2), ledger=simulated, now=time.time() - day, consent=Consent(opted_in=True)).payload


def test_a_round_on_a_history_in_memory_is_refused_unless_a_simulations_ledger_is_given(golden_bundle):
    """A PrivateReporter refused a history in memory (its ledger would start empty at every app start) but
    take_part and step_losses took it and charged a ledger that forgot. Now both refuse it, in words."""
    with Recommender.open(golden_bundle, backend="onnx") as memory:
        play(memory, "ana", [3, 17, 8, 40])
        table = memory.catalog.stored.dequantize()
        calls = {"a federated round": lambda ledger: take_part(memory, "ana", task(memory), ledger=ledger, consent=Consent(opted_in=True)),
                 "the federated evaluation of step sizes": lambda ledger: step_losses(
                     memory, "ana", table, [3], np.zeros((1, memory.manifest.dim)), [1.0],
                     consent=Consent(opted_in=True, without_dp=True), ledger=ledger)}
        for what, call in calls.items():
            with pytest.raises(ConfigError) as caught:
                call(None)
            assert str(caught.value) == (
                f"{what} needs the history in a file: a privacy ledger kept in memory forgets what was spent when "
                "the app restarts, so no budget would hold; open the Recommender with history=PATH (a simulation "
                "passes ledger=PrivacyLedger(store, simulation=True))")
        simulated = PrivacyLedger(memory.history, simulation=True)
        assert calls["a federated round"](simulated).payload is not None
        assert calls["the federated evaluation of step sizes"](simulated) is not None
        assert [e[1] for e in simulated.entries()] == ["federated round 0",
                                                       "federated evaluation of step sizes (no DP)"]


def test_a_dp_upload_holds_the_rounds_row_count_whatever_the_history(rec):
    """A DP upload held the device's distinct consumed items plus the round's negatives: its size told the
    server how many items the device had consumed. In a DP round every upload now holds `upload_rows` rows."""
    play(rec, "ana", [3, 17])  # one target
    play(rec, "bo", list(range(30)))  # 29 targets
    off = Personal(enabled=False)
    small, large = (take_part(rec, user, task(rec, negatives=4, upload_rows=20, round=r), personal=off, consent=Consent(opted_in=True))
                    for r, user in enumerate(("ana", "bo")))
    assert len(small.update.rows) == len(large.update.rows) == 20 and len(small.payload) == len(large.payload)
    assert 17 in small.update.rows and np.all(small.update.delta.any(axis=1))  # every row a real change
    assert set(large.update.rows.tolist()) <= set(range(1, 30))  # more items than rows: items only, no negative
    whole = take_part(rec, "ana", task(rec, round=2), personal=off, consent=Consent(opted_in=True))  # the default 256: the table's 56 rows
    assert whole.update.rows.tolist() == list(range(rec.catalog.base_count))
    # without DP the device changes its items and the round's negatives, as before
    plain = take_part(rec, "ana", task(rec, epsilon=None, negatives=4, round=3), consent=Consent(opted_in=True, without_dp=True),
                      personal=off)
    assert len(plain.update.rows) == 1 + 4 and 17 in plain.update.rows


def test_the_upload_round_trips_and_stays_small(rec):
    play(rec, "ana", list(range(30)))
    result = take_part(rec, "ana", task(rec, encoding="fp16"), consent=Consent(opted_in=True))
    back = decode_update(result.payload)
    assert np.array_equal(back.rows, result.update.rows) and back.space == rec.manifest.embedding_space
    assert np.allclose(back.delta, result.update.delta, atol=1e-3)
    assert back.weight == 1.0 and result.examples > 1  # a DP round: the server weighs devices alike
    plain = take_part(rec, "ana", task(rec, epsilon=None, round=2), consent=Consent(opted_in=True, without_dp=True))
    assert decode_update(plain.payload).weight == plain.examples > 1  # FedAvg weighs by examples
    assert len(result.payload) == 32 + len(back.rows) * (4 + 2 * rec.manifest.dim)
    small = take_part(rec, "ana", task(rec, round=1), consent=Consent(opted_in=True))  # int8: rows within half a step of their scale
    got = decode_update(small.payload)
    step = np.abs(small.update.delta).max(1, keepdims=True) / 127
    assert np.all(np.abs(got.delta - small.update.delta) <= step / 2 + 1e-7)
    assert len(small.payload) == 32 + len(got.rows) * (4 + 4 + rec.manifest.dim) <= 64 * 1024


def test_damaged_uploads_are_refused():
    update = ClientUpdate(3, "ab" * 12, np.array([1, 5]), np.ones((2, 4), np.float32), 2.0)
    data = encode_update(update)
    for bad in (data[:-1], b"XXXX" + data[4:], data[:32]):
        with pytest.raises(ConfigError):
            decode_update(bad)
    with pytest.raises(ConfigError, match="ascending"):
        encode_update(ClientUpdate(3, "ab" * 12, np.array([5, 1]), np.ones((2, 4), np.float32), 2.0))
    nan = bytearray(encode_update(update, "fp16"))
    nan[-2:] = np.array([np.nan], "<f2").tobytes()
    with pytest.raises(ConfigError, match="NaN"):
        decode_update(bytes(nan))


def test_the_personal_vector_stays_on_the_device_and_with_its_space(rec, tmp_path):
    play(rec, "ana", [3, 17, 8, 40, 22])
    space, dim = rec.manifest.embedding_space, rec.manifest.dim
    before = rec.recommend("ana", k=5)
    take_part(rec, "ana", task(rec), personal=Personal(lr=0.5), consent=Consent(opted_in=True))
    vector = load_personal(rec.history, "ana", space, dim)
    assert np.linalg.norm(vector) > 0
    assert not np.any(load_personal(rec.history, "ana", "f" * 24, dim))  # another space: nothing
    use_personal(rec)
    assert "personal" in rec.pipeline.names
    with_vector = rec.recommend("ana", k=5)
    assert [r.score for r in with_vector] != [r.score for r in before]
    assert "personal_vector" in rec.export_history("ana")["preferences"]
    rec.forget("ana")
    assert not np.any(load_personal(rec.history, "ana", space, dim))


def test_the_device_trains_against_the_table_the_server_sent(rec):
    """The round's table, not the bundle's, is what the rows move from (a later round builds on the earlier)."""
    play(rec, "ana", [3, 17, 8, 40])
    table = rec.catalog.stored.dequantize()
    moved = table.copy()
    moved[17] = -moved[17]
    a = take_part(rec, "ana", task(rec), table=table, personal=Personal(enabled=False), consent=Consent(opted_in=True)).update
    b = take_part(rec, "ana", task(rec, round=1), table=moved, personal=Personal(enabled=False), consent=Consent(opted_in=True)).update
    at = int(np.searchsorted(a.rows, 17))
    assert not np.allclose(a.delta[at], b.delta[int(np.searchsorted(b.rows, 17))])


def test_the_device_part_loads_no_host_library():
    code = ("import sys, edgerec.runtime.federated, edgerec.runtime.personal, edgerec.runtime.fed_format; "
            "print(','.join(m for m in ('torch', 'onnx', 'transformers', 'edgerec.federated', 'edgerec.data') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_personal_vector_beyond_float16_is_refused_not_kept_as_inf(rec):
    # kept as float16, a vector past 65504 read back as inf, so the device silently started again from
    # zero every other round (8160, 0, 8160, 0 at Personal.lr 1e3 on the golden bundle)
    play(rec, "ana", [3, 17, 8, 40, 22])
    space, dim, fast = rec.manifest.embedding_space, rec.manifest.dim, Personal(lr=1e3, l2=0.0)
    take_part(rec, "ana", task(rec), personal=fast, consent=Consent(opted_in=True))
    kept = load_personal(rec.history, "ana", space, dim)
    assert np.abs(kept).max() > 1_000
    with pytest.raises(ConfigError, match="lower Personal.lr"):
        take_part(rec, "ana", task(rec, round=1), personal=fast, consent=Consent(opted_in=True))
    assert np.array_equal(load_personal(rec.history, "ana", space, dim), kept)  # nothing saved
