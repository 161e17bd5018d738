"""The server's intake of uploads after audit B2 (Dec 2026): a memoryview is one more copy of the same bytes
(it skipped the duplicate check, and two devices' memoryviews collided), and an upload larger than any of the
run is refused by its size and header before anything is decoded."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import edgerec.federated.server as server_module
from edgerec.federated.accounting import DPPlan
from edgerec.federated.server import FederatedServer, ServerConfig
from edgerec.runtime.fed_format import ClientUpdate, encode_update
from edgerec.runtime.federated import RoundTask

SPACE = "ab" * 12 + "0" * 40
ROWS, DIM = 40, 4


def _server(dp: bool = False, upload_rows: int = 8) -> FederatedServer:
    table = np.random.default_rng(0).normal(size=(ROWS, DIM)).astype(np.float32)
    task = RoundTask(round=0, space=SPACE, clip=0.2, upload_rows=upload_rows)
    plan = DPPlan(epsilon=4.0, delta=1e-6, q=10 / 100, rounds=2, clip=0.2) if dp else None
    return FederatedServer(table, SPACE, 100, ServerConfig(rounds=2, clients_per_round=10), task, plan)


def _upload(seed: int, rows: int = 8, encoding: str = "int8") -> bytes:
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(ROWS, rows, replace=False))
    return encode_update(ClientUpdate(0, SPACE[:24], ids, rng.normal(size=(rows, DIM)).astype(np.float32) * 0.01,
                                      1.0), encoding)


@pytest.mark.parametrize("dp", [False, True])
def test_a_memoryview_is_the_same_upload_and_two_devices_memoryviews_are_two(dp):
    server = _server(dp)
    x, y = _upload(1), _upload(2)
    kept, refused = server.uploads([x, memoryview(x), bytearray(x), memoryview(x)])
    assert len(kept) == 1 and len(refused) == 3 and all("came twice" in r for r in refused)
    other = _server(dp)
    kept, refused = other.uploads([memoryview(x), memoryview(y)])
    assert (len(kept), refused) == (2, [])


def test_an_upload_larger_than_any_of_the_run_is_refused_before_it_is_decoded(monkeypatch):
    decoded = []
    real = server_module.decode_update
    monkeypatch.setattr(server_module, "decode_update", lambda data, *a: decoded.append(len(data)) or real(data, *a))
    server = _server()
    count = 100_000  # a header claiming far more rows than the table's 40
    huge = struct.pack("<4sBBHIIf12s", b"ERFU", 1, 2, DIM, 0, count, 1.0, bytes.fromhex(SPACE[:24])) \
        + bytes(count * (4 + 4 + DIM))
    kept, refused = server.uploads([huge, memoryview(huge)])
    assert kept == [] and decoded == [] and all("larger than any of this run" in r for r in refused)
    # a header claiming more rows than the table, on few bytes: refused by the header, before its rows are read
    short = huge[:200]
    assert server.uploads([short])[1] == ["an update of 100000 rows is refused: this run's updates hold at most 40"]
    # the largest upload the run can take still goes through (the whole table, fp16)
    whole = _upload(3, rows=ROWS, encoding="fp16")
    assert len(server.uploads([whole])[0]) == 1


def test_a_dp_round_refuses_an_upload_past_its_row_count_by_size():
    server = _server(dp=True, upload_rows=8)
    kept, refused = server.uploads([_upload(4, rows=30)])  # 30 rows for a round of 8 a device
    assert kept == [] and "larger than any of this run (8 rows" in refused[0]
    kept, refused = server.uploads([_upload(5, rows=6)])  # smaller: decoded, then refused by its count
    assert kept == [] and "holds 8 rows" in refused[0]
    assert len(server.uploads([_upload(6, rows=8, encoding="fp16")])[0]) == 1
