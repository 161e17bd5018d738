"""Packed bundles attacked where test_pack.py and test_hostile_bundles.py do not reach: a member whose
size is negative (CPython's tarfile, 3.11.7 here, steps back to that member's own header and reads it
again, forever), one file under two spellings of its name, and a pack cut at any byte."""

from __future__ import annotations

import io
import signal
import tarfile
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgerec.errors import BundleError
from edgerec.runtime.bundle import MANIFEST, Bundle
from edgerec.runtime.pack import pack


@contextmanager
def at_most(seconds: int):
    """Fail instead of hanging the suite when the code under test loops forever."""
    if not hasattr(signal, "SIGALRM"):
        pytest.skip("needs SIGALRM to stop an endless loop")

    def stop(signum, frame):
        raise AssertionError(f"still running after {seconds} s: an endless loop")
    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def add(tar: tarfile.TarFile, name: str, data: bytes, **pax) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.pax_headers = pax
    tar.addfile(info, io.BytesIO(data))


def negative_pax(path):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, MANIFEST, b"{}")
        add(tar, "evil.bin", b"", size="-1536")  # back over its own two headers: the same member again
    return path


def negative_ustar(path):
    """The same step back written in the header's own size field (base-256, which allows a sign)."""
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        add(tar, MANIFEST, b"{}")
        add(tar, "evil.bin", b"")
    data = bytearray(path.read_bytes())
    header = bytearray(data[1024:1536])
    header[124:136] = b"\xff" * 4 + (-512).to_bytes(8, "big", signed=True)
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    data[1024:1536] = header
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("make", [negative_pax, negative_ustar])
def test_a_member_of_negative_size_is_refused_not_read_forever(tmp_path, make):
    path = make(tmp_path / "neg.edgerec")
    with at_most(20), pytest.raises(BundleError, match=r"^neg.edgerec has a member of negative size or one that "
                                                       r"goes back in the file; it is damaged or crafted, pack the "
                                                       r"bundle again with `edgerec pack`$"):
        Bundle.open(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neg.edgerec"]  # nothing unpacked, nothing left


@pytest.mark.parametrize("spelling", ["items/./x.bin", "items//x.bin"])
def test_one_file_under_two_spellings_is_a_name_held_twice(golden_bundle, tmp_path, spelling):
    """Both spellings land on one file: which content wins would be up to the extractor. A name out of
    its plain form is refused itself (spec rule 2), before the two could meet."""
    path = tmp_path / "twice.edgerec"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, MANIFEST, (golden_bundle / MANIFEST).read_bytes())
        add(tar, "items/x.bin", b"first")
        add(tar, spelling, b"second")
    with pytest.raises(BundleError, match=f"^twice.edgerec: bundle path '{spelling}' leaves the bundle directory "
                                          "or is not in its plain form"):
        Bundle.open(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["twice.edgerec"]


@pytest.fixture(scope="module")
def packed_bytes(golden_bundle, tmp_path_factory):
    path = pack(golden_bundle, tmp_path_factory.mktemp("pack") / "whole.edgerec")
    return path.read_bytes(), Bundle.open(path).manifest


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_a_pack_cut_at_any_byte_is_refused_or_opens_whole(packed_bytes, tmp_path_factory, fraction):
    """Cut inside a header, in a file's data or between members: a BundleError, never another error and
    never a bundle missing a file; only a cut in the zero blocks at the end may open (it lost nothing)."""
    data, manifest = packed_bytes
    cut = int(fraction * len(data))
    path = tmp_path_factory.mktemp("cut") / "cut.edgerec"
    path.write_bytes(data[:cut])
    try:
        opened = Bundle.open(path)
    except BundleError:
        return
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        last = max(m.offset_data + m.size for m in tar.getmembers())
    assert opened.manifest == manifest and cut >= last  # the cut only took zero blocks after the last file


def test_a_pack_of_thousands_of_empty_files_is_refused_before_any_is_written(golden_bundle, tmp_path):
    """20,000 empty members (a 10 MB file) took 31 s to unpack and then failed on the missing files."""
    from edgerec.runtime.pack import MAX_MEMBERS

    path = tmp_path / "many.edgerec"
    with tarfile.open(path, "w") as tar:
        add(tar, MANIFEST, (golden_bundle / MANIFEST).read_bytes())
        for i in range(MAX_MEMBERS):
            add(tar, f"junk/{i}", b"")
    with pytest.raises(BundleError, match=rf"^many.edgerec holds more than {MAX_MEMBERS} files and folders, where a "
                                          r"bundle has tens; it is not a packed bundle: pack one with `edgerec pack`$"):
        Bundle.open(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.edgerec"]
