"""The neutral on-disk format: a folder with `items`, `interactions` and `dataset.json`.

`interactions.csv`: user_id, item_id, timestamp, event, value, device.
`items.csv`: one row per item; tags are `|`-separated. Either file may be
Parquet instead (`.parquet`), which is smaller and faster for large data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgerec.data.item_import import read_catalog
from edgerec.data.loaders import ColumnMap, ReadOptions, read_interactions
from edgerec.data.schema import DEVICES, EVENTS, ITEM_COLUMNS, Catalog, Dataset
from edgerec.data.tables import CsvAppender, ends_mid_line, write_csv, write_parquet
from edgerec.errors import ConfigError, DataError
from edgerec.runtime.atomic import Claim, claim, write_file

FORMAT_VERSION = 1
INCOMPLETE = "incomplete"  # dataset.json's mark while a write into the folder has not finished


def catalog_columns(catalog: Catalog) -> dict[str, list]:
    columns: dict[str, list] = {"item_id": catalog.item_ids}
    for name in ITEM_COLUMNS[1:]:
        if name == "tags":
            columns[name] = ["|".join(t) for t in catalog.tags]
        elif name in ("duration", "release_ts", "episode"):
            array = getattr(catalog, name)
            # float64 first: a float32 rounded to 0.1 s still wrote 1.2000000476837158 (the value column's way)
            columns[name] = np.round(array.astype(np.float64), 1).tolist() if name == "duration" else array.tolist()
        else:
            columns[name] = catalog.text[name]
    return columns


def interaction_columns(dataset: Dataset, rows: slice = slice(None)) -> dict[str, list]:
    """The log's `rows` as the columns of interactions.csv (Python values: a few hundred bytes an event,
    so a large log is written a slice at a time)."""
    log = dataset.interactions
    user_ids, item_ids = np.asarray(dataset.user_ids, dtype=object), np.asarray(dataset.catalog.item_ids, dtype=object)
    devices = np.asarray(("",) + DEVICES, dtype=object)  # index -1 -> ""
    return {
        "user_id": user_ids[log.user[rows]].tolist(),
        "item_id": item_ids[log.item[rows]].tolist(),
        "timestamp": log.timestamp[rows].tolist(),
        "event": np.asarray(EVENTS, dtype=object)[log.event[rows]].tolist(),
        "value": np.round(log.value[rows].astype(np.float64), 4).tolist(),
        "device": devices[log.device[rows].astype(np.int64) + 1].tolist(),
    }


INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "event", "value", "device")
WRITE_ROWS = 200_000  # events converted to Python values at once when writing interactions.csv


def write_interactions_csv(dataset: Dataset, path: Path, rows_at_once: int = WRITE_ROWS) -> None:
    """interactions.csv written `rows_at_once` events at a time (the whole log as Python lists was
    0.25 GB at 2M events, 2.5 GB at 20M); the file is the same."""
    with CsvAppender(path, INTERACTION_COLUMNS) as writer:
        for start in range(0, len(dataset.interactions), rows_at_once):
            writer.append(list(interaction_columns(dataset, slice(start, start + rows_at_once)).values()))


DATA_FILES = ("items", "interactions")


def write_meta(folder: Path, meta: dict, fmt: str, *, users: int, items: int, events: int) -> None:
    """dataset.json: the files' format (files of the other one, from an earlier import or the user's own,
    are then ignored, never deleted) and their row counts (a file cut short is then found)."""
    meta = {k: v for k, v in meta.items() if k != "path"}  # the folder it was loaded from: a host path
    if Path(str(meta.get("source", ""))).is_absolute() or str(meta.get("source", "")).startswith("~"):
        meta["source"] = Path(meta["source"]).name  # a folder imported before sources were names
    meta = dict(meta, format_version=FORMAT_VERSION, file_format=fmt, users=users, items=items, events=events)
    _write_json(folder / "dataset.json", meta)


def _write_json(path: Path, payload: dict) -> None:
    write_file(path, json.dumps(payload, indent=2, sort_keys=True))


def begin_write(folder: Path) -> Claim:
    """Hold `folder` for this writer and mark it unfinished until write_meta: a write killed or failed half-way
    (new items beside the old log, say) is refused when loaded, never read as a smaller or mixed data set."""
    held = claim(folder)
    if held is None:
        raise DataError("another import or synth is writing into this folder right now; wait for it to finish, "
                        "or choose another --out", str(folder))
    _write_json(folder / "dataset.json", {"format_version": FORMAT_VERSION, INCOMPLETE: True})
    return held


def written_files(folder: str | Path) -> list[Path]:
    """The files save_dataset may write into `folder` (either format's, and its lock)."""
    folder = Path(folder)
    return [folder / f"{stem}.{fmt}" for stem in DATA_FILES for fmt in ("csv", "parquet")] + [
        folder / "dataset.json", folder / ".edgerec-writing"]


def refuse_foreign_folder(folder: str | Path) -> None:
    """Refuse an output folder holding data files that no edgerec write made (the user's own
    interactions.csv, say): the write would replace them. A folder edgerec wrote has its dataset.json
    (format_version in it, even while unfinished), so importing again into it still works."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return
    try:
        meta = json.loads((folder / "dataset.json").read_text())
    except (OSError, ValueError):  # none, unreadable or not JSON: not edgerec's
        meta = None
    if isinstance(meta, dict) and "format_version" in meta:
        return
    for path in written_files(folder)[:-1]:  # not the lock: an interrupted write's leftover, ours
        if path.exists():
            raise ConfigError(f"--out already holds {path.name}, which edgerec did not write (no edgerec "
                              "dataset.json beside it): it would be replaced; choose a new folder for --out")


def refuse_writing_over(folder: str | Path, inputs: list[str | Path]) -> None:
    """Refuse an output folder that would write over an input file, or that is (or is inside) an input
    folder: the source would be lost, or the next import of that folder would read the output among
    its part files; or that holds someone else's data files (refuse_foreign_folder). Checked before
    anything is read."""
    out = Path(folder).expanduser().resolve()
    targets = {path.resolve() for path in written_files(out)}
    for given in inputs:
        source = Path(given).expanduser().resolve()
        if source.is_dir() and (out == source or source in out.parents):
            raise ConfigError(f"--out {folder} is inside the folder being imported ({Path(given).name}): the "
                              "written files would join its part files; choose an --out outside it")
        if source in targets:
            raise ConfigError(f"--out {folder} would write over the input file {Path(given).name}; choose "
                              "another --out")
    refuse_foreign_folder(out)


def save_dataset(dataset: Dataset, folder: str | Path, fmt: str = "csv") -> Path:
    """Write `dataset` to `folder` as CSV or Parquet files."""
    if fmt not in ("csv", "parquet"):
        raise DataError(f"unknown file format {fmt!r}; use csv or parquet")
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission, a full disk
        raise DataError(f"cannot create the output folder ({exc.strerror}); choose another --out", str(folder)) from None
    write = write_csv if fmt == "csv" else write_parquet
    try:
        held = begin_write(folder)
        write(folder / f"items.{fmt}", catalog_columns(dataset.catalog))
        if fmt == "csv":
            write_interactions_csv(dataset, folder / "interactions.csv")
        else:
            write_parquet(folder / "interactions.parquet", interaction_columns(dataset))
        write_meta(folder, dataset.meta, fmt, users=dataset.n_users, items=dataset.n_items,
                   events=len(dataset.interactions))
        held.release()
    except OSError as exc:  # a read-only folder, a full disk
        raise DataError(f"cannot write the data files ({exc.strerror or exc}); choose an --out this app can write, "
                        "with room for them", str(folder)) from None
    return folder


def _find(folder: Path, stem: str, fmt: str | None) -> Path:
    """The folder's `stem` file: in the format dataset.json names, else the only one there."""
    found = [folder / f"{stem}.{suffix}" for suffix in ("parquet", "csv") if (folder / f"{stem}.{suffix}").exists()]
    if fmt in ("csv", "parquet") and folder / f"{stem}.{fmt}" in found:
        return folder / f"{stem}.{fmt}"
    if fmt in ("csv", "parquet") and found:  # the other format's file is an earlier import's: stale data, silently
        raise DataError(f"dataset.json names {fmt} files, but there is no {stem}.{fmt} here, only {found[0].name} "
                        "(from an earlier import?); import the data again, or delete dataset.json to read "
                        f"{found[0].name}", str(folder))
    if len(found) == 2:
        raise DataError(f"both {stem}.csv and {stem}.parquet here and no dataset.json says which is current; "
                        "delete the stale one", str(folder))
    if found:
        return found[0]
    raise DataError(
        f"no {stem}.csv or {stem}.parquet here; create one with `edgerec data synth` or `edgerec data import`",
        str(folder),
    )


def load_dataset(folder: str | Path, *, sample_users: float | None = None, seed: int = 0) -> Dataset:
    """Read a folder in the neutral format; events come back sorted by (user, time), stably."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("not a data folder; create one with `edgerec data synth` or `edgerec data import`", str(folder))
    meta = _read_meta(folder)
    if meta.get(INCOMPLETE):
        raise DataError("the last import, synth or domains split into this folder did not finish (it was stopped or "
                        "failed), so its files may be cut short or mixed with older ones; run it again", str(folder))
    paths = {stem: _find(folder, stem, meta.get("file_format")) for stem in DATA_FILES}
    for path in paths.values():
        if meta and ends_mid_line(path):  # every writer of a folder with dataset.json ends its lines
            raise DataError(f"{path.name} ends inside a line: it was cut short; import the data again (if you "
                            "edited it, end its last line with a line break)", str(folder))
    catalog = read_catalog(paths["items"])
    _check_count(meta, "items", len(catalog), paths["items"])  # before the log names an item cut off
    dataset = read_interactions(paths["interactions"], ColumnMap(), catalog,
                                ReadOptions(sample_users=sample_users, seed=seed))
    if sample_users is None or sample_users >= 1:
        _check_count(meta, "events", len(dataset.interactions), paths["interactions"])
    dataset.meta = dict(meta, path=str(folder))
    return dataset


def _check_count(meta: dict, key: str, count: int, path: Path) -> None:
    """A file cut at a line break, or rows added or removed by hand, no longer hold the rows written."""
    if isinstance(meta.get(key), int) and meta[key] != count:
        raise DataError(f"{path.name} holds {count:,} {key}, dataset.json recorded {meta[key]:,} when the folder "
                        "was written: the file was cut short or changed since; import the data again (if you "
                        f"changed it on purpose, set \"{key}\" in dataset.json to {count})", str(path.parent))


def _read_meta(folder: Path) -> dict:
    path = folder / "dataset.json"
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"dataset.json is not JSON ({exc}); delete it or regenerate the folder", str(path)) from None
    except OSError as exc:  # a folder of that name, no read permission: OSError's text holds the host path
        raise DataError(f"dataset.json cannot be read ({exc.strerror or type(exc).__name__}); it must be a file "
                        "this user can read: fix its permissions, or delete it and regenerate the folder", str(path)) from None
    if not isinstance(meta, dict):
        raise DataError("dataset.json does not hold a JSON object; delete it or regenerate the folder", str(path))
    return meta
