"""The cold-start study: items held out of training, then added on the device from metadata only.

Some items (and every event about them) are removed; a recommender is trained
on what is left and exported once per content student given. On the device,
the held-out items are added with metadata only. For every user who later
consumed one of them, the user's history before that moment is encoded and
the whole catalog (old and new items) is ranked: HR@10 of the new item is
compared across placements: each student's device path (its content encoder,
blended with related items where the catalog knows the series or creator) and
its content vector alone, MiniLM itself on the host as a reference, the
related-items fallback, random vectors, and popularity placement.

`hold_out_items` writes the training data without the new items first, so
the students can be distilled on it and never read a new item's text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgerec.data.schema import Dataset
from edgerec.data.split import consumed_sequences, leave_last_out
from edgerec.data.store import load_dataset, save_dataset
from edgerec.errors import ConfigError
from edgerec.export.bundle_builder import ExportConfig, export_bundle
from edgerec.export.content import fit_projection, project, projection_items
from edgerec.models.checkpoint import with_path_in
from edgerec.models.config import ModelConfig
from edgerec.models.content import item_texts
from edgerec.models.evaluation import train_popularity
from edgerec.models.train import TrainConfig, train_model
from edgerec.runtime.content import metadata_text
from edgerec.runtime.new_items import metadata_vector
from edgerec.studies.base import Progress, Study, Table, say
from edgerec.studies.devices import open_device

META_COLUMNS = ("title", "description", "genre", "mood", "modality", "language", "creator", "series_id")


def _without(dataset: Dataset, held: np.ndarray) -> Dataset:
    keep_items = np.setdiff1d(np.arange(dataset.n_items), held)
    remap = np.full(dataset.n_items, -1, np.int64)
    remap[keep_items] = np.arange(len(keep_items))
    log = dataset.interactions
    keep = remap[log.item] >= 0
    reduced = log.take(np.flatnonzero(keep))
    reduced.item = remap[reduced.item].astype(np.int32)
    return Dataset(dataset.catalog.subset(keep_items), reduced, dataset.user_ids, dict(dataset.meta))


def hold_out_items(data_dir: str | Path, out: str | Path, held_items: int = 600,
                   seed: int = 0) -> tuple[Dataset, np.ndarray, Dataset]:
    """(full data, held-out item rows, data without them); the latter is written to OUT/data.
    The same data, count and seed always hold out the same items."""
    dataset = load_dataset(data_dir)
    seq, _ = consumed_sequences(dataset.interactions, dataset.n_users)
    consumers = np.bincount(seq.items, minlength=dataset.n_items)
    candidates = np.flatnonzero(consumers >= 3)
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(candidates, min(held_items, len(candidates)), replace=False))
    reduced = _without(dataset, held)
    save_dataset(reduced, Path(out) / "data")
    return dataset, held, reduced


class HostContent:
    """A content encoder run on the host (a PyTorch student, or MiniLM) with a projection into the
    item space: the two calls `metadata_vector` makes of the device's encoder."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], projection: np.ndarray,
                 reads_words: Callable[[str], bool] = bool):
        self.encode, self.projection, self.reads_words = encode, projection, reads_words

    @classmethod
    def student(cls, content_dir: Path, projection: np.ndarray) -> HostContent:
        """A content student checkpoint run by PyTorch, as `export` fed it the catalog's texts."""
        from edgerec.compress.content_distill import embed, load_student
        from edgerec.models.content import load_tokenizer, tokenize
        from edgerec.runtime.content import reads_words, unknown_id

        student, _ = load_student(content_dir)
        tokenizer = load_tokenizer(content_dir, 48)
        unknown = unknown_id(tokenizer)  # read once: a Unigram tokenizer's JSON is large
        return cls(lambda texts: embed(student, *tokenize(tokenizer, texts)), projection,
                   lambda text: reads_words(tokenizer, text, unknown))  # as the device decides

    def embed(self, texts: list[str]) -> np.ndarray:
        v = self.encode(texts)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def item_vectors(self, content: np.ndarray) -> np.ndarray:
        return project(content, self.projection)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _had_new_items(content_dir, config: dict, new_ids: list[str]) -> bool | None:
    """Whether the student was distilled on a catalog holding any of the new items (None: unknown). Its data
    folder is written relative to the student's folder (older students hold it as given)."""
    data = with_path_in(content_dir, config.get("info", {}), "data").get("data")
    try:
        ids = set(load_dataset(data).catalog.item_ids) if data else None
    except Exception:  # noqa: BLE001 - a moved or deleted folder only makes the answer unknown
        return None
    return None if ids is None else bool(ids & set(new_ids))


def _hits_at(k: int, users, base, history_rows, targets, vectors, draws: int = 1000) -> dict:
    """HR@k: the share of (user, new item) pairs whose new item ranks in the top k of old + new
    items, with a 95% interval from resampling the new items (a user's pairs with one item move together)."""
    hits = np.zeros(len(users))
    for row in range(len(users)):
        base_scores = base @ users[row]
        base_scores[history_rows[row] - 1] = -np.inf
        new_scores = vectors @ users[row]
        target = new_scores[targets[row]]  # NaN for an item its placement could not place: a miss
        hits[row] = np.isfinite(target) and (base_scores > target).sum() + (new_scores > target).sum() < k
    per_item = np.bincount(targets, hits, minlength=len(vectors))
    pairs = np.bincount(targets, minlength=len(vectors)).astype(float)
    pick = np.random.default_rng(0).integers(0, len(vectors), (draws, len(vectors)))
    resampled = per_item[pick].sum(1) / np.maximum(pairs[pick].sum(1), 1)
    low, high = np.percentile(resampled, [2.5, 97.5])
    return {f"HR@{k}": float(hits.mean()), f"HR@{k} low": float(low), f"HR@{k} high": float(high),
            "not placed": int(np.isnan(vectors).any(1).sum())}


def cold_start_check(data_dir: str | Path, content_dirs: list[str | Path], out: str | Path, *,
                     held_items: int = 600, epochs: int = 8, seed: int = 0, minilm: bool = False, k: int = 10,
                     encoder_dir: str | Path | None = None,
                     progress: Callable[[str], None] | None = None) -> dict:
    from edgerec.compress.content_distill import load_student
    from edgerec.studies.content import student_name

    if not content_dirs:
        raise ConfigError("the cold-start study needs at least one content student (--content)")
    say = progress or (lambda _m: None)
    out = Path(out)
    dataset, held, reduced = hold_out_items(data_dir, out, held_items, seed)
    say(f"held out {len(held)} items and their events")
    if not len(held):
        raise ConfigError("no item was consumed by three users or more, so none can be held out; use a log "
                          "with more events per item")
    if not len(_pairs(dataset, held, {item: row for row, item in enumerate(reduced.catalog.item_ids)})[1]):
        raise ConfigError(f"no user consumed any of the {len(held)} held-out items after a third event, so there "
                          "is no (user, new item) pair to rank; raise --held-items or use a log with longer "
                          "histories")
    split = leave_last_out(reduced)
    say("training a recommender without them")
    train_model(reduced, split, ModelConfig(dim=32, layers=1, heads=1, max_len=50),
                TrainConfig(epochs=epochs, patience=2, eval_users=1000), out=out / "model")
    new_ids = [dataset.catalog.item_ids[h] for h in held]
    metas = []
    for h in held:
        meta = {c: dataset.catalog.text[c][h] for c in META_COLUMNS if c in dataset.catalog.text}
        meta["tags"] = list(dataset.catalog.tags[h])
        metas.append(meta)
    rng = np.random.default_rng(seed)
    students, rows = [], []

    def hits(vectors):
        return _hits_at(k, users, base, pairs_rows, targets, vectors)

    pairs_rows = users = targets = base = None
    for index, content_dir in enumerate(content_dirs):
        name, config = student_name(Path(content_dir)), load_student(content_dir)[1]
        say(f"exporting a bundle with the content encoder {name}")
        bundle = out / f"bundle-{index}"
        export_bundle(out / "model", out / "data", bundle, ExportConfig(formats=("onnx",), evaluate=False),
                      content=content_dir)
        rec = open_device(bundle, backend="onnx")
        cat = rec.catalog
        if users is None:
            base = cat.vectors(np.arange(cat.base_count))
            pairs_rows, targets = _pairs(dataset, held, cat.index)
            say(f"ranking {len(targets):,} (user, new item) pairs")
            users = np.concatenate([rec.encoder.encode(pairs_rows[i:i + 256])
                                    for i in range(0, len(pairs_rows), 256)]) if pairs_rows \
                else np.zeros((0, rec.manifest.dim), np.float32)
            shared = _shared_placements(rec, metas, rng)
            if minilm:
                say("MiniLM (the teacher, on the host) as the reference encoder")
                reference = _minilm_placements(reduced, split, cat, metas, encoder_dir)
        device, content_only, parity = _device_placements(rec, content_dir, new_ids, metas)
        rec.close()
        students.append({"student": name, "kind": config.get("architecture", {}).get("kind", "static"),
                         "distilled_on_new_items": _had_new_items(content_dir, config, new_ids),
                         "device_vs_host_cosine_min": parity})
        rows += [{"placement": "device default: content encoder + related items", "content encoder": name,
                  **hits(device)},
                 {"placement": "content encoder only", "content encoder": name, **hits(content_only)}]
    if minilm:
        rows += [{"placement": placement, "content encoder": name, **hits(vectors)}
                 for name, placement, vectors in reference]
    rows += [{"placement": name, "content encoder": "-", **hits(v)} for name, v in shared.items()]
    return {"held_items": int(len(held)), "pairs": int(len(targets)), "catalog": int(len(base) + len(held)),
            "k": k, "students": students, "placements": rows}


def _device_placements(rec, content_dir, new_ids: list[str], metas: list[dict]) -> tuple:
    """(device vectors of the added items, content vectors alone, the least cosine between the device's
    vectors and the same placement computed from the PyTorch student on the host)."""
    cat = rec.catalog
    # the device path: add_items() with metadata only (content encoder + related items when both exist)
    rec.add_items([{"item_id": item_id, **meta} for item_id, meta in zip(new_ids, metas)])
    device = cat.vectors(np.array([cat.row(i) for i in new_ids]))
    content_only = _unit_rows(np.stack([rec.metadata_vector(m, use_related=False)[0] for m in metas]))
    host = HostContent.student(content_dir, rec.content.projection)
    expected = _unit_rows(np.stack([metadata_vector(cat, host, m)[0] for m in metas]))
    return device, content_only, float((_unit_rows(device) * expected).sum(1).min())


def _pairs(dataset: Dataset, held: np.ndarray, reduced_index: dict) -> tuple[list[np.ndarray], np.ndarray]:
    """(user, held item) pairs: the history before the first consumption of the held item, without
    held items, as 1-based rows of the reduced catalog; and the held item's position in `held`."""
    seq, _ = consumed_sequences(dataset.interactions, dataset.n_users)
    held_set = {int(h): k for k, h in enumerate(held)}
    history_rows, targets = [], []
    for u in range(seq.n_users):
        items = seq.of(u)
        for position, item in enumerate(items):
            k = held_set.get(int(item))
            if k is None or position < 3:
                continue
            before = [reduced_index[dataset.catalog.item_ids[i]] + 1 for i in items[:position]
                      if int(i) not in held_set]
            history_rows.append(np.array(before[-50:], np.int64))
            targets.append(k)
    return history_rows, np.asarray(targets, np.int64)


def _shared_placements(rec, metas: list[dict], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Placements that use no content encoder (the same for every student's bundle)."""
    cat = rec.catalog

    def related_only(meta: dict) -> np.ndarray:
        try:
            return rec.metadata_vector(meta, use_content=False)[0]
        except ConfigError:  # no creator, series or genre the catalog knows (a genre held out whole): not placed
            return np.full(rec.manifest.dim, np.nan, np.float32)

    related = _unit_rows(np.stack([related_only(m) for m in metas]))
    random_vectors = _unit_rows(rng.normal(size=(len(metas), rec.manifest.dim)).astype(np.float32))
    popular = np.argsort(-np.asarray(cat.numeric["popularity"]))[:100]
    return {"related items only (no content model)": related,
            "popularity placement": cat.vectors(rng.choice(popular, len(metas))),
            "random placement": random_vectors}


def _minilm_placements(reduced: Dataset, split, cat, metas: list[dict], encoder_dir) -> list[tuple]:
    """MiniLM's own vectors, projected into the item space the way a bundle's encoder is (ridge from
    the trained items' texts), then placed as the device places a student's: (name, placement, vectors)."""
    from edgerec.models.content import ContentTeacher

    teacher = ContentTeacher(encoder_dir)
    fit_rows = projection_items(train_popularity(split))  # the items a bundle's projection is fitted on
    catalog_vectors = teacher.encode(item_texts(reduced.catalog), batch=256)
    base = cat.vectors(np.arange(cat.base_count))
    host = HostContent(lambda texts: teacher.encode(texts, batch=256),
                       fit_projection(catalog_vectors[fit_rows], base[fit_rows]))
    blended = _unit_rows(np.stack([metadata_vector(cat, host, m)[0] for m in metas]))
    alone = _unit_rows(host.item_vectors(host.embed([metadata_text(m) for m in metas])))
    name = f"the teacher on the host ({Path(encoder_dir).name})" if encoder_dir else "MiniLM on the host"
    return [(name, "content encoder + related items (as the device)", blended),
            (name, "content encoder only", alone)]


@dataclass
class ColdStartStudy(Study):
    """HR@10 of new items placed on the device from metadata, per content student and against
    other placements."""

    name = "coldstart"
    data_dir: Path
    content_dirs: list[Path] = field(default_factory=list)
    out: Path = Path("runs/cold")
    held_items: int = 600
    epochs: int = 8
    seed: int = 0
    minilm: bool = False  # also MiniLM itself on the host, as the reference
    k: int = 10  # the cut-off of the hit rate
    encoder_dir: Path | None = None  # the teacher for `minilm`; default: the packaged all-MiniLM-L6-v2

    def measure(self, progress: Progress) -> dict:
        return cold_start_check(self.data_dir, list(self.content_dirs), self.out, held_items=self.held_items,
                                epochs=self.epochs, seed=self.seed, minilm=self.minilm,
                                k=self.k, encoder_dir=self.encoder_dir, progress=say(progress))

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        out = [Table(f"cold-start items: HR@{record.get('k', 10)} of {record['pairs']:,} (user, new item) pairs, "
                     f"{record['held_items']:,} new items in a catalog of {record['catalog']:,}", record["placements"])]
        if record.get("students"):
            out.append(Table("content students (device vectors of the added items against the same "
                             "placement from the PyTorch student)", record["students"]))
        return out
