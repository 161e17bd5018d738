"""Vectors for items that arrive on the device with metadata only (cold-start items).

Items of a series or creator the catalog knows sit near that work (the
strongest signal in audio/video catalogs); the bundle's content encoder reads
the title, description and tags; both are blended when both exist. Without
either, related items of the same genre (and tags) decide.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edgerec.errors import ConfigError
from edgerec.runtime import checks
from edgerec.runtime.catalog import ItemCatalog
from edgerec.runtime.checks import shown
from edgerec.runtime.item_meta import ROW_KEYS
from edgerec.runtime.item_spec import NUMERIC_DTYPES, NUMERIC_RANGES
from edgerec.runtime.vocab import MODALITIES

RELATED_WEIGHT = 0.7  # share of the related-work vector when a content vector is blended in
RUNTIME_KEYS = ("vector_source",)  # what the runtime adds to an added item's metadata: outside the app's size limit


def checked_meta(item_id: str, meta: dict, catalog: ItemCatalog) -> dict:
    """An added item's metadata as the catalog serves it, or a ConfigError: the title text (the id when
    blank), tags a list of names, numbers in their column's range, categories text. add_items() checks
    what an app gives; the catalog checks again what it reads back from the history file, which another
    program may have edited. The size limit applies to the metadata as it is stored (the id as an untitled item's
    title, tags as a list), without the runtime's own RUNTIME_KEYS: an item accepted just under the limit took
    them on, was refused when read back at the next open and was gone."""
    checks.json_object(_apps(meta), f"item {item_id!r}: metadata", allow_none=False)
    meta = dict(meta)
    title = meta.get("title")  # blank is unknown, as in a data folder's items file: the id stands in
    meta["title"] = checks.text(item_id if title in (None, "") else title, f"item {item_id!r}: title", 1000)
    meta["tags"] = checks.names(meta.get("tags", []), f"item {item_id!r}: tags", allow_none=False)
    if meta.get("description") not in (None, ""):  # embedded and tagged with the title: a NUL or lone surrogate broke both
        meta["description"] = checks.text(meta["description"], f"item {item_id!r}: description", 60_000)
    for name in (set(meta) & set(catalog.numeric)) - ROW_KEYS:  # in the range a bundle's column may hold
        meta[name] = checks.number(meta[name], f"item {item_id!r}: {name}", *NUMERIC_RANGES.get(name, ()),
                                   allow_none=True)
        # an integer column (episode, release_ts) takes whole numbers only: episode 2.000001 was stored and
        # never followed episode 1 in the series reasons
        whole = np.dtype(NUMERIC_DTYPES.get(name, np.float32)).kind in "iu"
        if whole and meta[name] is not None and not meta[name].is_integer():
            raise ConfigError(f"item {item_id!r}: {name} must be a whole number (got {shown(meta[name])}); "
                              f"give a whole number such as {int(meta[name])} (2.0 is taken as 2)")
    for name in (set(meta) & set(catalog.categorical)) - ROW_KEYS:  # a column named tags is not the item's tags
        if meta[name] not in (None, ""):  # '' is "none", as in the bundle's columns
            checks.text(meta[name], f"item {item_id!r}: {name}", 1000)
    if meta.get("modality") not in (None, ""):  # as a data import stops on one: a typo hid the item from every modality filter
        if meta["modality"] not in MODALITIES:
            raise ConfigError(f"item {item_id!r}: unknown modality {shown(meta['modality'])}; use one of "
                              f"{', '.join(MODALITIES)}")
    checks.json_object(_apps(meta), f"item {item_id!r}: metadata as stored (an untitled item's id as its title)",
                       allow_none=False)
    return meta


def _apps(meta):
    """The app's part of an item's metadata: without RUNTIME_KEYS (anything but a dict as it is, to be refused)."""
    return {k: v for k, v in meta.items() if k not in RUNTIME_KEYS} if isinstance(meta, Mapping) else meta


def metadata_vector(catalog: ItemCatalog, content, meta: dict, use_content: bool = True,
                    use_related: bool = True) -> tuple[np.ndarray, str]:
    """(vector, where it came from) for an item described by `meta`; `content` may be None."""
    related, level = related_vector(catalog, meta) if use_related else (None, "")
    vector = None
    if use_content and content is not None:
        from edgerec.runtime.content import metadata_text

        text = metadata_text(meta)
        if content.reads_words(text):  # a title of spaces or emoji alone: the related items place it, if any
            vector = content.item_vectors(content.embed([text]))[0]
    if related is not None and level in ("series", "creator"):
        if vector is None:
            return related, f"related items ({level})"
        return RELATED_WEIGHT * _unit(related) + (1 - RELATED_WEIGHT) * vector, f"content encoder + related items ({level})"
    if vector is not None:
        return vector, "content encoder"
    if related is not None:
        return related, f"related items ({level})"
    raise ConfigError(f"item {shown(meta.get('item_id') or meta.get('title'))}: give a 'vector', or metadata the catalog knows "
                      "(a known creator, series or genre) so a vector can be derived")


def related_vector(catalog: ItemCatalog, meta: dict) -> tuple[np.ndarray | None, str]:
    """Mean vector of the most popular catalog items sharing the series, else creator, else genre (+ tags)."""
    base = np.arange(catalog.base_count)
    for column, level in (("series_id", "series"), ("creator", "creator"), ("genre", "genre")):
        value = meta.get(column)
        codes, vocab = catalog.categorical[column]
        if not value or value not in vocab:
            continue
        related = base[np.asarray(codes) == vocab.index(value)]
        if level == "genre" and len(related):
            tags = set(meta.get("tags", []))
            # every row of the genre counts (the first 5,000 did: a million-item genre was judged on its head);
            # the overlaps are counted only on rows sharing a tag, found by one pass over the tag column
            sharing = related[catalog.tag_column.rows_with(tags)[related]] if tags else related[:0]
            if len(sharing):
                overlap = np.fromiter((len(tags & set(t)) for t in catalog.tag_column.tags_many(sharing.tolist())),
                                      np.int64, len(sharing))
                related = sharing[overlap == overlap.max()]
        if len(related):
            popularity = catalog.numeric["popularity"][related]
            related = related[np.argsort(-popularity, kind="stable")[:200]]
            return catalog.vectors(related).mean(0), level
    return None, ""


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)
