"""The cold-start study: items held out of training, then added on the device from metadata only.

Some items (and every event about them) are removed; a recommender is trained
and exported with the content encoder on what is left. On the device, the
held-out items are added with metadata only. For every user who later
consumed one of them, the user's history before that moment is encoded and
the whole catalog (old and new items) is ranked: HR@10 of the new item is
compared across placements: the content encoder (the device path), the
related-items fallback, random vectors, and popularity placement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.data.schema import Dataset
from edgerec.data.split import consumed_sequences, leave_last_out
from edgerec.data.store import load_dataset, save_dataset
from edgerec.export.bundle_builder import ExportConfig, export_bundle
from edgerec.models.config import ModelConfig
from edgerec.models.train import TrainConfig, train_model
from edgerec.studies.base import Progress, Study, Table, say


def _without(dataset: Dataset, held: np.ndarray) -> Dataset:
    keep_items = np.setdiff1d(np.arange(dataset.n_items), held)
    remap = np.full(dataset.n_items, -1, np.int64)
    remap[keep_items] = np.arange(len(keep_items))
    log = dataset.interactions
    keep = remap[log.item] >= 0
    reduced = log.take(np.flatnonzero(keep))
    reduced.item = remap[reduced.item].astype(np.int32)
    return Dataset(dataset.catalog.subset(keep_items), reduced, dataset.user_ids, dict(dataset.meta))


def cold_start_check(data_dir: str | Path, content_dir: str | Path, out: str | Path, *, held_items: int = 600,
                     epochs: int = 8, seed: int = 0, progress: Callable[[str], None] | None = None) -> dict:
    from edgerec.runtime import Recommender

    say = progress or (lambda _m: None)
    out = Path(out)
    dataset = load_dataset(data_dir)
    rng = np.random.default_rng(seed)
    seq, _ = consumed_sequences(dataset.interactions, dataset.n_users)
    consumers = np.bincount(seq.items, minlength=dataset.n_items)
    candidates = np.flatnonzero(consumers >= 3)
    held = np.sort(rng.choice(candidates, min(held_items, len(candidates)), replace=False))
    say(f"holding out {len(held)} items and their events")
    reduced = _without(dataset, held)
    save_dataset(reduced, out / "data")
    split = leave_last_out(reduced)
    say("training a recommender without them")
    train_model(reduced, split, ModelConfig(dim=32, layers=1, heads=1, max_len=50),
                TrainConfig(epochs=epochs, patience=2, eval_users=1000), out=out / "model")
    say("exporting a bundle with the content encoder")
    export_bundle(out / "model", out / "data", out / "bundle", ExportConfig(formats=("onnx",), evaluate=False),
                  content=content_dir)

    rec = Recommender.open(out / "bundle", backend="onnx")
    cat = rec.catalog
    new_ids = [dataset.catalog.item_ids[h] for h in held]
    metas = []
    for h in held:
        meta = {c: dataset.catalog.text[c][h] for c in ("title", "description", "genre", "mood", "modality",
                                                        "language", "creator", "series_id")}
        meta["tags"] = list(dataset.catalog.tags[h])
        metas.append(meta)
    # the device path: add_items() with metadata only (content encoder + related items when both exist)
    rec.add_items([{"item_id": item_id, **meta} for item_id, meta in zip(new_ids, metas)])
    device_default = cat.vectors(np.array([cat.row(i) for i in new_ids]))

    def placement(**use):
        vectors = np.stack([rec.metadata_vector(m, **use)[0] for m in metas])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    content_vectors = placement(use_related=False)
    related = placement(use_content=False)
    dim = rec.manifest.dim
    random_vectors = rng.normal(size=(len(held), dim)).astype(np.float32)
    random_vectors /= np.linalg.norm(random_vectors, axis=1, keepdims=True)
    popular = np.argsort(-np.asarray(cat.numeric["popularity"]))[:100]
    popularity_vectors = cat.vectors(rng.choice(popular, len(held)))
    base = cat.vectors(np.arange(cat.base_count))

    # (user, held item) pairs: the history before the first consumption of the held item, without held items
    held_set = {int(h): k for k, h in enumerate(held)}
    reduced_index = cat.index
    pairs_rows, pairs_target = [], []
    for u in range(seq.n_users):
        items = seq.of(u)
        for position, item in enumerate(items):
            k = held_set.get(int(item))
            if k is None or position < 3:
                continue
            before = [reduced_index[dataset.catalog.item_ids[i]] + 1 for i in items[:position] if int(i) not in held_set]
            pairs_rows.append(np.array(before[-50:], np.int64))
            pairs_target.append(k)
    say(f"ranking {len(pairs_target):,} (user, new item) pairs")
    users = np.concatenate([rec.encoder.encode(pairs_rows[i:i + 256]) for i in range(0, len(pairs_rows), 256)]) \
        if pairs_rows else np.zeros((0, dim), np.float32)
    targets = np.asarray(pairs_target)
    results = []
    for name, vectors in (("device default: content encoder + related items", device_default),
                          ("content encoder only", content_vectors),
                          ("related items only (no content model)", related),
                          ("popularity placement", popularity_vectors), ("random placement", random_vectors)):
        hits = 0
        for row in range(len(users)):
            base_scores = base @ users[row]
            base_scores[pairs_rows[row] - 1] = -np.inf
            new_scores = vectors @ users[row]
            target = new_scores[targets[row]]
            rank = (base_scores > target).sum() + (new_scores > target).sum()
            hits += rank < 10
        results.append({"placement": name, "HR@10": hits / max(len(users), 1)})
    rec.close()
    return {"held_items": int(len(held)), "pairs": int(len(targets)), "catalog": int(cat.base_count + len(held)),
            "placements": results}


@dataclass
class ColdStartStudy(Study):
    """HR@10 of new items placed on the device from metadata, against other placements."""

    name = "coldstart"
    data_dir: Path
    content_dir: Path
    out: Path
    held_items: int = 600
    epochs: int = 8
    seed: int = 0

    def measure(self, progress: Progress) -> dict:
        return cold_start_check(self.data_dir, self.content_dir, self.out, held_items=self.held_items,
                                epochs=self.epochs, seed=self.seed, progress=say(progress))

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        return [Table(f"cold-start items: {record['pairs']:,} (user, new item) pairs, {record['held_items']:,} "
                      f"new items in a catalog of {record['catalog']:,}", record["placements"])]
