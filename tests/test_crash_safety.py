"""Crash safety and concurrency on the host: a writer killed mid-way, or two writers of one place at once,
leave the previous complete output or none (refused with a clear error), never a half one that is read."""

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from handmade import write_handmade_bundle

from edgerec.errors import BundleError, ConfigError
from edgerec.runtime.atomic import Temporary
from edgerec.runtime.bundle import Bundle, BundleWriter
from edgerec.runtime.pack import pack

A = np.eye(4, dtype=np.float32)
B = np.eye(4, dtype=np.float32)[::-1].copy()  # the same shapes and sizes: only the content tells them apart


class Killed(BaseException):
    """What a kill looks like from inside: the writer stops where it is, nothing of it runs on."""


def staging_left(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def table(root, verify=True) -> np.ndarray:
    return Bundle.open(root, verify=verify).array("items/embeddings.npy", mmap=False)


# ------------------------------------------------------------------ the bundle writer


def test_a_writer_killed_after_any_file_leaves_no_bundle_and_the_next_export_succeeds(tmp_path, monkeypatch):
    out = tmp_path / "bundle"
    files = len(Bundle.open(write_handmade_bundle(tmp_path / "whole", A)).manifest.files)
    real_add, real_publish = BundleWriter.add_file, Temporary.publish
    for written in range(files + 1):  # killed after 0, 1, ... all files, the last time with the manifest written
        count = {"n": 0}

        def add(self, name, written=written, count=count):
            if count["n"] == written:
                raise Killed
            count["n"] += 1
            return real_add(self, name)

        def publish(self, names=(), written=written):
            if written == files:  # every file written, the manifest too: killed before the rename
                raise Killed
            return real_publish(self, names)

        monkeypatch.setattr(BundleWriter, "add_file", add)
        monkeypatch.setattr(Temporary, "publish", publish)
        try:
            write_handmade_bundle(out, A)
        except Killed:
            pass
        monkeypatch.setattr(BundleWriter, "add_file", real_add)
        monkeypatch.setattr(Temporary, "publish", real_publish)
        assert not out.exists(), written  # no half bundle under the real name
        with pytest.raises(BundleError, match="is not a bundle"):
            Bundle.open(out)
    gc.collect()  # the killed writers are gone: their staging folders are free to remove
    write_handmade_bundle(out, B)  # the same --out again: nothing of the killed runs is in the way
    np.testing.assert_array_equal(table(out), B)
    assert staging_left(out) == []  # the next writer removed the killed ones' staging folders


def test_a_writer_that_started_first_cannot_spoil_a_bundle_another_finished(tmp_path):
    """Two exports into one --out: the late one's files never land in the folder the other published."""
    out = tmp_path / "bundle"
    late = BundleWriter(out, "late")  # both found the folder empty
    write_handmade_bundle(out, A)  # the other export finishes first
    late.add_array("items/embeddings.npy", B)  # the late one writes its table, then is killed
    np.testing.assert_array_equal(table(out, verify=False), A)  # not B's table under A's manifest
    np.testing.assert_array_equal(table(out), A)


def test_of_two_exports_into_one_folder_the_second_to_finish_is_refused(tmp_path):
    out = tmp_path / "bundle"
    with pytest.raises(BundleError, match="filled by another writer while this export ran"):
        write_handmade_bundle(out, B, before_finish=lambda _writer: write_handmade_bundle(out, A))
    np.testing.assert_array_equal(table(out), A)  # the first whole, nothing of the second
    assert staging_left(out) == []


KILLED_EXPORT = textwrap.dedent("""
    import sys, time
    import numpy as np
    sys.path.insert(0, {tests!r})
    from handmade import write_handmade_bundle
    from edgerec.runtime.bundle import BundleWriter

    real_add = BundleWriter.add_file
    def add(self, name):
        real_add(self, name)
        if len(self.files) == 3:
            open({ready!r}, "w").close()
            time.sleep(60)  # killed here, with three files written
        return name
    BundleWriter.add_file = add
    write_handmade_bundle({out!r}, np.eye(4, dtype=np.float32))
""")


def test_an_export_killed_by_sigkill_leaves_no_bundle_and_its_staging_is_cleared(tmp_path):
    out, ready = tmp_path / "bundle", tmp_path / "ready"
    script = KILLED_EXPORT.format(tests=str(Path(__file__).parent), ready=str(ready), out=str(out))
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 50
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), "the export did not get to its third file"
        assert len(staging_left(out)) == 1  # the live writer's staging folder
        write_handmade_bundle(tmp_path / "other", A)  # another bundle beside it: the live one's folder stays
        assert len(staging_left(out)) == 1
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    with pytest.raises(BundleError, match="is not a bundle"):
        Bundle.open(out)
    write_handmade_bundle(out, B)
    np.testing.assert_array_equal(table(out), B)
    assert staging_left(out) == []


def test_a_space_declaration_that_fails_half_way_leaves_no_bundle(tmp_path):
    from edgerec.export.space import declare_space

    source = write_handmade_bundle(tmp_path / "source", A)
    out = tmp_path / "declared"
    from edgerec.errors import ExportError

    with pytest.raises(ExportError, match="content vectors have 3 rows"):
        declare_space(source, out, space_id="s", domains=["video"], content=np.ones((3, 4), np.float32))
    assert not out.exists()  # before: the copied source, which opened as a bundle without its space
    assert staging_left(out) == []
    declared = declare_space(source, out, space_id="s", domains=["video"], content=np.ones((4, 4), np.float32))
    assert declared.manifest.space["id"] == "s"


# ------------------------------------------------------------------ packed bundles


def test_two_packs_into_one_file_at_once_leave_one_whole_packed_bundle(tmp_path, monkeypatch):
    import tarfile

    first, second = write_handmade_bundle(tmp_path / "a", A), write_handmade_bundle(tmp_path / "b", B)
    out = tmp_path / "one.edgerec"
    real_addfile, state = tarfile.TarFile.addfile, {"nested": False}

    def addfile(tar, info, handle=None):  # the second pack runs whole while the first is half-way
        real_addfile(tar, info, handle)
        if not state["nested"]:
            state["nested"] = True
            pack(second, out)

    monkeypatch.setattr(tarfile.TarFile, "addfile", addfile)
    pack(first, out)
    monkeypatch.setattr(tarfile.TarFile, "addfile", real_addfile)
    np.testing.assert_array_equal(table(out), A)  # the last to finish, whole
    assert sorted(p.name for p in tmp_path.iterdir() if "one.edgerec" in p.name) == [
        f".one.edgerec.{table_digest(out)}.unpacked", "one.edgerec"]


def table_digest(packed: Path) -> str:
    from edgerec.runtime.bundle import sha256_file

    return sha256_file(packed)[:24]


def test_a_pack_leaves_a_live_packs_temporary_alone(tmp_path):
    out = tmp_path / "one.edgerec"
    live = Temporary(out, ".packing")  # another process packing into the same file right now
    pack(write_handmade_bundle(tmp_path / "a", A), out)
    assert live.path.exists()
    live.discard()
    np.testing.assert_array_equal(table(out), A)


def test_a_config_error_is_what_a_full_folder_gets(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    from edgerec.export.space import declare_space

    with pytest.raises(ConfigError, match="exists and is not empty"):
        declare_space(write_handmade_bundle(tmp_path / "s", A), tmp_path / "full", space_id="s", domains=["video"])
    assert os.listdir(tmp_path / "full") == ["x"]


# ------------------------------------------------------------------ training checkpoints


@pytest.fixture(scope="module")
def tiny():
    from edgerec.data import SynthConfig, synth_dataset
    from edgerec.data.split import leave_last_out

    dataset = synth_dataset(SynthConfig(users=150, items=500, events=6_000, seed=11))
    return dataset, leave_last_out(dataset)


def test_weights_whose_config_was_never_written_are_refused(tmp_path, monkeypatch):
    import torch

    from edgerec.errors import ModelError
    from edgerec.models import checkpoint
    from edgerec.models.config import ModelConfig

    config = ModelConfig(dim=16, layers=1, max_len=8)
    checkpoint.save_checkpoint(tmp_path, {"w": torch.zeros(3)}, config, None, {"run": "old"})
    assert checkpoint.load_checkpoint(tmp_path).info == {"run": "old"}

    def killed(path, payload):
        raise Killed

    monkeypatch.setattr(checkpoint, "_atomic_json", killed)  # killed between the weights and the config
    with pytest.raises(Killed):
        checkpoint.save_checkpoint(tmp_path, {"w": torch.ones(3)}, config, None, {"run": "new"})
    monkeypatch.undo()
    with pytest.raises(ModelError, match="come from two different saves"):  # was: the new weights, the old config
        checkpoint.load_checkpoint(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]  # no temporaries


def test_a_run_killed_while_saving_an_epoch_resumes_as_if_never_stopped(tiny, tmp_path, monkeypatch, torch_one_thread):
    from edgerec.models import train as train_module
    from edgerec.models.config import ModelConfig
    from edgerec.models.train import TrainConfig, train_model

    dataset, split = tiny
    cfg, run = ModelConfig(dim=16, layers=1, max_len=8), TrainConfig(epochs=3, batch_size=32, eval_users=0, patience=9)
    full = train_model(dataset, split, cfg, run)
    real_save, saves = train_module.save_checkpoint, []

    def killed_on_the_second(*args, **kwargs):  # the second epoch's save dies half-way
        saves.append(1)
        if len(saves) == 2:
            raise Killed
        return real_save(*args, **kwargs)

    monkeypatch.setattr(train_module, "save_checkpoint", killed_on_the_second)
    with pytest.raises(Killed):
        train_model(dataset, split, cfg, run, out=tmp_path)
    monkeypatch.undo()
    resumed = train_model(dataset, split, cfg, run, out=tmp_path, resume=True)
    assert resumed.info["epochs_run"] == 3
    # was: the second epoch trained twice (its weights saved, its progress not), so the losses went apart
    assert [round(h["loss"], 5) for h in resumed.info["history"]] == [round(h["loss"], 5) for h in full.info["history"]]


# ------------------------------------------------------------------ tune studies

TUNE_SMALL = {"dim": [16], "layers": [1], "heads": [1], "max_len": [8], "dropout": [0.0], "loss": ["sampled"],
              "negatives": [128], "use_features": [True]}


def tune_config(trials, lr):
    from edgerec.models.train import TrainConfig
    from edgerec.studies.tune import TuneConfig

    return TuneConfig(minutes=5.0, trials=trials, space={**TUNE_SMALL, "lr": [lr]}, seed=0,
                      train=TrainConfig(steps=60, batch_size=64))


def test_a_trial_killed_after_saving_its_model_never_replaces_the_best_one(tiny, tmp_path, monkeypatch,
                                                                           torch_one_thread):
    pytest.importorskip("optuna")
    from edgerec.models.checkpoint import load_model
    from edgerec.studies import tune as tune_module
    from edgerec.studies.tune import run_tune

    dataset, split = tiny
    first = run_tune(dataset, split, tune_config(2, 5e-3), tmp_path)
    assert first["best"]["number"] == 0 and load_model(tmp_path / "best")[1].info["tune"]["trial"] == 0
    real_save = tune_module.save_checkpoint

    def saved_then_killed(*args, **kwargs):  # the trial's model is on disk, the study never hears of the trial
        real_save(*args, **kwargs)
        raise Killed

    monkeypatch.setattr(tune_module._Search, "_best_so_far", lambda self, trial: (-np.inf, -np.inf))  # it saves
    monkeypatch.setattr(tune_module, "save_checkpoint", saved_then_killed)
    with pytest.raises(Killed):
        run_tune(dataset, split, tune_config(3, 5e-3), tmp_path)  # a resume keeps the study's space
    monkeypatch.undo()
    record = run_tune(dataset, split, tune_config(3, 5e-3), tmp_path)
    states = [t["state"] for t in record["trials"]]
    assert states == ["complete", "complete", "fail", "complete"]  # the killed trial: failed, not counted as done
    best = record["best"]["number"]
    assert record["completed"] == 3 and best != 2
    _, ckpt = load_model(tmp_path / "best")
    assert ckpt.info["tune"]["trial"] == best  # was: the killed trial's model, tested and shipped as another's
    if best == 0:
        assert record["test"] == first["test"]  # the one test score is the best trial's own
    # the killed trial's saved model goes once the trial is marked failed
    assert not (tmp_path / "candidates").exists() or not list((tmp_path / "candidates").iterdir())


def test_a_run_killed_before_its_best_model_was_moved_in_finishes_the_move(tiny, tmp_path, monkeypatch,
                                                                           torch_one_thread):
    pytest.importorskip("optuna")
    from edgerec.models.checkpoint import load_model
    from edgerec.studies import tune as tune_module
    from edgerec.studies.tune import run_tune

    dataset, split = tiny
    real_settle = tune_module.settle_best

    def killed_mid_move(study, out):  # killed between moving the old best aside and the new one in
        if (out / "candidates" / "0").exists():
            (out / "candidates" / "0").rename(out / "best.old")
            raise Killed
        real_settle(study, out)

    monkeypatch.setattr(tune_module, "settle_best", killed_mid_move)
    with pytest.raises(Killed):
        run_tune(dataset, split, tune_config(1, 5e-3), tmp_path)
    monkeypatch.undo()
    assert not (tmp_path / "best").exists()
    record = run_tune(dataset, split, tune_config(1, 5e-3), tmp_path)  # nothing left to run: the report
    assert record["completed"] == 1 and load_model(tmp_path / "best")[1].info["tune"]["trial"] == 0
    assert record["test"]["NDCG@10"] > 0
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "best", "candidates", "study.db", "study.lock"]


# ------------------------------------------------------------------ data folders


def retitled(dataset, suffix):
    """The same data set with other titles: the same ids and counts, other content."""
    import dataclasses

    text = {**dataset.catalog.text, "title": [f"{t}{suffix}" for t in dataset.catalog.text["title"]]}
    return dataclasses.replace(dataset, catalog=dataclasses.replace(dataset.catalog, text=text))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_import_killed_half_way_over_an_older_one_is_refused_not_read_mixed(tiny, tmp_path, monkeypatch, fmt):
    from edgerec.data import store
    from edgerec.errors import DataError

    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    dataset = tiny[0]
    store.save_dataset(dataset, tmp_path, fmt)
    assert store.load_dataset(tmp_path).catalog.text["title"] == dataset.catalog.text["title"]
    newer = retitled(dataset, " (v2)")  # a re-import: the same items and counts, the titles corrected

    def killed(*args, **kwargs):  # the new items are written, the log is not
        raise Killed

    monkeypatch.setattr(store, "write_interactions_csv" if fmt == "csv" else "interaction_columns", killed)
    with pytest.raises(Killed):
        store.save_dataset(newer, tmp_path, fmt)
    monkeypatch.undo()
    # was: the new item table with the old log, loaded as if one import had written both
    with pytest.raises(DataError, match="did not finish .* run it again"):
        store.load_dataset(tmp_path)
    gc.collect()
    store.save_dataset(newer, tmp_path, fmt)  # imported again: whole
    assert store.load_dataset(tmp_path).catalog.text["title"] == newer.catalog.text["title"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".edgerec-writing", "dataset.json", f"interactions.{fmt}",
                                                          f"items.{fmt}"]  # no temporaries left


def test_a_synth_killed_half_way_is_refused(tmp_path, monkeypatch):
    from edgerec.data import SynthConfig, synth, write_synth
    from edgerec.data.store import load_dataset
    from edgerec.errors import DataError

    cfg = SynthConfig(users=60, items=200, events=1_500, seed=3)
    write_synth(cfg, tmp_path)
    real = synth.synthesize

    def killed_after_the_items(*args, **kwargs):
        for part in real(*args, **kwargs):
            yield part
            raise Killed  # after the first chunk: the items are in place, the log is not

    monkeypatch.setattr(synth, "synthesize", killed_after_the_items)
    with pytest.raises(Killed):
        write_synth(SynthConfig(users=60, items=200, events=1_500, seed=4), tmp_path)
    monkeypatch.undo()
    with pytest.raises(DataError, match="did not finish"):  # was: seed 4's items with seed 3's log, loaded
        load_dataset(tmp_path)


def test_two_imports_into_one_folder_at_once_the_second_is_refused(tiny, tmp_path):
    from edgerec.data import store
    from edgerec.errors import DataError

    held = store.begin_write(tmp_path)  # another process is importing into the folder
    with pytest.raises(DataError, match="another import or synth is writing into this folder"):
        store.save_dataset(tiny[0], tmp_path)
    held.release()
    store.save_dataset(tiny[0], tmp_path)
    assert len(store.load_dataset(tmp_path).interactions) == len(tiny[0].interactions)


# ------------------------------------------------------------------ content students


def test_a_content_student_save_killed_half_way_is_refused(tmp_path, monkeypatch):
    import safetensors.torch
    import torch

    from edgerec.compress import content_distill
    from edgerec.errors import ModelError
    from edgerec.models import checkpoint
    from edgerec.models.content import StaticContentStudent

    teachers = {}
    for name in ("old", "new"):  # two teachers, two tokenizers
        teachers[name] = tmp_path / name
        teachers[name].mkdir()
        (teachers[name] / "tokenizer.json").write_text(f'{{"teacher": "{name}"}}')
    torch.manual_seed(0)
    folder = tmp_path / "student"
    content_distill.save_student(folder, StaticContentStudent(50, 8, 16), teachers["old"], {})
    content_distill.load_student(folder)

    real_save = safetensors.torch.save_file

    def killed(tensors, path, *args, **kwargs):  # half of the new weights reach the disk
        real_save(tensors, path, *args, **kwargs)
        Path(path).write_bytes(Path(path).read_bytes()[:100])
        raise Killed

    monkeypatch.setattr(safetensors.torch, "save_file", killed)
    monkeypatch.setattr(checkpoint, "save_file", killed)
    with pytest.raises(Killed):
        content_distill.save_student(folder, StaticContentStudent(50, 8, 16), teachers["new"], {})
    monkeypatch.undo()
    # was: a SafetensorError from the torn weights; now the old weights stand beside the new tokenizer: refused
    with pytest.raises(ModelError, match="come from different saves"):
        content_distill.load_student(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{")  # damaged
    with pytest.raises(ModelError, match="not a readable content student checkpoint"):  # was: SafetensorError
        content_distill.load_student(folder)


def test_a_torn_scorer_file_is_a_model_error(tmp_path):
    from edgerec.errors import ModelError
    from edgerec.models.scorer import SCORER_FILE, load_scorer

    (tmp_path / "scorer").mkdir()
    (tmp_path / "scorer" / SCORER_FILE).write_text('{"kind": "linear-scorer", "vers')  # what an in-place save left
    with pytest.raises(ModelError, match=f"^scorer/{SCORER_FILE} cannot be read .JSONDecodeError.; train the scorer "
                                         "again"):  # was: the JSONDecodeError itself
        load_scorer(tmp_path / "scorer")


# ------------------------------------------------------------------ the demo's record


def test_a_demo_killed_while_writing_its_report_resumes_with_the_steps_done(tmp_path, monkeypatch):
    from dataclasses import dataclass

    from edgerec.pipeline import demo
    from edgerec.studies.base import StudyResult

    @dataclass
    class Step:  # a study that only records its name
        name: str

        def run(self, progress):
            return StudyResult(self.name, {"step": self.name})

    monkeypatch.setattr(demo, "demo_studies", lambda cfg: [Step("one"), Step("two"), Step("three")])
    cfg = demo.DemoConfig(out=tmp_path / "demo", synth=None, transfer_world=None)
    real_text, real_bytes, writes = Path.write_text, Path.write_bytes, []

    def torn(real):
        def write(path, data, *args, **kwargs):
            if "report.json" in path.name:
                writes.append(path.name)
                if len(writes) == 2:  # the record after step two: half of it reaches the disk, then the kill
                    real(path, data[: len(data) // 2], *args, **kwargs)
                    raise Killed
            return real(path, data, *args, **kwargs)
        return write

    monkeypatch.setattr(Path, "write_text", torn(real_text))
    monkeypatch.setattr(Path, "write_bytes", torn(real_bytes))
    with pytest.raises(Killed):
        demo.run_demo(cfg, lambda what, values: None)
    monkeypatch.setattr(Path, "write_text", real_text)
    monkeypatch.setattr(Path, "write_bytes", real_bytes)
    steps = []
    # was: a torn report.json, so --resume started over and refused the folder ("holds no earlier demo run")
    results = demo.run_demo(cfg, lambda what, values: None, lambda name, i, n: steps.append(name), resume=True)
    assert steps == ["two", "three"] and results["one"] == {"step": "one"}
    assert sorted(p.name for p in cfg.out.iterdir()) == ["report.json"]
