"""Audit M1 of the L10 kill fixes: a killed distill resumed as a plain train, refusals that named the wrong folder
or a host path, `domains split` into ".", a symlink or an earlier split's folder, an unfinished export that said
so only in model_card.json, `demo --resume` on the teacher's bundle, and a ranker refusal that left --out behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import replace

import pytest
from click.testing import CliRunner
from killed_runs import Killed, killed_after_first_save, tiny_run

from edgerec.cli.main import cli
from edgerec.data import SynthConfig, write_synth
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError, DataError
from edgerec.runtime.atomic import claim
from edgerec.runtime.checks import file_name

TINY = ["--dim", "8", "--layers", "1", "--heads", "1", "--max-len", "8", "--epochs", "2", "--batch-size", "64",
        "--eval-users", "50", "--loss", "full"]


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    root = tmp_path_factory.mktemp("m1worlds")
    write_synth(SynthConfig(users=120, items=300, events=3_000, seed=1), root / "data")
    return root


@pytest.fixture(scope="module")
def small_data_dir(worlds):
    """This module's data: small, so its trained, killed and distilled runs take seconds."""
    return worlds / "data"


@pytest.fixture(scope="module")
def runs(small_data_dir, tmp_path_factory):
    """root/teacher (finished), root/killed-train and root/killed-distill (each killed after its first epoch)."""
    from edgerec.compress.distill import DistillConfig, distill_model
    from edgerec.models.checkpoint import load_model
    from edgerec.models.train import train_model

    root = tmp_path_factory.mktemp("m1runs")
    dataset, split, model, train = tiny_run(small_data_dir)
    train_model(dataset, split, model, replace(train, epochs=1), out=root / "teacher")
    killed_after_first_save(lambda: train_model(dataset, split, model, train, out=root / "killed-train"))
    teacher = load_model(root / "teacher")[0]
    killed_after_first_save(lambda: distill_model(dataset, split, teacher, model, train, DistillConfig(top_k=8),
                                                   out=root / "killed-distill"))
    return root, dataset, split, model, train


def _info(folder) -> dict:
    return json.loads((folder / "config.json").read_text())["info"]


# ------------------------------------------------------------------ 1. a killed distill is no train to resume


def test_a_killed_distill_records_its_kind_and_its_refusal_says_to_distill_again(runs):
    from edgerec.models.checkpoint import refuse_unfinished

    root = runs[0]
    assert _info(root / "killed-distill")["run"] == "distill" and _info(root / "killed-train")["run"] == "train"
    with pytest.raises(ConfigError) as refused:
        refuse_unfinished(root / "killed-distill", "--model", "--allow-unfinished")
    message = str(refused.value)
    assert "edgerec distill" in message and "again" in message and "--allow-unfinished" in message
    assert "train --resume" not in message  # it finished the student without the teacher's loss
    with pytest.raises(ConfigError) as refused:
        refuse_unfinished(root / "killed-train", "--model", "--allow-unfinished")
    assert "edgerec train --resume" in str(refused.value) and "distill" not in str(refused.value)


def test_train_resume_refuses_a_distill_student_and_leaves_it_unfinished(runs, small_data_dir, tmp_path):
    from edgerec.models.train import train_model

    root, dataset, split, model, train = runs
    student = tmp_path / "student"
    shutil.copytree(root / "killed-distill", student)
    before = (student / "config.json").read_bytes()
    result = CliRunner().invoke(cli, ["train", "--resume", "--data", str(small_data_dir), "--out", str(student),
                                      *TINY])
    assert result.exit_code == 1, result.output
    assert "student of `edgerec distill`" in result.output and "without the teacher's loss" in result.output
    assert (student / "config.json").read_bytes() == before and _info(student)["in_progress"] is True
    with pytest.raises(ConfigError, match="student of `edgerec distill`"):  # the API too
        train_model(dataset, split, model, train, out=student, resume=True)
    assert (student / "config.json").read_bytes() == before

    (student / "config.json").unlink()  # killed before its first config: the resume file says what ran
    with pytest.raises(ConfigError, match="student of `edgerec distill`"):
        train_model(dataset, split, model, train, out=student, resume=True)


def test_a_killed_train_still_resumes(runs, tmp_path):
    from edgerec.models.train import train_model

    root, dataset, split, model, train = runs
    resumed = tmp_path / "resumed"
    shutil.copytree(root / "killed-train", resumed)
    train_model(dataset, split, model, train, out=resumed, resume=True)
    assert "in_progress" not in _info(resumed)


# ------------------------------------------------------------------ 6. refusals name the folder, never the host


def test_file_name_names_a_folder_given_with_a_trailing_slash():
    assert file_name("/home/alice/runs/teacher/") == "teacher"
    assert file_name("runs/teacher//") == "teacher"
    assert file_name("/") == "/"


def test_the_refusal_names_no_host_path_and_no_folder_to_paste_wrongly(runs, small_data_dir, tmp_path):
    root = runs[0]
    given = str(root / "killed-train") + "/"  # absolute, with tab completion's slash
    result = CliRunner().invoke(cli, ["export", "--model", given, "--data", str(small_data_dir),
                                      "--out", str(tmp_path / "bundle"), "--format", "onnx"])
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert str(root) not in output and "--model killed-train:" in output
    assert "--out killed-train" not in output  # `runs/teacher` was pasted back as `--out teacher`
    assert "the folder you gave as --model" in output


def test_a_run_still_going_is_waited_for_not_resumed(runs):
    from edgerec.models.checkpoint import refuse_unfinished

    root = runs[0]
    held = claim(root / "killed-train")  # its train is still writing
    try:
        with pytest.raises(ConfigError, match="still going; wait for it to finish") as refused:
            refuse_unfinished(root / "killed-train", "--model", "--allow-unfinished")
        assert "resume" not in str(refused.value)
    finally:
        held.release()


# ------------------------------------------------------------------ 8. the ranker's refusal leaves no --out


def test_ranker_refuses_an_unfinished_retrieval_before_making_out(runs, small_data_dir, tmp_path):
    root = runs[0]
    result = CliRunner().invoke(cli, ["train", "--data", str(small_data_dir), "--arch", "ranker",
                                      "--retrieval", str(root / "killed-train"), "--out", str(tmp_path / "ranker")])
    assert result.exit_code == 1, result.output
    assert "--retrieval killed-train: the training run that wrote it did not finish" in result.output
    assert not (tmp_path / "ranker").exists()


# ------------------------------------------------------------------ 5. an unfinished export says so


def _export(ckpt, data, out, **kwargs):
    from edgerec.export.bundle_builder import ExportConfig, export_bundle

    return export_bundle(ckpt, data, out, ExportConfig(formats=("onnx",), parity_users=40, evaluate=False,
                                                       hubness=False, priors=False, min_top10_agreement=0.0),
                         **kwargs)


def test_an_unfinished_export_says_so_in_readme_manifest_and_inspect(runs, small_data_dir, tmp_path):
    root = runs[0]
    best = _info(root / "killed-train")["best_epoch"]
    manifest = _export(root / "killed-train", small_data_dir, tmp_path / "bundle", allow_unfinished=True)
    assert manifest.metrics["unfinished_training"] == {"model": {"best_epoch": best}}
    readme = (tmp_path / "bundle" / "README.md").read_text()
    assert f"unfinished training run (best epoch {best})" in readme and "nan" not in readme
    stored = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert stored["metrics"]["unfinished_training"]["model"]["best_epoch"] == best
    shown = CliRunner().invoke(cli, ["inspect", str(tmp_path / "bundle")])
    assert shown.exit_code == 0, shown.output
    assert f"unfinished training run (best epoch {best})" in " ".join(shown.output.split())

    finished = _export(root / "teacher", small_data_dir, tmp_path / "plain")
    assert "unfinished_training" not in finished.metrics
    assert "unfinished" not in (tmp_path / "plain" / "README.md").read_text()


def test_an_unfinished_teacher_is_named_the_same_way(runs, small_data_dir, tmp_path):
    root = runs[0]
    manifest = _export(root / "teacher", small_data_dir, tmp_path / "bundle", teacher=root / "killed-train",
                       allow_unfinished=True)
    best = _info(root / "killed-train")["best_epoch"]
    assert manifest.metrics["unfinished_training"] == {"teacher": {"best_epoch": best}}
    assert f"teacher: unfinished training run (best epoch {best})" in (tmp_path / "bundle" / "README.md").read_text()


# ------------------------------------------------------------------ 2-4. domains split into existing folders


def _split(data, out, *more):
    return CliRunner().invoke(cli, ["domains", "split", str(data), "--out", str(out), *more])


def _split_folders(out) -> list[str]:
    """The folder list the last split into `out` recorded in its domain folders' dataset.json."""
    for folder in sorted(out.iterdir()):
        meta = json.loads((folder / "dataset.json").read_text()) if (folder / "dataset.json").is_file() else {}
        if "split_folders" in meta:
            return meta["split_folders"]
    raise AssertionError("no domain folder records its split")


def _loads(folder) -> bool:
    try:
        load_dataset(folder)
    except DataError:
        return False
    return True


def test_split_into_the_current_empty_folder(worlds, tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    result = _split(worlds / "data", ".")
    assert result.exit_code == 0, result.output  # was: ValueError "PosixPath('.') has an empty name"
    assert _loads(here / "audio") and _loads(here / "video")
    assert os.path.samefile(os.getcwd(), here)  # written into, not replaced (the shell's folder stays)


def test_split_into_a_symlink_to_an_empty_folder_writes_into_its_folder(worlds, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    inode = real.stat().st_ino
    (tmp_path / "link").symlink_to(real)
    result = _split(worlds / "data", tmp_path / "link")
    assert result.exit_code == 0, result.output  # was: "another split wrote into --out meanwhile"
    assert (tmp_path / "link").is_symlink() and real.stat().st_ino == inode  # a mount point is kept so too
    assert _loads(real / "audio") and _loads(real / "video")


def test_a_failed_publish_names_its_real_cause(worlds, tmp_path, monkeypatch):
    import edgerec.runtime.atomic as atomic

    replace = atomic.os.replace

    def denied(src, dst, *args, **kwargs):
        if str(src).endswith(".tmp") and os.path.basename(dst) == "new":
            raise PermissionError(errno.EACCES, "Permission denied", str(dst))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(atomic.os, "replace", denied)
    result = _split(worlds / "data", tmp_path / "new")
    assert result.exit_code == 1
    assert "Permission denied" in result.output and "another" not in result.output
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".new.*"))


def test_an_earlier_splits_folders_the_new_one_lacks_no_longer_load(worlds, tmp_path):
    out = tmp_path / "split"
    assert _split(worlds / "data", out, "--by", "genre").exit_code == 0
    earlier = sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert _split(worlds / "data", tmp_path / "bymod").exit_code == 0
    result = _split(tmp_path / "bymod" / "video", out, "--by", "genre")  # the audio genres are gone
    assert result.exit_code == 0, result.output
    now = _split_folders(out)  # no file of its own in --out
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == earlier
    gone = sorted(set(earlier) - set(now))
    assert gone and set(now) <= set(earlier)
    assert all(_loads(out / f) for f in now)
    assert not any(_loads(out / f) for f in gone)  # was: each still loaded, the earlier data set, as complete
    output = " ".join(result.output.split())
    assert "marked unfinished" in output and gone[0] in output


def test_a_split_before_the_list_was_kept_is_found_by_its_folders(worlds, tmp_path):
    out = tmp_path / "split"
    assert _split(worlds / "data", out, "--by", "genre").exit_code == 0
    for folder in out.iterdir():  # written by an older edgerec: no folder list
        meta = json.loads((folder / "dataset.json").read_text())
        meta.pop("split_folders", None)
        (folder / "dataset.json").write_text(json.dumps(meta))
    (out / "notes").mkdir()
    (out / "notes" / "mine.txt").write_text("mine")  # not a domain folder: left alone
    assert _split(worlds / "data", tmp_path / "bymod").exit_code == 0
    assert _split(tmp_path / "bymod" / "video", out, "--by", "genre").exit_code == 0
    now = _split_folders(out)
    stale = [p for p in out.iterdir() if p.is_dir() and p.name not in now and p.name != "notes"
             and not p.name.startswith(".")]
    assert stale and not any(_loads(p) for p in stale)
    assert (out / "notes" / "mine.txt").read_text() == "mine"


# ------------------------------------------------------------------ 7. demo --resume on the teacher's bundle


def _fake_bundle(folder, name: str) -> None:
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"name": name}))
    (folder / "user_encoder.onnx").write_bytes(b"x" * 10)


def test_the_removal_renames_the_bundle_aside_and_clears_a_killed_ones_leftover(tmp_path, monkeypatch):
    import shutil as shutil_module

    from edgerec.pipeline.steps import remove_own_bundle

    bundle = tmp_path / "bundle-teacher"
    _fake_bundle(bundle, "demo-teacher-fp32")
    rmtree = shutil_module.rmtree
    deleted = []

    def killed_mid_delete(path, *args, **kwargs):
        deleted.append(path)
        (path / "manifest.json").unlink()  # the first file gone, then killed
        raise Killed

    monkeypatch.setattr(shutil_module, "rmtree", killed_mid_delete)
    with pytest.raises(Killed):
        remove_own_bundle(bundle, "demo-teacher-fp32")
    monkeypatch.setattr(shutil_module, "rmtree", rmtree)
    assert deleted and deleted[0] != bundle  # deleted under another name, not in place
    assert not bundle.exists()  # nothing manifest-less at the bundle's place for the export to refuse
    leftovers = list(tmp_path.glob(".bundle-teacher.*"))
    assert leftovers
    remove_own_bundle(bundle, "demo-teacher-fp32")  # the next resume clears it
    assert not list(tmp_path.glob(".bundle-teacher.*"))

    _fake_bundle(bundle, "someone-else")
    remove_own_bundle(bundle, "demo-teacher-fp32")
    assert (bundle / "manifest.json").is_file()  # not its own: left for the export to refuse


def test_the_teacher_bundle_step_exports_its_own_bundle_again(tiny_bundle, tmp_path):
    from edgerec.pipeline.experiment_steps import TeacherBundleStep
    from edgerec.runtime.bundle import Bundle

    world = tiny_bundle.parent
    step = TeacherBundleStep(world / "ckpt", world / "data", tmp_path / "bundle-teacher")
    first = step.measure(lambda *a: None)  # published, then killed before the step's record
    again = step.measure(lambda *a: None)  # was: "bundle-teacher exists and is not empty"
    assert again == first and Bundle.open(tmp_path / "bundle-teacher").manifest.name == "demo-teacher-fp32"
    assert not list(tmp_path.glob(".bundle-teacher.*"))
