"""CPU time per recommend() in the bench's request mix, and of users' first requests apart.

    python tools/request_cpu.py BUNDLE [--engine tflite|onnx] [--requests 1000]

On a shared machine wall-clock latency mostly measures the wait for a core; the thread's CPU time
(`time.thread_time_ns`) does not. The users, their histories and the mix (a new play before every
fifth request) are the bench's (`edgerec.device_tests.bench`); the first 40 users are warmed, so the
first request of each other user (what the p99 is made of) is counted apart. Prints one JSON line:
percentiles of all requests and of first requests, and each stage's p50 / p99 (wall, ms).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from edgerec.device_tests.bench import BenchConfig, _users
from edgerec.runtime import Recommender


def percentiles(values: list[float]) -> dict[str, float]:
    return {f"p{q}": round(float(np.percentile(values, q)), 3) for q in (50, 90, 99)} if values else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--engine", default="tflite")
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    config = BenchConfig(requests=args.requests)
    rec = Recommender.open(args.bundle, backend=args.engine, threads=1)
    rng = np.random.default_rng(config.seed)
    users = _users(rec, config, rng)
    for i in range(config.warmup):
        rec.recommend(users[i % len(users)], k=10)
    rec.monitor = type(rec.monitor)()  # stage times of the measured requests only
    seen, every, first = set(users[:config.warmup]), [], []
    for i in range(args.requests):
        user = users[int(rng.integers(0, len(users)))]
        if i % 5 == 0:
            rec.history.record(user, rec.catalog.item_id(int(rng.integers(0, rec.catalog.base_count))), "play")
        began = time.thread_time_ns()
        rec.recommend(user, k=10)
        every.append((time.thread_time_ns() - began) / 1e6)
        if user not in seen:
            seen.add(user)
            first.append(every[-1])
    stages = rec.monitor.snapshot()["stages"]
    print(json.dumps({"engine": args.engine, "cpu_ms": percentiles(every),
                      "first_request_cpu_ms": {**percentiles(first), "n": len(first)},
                      "stages_p50_p99_ms": {k: [round(v["p50_ms"], 3), round(v["p99_ms"], 3)] for k, v in stages.items()}}))
    rec.close()


if __name__ == "__main__":
    main()
