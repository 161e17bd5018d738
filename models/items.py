"""What a model knows about items besides their id: categorical fields, tags, content vectors.

`ItemData` holds, for every model row (row 0 = padding, row i + 1 = catalog
item i), the codes of its fields and tags, the id-embedding row it uses (its
own row for frequent items, a shared hashed row for the long tail, so a small
student can carry a small table) and optional per-modality content vectors
(text, audio, visual) for multimodal fusion. It travels inside checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgerec.data.schema import Catalog
from edgerec.data.tables import read_vectors
from edgerec.errors import ConfigError
from edgerec.models.config import check_content_name

FIELDS = ("creator", "series_id", "genre", "modality", "language", "mood")
MAX_TAGS = 8


@dataclass
class ItemData:
    item_ids: list[str]  # external ids; model row = position + 1
    vocab: dict[str, list[str]]  # per field (and "tags"): values; code = index + 1, 0 = unknown
    field_codes: np.ndarray  # (N + 1, len(FIELDS)) int64
    tag_codes: np.ndarray  # (N + 1, MAX_TAGS) int64, 0 = none
    id_rows: np.ndarray  # (N + 1,) int64 row of the id table; 0 = padding
    n_id_rows: int
    content: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N + 1, C) float32

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def vocab_sizes(self) -> list[int]:
        return [len(self.vocab[f]) + 1 for f in FIELDS]

    def to_meta(self) -> dict:
        """JSON-safe part (arrays travel as tensors)."""
        return {"item_ids": self.item_ids, "vocab": self.vocab, "n_id_rows": self.n_id_rows,
                "content": {k: int(v.shape[1]) for k, v in self.content.items()}}


def _codes(values: list[str], vocab: list[str]) -> np.ndarray:
    lookup = {v: i + 1 for i, v in enumerate(vocab)}
    return np.fromiter((lookup.get(v, 0) for v in values), np.int64, len(values))


def _extend(vocab: list[str], values) -> list[str]:
    known = set(vocab)
    return vocab + sorted({v for v in values if v and v not in known})


def build_item_data(catalog: Catalog, counts: np.ndarray, *, own_rows: int | None = None,
                    hash_buckets: int = 0, content: dict[str, np.ndarray] | None = None,
                    base: ItemData | None = None) -> ItemData:
    """Item data for `catalog`; `counts` (training consumptions per item) decides who keeps an own id row.

    With `base` (warm start) the vocabularies are extended, never reordered, so
    the rows of a trained model keep their meaning.
    """
    n = len(catalog)
    vocab = {} if base is None else {k: list(v) for k, v in base.vocab.items()}
    codes = np.zeros((n + 1, len(FIELDS)), np.int64)
    for j, name in enumerate(FIELDS):
        vocab[name] = _extend(vocab.get(name, []), catalog.text[name])
        codes[1:, j] = _codes(catalog.text[name], vocab[name])
    vocab["tags"] = _extend(vocab.get("tags", []), (t for tags in catalog.tags for t in tags))
    tag_lookup = {t: i + 1 for i, t in enumerate(vocab["tags"])}
    tags = np.zeros((n + 1, MAX_TAGS), np.int64)
    for i, item_tags in enumerate(catalog.tags):
        row = [tag_lookup[t] for t in item_tags[:MAX_TAGS]]
        tags[i + 1, :len(row)] = row
    id_rows, n_id_rows = _id_rows(np.asarray(counts), own_rows, hash_buckets)
    vectors = {}
    for name, matrix in (content or {}).items():
        check_content_name(name)
        matrix = read_vectors(matrix, f"content vectors {name!r}", rows=n)
        vectors[name] = np.vstack([np.zeros((1, matrix.shape[1]), np.float32), matrix])
    return ItemData(list(catalog.item_ids), vocab, codes, tags, id_rows, n_id_rows, vectors)


def _id_rows(counts: np.ndarray, own_rows: int | None, buckets: int) -> tuple[np.ndarray, int]:
    """Own rows for the `own_rows` most consumed items; the rest share `buckets` hashed rows."""
    n = len(counts)
    if own_rows is None or own_rows >= n:
        return np.arange(n + 1, dtype=np.int64), n + 1
    if buckets < 1:
        raise ConfigError("a pruned id table needs --hash-buckets >= 1 for the items without an own row")
    order = np.argsort(-counts, kind="stable")
    rows = np.empty(n + 1, np.int64)
    rows[0] = 0
    rows[1 + order[:own_rows]] = np.arange(1, own_rows + 1)
    tail = order[own_rows:]
    rows[1 + tail] = own_rows + 1 + (tail * 2654435761 % buckets)  # multiplicative hash of the item code
    return rows, own_rows + 1 + buckets


def id_layout(items: ItemData, own_rows: int | None, hash_buckets: int) -> tuple[int | None, int]:
    """The layout of a trained id table, (own rows, hash buckets), from the config it was built with:
    (None, 0) when every item has an own row (own_rows unset, or at least the catalog, at the time)."""
    if own_rows is not None and hash_buckets >= 1 and items.n_id_rows == own_rows + 1 + hash_buckets:
        return own_rows, hash_buckets
    return None, 0


def extend_item_data(old: ItemData, catalog: Catalog, own_rows: int | None, hash_buckets: int,
                     content: dict[str, np.ndarray] | None = None) -> ItemData:
    """Item data for a new catalog that keeps a trained model's rows meaningful (warm start).

    Known items keep their id row; new items get new own rows when every item
    had one, or a hashed shared row of the same buckets when the table was pruned.
    `own_rows`/`hash_buckets` must be the old table's layout (`id_layout`): other
    ones would hash new items onto rows trained for other items, or past the table.
    """
    full = own_rows is None
    if not full and (hash_buckets < 1 or own_rows + 1 + hash_buckets != old.n_id_rows):
        raise ConfigError(f"a warm start keeps the trained id table ({old.n_id_rows} rows); own rows {own_rows} and "
                          f"hash buckets {hash_buckets} do not describe it: leave --own-rows/--hash-buckets out (the "
                          "--init checkpoint's are used), or train without --init")
    fresh = build_item_data(catalog, np.zeros(len(catalog)), content=content, base=old)
    old_index = {item: i for i, item in enumerate(old.item_ids)}
    rows = np.zeros(len(catalog) + 1, np.int64)
    n_rows = old.n_id_rows
    for code, item in enumerate(catalog.item_ids):
        previous = old_index.get(item)
        if previous is not None:
            rows[code + 1] = old.id_rows[previous + 1]
        elif full:
            rows[code + 1] = n_rows
            n_rows += 1
        else:
            rows[code + 1] = own_rows + 1 + (code * 2654435761 % hash_buckets)
    fresh.id_rows, fresh.n_id_rows = rows, n_rows
    return fresh
