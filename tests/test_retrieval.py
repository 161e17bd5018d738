"""The stored item table and the scans over it, exactly: quantized values, dot products, scores and
top-k on hand-made tables (ties: lowest row first), for every kernel installed."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgerec.errors import BundleError, ConfigError
from edgerec.runtime import retrieval
from edgerec.runtime.bundle import Bundle, BundleWriter
from edgerec.runtime.item_table import TABLE_DTYPES, StoredTable
from edgerec.runtime.retrieval import (
    CHUNK_BYTES,
    KERNELS,
    AnnIndex,
    ExactScan,
    available_kernels,
    native_scan,
    sorted_contains,
    top_rows,
)

VECTORS = np.array([[1.0, -0.3], [0.25, 2.0]], np.float32)


# ------------------------------------------------------------------ quantization


def test_int8_per_dimension_exact_values():
    t = StoredTable.quantize(VECTORS, "int8")
    assert t.scale_axis == "dim" and t.values.dtype == np.int8 and t.scales.dtype == np.float32
    np.testing.assert_allclose(t.scales, [1 / 127, 2 / 127], rtol=1e-7)
    # -0.3 / (2/127) = -19.05 -> -19; 0.25 / (1/127) = 31.75 -> 32
    np.testing.assert_array_equal(t.values, [[127, -19], [32, 127]])
    np.testing.assert_allclose(t.dequantize(), [[1.0, -38 / 127], [32 / 127, 2.0]], rtol=1e-6)
    assert t.dtype_name == "int8" and len(t) == 2 and t.nbytes == 4 + 8


def test_int8_per_row_exact_values():
    t = StoredTable.quantize(VECTORS, "int8-row")
    assert t.scale_axis == "row"
    np.testing.assert_allclose(t.scales, [1 / 127, 2 / 127], rtol=1e-7)
    # row 0: -0.3 * 127 = -38.1 -> -38; row 1: 0.25 / (2/127) = 15.875 -> 16
    np.testing.assert_array_equal(t.values, [[127, -38], [16, 127]])
    np.testing.assert_allclose(t.dequantize(), [[1.0, -38 / 127], [32 / 127, 2.0]], rtol=1e-6)
    np.testing.assert_allclose(t.dequantize(np.array([1])), [[32 / 127, 2.0]], rtol=1e-6)
    np.testing.assert_allclose(t.dequantize(np.array([1, 0, 1])), t.dequantize()[[1, 0, 1]], rtol=0)
    assert t.dtype_name == "int8-row" and t.nbytes == 4 + 8


def test_negative_peaks_and_rounding_to_the_nearest_step():
    t = StoredTable.quantize(np.array([[-2.0, 0.5], [1.0, -1.0], [0.0, 0.26]], np.float32), "int8")
    # scales: 2/127 and 1/127; 1.0 -> 63.5 -> 64 (half to even), 0.26 -> 33.02 -> 33
    np.testing.assert_array_equal(t.values, [[-127, 64], [64, -127], [0, 33]])


def test_zero_columns_and_rows_get_a_unit_scale():
    vectors = np.array([[0.0, 1.0], [0.0, -0.5], [0.0, 0.0]], np.float32)
    dim = StoredTable.quantize(vectors, "int8")
    np.testing.assert_array_equal(dim.scales, np.float32([1.0, 1 / 127]))
    np.testing.assert_array_equal(dim.values[:, 0], [0, 0, 0])
    row = StoredTable.quantize(vectors, "int8-row")
    np.testing.assert_array_equal(row.scales, np.float32([1 / 127, 0.5 / 127, 1.0]))
    np.testing.assert_array_equal(row.dequantize()[2], [0.0, 0.0])
    tiny = StoredTable.quantize(np.array([[1e-45, 1.0]], np.float32), "int8")  # the peak / 127 underflows to 0
    assert tiny.scales[0] == 1.0 and tiny.values[0, 0] == 0
    empty = StoredTable.quantize(np.zeros((0, 3), np.float32), "int8")
    assert empty.values.shape == (0, 3) and np.array_equal(empty.scales, np.ones(3, np.float32))


def test_float_tables():
    half = StoredTable.quantize(np.array([[1.0, 0.1]]), "fp16")
    assert half.values.dtype == np.float16 and half.scales is None and half.scale_axis is None
    np.testing.assert_array_equal(half.dequantize(), np.array([[1.0, 0.1]], np.float16).astype(np.float32))
    assert half.dequantize().dtype == np.float32 and half.dtype_name == "fp16" and half.nbytes == 4
    full = StoredTable.quantize([[1.0, 0.1]], "fp32")
    assert full.values.dtype == np.float32 and full.dtype_name == "fp32" and full.nbytes == 8
    np.testing.assert_array_equal(full.dequantize(), np.float32([[1.0, 0.1]]))
    with pytest.raises(ConfigError, match="^unknown item table dtype 'int4'; use one of int8, int8-row, fp16, fp32$"):
        StoredTable.quantize(VECTORS, "int4")
    assert StoredTable.quantize(VECTORS).dtype_name == "int8"  # the default: one scale per dimension
    assert TABLE_DTYPES == ("int8", "int8-row", "fp16", "fp32")


class WrittenArrays:
    """The arrays a BundleWriter wrote, read back without opening a bundle, to test StoredTable.read's
    own checks (Bundle.open refuses a bundle with such a table earlier: see the last test here)."""

    def __init__(self, root):
        self.root = root

    def array(self, name, mmap=True):
        return np.load(self.root / name, mmap_mode="r" if mmap else None, allow_pickle=False)


def write_table(tmp_path, values, scales=None, axis=None, name="t"):
    writer = BundleWriter(tmp_path / name, name)
    entry = StoredTable(np.asarray(values), None if scales is None else np.asarray(scales, np.float32),
                        axis).manifest_entry(writer)
    return WrittenArrays(writer.root), entry  # the staging folder: the test reads the arrays before any manifest


@pytest.mark.parametrize("dtype", TABLE_DTYPES)
def test_a_table_reads_back_from_a_bundle(handmade_bundle, dtype):
    stored = StoredTable.quantize(VECTORS, dtype)
    bundle = Bundle.open(handmade_bundle(VECTORS, table=dtype))
    entry = bundle.manifest.items.embeddings.to_manifest()
    assert entry["file"] == "items/embeddings.npy" and entry["dtype"] == str(stored.values.dtype)
    assert ("scales" in entry) == (stored.scales is not None)
    back = StoredTable.read(bundle, entry)
    assert back.scale_axis == stored.scale_axis and back.dtype_name == dtype
    np.testing.assert_array_equal(back.dequantize(), stored.dequantize())


def test_a_bundle_with_scales_of_the_wrong_shape_does_not_open(handmade_bundle):
    root = handmade_bundle(VECTORS, table="int8")
    np.save(root / "items" / "scales.npy", np.ones(3, np.float32))
    with pytest.raises(BundleError, match="scales"):
        Bundle.open(root, verify=False)


def test_format_1_scales_are_per_row(tmp_path):
    bundle, entry = write_table(tmp_path, np.array([[127, -38], [16, 127]], np.int8), [1 / 127, 2 / 127], "row")
    del entry["scale_axis"]
    back = StoredTable.read(bundle, entry)
    assert back.scale_axis == "row"
    np.testing.assert_allclose(back.dequantize(), [[1.0, -38 / 127], [32 / 127, 2.0]], rtol=1e-6)


def test_a_scale_axis_without_scales_reads_as_a_float_table(tmp_path):
    """A spec naming an axis but no scales file (no writer makes one) is a float table: no axis, no scaling."""
    from edgerec.runtime.item_spec import TableSpec

    values = np.array([[0.5, -1.0], [2.0, 0.25]], np.float32)
    bundle, entry = write_table(tmp_path, values)
    back = StoredTable.read(bundle, TableSpec(entry["file"], "float32", None, "dim"))
    assert back.scales is None and back.scale_axis is None and back.dtype_name == "fp32"
    np.testing.assert_array_equal(back.dequantize(), values)


@pytest.mark.parametrize("axis,scales,expected", [("dim", np.ones(3), "(2,)"), ("row", np.ones(2), "(3,)"),
                                                  ("dim", np.ones((1, 2)), "(2,)")])
def test_scales_of_the_wrong_shape_are_refused(tmp_path, axis, scales, expected):
    bundle, entry = write_table(tmp_path, np.zeros((3, 2), np.int8), scales, axis)
    with pytest.raises(BundleError, match=rf"a {axis} scale needs {re.escape(expected)}; the bundle is damaged, "
                                          "re-export it$"):
        StoredTable.read(bundle, entry)


def test_other_bad_tables_are_refused(tmp_path):
    bundle, entry = write_table(tmp_path, np.zeros((3, 2), np.int8), np.ones(2), "column")
    with pytest.raises(BundleError, match="unknown item table scale_axis 'column'"):
        StoredTable.read(bundle, entry)
    bundle, entry = write_table(tmp_path, np.zeros((3, 2), np.int8), name="noscales")
    with pytest.raises(BundleError, match="^the bundle's int8 item table has no scales; re-export the bundle$"):
        StoredTable.read(bundle, entry)
    bundle, entry = write_table(tmp_path, np.zeros(6, np.float32), name="flat")
    with pytest.raises(BundleError, match=r"must be 2-D, it has shape \(6,\)"):
        StoredTable.read(bundle, entry)


# ------------------------------------------------------------------ exact scan


def scans(stored):
    return [ExactScan(stored, kernel) for kernel in available_kernels()]


def test_int8_per_dimension_scores_exactly():
    stored = StoredTable.quantize(VECTORS, "int8")  # [[127, -19], [32, 127]], scales [1, 2] / 127
    # the query folds the scales in: [0.5, -1] * scales = [0.5, -2] / 127; its step is 2 / 127^2, so it
    # quantizes to [32 (31.75), -127]; dots: 127*32 + 19*127 = 6477 and 32*32 - 127*127 = -15105
    step = 2 / 127 / 127
    for scan in scans(stored):
        np.testing.assert_allclose(scan.scores(np.array([0.5, -1.0])), [6477 * step, -15105 * step], rtol=1e-6,
                                   err_msg=scan.kernel)
        rows, values = scan.top(np.array([0.5, -1.0]), 1)
        assert rows.tolist() == [0]
        np.testing.assert_allclose(values, [6477 * step], rtol=1e-6)


def test_int8_per_row_scores_exactly():
    stored = StoredTable.quantize(VECTORS, "int8-row")  # [[127, -38], [16, 127]], scales [1, 2] / 127
    # the query [0.25, -1] has step 1/127 and quantizes to [32, -127]; dots 8890 and -15617, each times
    # the query step and the row's scale
    for scan in scans(stored):
        np.testing.assert_allclose(scan.scores(np.array([0.25, -1.0])),
                                   [8890 / 127 / 127, -15617 * 2 / 127 / 127], rtol=1e-6, err_msg=scan.kernel)
        assert not scan.streams_top_k


@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
def test_float_tables_score_the_stored_values(dtype):
    stored = StoredTable.quantize(VECTORS, dtype)
    for scan in scans(stored):
        np.testing.assert_allclose(scan.scores(np.array([2.0, 1.0])), stored.dequantize() @ [2.0, 1.0], rtol=1e-3,
                                   err_msg=scan.kernel)
        assert not scan.streams_top_k


@pytest.mark.parametrize("dtype", TABLE_DTYPES)
def test_scores_are_one_float32_per_row_in_every_kernel(dtype):
    stored = StoredTable.quantize(np.random.default_rng(1).normal(size=(37, 5)), dtype)
    for scan in scans(stored):
        scores = scan.scores(np.ones(5, np.float32))
        assert scores.shape == (37,) and scores.dtype == np.float32, scan.kernel
    exact = ExactScan(stored, "numpy").exact(np.array([3, 1]), np.ones(5))  # a float64 query as well
    assert exact.shape == (2,) and exact.dtype == np.float32


def test_the_numpy_kernel_keeps_a_float_query_in_float32():
    """Only numkong's fp16 kernels need the query in fp16; the numpy one keeps its full precision."""
    stored = StoredTable.quantize(np.random.default_rng(2).normal(size=(50, 8)), "fp16")
    user = np.random.default_rng(3).normal(size=8).astype(np.float32)
    np.testing.assert_allclose(ExactScan(stored, "numpy").scores(user), stored.dequantize() @ user, rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("dtype", ["int8", "fp32"])
def test_the_numpy_kernel_scores_right_in_concurrent_requests(monkeypatch, dtype):
    """Requests of several threads share one scan: each needs scratch memory of its own (one shared
    block buffer let a thread multiply the rows another had just copied in: a few wrong scores per
    hundred scans)."""
    import sys
    import threading

    monkeypatch.setattr(retrieval, "CHUNK_BYTES", 4 * 16 * 16)  # 16-row blocks: many per scan
    rng = np.random.default_rng(4)
    scan = ExactScan(StoredTable.quantize(rng.normal(size=(1_000, 16)), dtype), "numpy")
    queries = rng.normal(size=(6, 16)).astype(np.float32)
    want = [scan.scores(q) for q in queries]
    wrong = []

    def requests(n):
        for i in range(150):
            q = (n + i) % len(queries)
            if not np.array_equal(scan.scores(queries[q]), want[q]):
                wrong.append(q)

    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads swap often, as on a busy device
    try:
        threads = [threading.Thread(target=requests, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(before)
    assert not wrong


@pytest.mark.parametrize("dtype", TABLE_DTYPES)
def test_a_query_of_another_length_is_refused_by_every_kernel(dtype):
    """The compiled kernel would read any query whose length fits the table's bytes: refused first."""
    stored = StoredTable.quantize(np.random.default_rng(5).normal(size=(40, 8)), dtype)
    for scan in scans(stored):
        for bad in (np.ones(4), np.ones(16), np.ones((1, 8)), np.ones(0)):
            with pytest.raises(ConfigError, match="this bundle's encoder"):
                scan.scores(bad)
            with pytest.raises(ConfigError, match="this bundle's encoder"):
                scan.top(bad, 5)


needs_both = pytest.mark.skipif(
    not (importlib.util.find_spec("usearch") and importlib.util.find_spec("onnxruntime")),
    reason="needs usearch and onnxruntime")


def in_fresh_process(code: str) -> tuple[int, str, str]:
    """Runs code in a new interpreter (the import order is the point; a crash must not take pytest with it)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout.strip(), done.stderr[-2000:]


GOLDEN_PATH = str(Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle")


def app_with_an_index(first: str, backend: str, cache) -> tuple[int, str, str]:
    """An app in a fresh process: `first` (its imports), then a Recommender with an index built before any
    request, one event and a list; prints the list's length and whether the index was passed over."""
    return in_fresh_process(
        f"{first}\nfrom edgerec.runtime import Recommender\n"
        f"rec = Recommender.open({GOLDEN_PATH!r}, backend={backend!r}, ann='usearch', cache_dir={str(cache)!r})\n"
        f"assert rec.models.ann_index() is not None\n"
        f"rec.record('u', rec.catalog.item_id(3), 'finish')\n"
        f"print(len(rec.recommend('u', k=5)), 'ann_fallback' in rec.stats()['counters'])\n")


@needs_both
def test_an_ann_index_built_before_the_onnx_session_does_not_crash_the_process(tmp_path):
    """usearch loaded before onnxruntime made onnxruntime's import crash the process (segfault):
    an app that builds the index first, then opens its ONNX encoder, must get its list."""
    code_, out, err = app_with_an_index("", "onnx", tmp_path)
    assert (code_, out) == (0, "5 False"), (code_, err)


@needs_both
@pytest.mark.skipif(not importlib.util.find_spec("ai_edge_litert"), reason="needs the tflite engine")
def test_an_app_that_imported_usearch_itself_gets_its_index_on_the_tflite_engine(tmp_path):
    """The runtime imported onnxruntime before usearch even when the app had imported usearch already:
    that import is the crash (segfault). The engine here is TFLite, so onnxruntime is not needed at all."""
    code_, out, err = app_with_an_index("import usearch.index", "tflite", tmp_path)
    assert (code_, out) == (0, "5 False"), (code_, err)


@needs_both
def test_an_app_that_imported_usearch_before_the_onnx_engine_is_told_so_instead_of_crashing(tmp_path):
    """onnxruntime imported after usearch dies in its import (segfault): the runtime refuses in words."""
    code = (f"import usearch\n"
            f"from edgerec.errors import ConfigError\n"
            f"from edgerec.runtime import Recommender\n"
            f"try:\n"
            f"    Recommender.open({GOLDEN_PATH!r}, backend='onnx', history=None).warm_up()\n"
            f"except ConfigError as e:\n"
            f"    print(e)\n")
    code_, out, err = in_fresh_process(code)
    assert code_ == 0, (code_, err)
    assert out == ("usearch was imported before onnxruntime, and importing onnxruntime now would crash the "
                   "process (the two libraries' C++ runtimes clash): import onnxruntime first, before usearch")


def test_a_zero_query_scores_zero_everywhere():
    for scan in scans(StoredTable.quantize(VECTORS, "int8")):
        np.testing.assert_array_equal(scan.scores(np.zeros(2)), [0.0, 0.0])


@pytest.mark.parametrize("dtype", ["int8", "int8-row", "fp32"])
def test_top_breaks_ties_by_lowest_row(dtype):
    table = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.0], [1.0, 0.0], [0.0, -1.0], [1.0, 0.0]], np.float32)
    for scan in scans(StoredTable.quantize(table, dtype)):
        user = np.array([1.0, 0.0])
        for k, expected in ((1, [1]), (2, [1, 3]), (4, [1, 3, 5, 2]), (6, [1, 3, 5, 2, 0, 4]),
                            (50, [1, 3, 5, 2, 0, 4])):
            rows, values = scan.top(user, k)
            assert rows.tolist() == expected, (scan.kernel, k)
            np.testing.assert_array_equal(values, scan.scores(user)[rows])
        rows, values = scan.top(user, 0)
        assert rows.tolist() == [] and values.tolist() == []


def test_kernel_choice_and_errors():
    int8 = StoredTable.quantize(VECTORS, "int8")
    assert ExactScan(int8).kernel == available_kernels()[0]
    assert KERNELS == ("native", "numkong-packed", "numkong", "numpy") and available_kernels()[-1] == "numpy"
    with pytest.raises(ConfigError, match="^unknown scan kernel 'gpu'; choose one of native, numkong-packed, "
                                          "numkong, numpy or auto$"):
        ExactScan(int8, "gpu")
    assert ("numkong" in available_kernels()) == (importlib.util.find_spec("numkong") is not None)
    assert ("numkong-packed" in available_kernels()) == ("numkong" in available_kernels())
    numpy_scan = ExactScan(int8, "numpy")
    assert numpy_scan.label == "numpy" and not numpy_scan.streams_top_k
    assert numpy_scan.index_bytes == 2 * 2 * 4  # a float32 scratch of the whole (tiny) table
    if native_scan() is None:
        with pytest.raises(ConfigError, match="reinstall edgerec with a C compiler"):
            ExactScan(int8, "native")
        return
    native = ExactScan(int8, "native")
    assert native.label == f"native ({native_scan().kernel_name(2)})" and native.streams_top_k
    assert native.index_bytes == 0
    assert not ExactScan(StoredTable.quantize(VECTORS, "int8-row"), "native").streams_top_k
    fallback = ExactScan(StoredTable.quantize(VECTORS, "fp32"), "native")  # the compiled kernel is int8 only
    assert fallback.kernel == ("numkong" if "numkong" in available_kernels() else "numpy") and not fallback.streams_top_k


def test_missing_kernels_name_what_to_install(monkeypatch):
    int8 = StoredTable.quantize(VECTORS, "int8")
    monkeypatch.setattr(retrieval, "native_scan", lambda: None)
    monkeypatch.setattr(retrieval, "numkong_available", lambda: False)
    assert available_kernels() == ["numpy"] and ExactScan(int8).kernel == "numpy"
    with pytest.raises(ConfigError, match="^the native scan kernel is not installed here: reinstall edgerec with a "
                                          "C compiler$"):
        ExactScan(int8, "native")
    for kernel in ("numkong", "numkong-packed"):
        with pytest.raises(ConfigError, match=f"^the {kernel} scan kernel is not installed here: pip install numkong$"):
            ExactScan(int8, kernel)


def test_the_compiled_kernel_hands_float_tables_to_numpy_without_numkong(monkeypatch):
    if native_scan() is None:
        pytest.skip("no compiled kernel in this install")
    monkeypatch.setattr(retrieval, "numkong_available", lambda: False)
    scan = ExactScan(StoredTable.quantize(VECTORS, "fp32"), "native")
    assert scan.kernel == "numpy" and scan.label == "numpy"
    np.testing.assert_allclose(scan.scores(np.array([1.0, 1.0])), [0.7, 2.25], rtol=1e-6)


def test_numpy_scratch_is_bounded_by_the_chunk_size():
    wide = StoredTable.quantize(np.ones((5_000, 64), np.float32), "int8")
    assert ExactScan(wide, "numpy").index_bytes == CHUNK_BYTES == 256 * 1024
    assert ExactScan(StoredTable.quantize(np.ones((3, 200_000), np.float32), "int8"), "numpy").index_bytes == 200_000 * 4
    narrow = StoredTable.quantize(np.ones((100_000, 1), np.float32), "int8")  # one value per row: 65,536 rows fit
    assert ExactScan(narrow, "numpy").index_bytes == CHUNK_BYTES


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6_000), st.sampled_from([3, 16, 64, 100]), st.integers(0, 10**6))
def test_every_kernel_gives_the_exact_integer_dots(n, dim, seed):
    """Integer dot products are exact in every kernel (the numpy one works in cache-sized chunks), so
    int8 scores must agree to the bit across kernels and with a plain int64 reference."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-127, 128, (n, dim), dtype=np.int8)
    if n > 6:
        values[n // 2:n // 2 + 3] = values[:3]  # exact duplicates: their ties must break by row everywhere
    stored = StoredTable(values, np.full(dim, 1 / 127, np.float32), "dim")
    user = rng.normal(size=dim).astype(np.float32)
    query = user * stored.scales  # the scales folded into the query, in float32 as on the device
    step = float(np.abs(query).max()) / 127.0
    q = np.clip(np.round(query / step), -127, 127).astype(np.int64)
    reference = np.multiply(values.astype(np.int64) @ q, np.float32(step), dtype=np.float32)
    for scan in scans(stored):
        np.testing.assert_array_equal(scan.scores(user), reference, err_msg=scan.kernel)
        skip = np.unique(rng.integers(0, n, rng.integers(0, n // 2 + 2)))  # a user's seen rows
        ranked = np.lexsort((np.arange(n), -reference))
        for k in (1, 7, n // 2 + 1, n + 3):
            rows, scores = scan.top(user, k)
            np.testing.assert_array_equal(rows, ranked[:k], err_msg=scan.kernel)
            np.testing.assert_array_equal(scores, reference[rows])
            rows, scores = scan.top(user, k, skip)  # the k best of the rows not skipped
            np.testing.assert_array_equal(rows, ranked[~np.isin(ranked, skip)][:k], err_msg=scan.kernel)
            np.testing.assert_array_equal(scores, reference[rows])


def test_exact_rescoring_uses_the_dequantized_rows():
    stored = StoredTable.quantize(VECTORS, "int8")
    scan = ExactScan(stored, "numpy")
    np.testing.assert_allclose(scan.exact(np.array([1, 0]), np.array([1.0, 1.0])),
                               [32 / 127 + 2.0, 1.0 - 38 / 127], rtol=1e-6)


# ------------------------------------------------------------------ top rows


def test_top_rows_small_cases():
    scores = np.array([0.5, 2.0, -np.inf, 2.0, 1.0, -np.inf], np.float32)
    assert top_rows(scores, 1).tolist() == [1]
    assert top_rows(scores, 3).tolist() == [1, 3, 4]
    assert top_rows(scores, 10).tolist() == [1, 3, 4, 0]  # never a -inf row
    assert top_rows(scores, 0).tolist() == [] and top_rows(scores, -2).tolist() == []
    assert top_rows(np.zeros(0, np.float32), 3).tolist() == []
    assert top_rows(np.full(4, -np.inf), 2).tolist() == []
    assert top_rows(scores, 2).dtype == np.int64


def test_top_rows_on_large_arrays_with_ties():
    scores = np.zeros(10_000, np.float32)  # large enough for the sampled threshold
    scores[[5_000, 7_000]] = 1.0
    assert top_rows(scores, 5).tolist() == [5_000, 7_000, 0, 1, 2]
    scores = np.full(10_000, -np.inf, np.float32)
    scores[[3, 4_001]] = [0.5, 0.25]  # the strided sample sees no finite score
    assert top_rows(scores, 1).tolist() == [3] and top_rows(scores, 2).tolist() == [3, 4_001]
    assert top_rows(scores, 5).tolist() == [3, 4_001]
    ties = np.round(np.random.default_rng(0).normal(size=50_000), 1).astype(np.float32)
    expected = np.lexsort((np.arange(len(ties)), -ties))[:300]
    assert top_rows(ties, 300).tolist() == expected.tolist()


def test_top_rows_rows_exactly_on_many_random_cases():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(2, 3_000))
        k = int(rng.integers(1, n))
        scores = rng.normal(size=n).astype(np.float32)
        if rng.random() < 0.3:
            scores = np.round(scores, 1)  # ties
        expected = np.lexsort((np.arange(n), -scores))[:k]
        np.testing.assert_array_equal(top_rows(scores, k), expected, err_msg=f"n={n} k={k}")


def test_sorted_contains():
    values = np.array([2, 5, 9])
    assert sorted_contains(values, np.array([1, 2, 3, 5, 9, 10, 100])).tolist() == [
        False, True, False, True, True, False, False]
    assert sorted_contains(np.zeros(0, np.int64), np.array([0, 1])).tolist() == [False, False]
    assert sorted_contains(np.zeros(0, np.int64), np.array([0, 1])).dtype == bool  # usable as a mask
    assert sorted_contains(values, np.array([0, 9])).dtype == bool
    assert sorted_contains(values, np.zeros(0, np.int64)).tolist() == []


# ------------------------------------------------------------------ approximate index


def unit_rows(n, dim, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_ann_index_finds_the_nearest_and_caches_itself(tmp_path):
    vectors = unit_rows(300, 16)
    cache = tmp_path / "a" / "b" / "ann.usearch"  # folders made as needed
    calls = []

    def rows(at):
        calls.append(len(at))
        return vectors[at]

    index = AnnIndex(rows, 300, 16, cache)
    assert calls == [300] and cache.exists() and len(index.index) == 300 and index.count == 300
    for r in (0, 7, 299):
        assert index.search(vectors[r], 1).tolist() == [r]
    found = index.search(vectors[7], 10)
    assert found.dtype == np.int64 and len(found) == 10 and found[0] == 7
    again = AnnIndex(rows, 300, 16, cache)  # restored from the cache: no vectors read
    assert calls == [300] and again.search(vectors[7], 10).tolist() == found.tolist()
    smaller = AnnIndex(lambda at: vectors[at], 200, 16, cache)  # a cache of another size is rebuilt
    assert len(smaller.index) == 200 and smaller.search(vectors[250], 5).max() < 200
    assert len(AnnIndex(rows, 200, 16, cache).index) == 200 and calls == [300]


def test_ann_index_without_a_cache(tmp_path):
    vectors = unit_rows(50, 8)
    index = AnnIndex(lambda at: vectors[at], 50, 8, None)
    assert index.search(vectors[3], 1).tolist() == [3] and list(tmp_path.iterdir()) == []



def test_the_native_scan_refuses_a_skip_list_out_of_order():
    if "native" not in available_kernels():
        pytest.skip("no compiled scan here")
    table, query = np.ones((10, 16), np.int8), np.ones(16, np.int8)
    rows, dots = np.empty(3, np.int64), np.empty(3, np.int32)
    for bad in ([4, 2], [3, 3]):
        with pytest.raises(ValueError, match="skip must hold rows in increasing order, each once"):
            native_scan().top_k(table, query, rows, dots, np.array(bad, np.int64))
    assert native_scan().top_k(table, query, rows, dots, np.arange(8, dtype=np.int64)) == 2 and rows[:2].tolist() == [8, 9]


def test_a_users_skipped_rows_are_sorted_unique_int64_whatever_the_catalog_lost():
    from edgerec.runtime.retrieve import _sorted_union

    for rows, more, want in ((np.zeros(0, np.int64), set(), []), (np.zeros(0, np.int64), {9, 2, 5}, [2, 5, 9]),
                             (np.array([7, 3], np.int64), set(), [3, 7]),
                             (np.array([7, 3], np.int32), {3, 11, 1}, [1, 3, 7, 11])):
        got = _sorted_union(rows, more)
        assert got.dtype == np.int64 and got.tolist() == want  # the compiled scan reads int64, in order
