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
    """The scorer records its retrieval model's resolved path; the refusal names folders, not that path."""
    from edgerec.errors import ModelError
    from edgerec.export.ranking import add_scorer
    from edgerec.models.scorer import LinearScorer, save_scorer

    scorer = LinearScorer(("a",), np.ones(1), np.zeros(1), np.ones(1), 0.0)
    folder = save_scorer(tmp_path / MARK / "scorer", scorer, tmp_path / MARK / "model-a", {})
    with pytest.raises(ModelError, match="trained for model-a, not for model-b") as err:
        add_scorer(None, folder, tmp_path / MARK / "model-b")
    assert MARK not in str(err.value) and str(tmp_path) not in str(err.value)


def test_checkpoint_and_prior_refusals_name_folders_not_paths(folder):
    from edgerec.errors import ConfigError, ModelError
    from edgerec.export.popularity import PopularityPrior
    from edgerec.models.checkpoint import load_checkpoint

    with pytest.raises(ModelError, match="^logs is not an edgerec checkpoint") as err:
        load_checkpoint(folder)
    assert MARK not in str(err.value)
    _write(folder / "config.json", "{cut")
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError, match="^logs/config.json is not JSON") as err:
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
    assert scrub_paths("Ana Ruiz/logs") == "Ana logs"  # does not: each word with a separator is cut


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
