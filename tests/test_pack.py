"""One-file bundles: what pack writes, what unpacking refuses, and when the unpacked copy is reused."""

import io
import json
import os
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime.bundle import MANIFEST, Bundle, sha256_file
from edgerec.runtime.pack import STALE_AFTER_S, SUFFIX, pack, unpacked


@pytest.fixture
def bundle(handmade_bundle):
    return handmade_bundle(np.eye(4), popularity=[1, 2, 3, 4])


def test_pack_writes_exactly_the_bundle_files(bundle, tmp_path):
    out = pack(bundle, tmp_path / "one.edgerec")
    assert out == tmp_path / "one.edgerec" and [p.name for p in tmp_path.iterdir()] == ["one.edgerec"]
    files = Bundle.open(bundle).manifest.files
    with tarfile.open(out) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [MANIFEST, *files]
        for m in members:
            assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "") and m.isfile()
            assert tar.extractfile(m).read() == (bundle / m.name).read_bytes()
    assert out.read_bytes()[257:265] == b"ustar\x0000"  # a plain POSIX (pax) tar, no compression


def test_pack_default_name_sits_next_to_the_folder(bundle):
    out = pack(bundle)
    assert out == bundle.with_suffix(SUFFIX) and SUFFIX == ".edgerec" and out.is_file()


def test_pack_replaces_the_leftover_of_an_interrupted_pack(bundle, tmp_path):
    (tmp_path / ".one.edgerec.4242.0a1b2c3d.packing").write_bytes(b"half a tar")  # a killed pack left this
    pack(bundle, tmp_path / "one.edgerec")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.edgerec"]


def test_only_plain_tar_files_are_read(bundle, tmp_path):
    packed = pack(bundle, tmp_path / "one.edgerec")
    squeezed = tmp_path / "squeezed.edgerec"
    with tarfile.open(packed) as source, tarfile.open(squeezed, "w:gz") as target:
        for m in source.getmembers():
            target.addfile(m, source.extractfile(m))
    with pytest.raises(BundleError, match="squeezed.edgerec cannot be unpacked .*not a packed bundle"):
        Bundle.open(squeezed)


def test_unpacked_files_lose_special_permission_bits(bundle, tmp_path):
    files = Bundle.open(bundle).manifest.files
    members = [(member(MANIFEST, mode=0o6777), (bundle / MANIFEST).read_bytes())]
    members += [(member(name, mode=0o4666), (bundle / name).read_bytes()) for name in files]
    target = Bundle.open(tar_of(tmp_path, members)).root
    for path in target.rglob("*"):
        if path.is_file() and path.name != ".packed-from":
            assert path.stat().st_mode & 0o7022 == 0, path  # no setuid/setgid/sticky, no group/other write


def test_pack_refuses_a_broken_bundle(bundle, tmp_path):
    (bundle / "items" / "popularity.npy").write_bytes(b"broken")
    with pytest.raises(BundleError, match="popularity.npy has 6 bytes"):
        pack(bundle, tmp_path / "x.edgerec")
    assert not (tmp_path / "x.edgerec").exists()


def copy_of(packed):
    """Where a packed file's unpacked copy lives: named by the file's sha256, not its size and time."""
    return packed.with_name(f".{packed.name}.{sha256_file(packed)[:24]}.unpacked")


def test_round_trip_opens_the_same_bundle(bundle, tmp_path):
    packed = pack(bundle, tmp_path / "one.edgerec")
    opened = Bundle.open(packed)
    assert opened.root == copy_of(packed)
    assert opened.manifest == Bundle.open(bundle).manifest
    for name in [MANIFEST, *opened.manifest.files]:
        assert (opened.root / name).read_bytes() == (bundle / name).read_bytes()
    assert json.loads((opened.root / ".packed-from").read_text()) == {"sha256": sha256_file(packed)}
    assert not list(tmp_path.glob(".one.edgerec.*.tmp"))  # the staging folder was published or removed


def test_the_unpacked_copy_is_reused_while_the_content_is_unchanged(bundle, tmp_path):
    packed = pack(bundle, tmp_path / "one.edgerec")
    target = unpacked(packed)
    (target / "sentinel").write_text("still here")  # would vanish if the copy were rebuilt
    assert unpacked(packed) == target and (target / "sentinel").exists()
    stat = packed.stat()
    os.utime(packed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched, same bytes: reused
    assert unpacked(packed) == target and (target / "sentinel").exists()


def test_same_size_and_time_but_other_content_is_unpacked_again(bundle, handmade_bundle, tmp_path):
    packed = pack(bundle, tmp_path / "one.edgerec")
    before = unpacked(packed)
    stat = packed.stat()
    data = bytearray(packed.read_bytes())
    data[-1] ^= 0x01  # tar padding: still a valid archive of the same size
    packed.write_bytes(bytes(data))
    os.utime(packed, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert packed.stat().st_size == stat.st_size and unpacked(packed) != before


def test_old_leftovers_of_an_interrupted_unpack_are_cleared(bundle, tmp_path):
    packed = pack(bundle, tmp_path / "one.edgerec")
    staging = tmp_path / ".one.edgerec.crashed.tmp"
    staging.mkdir()
    (staging / "junk").write_text("from a crash")
    old = time.time() - 2 * STALE_AFTER_S
    os.utime(staging, (old, old))
    target = unpacked(packed)
    assert not (target / "junk").exists() and not staging.exists()


def test_a_repacked_file_is_unpacked_again(bundle, handmade_bundle, tmp_path):
    packed = pack(bundle, tmp_path / "one.edgerec")
    first = Bundle.open(packed).manifest.embedding_space
    other = handmade_bundle(np.eye(4)[::-1].copy())
    pack(other, packed)
    assert Bundle.open(packed).manifest.embedding_space == Bundle.open(other).manifest.embedding_space != first


def tar_of(tmp_path, members, name="evil.edgerec"):
    path = tmp_path / name
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def member(name, kind=tarfile.REGTYPE, **fields):
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def test_refusals_name_the_problem_and_write_nothing(tmp_path):
    manifest = (member(MANIFEST), b"{}")
    cases = [
        ([(member("../../escape.txt"), b"bad"), manifest], "leaves the bundle directory"),
        ([manifest, (member("/abs.txt"), b"bad")], "leaves the bundle directory"),
        ([manifest, (member("items", tarfile.SYMTYPE, linkname="/etc"), None)], "link or special file"),
        ([manifest, (member("hard", tarfile.LNKTYPE, linkname=MANIFEST), None)], "link or special file"),
        ([manifest, (member("fifo", tarfile.FIFOTYPE), None)], "link or special file"),
        ([manifest, (member("dev", tarfile.CHRTYPE), None)], "link or special file"),
        ([(member("other.json"), b"{}")], "holds no manifest.json"),
    ]
    for i, (members, message) in enumerate(cases):
        path = tar_of(tmp_path, members, f"case{i}.edgerec")
        with pytest.raises(BundleError, match=message):
            Bundle.open(path)
        assert not (tmp_path / f".case{i}.edgerec.unpacked").exists()
        assert not (tmp_path / f".case{i}.edgerec.unpacked.tmp").exists()
    assert not (tmp_path.parent / "escape.txt").exists()


def test_directories_are_fine(bundle, tmp_path):
    files = Bundle.open(bundle).manifest.files
    members = [(member("items", tarfile.DIRTYPE), None), (member(MANIFEST), (bundle / MANIFEST).read_bytes())]
    members += [(member(name), (bundle / name).read_bytes()) for name in files]
    assert Bundle.open(tar_of(tmp_path, members)).manifest == Bundle.open(bundle).manifest


def test_junk_and_truncated_files(bundle, tmp_path):
    (tmp_path / "junk.edgerec").write_bytes(b"\x00" * 10)
    with pytest.raises(BundleError, match="junk.edgerec cannot be unpacked .*not a packed bundle"):
        Bundle.open(tmp_path / "junk.edgerec")
    packed = pack(bundle, tmp_path / "cut.edgerec")
    data = packed.read_bytes()
    with tarfile.open(packed) as tar:
        last = tar.getmembers()[-1]
    packed.write_bytes(data[: last.offset_data + 10])  # the last file's data stops short
    with pytest.raises(BundleError, match="cut.edgerec cannot be unpacked .* truncated or damaged"):
        Bundle.open(packed)
    assert not (tmp_path / ".cut.edgerec.unpacked").exists()
    assert not (tmp_path / ".cut.edgerec.unpacked.tmp").exists()
    # members that cannot be written (a file where a folder must go): refused, and the staging copy is gone
    clash = tar_of(tmp_path, [(member(MANIFEST), b"{}"), (member("a"), b"x"), (member("a/b"), b"y")], "clash.edgerec")
    with pytest.raises(BundleError, match="clash.edgerec cannot be unpacked .* truncated or damaged"):
        Bundle.open(clash)
    assert not (tmp_path / ".clash.edgerec.unpacked.tmp").exists()


def test_a_packed_file_cut_at_a_member_boundary_says_it_is_truncated(bundle, tmp_path):
    """tarfile stops without a word at a header cut short: the bundle then said a file was missing from a hidden
    folder the user never made, and that partial copy stayed published."""
    packed = pack(bundle, tmp_path / "cut.edgerec")
    with tarfile.open(packed) as tar:
        last = tar.getmembers()[-1]
    packed.write_bytes(packed.read_bytes()[: last.offset])
    with pytest.raises(BundleError, match=rf"^cut.edgerec holds \d+ of the \d+ files its manifest lists "
                                          rf"\('{last.name}' is not in it\); it is truncated or damaged"):
        Bundle.open(packed)
    assert not list(tmp_path.glob(".cut.edgerec.*"))


def test_a_packed_manifest_with_a_flipped_byte_is_refused(bundle, tmp_path):
    """The manifest is the one file no checksum of `files` covers: a bit flipped in a packed copy ("k": 5 -> 4)
    opened and served other lists. `pack` records its sha256; an older packed file without it still opens."""
    packed = pack(bundle, tmp_path / "flip.edgerec")
    data = packed.read_bytes()
    with tarfile.open(packed) as tar:
        start = tar.getmember(MANIFEST).offset_data
    at = data.index(b'"name": "', start) + len(b'"name": "')
    flipped = data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]
    packed.write_bytes(flipped)
    with pytest.raises(BundleError, match="flip.edgerec: its manifest.json fails the sha256 check recorded when it "
                                          "was packed; the file is damaged"):
        Bundle.open(packed)
    with tarfile.open(packed) as tar:  # the same bundle packed without the record (an older edgerec): it opens
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]
    old = tmp_path / "old.edgerec"
    with tarfile.open(old, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, payload in members:
            info.pax_headers = {}
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    Bundle.open(pack(bundle, tmp_path / "fine.edgerec"))
    assert Bundle.open(old).manifest.name != Bundle.open(tmp_path / "fine.edgerec").manifest.name


def test_a_missing_packed_file(tmp_path):
    with pytest.raises(BundleError, match="no such directory or packed file"):
        Bundle.open(tmp_path / "none.edgerec")


def test_a_name_held_twice_is_refused(bundle, tmp_path):
    manifest = (bundle / MANIFEST).read_bytes()
    twice = tar_of(tmp_path, [(member(MANIFEST), manifest), (member(MANIFEST), b"{}")], "twice.edgerec")
    with pytest.raises(BundleError, match=r"^.*twice.edgerec holds a file name twice; it is not a packed edgerec "
                                          r"bundle, pack it again$"):
        Bundle.open(twice)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["twice.edgerec"]  # nothing unpacked, nothing left


def test_leftovers_are_removed_only_once_older_than_the_grace_period(bundle, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from edgerec.runtime import pack as module

    packed = pack(bundle, tmp_path / "one.edgerec")
    now = 2_000_000_000.0
    monkeypatch.setattr(module, "time", SimpleNamespace(time=lambda: now))
    ages = {".one.edgerec.aaaa.unpacked": STALE_AFTER_S, ".one.edgerec.bbbb.unpacked": STALE_AFTER_S + 1,
            ".one.edgerec.cccc.tmp": STALE_AFTER_S, ".one.edgerec.dddd.tmp": STALE_AFTER_S + 1,
            ".other.edgerec.eeee.unpacked": 10 * STALE_AFTER_S}  # another packed file's copy: not ours
    for name, age in ages.items():
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (now - age, now - age))
    target = unpacked(packed)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert left == sorted([".one.edgerec.aaaa.unpacked", ".one.edgerec.cccc.tmp", ".other.edgerec.eeee.unpacked",
                           target.name])


def test_a_copy_a_running_app_holds_is_kept_when_the_file_is_updated(bundle, handmade_bundle, tmp_path):
    """Another process opening the file's next contents removed the copy a running app still loaded its models
    from (lazily, at its first request): it served fallback lists until it restarted."""
    import gc
    import subprocess
    import sys

    packed = pack(bundle, tmp_path / "b.edgerec")
    running = Bundle.open(packed)
    old = Path(str(running.root))  # a plain path: the Bundle's own root holds the copy
    newer = pack(handmade_bundle(np.eye(4)[::-1], popularity=[4, 3, 2, 1]), tmp_path / "newer.edgerec")
    os.replace(newer, packed)
    os.utime(old, (time.time() - STALE_AFTER_S - 60,) * 2)
    subprocess.run([sys.executable, "-c", f"from edgerec.runtime.bundle import Bundle; Bundle.open({str(packed)!r})"],
                   check=True)
    assert (old / "manifest.json").is_file() and Bundle.open(old).manifest.name == running.manifest.name
    del running
    gc.collect()
    subprocess.run([sys.executable, "-c", f"from edgerec.runtime.bundle import Bundle; Bundle.open({str(packed)!r})"],
                   check=True)
    assert not old.exists()  # no longer held: removed


def test_a_packed_path_that_cannot_be_read_names_itself(tmp_path):
    folder = tmp_path / "folder.edgerec"
    folder.mkdir()
    with pytest.raises(BundleError, match=r"^packed bundle folder.edgerec cannot be read \(Is a directory\)"):
        unpacked(folder)


def test_unpacking_stages_next_to_the_file_and_only_once_per_content(bundle, tmp_path, monkeypatch):
    """The staging folder is where the leftover sweep looks (.<name>.*.tmp beside the packed file),
    and an unchanged file is not extracted a second time."""
    from edgerec.runtime import pack as module

    packed = pack(bundle, tmp_path / "one.edgerec")
    staged = []
    real = module._extract

    def extract(path, staging):
        staged.append(staging)
        real(path, staging)

    monkeypatch.setattr(module, "_extract", extract)
    target = unpacked(packed)
    assert unpacked(packed) == target and len(staged) == 1
    assert staged[0].parent == tmp_path and staged[0].name.startswith(".one.edgerec.")
    assert staged[0].name.endswith(".tmp") and not staged[0].exists()


def test_another_process_publishing_first_is_fine_a_failed_publish_is_not(bundle, tmp_path, monkeypatch):
    from edgerec.runtime import pack as module

    packed = pack(bundle, tmp_path / "one.edgerec")
    real = os.rename

    def lost_the_race(src, dst):  # another process renamed its own copy into place just before us
        real(src, dst)
        raise OSError("Directory not empty")

    monkeypatch.setattr(module.os, "rename", lost_the_race)
    target = unpacked(packed)
    assert target == copy_of(packed) and (target / MANIFEST).is_file()
    assert not list(tmp_path.glob(".one.edgerec.*.tmp"))

    other = tmp_path / "two.edgerec"
    other.write_bytes(packed.read_bytes() + b"\0" * 512)  # other bytes: a copy of its own is needed

    def read_only(src, dst):
        raise OSError("Read-only file system")

    monkeypatch.setattr(module.os, "rename", read_only)
    with pytest.raises(BundleError, match=r"^could not publish the unpacked copy of two.edgerec; check that its "
                                          r"folder is writable$"):
        unpacked(other)
    assert not list(tmp_path.glob(".two.edgerec.*"))  # the staging copy is gone too


def sparse_member(name, stored: bytes, claimed: int) -> bytes:
    """A GNU sparse member (old format): `stored` bytes in the file, `claimed` bytes once expanded."""
    info = tarfile.TarInfo(name)
    info.size = len(stored)
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    header[156:157] = tarfile.GNUTYPE_SPARSE
    header[386:410] = b"%011o\0%011o\0" % (0, len(stored))  # one data region: offset 0, len(stored) bytes
    header[483:495] = b"%011o\0" % claimed  # the expanded ("real") size
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header) + stored + b"\0" * (-len(stored) % 512)


def sparse_tar(path, claimed):
    """manifest.json ("{}") and a sparse big.bin of 512 stored bytes claiming `claimed`."""
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    data = path.read_bytes().rstrip(b"\0")
    data = data + b"\0" * (-len(data) % 512) + sparse_member("big.bin", b"x" * 512, claimed) + b"\0" * 1024
    path.write_bytes(data)
    return path


def test_members_claiming_more_bytes_than_the_file_has_are_refused(tmp_path):
    """A sparse member stores little and expands to a lot: the unpack would fill the disk."""
    path = sparse_tar(tmp_path / "sparse.edgerec", 10 << 20)
    with tarfile.open(path) as tar:  # a valid archive whose members add up to more than the file
        assert sum(m.size for m in tar.getmembers()) > path.stat().st_size
    with pytest.raises(BundleError, match=r"^sparse.edgerec is truncated \(its members need more bytes than the file "
                                          r"has\); copy or pack it again$"):
        Bundle.open(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sparse.edgerec"]


def test_members_adding_up_to_exactly_the_file_size_are_unpacked(tmp_path):
    size = sparse_tar(tmp_path / "probe.edgerec", 512).stat().st_size  # the claimed size does not move it
    path = sparse_tar(tmp_path / "exact.edgerec", size - 2)  # 2 bytes of manifest + the rest
    assert path.stat().st_size == size
    with pytest.raises(BundleError, match="not an edgerec bundle manifest"):  # unpacked, then read
        Bundle.open(path)
