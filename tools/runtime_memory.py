"""Where the runtime's resident memory goes while it serves a bundle, part by part.

    python tools/runtime_memory.py BUNDLE [--engine tflite|onnx] [--requests 200]

Run it in a fresh process per measurement (`edgerec bench --items N` grows a bundle to N items; the
bench's footprint worker leaves it out). It imports the runtime, opens the bundle, records 200 users
of 30 events as the bench does, serves one request and then `--requests` more in the bench's mix,
and prints VmHWM / VmRSS / RssAnon / RssFile (MiB, from /proc/self/status) at each point; at the end
it splits the resident set into parts that add up to it, from /proc/self/smaps: the item table, the
other bundle files (the small columns), the engine's libraries, the other file pages, and the
private memory (of which the id index).
"""

from __future__ import annotations

import argparse
import re
import time

import numpy as np

STATUS = ("VmHWM", "VmRSS", "RssAnon", "RssFile")


def status() -> dict[str, float]:
    with open("/proc/self/status") as handle:
        return {line.split(":")[0]: int(line.split()[1]) / 1024 for line in handle if line.startswith(STATUS)}


def file_pages() -> dict[str, float]:
    """Resident MiB of each mapped file (its private anonymous pages left out: they are in RssAnon)."""
    pages, name = {}, None
    with open("/proc/self/smaps") as handle:
        for line in handle:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                fields = line.split()
                name = fields[5] if len(fields) > 5 and not fields[5].startswith("[") else None
            elif name and line.startswith(("Rss:", "Anonymous:")):
                sign = 1 if line.startswith("Rss:") else -1
                pages[name] = pages.get(name, 0.0) + sign * int(line.split()[1]) / 1024
    return pages


def parts(bundle_root: str, table_file: str, index_bytes: int) -> dict[str, float]:
    now, by_file = status(), file_pages()
    table = sum(v for k, v in by_file.items() if k.endswith(table_file))
    columns = sum(v for k, v in by_file.items() if k.startswith(bundle_root)) - table
    engine = sum(v for k, v in by_file.items() if "litert" in k.lower() or "onnxruntime" in k)
    index = index_bytes / 2**20
    return {"item table": table, "other bundle files (small columns)": columns, "engine libraries": engine,
            "other file pages": now["RssFile"] - table - columns - engine, "private: id index": index,
            "private: the rest": now["RssAnon"] - index, "VmHWM": now["VmHWM"], "VmRSS": now["VmRSS"]}


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("bundle")
    args.add_argument("--engine", default="tflite")
    args.add_argument("--requests", type=int, default=200)
    opts = args.parse_args()
    from edgerec.runtime import Recommender

    points = {"import": status()}
    rec = Recommender.open(opts.bundle, backend=opts.engine, threads=1)
    points["open"] = status()
    rng, n, users, now = np.random.default_rng(0), rec.catalog.base_count, [], time.time()
    for u in range(200):  # as the bench's _users: runs of neighbouring rows
        name, start = f"bench-{u}", int(rng.integers(0, n))
        for i in range(30):
            row = (start + i if rng.random() < 0.7 else int(rng.integers(0, n))) % n
            rec.history.record(name, rec.catalog.item_id(row), "finish", ts=now - 60 * (30 - i))
        users.append(name)
    rec.recommend(users[0], k=10)
    points["first request"] = status()
    for i in range(opts.requests):
        user = users[int(rng.integers(0, len(users)))]
        if i % 5 == 0:
            rec.history.record(user, rec.catalog.item_id(int(rng.integers(0, n))), "play")
        rec.recommend(user, k=10)
    points[f"{opts.requests} requests"] = status()
    for point, values in points.items():
        print(f"{point:>14}: " + "  ".join(f"{k} {v:6.1f}" for k, v in values.items()))
    root = str(rec.bundle.root.resolve())
    for part, mib in parts(root, rec.bundle.manifest.items.embeddings.file, rec.catalog.index.nbytes).items():
        print(f"{part:>36}: {mib:6.1f} MiB")


if __name__ == "__main__":
    main()
