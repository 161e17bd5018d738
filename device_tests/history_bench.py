"""What encryption at rest costs: plain vs SQLCipher history, record() and recommend() latency and open time.

    python -m edgerec.device_tests.history_bench BUNDLE [--events 300] [--requests 300] [--json out.json]

Both stores run in one process and the calls alternate between them (plain,
encrypted, encrypted, plain, ...), so machine load falls on both alike. The
history is pre-filled, then timed record() calls (durable commits) and
recommend() calls run; the open time is the median of reopening each store.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from pathlib import Path

import numpy as np

from edgerec.device_tests.timing import print_result, seconds_ms
from edgerec.runtime import checks
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.recommender import Recommender


def bench_history(bundle: str | Path, events: int = 300, requests: int = 300, opens: int = 30,
                  workdir: str | Path | None = None) -> dict:
    checks.integer(events, "the history benchmark's events", low=0, high=10**7)
    for count, what in ((requests, "requests"), (opens, "opens")):  # percentiles of no samples: an IndexError
        checks.integer(count, f"the history benchmark's {what}", low=1, high=10**7)
    key = secrets.token_bytes(32)
    with tempfile.TemporaryDirectory(prefix="edgerec-histbench-", dir=workdir) as tmp:
        paths = {"plain": Path(tmp) / "plain.db", "encrypted": Path(tmp) / "encrypted.db"}
        keys = {"plain": None, "encrypted": key}
        recs = {name: Recommender.open(bundle, history=paths[name], key=keys[name]) for name in paths}
        first = next(iter(recs.values()))
        items = [first.catalog.item_id(i) for i in range(min(len(first.catalog), 500))]
        for rec in recs.values():
            for i in range(events):
                rec.history.record(f"u{i % 5}", items[i % len(items)], "play")
            rec.recommend("u0", k=10)  # warm sessions and caches
        timings = {name: {"record": [], "recommend": []} for name in recs}
        order = list(recs)
        for i in range(requests):
            for name in (order if i % 2 == 0 else order[::-1]):
                rec = recs[name]
                t = time.perf_counter()
                rec.record("u0", items[(7 * i) % len(items)], "finish")
                timings[name]["record"].append(time.perf_counter() - t)
                t = time.perf_counter()
                rec.recommend("u0", k=10)
                timings[name]["recommend"].append(time.perf_counter() - t)
        for rec in recs.values():
            rec.close()
        open_times = {name: [] for name in recs}
        for i in range(opens):
            for name in (order if i % 2 == 0 else order[::-1]):
                t = time.perf_counter()
                store = HistoryStore(paths[name], key=keys[name])
                store.events_after("u0", 0, 10)  # the first read: the key check and page decryption
                open_times[name].append(time.perf_counter() - t)
                store.close()
    out = {name: {"record": seconds_ms(timings[name]["record"]), "recommend": seconds_ms(timings[name]["recommend"]),
                  "open_ms": float(np.median(open_times[name]) * 1e3)} for name in recs}
    out["ratio"] = {op: out["encrypted"][op]["p99_ms"] / out["plain"][op]["p99_ms"] for op in ("record", "recommend")}
    out["ratio"]["open"] = out["encrypted"]["open_ms"] / out["plain"]["open_ms"]
    out["setup"] = {"events": events, "requests": requests, "opens": opens}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgerec.device_tests.history_bench", description=__doc__)
    parser.add_argument("bundle")
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    return print_result(lambda: bench_history(args.bundle, args.events, args.requests), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
