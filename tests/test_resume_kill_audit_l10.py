"""`demo --resume` after a kill inside a step, and study plots killed while written (audit L10).

A kill is simulated by raising at a patched point: the step's files are left as a killed run leaves them.
- replay / fairness: the resumed step recorded its users into the killed run's history again (10,426 events,
  7,384 distinct; HR@10 0.415 for 0.42), and a history the user named must never be deleted for it;
- export: the step's first bundle was published, the second not; the resume was refused
  ("bundle exists and is not empty");
- plots: saved in place, a kill left a cut-short image where the previous good one was.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgerec.errors import BundleError, ConfigError


class Killed(BaseException):
    """What a kill leaves: nothing of the step after this point runs (not an Exception: no handler takes it)."""


def events(db: Path) -> tuple[int, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT COUNT(*), COUNT(DISTINCT profile||item||event||ts) FROM events").fetchone()


def _demo(out: Path, data: Path, only: str, **change):
    """The demo's config on `data`, its study list cut to its data step and the real step named `only` (as
    `demo_studies` builds them; `change` applied to the latter: the tiny world's bundle or checkpoint instead
    of the trained ones)."""
    from edgerec.pipeline import demo

    cfg = demo.DemoConfig.make(out, quick=True, data=data)
    real = demo.demo_studies

    def studies(c):
        return [s if s.name == "data" else replace(s, **change) for s in real(c) if s.name in ("data", only)]

    return demo, cfg, studies


def _kill_after(monkeypatch, cls, name: str, calls: int):
    """Patch `cls.name` to raise Killed at its `calls`+1-th call; returns a function undoing it."""
    real = getattr(cls, name)
    count = [0]

    def dying(*args, **kwargs):
        count[0] += 1
        if count[0] > calls:
            raise Killed()
        return real(*args, **kwargs)

    monkeypatch.setattr(cls, name, dying)
    return lambda: monkeypatch.setattr(cls, name, real)


# ------------------------------------------------------------------ defect 1: replay / fairness histories


@pytest.mark.parametrize("step, db, users", [("replay", "history.db", 25), ("fairness", "fairness.db", 20)])
def test_a_resumed_replay_step_records_each_event_once(tmp_path, tiny_bundle, monkeypatch, step, db, users):
    from edgerec.runtime import Recommender

    data = tiny_bundle.parent / "data"
    change = {"bundle": tiny_bundle, "users": users}
    if step == "fairness":
        change["weights"] = (1.0,)
    quiet = lambda *a: None  # noqa: E731

    demo, cfg, studies = _demo(tmp_path / "clean", data, step, **change)
    monkeypatch.setattr(demo, "demo_studies", studies)
    clean = demo.run_demo(cfg, quiet)[step]
    clean_events = events(cfg.out / "device" / db)
    assert clean_events[0] == clean_events[1] > 0

    demo, cfg, studies = _demo(tmp_path / "killed", data, step, **change)
    undo = _kill_after(monkeypatch, Recommender, "recommend", users // 2)  # half the users replayed, then killed
    with pytest.raises(Killed):
        demo.run_demo(cfg, quiet)
    undo()
    assert events(cfg.out / "device" / db)[0] > 0  # the killed run's events are there
    resumed = demo.run_demo(cfg, quiet, resume=True)[step]
    # was: the killed run's history opened again, its users' events recorded twice and the figures changed
    assert events(cfg.out / "device" / db) == clean_events
    timing = ("p50_ms", "p99_ms")  # the replay's latencies: the one figure a rerun may change
    assert {k: v for k, v in resumed.items() if k not in timing} == {k: v for k, v in clean.items() if k not in timing}


def _history_with_data(path: Path) -> bytes:
    from edgerec.runtime.pseudonyms import open_history

    store = open_history(path)
    store.record("someone", "i1", "play")
    store.close()
    return path.read_bytes()


@pytest.mark.parametrize("study", ["replay", "fairness"])
def test_a_history_the_user_named_that_holds_data_is_refused_never_deleted(tmp_path, tiny_bundle, study):
    from edgerec.studies.fairness import FairnessStudy
    from edgerec.studies.replay import ReplayStudy

    data = tiny_bundle.parent / "data"
    theirs = tmp_path / "theirs.db"
    kept = _history_with_data(theirs)
    cls = ReplayStudy if study == "replay" else FairnessStudy
    with pytest.raises(ConfigError, match="already holds a device history") as caught:
        cls(tiny_bundle, data, theirs, users=5).run()
    assert str(tmp_path) not in str(caught.value)
    assert theirs.read_bytes() == kept and events(theirs) == (1, 1)
    # a history file that does not exist yet is created and filled
    fresh = tmp_path / "new.db"
    cls(tiny_bundle, data, fresh, users=5, **({"weights": (1.0,)} if study == "fairness" else {})).run()
    assert events(fresh)[0] > 0


def test_study_replay_cli_refuses_a_history_that_holds_data(tmp_path, tiny_bundle):
    """The CLI path: --history never names a database that exists (the option refuses one before the study
    runs; the study refuses one that holds data for library callers)."""
    from edgerec.cli.main import cli

    theirs = tmp_path / "theirs.db"
    kept = _history_with_data(theirs)
    result = CliRunner().invoke(cli, ["study", "replay", str(tiny_bundle), "--data", str(tiny_bundle.parent / "data"),
                                      "--users", "5", "--history", str(theirs)])
    assert result.exit_code != 0 and "choose another file" in result.output  # --history's own check (FILE_OUT)
    assert theirs.read_bytes() == kept


# ------------------------------------------------------------------ defect 2: the export step's two bundles


def test_a_resumed_export_step_exports_both_bundles_again(tmp_path, tiny_bundle, monkeypatch):
    import edgerec.export.bundle_builder as builder
    from edgerec.runtime.bundle import Bundle

    world = tiny_bundle.parent
    demo, cfg, studies = _demo(tmp_path / "demo", world / "data", "export", student=world / "ckpt",
                               ranker=None, teacher=None, scorer=None)
    monkeypatch.setattr(demo, "demo_studies", studies)
    # the tiny model's bundles as ONNX only, without test metrics: seconds, not tens (TFLite's converter)
    real_config, real_export = builder.ExportConfig, builder.export_bundle
    monkeypatch.setattr(builder, "ExportConfig", lambda **given: real_config(
        **{**given, "formats": ("onnx",), "evaluate": False, "parity_users": 100, "min_top10_agreement": 0.8,
           "priors": False, "hubness": False}))

    def onnx_only(*args, **kwargs):
        manifest = real_export(*args, **kwargs)
        manifest.metrics.setdefault("onnx_vs_tflite", {"top10_identical_share": None})  # the step's progress line
        return manifest

    monkeypatch.setattr(builder, "export_bundle", onnx_only)
    undo = _kill_after(monkeypatch, builder, "export_bundle", 1)  # the int8 bundle published, then killed
    with pytest.raises(Killed):
        demo.run_demo(cfg, lambda *a: None)
    undo()
    assert (cfg.out / "bundle" / "manifest.json").is_file() and not (cfg.out / "bundle-fp32").exists()
    # was: BundleError "bundle exists and is not empty; choose a new --out folder"
    results = demo.run_demo(cfg, lambda *a: None, resume=True)
    assert results["export"]["bytes"] == Bundle.open(cfg.out / "bundle").size_bytes()
    assert Bundle.open(cfg.out / "bundle-fp32").manifest.name == "demo-student-fp32"


def test_the_export_step_deletes_no_folder_but_its_own_bundles(tmp_path, tiny_bundle):
    """Only a bundle the step itself names (demo-student-int8 / -fp32) is exported anew; another bundle or a
    folder of the user's files at its --out is refused as before, never deleted."""
    import shutil

    from edgerec.pipeline.steps import ExportStep

    world = tiny_bundle.parent
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    other = tmp_path / "other"
    shutil.copytree(tiny_bundle, other)  # a bundle named "bundle"
    for out in (notes, other):
        kept = sorted(p.name for p in out.iterdir())
        with pytest.raises(BundleError, match="not empty"):
            ExportStep(world / "ckpt", world / "data", out, tmp_path / "fp32").run()
        assert sorted(p.name for p in out.iterdir()) == kept
    assert (notes / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------ defect 3: plots written whole or not at all


def _killed_while_saving(monkeypatch):
    """Figure.savefig writes part of an image, then the process is killed."""
    from matplotlib.figure import Figure

    def dying(self, fname, *args, **kwargs):
        if hasattr(fname, "write"):
            fname.write(b"\x89PNG\r\n\x1a\n cut short")
        else:
            Path(fname).write_bytes(b"\x89PNG\r\n\x1a\n cut short")
        raise Killed()

    monkeypatch.setattr(Figure, "savefig", dying)


def _figure():
    from edgerec.studies.base import pyplot

    fig, ax = pyplot().subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    return fig


def _bench_result() -> dict:
    stage = {"p50_ms": 1.0, "p99_ms": 2.0}
    return {"items": 1000, "profile": {"name": "phone-mid", "p99_ms": 50},
            "runs": [{"backend": "onnx", "latencies_ms": list(np.linspace(1, 3, 20)),
                      "stages": {s: stage for s in ("history", "encode", "retrieve")}}]}


@pytest.mark.parametrize("writer", ["study", "bench"])
def test_a_plot_killed_while_written_keeps_the_previous_one(tmp_path, monkeypatch, writer):
    from edgerec.device_tests.plots import plot_bench
    from edgerec.studies.base import save_figure

    target = tmp_path / "sim.png"

    def write():
        return save_figure(_figure(), target) if writer == "study" else plot_bench(_bench_result(), target)

    assert write() == target
    good = target.read_bytes()
    assert good.startswith(b"\x89PNG") and good[-8:-4] == b"IEND"
    _killed_while_saving(monkeypatch)
    with pytest.raises(Killed):
        write()
    assert target.read_bytes() == good  # was: the cut-short image in its place
    assert [p.name for p in target.parent.iterdir()] == ["sim.png"]  # no temporary left either


def test_a_plot_keeps_the_format_its_suffix_names(tmp_path):
    from edgerec.studies.base import save_figure

    svg = save_figure(_figure(), tmp_path / "a.svg")
    assert b"<svg" in svg.read_bytes()[:500]
