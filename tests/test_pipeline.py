"""The main job end to end on a tiny world as a list of studies, and the compression study (real exports,
real engines)."""

import json

import pytest

from edgerec.data.synth import SynthConfig
from edgerec.federated.server import ServerConfig
from edgerec.models.config import ModelConfig
from edgerec.models.train import TrainConfig
from edgerec.pipeline import DemoConfig, demo_report, run_demo
from edgerec.studies.fed_world import WorldConfig
from edgerec.studies.simulator import SimConfig

TINY = dict(  # a tiny demo: every step in a couple of minutes
    quick=True, baselines=("popular", "itemknn"),
    teacher=ModelConfig(dim=32, layers=1, heads=2, max_len=12),
    teacher_train=TrainConfig(epochs=2, eval_users=0, batch_size=64),
    student=ModelConfig(dim=8, layers=1, heads=1, max_len=12, own_rows=300, hash_buckets=50),
    student_train=TrainConfig(epochs=2, eval_users=0, batch_size=64),
    replay_users=20, bench_items=None, experiment=SimConfig(users=12, days=2, pre_days=1, k=5),
    federated=WorldConfig(max_devices=40, model=ModelConfig(dim=8, layers=1, heads=1, max_len=12, dropout=0.0),
                          train=TrainConfig(epochs=1, eval_users=0, batch_size=64)),
    federated_server=ServerConfig(rounds=2, clients_per_round=10), federated_epsilons=(4.0,),
)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    cfg = DemoConfig(out=out, synth=SynthConfig(users=200, items=700, events=9_000, seed=2),
                     transfer_world=SynthConfig(users=300, items=900, events=15_000, seed=2), transfer_couplings=(1.0,),
                     **TINY)
    steps = []
    results = run_demo(cfg, lambda what, values: None, lambda name, i, n: steps.append(name))
    return out, results, steps, cfg


def test_demo_runs_every_step_and_writes_its_report(demo_run):
    out, results, steps, _ = demo_run
    assert steps == ["data", "baselines", "teacher", "student", "ranker", "scorer", "export", "compression", "replay",
                     "newcomers", "fairness", "explain", "bench", "teacher_bundle", "experiment", "privacy",
                     "federated", "transfer"]
    saved = json.loads((out / "report.json").read_text())
    assert saved["timings"]["total"] > 0 and set(saved["timings"]) >= set(steps)
    assert (out / "bundle" / "manifest.json").exists() and (out / "compression.png").exists()
    assert (out / "bench.png").exists() and json.loads((out / "bench.json").read_text())["runs"]
    assert json.loads((out / "compression.json").read_text()) == results["compression"]
    assert results["export"]["metrics"]["teacher"]["NDCG@10"] > 0
    assert 0 <= results["replay"]["HR@10"] <= 1 and results["replay"]["example"]["recommendations"]
    assert results["newcomers"]["visibility"]["genre"] and results["newcomers"]["first_lists"]["choices"] is not None
    assert [r["model"] for r in results["baselines"]["models"]] == ["popular", "itemknn"]
    files = {m["file"] for m in results["export"]["models"]}
    assert files >= {"user_encoder.onnx", "user_encoder.tflite"}
    assert ({"ranker.onnx", "ranker.tflite"} <= files) == results["ranker"]["ships"]  # ships only if it helps
    assert (out / "ranker" / "model.safetensors").exists()
    experiment = results["experiment"]  # teacher vs student: one A/B and one interleaving, with verdicts
    assert (experiment["control"], experiment["treatment"]) == ("student", "teacher")
    assert experiment["ab"]["verdict"]["decision"] in ("ship", "do not ship", "inconclusive")
    assert experiment["interleave"]["users"] == 12 and experiment["reactions"] == "SynthReactions"
    assert results["privacy"]["encrypted_history"]["ids_in_clear"] is False
    assert (out / "privacy" / "dp-popularity.json").exists() and results["privacy"]["dp_popularity"]["ndcg10_dp_prior"] > 0
    assert results["export"]["metrics"] is not None and (out / "scorer" / "scorer.json").exists()
    assert {"NDCG@10 with scorer", "NDCG@10 with ranker"} <= set(results["scorer"]["test"])
    assert (out / "fairness.png").exists() and results["fairness"]["trade_off"]
    assert (out / "explain.png").exists() and results["explain"]["items"][0]["contributions"]
    federated = {a["arm"]: a for a in results["federated"]["arms"]}
    assert {"v1 (no update)", "centralized retraining", "FedAvg", "DP-FedAvg eps 4"} <= set(federated)
    assert (out / "federated.png").exists() and (out / "federated" / "bundle-fedavg" / "manifest.json").exists()
    runs = results["transfer"]["runs"]  # the demo world, then a coupled synthetic world
    assert [r.get("domain_coupling") for r in runs] == [None, 1.0]
    assert all(set(r["methods"]) >= {"popularity", "target-only", "content", "mapping"} for r in runs)


def test_demo_resume_keeps_finished_steps_and_refuses_other_settings(demo_run):
    import dataclasses

    from edgerec.errors import ConfigError

    out, results, _, cfg = demo_run
    report = json.loads((out / "report.json").read_text())
    del report["timings"]["bench"], report["timings"]["total"]  # as if the run had stopped before its bench
    (out / "report.json").write_text(json.dumps(report))
    steps = []
    again = run_demo(cfg, lambda what, values: None, lambda name, i, n: steps.append(name), resume=True)
    assert steps == ["bench"] and again["teacher"] == results["teacher"]
    with pytest.raises(ConfigError, match="other settings"):
        run_demo(dataclasses.replace(cfg, seed=9), lambda what, values: None, resume=True)


def test_compression_report_measures_every_variant(demo_run):
    _, results, _, _ = demo_run
    rows = {r["variant"]: r for r in results["compression"]["variants"]}
    assert "teacher fp32 (onnx)" in rows and "student int8 weights (tflite)" in rows
    fp32, int8 = rows["student fp32 (onnx)"], rows["student int8 weights (onnx)"]
    assert int8["table_bytes"] < fp32["table_bytes"] / 2 and int8["encoder_bytes"] < fp32["encoder_bytes"]
    assert int8["encoder_bytes"] < rows["teacher fp32 (onnx)"]["encoder_bytes"]
    assert abs(int8["NDCG@10"] - fp32["NDCG@10"]) < 0.05
    for row in rows.values():
        assert 0 <= row["top10_agreement_with_teacher"] <= 1 and row["encoder_p50_ms"] > 0


def test_the_report_is_rebuilt_from_the_saved_records(demo_run):
    """Every study's tables come from its record alone: a resumed run prints what a fresh one did."""
    out, results, steps, cfg = demo_run
    saved = json.loads((out / "report.json").read_text())
    rebuilt = demo_report(cfg, saved)
    assert [r.study for r in rebuilt] == steps
    by_study = {r.study: r for r in rebuilt}
    assert by_study["compression"].tables[0].rows == saved["compression"]["variants"]
    assert by_study["replay"].tables[0].rows[0]["HR@10"] == results["replay"]["HR@10"]
    assert by_study["bench"].tables[0].rows[0]["backend"] == results["bench"]["runs"][0]["backend"]
    assert [row["phase"] for row in by_study["ranker"].tables[0].rows] == ["validation", "test"]



@pytest.fixture(scope="module")
def own_data(tmp_path_factory):
    """A user's data folder as `edgerec data import csv` writes it: a plain log and an item file with
    fewer columns than the synthetic catalog's (no providers), and no ground truth behind them."""
    import csv

    from edgerec.data.loaders import import_dataset
    from edgerec.data.store import save_dataset
    from edgerec.data.synth import write_synth

    raw = tmp_path_factory.mktemp("raw")
    write_synth(SynthConfig(users=200, items=700, events=9_000, seed=5), raw)
    with open(raw / "items.csv", newline="") as source, open(raw / "films.csv", "w", newline="") as out:
        kept = ["item_id", "title", "tags", "genre", "language"]
        writer = csv.DictWriter(out, kept, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(csv.DictReader(source))
    dataset = import_dataset("csv", raw / "interactions.csv", items=raw / "films.csv")
    return save_dataset(dataset, tmp_path_factory.mktemp("my-log") / "my-log")


def load_dataset(folder):
    from edgerec.data.store import load_dataset

    return load_dataset(folder)


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_the_full_demo_trains_on_own_data_by_its_budget(tmp_path):
    # own data is unknown: every training follows the data (no epoch cap), under a time cap
    cfg = DemoConfig.make(tmp_path / "run", data=tmp_path / "mine")
    for train in (cfg.teacher_train, cfg.student_train, cfg.federated.train):
        assert train.epochs is None and train.max_minutes is not None


def test_the_quick_demo_caps_each_training_in_time_on_own_data(tmp_path):
    from edgerec.pipeline.demo import QUICK_MINUTES

    synthetic, own = DemoConfig.make(tmp_path / "a", quick=True), DemoConfig.make(tmp_path / "b", quick=True, data=tmp_path)
    for name in ("teacher_train", "student_train"):
        mine = getattr(own, name)
        # no epoch cap: the synthetic world's 4 or 6 epochs were 4 or 6 optimizer steps on a 500-event log,
        # a model far below popularity (audit); the data's step budget decides, under the time cap
        assert mine.max_minutes == QUICK_MINUTES and mine.epochs is None and mine.patience is None
        assert getattr(synthetic, name).epochs is not None and mine.eval_users == getattr(synthetic, name).eval_users
    assert own.federated.train.max_minutes is not None


def test_demo_runs_on_the_users_own_data(own_data, tmp_path):
    import dataclasses

    from edgerec.errors import ConfigError

    cfg = DemoConfig.make(tmp_path / "run", quick=True, data=own_data)
    assert (cfg.data, cfg.synth, cfg.transfer_world) == (own_data, None, None)
    cfg = dataclasses.replace(cfg, **TINY)
    before, steps = _files(own_data), []
    results = run_demo(cfg, lambda what, values: None, lambda name, i, n: steps.append(name))
    assert steps == ["data", "baselines", "teacher", "student", "ranker", "scorer", "export", "compression", "replay",
                     "newcomers", "fairness", "explain", "bench", "teacher_bundle", "experiment", "privacy", "federated"]
    assert _files(own_data) == before  # read, never written
    assert (results["data"]["users"], results["data"]["events"]) == (200, len(load_dataset(own_data).interactions))
    assert results["export"]["metrics"]["teacher"]["NDCG@10"] > 0
    assert results["experiment"]["reactions"] == "FittedReactions"  # no ground truth: a click model fitted on the log
    assert results["fairness"]["trade_off"] == [] and "provider" in results["fairness"]["note"]
    report = (tmp_path / "run" / "report.json").read_text()
    assert str(own_data.parent) not in report and str(tmp_path) not in report  # no host paths
    assert json.loads(report)["config"]["data"]["name"] == "my-log"
    steps.clear()
    run_demo(cfg, lambda what, values: None, lambda name, i, n: steps.append(name), resume=True)
    assert steps == []  # the same data: nothing to redo
    (own_data / "interactions.csv").write_bytes(before["interactions.csv"] + before["interactions.csv"][-40:])
    try:
        with pytest.raises(ConfigError, match="other settings"):  # other data under the same name
            run_demo(cfg, lambda what, values: None, resume=True)
    finally:
        (own_data / "interactions.csv").write_bytes(before["interactions.csv"])


def test_demo_never_empties_a_folder_it_did_not_make(own_data, tmp_path):
    from edgerec.errors import ConfigError

    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="holds no earlier demo run"):
        run_demo(DemoConfig.make(mine, quick=True), lambda what, values: None)
    assert (mine / "notes.txt").read_text() == "keep me"
    with pytest.raises(ConfigError, match="holds the --data folder"):
        run_demo(DemoConfig.make(own_data.parent, quick=True, data=own_data), lambda what, values: None)
    assert (own_data / "interactions.csv").exists()
    with pytest.raises(ConfigError, match="does not exist"):
        run_demo(DemoConfig.make(tmp_path / "run", quick=True, data=tmp_path / "nowhere"), lambda what, values: None)
