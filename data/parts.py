"""A log or table given as a folder of part files (what Spark, Polars, Hive and Hugging Face exports write):
the parts in name order, numbers by value (`part-2` before `part-10`, as pyarrow and Dask number them
without padding), read one after another as one table.

Only data files count: names starting with '.' or '_' (`_SUCCESS`, `.part-0.crc`) are bookkeeping, and a
folder must hold one kind of file (CSV/TSV text, Parquet or JSON Lines, each gzip-compressed or not).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from edgerec.errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".dat")
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")  # read as the plain file (tables.py tells them apart by their bytes)


def without_compression(name: str) -> str:
    """A file name without its compression suffix (`events.idomaar.gz` -> `events.idomaar`)."""
    return next((name[: -len(s)] for s in COMPRESSED_SUFFIXES if name.endswith(s)), name)


def is_parquet(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(PARQUET_SUFFIXES)


def _kind(path: Path) -> str | None:
    name = path.name.lower().removesuffix(".gz")
    for kind, suffixes in (("Parquet", PARQUET_SUFFIXES), ("JSON Lines", JSON_SUFFIXES), ("text", TEXT_SUFFIXES)):
        if name.endswith(suffixes):
            return kind
    return None


def _natural(path: Path) -> tuple:
    """Sort key: runs of digits compare as numbers, so `part-2` comes before `part-10` (ties: the plain name)."""
    runs = re.split(r"(\d+)", path.name)  # text, digits, text, ...: the same kinds at the same places
    return tuple(int(run) if i % 2 else run for i, run in enumerate(runs)), path.name


def data_files(path: str | os.PathLike) -> list[Path]:
    """[path] for a file; a folder's data files in name order (`_natural`), refused when it has none or mixes
    kinds."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    parts = sorted((p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_")) and _kind(p)),
                   key=_natural)
    if not parts:
        raise DataError("is a folder without data files (.csv, .tsv, .parquet, .jsonl, gzip-compressed or not; "
                        "names starting with '.' or '_' are not read): give a file, or the folder of a table's "
                        "part files", str(path))
    kinds = sorted({_kind(p) for p in parts})
    if len(kinds) > 1:
        raise DataError(f"is a folder of {' and '.join(kinds)} files; a table's parts are all of one kind: give "
                        "one file, or move the others out", str(path))
    return parts
