"""What the app's thread waits for: a direct record() / recommend() against the same call handed to a
Background runner (runtime/background.py), which returns a Future at once.

    python -m edgerec.device_tests.handover_bench BUNDLE [--calls 300] [--json out.json]

The direct and the handed-over calls alternate in one process (direct, handed, handed, direct, ...),
two users with the same events, so machine load falls on both alike. Each handed-over call is timed
from the call to its return on the calling thread (the Future is then waited for, off the clock), and
from the call to its result (`done`), which is the direct call's work plus the hand-over.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from edgerec.device_tests.timing import print_result, seconds_ms
from edgerec.runtime import checks
from edgerec.runtime.background import Background
from edgerec.runtime.recommender import Recommender

OPERATIONS = ("record", "recommend")



def bench_handover(bundle: str | Path, calls: int = 300, workdir: str | Path | None = None) -> dict:
    checks.integer(calls, "the hand-over benchmark's calls", low=1, high=10**6)
    samples = {op: {"direct": [], "returned": [], "done": []} for op in OPERATIONS}
    with tempfile.TemporaryDirectory(prefix="edgerec-handover-", dir=workdir) as tmp:
        with Recommender.open(bundle, history=Path(tmp) / "h.db") as rec, Background(rec) as bg:
            items = [rec.catalog.item_id(i) for i in range(min(len(rec.catalog), 500))]
            runs = {"direct": lambda op, *a: getattr(rec, op)(*a), "handed": lambda op, *a: getattr(bg, op)(*a)}
            for i in range(calls):
                for way in (("direct", "handed") if i % 2 == 0 else ("handed", "direct")):
                    user = "direct" if way == "direct" else "handed"  # the same events for each user
                    for op, args in (("record", (user, items[i % len(items)], "play")), ("recommend", (user, 10))):
                        began = time.perf_counter()
                        out = runs[way](op, *args)
                        returned = time.perf_counter()
                        if way == "direct":
                            samples[op]["direct"].append(returned - began)
                            continue
                        out.result()
                        samples[op]["returned"].append(returned - began)
                        samples[op]["done"].append(time.perf_counter() - began)
    out = {op: {kind: seconds_ms(values) for kind, values in samples[op].items()} for op in OPERATIONS}
    out["ratio"] = {op: out[op]["returned"]["p99_ms"] / out[op]["direct"]["p99_ms"] for op in OPERATIONS}
    out["setup"] = {"calls": calls}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgerec.device_tests.handover_bench", description=__doc__)
    parser.add_argument("bundle")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    return print_result(lambda: bench_handover(args.bundle, args.calls), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
