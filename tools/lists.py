"""Record the runtime's lists over a fixed mix of requests, to prove a refactor changes none of them.

    python tools/lists.py build WORKDIR            # the tests' tiny bundle (+ one with a ranker), once
    python tools/lists.py record BUNDLE OUT.json   # every list of the request mix, both engines
    python tools/lists.py compare A.json B.json    # identical? (ids, exact scores, reasons)

Only the public runtime API is used, so the same script runs on the code before and after a
change. Every request passes a fixed `now`, so popularity-with-freshness does not move between runs, and
the ANN index is built once next to the bundle (usearch builds differ from run to run).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

NOW = 1_790_000_000.0  # recent: the history prunes events older than its retention (730 days)


def build(workdir: Path) -> None:
    """The recipe of tests/conftest.py's tiny_bundle, plus a ranker for a second bundle."""
    from edgerec.data import SynthConfig, write_synth
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset
    from edgerec.export.bundle_builder import ExportConfig, export_bundle
    from edgerec.models.config import ModelConfig
    from edgerec.models.train import TrainConfig, train_model

    data = workdir / "data"
    write_synth(SynthConfig(users=300, items=1_000, events=20_000, seed=5), data)
    dataset = load_dataset(data)
    train_model(dataset, leave_last_out(dataset), ModelConfig(dim=16, layers=1, max_len=10, dropout=0.0),
                TrainConfig(epochs=3, batch_size=32, eval_users=0), out=workdir / "ckpt")
    cfg = ExportConfig(parity_users=200, evaluate=False, min_top10_agreement=0.8)
    export_bundle(workdir / "ckpt", data, workdir / "bundle", cfg)
    subprocess.run([sys.executable, "-m", "edgerec.cli.main", "train", "--data", str(data), "--arch", "ranker",
                    "--retrieval", str(workdir / "ckpt"), "--out", str(workdir / "ranker"), "--epochs", "2"],
                   check=False)  # the ranker is saved before the command prints its summary
    cfg.min_top10_agreement = 0.0  # a tiny ranker's int8 copy may reorder its ties; this bundle tests the path
    export_bundle(workdir / "ckpt", data, workdir / "bundle-ranker", cfg, ranker=workdir / "ranker")


def _requests():
    """(label, user, kwargs) of the mix; users are set up by _setup first."""
    from edgerec.runtime import Filters, Policy
    from edgerec.runtime.vocab import MODALITIES

    plain = [f"p{u}" for u in range(24)]
    filters = [Filters(languages=["es"]), Filters(kids_safe=True, modalities=list(MODALITIES[:2])),
               Filters(genres=["jazz", "rock", "drama"]), Filters(exclude_genres=["drama", "comedy"]),
               Filters(max_duration_s=1800), Filters(modalities=["podcast_episode"], languages=["en"])]
    policies = [Policy(diversity=0.5), Policy(max_per_creator=1), Policy(max_per_genre=2),
                Policy(diversity=0.3, max_per_creator=2, max_per_genre=3), Policy(freshness=0.5),
                Policy(language_boost=0.4), Policy(cold_start_items=10), Policy(use_ranker=False),
                Policy(feedback_weight=2.5), Policy(short_list=30)]
    out = []
    for user in plain + ["short1", "short2", "newcomer", "onboarded", "tagged", "liker", "disliker", "mixed",
                         "added-fan", "replaced-fan"]:
        for k in (1, 10, 40):
            out.append(("plain", user, {"k": k}))
        out.append(("tv", user, {"k": 10, "context": {"device": "tv", "hour": 21.5}}))
    for i, f in enumerate(filters):
        for user in plain[:6] + ["newcomer", "onboarded", "short1", "liker", "disliker"]:
            out.append((f"filter{i}", user, {"k": 10, "filters": f}))
    for i, p in enumerate(policies):
        for user in plain[6:12] + ["newcomer", "short2", "liker", "mixed"]:
            out.append((f"policy{i}", user, {"k": 10, "policy": p}))
    out.append(("everything", "newcomer", {"k": 5000}))
    out.append(("everything", "p3", {"k": 5000}))
    return out


def _setup(rec) -> None:
    cat = rec.catalog
    ts = NOW - 10_000
    for u in range(24):  # runs of neighbouring rows (series, creators), as the bench makes them
        start = (u * 41) % (cat.base_count - 12)
        for i in range(4 + u % 9):
            rec.record(f"p{u}", cat.item_id(start + i), "finish" if i % 3 else "play", timestamp=ts + i)
    rec.record("short1", cat.item_id(100), "finish", timestamp=ts)
    for i in (200, 201):
        rec.record("short2", cat.item_id(i), "finish", timestamp=ts + i)
    rec.onboard("onboarded", genres=["jazz"], languages=["en"])
    rec.onboard("tagged", tags=list(cat.meta(10)["tags"][:2]), items=[cat.item_id(10)])
    for i in range(5):
        rec.record("liker", cat.item_id(300 + i), "finish", timestamp=ts + i)
    rec.record("liker", cat.item_id(700), "more_like_this", timestamp=ts + 9)
    rec.record("liker", cat.item_id(701), "like", timestamp=ts + 10)
    for i in range(6):
        rec.record("disliker", cat.item_id(400 + i), "finish", timestamp=ts + i)
    first = rec.recommend("disliker", k=3, context={"now": NOW})
    rec.record("disliker", first[0].item_id, "not_interested", timestamp=ts + 20)
    for i in range(7):
        rec.record("mixed", cat.item_id(500 + 3 * i), "play", timestamp=ts + i)
    rec.record("mixed", cat.item_id(510), "skip", timestamp=ts + 8)
    rec.record("mixed", cat.item_id(600), "more_like_this", timestamp=ts + 9)
    rec.record("mixed", cat.item_id(610), "not_interested", timestamp=ts + 10)
    for i in range(5):  # some of these are removed below: the history keeps items the catalog lost
        rec.record("added-fan", cat.item_id(19 + i if i != 2 else 30), "finish", timestamp=ts + i)
    for i in range(4):
        rec.record("replaced-fan", cat.item_id(38 + i), "finish", timestamp=ts + i)
    # catalog updates: a vector item, a metadata-only item, a replaced bundle item, removed items
    vec = cat.vectors([20])[0]
    meta = cat.meta(30)
    rec.add_items([{"item_id": "new-vec", "vector": vec.tolist(), "title": "New by vector", "genre": meta["genre"]},
                   {"item_id": "new-meta", "title": "New by metadata", "creator": meta["creator"],
                    "genre": meta["genre"], "tags": meta["tags"], "modality": meta["modality"],
                    "language": meta["language"]},
                   {"item_id": cat.item_id(40), "vector": cat.vectors([41])[0].tolist(), "title": "Replaced"}])
    rec.remove_items([cat.item_id(i) for i in (21, 22, 23, 31, 32)] + ["new-meta"])
    rec.add_items([{"item_id": "new-meta", "title": "Back again", "creator": meta["creator"],
                    "genre": meta["genre"], "tags": meta["tags"], "modality": meta["modality"],
                    "language": meta["language"]}])
    rec.record("added-fan", "new-vec", "finish", timestamp=ts + 6)


def record(bundle: str, out: str) -> None:
    from edgerec.runtime import Recommender

    runs = {}
    requests = _requests()
    cache = Path(bundle).parent / f"{Path(bundle).name}-ann-cache"  # HNSW builds vary: keep one index
    with tempfile.TemporaryDirectory() as scratch:
        for backend in ("onnx", "tflite"):
            for ann in (None, "usearch"):
                label = f"{backend}-{ann or 'exact'}"
                with Recommender.open(bundle, history=Path(scratch) / f"{label}.db", backend=backend, ann=ann,
                                      cache_dir=cache) as rec:
                    _setup(rec)
                    lists = []
                    for kind, user, kwargs in requests:
                        context = dict(kwargs.pop("context", {}) or {}, now=NOW)
                        got = rec.recommend(user, context=context, **kwargs)
                        kwargs["context"] = context
                        lists.append({"kind": kind, "user": user,
                                      "items": [[r.item_id, r.score, r.reason.kind, r.reason.text, r.reason.item_id]
                                                for r in got]})
                    runs[label] = lists
    Path(out).write_text(json.dumps(runs))
    print(f"{sum(len(v) for v in runs.values())} lists from {len(runs)} runs -> {out}")


def compare(a: str, b: str) -> int:
    left, right = json.loads(Path(a).read_text()), json.loads(Path(b).read_text())
    total = differ = 0
    for run in sorted(set(left) | set(right)):
        for x, y in zip(left.get(run, []), right.get(run, [])):
            total += 1
            if x != y:
                differ += 1
                if differ <= 5:
                    print(f"{run} {x['kind']} {x['user']}:\n  before {x['items'][:3]}\n  after  {y['items'][:3]}")
        if len(left.get(run, [])) != len(right.get(run, [])):
            print(f"{run}: {len(left.get(run, []))} lists before, {len(right.get(run, []))} after")
            differ += 1
    print(f"{total} lists compared, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "build":
        build(Path(args[0]))
    elif command == "record":
        record(*args)
    elif command == "compare":
        sys.exit(compare(*args))
    else:
        sys.exit(__doc__)
