"""A runtime that never fails the app: encoder fallback, score drift, and the last good bundle."""

import json
import shutil
from collections import Counter

import numpy as np
import pytest
from bundle_edit import replace_array
from click.testing import CliRunner
from handmade import NOW, ids, watch

from edgerec.errors import BundleError
from edgerec.runtime import Policy, Recommender
from edgerec.runtime.bundle import sha256_file
from edgerec.runtime.drift import UNUSABLE, DriftBaseline, drift_report
from edgerec.runtime.reference import check_references
from edgerec.runtime.user_state import FALLBACK_TEXT

pytestmark = pytest.mark.usefixtures("fixed_history_clock")  # events recorded at fixed times near 1.79e9

# ------------------------------------------------------------------ encoder failure


def most_by_one_creator(results) -> int:
    return max(Counter(r.meta["creator"] for r in results if r.meta.get("creator")).values())


def _break_encoder(rec, monkeypatch, how):
    backend = rec.encoder.backend
    real = backend.run

    def run(feeds):
        if how == "raise":
            raise RuntimeError("engine crashed")
        return [np.full_like(out, np.nan) for out in real(feeds)]

    monkeypatch.setattr(backend, "run", run)
    return lambda: monkeypatch.setattr(backend, "run", real)


@pytest.mark.parametrize("how", ["raise", "nan"])
def test_a_failing_encoder_serves_the_popularity_list_and_says_so(rec, monkeypatch, how):
    watch(rec, "ann", range(60, 66))
    seen = {rec.catalog.item_id(r) for r in range(60, 66)}
    personal = rec.recommend("ann", k=10, context=NOW)
    assert {r.reason.kind for r in personal} & {"history", "series"}
    rec.record("ann", rec.catalog.item_id(70), "finish")  # a new event: the next request encodes again
    seen.add(rec.catalog.item_id(70))
    restore = _break_encoder(rec, monkeypatch, how)
    fallback = rec.recommend("ann", k=10, context=NOW)
    assert len(fallback) == 10 and not set(ids(fallback)) & seen
    assert all(r.reason.kind == "fallback" and r.reason.text == FALLBACK_TEXT for r in fallback)
    # the popularity list: the cold-start scores (popularity, the user's genres and languages)
    prior, _ = rec.pipeline["retrieve"].run.prior(rec.catalog, NOW["now"])
    rows = [rec.catalog.row(i) for i in ids(fallback)]
    assert np.mean(prior[rows]) > np.quantile(prior, 0.9)
    counters = rec.stats()["counters"]
    assert counters["encode_fallback"] == 1 and "errors" not in counters
    # the newcomer spread holds on the fallback list too (spec §5): without it one creator crowds it
    crowd = rec.recommend("ann", k=10, context=NOW, policy=Policy(cold_max_per_creator=0))
    assert most_by_one_creator(crowd) > 3 >= most_by_one_creator(fallback)
    rec.recommend("ann", k=10, context=NOW)  # a failure is not cached: it is tried (and counted) again
    assert rec.stats()["counters"]["encode_fallback"] == 3
    restore()
    again = rec.recommend("ann", k=10, context=NOW)
    assert {r.reason.kind for r in again} & {"history", "series"}


# ------------------------------------------------------------------ drift


def test_drift_report_flags_a_shifted_window_only():
    baseline = DriftBaseline(top1=(0.8, 0.05), topk=(0.7, 0.04), k=10, users=200, threshold=1.0, min_window=50)
    rng = np.random.default_rng(0)
    same = list(zip(rng.normal(0.8, 0.05, 80), rng.normal(0.7, 0.04, 80)))
    shifted = list(zip(rng.normal(0.6, 0.05, 80), rng.normal(0.55, 0.04, 80)))
    steady = drift_report(same, baseline)
    assert steady["available"] and steady["window"] == 80 and not steady["drifted"] and steady["score"] < 0.5
    moved = drift_report(shifted, baseline)
    assert moved["drifted"] and moved["score"] == pytest.approx(
        max(abs(np.mean([a for a, _ in shifted]) - 0.8) / 0.05, abs(np.mean([b for _, b in shifted]) - 0.7) / 0.04))
    early = drift_report(shifted[:49], baseline)
    assert early["current"] is None and not early["drifted"]  # too few requests to say
    assert drift_report(shifted, None) == {"available": False, "window": 80, "users": 80, "fallbacks": 0,
                                           "drifted": False, "reason": UNUSABLE}


def _reference_users(rec, copies=2):
    """Users whose histories are the bundle's reference histories, each asked `copies` times."""
    ref = rec.bundle.manifest.reference
    histories = np.asarray(rec.bundle.array(ref["histories"]))
    for u, hist in enumerate(histories):
        watch(rec, f"ref{u}", hist[hist > 0] - 1)
    for _ in range(copies):
        for u in range(len(histories)):
            rec.recommend(f"ref{u}", k=10, context=NOW)


def test_drift_against_the_exported_baseline(tiny_bundle, tmp_path, monkeypatch):
    monitoring = json.loads((tiny_bundle / "manifest.json").read_text())["metrics"]["monitoring"]
    assert monitoring["score_baseline"]["users"] == 200 and monitoring["drift_min_window"] == 50
    with Recommender.open(tiny_bundle) as rec:
        _reference_users(rec)
        drift = rec.stats()["drift"]
        assert drift["available"] and drift["window"] == 64 and not drift["drifted"]
    with Recommender.open(tiny_bundle) as rec:  # an encoder whose vectors shrank: every score moves
        real = rec.encoder.backend.run
        monkeypatch.setattr(rec.encoder.backend, "run", lambda feeds: [0.5 * out for out in real(feeds)])
        _reference_users(rec)
        drift = rec.stats()["drift"]
        assert drift["drifted"] and drift["score"] > 5
        assert drift["current"]["top1_mean"] == pytest.approx(0.5 * drift["baseline"]["top1_mean"], rel=0.1)


def test_a_bundle_without_a_baseline_reports_drift_unavailable(tiny_bundle, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(tiny_bundle, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["metrics"]["monitoring"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with Recommender.open(old) as rec:
        _reference_users(rec)
        drift = rec.stats()["drift"]
        assert drift["available"] is False and drift["window"] == 64 and not drift["drifted"]


# ------------------------------------------------------------------ last good bundle


def _corrupt_model(tiny_bundle, tmp_path):
    bad = tmp_path / "update-corrupt"
    shutil.copytree(tiny_bundle, bad)
    data = bytearray((bad / "user_encoder.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / "user_encoder.onnx").write_bytes(bytes(data))
    return bad


def _wrong_references(tiny_bundle, tmp_path):
    """A bundle that verifies (checksums updated) but whose reference outputs disagree with its encoder."""
    bad = tmp_path / "update-wrong-reference"
    shutil.copytree(tiny_bundle, bad)
    name = "reference/user_vectors.npy"
    np.save(bad / name, -np.load(bad / name))
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["files"][name]["sha256"] = sha256_file(bad / name)
    (bad / "manifest.json").write_text(json.dumps(manifest))
    return bad


@pytest.mark.parametrize("damage, why", [(_corrupt_model, "sha256"), (_wrong_references, "reference outputs")])
def test_a_failing_update_keeps_the_previous_bundle_serving(tiny_bundle, tmp_path, damage, why, caplog):
    bad = damage(tiny_bundle, tmp_path)
    with caplog.at_level("WARNING", logger="edgerec.runtime"):
        rec = Recommender.open(bad, history=tmp_path / "h.db", fallback=tiny_bundle)
    assert [r for r in caplog.records if r.name == "edgerec.runtime" and "rejected" in r.getMessage() and why in r.getMessage()]
    with rec:
        assert rec.bundle.root == tiny_bundle
        assert not rec.update.accepted and rec.update.rejected == bad.name and why in rec.update.reason
        assert str(tmp_path) not in rec.update.reason  # no host paths in what the app may log
        assert len(rec.recommend("newcomer", k=5, context=NOW)) == 5
        assert rec.stats()["update"]["accepted"] is False
    if why == "sha256":  # without a fallback, a bundle that fails verification is the app's error (as before)
        with pytest.raises(BundleError, match="sha256"):
            Recommender.open(bad)


DAMAGED_REFERENCES = [  # (file, change, what the reason says): each passed its checksum and crashed the update
    ("histories", lambda a: a.astype(np.float32), "float32 array"),
    ("histories", lambda a: a.reshape(-1), "expected a non-empty 2-D array"),
    ("histories", lambda a: a * 0 + 999_999, "model rows outside"),
    ("histories", lambda a: a[:1], "histories for"),
    ("top_k", lambda a: a - 5_000, "item rows outside"),
    ("user_vectors", lambda a: a * np.nan, "NaN or infinite"),
    ("user_vectors", lambda a: a[:, :3], "gives vectors of shape"),
]


@pytest.mark.parametrize("name, change, why", DAMAGED_REFERENCES)
def test_an_update_whose_reference_arrays_are_wrong_is_rejected_not_a_crash(tiny_bundle, tmp_path, name, change, why):
    bad = tmp_path / "update-damaged-reference"
    shutil.copytree(tiny_bundle, bad)
    replace_array(bad, f"reference/{name}.npy", change(np.load(bad / f"reference/{name}.npy")))
    with Recommender.open(bad, fallback=tiny_bundle) as rec:
        assert rec.bundle.root == tiny_bundle and not rec.update.accepted and why in rec.update.reason
        assert len(rec.recommend("newcomer", k=5, context=NOW)) == 5
    with pytest.raises(BundleError, match="re-export the bundle"):
        check_references(bad)


def test_a_good_update_is_served_and_a_double_failure_is_an_error(tiny_bundle, tmp_path):
    good = tmp_path / "update-good"
    shutil.copytree(tiny_bundle, good)
    with Recommender.open(good, fallback=tiny_bundle) as rec:
        assert rec.bundle.root == good and rec.update.accepted and rec.stats()["update"]["rejected"] is None
    bad = _corrupt_model(tiny_bundle, tmp_path)
    (tmp_path / "old").mkdir()
    damaged = _corrupt_model(tiny_bundle, tmp_path / "old")
    with pytest.raises(BundleError, match="previous bundle cannot be opened either") as refused:
        Recommender.open(bad, fallback=damaged)
    assert "sha256" in str(refused.value) and str(tmp_path) not in str(refused.value)  # no host paths
    with pytest.raises(BundleError, match="^the fallback nothing-here is not a bundle") as refused:
        Recommender.open(good, fallback=tmp_path / "nothing-here")  # refused at once, the update good or not


def test_cli_recommend_with_a_fallback_bundle(tiny_bundle, tmp_path):
    from edgerec.cli.main import cli

    bad = _corrupt_model(tiny_bundle, tmp_path)
    result = CliRunner().invoke(cli, ["recommend", str(bad), "--user", "u1", "--k", "3", "--history",
                                      str(tmp_path / "h.db"), "--fallback", str(tiny_bundle),
                                      "--json", str(tmp_path / "out.json")])
    assert result.exit_code == 0, result.output
    assert "rejected" in result.output and "sha256" in result.output
    assert len(json.loads((tmp_path / "out.json").read_text())) == 3
