"""The device's federated round against a reference written apart from it (its mutation run asked for these;
tools/mutation-scores.md): the softmax gradients checked by finite differences, a whole two-step round with
its personal vector recomputed in float64, the clipping's direction, the step evaluation's ranks, and the
bounds of every argument."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import Recommender
from edgerec.runtime.federated import (
    ENCODE_BATCH,
    Consent,
    Personal,
    RoundTask,
    example_positions,
    moved_rows,
    softmax_gradients,
    step_losses,
    take_part,
    user_vectors,
)
from edgerec.runtime.personal import load_personal, save_personal
from edgerec.runtime.privacy_ledger import Budget, PrivacyLedger


@pytest.fixture
def rec(golden_bundle, tmp_path):  # a history in a file: a round's ledger may not live in memory
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "history.db") as opened:
        yield opened


def play(rec, user, rows):
    recent = time.time() - 3_600
    for i, row in enumerate(rows):
        rec.record(user, rec.catalog.item_id(int(row)), "play", timestamp=recent + i)


def task(rec, **kw):
    return RoundTask(round=kw.pop("round", 0), space=rec.manifest.embedding_space, epsilon=kw.pop("epsilon", 0.1), **kw)


def reference_gradients(users, targets, table, temperature):
    """d/d table and d/d a shared user offset of sum_i -log softmax(u_i . table / T)[t_i], dense, float64."""
    users, table = np.asarray(users, np.float64), np.asarray(table, np.float64)
    logits = users @ table.T / temperature
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    prob[np.arange(len(users)), targets] -= 1.0
    return prob.T @ users / temperature, prob @ table / temperature


def loss(users, targets, table, temperature):
    logits = np.asarray(users, np.float64) @ np.asarray(table, np.float64).T / temperature
    top = logits.max(1, keepdims=True)
    return float((np.log(np.exp(logits - top).sum(1)) + top[:, 0] - logits[np.arange(len(users)), targets]).sum())


def test_the_reference_is_the_derivative_of_the_loss():
    rng = np.random.default_rng(0)
    users, table, targets = rng.normal(0, 1, (5, 3)), rng.normal(0, 1, (7, 3)), rng.integers(0, 7, 5)
    grad, toward = reference_gradients(users, targets, table, 0.5)
    h = 1e-6
    for row, col in ((0, 0), (3, 2), (int(targets[0]), 1)):
        up, down = table.copy(), table.copy()
        up[row, col] += h
        down[row, col] -= h
        assert grad[row, col] == pytest.approx((loss(users, targets, up, 0.5) - loss(users, targets, down, 0.5)) / (2 * h),
                                               rel=1e-5, abs=1e-7)
    shift = np.zeros(3)
    shift[1] = h
    numeric = (loss(users + shift, targets, table, 0.5) - loss(users - shift, targets, table, 0.5)) / (2 * h)
    assert toward.sum(0)[1] == pytest.approx(numeric, rel=1e-5)


def test_softmax_gradients_are_the_losss_over_batches_and_rows():
    rng = np.random.default_rng(1)
    n = 2 * ENCODE_BATCH + 17  # three encoder batches
    users = rng.normal(0, 1, (n, 6)).astype(np.float32)
    table = rng.normal(0, 1, (40, 6)).astype(np.float32)
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    targets = rng.integers(0, 40, n)
    expected, toward_all = reference_gradients(users, targets, table, 0.2)
    grad, toward = softmax_gradients(users, targets, table, 0.2, None, True)
    assert grad.dtype == np.float32 and grad.shape == (40, 6) and toward.dtype == np.float32
    np.testing.assert_allclose(grad, expected, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(toward, toward_all.sum(0) / n, rtol=2e-4, atol=1e-5)  # the mean over examples
    rows = np.array([2, 9, 31])
    some, none = softmax_gradients(users, targets, table, 0.2, rows, False)
    np.testing.assert_allclose(some, expected[rows], rtol=2e-4, atol=2e-4)
    assert not np.any(none)  # no offset asked: no offset gradient


def reference_round(rec, consumed, t: RoundTask, p: Personal, offset):
    """The round as the module docstring says, in float64: newest max_examples steps, the targets plus the
    `negatives` rows of largest gradient, `steps` steps on those rows, the offset following the mean
    gradient pulled back by l2, the change clipped to `clip`."""
    positions = np.arange(max(1, len(consumed) - t.max_examples), len(consumed))
    users = user_vectors(rec, consumed, positions).astype(np.float64)
    targets = np.asarray(consumed)[positions]
    base = rec.catalog.stored.dequantize().astype(np.float64)
    table, offset, rows = base.copy(), np.asarray(offset, np.float64), None
    for _ in range(t.steps):
        grad, toward = reference_gradients(users + offset, targets, table, t.temperature)
        if rows is None:
            strength = (grad ** 2).sum(1)
            others = [r for r in np.argsort(-strength, kind="stable") if r not in set(targets.tolist())]
            rows = np.array(sorted(set(targets.tolist()) | set(others[:t.negatives])))
        table[rows] -= t.lr * grad[rows]
        if p.enabled:
            offset = offset - p.lr * (toward.mean(0) + p.l2 * offset)
    delta = table[rows] - base[rows]
    norm = np.linalg.norm(delta)
    return rows, delta * min(1.0, t.clip / norm), norm, offset, len(positions)


@pytest.mark.parametrize("negatives", [1, 6, 40])
def test_a_two_step_round_is_the_reference_round(rec, negatives):
    consumed = [3, 17, 8, 40, 22, 5, 31, 12, 44, 9]
    play(rec, "ana", consumed)
    space, dim = rec.manifest.embedding_space, rec.manifest.dim
    start = np.linspace(-0.05, 0.05, dim).astype(np.float32)
    save_personal(rec.history, "ana", space, start)
    offset = load_personal(rec.history, "ana", space, dim)  # as float16 kept it
    t = task(rec, lr=0.02, steps=2, negatives=negatives, temperature=0.1, clip=1e6, max_examples=6,
             upload_rows=6 + negatives)  # a DP round's fixed count, here what its targets and negatives make
    p = Personal(lr=0.3, l2=0.5)
    rows, delta, norm, new_offset, examples = reference_round(rec, consumed, t, p, offset)
    result = take_part(rec, "ana", t, personal=p, consent=Consent(opted_in=True))
    assert result.examples == examples == 6 and result.update.weight == 1.0  # a DP round sends no count
    np.testing.assert_array_equal(result.update.rows, rows)
    assert len(rows) == 6 + negatives  # six distinct targets and the negatives
    np.testing.assert_allclose(result.update.delta, delta, rtol=1e-3, atol=1e-6)
    assert result.norm == pytest.approx(norm, rel=1e-3)
    kept = load_personal(rec.history, "ana", space, dim)
    np.testing.assert_allclose(kept, new_offset, rtol=2e-3, atol=2e-4)  # float16 as kept
    assert np.abs(kept - offset).max() > 1e-3  # it moved


def test_clipping_scales_the_change_to_the_bound_and_keeps_its_direction(rec):
    play(rec, "ana", [3, 17, 8, 40, 22, 5])
    off = Personal(enabled=False)
    free = take_part(rec, "ana", task(rec, lr=1.0, clip=1e6), personal=off, consent=Consent(opted_in=True))
    clipped = take_part(rec, "ana", task(rec, lr=1.0, clip=free.norm / 4, round=1), personal=off, consent=Consent(opted_in=True))
    assert clipped.norm == pytest.approx(free.norm, rel=1e-6)  # the raw norm is reported
    np.testing.assert_allclose(clipped.update.delta, free.update.delta / 4, rtol=1e-5, atol=1e-8)
    exact = take_part(rec, "ana", task(rec, lr=1.0, clip=free.norm, round=2), personal=off, consent=Consent(opted_in=True))
    np.testing.assert_allclose(exact.update.delta, free.update.delta, rtol=1e-6)  # at the bound: untouched


def test_the_examples_are_the_newest_steps_after_the_first():
    assert example_positions(10, 3).tolist() == [7, 8, 9]
    assert example_positions(3, 500).tolist() == [1, 2]
    assert example_positions(4, 3).tolist() == [1, 2, 3]
    assert example_positions(1, 5).tolist() == []


def test_a_device_with_one_item_or_none_declines_and_notes_it(rec):
    ledger = PrivacyLedger(rec.history, Budget(per_day=1.0, per_30_days=2.0))
    play(rec, "ana", [3])
    result = take_part(rec, "ana", task(rec), ledger=ledger, now=5_000.0, consent=Consent(opted_in=True))
    assert (result.refused, result.payload, result.update, result.round) == ("too little history", None, None, 0)
    assert ledger.entries() == [(5_000.0, "federated round 0: declined (too little history)", 0.0)]
    play(rec, "ana", [4])
    assert take_part(rec, "ana", task(rec), ledger=ledger, now=5_001.0, consent=Consent(opted_in=True)).refused is None  # two items: one example


def test_the_epsilon_is_charged_before_the_work(rec, monkeypatch):
    import edgerec.runtime.federated as federated

    play(rec, "ana", [3, 17, 8])
    ledger = PrivacyLedger(rec.history, Budget(per_day=1.0, per_30_days=2.0))

    def broken(*args):
        raise RuntimeError("the device failed halfway")

    monkeypatch.setattr(federated, "_local_update", broken)
    with pytest.raises(RuntimeError):
        take_part(rec, "ana", task(rec, epsilon=0.4, round=7), ledger=ledger, now=5_000.0, consent=Consent(opted_in=True))
    assert ledger.entries() == [(5_000.0, "federated round 7", 0.4)]


def test_moved_rows_are_put_back_on_the_unit_sphere():
    values = np.array([[1.0, 0.0], [0.0, 0.0], [3.0, 4.0]], np.float32)
    delta = np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]], np.float32)
    out = moved_rows(values, delta, 1.0)
    np.testing.assert_allclose(out, [[2 ** -0.5, 2 ** -0.5], [0.0, 0.0], [0.6, 0.8]], rtol=1e-6)
    np.testing.assert_allclose(moved_rows(values[:1], delta[:1], 3.0), [[0.316227766, 0.948683298]], rtol=1e-6)
    short = moved_rows(np.array([[0.3, 0.4]], np.float32), np.zeros((1, 2), np.float32), 1.0)
    np.testing.assert_allclose(short, [[0.6, 0.8]], rtol=1e-6)  # a row shorter than 1 is lengthened too


def test_step_losses_are_one_minus_the_ndcg_of_the_newest_item(rec):
    consumed = [3, 17, 8, 40, 22]
    play(rec, "ana", consumed)
    table = rec.catalog.stored.dequantize()
    query = user_vectors(rec, consumed, np.array([4]))[0]
    rows = np.array([1, 22, 30])
    unit = (query / np.linalg.norm(query)).astype(np.float32)
    delta = np.stack([2 * unit, -2 * unit, unit])  # rows 1 and 30 move towards the user, the newest item away
    steps = [0.0, 0.5, 2.0]
    ledger = PrivacyLedger(rec.history)
    got = step_losses(rec, "ana", table, rows, delta, steps, consent=Consent(opted_in=True, without_dp=True), ledger=ledger, now=5e3)
    expected = []
    for step in steps:
        scores = table @ query
        scores[rows] = moved_rows(table[rows], delta, step) @ query
        rank = int(np.sum(scores > scores[22]))
        expected.append(1.0 - 1.0 / np.log2(rank + 2.0))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert len(set(np.round(got, 6))) > 1  # the steps do move the item's rank
    assert ledger.entries() == [(5e3, "federated evaluation of step sizes (no DP)", 0.0)]
    for consent in (Consent(opted_in=True), Consent(opted_in=False, without_dp=True), Consent(opted_in=True, allowed=False, without_dp=True)):
        assert step_losses(rec, "ana", table, rows, delta, steps, consent=consent) is None
    assert step_losses(rec, "nobody", table, rows, delta, steps, consent=Consent(opted_in=True, without_dp=True)) is None
    assert len(ledger.entries()) == 1


def test_a_proposed_move_is_checked(rec):
    table = rec.catalog.stored.dequantize()
    n, dim = table.shape
    ok = np.zeros((2, dim), np.float32)
    bad = [(np.array([[1, 2]]), ok), (np.array([1.0, 2.0]), ok), (np.array([-1, 2]), ok), (np.array([1, n]), ok),
           (np.array([2, 2]), ok), (np.array([1, 2]), ok[:1]), (np.array([1, 2]), np.full((2, dim), np.inf))]
    for rows, delta in bad:
        with pytest.raises(ConfigError, match=f"a proposed move needs unique row ids below {n} and one finite change"):
            step_losses(rec, "ana", table, rows, delta, [1.0], consent=Consent(opted_in=True, without_dp=True))
    for steps, message in (([-1.0], "^each step must be"), ([1e9 + 1], "^each step must be"),
                           ("1", "^steps must be a list of step sizes")):
        with pytest.raises(ConfigError, match=message):
            step_losses(rec, "ana", table, np.array([0, n - 1]), ok, steps, consent=Consent(opted_in=True, without_dp=True))
    with pytest.raises(ConfigError, match="^a proposed move needs row ids and a numeric change per row"):
        step_losses(rec, "ana", table, np.array([0, 1]), [["x"] * dim] * 2, [1.0], consent=Consent(opted_in=True, without_dp=True))
    for kwargs, message in ((dict(user=""), "^user must not be empty"), (dict(consent=1), "^consent must be a Consent"),
                            (dict(now=-1.0), r"^now \(epoch seconds\) must be"),
                            (dict(history=1), "^history must be a HistoryStore")):
        args = {"user": "ana", "consent": Consent(opted_in=True, without_dp=True), **kwargs}
        with pytest.raises(ConfigError, match=message):
            step_losses(rec, args.pop("user"), table, np.array([0, n - 1]), ok, [1e9], **args)
    with pytest.raises(ConfigError) as error:
        step_losses(rec, "ana", None, np.array([1]), ok[:1], [1.0])
    assert str(error.value) == "step_losses scores moves of the round's table: pass the table the server sent"
    with pytest.raises(ConfigError, match="pass the table the server sent"):
        step_losses(rec, "ana", None, np.array([1]), ok[:1], [1.0])
    with pytest.raises(ConfigError, match=rf"the round's table must be a \({n}, {dim}\) array of finite numbers"):
        take_part(rec, "ana", task(rec), table=table[:-1], consent=Consent(opted_in=True))
    with pytest.raises(ConfigError, match=rf"the round's table must be a \({n}, {dim}\) array of numbers"):
        take_part(rec, "ana", task(rec), table=[["x"] * dim] * n, consent=Consent(opted_in=True))
    with warnings.catch_warnings():  # past float32's range: refused as not finite, without numpy's overflow warning
        warnings.simplefilter("error")
        with pytest.raises(ConfigError, match="array of finite numbers"):
            take_part(rec, "ana", task(rec), table=np.full((n, dim), 1e300), consent=Consent(opted_in=True))
    assert step_losses(rec, "ana", table, np.array([], np.int64), np.zeros((0, dim)), [1.0],
                       consent=Consent(opted_in=True, without_dp=True)) is None  # no history: no answer, but a valid move


@pytest.mark.parametrize("field, good, bad", [
    ("round", [0, 2**32 - 1], [-1, 2**32]), ("lr", [1e-9, 1e3], [0.0, 1e3 + 1]), ("clip", [1e-9, 1e9], [0.0, 1e9 + 1]),
    ("temperature", [1.1e-4, 1e4], [1e-4, 1e4 + 0.5]), ("steps", [1, 1000], [0, 1001]),
    ("negatives", [1, 10**6], [0, 10**6 + 1]), ("max_examples", [1, 10**6], [0, 10**6 + 1]),
    ("epsilon", [None, 1e-9, 1e6], [0.0, 1e6 + 1]), ("encoding", ["int8", "fp16"], ["int4", None])])
def test_round_task_bounds(field, good, bad):
    for value in good:
        RoundTask(**{"round": 0, "space": "", field: value}).check()
    for value in bad:
        with pytest.raises(ConfigError, match=f"^RoundTask.{field} must be"):
            RoundTask(**{"round": 0, "space": "", field: value}).check()
    with pytest.raises(ConfigError, match=r"^RoundTask.space must be an embedding-space id string \(got int\)"):
        RoundTask(round=0, space=3).check()


def test_consent_and_personal_bounds():
    for name in ("opted_in", "allowed", "without_dp"):
        with pytest.raises(ConfigError, match=f"^Consent.{name} must be"):
            Consent(**{name: "no"}).check()
    with pytest.raises(ConfigError, match="^Personal.enabled must be"):
        Personal(enabled=1).check()
    for name in ("lr", "l2"):
        Personal(**{name: 0.0}).check()
        Personal(**{name: 1e3}).check()
        for value in (-1e-9, 1e3 + 1):
            with pytest.raises(ConfigError, match=f"^Personal.{name} must be"):
                Personal(**{name: value}).check()


def test_without_the_personal_vector_the_stored_one_neither_moves_nor_steers(rec):
    consumed = [3, 17, 8, 40, 22, 5]
    play(rec, "ana", consumed)
    space, dim = rec.manifest.embedding_space, rec.manifest.dim
    save_personal(rec.history, "ana", space, np.full(dim, 0.5, np.float32))
    t = task(rec, lr=0.02, steps=2, negatives=4, temperature=0.1, clip=1e6, upload_rows=9)  # 5 targets + 4
    off = Personal(enabled=False)
    rows, delta, _, _, _ = reference_round(rec, consumed, t, off, np.zeros(dim))
    result = take_part(rec, "ana", t, personal=off, consent=Consent(opted_in=True))
    np.testing.assert_array_equal(result.update.rows, rows)
    np.testing.assert_allclose(result.update.delta, delta, rtol=1e-3, atol=1e-6)
    assert load_personal(rec.history, "ana", space, dim).tolist() == [0.5] * dim


def test_the_round_reads_the_history_it_is_given(rec, tmp_path):
    from edgerec.runtime.history import HistoryStore

    other = HistoryStore(tmp_path / "other.db")
    recent = time.time() - 3_600
    for i, row in enumerate([3, 17, 8, 40]):
        other.record("ana", rec.catalog.item_id(row), "play", ts=recent + i)
    ledger = PrivacyLedger(other)
    result = take_part(rec, "ana", task(rec), history=other, ledger=ledger, personal=Personal(enabled=False), consent=Consent(opted_in=True))
    assert result.refused is None and result.examples == 3  # rec's own history has nothing for ana
    assert take_part(rec, "ana", task(rec, round=1), consent=Consent(opted_in=True)).refused == "too little history"
    other.close()


def test_items_added_on_the_device_are_not_trained(rec):
    rec.add_items([{"item_id": "fresh", "title": "x", "vector": rec.catalog.vectors(np.array([0]))[0].tolist()}])
    play(rec, "ana", [3, 17])
    rec.record("ana", "fresh", "play", timestamp=time.time() - 60)
    result = take_part(rec, "ana", task(rec), personal=Personal(enabled=False), consent=Consent(opted_in=True))
    assert result.examples == 1 and rec.catalog.base_count not in result.update.rows.tolist()


def test_every_decline_says_why_in_these_words_and_when(rec):
    play(rec, "ana", [3, 17, 8])
    ledger = PrivacyLedger(rec.history, Budget(per_day=0.1, per_30_days=1.0))
    reasons = []
    for consent, t in ((Consent(opted_in=False), task(rec)), (Consent(opted_in=True, allowed=False), task(rec)),
                       (Consent(opted_in=True), RoundTask(round=0, space="0" * 24, epsilon=0.1)), (Consent(opted_in=True), task(rec, epsilon=None)),
                       (Consent(opted_in=True), task(rec, epsilon=0.5))):
        result = take_part(rec, "ana", t, consent=consent, ledger=ledger, now=7_000.0)
        assert result.payload is None and isinstance(result.ms, float) and result.ms > 0
        reasons.append(result.refused)
    assert reasons == ["the user has not opted in", "not now (the app's battery or network condition)",
                       "the round trains another bundle than the one this device serves",
                       "the round has no differential privacy", "privacy budget"]
    taken = take_part(rec, "ana", task(rec, epsilon=None, round=3), consent=Consent(opted_in=True, without_dp=True), ledger=ledger,
                      now=7_001.0, personal=Personal(enabled=False))
    assert taken.payload is not None
    assert ledger.entries()[-1] == (7_001.0, "federated round 3 (no DP)", 0.0)
    assert all(e[0] == 7_000.0 for e in ledger.entries()[:-1])


def test_each_argument_of_a_round_is_named(rec):
    t = task(rec)
    for kwargs, message in ((dict(task=None), "^task must be a RoundTask"), (dict(user=""), "^user must not be empty"),
                            (dict(consent=True), "^consent must be a Consent"),
                            (dict(personal=1.0), "^personal must be a Personal"),
                            (dict(now=-1.0), r"^now \(epoch seconds\) must be"),
                            (dict(history="h.db"), "^history must be a HistoryStore"),
                            (dict(ledger=object()), "^ledger must be a PrivacyLedger")):
        args = {"task": t, "user": "ana", **kwargs}
        with pytest.raises(ConfigError, match=message):
            take_part(rec, args.pop("user"), args.pop("task"), **args)


def test_an_overflowing_round_says_what_to_lower(rec):
    play(rec, "ana", [3, 17, 8, 40, 22])
    fast = Personal(lr=1e3, l2=0.0)
    take_part(rec, "ana", task(rec), personal=fast, consent=Consent(opted_in=True))
    with pytest.raises(ConfigError) as error:
        take_part(rec, "ana", task(rec, round=1), personal=fast, consent=Consent(opted_in=True))
    assert str(error.value) == ("the round's lr and temperature (or Personal.lr) made the local update overflow; "
                                "nothing was sent or saved (the round's epsilon stays spent); ask the server for a "
                                "smaller lr, or lower Personal.lr")


def test_the_first_examples_context_holds_the_first_item(rec):
    consumed = [3, 17, 8]
    direct = rec.models.encoder.encode([rec.catalog.encoder_inputs([3]), rec.catalog.encoder_inputs([3, 17])])
    np.testing.assert_allclose(user_vectors(rec, consumed, np.array([1, 2])), direct, rtol=1e-6, atol=1e-7)


def test_a_taken_round_reports_its_round_and_time(rec):
    play(rec, "ana", [3, 17, 8])
    result = take_part(rec, "ana", task(rec, round=41), personal=Personal(enabled=False), consent=Consent(opted_in=True))
    assert result.round == 41 and result.update.round == 41 and isinstance(result.ms, float) and result.ms > 0


def test_step_losses_judge_the_newest_bundle_item(rec):
    consumed = [3, 17, 8]
    play(rec, "ana", consumed)
    rec.add_items([{"item_id": "fresh", "title": "x", "vector": rec.catalog.vectors(np.array([0]))[0].tolist()}])
    rec.record("ana", "fresh", "play", timestamp=time.time() - 60)  # newest, but not a bundle row
    table = rec.catalog.stored.dequantize()
    query = user_vectors(rec, consumed, np.array([2]))[0]
    scores = table @ query
    expected = 1.0 - 1.0 / np.log2(int(np.sum(scores > scores[8])) + 2.0)
    got = step_losses(rec, "ana", table, np.array([0]), np.zeros((1, table.shape[1]), np.float32), [0.0],
                      consent=Consent(opted_in=True, without_dp=True))
    np.testing.assert_allclose(got, [expected], rtol=1e-6)


def test_two_items_are_enough_to_score_steps(rec):
    play(rec, "ana", [3, 17])
    table = rec.catalog.stored.dequantize()
    got = step_losses(rec, "ana", table, np.array([0]), np.zeros((1, table.shape[1]), np.float32), [0.0, 1.0],
                      consent=Consent(opted_in=True, without_dp=True))
    assert got is not None and got.shape == (2,)
