"""Read-only files and folders on the device and the host: a bundle on a read-only partition opens and ranks;
a history, key, output folder or packed bundle that cannot be written gives an EdgerecError that says so and
what to do (no traceback, no folder names above the file, nothing half-written or lost).

File modes mean nothing to a process that may override them (root, or CAP_DAC_OVERRIDE): such a run checks
that first and skips, naming the reason. Under root, `test_the_checks_also_run_where_modes_hold` runs this file
again without those capabilities (setpriv), so the checks still run on a machine where tests run as root."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.errors import BundleError, ConfigError, DataError, HistoryError
from edgerec.runtime import Recommender
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.keys import FileKey
from edgerec.runtime.pack import pack

GOLDEN = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"
DROPPED = "dac_override,dac_read_search,fowner"  # what lets root ignore file modes


def modes_hold(tmp: Path) -> bool:
    probe = tmp / "mode-probe"
    probe.mkdir()
    probe.chmod(0o555)
    try:
        (probe / "x").touch()
    except PermissionError:
        return True
    finally:
        probe.chmod(0o755)
    return False


@pytest.fixture
def tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # commands that default to ./history.db write nothing elsewhere
    if not modes_hold(tmp_path):
        pytest.skip("this process may write read-only files (root or CAP_DAC_OVERRIDE), so file modes cannot be "
                    "tested here; test_the_checks_also_run_where_modes_hold runs them without those privileges")
    yield tmp_path
    for root, dirs, files in os.walk(tmp_path):  # pytest must be able to clean up
        for name in dirs + files:
            os.chmod(os.path.join(root, name), 0o700, follow_symlinks=False)


def read_only(path: Path) -> Path:
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.chmod(os.path.join(root, name), 0o444)
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o555)
    path.chmod(0o555 if path.is_dir() else 0o444)
    return path


def one_line_error(args: list[str], *, not_in: str) -> str:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (result.output, result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("Error:") and "Traceback" not in result.output
    assert not_in not in result.output  # the folders above the file are the user's business
    return lines[-1]


def a_bundle(tmp: Path) -> Path:
    return shutil.copytree(GOLDEN, tmp / "bundle")


def an_item(bundle: Path) -> str:
    with Recommender.open(bundle) as rec:
        return rec.recommend("someone", k=1)[0].item_id


def folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


# ------------------------------------------------------------------ bundles


def test_a_read_only_bundle_opens_and_ranks_with_a_history_elsewhere(tmp):
    bundle = a_bundle(tmp)
    item = an_item(bundle)
    read_only(bundle)
    with Recommender.open(bundle, history=tmp / "h" / "history.db") as rec:
        rec.record("ann", item, "finish")
        assert len(rec.recommend("ann", k=3)) == 3
    result = CliRunner().invoke(cli, ["recommend", str(bundle), "--user", "ann", "--history", str(tmp / "h2.db")])
    assert result.exit_code == 0, result.output


def test_a_packed_bundle_in_a_read_only_folder_is_unpacked_beside_the_history(tmp):
    packed = pack(a_bundle(tmp), folder(tmp / "ro") / "b.edgerec")
    read_only(tmp / "ro")
    with Recommender.open(packed, history=folder(tmp / "data") / "history.db") as rec:
        assert len(rec.recommend("ann", k=3)) == 3
        assert rec.bundle.root.parent == tmp / "data"
    with Recommender.open(packed, cache_dir=tmp / "data") as rec:  # the copy made there is found again
        assert rec.bundle.root.parent == tmp / "data"
    result = CliRunner().invoke(cli, ["recommend", str(packed), "--user", "ann", "--history", str(tmp / "data" / "h.db")])
    assert result.exit_code == 0, result.output


def test_a_packed_bundle_in_a_read_only_folder_without_a_writable_one_says_what_to_pass(tmp):
    packed = pack(a_bundle(tmp), folder(tmp / "ro") / "b.edgerec")
    read_only(tmp / "ro")
    with pytest.raises(BundleError, match="cannot write.*cache_dir=") as info:
        Recommender.open(packed)
    assert str(tmp) not in str(info.value)
    args = ["recommend", str(packed), "--user", "ann", "--history", str(tmp / "ro" / "history.db")]
    assert "cache_dir=" in one_line_error(args, not_in=str(tmp))


def test_a_rejected_update_falls_back_to_a_packed_bundle_in_a_read_only_folder(tmp):
    ro = folder(tmp / "ro")
    previous = pack(a_bundle(tmp), ro / "b.edgerec")
    (ro / "update.edgerec").write_bytes(b"\0" * 4096)  # a download that went wrong
    read_only(ro)
    with Recommender.open(ro / "update.edgerec", history=folder(tmp / "data") / "h.db", fallback=previous) as rec:
        assert rec.update.accepted is False and len(rec.recommend("ann", k=3)) == 3


def test_an_ann_index_whose_cache_folder_is_read_only_is_built_once_and_serves_from_memory(tmp):
    pytest.importorskip("onnxruntime")
    if importlib.util.find_spec("usearch") is None:  # not importorskip: the runtime imports it in the safe order
        pytest.skip("needs usearch")
    cache = read_only(folder(tmp / "cache"))
    with Recommender.open(read_only(a_bundle(tmp)), cache_dir=cache, ann="usearch") as rec:
        rec.warm_up()  # was: RuntimeError (Permission denied), and every request built the index again
        index = rec.models.ann
        assert index is not None and index.unsaved
        assert len(rec.recommend("ann", k=3)) == 3 and rec.models.ann is index
    assert list(cache.iterdir()) == []


def test_packing_into_a_read_only_folder_is_a_bundle_error_that_leaves_nothing(tmp):
    bundle = a_bundle(tmp)
    out = read_only(folder(tmp / "ro"))
    with pytest.raises(BundleError, match="cannot write the packed bundle b.edgerec") as info:
        pack(bundle, out / "b.edgerec")
    assert str(tmp) not in str(info.value)
    assert "folder this app can write" in one_line_error(["pack", str(bundle), "--out", str(out / "b.edgerec")],
                                                         not_in=str(tmp))
    assert list(out.iterdir()) == []


# ------------------------------------------------------------------ histories


def a_history(folder: Path, events: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    store = HistoryStore(folder / "history.db")
    for n in range(events):
        store.record("ann", f"i{n}", "play")
    store.close()
    return folder / "history.db"


@pytest.mark.parametrize("what", ["file", "folder", "both"])
def test_a_history_that_cannot_be_written_is_refused_at_open_saying_so(tmp, what):
    path = a_history(tmp / "h")
    if what in ("file", "both"):
        path.chmod(0o444)
    if what in ("folder", "both"):
        path.parent.chmod(0o555)
    with pytest.raises(HistoryError, match="read-only for this app") as info:
        HistoryStore(path)
    assert str(tmp) not in str(info.value) and "damaged" not in str(info.value)
    bundle = a_bundle(tmp)
    for args in (["recommend", str(bundle), "--user", "ann", "--history", str(path)],
                 ["history", "show", "ann", "--history", str(path)]):
        assert "read-only for this app" in one_line_error(args, not_in=str(tmp))
    path.parent.chmod(0o755)
    path.chmod(0o644)
    assert len(HistoryStore(path).events("ann")) == 2  # nothing was changed


def test_a_history_that_cannot_be_read_is_a_history_error(tmp):
    path = a_history(tmp / "h")
    path.chmod(0o000)
    with pytest.raises(HistoryError) as info:
        HistoryStore(path)
    assert str(tmp) not in str(info.value)
    with pytest.raises(HistoryError, match="cannot be read .*read access") as info:
        HistoryStore.recover(path, tmp / "copy.db")  # recover reads only: the read itself fails
    assert str(tmp) not in str(info.value)


def test_a_read_only_history_can_still_be_recovered_from(tmp):
    path = a_history(tmp / "h", events=3)
    path.chmod(0o444)
    report = HistoryStore.recover(path, tmp / "copy.db")
    assert report["events"] == 3


def test_a_backup_into_a_read_only_folder_says_so_without_the_folders(tmp):
    path = a_history(tmp / "h")
    out = read_only(folder(tmp / "ro"))
    with pytest.raises(HistoryError, match="could not back up the history to copy.db .*folder this app can write") as info:
        HistoryStore(path).backup(out / "copy.db")
    assert str(tmp) not in str(info.value)
    one_line_error(["history", "backup", "--history", str(path), "--out", str(out / "copy.db")], not_in=str(tmp))
    assert list(out.iterdir()) == []


def test_an_export_into_a_read_only_folder_is_one_line_naming_the_file_only(tmp):
    path = a_history(tmp / "h")
    out = read_only(folder(tmp / "ro"))
    line = one_line_error(["history", "export", "ann", "--history", str(path), "--out", str(out / "ann.json")],
                          not_in=str(tmp))
    assert "ann.json" in line and "permissions" in line


@pytest.mark.parametrize("what", ["file", "folder"])
def test_encrypting_a_read_only_history_is_refused_before_anything_is_written(tmp, what):
    pytest.importorskip("sqlcipher3")
    from edgerec.runtime.secure_db import encrypt_database

    path = a_history(tmp / "h")
    (path if what == "file" else path.parent).chmod(0o444 if what == "file" else 0o555)
    with pytest.raises(HistoryError, match="read-only for this app"):
        encrypt_database(path, b"k" * 32)
    path.parent.chmod(0o755)
    assert sorted(p.name for p in path.parent.iterdir()) == ["history.db"]  # no half-made copy beside it
    path.chmod(0o644)
    assert len(HistoryStore(path).events("ann")) == 2  # still the plain history


# ------------------------------------------------------------------ keys and output folders


def test_keys_in_read_only_places(tmp):
    (tmp / "keys").mkdir()
    key = FileKey.create(tmp / "keys" / "h.key")
    read_only(tmp / "keys")
    (tmp / "keys" / "h.key").chmod(0o400)  # read-only, and still its owner's only
    assert len(key.key()) == 32  # a key on a read-only partition reads
    with pytest.raises(ConfigError, match="nothing was destroyed"):
        key.destroy()
    assert len(key.key()) == 32
    with pytest.raises(ConfigError, match="cannot create the key file new.key") as info:
        FileKey.create(tmp / "keys" / "new.key")
    assert str(tmp) not in str(info.value)
    assert "folder this app can write" in one_line_error(["history", "keygen", "--out", str(tmp / "keys" / "k2")],
                                                         not_in=str(tmp))
    (tmp / "keys").chmod(0o755)
    (tmp / "keys" / "h.key").chmod(0o000)
    with pytest.raises(ConfigError, match="cannot be read"):
        key.key()


def test_importing_into_a_read_only_output_folder_is_a_data_error(tmp):
    log = tmp / "log.csv"
    log.write_text("user_id,item_id,timestamp\nu1,a,1\n")
    out = read_only(folder(tmp / "out"))
    from edgerec.data import import_dataset, save_dataset

    with pytest.raises(DataError, match="cannot write the data files"):
        save_dataset(import_dataset("csv", log), out)
    assert "choose an --out" in one_line_error(["data", "import", "csv", str(log), "--out", str(out)],
                                               not_in=str(out / "items"))


@pytest.mark.parametrize("fmt", ["csv", "ml-100k"])
def test_a_data_file_that_cannot_be_read_is_a_data_error(tmp, fmt):
    from edgerec.data import import_dataset

    if fmt == "csv":
        path = tmp / "log.csv"
        path.write_text("user_id,item_id,timestamp\nu1,a,1\n")
        path.chmod(0o000)
    else:
        path = folder(tmp / "ml")
        (path / "u.data").write_text("1\t1\t5\t10\n")
        (path / "u.item").write_text("1|Toy Story (1995)|01-Jan-1995||http://x" + "|0" * 19 + "\n")
        (path / "u.item").chmod(0o000)
    with pytest.raises(DataError, match="cannot be read .*read access") as info:
        import_dataset(fmt, path)
    assert "Traceback" not in str(info.value)


# ------------------------------------------------------------------ root


def test_the_checks_also_run_where_modes_hold(tmp_path):
    if modes_hold(tmp_path):
        pytest.skip("file modes hold for this process: the tests above ran as they are")
    if os.environ.get("EDGEREC_READ_ONLY_RERUN") or not shutil.which("setpriv"):
        pytest.skip("this process ignores file modes and cannot drop the privilege (no setpriv): run the tests as "
                    "a normal user")
    drop = ",".join(f"-{c}" for c in DROPPED.split(","))
    result = subprocess.run(
        ["setpriv", "--bounding-set", drop, "--inh-caps", drop, sys.executable, "-m", "pytest", "-q", "-p",
         "no:cacheprovider", "-W", "ignore", __file__, "-k", "not also_run"],
        capture_output=True, text=True, env=dict(os.environ, EDGEREC_READ_ONLY_RERUN="1"), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " skipped" not in result.stdout.splitlines()[-1], result.stdout[-2000:]
