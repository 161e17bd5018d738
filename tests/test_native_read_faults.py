"""The compiled row reads (runtime/_ids.c: read_cells, read_rows, the id lookup) under troubled storage,
played by an LD_PRELOAD shim (tests/native/pread_shim.c): a read a signal interrupts is retried and a partial
read continued, as Python's os.pread does, and a slow read lets the app's other threads run. Was (review of
the compiled read_cells): EINTR came out as InterruptedError and failed the request, a partial read read
as the file's end (a BundleError), and the GIL was held through every read (another thread got 1 tick in
five 200 ms reads, 923 through os.pread)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgerec.runtime.id_index import native_ids

SHIM = Path(__file__).parent / "native" / "pread_shim.c"

SCRIPT = r"""
import json, os, sys, threading, time
import numpy as np
from edgerec.runtime.column_rows import RowReader

path = sys.argv[1]
np.save(path, np.arange(50_000, dtype=np.int32))
reader = RowReader(np.asarray(np.load(path, mmap_mode="r")))
rows = [5, 6, 7, 9, 40_000]
out = {"native": reader._native is not None}
for mode in ("eintr", "partial"):
    os.environ["PREAD_SHIM"] = mode
    try:
        out[mode] = reader[rows].tolist()
    except Exception as exc:
        out[mode] = type(exc).__name__
    os.environ.pop("PREAD_SHIM", None)

ticks, stop = [0], [False]
def spin():
    while not stop[0]:
        ticks[0] += 1
        time.sleep(0.001)
thread = threading.Thread(target=spin)
thread.start()
time.sleep(0.05)
os.environ["PREAD_SHIM"] = "slow"
before = ticks[0]
reader[[1, 900, 7_000]]  # three runs: three reads of 100 ms
out["ticks"] = ticks[0] - before
os.environ.pop("PREAD_SHIM", None)
stop[0] = True
thread.join()
try:
    reader._native.read_cells(reader._fd, reader._at, 16, [2 ** 62])
    out["overflow"] = "read"
except IndexError as exc:
    out["overflow"] = str(exc)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def shim(tmp_path_factory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or native_ids() is None or not sys.platform.startswith("linux"):
        pytest.skip("needs a C compiler, Linux's LD_PRELOAD and the compiled _ids module")
    out = tmp_path_factory.mktemp("shim") / "pread_shim.so"
    subprocess.run([cc, "-O1", "-shared", "-fPIC", "-o", str(out), str(SHIM), "-ldl"], check=True)
    return out


def test_interrupted_partial_and_slow_reads_through_the_compiled_reader(shim, tmp_path):
    env = {**os.environ, "LD_PRELOAD": str(shim)}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "c.npy")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    expected = [5, 6, 7, 9, 40_000]
    assert out["native"] is True
    assert out["eintr"] == expected  # was: InterruptedError
    assert out["partial"] == expected  # was: BundleError (a short read taken for the file's end)
    assert out["ticks"] >= 60  # 300 ms of reads with the GIL released; was 0 or 1
    assert "outside any file" in out["overflow"]  # was: row 0's bytes (the offset wrapped)
