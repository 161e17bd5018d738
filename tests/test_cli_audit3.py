"""Third CLI audit: outputs that replaced a history or a bundle's file, options that wiped data before their
check, bounds that ended in tracebacks (--k, --seed, --kd-weight), errors that named a hidden temporary, and
refused device commands that left an empty history behind."""

from __future__ import annotations

import csv
import errno
import math
import shutil
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data import SynthConfig, write_synth
from edgerec.runtime.history import HistoryStore

GOLDEN = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"


def invoke(args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def refused(args):
    """A non-zero exit with an `Error:` line, never a traceback."""
    result = invoke(args)
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A tiny data folder (60 items); tests that change it copy it first."""
    out = tmp_path_factory.mktemp("audit3") / "data"
    write_synth(SynthConfig(users=20, items=60, events=300, seed=3), out)
    return out


@pytest.fixture
def bundle(tmp_path):
    return Path(shutil.copytree(GOLDEN, tmp_path / "bundle"))


# 1 ------------------------------------------------------------------ pack --out over a file of ours


def test_pack_refuses_to_write_over_a_history_a_checkpoint_or_a_data_file(tmp_path, bundle, data_dir):
    history = tmp_path / "alice.db"
    store = HistoryStore(history)
    store.record("alice", "i00", "play")
    store.close()  # its bytes settle: the comparison below is of what pack did
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    (ckpt / "model.safetensors").write_bytes(b"weights")
    data = Path(shutil.copytree(data_dir, tmp_path / "data"))
    for target in (history, ckpt / "model.safetensors", data / "interactions.csv"):
        before = target.read_bytes()
        assert "cannot pack the bundle" in refused(["pack", bundle, "--out", target])
        assert target.read_bytes() == before
    assert HistoryStore(history).count("alice") == 1
    assert invoke(["pack", bundle, "--out", tmp_path / "ok.edgerec"]).exit_code == 0  # a plain file is fine


def test_the_library_pack_refuses_a_history_too(tmp_path, bundle):
    from edgerec.errors import BundleError
    from edgerec.runtime.pack import pack

    history = tmp_path / "h.db"
    HistoryStore(history).record("a", "i00", "play")
    with pytest.raises(BundleError, match="SQLite database"):
        pack(bundle, history)


# 2 ------------------------------------------------------------------ .npy outputs of `content`


def test_npy_outputs_never_replace_a_bundle_file(tmp_path, bundle, data_dir):
    (tmp_path / "audio").mkdir()
    target = bundle / "items" / "embeddings.npy"
    before = target.read_bytes()
    output = refused(["content", "audio-features", "--audio-dir", tmp_path / "audio", "--data", data_dir,
                      "--out", target])
    assert "is a file of a bundle" in output and target.read_bytes() == before


def test_an_npy_output_is_whole_or_absent(tmp_path, data_dir, monkeypatch):
    from edgerec.runtime import atomic

    (tmp_path / "audio").mkdir()

    def fail(self, files=()):
        self.discard()
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(atomic.Temporary, "publish", fail)
    refused(["content", "audio-features", "--audio-dir", tmp_path / "audio", "--data", data_dir,
             "--out", tmp_path / "audio.npy"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio"]  # no part file, no temporary


def test_embed_gives_items_without_text_zero_rows(tmp_path, data_dir, monkeypatch):
    """Textless items all got the empty string's vector, which training took for one shared real text."""
    from edgerec.compress import content_distill
    from edgerec.models import content

    data = Path(shutil.copytree(data_dir, tmp_path / "data"))
    with open(data / "items.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows[::3]:
        row["title"] = row["description"] = row["tags"] = ""
    with open(data / "items.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    monkeypatch.setattr(content_distill, "load_student", lambda folder: (None, {}))
    monkeypatch.setattr(content, "load_tokenizer", lambda folder, length: None)
    monkeypatch.setattr(content, "tokenize", lambda tokenizer, texts: (texts, None))
    monkeypatch.setattr(content_distill, "embed", lambda model, ids, mask: np.ones((len(ids), 4), np.float32))
    (tmp_path / "student").mkdir()
    result = invoke(["content", "embed", "--student", tmp_path / "student", "--data", data, "--out",
                     tmp_path / "text.npy"])
    assert result.exit_code == 0, result.output
    vectors = np.load(tmp_path / "text.npy")
    textless = np.zeros(len(rows), bool)
    textless[::3] = True
    assert vectors.shape == (len(rows), 4)
    assert not vectors[textless].any() and vectors[~textless].all()
    assert f"{textless.sum()} items without text get zeros" in result.output

    from edgerec.data.tables import read_vectors

    # what `train --content text=...` reads: zero rows are accepted
    assert read_vectors(tmp_path / "text.npy", "--content text").shape == (len(rows), 4)


# 3 ------------------------------------------------------------------ data synth: check, then write


def test_synth_with_bad_options_leaves_existing_data_alone(tmp_path, data_dir):
    data = Path(shutil.copytree(data_dir, tmp_path / "data"))
    before = {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
    # fewer events than users: the generator's own check, past the options' ranges
    assert "events >= users" in refused(["data", "synth", "--out", data, "--users", "10", "--events", "5"])
    assert {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()} == before
    assert invoke(["data", "stats", data]).exit_code == 0
    refused(["data", "synth", "--out", tmp_path / "new", "--users", "10", "--events", "5"])
    assert not (tmp_path / "new").exists()


# 4 ------------------------------------------------------------------ evaluate --k


def test_evaluate_refuses_k_past_the_catalog_and_the_runtimes_limit(data_dir):
    output = refused(["evaluate", "--data", data_dir, "--model", "popular", "--k", "61", "--max-users", "5"])
    assert "more than the 60 items of the catalog" in output
    assert "Invalid value for '--k'" in refused(["evaluate", "--data", data_dir, "--model", "popular",
                                                 "--k", "100000"])
    result = invoke(["evaluate", "--data", data_dir, "--model", "popular", "--k", "60", "--max-users", "5"])
    assert result.exit_code == 0, result.output


# 5 ------------------------------------------------------------------ --seed


def _commands(group: click.Group, path=()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_seed_option_takes_only_what_numpy_and_torch_take():
    for path, command in _commands(cli):
        for param in command.params:
            if "--seed" in getattr(param, "opts", ()):
                assert isinstance(param.type, click.IntRange), path
                assert (param.type.min, param.type.max) == (0, 2**32 - 1), path


@pytest.mark.parametrize("args", [
    ["train", "--data", "{d}", "--out", "{t}/t", "--seed", "-1"],
    ["distill", "--teacher", "{d}", "--data", "{d}", "--out", "{t}/d", "--seed", "-1"],
    ["data", "synth", "--out", "{t}/s", "--seed", "-1"],
    ["tune", "--data", "{d}", "--out", "{t}/u", "--seed", "-1"],
    ["study", "replay", "{b}", "--data", "{d}", "--seed", "-1"],
    ["study", "newcomers", "{b}", "--data", "{d}", "--seed", "-1"],
    ["study", "coldstart", "--data", "{d}", "--out", "{t}/c", "--prepare", "--seed", "-1"],
])
def test_a_negative_seed_is_refused_as_the_options_are_read(tmp_path, data_dir, args):
    args = [a.format(d=data_dir, t=tmp_path, b=GOLDEN) for a in args]
    assert "Invalid value for '--seed'" in refused(args)


# 6 ------------------------------------------------------------------ the top-level example


def test_the_top_level_example_recommends_from_the_folder_the_demo_writes():
    text = invoke(["--help"]).output
    assert "edgerec demo --quick --out runs/demo-quick" in text
    assert "edgerec recommend runs/demo-quick/bundle" in text


# 7 ------------------------------------------------------------------ --kd-weight


def test_a_nan_kd_weight_is_refused(tmp_path, data_dir):
    from edgerec.compress.distill import DistillConfig
    from edgerec.errors import ConfigError

    assert "Invalid value for '--kd-weight'" in refused(
        ["distill", "--teacher", data_dir, "--data", data_dir, "--out", tmp_path / "d", "--kd-weight", "nan"])
    for weight in (math.nan, math.inf):
        with pytest.raises(ConfigError, match="weight >= 0"):  # NaN passed `weight < 0`
            DistillConfig(weight=weight).validate()
    DistillConfig(weight=0.0).validate()


# 8 ------------------------------------------------------------------ errors name the output, not a temporary


def _refuse_rename(monkeypatch):
    from edgerec.runtime import atomic

    def fail(self, files=()):
        self.discard()
        raise PermissionError(errno.EPERM, "Operation not permitted", str(self.path))

    monkeypatch.setattr(atomic.Temporary, "publish", fail)


def test_write_file_errors_name_the_target(tmp_path, monkeypatch):
    from edgerec.runtime.atomic import write_file

    _refuse_rename(monkeypatch)
    with pytest.raises(PermissionError) as error:
        write_file(tmp_path / "alice.json", "{}")
    assert error.value.filename == str(tmp_path / "alice.json")


def test_a_failed_write_names_the_output_the_user_gave(tmp_path, data_dir, monkeypatch):
    _refuse_rename(monkeypatch)
    output = refused(["data", "stats", data_dir, "--json", tmp_path / "stats.json"])
    assert "Operation not permitted (stats.json)" in output and ".tmp" not in output


def test_the_error_handler_names_a_temporary_by_its_target():
    from edgerec.cli.main import _shown_name

    assert _shown_name("/a/b/.alice.json.8513.b4b36295.tmp") == "alice.json"
    assert _shown_name("/a/b/.bundle.edgerec.12.0123abcd.packing") == "bundle.edgerec"
    assert _shown_name("/a/b/alice.json") == "alice.json"


# 9 ------------------------------------------------------------------ refused device commands create no history


def test_refused_device_commands_leave_no_new_history(tmp_path):
    refused(["recommend", GOLDEN, "--user", "alice", "--history", tmp_path / "typo.db", "--k", "0"])
    refused(["record", GOLDEN, "--user", "alice", "--item", "nope", "--history", tmp_path / "typo2.db"])
    refused(["recommend", GOLDEN, "--user", "alice", "--history", tmp_path / "typo3.db", "--policy",
             tmp_path / "missing.json"])
    assert "no history database 'nothere.db'" in refused(
        ["domains", "recommend", GOLDEN, GOLDEN, "--user", "alice", "--history", tmp_path / "nothere.db"])
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_failed_call_keeps_a_history_that_existed_and_a_good_call_creates_one(tmp_path):
    history = tmp_path / "h.db"
    result = invoke(["record", GOLDEN, "--user", "alice", "--item", "i00", "--history", history])
    assert result.exit_code == 0, result.output
    refused(["record", GOLDEN, "--user", "alice", "--item", "nope", "--history", history])
    assert HistoryStore(history).count("alice") == 1


# extras -------------------------------------------------------------- `--json -`, `domains split --out DATA`


def test_json_dash_is_refused_instead_of_writing_a_file_named_dash(tmp_path, data_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "not the standard output" in refused(["data", "stats", data_dir, "--json", "-"])
    assert not (tmp_path / "-").exists()


def test_domains_split_refuses_an_out_inside_the_data_or_over_it(tmp_path, data_dir):
    data = Path(shutil.copytree(data_dir, tmp_path / "data"))
    before = sorted(p.name for p in data.iterdir())
    assert "data folder being split" in refused(["domains", "split", data, "--out", data])
    assert "data folder being split" in refused(["domains", "split", data, "--out", data / "parts"])
    assert sorted(p.name for p in data.iterdir()) == before
    video = Path(shutil.copytree(data_dir, tmp_path / "video"))
    assert "over the data folder being split" in refused(["domains", "split", video, "--out", tmp_path])


def test_domains_split_refuses_a_domain_folder_holding_the_users_own_files(tmp_path, data_dir):
    """A domain's folder under --out holding the user's own interactions.csv was written over."""
    out = tmp_path / "parts"
    (out / "video").mkdir(parents=True)
    (out / "video" / "interactions.csv").write_text("user,item\nalice,keep-me\n")
    assert "interactions.csv" in refused(["domains", "split", data_dir, "--out", out])
    assert (out / "video" / "interactions.csv").read_text() == "user,item\nalice,keep-me\n"
    assert not (out / "audio").exists()  # nothing written before the refusal
