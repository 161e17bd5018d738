"""Hostile bundles, round 2: files that pass their checksums but are not what their names say, a damaged
unpacked copy of a packed bundle, a content encoder the manifest describes badly, and compressed text whose
manifest claims more than its blob can hold.

Each damage is applied to a copy of a golden bundle with its checksums made to match again (`rewrite`), so only
the damage can fail; each must be a BundleError naming what is wrong, never a raw exception.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from bundle_edit import rewrite

from edgerec.errors import BundleError
from edgerec.runtime import Bundle, Recommender, text_blocks
from edgerec.runtime import pack as pack_module
from edgerec.runtime.catalog import ItemCatalog
from edgerec.runtime.pack import pack, unpacked

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

# ------------------------------------------------------------------ .npy files that are not .npy arrays


def npz_of(path) -> bytes:
    out = io.BytesIO()
    np.savez(out, x=np.load(path))
    return out.getvalue()


NOT_NPY = {"empty": lambda path: b"", "npz archive": npz_of, "text": lambda path: b"not an array\n"}


@pytest.mark.parametrize("name", ["items/embeddings.npy", "items/scales.npy"])
@pytest.mark.parametrize("kind", list(NOT_NPY))
def test_a_file_that_is_not_a_npy_array_is_a_bundle_error_naming_it(bundle_copy, name, kind):
    """np.load read an empty file as a raw EOFError and a zip as an NpzFile (AttributeError: no dtype)."""
    (bundle_copy / name).write_bytes(NOT_NPY[kind](bundle_copy / name))
    rewrite(bundle_copy, lambda data: None)
    with pytest.raises(BundleError, match=f"^bundle array {name} is .*not a .npy array; the bundle is damaged"):
        Bundle.open(bundle_copy)


@pytest.mark.parametrize("kind", ["empty", "npz archive"])
def test_an_update_whose_array_is_not_a_npy_file_falls_back(golden_bundle, bundle_copy, kind):
    name = "items/embeddings.npy"
    (bundle_copy / name).write_bytes(NOT_NPY[kind](bundle_copy / name))
    rewrite(bundle_copy, lambda data: None)
    with Recommender.open(bundle_copy, fallback=golden_bundle) as rec:
        assert not rec.update.accepted and rec.update.rejected == bundle_copy.name
        assert rec.update.reason.startswith(f"bundle array {name} is ")
        assert rec.recommend("u1", k=3)  # the previous bundle serves


# ------------------------------------------------------------------ the unpacked copy of a packed bundle


def _flip(path, at: int = 200) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("verify", [True, False])
def test_a_damaged_unpacked_copy_is_unpacked_again(golden_bundle, tmp_path, verify):
    """The copy beside a packed file was reused as long as it existed: a flipped bit failed every later open, and
    with verify=False the damaged copy was served."""
    packed = pack(golden_bundle, tmp_path / "b.edgerec")
    copy = Path(Bundle.open(packed).root)  # a plain path: no lock held on the copy
    name = "items/embeddings.npy"
    _flip(copy / name)
    bundle = Bundle.open(packed, verify=verify)
    assert (bundle.root / name).read_bytes() == (golden_bundle / name).read_bytes()
    np.testing.assert_array_equal(bundle.array(name), np.load(golden_bundle / name))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # the damaged copy is gone


def test_an_unpacked_copy_missing_a_file_is_unpacked_again(golden_bundle, tmp_path):
    packed = pack(golden_bundle, tmp_path / "b.edgerec")
    copy = Path(Bundle.open(packed).root)  # a plain path: no lock held on the copy
    (copy / "items/genre.npy").unlink()
    bundle = Bundle.open(packed, verify=False)
    assert (bundle.root / "items/genre.npy").read_bytes() == (golden_bundle / "items/genre.npy").read_bytes()


def test_an_unpacked_copy_whose_manifest_was_edited_is_unpacked_again(golden_bundle, tmp_path):
    """The manifest has no checksum of its own: the copy's is compared with the packed file's."""
    packed = pack(golden_bundle, tmp_path / "b.edgerec")
    copy = Path(Bundle.open(packed).root)
    rewrite(copy, lambda data: data.update(name="edited"))
    assert Bundle.open(packed, verify=False).manifest.name == Bundle.open(golden_bundle).manifest.name


def test_a_damaged_unpacked_copy_an_app_still_holds_is_refused_not_served(golden_bundle, tmp_path, monkeypatch):
    """A running app still reads its models from the copy: it is not removed under it, and it is not served."""
    monkeypatch.setattr(pack_module, "DISCARD_WAIT_S", 0.2)  # the app holds it throughout: no need to wait long
    packed = pack(golden_bundle, tmp_path / "b.edgerec")
    serving = Bundle.open(packed)
    _flip(serving.root / "items/embeddings.npy")
    with pytest.raises(BundleError, match="unpacked copy of b.edgerec is damaged") as caught:
        Bundle.open(packed, verify=False)
    assert str(tmp_path) not in str(caught.value)
    assert serving.root.is_dir()  # still there for the app that holds it
    del serving
    assert Bundle.open(packed, verify=False).array("items/embeddings.npy").tolist() == \
        np.load(golden_bundle / "items/embeddings.npy").tolist()


@pytest.mark.skipif(fcntl is None, reason="no advisory locks on this platform")
def test_a_damaged_copy_another_opener_is_still_checking_is_unpacked_again_not_refused(golden_bundle, tmp_path):
    """Two processes opened a packed file whose copy was damaged: the first to finish its check tried to remove the
    copy while the other still held its shared lock for the same check, and was told to close an app that did not
    exist. The remover now waits for such a check (a bounded wait) and both end up with a verified copy."""
    packed = pack(golden_bundle, tmp_path / "b.edgerec")
    copy = Path(Bundle.open(packed).root)
    (copy / "items/genre.npy").unlink()
    sibling = os.open(copy / ".packed-from", os.O_RDONLY)  # the other opener, in the middle of its own check
    fcntl.flock(sibling, fcntl.LOCK_SH)
    finishing = threading.Timer(0.3, os.close, (sibling,))  # its check fails too, and it lets go
    finishing.start()
    try:
        bundle = Bundle.open(packed, verify=False)
    finally:
        finishing.join()
    assert (bundle.root / "items/genre.npy").read_bytes() == (golden_bundle / "items/genre.npy").read_bytes()
    assert unpacked(packed).verified  # the copy the sibling finds next is whole too


@pytest.mark.skipif(fcntl is None, reason="no advisory locks on this platform")
def test_a_copy_a_sibling_opener_unpacked_again_while_this_one_waited_is_kept(golden_bundle, tmp_path, monkeypatch):
    """While one opener waits to remove the damaged copy, the other removes it and publishes a fresh one under the
    same name: the waiting opener must leave that fresh copy alone (it would move away the copy its sibling holds)."""
    packed = pack(golden_bundle, tmp_path / "b.edgerec")
    copy = Path(Bundle.open(packed).root)
    (copy / "items/genre.npy").unlink()
    seen = os.stat(copy / ".packed-from")
    waiting = pack_module._lock_exclusive

    def sibling_finishes_first(fd):  # the sibling moves the damaged copy off and publishes a fresh one meanwhile
        copy.rename(tmp_path / "gone")
        shutil.copytree(golden_bundle, copy)
        (copy / ".packed-from").write_text("{}")
        return waiting(fd)

    monkeypatch.setattr(pack_module, "_lock_exclusive", sibling_finishes_first)
    assert pack_module._discard(copy, seen)  # the name is free of the damaged copy
    assert (copy / "items/genre.npy").is_file()  # the sibling's copy is still there


def test_an_intact_copy_is_reused(golden_bundle, tmp_path):
    packed = pack(golden_bundle, tmp_path / "b.edgerec")
    first = Bundle.open(packed).root
    marker = json.loads((first / ".packed-from").read_text())
    second = unpacked(packed)
    assert second == first and json.loads((second / ".packed-from").read_text()) == marker
    assert second.verified  # its checksums were read now: Bundle.open does not read them twice


# ------------------------------------------------------------------ the content encoder's manifest entry


@pytest.fixture
def text_copy(golden_bundle, tmp_path):
    """A copy of the golden bundle with a content encoder."""
    return shutil.copytree(golden_bundle.parent / "text", tmp_path / "text")


def _content_entries(change):
    def apply(data):
        for entry in data["models"]:
            if entry["role"] == "content_encoder":
                change(entry["extra"])
    return apply


def _needs_encoder(root, message: str) -> None:
    """The bundle opens; tag() and add_items() with metadata only are each a BundleError matching `message`."""
    with Recommender.open(root) as rec:
        with pytest.raises(BundleError, match=message):
            rec.tag(text="a dark thriller about spies")
        with pytest.raises(BundleError, match=message):
            rec.add_items([{"item_id": "new1", "title": "A dark thriller", "tags": ["thriller"]}])


@pytest.mark.parametrize("key", ["tokenizer", "projection", "labels"])
def test_a_content_encoder_without_a_part_is_a_bundle_error_when_needed(text_copy, key):
    rewrite(text_copy, _content_entries(lambda extra: extra.pop(key)))
    _needs_encoder(text_copy, f"^the bundle's content encoder names no {key} in its manifest entry's extra")


@pytest.mark.parametrize(("shape", "dtype"), [((17,), np.float32), ((17, 7), np.float32), ((17, 9), np.float32),
                                            ((17, 8), np.int8)])
def test_a_projection_that_is_not_float_c_plus_1_by_dim_is_a_bundle_error_when_needed(text_copy, shape, dtype):
    """The golden encoder has C = 16 content dimensions and dim 8: a (17, 7) projection added items of 7 numbers
    to an 8-wide catalog without a word, a 1-D one failed inside numpy."""
    np.save(text_copy / "content/projection.npy", np.ones(shape, dtype))
    rewrite(text_copy, lambda data: None)
    _needs_encoder(text_copy, r"^the bundle's content encoder projection content/projection.npy has shape "
                              r"\(17.*it must be float \(C \+ 1, 8\)")


def test_a_tokenizer_file_the_library_cannot_read_is_a_bundle_error(text_copy):
    pytest.importorskip("tokenizers")
    (text_copy / "content/tokenizer.json").write_text("# not a tokenizer\n")
    rewrite(text_copy, lambda data: None)
    _needs_encoder(text_copy, "^the bundle's content encoder tokenizer content/tokenizer.json is not a tokenizer.json")


# ------------------------------------------------------------------ compressed text that inflates too far


def _titles(root) -> dict:
    return json.loads((root / "manifest.json").read_text())["items"]["strings"]["titles"]


def test_a_raw_bytes_claim_the_blob_cannot_hold_is_refused_at_open(bundle_copy):
    """raw_bytes was the only bound on a block's inflation, and nothing bounded raw_bytes."""
    rewrite(bundle_copy, lambda data: data["items"]["strings"]["titles"].update(raw_bytes=2**62))
    with pytest.raises(BundleError, match=r"\(column titles\) claims raw_bytes 4,611,686,018,427,387,904, more than"):
        Bundle.open(bundle_copy)


def test_a_block_is_capped_by_its_rows_whatever_the_manifest_claims(bundle_copy):
    """Block 0 inflates to 16 rows of 128 KiB with a raw_bytes the blob can make good: refused when read,
    after inflating at most rows * MAX_ROW_BYTES, not served as a 128 KiB title."""
    column = _titles(bundle_copy)
    blob_path, starts_path = bundle_copy / column["blob"], bundle_copy / column["blocks"]
    dictionary = (bundle_copy / column["dictionary"]).read_bytes()
    blob, starts = blob_path.read_bytes(), np.load(starts_path).astype(np.int64)
    row = 2 * text_blocks.MAX_ROW_BYTES
    packer = zlib.compressobj(9, zdict=dictionary)
    bomb = packer.compress(struct.pack("<16I", *[row] * 16) + b"A" * (16 * row)) + packer.flush()
    blob_path.write_bytes(bomb + blob[starts[1]:])
    np.save(starts_path, np.r_[0, starts[1:] - starts[1] + len(bomb)].astype(starts.dtype))
    size = blob_path.stat().st_size
    claim = min(text_blocks.MAX_RATIO * size, 56 * text_blocks.MAX_ROW_BYTES)
    assert claim > 16 * row  # the claim alone would let the block inflate whole
    rewrite(bundle_copy, lambda data: data["items"]["strings"]["titles"].update(raw_bytes=claim))
    catalog = ItemCatalog(Bundle.open(bundle_copy))
    with pytest.raises(BundleError, match="compressed text block 0 .* inflates to more than the 1,048,640 bytes"):
        catalog.title(0)
    assert catalog.title(16)  # the other blocks still read


def test_a_row_longer_than_a_row_may_be_is_refused_when_read():
    long_row = b"x" * (text_blocks.MAX_ROW_BYTES + 1)
    data = zlib.compress(struct.pack("<2I", len(long_row), 1) + long_row + b"y")
    with pytest.raises(BundleError, match="holds a row of 65,537 bytes, above the 65,536 a row may hold"):
        text_blocks.decode_block(data, 2, raw_bytes=len(long_row) + 1)


def test_the_writer_refuses_a_row_a_device_would_refuse():
    for first in (True, False):
        values = ["x" * (text_blocks.MAX_ROW_BYTES + 1), "fine"][::1 if first else -1]
        with pytest.raises(BundleError, match=f"row {0 if first else 1} holds 65,537 bytes of text, above the 65,536"):
            text_blocks.write_column(None, "items/titles", values)
