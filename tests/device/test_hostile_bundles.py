"""Hostile bundles: contents that pass their checksums but are inconsistent, and hostile packed files.

Each corruption is applied to a copy of the golden bundle with every checksum and the embedding
space made to match again (`rewrite`), so only the corruption itself can fail. Every one must be a
BundleError at open, never a raw exception and never a bundle that opens and answers wrongly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from bundle_edit import replace_array, rewrite
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgerec.errors import BundleError, EdgerecError
from edgerec.runtime import Bundle, Recommender, text_blocks
from edgerec.runtime.pack import pack, unpacked


def blob(root, stem: str, values: list[bytes]) -> None:
    """Replace a string column's blob and offsets (consistent with each other)."""
    offsets = np.zeros(len(values) + 1, np.int64)
    np.cumsum([len(v) for v in values], out=offsets[1:])
    (root / f"items/{stem}.bin").write_bytes(b"".join(values))
    replace_array(root, f"items/{stem}.offsets.npy", offsets)


def strings(root, stem: str) -> list[bytes]:
    data = (root / f"items/{stem}.bin").read_bytes()
    offsets = np.load(root / f"items/{stem}.offsets.npy")
    return [data[a:b] for a, b in zip(offsets[:-1], offsets[1:])]


def compressed(stem: str, values: list[bytes], starts=None) -> object:
    """Replace a compressed text column (format 4) with `values` (block starts consistent unless
    `starts` changes them)."""
    def apply(root):
        blob, real = text_blocks.encode(values)
        (root / f"items/{stem}.zlib").write_bytes(blob)
        np.save(root / f"items/{stem}.blocks.npy", real if starts is None else starts(real))
        rewrite(root, lambda d: d["items"]["strings"][stem].update(raw_bytes=sum(map(len, values)),
                                                                     block_rows=text_blocks.BLOCK_ROWS))
    return apply


def titles(root) -> list[bytes]:
    from edgerec.runtime.catalog import ItemCatalog

    return [t.encode() for t in ItemCatalog(Bundle.open(root)).titles.all()]


def scales(value):
    return lambda root: replace_array(root, "items/scales.npy", np.r_[value, np.ones(7)].astype(np.float32))


def manifest(change):
    return lambda root: rewrite(root, change)


def offsets(stem: str, change):
    def apply(root):
        values = np.load(root / f"items/{stem}.offsets.npy")
        replace_array(root, f"items/{stem}.offsets.npy", change(values.copy()))
    return apply


def raw(data: bytes):
    """Write manifest.json as given (no checksum to remake: the manifest has none)."""
    return lambda root: (root / "manifest.json").write_bytes(data)


def raw_edit(change):
    """Edit the manifest without remaking the checksums (the edit hits the files section itself)."""
    def apply(root):
        data = json.loads((root / "manifest.json").read_text())
        change(data)
        (root / "manifest.json").write_text(json.dumps(data))
    return apply


def swap_ids(root):
    ids = strings(root, "ids")
    blob(root, "ids", [ids[1]] + ids[1:])


def garbage(name: str, data: bytes):
    def apply(root):
        (root / name).write_bytes(data)
        rewrite(root, lambda d: None)
    return apply


CORRUPTIONS = {
    "scale NaN": scales(np.nan), "scale zero": scales(0.0), "scale negative": scales(-1.0),
    "scale huge": scales(1e30), "scale inf": scales(np.inf),
    "scales float64": lambda root: replace_array(root, "items/scales.npy", np.ones(8)),
    "scales wrong shape": lambda root: replace_array(root, "items/scales.npy", np.ones(7, np.float32)),
    "table float32 under int8": lambda root: replace_array(root, "items/embeddings.npy", np.ones((56, 8), np.float32)),
    "table 1-D": lambda root: replace_array(root, "items/embeddings.npy", np.ones(56 * 8, np.int8)),
    "table too few rows": lambda root: replace_array(root, "items/embeddings.npy", np.ones((50, 8), np.int8)),
    "table too narrow": lambda root: replace_array(root, "items/embeddings.npy", np.ones((56, 4), np.int8)),
    "table pickled objects": lambda root: (np.save(root / "items/embeddings.npy", np.array([{}] * 56), allow_pickle=True),
                                           rewrite(root, lambda d: None)),
    "table not npy": garbage("items/embeddings.npy", b"\x93NUMPY garbage" * 10),
    "offsets decreasing": offsets("ids", lambda v: np.r_[v[0], v[2], v[1], v[3:]]),
    "offsets past end": offsets("ids", lambda v: np.r_[v[:-1], v[-1] + 100]),
    "offsets not from 0": offsets("ids", lambda v: v + 1),
    "offsets int32": offsets("ids", lambda v: v.astype(np.int32)),
    "offsets too few": offsets("ids", lambda v: v[:-5]),
    "offset inside a character": lambda root: blob(root, "ids", [f"\u00e9{i}".encode() for i in range(56)]) or
    offsets("ids", lambda v: np.r_[0, 1, v[2:]])(root),
    "duplicate ids": swap_ids,
    "empty id": lambda root: blob(root, "ids", [b""] + strings(root, "ids")[1:]),
    "title blocks decreasing": lambda root: compressed("titles", titles(root), lambda v: v[::-1])(root),
    "title blocks too few": lambda root: compressed("titles", titles(root), lambda v: v[:-1])(root),
    "title blocks past the blob": lambda root: compressed("titles", titles(root), lambda v: v + 1)(root),
    "invalid UTF-8 id": lambda root: blob(root, "ids", [b"\xc3"] + strings(root, "ids")[1:]),
    "genre code too high": lambda root: replace_array(root, "items/genre.npy", np.full(56, 10, np.int32)),
    "genre code below -1": lambda root: replace_array(root, "items/genre.npy", np.full(56, -2, np.int32)),
    "genre codes float": lambda root: replace_array(root, "items/genre.npy", np.zeros(56, np.float32)),
    "duration NaN": lambda root: replace_array(root, "items/duration.npy", np.full(56, np.nan, np.float32)),
    "popularity inf": lambda root: replace_array(root, "items/popularity.npy", np.full(56, np.inf, np.float32)),
    "popularity strings": lambda root: replace_array(root, "items/popularity.npy", np.array(["x"] * 56)),
    # negative: log(1 + popularity) was NaN, and the item silently fell out of every cold-start list
    "popularity negative": lambda root: replace_array(root, "items/popularity.npy", np.full(56, -5, np.float32)),
    "duration negative": lambda root: replace_array(root, "items/duration.npy", np.full(56, -120, np.float32)),
    "count above rows": manifest(lambda d: d["items"].update(count=57)),
    "count negative": manifest(lambda d: d["items"].update(count=-1)),
    "count huge": manifest(lambda d: d["items"].update(count=10**15)),
    "dim not encoder width": manifest(lambda d: d.update(dim=16)),
    "dim string": manifest(lambda d: d.update(dim="8")),
    "dim float": manifest(lambda d: d.update(dim=8.5)),
    "name missing": manifest(lambda d: d.pop("name")),
    "items missing": manifest(lambda d: d.pop("items")),
    "models empty": manifest(lambda d: d.update(models=[])),
    "models not a list": manifest(lambda d: d.update(models={})),
    "model outputs missing": manifest(lambda d: d["models"][0].pop("outputs")),
    "files not a dict": raw_edit(lambda d: d.update(files=[])),
    "file size string": raw_edit(lambda d: d["files"]["items/genre.npy"].update(bytes="352")),
    "file sha256 missing": raw_edit(lambda d: d["files"]["items/genre.npy"].pop("sha256")),
    "vocab not strings": manifest(lambda d: d["items"]["categorical"]["genre"].update(vocab=[1, 2])),
    "format version 99": manifest(lambda d: d.update(format_version=99)),
    "defaults k string": manifest(lambda d: d["defaults"].update(k="5")),
    "defaults diversity 7": manifest(lambda d: d["defaults"].update(diversity=7)),
    "path traversal": manifest(lambda d: d["files"].update({"../x": {"sha256": "0" * 64, "bytes": 1}})),
    "manifest a list": raw(b"[]"),
    "manifest nested": raw(b"[" * 100_000 + b"]" * 100_000),
    "manifest nested dicts": raw(b'{"format": "edgerec-bundle", "x": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001),
    "manifest invalid UTF-8": raw(b'{"format": "\xff"}'),
    "manifest empty": raw(b""),
}


def open_and_use(root) -> None:
    with Recommender.open(root) as rec:
        rec.record("u", rec.catalog.item_id(0), "finish")  # a history: the user encoder runs
        rec.recommend("u", k=5)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_an_inconsistent_bundle_is_a_bundle_error_at_open(bundle_copy, name):
    CORRUPTIONS[name](bundle_copy)
    with pytest.raises(BundleError):
        Bundle.open(bundle_copy)


# Compressed text is checked a block at a time when a request inflates it (spec rule 8).
DAMAGED_TEXT = {
    "invalid UTF-8 title": lambda root: compressed("titles", [b"\xff\xfe"] + titles(root)[1:])(root),
    "title split inside a character": lambda root: compressed("titles", [b"\xc3", b"\xa9"] + titles(root)[2:])(root),
    "titles one row short": lambda root: compressed("titles", titles(root)[:-1])(root),
}


@pytest.mark.parametrize("name", sorted(DAMAGED_TEXT))
def test_damaged_compressed_text_is_a_bundle_error_when_read(bundle_copy, name):
    DAMAGED_TEXT[name](bundle_copy)
    with Recommender.open(bundle_copy) as rec:
        with pytest.raises(BundleError, match="damaged"):
            [rec.catalog.title(row) for row in range(rec.catalog.base_count)]


def test_a_garbage_model_with_a_matching_checksum_is_a_bundle_error_when_used(bundle_copy):
    """The encoder is refused; a request is served the popularity list, counted (ARCHITECTURE: a failing
    required stage falls back), not an error for every user with a history."""
    garbage("user_encoder.onnx", b"not a model" * 100)(bundle_copy)
    garbage("user_encoder.tflite", b"not a model" * 100)(bundle_copy)
    with Recommender.open(bundle_copy) as rec:
        rec.record("u", rec.catalog.item_id(0), "finish")
        listed = rec.recommend("u", k=5)
        assert listed and all(r.reason.kind == "fallback" for r in listed)
        assert rec.stats()["counters"]["encode_fallback"] == 1
        with pytest.raises(BundleError):
            rec.encoder  # noqa: B018


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=8, max_size=8))
def test_any_scales_either_open_and_answer_finite_scores_or_are_refused(bundle_copy, values):
    replace_array(bundle_copy, "items/scales.npy", np.asarray(values, np.float32))
    try:
        rec = Recommender.open(bundle_copy)
    except BundleError:
        return
    with rec:
        results = rec.recommend("u", k=5)
        rec.record("u", results[0].item_id, "finish")
        results = rec.recommend("u", k=5)
    assert len(results) == 5 and all(np.isfinite(r.score) for r in results)


def test_a_model_replaced_after_open_is_refused_when_loaded(bundle_copy):
    rewrite(bundle_copy, lambda d: None)
    with Recommender.open(bundle_copy, backend="onnx") as rec:
        path = bundle_copy / "user_encoder.onnx"
        data = bytearray(path.read_bytes())
        data[-10] ^= 0xFF  # same size, same name: only a hash notices
        path.write_bytes(bytes(data))
        rec.record("u", rec.catalog.item_id(0), "finish")
        listed = rec.recommend("u", k=5)  # the popularity list, counted, with the reason kept
        assert listed and all(r.reason.kind == "fallback" for r in listed)
        assert rec.stats()["counters"]["encode_fallback"] == 1
        assert "sha256 check when loaded" in rec.pipeline.failures["encode"]


# ------------------------------------------------------------------ packed files


def test_a_truncated_or_garbage_packed_file_is_a_bundle_error(golden_bundle, tmp_path):
    import tarfile

    packed = pack(golden_bundle, tmp_path / "b.edgerec")
    data = packed.read_bytes()
    with tarfile.open(packed) as tar:  # where the last member's data ends: after it comes zero padding
        end = max(m.offset_data + m.size for m in tar.getmembers())
    for cut in (100, 512, 1024 + 300, len(data) // 2, end - 100):
        bad = tmp_path / f"cut{cut}.edgerec"
        bad.write_bytes(data[:cut])
        with pytest.raises(BundleError):
            Bundle.open(bad)
    empty = tmp_path / "empty.edgerec"
    empty.write_bytes(b"")
    with pytest.raises(BundleError):
        Bundle.open(empty)


def test_a_packed_file_with_a_name_twice_is_refused(golden_bundle, tmp_path):
    import io
    import tarfile

    out = tmp_path / "twice.edgerec"
    with tarfile.open(out, "w") as tar:
        for name in ("manifest.json", "manifest.json"):
            data = (golden_bundle / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(BundleError, match="twice"):
        Bundle.open(out)


def test_replaced_content_of_the_same_size_and_time_is_unpacked_again(golden_bundle, tmp_path):
    copies = []
    for name in ("golden", "goldeX"):  # same length: the packed files have the same size
        root = shutil.copytree(golden_bundle, tmp_path / name)
        rewrite(root, lambda d, name=name: d.update(name=name))
        copies.append(pack(root, tmp_path / f"{name}.edgerec"))
    assert copies[0].stat().st_size == copies[1].stat().st_size
    target = tmp_path / "served.edgerec"
    shutil.copyfile(copies[0], target)
    stamp = target.stat()
    assert Bundle.open(target).manifest.name == "golden"
    shutil.copyfile(copies[1], target)
    os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert target.stat().st_size == stamp.st_size and target.stat().st_mtime_ns == stamp.st_mtime_ns
    assert Bundle.open(target).manifest.name == "goldeX"


def test_six_processes_opening_one_fresh_packed_file_all_succeed(golden_bundle, tmp_path):
    packed = pack(golden_bundle, tmp_path / "race.edgerec")
    go = tmp_path / "go"
    child = textwrap.dedent(f"""
        import os, time
        from edgerec.runtime import Bundle
        while not os.path.exists({str(go)!r}):
            time.sleep(0.001)
        try:
            print("ok", Bundle.open({str(packed)!r}).manifest.name)
        except Exception as exc:
            print("failed", type(exc).__name__, exc)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(6)]
    go.write_text("")
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [out.split()[0] for out, _ in outputs] == ["ok"] * 6, outputs
    assert all(not err for _, err in outputs), outputs
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [] and unpacked(packed).is_dir()
    assert json.loads((unpacked(packed) / ".packed-from").read_text())["sha256"]


JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                              st.text(max_size=8)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                    max_leaves=6)


def leaves(node, path=()):
    """Every (path, value) of a JSON document, inner nodes included."""
    yield path, node
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from leaves(child, path + (key,))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(min_value=0), value=JSON, drop=st.booleans())
def test_any_manifest_field_replaced_or_dropped_is_refused_or_works(golden_bundle, tmp_path_factory, which,
                                                                    value, drop):
    root = Path(shutil.copytree(golden_bundle, tmp_path_factory.mktemp("fuzz") / "bundle"))
    data = json.loads((root / "manifest.json").read_text())
    spots = [p for p, _ in leaves(data) if p and p[0] != "files"]  # checksums stay true: only the edit can fail
    path = spots[which % len(spots)]
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if drop:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    (root / "manifest.json").write_text(json.dumps(data))
    try:
        open_and_use(root)
    except BundleError:
        pass  # refused: the expected answer for nearly every edit
    except EdgerecError as exc:  # an update of defaults may be refused as a bad setting; still clean
        assert str(exc)
