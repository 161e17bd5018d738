"""What the privacy audit of 2026-12-04 (docs/privacy.md) found, each pinned: error messages name a bad input
file by its base name, never the folders above it (they can name a person: /home/alice/...), and echo no user
id of the data (the full path stays on the exception); reports show a made-up user, never a replayed one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgerec.errors import BundleError, DataError

MARK = "HOSTPATH_MARKER_q7"
USER = "PXU9100196"


@pytest.fixture
def folder(tmp_path):
    where = tmp_path / MARK / "logs"
    where.mkdir(parents=True)
    return where


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _csv(folder, text):
    from edgerec.data import import_dataset

    return lambda: import_dataset("csv", _write(folder / "plays.csv", text))


def _movielens(folder, text=None):
    from edgerec.data import load_movielens

    if text is not None:
        _write(folder / "u.data", text)
        _write(folder / "u.item", "10|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n")
    return lambda: load_movielens("ml-100k", folder)


def _missing(folder):
    from edgerec.data import import_dataset

    return lambda: import_dataset("csv", folder / "nothere.csv")


CASES = {  # case: (the call that fails, how the message must begin)
    "bad time": (lambda f: _csv(f, f"user_id,item_id,timestamp\n{USER},1,100\n{USER},2,yesterday\n"), "plays.csv:3:"),
    "few fields": (lambda f: _csv(f, f"user_id,item_id,timestamp\n{USER},1,100\n{USER},2\n"), "plays.csv:3:"),
    "empty file": (lambda f: _csv(f, ""), "plays.csv:"),
    "bad rating": (lambda f: _movielens(f, f"{USER[3:]}\t10\tfive\t881250949\n"), "u.data:1:"),
    "no MovieLens files": (_movielens, "logs:"),
    "missing file": (_missing, "nothere.csv:"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_data_errors_name_the_file_not_its_folders(folder, case):
    make, named = CASES[case]
    call = make(folder)
    with pytest.raises(DataError) as err:
        call()
    text = str(err.value)
    assert text.startswith(named), text
    assert MARK not in text and "/" not in text.split(":")[0] and USER not in text, text
    assert MARK in err.value.path  # a program still gets the path it passed


def test_vectors_and_a_cut_data_folder_are_named_by_base_name(folder):
    from edgerec.data import SynthConfig, load_dataset, save_dataset, synth_dataset
    from edgerec.data.tables import read_vectors

    _write(folder / "text.npy", "not numpy")
    with pytest.raises(DataError) as err:
        read_vectors(folder / "text.npy", "--content text")
    assert str(err.value).startswith("text.npy: ") and MARK not in str(err.value)
    save_dataset(synth_dataset(SynthConfig(users=20, items=60, events=300, seed=1)), folder / "data")
    (folder / "data" / "dataset.json").write_text("{not json")
    with pytest.raises(DataError) as err:
        load_dataset(folder / "data")
    assert str(err.value).startswith("dataset.json: ") and MARK not in str(err.value)


def test_a_damaged_bundle_is_named_without_its_folders(tmp_path):
    """The device reads bundles from app folders (/data/user/0/<app>/...): a damaged one is named by its files."""
    import shutil
    from pathlib import Path

    from edgerec.runtime.bundle import Bundle

    golden = Path(__file__).parent.parent / "spec" / "golden" / "bundle"
    bundle = tmp_path / MARK / "bundle"
    shutil.copytree(golden, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    name = next(iter(manifest["files"]))
    (bundle / name).unlink()
    with pytest.raises(BundleError) as err:
        Bundle.open(bundle)
    assert name in str(err.value) and MARK not in str(err.value) and str(tmp_path) not in str(err.value)
    (bundle / "manifest.json").write_text("{cut")
    with pytest.raises(BundleError) as err:
        Bundle.open(bundle)
    assert "manifest.json" in str(err.value) and MARK not in str(err.value)


def test_a_scorer_for_another_model_is_named_without_the_stored_absolute_path(tmp_path):
    """The scorer records its retrieval model's path relative to its own folder; the refusal names folders."""
    from edgerec.errors import ModelError
    from edgerec.export.ranking import add_scorer
    from edgerec.models.scorer import LinearScorer, save_scorer

    scorer = LinearScorer(("a",), np.ones(1), np.zeros(1), np.ones(1), 0.0)
    folder = save_scorer(tmp_path / MARK / "scorer", scorer, tmp_path / MARK / "model-a", {})
    with pytest.raises(ModelError, match="trained for model-a, not for model-b") as err:
        add_scorer(None, folder, tmp_path / MARK / "model-b")
    assert MARK not in str(err.value) and str(tmp_path) not in str(err.value)
    written = (folder / "scorer.json").read_text()
    assert str(tmp_path) not in written and '"retrieval": "../model-a"' in written  # relative: no host path
    moved = tmp_path / "moved"  # the run folder moved whole still finds its retrieval model
    (tmp_path / MARK).rename(moved)
    from edgerec.models.scorer import load_scorer

    assert load_scorer(moved / "scorer")[1]["retrieval"] == str((moved / "model-a").resolve())


def test_checkpoint_and_prior_refusals_name_folders_not_paths(folder):
    from edgerec.errors import ConfigError, ModelError
    from edgerec.export.popularity import PopularityPrior
    from edgerec.models.checkpoint import load_checkpoint

    with pytest.raises(ModelError, match="^logs is not an edgerec checkpoint") as err:
        load_checkpoint(folder)
    assert MARK not in str(err.value)
    _write(folder / "config.json", "{cut")
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError, match="^config.json in logs is damaged \\(not JSON") as err:
        load_checkpoint(folder)
    assert MARK not in str(err.value)
    for text, message in (("{cut", "^popularity file prior.json cannot be read"), ("{}", "^prior.json is not a popularity"),
                          ('{"kind": "edgerec-popularity"}', "^prior.json: item_ids and counts")):
        with pytest.raises(ConfigError, match=message) as err:
            PopularityPrior.read(_write(folder / "prior.json", text))
        assert MARK not in str(err.value)


def test_the_explanation_report_shows_a_made_up_user_not_a_replayed_one(tmp_path):
    """The demo's explanation (report.json, explain.json) once listed the first replayed user's items with
    "because you watched <their item>": part of a real history in a report. Now a made-up user's."""
    from pathlib import Path

    from edgerec.runtime import Recommender
    from edgerec.studies.explain import ExplainStudy

    bundle = Path(__file__).parent.parent / "spec" / "golden" / "ranked"
    with Recommender.open(bundle, history=tmp_path / MARK / "history.db") as rec:
        rows = np.argsort(rec.catalog.numeric_column("popularity", np.arange(rec.catalog.base_count)))[:4]
        private = [rec.catalog.item_id(int(r)) for r in rows]  # the least popular: never the made-up plays
        for item in private:
            rec.record(USER, item, "play")
        titles = {rec.catalog.item_id(int(r)): rec.catalog.title(int(r)) for r in range(rec.catalog.base_count)}
    record = ExplainStudy(bundle).run().record
    assert record["items"] and set(record["played"]).isdisjoint(private)
    text = json.dumps(record)
    assert USER not in text and MARK not in text
    reasons = " ".join(i["why"] for i in record["items"])
    assert not any(f'"{titles[item]}"' in reasons for item in private)


# ------------------------------------------------------------- the audit of audP (2026-12-04, note 38)

@pytest.mark.parametrize("given, kept", [
    ("runs/CANARY_DIR/data", "data"),  # relative, typed in another folder: it does not exist where the export runs
    ("C:\\Users\\CANARY_USER\\data", "data"),  # a checkpoint trained on Windows, exported elsewhere
    ("C:/Users/Ana Ruiz/data", "data"),
    ("\\\\server\\CANARY_DIR\\logs", "logs"),  # a network share
    ("/home/CANARY_USER/ckpt/", "ckpt"),
    ("/Users/Ana Ruiz/CANARY_DIR/teacher", "teacher"),  # absolute with a space
    ("~/CANARY_DIR/data", "data"),
    ("trained on /home/CANARY_USER/logs (see ~/CANARY_DIR/notes).", "trained on logs (see notes)."),
    ("ckpt", "ckpt"), ("sampled", "sampled"), ("", ""),  # no separator: not a path
])
def test_model_card_strings_keep_only_the_last_component_of_any_path(given, kept):
    """The model card copies the checkpoint's training info, which stores the --data and --teacher paths as
    typed at training time. Paths relative to another folder (or of another machine) were kept whole: a
    bundle exported elsewhere carried 'runs/<folder>/data'. Now every path keeps its last component."""
    from edgerec.export.deidentify import scrub_paths

    card = scrub_paths({"training": {"data": given, "runs": [given, 3, None]}, "n": 1.5})
    assert card == {"training": {"data": kept, "runs": [kept, 3, None]}, "n": 1.5}


def test_a_sentence_with_a_slash_is_not_a_path_unless_it_exists(tmp_path, monkeypatch):
    from edgerec.export.deidentify import public_source, scrub_paths

    assert public_source({"source": "edgerec synthetic audio/video world"}) == "edgerec synthetic audio/video world"
    assert public_source({"source": "runs/CANARY_DIR/plays.csv"}) == "local files"
    assert public_source({"source": "C:\\logs\\plays.csv"}) == "local files"
    (tmp_path / "Ana Ruiz").mkdir()
    (tmp_path / "Ana Ruiz" / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    assert scrub_paths("Ana Ruiz/data") == "data"  # exists here: the whole string is a path
    assert scrub_paths("Ana Ruiz/logs") == "logs"  # does not, but reads as a path: its last part is one word
    assert scrub_paths("Ana Ruiz/my logs") == "Ana my logs"  # a last part of two words does not (the rule's gap)
    (tmp_path / "Ana Ruiz" / "my logs").mkdir()
    assert scrub_paths("Ana Ruiz/my logs") == "my logs"  # unless it exists here


def test_a_declared_space_copies_only_the_bundles_own_files(tmp_path):
    """`domains space` copied the whole bundle folder: a device history kept beside the bundle's files
    (history.db, with user ids and plays) and any other file went into the new bundle."""
    from edgerec.export.space import declare_space
    from edgerec.runtime import Recommender
    from edgerec.runtime.bundle import Bundle

    golden = Path(__file__).parent.parent / "spec" / "golden" / "bundle"
    source = shutil.copytree(golden, tmp_path / MARK / "bundle")
    with Recommender.open(source, history=source / "history.db") as rec:
        rec.record(USER, rec.catalog.item_id(0), "play")
    (source / "notes.txt").write_text(f"{USER} {tmp_path}")
    out = declare_space(source, tmp_path / "space", space_id="s1", domains=["audio", "video"]).root
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(["manifest.json",
                                                                                              *manifest["files"]])
    assert manifest["space"]["id"] == "s1" and Bundle.open(out).manifest.space
    for path in out.rglob("*"):
        if path.is_file():
            assert USER.encode() not in path.read_bytes() and MARK.encode() not in path.read_bytes()


def test_public_source_describes_the_data_never_its_file():
    from edgerec.export.deidentify import public_source

    assert public_source({}) == "local files" and public_source({"source": "  "}) == "local files"
    assert public_source({"format": "csv"}) == "local csv files"
    assert public_source({"source": " MovieLens 100K "}) == "MovieLens 100K"  # a description without a separator
    assert public_source({"source": "synthetic", "format": "ml-100k"}) == "local ml-100k files"  # an import's file


def test_path_rules_at_their_edges(tmp_path, monkeypatch):
    from edgerec.export.deidentify import public_source, scrub_paths

    monkeypatch.chdir(tmp_path)
    assert scrub_paths("/home/ana/logs\nsee other/dir") == "logs\nsee dir"  # lines kept: each path word cut
    assert scrub_paths("~/Ana Ruiz/data") == "data" and scrub_paths("/home/ana/BOX") == "BOX"
    (tmp_path / "Ana Ruiz\\data").mkdir()  # a name holding a backslash (Windows-style) that exists here
    assert scrub_paths("Ana Ruiz\\data") == "data" and scrub_paths("Ana Ruiz\\logs") == "logs"
    (tmp_path / "world v2").mkdir()
    assert public_source({"source": "world v2"}) == "world v2"  # no separator: a description even if it exists
    at_limit = "/" + "a b/" * 1023 + "end"  # 4096 characters: one path, however many spaces
    assert len(at_limit) == 4096 and scrub_paths(at_limit) == "end"
    beyond = at_limit + "s"  # longer than a path can be: cut word by word
    assert scrub_paths(beyond) == "a " * 1023 + "ends"


@pytest.mark.parametrize("given, kept", [
    ("Ana Ruiz/data", "data"), ("runs/Ana Ruiz/ckpt/", "ckpt"), ("Ana Ruiz\\CANARY_DIR\\teacher.pt", "teacher.pt"),
    ("Ana Ruiz/runs 2/data", "data"),  # spaces in any folder but the last
    # sentences: a part that starts or ends with a space, or a last part of several words, is not a path;
    # only their words holding a separator are cut
    ("audio/video world", "video world"), ("and/or so", "or so"), ("see the docs/ for more", "see the docs for more"),
    ("trained on runs/CANARY_DIR/data, twice", "trained on data, twice"),
    ("trained on runs/CANARY_DIR/data", "data"),  # reads as a path whose first folder is "trained on runs": cut
])
def test_a_relative_path_with_spaces_keeps_only_its_last_component(given, kept, tmp_path, monkeypatch):
    """A relative path holding a space that did not exist where the export ran was cut word by word:
    "Ana Ruiz/data" kept "Ana". A text that reads as a relative path now keeps its last component."""
    from edgerec.export.deidentify import public_source, scrub_paths

    monkeypatch.chdir(tmp_path)  # none of these exist here
    assert scrub_paths(given) == kept and "CANARY" not in kept and "Ana" not in kept
    assert public_source({"source": "edgerec synthetic audio/video world"}) == "edgerec synthetic audio/video world"
    assert public_source({"source": "Ana Ruiz/plays"}) == "local files"


def _genre_pairs(rows, genres) -> float:
    """Share of the pairs of items in one row that share a genre."""
    same = total = 0
    for row in rows:
        g = [genres[r - 1] for r in row if r]
        same += sum(a == b for i, a in enumerate(g) for b in g[i + 1:])
        total += len(g) * (len(g) - 1) // 2
    return same / total


def test_synthetic_histories_are_padded_catalog_rows_of_every_length():
    from edgerec.export.deidentify import synthetic_histories

    popularity = np.arange(40, dtype=np.float64)
    genres = ["a", "b", "c", "d"] * 10
    rows = synthetic_histories(popularity, genres, 300, 6, seed=3)
    assert rows.shape == (300, 6) and rows.dtype == np.int64
    lengths = (rows > 0).sum(axis=1)
    assert set(lengths.tolist()) == {3, 4, 5, 6}  # from 3 to the model's length, each drawn
    for row, length in zip(rows, lengths):
        assert (row[:6 - length] == 0).all() and (row[6 - length:] >= 1).all()  # left-padded, rows are index + 1
        assert len(set(row[row > 0].tolist())) == length  # no item twice in a session
    assert rows.max() <= 40 and (synthetic_histories(popularity, genres, 300, 6, seed=3) == rows).all()
    assert not (synthetic_histories(popularity, genres, 300, 6, seed=4) == rows).all()
    assert (synthetic_histories(popularity, genres, 50, 2) > 0).all()  # shorter than 3: every row is full
    assert synthetic_histories(popularity, genres, 0, 6).shape == (0, 6)


def test_a_catalog_smaller_than_a_session_repeats_items_rather_than_loop():
    from edgerec.export.deidentify import synthetic_histories

    rows = synthetic_histories(np.array([5.0, 1.0]), ["a", "b"], 20, 5, seed=1)
    assert ((rows > 0).sum(axis=1) >= 3).all() and set(rows[rows > 0].tolist()) == {1, 2}


def test_synthetic_sessions_follow_popularity_and_cluster_by_genre():
    from edgerec.export.deidentify import synthetic_histories

    genres = [g for g in "abcde" for _ in range(100)]
    flat = synthetic_histories(np.zeros(500), genres, 1500, 8, seed=0)
    # each pick stays in the session's genre with probability 0.7 + 0.3 / 5 = 0.76, so two picks share a
    # genre with 0.76^2 + 4 * 0.06^2 = 0.592 (sessions drawn without regard to genre: 0.2)
    assert _genre_pairs(flat, genres) == pytest.approx(0.592, abs=0.02)
    counts = np.bincount(flat[flat > 0] - 1, minlength=500)
    assert counts.min() > 0 and counts.std() < 0.35 * counts.mean()  # even: no popularity, no item left out
    popular = np.zeros(500)
    popular[[7, 255]] = 499.0  # 500 of 1498 (weight of popularity + 1) each
    skewed = synthetic_histories(popular, genres, 1500, 8, seed=0)
    counts = np.bincount(skewed[skewed > 0] - 1, minlength=500)
    assert counts[7] > 20 * np.median(counts) and counts[255] > 20 * np.median(counts)
    # the session's genre is drawn by popularity too: genres a (item 7) and c (item 255) lead most sessions
    leads = [max("abcde", key=[genres[r - 1] for r in row if r].count) for row in skewed]
    assert (leads.count("a") + leads.count("c")) / len(leads) > 0.55


def test_synthetic_sessions_draw_items_by_popularity_plus_one():
    """In one genre every draw is by popularity + 1: an item of popularity 19 comes 20 times as often as one
    of 0, inside the genre and out of it. A reproducible export gets the same sessions by default and for
    the same counts in any dtype (a prior read from JSON is float64, log counts are integers)."""
    from edgerec.export.deidentify import synthetic_histories

    popularity = np.zeros(1000)
    popularity[7] = 19.0
    genres = ["a"] * 1000
    rows = synthetic_histories(popularity, genres, 4000, 8, seed=0)
    counts = np.bincount(rows[rows > 0] - 1, minlength=1000)
    assert 18 < counts[7] / np.delete(counts, 7).mean() < 22
    assert (synthetic_histories(popularity, genres, 50, 8) == synthetic_histories(popularity, genres, 50, 8, 0)).all()
    counted = np.arange(60) % 7
    for kind in (np.int64, np.float32):
        same = synthetic_histories(counted.astype(kind), ["a", "b", "c"] * 20, 400, 8, seed=2)
        assert (same == synthetic_histories(counted.astype(np.float64), ["a", "b", "c"] * 20, 400, 8, seed=2)).all()


def test_a_flower_node_answers_with_its_upload_alone():
    """The Flower ClientApp replied with why its device declined ("too little history", "privacy budget") and
    how long its round took (which grows with the history) beside the upload, in every round, DP or not."""
    from edgerec.federated.flower import node_reply
    from edgerec.runtime.federated import RoundResult

    declined = RoundResult(3, None, None, "too little history", ms=12.5)
    taken = RoundResult(3, None, b"ERFU...", None, examples=40, norm=0.1, ms=80.0)
    assert node_reply(declined) == {"payload": b""} and node_reply(taken) == {"payload": b"ERFU..."}


# ------------------------------------------------------------- one export, every byte (audP)

CANARY_USER = "CANARY_USER_7f3a"


@pytest.fixture(scope="module")
def canary_export(tmp_path_factory):
    """A tiny world whose user ids are marked, in a marked folder, trained with the data's path as typed in
    another folder and the teacher's as typed on Windows, exported (ONNX) and packed."""
    from dataclasses import replace

    from edgerec.data import SynthConfig, synth_dataset
    from edgerec.data.schema import Dataset
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset, save_dataset
    from edgerec.export.bundle_builder import ExportConfig, export_bundle
    from edgerec.models.config import ModelConfig
    from edgerec.models.train import TrainConfig, train_model
    from edgerec.runtime.pack import pack

    root = tmp_path_factory.mktemp("canary")
    base = synth_dataset(SynthConfig(users=60, items=150, events=2_000, seed=4))
    catalog = replace(base.catalog, item_ids=[f"CANARY_ITEM_{i:04d}" for i in range(len(base.catalog))])
    data = root / MARK / "logs"
    save_dataset(Dataset(catalog, base.interactions, [f"{CANARY_USER}_{i:03d}" for i in range(base.n_users)],
                         {"source": str(data / "plays.csv")}), data)
    dataset = load_dataset(data)
    train_model(dataset, leave_last_out(dataset), ModelConfig(dim=8, layers=1, max_len=8, dropout=0.0),
                TrainConfig(epochs=1, batch_size=32, eval_users=0), out=root / MARK / "ckpt",
                info_extra={"data": f"runs/{MARK}/logs", "teacher": f"C:\\Users\\{CANARY_USER}\\{MARK}\\teacher"})
    bundle = root / "bundle"
    export_bundle(root / MARK / "ckpt", data, bundle, ExportConfig(formats=("onnx",), parity_users=40, evaluate=False,
                                                                   min_top10_agreement=0.0))
    return dataset, data, bundle, pack(bundle, root / "bundle.edgerec")


def _history_runs(dataset) -> set[bytes]:
    """Every run of 4 consecutive items of a user's history (by time), as the bundle could store it: model
    rows (index + 1) in int64 and int32, and the ids joined. Runs of consecutive catalog rows are left out:
    the id column holds those in catalog order."""
    log = dataset.interactions.sorted_by_time()
    runs = set()
    for user in range(dataset.n_users):
        items = log.item[log.user == user]
        for i in range(len(items) - 3):
            run = [int(x) for x in items[i:i + 4]]
            if any(b != a + 1 for a, b in zip(run, run[1:])):
                rows = np.asarray(run) + 1
                runs |= {rows.astype(np.int64).tobytes(), rows.astype(np.int32).tobytes(),
                         "".join(dataset.catalog.item_ids[r] for r in run).encode()}
    return runs


@pytest.mark.slow  # one ONNX export: about 10 s
def test_an_exported_and_packed_bundle_holds_no_user_folder_or_history_run(canary_export):
    import tarfile

    from test_bundle_privacy import _inflated_columns

    dataset, data, bundle, packed = canary_export
    blobs = {str(p.relative_to(bundle)): p.read_bytes() for p in bundle.rglob("*") if p.is_file()}
    blobs |= _inflated_columns(bundle)
    with tarfile.open(packed) as tar:
        for member in tar.getmembers():
            blobs[f"packed {member.name}"] = tar.extractfile(member).read()
            blobs[f"packed {member.name} header"] = f"{member.name} {member.uname} {member.pax_headers}".encode()
    blobs["packed file"] = packed.read_bytes()
    assert b"CANARY_ITEM_0000" in blobs["packed file"] and len(blobs) > 30  # the catalog's ids do ship
    needles = [CANARY_USER.encode(), MARK.encode(), str(data.parent.parent).encode(), b"Users", b"runs/"]
    runs = _history_runs(dataset)
    assert len(runs) > 500
    for where, blob in blobs.items():
        assert not [n for n in needles if n in blob], where
        assert not [r for r in runs if r in blob], where
    card = json.loads(blobs["model_card.json"])
    assert card["training"]["data"] == "logs" and card["training"]["teacher"] == "teacher"
    assert json.loads(blobs["manifest.json"])["data_version"]["source"] == "plays.csv"  # the folder kept its name only


@pytest.mark.slow  # the export above, then five commands on tiny settings: about 15 s
def test_host_reports_printed_output_and_log_records_name_no_user_or_data_folder(canary_export, tmp_path, caplog):
    import logging

    from click.testing import CliRunner

    from edgerec.cli.main import cli

    _, data, bundle, _ = canary_export
    out = tmp_path / "reports"
    commands = {
        "eval.json": ["evaluate", "--data", data, "--model", "popular"],
        "replay.json": ["study", "replay", bundle, "--data", data, "--users", "10"],
        "fairness.json": ["report", "fairness", bundle, "--data", data, "--users", "10"],
        "dp.json": ["study", "dp-popularity", "--data", data, "--epsilon", "1", "--devices", "1000", "--trials", "1",
                    "--prior", out / "prior.json"],
        "simulate.json": ["experiment", "simulate", bundle, "--data", data, "--users", "10", "--days", "1",
                          "--pre-days", "1"],
    }
    printed = []
    with caplog.at_level(logging.DEBUG, logger="edgerec"):
        for name, args in commands.items():
            result = CliRunner().invoke(cli, [str(a) for a in args] + ["--json", str(out / name)])
            assert result.exit_code == 0, result.output
            printed.append(result.output.replace(str(out), "OUT"))  # the paths typed on the command line
    records = " ".join(r.getMessage() for r in caplog.records)
    files = {p.name: p.read_text() for p in out.iterdir()}
    assert len(files) == 6
    for where, text in {**files, "printed": " ".join(printed), "log": records}.items():
        assert CANARY_USER not in text and MARK not in text and str(data) not in text, where


def test_a_ranker_records_its_retrieval_model_relative_to_itself(tmp_path):
    from edgerec.models.persist import load_ranker, save_ranker
    from edgerec.models.ranker import Ranker

    folder = save_ranker(tmp_path / MARK / "ranker", Ranker(4, 8, 1), tmp_path / MARK / "student", {})
    texts = [f.read_text() for f in folder.iterdir() if f.suffix == ".json"]
    assert texts and all(str(tmp_path) not in t for t in texts) and any('"../student"' in t for t in texts)
    (tmp_path / MARK).rename(tmp_path / "moved")
    assert load_ranker(tmp_path / "moved" / "ranker")[1]["retrieval"] == str((tmp_path / "moved" / "student").resolve())


def test_a_stored_retrieval_path_that_is_no_text_is_left_for_its_users_to_refuse(tmp_path):
    from edgerec.models.checkpoint import with_path_in

    assert with_path_in(tmp_path, {"retrieval": 5}, "retrieval") == {"retrieval": 5}
    assert with_path_in(tmp_path, {}, "retrieval") == {}
    assert with_path_in(tmp_path, {"retrieval": "/abs/model"}, "retrieval") == {"retrieval": "/abs/model"}
    assert with_path_in(tmp_path / "run" / "ranker", {"retrieval": "../student"}, "retrieval") == {
        "retrieval": str((tmp_path / "run" / "student").resolve())}


def test_checkpoints_record_their_data_init_and_teacher_relative_to_themselves(tmp_path, small_data_dir):
    import shutil

    from click.testing import CliRunner

    from edgerec.cli.main import cli
    from edgerec.models.checkpoint import load_model

    root = tmp_path / MARK
    shutil.copytree(small_data_dir, root / "data")
    tiny = ["--dim", "8", "--layers", "1", "--max-len", "8", "--epochs", "1", "--eval-users", "0"]
    for args in (["train", "--data", str(root / "data"), "--out", str(root / "teacher"), *tiny],
                 ["train", "--data", str(root / "data"), "--out", str(root / "warm"), "--init", str(root / "teacher"),
                  *tiny],
                 ["distill", "--teacher", str(root / "teacher"), "--data", str(root / "data"), "--out",
                  str(root / "student"), *tiny]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    for name, expected in (("teacher", {"data": "../data", "init": None}),
                           ("warm", {"data": "../data", "init": "../teacher"}),
                           ("student", {"data": "../data", "teacher": "../teacher"})):
        text = (root / name / "config.json").read_text()
        assert str(tmp_path) not in text and MARK not in text, name
        info = load_model(root / name)[1].info
        assert {k: info[k] for k in expected} == expected
