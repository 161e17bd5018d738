"""Retrieval at its limits (audit A5): rows wider than the compiled kernel takes, exact int8 sums in the
numpy kernel at large dims, a damaged ANN cache file, ANN candidates cut short by creator caps, and
ann="usearch" where usearch is missing."""

import importlib.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import retrieval
from edgerec.runtime.item_table import StoredTable
from edgerec.runtime.retrieval import (
    EXACT_SPAN,
    NATIVE_MAX_DIM,
    AnnIndex,
    ExactScan,
    available_kernels,
    digest_path,
    native_scan,
    require_ann,
)

ROOT = Path(__file__).resolve().parents[1]
needs_usearch = pytest.mark.skipif(not importlib.util.find_spec("usearch"), reason="needs usearch")


def int64_dots(values: np.ndarray, scan: ExactScan, user: np.ndarray) -> np.ndarray:
    query, _ = scan._query(user)
    return values.astype(np.int64) @ query.astype(np.int64)


# ------------------------------------------------------------------ rows wider than the compiled kernel


def test_the_python_limit_is_the_compiled_kernels():
    """NATIVE_MAX_DIM mirrors MAX_DIM of scan_kernels.h: the kernel takes rows of that many values, not one more."""
    header = (ROOT / "runtime" / "scan_kernels.h").read_text()
    assert int(re.search(r"#define MAX_DIM (\d+)", header).group(1)) == NATIVE_MAX_DIM
    if native_scan() is None:
        pytest.skip("no compiled kernel in this install")
    for dim in (NATIVE_MAX_DIM, NATIVE_MAX_DIM + 1):
        table, query, out = np.ones((3, dim), np.int8), np.ones(dim, np.int8), np.empty(3, np.int32)
        if dim > NATIVE_MAX_DIM:
            with pytest.raises(ValueError, match=f"rows of {dim} int8 values"):
                native_scan().dots(table, query, out)
        else:
            native_scan().dots(table, query, out)
            assert out.tolist() == [dim] * 3


@pytest.mark.parametrize("dim", [NATIVE_MAX_DIM + 1, 5000])
def test_auto_passes_over_the_compiled_kernel_for_wider_rows(dim):
    values = np.random.default_rng(dim).integers(-127, 128, (40, dim), dtype=np.int8)
    stored = StoredTable(values, np.full(dim, 1 / 127, np.float32), "dim")
    user = np.random.default_rng(1).normal(size=dim).astype(np.float32)
    scan = ExactScan(stored)
    assert scan.kernel == [k for k in available_kernels() if k != "native"][0]
    rows, _ = scan.top(user, 5)
    ranked = np.lexsort((np.arange(40), -int64_dots(values, scan, user)))
    assert rows.tolist() == ranked[:5].tolist()
    if native_scan() is not None:
        with pytest.raises(ConfigError, match=f"^the native scan kernel takes vectors of at most {NATIVE_MAX_DIM} "
                                              f"values and this bundle's have {dim}: use kernel='auto'"):
            ExactScan(stored, "native")


def test_auto_keeps_the_compiled_kernel_up_to_its_limit():
    if native_scan() is None:
        pytest.skip("no compiled kernel in this install")
    stored = StoredTable(np.ones((4, NATIVE_MAX_DIM), np.int8), np.ones(NATIVE_MAX_DIM, np.float32), "dim")
    assert ExactScan(stored).kernel == "native" and ExactScan(stored, "native").kernel == "native"
    wide_floats = StoredTable.quantize(np.ones((4, NATIVE_MAX_DIM + 1), np.float32), "fp32")
    assert ExactScan(wide_floats, "native").kernel != "native"  # float tables never reach the compiled kernel


def test_a_bundle_wider_than_the_compiled_kernel_recommends(handmade_bundle, tmp_path):
    """dim 4112 passed the schema and export, then every personal request failed in the scan."""
    from edgerec.runtime import Recommender

    dim = 4112
    vectors = np.random.default_rng(5).normal(size=(30, dim)).astype(np.float32)
    with Recommender.open(handmade_bundle(vectors, table="int8"), history=tmp_path / "h.db") as rec:
        for i in range(4):
            rec.record("alice", f"i{i}", "finish")
        assert len(rec.recommend("alice", k=5)) == 5
        assert rec.scan.kernel != "native"


# ------------------------------------------------------------------ exact sums in the numpy kernel


@pytest.mark.parametrize("dim", [EXACT_SPAN, EXACT_SPAN + 1, 2048, 4096])
def test_the_numpy_kernel_sums_int8_dots_exactly_at_any_dim(dim):
    """float32 sums of int8 products are exact only below 2**24: at dim 2048 half of the rows were off."""
    assert 128 * 127 * EXACT_SPAN < 2**24 <= 128 * 127 * (EXACT_SPAN + 1)
    rng = np.random.default_rng(dim)
    values = rng.choice(np.array([119, 120, 127], np.int8), (300, dim))
    values[:, :3] = -128  # the one value of magnitude 128, against a query of -127
    stored = StoredTable(values, np.ones(dim, np.float32), "dim")
    scan = ExactScan(stored, "numpy")
    user = np.r_[-np.ones(3), np.ones(dim - 3)].astype(np.float32)  # every product positive: the largest sums
    query, _ = scan._query(user)
    np.testing.assert_array_equal(scan._dots(query), int64_dots(values, scan, user))


# ------------------------------------------------------------------ a damaged ANN cache file


DAMAGED_CACHE = """
import hashlib, sys
import numpy as np
from pathlib import Path
from edgerec.runtime.retrieval import AnnIndex, digest_path

v = np.random.default_rng(3).normal(size=(300, 16)).astype(np.float32)
v /= np.linalg.norm(v, axis=1, keepdims=True)
cache = Path(sys.argv[1])
calls = []

def rows(at):
    calls.append(len(at))
    return v[at]

def opened():
    before = len(calls)
    index = AnnIndex(rows, 300, 16, cache)
    found = [int(index.search(v[r], 1)[0]) for r in range(0, 300, 7)]
    # each row is its own nearest; an approximate index may miss one or two (a rebuilt HNSW graph missed
    # 203 once), damaged bytes served garbage
    assert sum(f == r for f, r in zip(found, range(0, 300, 7))) >= 40, "wrong rows served"
    return len(calls) > before  # rebuilt

assert opened() and digest_path(cache).read_text() == hashlib.sha256(cache.read_bytes()).hexdigest()
assert not opened()  # restored: the digest matches
size = cache.stat().st_size
noise = np.random.default_rng(1)
for at, length, fill in ((size // 3, 1000, None), (size // 2, 200, None), (2000, 2000, 0), (64, 200, 255)):
    data = bytearray(cache.read_bytes())
    data[at:at + length] = noise.integers(0, 256, length, dtype=np.uint8).tobytes() if fill is None \\
        else bytes([fill]) * length
    cache.write_bytes(bytes(data))  # in place, the same size: usearch still opens it
    assert cache.stat().st_size == size
    assert opened(), (at, length)  # rebuilt and saved again
    assert not opened()
digest_path(cache).unlink()  # no digest (an older edgerec's cache): built again
assert opened() and digest_path(cache).exists() and not opened()
print("ok")
"""


@needs_usearch
def test_a_damaged_ann_cache_is_built_again(tmp_path):
    """Damaged bytes that usearch still restored crashed the process (SIGSEGV), hung, or served wrong rows:
    in a fresh process, so a crash fails this test instead of the run."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(DAMAGED_CACHE), str(tmp_path / "ann.usearch")],
                          capture_output=True, text=True, timeout=180)
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr[-3000:]


@needs_usearch
def test_an_ann_cache_whose_digest_cannot_be_written_still_serves(tmp_path):
    vectors = np.eye(8, dtype=np.float32)
    cache = tmp_path / "ann.usearch"
    digest_path(cache).mkdir()  # a folder stands where the digest goes
    index = AnnIndex(lambda at: vectors[at], 8, 8, cache)
    assert index.unsaved == "a folder stands where the cache file's digest goes"
    assert index.search(vectors[3], 1).tolist() == [3]


# ------------------------------------------------------------------ ANN candidates and creator caps


@needs_usearch
def test_ann_candidates_that_the_creator_cap_cuts_short_fall_back_to_the_exact_scan(handmade_bundle, tmp_path):
    """The index's candidates came from one creator: with max_per_creator=1 the list held 1 item, not k."""
    from edgerec.runtime import Recommender
    from edgerec.runtime.policies import Policy

    rng = np.random.default_rng(0)
    vectors = 0.05 * rng.normal(size=(520, 8)).astype(np.float32)
    vectors[:500, 0] += 1  # creator a's items: the user's direction
    vectors[500:, 1] += 1  # twenty creators' items, far from it: the index never returns them
    creators = ["a"] * 500 + [f"c{i}" for i in range(20)]
    bundle = handmade_bundle(vectors, creator=creators)
    lists = {}
    for ann in (None, "usearch"):
        with Recommender.open(bundle, history=tmp_path / f"{ann}.db", ann=ann, cache_dir=tmp_path) as rec:
            for i in range(5):
                rec.record("alice", f"i{i}", "finish")
            lists[ann] = [r.item_id for r in rec.recommend("alice", k=10, policy=Policy(max_per_creator=1))]
            if ann:
                assert rec.stats()["counters"].get("ann_too_few") == 1
    assert len(lists[None]) == 10 and lists["usearch"] == lists[None]


# ------------------------------------------------------------------ ann="usearch" without usearch


def test_ann_without_usearch_says_what_to_install(monkeypatch):
    require_ann(None)  # the exact scan needs nothing
    if importlib.util.find_spec("usearch") is not None:
        require_ann("usearch")
    monkeypatch.setitem(sys.modules, "usearch", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "usearch.index", None)
    message = "^ann='usearch' needs usearch, which is not installed here: pip install edgerec\\[ann\\], or open " \
              "without ann for the exact scan$"
    with pytest.raises(ConfigError, match=message):
        require_ann("usearch")
    with pytest.raises(ConfigError, match=message):  # warm_up builds the index: the same words, not the import's
        AnnIndex(lambda at: np.eye(4, dtype=np.float32)[at], 4, 4, None)
    extras = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^ann = \["usearch', extras, re.M)  # the extra the hint names
    assert retrieval.ANN_EXTRA == "pip install edgerec[ann]"


def test_usearch_that_does_not_import_is_a_config_error(monkeypatch):
    def broken():
        raise ImportError("libstdc++ missing")

    monkeypatch.setattr(retrieval, "import_usearch", broken)
    monkeypatch.setattr(retrieval.importlib.util, "find_spec", lambda name: object())
    with pytest.raises(ConfigError, match=r"^usearch is installed but does not import here \(ImportError\)"):
        AnnIndex(lambda at: np.eye(4, dtype=np.float32)[at], 4, 4, None)
