"""Audit L10: a second `train`/`distill` writing into the same --out, the unfinished checkpoint of a killed run
shipped by `export` (or read as --teacher / --init), and a `domains split` stopped over an earlier split."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from killed_runs import Killed, killed_after_first_save, tiny_run

from edgerec.cli.main import cli
from edgerec.data import SynthConfig, write_synth
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError, DataError
from edgerec.runtime.atomic import claim

TINY = ["--dim", "8", "--layers", "1", "--heads", "1", "--max-len", "8", "--epochs", "1", "--batch-size", "64",
        "--eval-users", "50", "--loss", "full"]


# ------------------------------------------------------------------ 1. one writer per checkpoint folder


def test_a_second_train_or_distill_into_a_held_out_is_refused_and_writes_nothing(small_data_dir, tmp_path):
    out = tmp_path / "ckpt"
    out.mkdir()
    held = claim(out)  # another train is writing into it
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "--data", str(small_data_dir), "--out", str(out), *TINY])
    assert result.exit_code == 1, result.output
    assert "another edgerec train or distill is writing into --out" in result.output
    assert str(tmp_path) not in result.output
    assert not (out / "config.json").exists() and not (out / "model.safetensors").exists()

    teacher = tmp_path / "teacher"
    result = runner.invoke(cli, ["train", "--data", str(small_data_dir), "--out", str(teacher), *TINY])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["distill", "--teacher", str(teacher), "--data", str(small_data_dir),
                                 "--out", str(out), *TINY])
    assert result.exit_code == 1, result.output
    assert "another edgerec train or distill is writing into --out" in result.output
    assert not (out / "config.json").exists()

    held.release()  # that run ended: the folder is free again, and a finished run lets it go
    result = runner.invoke(cli, ["train", "--data", str(small_data_dir), "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    assert (out / "config.json").is_file()
    again = claim(out)
    assert again is not None  # released when the run ended, not only when the process does
    again.release()


# ------------------------------------------------------------------ 2. unfinished checkpoints


@pytest.fixture(scope="module")
def killed_run(small_data_dir, tmp_path_factory):
    """A checkpoint folder of a run killed right after its first epoch was saved (as the audit's SIGKILL left)."""
    from edgerec.models.train import train_model

    root = tmp_path_factory.mktemp("killed")
    dataset, split, model, train = tiny_run(small_data_dir)
    killed_after_first_save(lambda: train_model(dataset, split, model, train, out=root / "ckpt"))
    assert json.loads((root / "ckpt" / "config.json").read_text())["info"]["in_progress"] is True
    return root / "ckpt", dataset, split, model, train


def _export(ckpt, data, out, **kwargs):
    from edgerec.export.bundle_builder import ExportConfig, export_bundle

    return export_bundle(ckpt, data, out, ExportConfig(formats=("onnx",), parity_users=40, evaluate=False,
                                                       hubness=False, min_top10_agreement=0.0), **kwargs)


def test_export_refuses_an_unfinished_checkpoint_unless_allowed(killed_run, small_data_dir, tmp_path):
    ckpt = killed_run[0]
    with pytest.raises(ConfigError, match=r"did not finish \(killed\?\).*edgerec train --resume.*--allow-unfinished"):
        _export(ckpt, small_data_dir, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()

    result = CliRunner().invoke(cli, ["export", "--model", str(ckpt), "--data", str(small_data_dir),
                                      "--out", str(tmp_path / "bundle"), "--format", "onnx"])
    assert result.exit_code == 1, result.output
    assert "did not finish" in result.output and "--allow-unfinished" in result.output
    assert str(tmp_path) not in result.output and not (tmp_path / "bundle").exists()

    _export(ckpt, small_data_dir, tmp_path / "bundle", allow_unfinished=True)
    card = json.loads((tmp_path / "bundle" / "model_card.json").read_text())
    assert card["training"]["in_progress"] is True  # the bundle says what it ships


def test_distill_teacher_and_train_init_refuse_an_unfinished_checkpoint(killed_run, small_data_dir, tmp_path):
    ckpt = killed_run[0]
    runner = CliRunner()
    result = runner.invoke(cli, ["distill", "--teacher", str(ckpt), "--data", str(small_data_dir),
                                 "--out", str(tmp_path / "student"), *TINY])
    assert result.exit_code == 1, result.output
    assert "--teacher ckpt: the training run that wrote it did not finish" in result.output
    assert not (tmp_path / "student").exists()
    result = runner.invoke(cli, ["train", "--data", str(small_data_dir), "--init", str(ckpt),
                                 "--out", str(tmp_path / "warm"), *TINY])
    assert result.exit_code == 1, result.output
    assert "--init ckpt: the training run that wrote it did not finish" in result.output
    assert not (tmp_path / "warm").exists()
    result = runner.invoke(cli, ["train", "--data", str(small_data_dir), "--arch", "ranker", "--retrieval", str(ckpt),
                                 "--out", str(tmp_path / "ranker")])
    assert result.exit_code == 1, result.output
    assert "--retrieval ckpt: the training run that wrote it did not finish" in result.output
    assert not (tmp_path / "ranker").exists()  # refused before --out is claimed, as --init and --teacher are


def test_export_refuses_an_unfinished_teacher_unless_allowed(killed_run, small_data_dir, tmp_path):
    """export --teacher records the teacher's metrics in the manifest: a killed run's would stand there as its."""
    ckpt = killed_run[0]
    finished = tmp_path / "finished"
    shutil.copytree(ckpt, finished)
    meta = json.loads((finished / "config.json").read_text())
    meta["info"].pop("in_progress")
    (finished / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"^--teacher ckpt: the training run that wrote it did not finish"):
        _export(finished, small_data_dir, tmp_path / "bundle", teacher=ckpt)
    assert not (tmp_path / "bundle").exists()


def test_a_resumed_run_and_a_checkpoint_of_an_older_version_still_export(killed_run, small_data_dir, tmp_path):
    from edgerec.models.checkpoint import refuse_unfinished
    from edgerec.models.train import train_model

    ckpt, dataset, split, model, train = killed_run
    older = tmp_path / "older"
    shutil.copytree(ckpt, older)
    meta = json.loads((older / "config.json").read_text())
    meta["info"] = {"best_epoch": 1}  # written before in_progress existed
    (older / "config.json").write_text(json.dumps(meta))
    refuse_unfinished(older, "--model")  # no error
    _export(older, small_data_dir, tmp_path / "older-bundle")

    resumed = tmp_path / "resumed"
    shutil.copytree(ckpt, resumed)
    train_model(dataset, split, model, train, out=resumed, resume=True)
    assert "in_progress" not in json.loads((resumed / "config.json").read_text())["info"]
    _export(resumed, small_data_dir, tmp_path / "resumed-bundle")


# ------------------------------------------------------------------ 3. domains split over an earlier split


@pytest.fixture(scope="module")
def two_worlds(tmp_path_factory):
    root = tmp_path_factory.mktemp("worlds")
    write_synth(SynthConfig(users=120, items=300, events=3_000, seed=1), root / "old")
    write_synth(SynthConfig(users=150, items=400, events=4_000, seed=2), root / "new")
    return root / "old", root / "new"


def _split(data, out, *more):
    result = CliRunner().invoke(cli, ["domains", "split", str(data), "--out", str(out), *more])
    return result


def _shapes(out) -> dict:
    """Each domain folder's (items, events), or 'refused' when it does not load."""
    shapes = {}
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            part = load_dataset(folder)
        except DataError:
            shapes[folder.name] = "refused"
        else:
            shapes[folder.name] = (part.n_items, len(part.interactions))
    return shapes


def test_a_split_stopped_while_writing_leaves_the_earlier_split_whole(two_worlds, tmp_path, monkeypatch):
    import edgerec.data.store as store

    old, new = two_worlds
    out = tmp_path / "split"
    assert _split(new, tmp_path / "reference").exit_code == 0
    assert _split(old, out).exit_code == 0
    before, after = _shapes(out), _shapes(tmp_path / "reference")
    assert len(before) == 2 and before.keys() == after.keys() and before != after

    saved, calls = store.save_dataset, []

    def second_dies(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise Killed
        return saved(*args, **kwargs)

    monkeypatch.setattr(store, "save_dataset", second_dies)
    with pytest.raises(Killed):
        CliRunner().invoke(cli, ["domains", "split", str(new), "--out", str(out)], catch_exceptions=False)
    monkeypatch.undo()
    assert _shapes(out) == before  # not one folder of the new data beside one of the old

    assert _split(new, out).exit_code == 0
    assert _shapes(out) == after
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_split_stopped_while_publishing_leaves_no_two_data_sets_that_load(two_worlds, tmp_path, monkeypatch):
    import edgerec.data.domains as domains

    old, new = two_worlds
    out = tmp_path / "split"
    assert _split(new, tmp_path / "reference").exit_code == 0
    assert _split(old, out).exit_code == 0
    before, after = _shapes(out), _shapes(tmp_path / "reference")
    first, second = sorted(before)

    replace = domains.os.replace

    def dies_at_the_second_folder(src, dst, *args, **kwargs):
        from pathlib import Path

        moved_in = ".domains-split." in str(src) and out / second in (Path(dst), Path(dst).parent)
        if moved_in:  # the first file of the new data set moved into the second folder: killed
            raise Killed
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(domains.os, "replace", dies_at_the_second_folder)
    with pytest.raises(Killed):
        CliRunner().invoke(cli, ["domains", "split", str(new), "--out", str(out)], catch_exceptions=False)
    monkeypatch.undo()
    stopped = _shapes(out)
    assert stopped == {first: after[first], second: "refused"}  # new, or refused: never old beside new

    assert _split(new, out).exit_code == 0
    assert _shapes(out) == after


def test_skip_empty_over_an_earlier_split_and_a_second_split_at_once(two_worlds, tmp_path):
    from edgerec.data.domains import SPLIT_LOCK
    from edgerec.data.store import save_dataset

    old, _ = two_worlds
    data = load_dataset(old)
    genres = data.catalog.text["genre"]
    data.catalog.text["genre"] = ["" if i % 7 == 0 else g for i, g in enumerate(genres)]
    save_dataset(data, tmp_path / "data")
    out = tmp_path / "split"
    assert _split(tmp_path / "data", out, "--by", "genre", "--skip-empty").exit_code == 0
    first = _shapes(out)
    result = _split(tmp_path / "data", out, "--by", "genre", "--skip-empty")
    assert result.exit_code == 0, result.output
    assert "left out:" in result.output and _shapes(out) == first and "refused" not in first.values()

    held = claim(out, SPLIT_LOCK)  # another split is publishing into it
    result = _split(tmp_path / "data", out, "--by", "genre", "--skip-empty")
    assert result.exit_code == 1 and "another edgerec domains split is writing into --out" in result.output
    held.release()
