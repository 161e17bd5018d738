"""Hostile arguments to the device's other public parts: experiments, interleaving, the privacy ledger
and DP reporter, federated rounds and their upload format, cross-domain transfer.

Each call either works or raises an EdgerecError; a bad argument is refused before the privacy
ledger is charged, and nothing that went in breaks the next report or round.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgerec.errors import ConfigError, EdgerecError
from edgerec.runtime import Policy, Recommender, Stage
from edgerec.runtime.experiment import ExposureLog, OutcomeCounts, assign, explore, unit_hash
from edgerec.runtime.fed_format import decode_update
from edgerec.runtime.federated import Consent, Personal, RoundTask, take_part
from edgerec.runtime.history import HistoryStore, Retention
from edgerec.runtime.interleave import InterleaveStage, credit, team_draft
from edgerec.runtime.personal import KIND, load_personal
from edgerec.runtime.pre_period import pre_period
from edgerec.runtime.privacy_ledger import Budget, PrivacyLedger
from edgerec.runtime.reporter import PrivateReporter
from edgerec.runtime.shuffle import Shuffled
from edgerec.runtime.transfer import Transfer

sys.path.insert(0, str(Path(__file__).parent))
from test_hostile_api import ANY  # noqa: E402

WIDE = st.one_of(ANY, st.sampled_from([np.array([1.0, 2.0]), 1e-300, 1e20, 2**33, -(2**40), "ab", b"ab"]))


@pytest.fixture(scope="module")
def rec(golden_bundle, tmp_path_factory):
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path_factory.mktemp("h") / "h.db") as opened:
        recent = time.time() - 3_600
        for i, row in enumerate([3, 17, 8, 40]):
            opened.record("ana", opened.catalog.item_id(row), "play", timestamp=recent + i)
        yield opened


def round_task(rec, **kw):
    return RoundTask(**{"round": 0, "space": rec.manifest.embedding_space, "epsilon": 0.01, **kw})


def calls(rec, x):
    ledger = PrivacyLedger(rec.history, Budget(1e5, 1e6))
    reporter = PrivateReporter(rec, Budget(1e5, 1e6))
    rng = np.random.default_rng(0)
    out = {
        "unit_hash.key": lambda: unit_hash(x, "exp"), "unit_hash.experiment": lambda: unit_hash("key", x),
        "assign.arms": lambda: assign("key", "exp", x), "assign.weights": lambda: assign("key", "exp", ["a", "b"], x),
        "assign.weight": lambda: assign("key", "exp", ["a", "b"], [x, 1.0]),
        "OutcomeCounts.add.outcome": lambda: OutcomeCounts().add(x),
        "OutcomeCounts.add.n": lambda: OutcomeCounts().add("play", x),
        "ExposureLog": lambda: ExposureLog(x), "InterleaveStage.other": lambda: InterleaveStage(x),
        "InterleaveStage.seed": lambda: InterleaveStage(lambda r: [], seed=x),
        "team_draft.a": lambda: team_draft(x, ["b"], 3, rng), "team_draft.k": lambda: team_draft(["a"], ["b"], x, rng),
        "credit.teams": lambda: credit(x, [0]), "credit.clicked": lambda: credit(["A", "B"], x),
        "credit.position": lambda: credit(["A", "B"], [x]),
        "Budget.per_day": lambda: Budget(x, 10.0), "Budget.per_30_days": lambda: Budget(1.0, x),
        "PrivateReporter.budget": lambda: PrivateReporter(rec, x).items_consumed(0.01),
        "PrivacyLedger.store": lambda: PrivacyLedger(x),
        "ledger.charge.question": lambda: ledger.charge(x, 0.01), "ledger.charge.epsilon": lambda: ledger.charge("q", x),
        "ledger.charge.now": lambda: ledger.charge("q", 0.01, x), "ledger.note.now": lambda: ledger.note("q", x),
        "ledger.spent": lambda: ledger.spent(x),
        "report.epsilon": lambda: reporter.items_consumed(x), "report.now": lambda: reporter.items_consumed(0.01, x),
        "report.shuffle": lambda: reporter.items_consumed(0.01, shuffle=x),
        "report.column": lambda: reporter.category_shares(0.01, x), "health.now": lambda: reporter.health(0.01, x),
        "experiment.name": lambda: reporter.experiment(x, "a", {"plays": 1}, {"plays": 5}, 0.01),
        "experiment.arm": lambda: reporter.experiment("e", x, {"plays": 1}, {"plays": 5}, 0.01),
        "experiment.values": lambda: reporter.experiment("e", "a", x, {"plays": 5}, 0.01),
        "experiment.value": lambda: reporter.experiment("e", "a", {"plays": x}, {"plays": 5}, 0.01),
        "experiment.bounds": lambda: reporter.experiment("e", "a", {"plays": 1}, x, 0.01),
        "experiment.bound": lambda: reporter.experiment("e", "a", {"plays": 1}, {"plays": x}, 0.01),
        "experiment.epsilon": lambda: reporter.experiment("e", "a", {"plays": 1}, {"plays": 5}, x),
        "pre_period.begin": lambda: pre_period(rec.history, "ana", x),
        "pre_period.end": lambda: pre_period(rec.history, "ana", 0.0, x),
        "pre_period.user": lambda: pre_period(rec.history, x, 0.0),
        "Shuffled.delta": lambda: Shuffled(1000, x), "Shuffled.max_local": lambda: Shuffled(1000, 1e-7, x),
        "decode_update": lambda: decode_update(x),
        "take_part.user": lambda: take_part(rec, x, round_task(rec), ledger=ledger, consent=Consent(opted_in=True)),
        "take_part.now": lambda: take_part(rec, "ana", round_task(rec), ledger=ledger, now=x, consent=Consent(opted_in=True)),
        "take_part.table": lambda: take_part(rec, "ana", round_task(rec), ledger=ledger, table=x, consent=Consent(opted_in=True)),
        "take_part.history": lambda: take_part(rec, "ana", round_task(rec), ledger=ledger, history=x, consent=Consent(opted_in=True)),
        "take_part.ledger": lambda: take_part(rec, "ana", round_task(rec), ledger=x, consent=Consent(opted_in=True)),
        "Retention.max_events": lambda: HistoryStore(":memory:", retention=Retention(max_events=x)).count("u"),
        "history.items_since.ts": lambda: rec.history.items_since(x, ("play",)),
        "history.items_since.events": lambda: rec.history.items_since(0.0, x),
        "history.prune.now": lambda: rec.history.prune(x), "history.cutoff": lambda: rec.history.cutoff(x),
        "history.backup": lambda: rec.history.backup(x) if not isinstance(x, str) else None,  # no file in the cwd
        "Stage.name": lambda: Stage(x, lambda r: r), "Stage.run": lambda: Stage("s", x),
        "Stage.required": lambda: Stage("s", lambda r: r, required=x),
        "pipeline.name": lambda: rec.pipeline[x], "catalog.row": lambda: rec.catalog.row(x),
    }
    for name in RoundTask.__dataclass_fields__:
        out[f"RoundTask.{name}"] = lambda name=name: take_part(rec, "ana", round_task(rec, **{name: x}), ledger=ledger)
    for name in Consent.__dataclass_fields__:
        out[f"Consent.{name}"] = lambda name=name: take_part(rec, "ana", round_task(rec), ledger=ledger,
                                                             consent=Consent(**{name: x}))
    for name in Personal.__dataclass_fields__:
        out[f"Personal.{name}"] = lambda name=name: take_part(rec, "ana", round_task(rec), ledger=ledger,
                                                              personal=Personal(**{name: x}))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=WIDE)
def test_any_argument_gives_a_result_or_an_edgerec_error(rec, x):
    for name, call in calls(rec, x).items():
        try:
            call()
        except EdgerecError as exc:
            assert str(exc), name
        except Exception as exc:
            raise AssertionError(f"{name}({x!r}) raised {type(exc).__name__}: {exc}") from exc
    report = PrivateReporter(rec, Budget(1e5, 1e6)).items_consumed(0.01)  # the ledger still works
    assert report["day"] >= "2026"


@pytest.mark.parametrize(("call", "message"), [
    (lambda: assign("key", "exp", "ab"), "not a single string"),  # was split into arms "a" and "b"
    (lambda: assign("key", "exp", ["a", "b"], [float("nan"), 1.0]), "arm weight"),  # was always arm "b"
    (lambda: Budget(float("inf"), float("inf")), "Budget.per_day"),  # was a budget that never refuses
    (lambda: OutcomeCounts().add("play", float("nan")), "outcome count"),
    (lambda: ExposureLog(0), "limit"),  # was a log that never dropped an entry
    (lambda: team_draft(["a"], ["b"], float("nan"), np.random.default_rng(0)), "k must be an integer"),
    (lambda: credit(["A", "B"], [-1]), "clicked position"),  # was team B's click at the last position
    (lambda: Shuffled(10**6, 5e-324).local_epsilon(1.0), "Shuffled.delta"),  # was a math domain ValueError
])
def test_arguments_that_gave_a_silently_wrong_answer_are_refused(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_a_far_future_time_is_refused_before_it_can_lock_the_ledger(rec, tmp_path):
    with Recommender.open(rec.bundle.root, history=tmp_path / "h.db") as fresh:
        ledger = PrivacyLedger(fresh.history)
        with pytest.raises(ConfigError, match="now"):
            ledger.charge("q", 0.1, now=1e20)  # stored, it held every later report's day out of range
        assert ledger.entries() == []
        assert PrivateReporter(fresh).items_consumed(0.1)["epsilon"] == 0.1


@pytest.mark.parametrize("change", [
    {"round": -1}, {"round": 2**32}, {"steps": 2.5}, {"negatives": 1.5}, {"lr": True},
])
def test_a_bad_round_is_refused_before_the_ledger_is_charged(rec, change):
    ledger = PrivacyLedger(rec.history, Budget(1e5, 1e6))
    before = len(ledger.entries())
    with pytest.raises(ConfigError, match="RoundTask"):
        take_part(rec, "ana", round_task(rec, **change), ledger=ledger)
    assert len(ledger.entries()) == before


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"consent": Consent(opted_in="no")}, "Consent.opted_in"),  # "no" is truthy: it took part
    ({"personal": Personal(lr=float("nan"))}, "Personal.lr"),  # saved a NaN personal vector
    ({"table": "nan"}, "table"), ({"table": np.zeros((3, 8))}, "table"),
])
def test_a_bad_consent_personal_or_table_is_refused_before_the_ledger_is_charged(rec, kwargs, message):
    ledger = PrivacyLedger(rec.history, Budget(1e5, 1e6))
    before = len(ledger.entries())
    with pytest.raises(ConfigError, match=message):
        take_part(rec, "ana", round_task(rec), ledger=ledger, **kwargs)
    assert len(ledger.entries()) == before


def test_a_table_with_nan_sends_no_garbage_update(rec):
    table = np.full((rec.catalog.base_count, rec.manifest.dim), np.nan, np.float32)
    with pytest.raises(ConfigError, match="finite"):
        take_part(rec, "ana", round_task(rec), ledger=PrivacyLedger(rec.history, Budget(1e5, 1e6)), table=table, consent=Consent(opted_in=True))


def test_a_damaged_personal_vector_entry_is_learned_again_from_zero(rec):
    space = rec.manifest.embedding_space
    rec.history.set_preferences("bea", KIND, [f"{space}:abc"])  # odd hex: an altered history file
    assert not np.any(load_personal(rec.history, "bea", space, rec.manifest.dim))


def test_exploration_settings_are_checked(rec):
    with pytest.raises(ConfigError, match="temperature"):
        explore(rec, temperature=float("nan"))
    with pytest.raises(ConfigError, match="width"):
        explore(rec, width=2.5)


def test_transfer_checks_its_recommenders(rec):
    with pytest.raises(ConfigError, match="source must be an open Recommender"):
        Transfer(5, rec)  # was an AttributeError
    with pytest.raises(ConfigError, match="method"):
        Transfer(rec, rec, np.array(["content", "mapping"]))  # was an ambiguous-truth ValueError


def test_transfer_recommend_checks_user_and_k(rec):
    transfer = object.__new__(Transfer)  # the arguments are checked before either bundle is read
    with pytest.raises(ConfigError, match="k must be an integer"):
        transfer.recommend("ana", k=float("nan"))
    with pytest.raises(ConfigError, match="user must be a string"):
        transfer.recommend(b"ana", k=3)


def test_a_request_of_another_thread_is_interleaved_while_one_asks_team_b(golden_bundle):
    """The guard against merging inside team B's own request was one flag for every thread: a request
    of another thread meanwhile came back unmerged, with no "team" to credit its clicks to."""
    import threading

    from edgerec.runtime.interleave import other_recommender

    with Recommender.open(golden_bundle, backend="onnx") as rec:
        team_b = other_recommender(rec, Policy(diversity=0.9))
        during: list = []

        def other(request):
            if not during:  # while this thread asks team B, another thread's request runs to its end
                during.append(None)
                worker = threading.Thread(target=lambda: during.append(rec.recommend("v", k=4)))
                worker.start()
                worker.join()
            return team_b(request)

        rec.pipeline.insert_after("explain", Stage("interleave", InterleaveStage(other, seed=1)))
        shown = rec.recommend("u", k=4)
        assert all(r.meta["team"] in ("A", "B") for r in shown + during[1])
