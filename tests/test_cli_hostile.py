"""Device commands given missing, garbage or hostile input: a non-zero exit and a one-line error,
never a traceback, never a file created by a command that only reads."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.runtime.history import HistoryStore

GOLDEN = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"


def run(args: list[str]):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0, (args, result.output)
    assert isinstance(result.exception, SystemExit), (args, result.exception)  # not an escaped exception
    assert "Traceback" not in result.output
    message = [line for line in result.output.splitlines() if line.strip()]
    assert message and message[-1].startswith("Error:"), (args, result.output)
    return result


@pytest.fixture
def files(tmp_path):
    garbage_dir = tmp_path / "garbage-bundle"
    garbage_dir.mkdir()
    (garbage_dir / "manifest.json").write_text("{not json")
    garbage_file = tmp_path / "garbage.edgerec"
    garbage_file.write_bytes(b"\x00" * 3000)
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (x)")
    conn.close()
    text = tmp_path / "text.db"
    text.write_text("hello" * 100)
    good = tmp_path / "good.db"
    HistoryStore(good).record("ann", "i1", "play")
    return {"garbage_dir": garbage_dir, "garbage_file": garbage_file, "missing": tmp_path / "missing",
            "empty": empty, "foreign": foreign, "text": text, "good": good, "tmp": tmp_path}


def commands(bundle: str, history: str, out: str) -> list[list[str]]:
    return [
        ["recommend", bundle, "--user", "ann", "--history", history],
        ["record", bundle, "--user", "ann", "--item", "i00001", "--history", history],
        ["history", "show", "ann", "--history", history],
        ["history", "export", "ann", "--history", history, "--out", out],
        ["history", "forget", "ann", "--history", history, "--yes"],
        ["history", "backup", "--history", history, "--out", out],
        ["history", "recover", "--history", history, "--out", out],
    ]


@pytest.mark.parametrize("bundle", ["garbage_dir", "garbage_file", "missing"])
def test_every_device_command_refuses_a_bad_bundle(files, bundle):
    for args in commands(str(files[bundle]), str(files["tmp"] / "new.db"), str(files["tmp"] / "o.json"))[:2]:
        run(args)


@pytest.mark.parametrize("history", ["empty", "foreign", "text", "missing"])
def test_every_device_command_refuses_a_bad_history(files, history):
    path = files[history]
    before = path.read_bytes() if path.exists() else None
    for args in commands(str(GOLDEN), str(path), str(files["tmp"] / "o.out")):
        if history == "missing" and args[0] in ("recommend", "record"):
            continue  # these create a new history on purpose
        run(args)
        assert (path.read_bytes() if path.exists() else None) == before  # never created nor adopted
        assert not (files["tmp"] / "o.out").exists()


@pytest.mark.parametrize("command", [["history", "show", "ann"], ["explain", str(GOLDEN), "--user", "ann"]])
def test_a_typo_in_a_reading_command_does_not_create_the_file(tmp_path, command):
    result = run([*command, "--history", str(tmp_path / "typo.db")])
    assert "no history database 'typo.db'" in result.output and not (tmp_path / "typo.db").exists()


def test_negative_last_and_nan_diversity_are_refused(files):
    run(["history", "show", "ann", "--history", str(files["good"]), "--last", "-1"])
    result = run(["recommend", str(GOLDEN), "--user", "ann", "--history", str(files["good"]), "--diversity", "nan"])
    assert "Policy.diversity" in result.output
    run(["recommend", str(GOLDEN), "--user", "ann", "--history", str(files["good"]), "--k", "0"])


def test_backup_and_recover_commands_work_on_a_good_history(files):
    runner = CliRunner()
    copy, fresh = files["tmp"] / "copy.db", files["tmp"] / "fresh.db"
    result = runner.invoke(cli, ["history", "backup", "--history", str(files["good"]), "--out", str(copy)])
    assert result.exit_code == 0, result.output
    assert HistoryStore(copy).count("ann") == 1
    result = runner.invoke(cli, ["history", "recover", "--history", str(copy), "--out", str(fresh)])
    assert result.exit_code == 0 and "recovered 1 events" in result.output
    assert [e.item for e in HistoryStore(fresh).events("ann")] == ["i1"]


def test_an_output_path_that_cannot_be_written_is_a_one_line_error(files):
    blocker = files["tmp"] / "plain-file"
    blocker.write_text("x")
    result = run(["recommend", str(GOLDEN), "--user", "ann", "--history", str(files["good"]),
                  "--json", str(blocker / "out.json")])
    assert "Error: File exists" in result.output and "check the path" in result.output
    result = run(["data", "synth", "--out", str(blocker / "world"), "--users", "10", "--items", "60",
                  "--events", "100"])
    assert "Error: " in result.output and "check the path" in result.output


def test_an_output_that_names_the_history_or_another_database_is_refused(files):
    """`history export --out h.db --history h.db` replaced the whole history with one user's JSON."""
    good = files["good"]
    for args in (["history", "export", "ann", "--history", str(good), "--out", str(good)],
                 ["recommend", str(GOLDEN), "--user", "ann", "--history", str(good), "--json", str(good)],
                 ["recommend", str(GOLDEN), "--user", "ann", "--history", str(good), "--json", f"{good}-wal"]):
        assert "would destroy" in run(args).output  # the history by name, or as a database
    other = files["tmp"] / "other.db"
    store = HistoryStore(other)
    store.record("bob", "i1", "play")
    store.close()
    kept = other.read_bytes()
    result = run(["recommend", str(GOLDEN), "--user", "ann", "--history", str(good), "--json", str(other)])
    assert "other.db is an SQLite database; writing over it would destroy it" in result.output
    assert other.read_bytes() == kept
    assert [e["item"] for e in HistoryStore(good).export("ann")["events"]] == ["i1"]


@pytest.mark.parametrize("count", ["0", "-5"])
def test_scorer_train_refuses_fewer_than_one_event_per_user(tmp_path, count):
    """It trained on nothing and then said no consumed item came with 9 unseen items."""
    result = run(["scorer", "train", "--data", str(tmp_path), "--retrieval", str(tmp_path), "--out",
                  str(tmp_path / "s"), f"--events-per-user={count}"])
    assert f"Invalid value for '--events-per-user': {count} is not in the range x>=1" in result.output


@pytest.mark.parametrize("args, option", [
    (["study", "replay", "{b}", "--data", "{d}", "--users", "0"], "--users"),
    (["study", "replay", "{b}", "--data", "{d}", "--users", "-3"], "--users"),
    (["report", "fairness", "{b}", "--data", "{d}", "--users", "0"], "--users"),
    (["experiment", "aa", "{b}", "--data", "{d}", "--experiments", "0"], "--experiments"),
    (["experiment", "ab", "{b}", "{b}", "--data", "{d}", "--users", "1"], "--users"),  # the simulator needs 2
    (["experiment", "ab", "{b}", "{b}", "--data", "{d}", "--days", "0"], "--days"),
    (["data", "synth", "--out", "{d}/w", "--items", "49"], "--items"),  # help showed no floor; synth needs 50
    (["data", "synth", "--out", "{d}/w", "--days", "29"], "--days"),
    (["explain", "{b}", "--user", "u", "--k", "0"], "--k"),  # the runtime's range, shown in --help
    (["content", "tag", "{b}", "--text", "a heist", "--k", "10001"], "--k"),
    (["experiment", "ope", "{b}", "--data", "{d}", "--policy-b", "{{}}", "--seeds", "0"], "--seeds"),
    (["study", "dp-popularity", "--data", "{d}", "--epsilon", "0"], "--epsilon"),
    (["study", "dp-popularity", "--data", "{d}", "--epsilon", "nan"], "--epsilon"),
    (["study", "dp-popularity", "--data", "{d}", "--zipf", "nan"], "--zipf"),
    (["study", "dp-popularity", "--data", "{d}", "--devices", "0"], "--devices"),
    (["export", "--model", "{d}", "--data", "{d}", "--out", "{d}/x", "--min-agreement", "nan"], "--min-agreement"),
    (["export", "--model", "{d}", "--data", "{d}", "--out", "{d}/x", "--min-agreement", "-1"], "--min-agreement"),
    (["distill", "--teacher", "{d}", "--data", "{d}", "--out", "{d}/x", "--align", "nan"], "--align"),
    (["distill", "--teacher", "{d}", "--data", "{d}", "--out", "{d}/x", "--kd-temperature", "nan"], "--kd-temperature"),
    (["distill", "--teacher", "{d}", "--data", "{d}", "--out", "{d}/x", "--top-k", "0"], "--top-k"),
    (["content", "distill", "--data", "{d}", "--out", "{d}/x", "--epochs", "0"], "--epochs"),
    (["bench", "{b}", "--plot", "{d}/x.txt"], "--plot"),
    (["report", "fairness", "{b}", "--data", "{d}", "--plot", "{d}/x.json"], "--plot"),
    (["domains", "bridge", "{b}", "{b}", "--data", "{d}", "--out", "{d}/x", "--ridge", "-1"], "--ridge"),
    (["content", "embed", "--student", "{d}", "--data", "{d}", "--out", "{d}/e4.txt"], "--out"),  # wrote e4.txt.npy
    (["content", "audio-features", "--audio-dir", "{d}", "--data", "{d}", "--out", "{d}/a"], "--out"),
])
def test_counts_and_numbers_out_of_range_are_refused_before_any_work(tmp_path, args, option):
    """Each of these ran and then failed with a traceback (ZeroDivisionError, IndexError, matplotlib's
    ValueError), or exited 0 with an empty or impossible result, or turned a check off (NaN)."""
    args = [a.format(b=GOLDEN, d=tmp_path) for a in args]
    assert f"Invalid value for '{option}'" in run(args).output


def test_outputs_never_replace_a_file_of_a_bundle_a_data_folder_or_a_checkpoint(tmp_path):
    """`evaluate --json d/items.csv`, `bench --json b/manifest.json` and `pack --out b/manifest.json` each said
    "wrote" and left a folder that no longer opened."""
    import shutil

    from edgerec.cli.output import refuse_writing_over_ours

    bundle = Path(shutil.copytree(GOLDEN, tmp_path / "bundle"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "dataset.json").write_text("{}")
    (data / "interactions.csv").write_text("user_id,item_id,timestamp\n")
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    (ckpt / "model.safetensors").write_bytes(b"x")
    for target, kind in ((bundle / "manifest.json", "a bundle"), (data / "interactions.csv", "a data folder"),
                         (ckpt / "config.json", "a checkpoint")):
        with pytest.raises(click.UsageError, match=f"is a file of {kind}"):
            refuse_writing_over_ours(target)
    refuse_writing_over_ours(bundle / "new.json")  # a new file beside them is the user's choice
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "manifest.json").write_text('{"name": "a web app"}')  # not ours
    refuse_writing_over_ours(tmp_path / "mine" / "manifest.json")
    before = (bundle / "manifest.json").read_bytes()
    assert "inside the bundle's own folder" in run(["pack", str(bundle), "--out", str(bundle / "manifest.json")]).output
    assert (bundle / "manifest.json").read_bytes() == before


def test_a_json_output_over_a_bundle_file_is_refused_as_the_options_are_read(tmp_path, monkeypatch):
    """`bench --json bundle/manifest.json` ran the whole benchmark and only then refused to write."""
    import shutil

    from edgerec.device_tests import bench as bench_module

    bundle = Path(shutil.copytree(GOLDEN, tmp_path / "bundle"))
    monkeypatch.setattr(bench_module, "run_bench", lambda *a, **k: pytest.fail("the benchmark ran"))
    result = run(["bench", str(bundle), "--json", str(bundle / "manifest.json")])
    assert result.exit_code == 2 and "is a file of a bundle" in result.output


def test_an_out_that_is_an_input_or_another_kind_of_model_is_refused_before_training(tmp_path):
    """`distill --out` the teacher replaced it; `content distill --out` a recommender mixed the two."""
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "config.json").write_text('{"format": "edgerec-checkpoint"}')
    data = tmp_path / "data"
    data.mkdir()
    result = run(["distill", "--teacher", str(teacher), "--data", str(data), "--out", str(teacher)])
    assert "--out is the --teacher folder" in result.output
    result = run(["content", "distill", "--data", str(data), "--out", str(teacher)])
    assert "holds edgerec-checkpoint, not an edgerec-content-student" in result.output
    assert "--out is the --data folder" in run(["train", "--data", str(data), "--out", str(data)]).output


def test_tune_refuses_policy_options_for_a_model_study(tmp_path):
    """--model, --max-ndcg-loss and --margin-z were ignored without a word under the default --target model."""
    result = run(["tune", "--data", str(tmp_path), "--out", str(tmp_path / "t"), "--margin-z", "3",
                  "--max-ndcg-loss", "0.5"])
    assert "--max-ndcg-loss, --margin-z tune a policy: pass --target policy with them" in result.output
    assert "Invalid value for '--minutes'" in run(["tune", "--data", str(tmp_path), "--out", str(tmp_path / "t"),
                                                   "--minutes", "nan"]).output
