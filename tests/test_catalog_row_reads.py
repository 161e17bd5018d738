"""The catalog's fixed-width columns are read through their files for the rows a request asks for
(runtime/column_rows.py): the same values as the memory map, without its pages staying resident."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from resident_files import SMAPS, resident_kb

from edgerec.device_tests.scale import scaled_bundle
from edgerec.errors import BundleError
from edgerec.runtime import Recommender
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.column_rows import RowReader, release_pages, whole_pass
from edgerec.runtime.id_index import native_ids

pytestmark = pytest.mark.usefixtures("fixed_history_clock")

GOLDEN = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"
NOW = 1_790_000_000.0


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """The golden bundle grown to 120k items: its int8 code columns span 30 pages, int32 ones 118."""
    return scaled_bundle(Bundle.open(GOLDEN), 120_000, tmp_path_factory.mktemp("rows") / "big")


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.uint16])
def test_rows_read_through_the_file_are_the_arrays_rows(tmp_path, dtype):
    rng = np.random.default_rng(1)
    values = (rng.normal(0, 1000, 50_000)).astype(dtype)
    np.save(tmp_path / "c.npy", values)
    mapped = np.asarray(np.load(tmp_path / "c.npy", mmap_mode="r"))
    reader = RowReader(mapped)
    assert reader._fd is not None and len(reader) == len(values)
    for rows in (rng.integers(0, len(values), 40), np.sort(rng.integers(0, len(values), 300)),
                 np.array([7, 7, 3, 49_999, 0, 7]), np.arange(1000, 1400), np.zeros(0, np.int64),
                 np.array([-1, -50_000, 5]), rng.integers(0, len(values), 5).astype(np.int32)):
        got = reader[rows]
        assert got.dtype == values.dtype and np.array_equal(got, values[rows], equal_nan=True)
    assert reader[12] == values[12] and reader[np.int64(-3)] == values[-3]
    for bad in (np.array([3, 50_000]), np.array([-50_001])):
        with pytest.raises(IndexError):
            _ = reader[bad]
    in_memory = RowReader(values)  # not a file: the array's own indexing
    assert in_memory._fd is None and np.array_equal(in_memory[[4, 2]], values[[4, 2]])


def test_a_column_file_cut_short_after_opening_is_a_bundle_error(tmp_path):
    np.save(tmp_path / "c.npy", np.arange(10_000, dtype=np.int32))
    reader = RowReader(np.asarray(np.load(tmp_path / "c.npy", mmap_mode="r")))
    with open(tmp_path / "c.npy", "r+b") as handle:
        handle.truncate(2_000)
    with pytest.raises(BundleError, match="changed on disk"):
        _ = reader[[9_000]]


def _resident_kb(folder: Path, skip=("embeddings.npy", "scales.npy", "encoder_inputs.npy")) -> dict[str, int]:
    """Resident kB of the column files under `folder`; the table is read whole by the scan, the encoder
    inputs a history at a time (test_encoder_input_reads.py)."""
    return {name: kb for name, kb in resident_kb(folder).items() if not name.endswith(skip)}


@pytest.mark.skipif(not SMAPS.exists(), reason="reads the process's mappings (Linux)")
def test_random_row_reads_leave_the_column_files_out_of_resident_memory(big):
    """Through the memory maps, 3,000 random rows made every page of each column resident (10.5 MB
    at a million items in the bench); read through the files, none stays."""
    rng = np.random.default_rng(0)
    with Recommender.open(big) as rec:
        cat, folder = rec.catalog, (big / "items").resolve()
        vocab = cat.categorical["genre"][1]
        for _ in range(300):
            rows = rng.integers(0, cat.base_count, 10)
            cat.metas(rows)  # the results' metadata: every categorical and numeric column
            cat.numeric_column("release_ts", rows), cat.hubness(rows), cat.column("creator", rows)
            cat.matches("genre", rows, vocab[:2])
            table = cat.feature_table()  # the ranker's and the context stage's attributes
            table.modality[rows], table.popularity[rows], table.creator[rows]
        resident = _resident_kb(folder)
    assert resident, "the bundle's columns are memory-mapped: this test reads their resident pages"
    assert sum(resident.values()) <= 16, f"column pages resident after random reads: {resident} kB"


@pytest.mark.skipif(not SMAPS.exists(), reason="reads the process's mappings (Linux)")
def test_requests_leave_the_column_files_out_of_resident_memory(big):
    """Whole requests of the default policy (histories, a newcomer's popularity prior): the prior's pass
    over two columns gives its pages back, and the results' rows are read through the files. (Reads of
    a whole pool, >64 rows: caps, boosts, the context prior, use the map's gather, column_rows.FEW_ROWS.)"""
    rng = np.random.default_rng(2)
    with Recommender.open(big) as rec:
        cat = rec.catalog
        for user in range(40):
            start = int(rng.integers(0, cat.base_count - 20))
            for i in range(12):
                rec.record(f"u{user}", cat.item_id(start + i if i % 3 else int(rng.integers(0, cat.base_count))),
                           "finish", timestamp=NOW - 1_000 + i)
        for i in range(200):
            rec.recommend(f"u{i % 40}", k=10, context={"now": NOW})
        rec.recommend("newcomer", k=10, context={"now": NOW})
        resident = _resident_kb((big / "items").resolve())
    columns_kb = sum((big / "items" / name).stat().st_size for name in resident) // 1024
    # the map held every page of each column (3.8 MB); a pool's reads now leave a few pages (128 kB)
    assert sum(resident.values()) <= columns_kb // 8, f"column pages resident after requests: {resident} kB"


@pytest.mark.skipif(not SMAPS.exists(), reason="reads the process's mappings (Linux)")
def test_a_whole_pass_gives_the_columns_pages_back(tmp_path):
    np.save(tmp_path / "c.npy", np.arange(400_000, dtype=np.int32))
    mapped = np.asarray(np.load(tmp_path / "c.npy", mmap_mode="r"))
    assert whole_pass(mapped, mapped.max) == 399_999
    assert sum(_resident_kb(tmp_path.resolve()).values()) == 0
    assert int(mapped.sum()) == 399_999 * 400_000 // 2  # the values read back after the release
    release_pages(np.arange(3))  # not a map: nothing to do


@pytest.mark.parametrize("native", [True, False])
def test_the_compiled_and_python_reads_give_the_arrays_rows(tmp_path, native):
    """read_cells (runtime/_ids.c) reads a run of consecutive rows with one pread; repeats, runs that
    go down, and a file cut after open give what os.pread per row gives."""
    values = np.arange(5_000, dtype=np.int32) * 3 - 7_000
    np.save(tmp_path / "c.npy", values)
    reader = RowReader(np.asarray(np.load(tmp_path / "c.npy", mmap_mode="r")))
    if native:
        if native_ids() is None:
            pytest.skip("this install was built without a C compiler")
        assert reader._native is not None  # the compiled read is the one requests use
    else:
        reader._native = None
    rng = np.random.default_rng(5)
    for rows in ([4, 5, 6, 7], [7, 6, 5], [1, 1, 2, 3, 3], [4_999], [4_998, 4_999], [-1, 0, 1], [0, 2, 4, 5],
                 rng.integers(0, 5_000, 60), np.r_[100:140, 7, 8]):
        assert reader[np.asarray(rows)].tolist() == values[np.asarray(rows)].tolist()
    with open(tmp_path / "c.npy", "r+b") as handle:
        handle.truncate(128 + 4 * 4_000 + 2)  # the header, 4,000 values and half of the next
    for rows in ([3_998, 3_999, 4_000, 4_001], [4_500], [10, 4_000]):
        with pytest.raises(BundleError, match="changed on disk"):
            _ = reader[rows]


def test_read_cells_refuses_what_it_cannot_read(tmp_path):
    native = native_ids()
    if native is None:
        pytest.skip("this install was built without a C compiler")
    (tmp_path / "b").write_bytes(bytes(range(16)))
    with open(tmp_path / "b", "rb") as handle:
        fd = handle.fileno()
        assert native.read_cells(fd, 2, 2, [0, 1, 2, 5]) == bytes([2, 3, 4, 5, 6, 7, 12, 13])
        assert native.read_cells(fd, 0, 4, []) == b""
        assert native.read_cells(fd, 0, 4, [2, 3, 4]) == bytes(range(8, 16))  # stops at the file's end
        with pytest.raises(IndexError, match="outside any file"):
            native.read_cells(fd, 0, 1, [3, -1])
        with pytest.raises(ValueError):
            native.read_cells(fd, 0, 0, [1])


def test_float_rows_are_refused_as_numpy_refuses_them(tmp_path):
    """int(1.7) read row 1: a float index is an error in numpy, and so it is here."""
    np.save(tmp_path / "c.npy", np.arange(100, dtype=np.int32))
    reader = RowReader(np.asarray(np.load(tmp_path / "c.npy", mmap_mode="r")))
    for bad in (np.array([1.7]), [1.5, 2.0]):
        with pytest.raises(IndexError):
            _ = reader[bad]
    assert reader[[]].dtype == np.int32 and len(reader[[]]) == 0  # an empty list is no rows, as in numpy


def _open_files() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def test_close_gives_the_column_files_back_and_later_reads_use_the_map(big):
    """Each reader held its own descriptor until the garbage collector found the Recommender: 20 opened and
    closed Recommenders held 320 files with the collector off (the review's count)."""
    import gc

    def readers(rec):
        found = [*rec.catalog.code_rows.values(), *rec.catalog.numeric_rows.values()]
        return [r[0] if isinstance(r, tuple) else r for r in found]

    gc.collect()
    gc.disable()
    try:
        before = _open_files()
        rec = Recommender.open(big)
        held, own = _open_files() - before, sum(r._fd is not None for r in readers(rec))
        name, wanted = next(iter(rec.catalog.code_rows)), np.array([7, 9_000, 119_000])
        kept = rec.catalog.column(name, wanted)
        rec.close()
        for _ in range(5):
            Recommender.open(big).close()
        after = _open_files()
    finally:
        gc.enable()
    assert own >= 2 and all(r._fd is None and not r._closing.alive for r in readers(rec))
    assert after - before <= 6 * (held - own)  # the maps wait for the collector; the readers' files do not
    assert np.array_equal(rec.catalog.column(name, wanted), kept)  # after close: the same values, through the map


def test_reads_racing_a_close_give_the_arrays_rows(tmp_path):
    """close() while other threads read: each read gives the column's rows, by the file or, once closed, the map
    (a read of a closed descriptor's number could read another file opened under it since)."""
    import threading

    values = np.arange(200_000, dtype=np.int32) * 3
    np.save(tmp_path / "c.npy", values)
    reader = RowReader(np.asarray(np.load(tmp_path / "c.npy", mmap_mode="r")))
    wrong, start = [], threading.Barrier(5)

    def read(seed):
        rng = np.random.default_rng(seed)
        start.wait()
        for _ in range(2_000):
            rows = rng.integers(0, len(values), 8)
            try:
                if not np.array_equal(reader[rows], values[rows]):
                    wrong.append(rows)
            except Exception as exc:  # noqa: BLE001 - a read of a closed descriptor (EBADF) fails the test too
                wrong.append(exc)

    threads = [threading.Thread(target=read, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    start.wait()
    reader.close()
    for thread in threads:
        thread.join()
    assert not wrong and reader._fd is None
