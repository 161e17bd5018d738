"""Guard tests of runtime/file_blocks.py (mutation testing, note 17 of tools/mutation-scores.md): the
.npy header read without the data (both header versions, where the data starts), the refusals of
hostile headers with their whole messages (no host path in them), blocks of exactly the asked size
(and of BLOCK_BYTES by default), string blocks carried across block edges, and every field of
array_stats worked out by hand, falls and repeats across block edges included."""

from __future__ import annotations

import json
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime import Bundle, file_blocks
from edgerec.runtime.bundle import Manifest, embedding_space_id, sha256_file
from edgerec.runtime.file_blocks import (
    array_stats,
    damaged,
    npy_blocks,
    npy_header,
    read_range,
    string_blocks,
)

DAMAGED = "; the bundle is damaged"


def _save(path, array, version=None):
    with open(path, "wb") as handle:
        np.lib.format.write_array(handle, np.asarray(array), version=version)
    return path


def _blocks(path, rows=None):
    return [(first, block.tolist()) for first, block in npy_blocks(path, rows)]


def test_damaged_names_the_file_and_the_rule():
    with pytest.raises(BundleError) as caught:
        damaged("items/x.npy", "must hold 3 values")
    assert str(caught.value) == ("items/x.npy must hold 3 values; the bundle is damaged or from a broken exporter, "
                                 "re-export it")


@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
def test_the_header_gives_dtype_shape_and_where_the_data_starts(tmp_path, version):
    path = _save(tmp_path / "a.npy", np.array([5, -2, 9], "<i4"), version)
    dtype, shape, offset = npy_header(path)
    assert dtype == np.dtype("<i4") and shape == (3,)
    data = path.read_bytes()
    assert len(data) - offset == 12 and np.frombuffer(data[offset:], "<i4").tolist() == [5, -2, 9]
    big = _save(tmp_path / "big.npy", np.array([5, -2, 9], ">i4"), version)  # the spec's one layout, on open
    assert _refusal(big).startswith("bundle array big.npy is stored big-endian or in Fortran order")
    dtype, shape, _ = npy_header(_save(tmp_path / "b.npy", np.zeros((2, 3), np.float32), version))
    assert (dtype, shape) == (np.dtype(np.float32), (2, 3))


def _refusal(path) -> str:
    with pytest.raises(BundleError) as caught:
        npy_header(path)
    return str(caught.value)


def test_object_fortran_and_negative_headers_are_refused_whole(tmp_path):
    path = _save(tmp_path / "f.npy", np.asfortranarray(np.ones((2, 3))))
    assert _refusal(path) == ("bundle array f.npy cannot be read (object or Fortran-ordered arrays are not bundle "
                              "arrays)" + DAMAGED)
    raw = _save(tmp_path / "o.npy", np.arange(5, dtype="<i4")).read_bytes()
    (tmp_path / "o.npy").write_bytes(raw.replace(b"'<i4'", b"'|O' ", 1))
    assert _refusal(tmp_path / "o.npy") == ("bundle array o.npy cannot be read (object or Fortran-ordered arrays are "
                                            "not bundle arrays)" + DAMAGED)
    # numpy reads a negative dimension without complaint; array_stats would then summarise nothing
    (tmp_path / "n.npy").write_bytes(raw.replace(b"(5,), ", b"(-5,),", 1))
    assert _refusal(tmp_path / "n.npy") == "bundle array n.npy cannot be read (its header gives the shape (-5,))" + DAMAGED
    (tmp_path / "t.npy").write_bytes(raw[:20])
    assert _refusal(tmp_path / "t.npy").startswith("bundle array t.npy cannot be read (EOF: reading array header")
    (tmp_path / "s.npy").write_bytes(raw.replace(b"(5,), ", b"(5,)+(", 1))
    assert _refusal(tmp_path / "s.npy") == ("bundle array s.npy cannot be read (('EOF in multi-line statement', "
                                            "(2, 0))); the bundle is damaged")


def _garble_header(root: Path, name: str) -> None:
    """An unbalanced bracket in the shape of a bundle array's header, the checksums made to match."""
    path = root / name
    raw = path.read_bytes()
    shape = raw.index(b"'shape': (") + len(b"'shape': (")
    end = raw.index(b")", shape) + 1
    path.write_bytes(raw[:shape] + raw[shape:end - 1].ljust(end - shape - 3) + b")+(" + raw[end:])
    manifest = root / "manifest.json"
    data = json.loads(manifest.read_text())
    data["files"][name].update(bytes=path.stat().st_size, sha256=sha256_file(path))
    m = Manifest.from_dict(data)
    data["embedding_space"] = embedding_space_id(m.files, m.models, m.items)
    manifest.write_text(json.dumps(data))


@pytest.mark.parametrize("name", ["items/popularity.npy", "items/embeddings.npy"])
def test_a_garbled_array_header_in_a_bundle_is_a_bundle_error(tmp_path, name):
    """numpy retries a header that is not a Python literal through the tokenizer, whose error escaped both
    the checks at open (popularity: npy_header) and Bundle.array (the embeddings are mapped with np.load)."""
    root = Path(shutil.copytree(Path(__file__).parents[1] / "spec" / "golden" / "bundle", tmp_path / "bundle"))
    _garble_header(root, name)
    with pytest.raises(BundleError) as caught:
        Bundle.open(root)
    assert str(caught.value) == (f"bundle array {name.split('/')[-1] if 'popularity' in name else name} cannot be "
                                 "read (('EOF in multi-line statement', (2, 0))); the bundle is damaged")


def test_an_unreadable_file_is_refused_without_its_host_path(tmp_path):
    folder = tmp_path / "alice"
    folder.mkdir()
    assert _refusal(folder / "gone.npy") == ("bundle array gone.npy cannot be read (No such file or directory); "
                                             "the bundle is damaged or unreadable")
    assert _refusal(folder) == "bundle array alice cannot be read (Is a directory); the bundle is damaged or unreadable"


def test_blocks_have_the_asked_size_and_the_last_one_the_rest(tmp_path):
    path = _save(tmp_path / "a.npy", np.arange(5, dtype=np.int16))
    assert _blocks(path, 2) == [(0, [0, 1]), (2, [2, 3]), (4, [4])]
    assert _blocks(path, 5) == [(0, [0, 1, 2, 3, 4])]
    assert _blocks(path, 9) == [(0, [0, 1, 2, 3, 4])]
    assert _blocks(_save(tmp_path / "e.npy", np.zeros(0, np.int64)), 2) == []
    assert _blocks(_save(tmp_path / "s.npy", np.int32(7))) == [(0, [7])]  # a 0-d array is one value
    assert _blocks(_save(tmp_path / "m.npy", np.arange(6).reshape(2, 3)), 4) == [(0, [0, 1, 2, 3]), (4, [4, 5])]


def test_the_default_block_is_a_quarter_mib_of_values(tmp_path):
    bytes_ = np.arange(file_blocks.BLOCK_BYTES + 3, dtype=np.int64).astype(np.uint8)
    sizes = [(first, len(block)) for first, block in npy_blocks(_save(tmp_path / "u.npy", bytes_))]
    assert sizes == [(0, 1 << 18), (1 << 18, 3)]
    wide = np.arange((1 << 15) + 1, dtype=np.int64)
    sizes = [(first, len(block)) for first, block in npy_blocks(_save(tmp_path / "w.npy", wide))]
    assert sizes == [(0, 1 << 15), (1 << 15, 1)]
    assert np.concatenate([b for _, b in npy_blocks(tmp_path / "w.npy")]).tolist() == wide.tolist()
    empty = np.zeros(3, "V0")  # itemsize 0: a step of BLOCK_BYTES values, not a division by zero
    assert [(f, len(b)) for f, b in npy_blocks(_save(tmp_path / "v.npy", empty))] == [(0, 3)]


def test_a_file_shorter_than_its_header_is_refused(tmp_path):
    path = _save(tmp_path / "a.npy", np.arange(5, dtype=np.int64))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(BundleError) as caught:
        _blocks(path, 2)
    assert str(caught.value) == "bundle array a.npy is shorter than its header says" + DAMAGED
    blocks = npy_blocks(path, 4)
    first, block = next(blocks)  # the whole first block is there; the second is one byte short
    assert (first, block.tolist()) == (0, [0, 1, 2, 3])
    with pytest.raises(BundleError, match="^bundle array a.npy is shorter than its header says; the bundle is damaged$"):
        next(blocks)
    with pytest.raises(BundleError, match="^bundle array a.npy is shorter than its header says; the bundle is damaged$"):
        next(npy_blocks(path, 5))


def test_read_range_reads_exactly_the_range(tmp_path):
    (tmp_path / "b").write_bytes(b"abcdef")
    with open(tmp_path / "b", "rb") as handle:
        assert read_range(handle, 2, 5).tobytes() == b"cde" and read_range(handle, 2, 5).dtype == np.uint8
        assert read_range(handle, 0, 6).tobytes() == b"abcdef" and read_range(handle, 4, 4).tobytes() == b""
        with pytest.raises(BundleError) as caught:
            read_range(handle, 3, 7)
    assert str(caught.value) == "a string blob is shorter than its offsets say" + DAMAGED


def _string_files(tmp_path, strings, dtype=np.int64):
    data = [s.encode() for s in strings]
    (tmp_path / "blob").write_bytes(b"".join(data))
    _save(tmp_path / "offsets.npy", np.r_[0, np.cumsum([len(d) for d in data])].astype(dtype))
    return tmp_path / "blob", tmp_path / "offsets.npy"


def _string_chunks(files, **rows):
    return [(row, bounds.tolist(), data.tobytes()) for row, bounds, data in string_blocks(*files, **rows)]


def test_string_blocks_carry_the_last_offset_into_the_next_block(tmp_path):
    files = _string_files(tmp_path, ["a", "bb", "", "ccc"], np.uint32)
    assert _string_chunks(files, rows=2) == [(0, [0, 1], b"a"), (1, [0, 2, 2], b"bb"), (3, [0, 3], b"ccc")]
    assert _string_chunks(files, rows=1) == [(0, [0, 1], b"a"), (1, [0, 2], b"bb"), (2, [0, 0], b""),
                                             (3, [0, 3], b"ccc")]
    assert _string_chunks(files, rows=5) == [(0, [0, 1, 3, 3, 6], b"abbccc")]
    chunks = list(string_blocks(*files, rows=2))
    assert chunks[0][1].dtype == np.int64 and chunks[1][1].dtype == np.int64
    assert _string_chunks(_string_files(tmp_path, []), rows=2) == []


def test_string_blocks_default_to_8192_rows(tmp_path):
    files = _string_files(tmp_path, ["x"] * 8193)
    chunks = list(string_blocks(*files))
    assert [(row, len(bounds)) for row, bounds, _ in chunks] == [(0, 8192), (8191, 3)]
    assert chunks[1][2].tobytes() == b"xx"


def _stats(tmp_path, values, dtype=np.int64):
    return array_stats(_save(tmp_path / "v.npy", np.array(values, dtype)))


def test_array_stats_by_hand(tmp_path):
    base = {"finite": True, "falls": False, "repeats": False}
    assert _stats(tmp_path, []) == {"min": 0, "max": 0, "first": None, "last": None, **base}
    assert _stats(tmp_path, [4, 7, 9]) == {"min": 4, "max": 9, "first": 4, "last": 9, **base}
    assert _stats(tmp_path, [-4, -9, -7]) == {"min": -9, "max": -4, "first": -4, "last": -7, "finite": True,
                                              "falls": True, "repeats": False}
    assert _stats(tmp_path, [3, 3]) == {"min": 3, "max": 3, "first": 3, "last": 3, "finite": True, "falls": False,
                                        "repeats": True}
    assert _stats(tmp_path, [6]) == {"min": 6, "max": 6, "first": 6, "last": 6, **base}
    assert _stats(tmp_path, [0.5, np.inf], np.float32)["finite"] is False
    assert _stats(tmp_path, [np.nan, 1.0], np.float64)["finite"] is False
    assert _stats(tmp_path, [0.5, 2.5], np.float32) == {"min": 0.5, "max": 2.5, "first": 0.5, "last": 2.5, **base}
    stats = _stats(tmp_path, [2**63 + 5, 2**64 - 1], np.uint64)  # exact Python ints, no float rounding
    assert (stats["min"], stats["max"], stats["first"]) == (2**63 + 5, 2**64 - 1, 2**63 + 5)


def test_array_stats_join_the_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(file_blocks, "BLOCK_BYTES", 16)  # two int64 values a block
    base = {"finite": True, "falls": False, "repeats": False}
    assert _stats(tmp_path, [5, 6, 7, 8, 9]) == {"min": 5, "max": 9, "first": 5, "last": 9, **base}
    assert _stats(tmp_path, [8, 9, 3, 4]) == {"min": 3, "max": 9, "first": 8, "last": 4, "finite": True,
                                              "falls": True, "repeats": False}  # only across the edge
    assert _stats(tmp_path, [1, 2, 2, 3]) == {"min": 1, "max": 3, "first": 1, "last": 3, "finite": True,
                                              "falls": False, "repeats": True}  # only across the edge
    assert _stats(tmp_path, [1, 2, 4, 3, 5, 6])["falls"] is True  # inside the second block only
    assert _stats(tmp_path, [1, 2, 3, 4, 5, 5])["repeats"] is True  # inside the third block only
    assert _stats(tmp_path, [1, 2, 3, 4, 6, 5]) == {"min": 1, "max": 6, "first": 1, "last": 5, "finite": True,
                                                    "falls": True, "repeats": False}
    assert _stats(tmp_path, [1.0, 2.0, 3.0, np.inf], np.float64)["finite"] is False  # in a later block
    assert _stats(tmp_path, [1.0, np.nan, 3.0, 4.0], np.float64)["finite"] is False  # in the first block only
    assert _stats(tmp_path, [9, 8, 1, 2, 7, 3])["min"] == 1 and _stats(tmp_path, [1, 2, 9, 3, 4, 5])["max"] == 9


def test_an_os_error_without_text_is_named_by_its_type(tmp_path, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise PermissionError()  # no errno, no strerror

    monkeypatch.setattr(file_blocks, "open", refuse, raising=False)
    assert _refusal(tmp_path / "x.npy") == ("bundle array x.npy cannot be read (PermissionError); the bundle is "
                                            "damaged or unreadable")


def test_bytes_after_the_data_are_not_read(tmp_path):
    path = _save(tmp_path / "a.npy", np.arange(5, dtype=np.int64))
    path.write_bytes(path.read_bytes() + np.arange(100, 104, dtype=np.int64).tobytes())
    assert _blocks(path, 2) == [(0, [0, 1]), (2, [2, 3]), (4, [4])]


def test_values_wider_than_half_a_block_come_one_a_block(tmp_path):
    wide = np.array([b"a", b"b", b"c"], f"S{(1 << 19) + 1}")  # 512 KiB + 1 byte each
    assert [(first, block.tolist()) for first, block in npy_blocks(_save(tmp_path / "w.npy", wide))] == \
        [(0, [b"a"]), (1, [b"b"]), (2, [b"c"])]


def test_array_stats_keep_what_earlier_blocks_found(tmp_path, monkeypatch):
    monkeypatch.setattr(file_blocks, "BLOCK_BYTES", 16)
    assert _stats(tmp_path, [5, 5, 6, 7])["repeats"] is True  # in the first block, none after
    assert _stats(tmp_path, [6, 5, 6, 7])["falls"] is True
    monkeypatch.setattr(file_blocks, "BLOCK_BYTES", 8)  # one value a block: every comparison is across an edge
    assert _stats(tmp_path, [3, 1, 2]) == {"min": 1, "max": 3, "first": 3, "last": 2, "finite": True, "falls": True,
                                           "repeats": False}
    assert _stats(tmp_path, [1, 2, 2])["repeats"] is True


def test_an_array_gone_after_the_checks_is_refused_by_its_name_without_the_host_path(tmp_path):
    """Bundle.array let np.load's OSError through, whose text holds the file's full path."""
    root = Path(shutil.copytree(Path(__file__).parents[1] / "spec" / "golden" / "bundle", tmp_path / "alice"))
    bundle = Bundle.open(root)
    (root / "items" / "embeddings.npy").unlink()
    with pytest.raises(BundleError) as caught:
        bundle.array("items/embeddings.npy")
    assert str(caught.value) == ("bundle array items/embeddings.npy cannot be read (No such file or directory); "
                                 "the bundle is damaged")


def test_the_checks_pass_over_a_column_holds_under_a_mib(tmp_path):
    """array_stats of a 3 MB column holds a block and a comparison's mask at a time (~0.5 MB): with
    1 MB blocks and a joined copy of each it held 3 MB, and malloc kept the freed pages resident
    (4 MB of the million-item bench's heap after open)."""
    codes = np.random.default_rng(0).integers(0, 200, 3 << 20).astype(np.uint8)
    path = _save(tmp_path / "codes.npy", codes)
    tracemalloc.start()
    try:
        stats = array_stats(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats["max"] == int(codes.max()) and stats["repeats"] and stats["falls"]
    assert peak < 1 << 20, f"{peak / 2**20:.1f} MB held by the pass"
