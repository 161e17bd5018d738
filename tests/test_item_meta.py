"""The bundle rows' metadata kept decoded between requests (runtime/item_meta.py): what it serves is
what a fresh read gives, every caller gets dicts of its own, an item updated on the device shows its
new metadata, and the caches stay within their bounds."""

from __future__ import annotations

import numpy as np

from edgerec.runtime import item_meta
from edgerec.runtime.catalog import ItemCatalog


def _fresh_read(cat: ItemCatalog, rows: list[int]) -> list[dict]:
    """The metadata of `rows` read from the columns, with no cache (another catalog of the same bundle)."""
    return ItemCatalog(cat.bundle).rows._read(list(rows), keep=False)


def test_kept_metadata_is_what_a_fresh_read_gives(rec):
    cat = rec.catalog
    rows = np.random.default_rng(3).integers(0, cat.base_count, 40).tolist()
    for _ in range(2):  # the second time from the cache
        got = cat.metas(rows)
        fresh = _fresh_read(cat, rows)
        assert got == [{**fresh[row], "tags": list(fresh[row]["tags"])} for row in rows]
        assert [cat.label(row) for row in rows] == [(m["item_id"], m["title"]) for m in got]
        assert [cat.tags(row) for row in rows] == [m["tags"] for m in got]
        assert [(m["item_id"], m["title"], "|".join(m["tags"])) for m in got] == [  # the columns themselves
            (cat.ids[row], cat.titles[row], "|".join(t for t in cat.tag_column[row].split("|") if t)) for row in rows]
        for name, (codes, vocab) in cat.categorical.items():
            assert [m[name] for m in got] == [vocab[codes[row]] if codes[row] >= 0 else "" for row in rows]


def test_every_caller_gets_its_own_dicts(rec):
    """The explain stage takes item_id and title out of each dict: the next request must still get them."""
    cat = rec.catalog
    first = cat.metas([5, 6])
    first[0].pop("item_id"), first[0].pop("title"), first[1]["tags"].append("changed")
    again = cat.metas([5, 6])
    assert again[0]["item_id"] == cat.item_id(5) and again[0]["title"] == cat.title(5)
    assert "changed" not in again[1]["tags"] and again[1]["tags"] == cat.tags(6)
    results = rec.recommend("newcomer", k=3)
    assert all(r.item_id and "item_id" not in r.meta for r in results)
    assert [r.title for r in rec.recommend("newcomer", k=3)] == [r.title for r in results]


def test_an_item_updated_on_the_device_shows_its_new_metadata(rec):
    cat = rec.catalog
    row = 4
    item = cat.item_id(row)
    rec.record("u", cat.item_id(1), "finish")
    before = cat.metas([row])[0]  # kept now
    assert cat.label(row) == (item, before["title"])
    vector = cat.vectors([row])[0].tolist()
    rec.add_items([{"item_id": item, "vector": vector, "title": "A new title", "tags": ["fresh"]}])
    new_row = cat.row(item)
    assert new_row != row and cat.metas([new_row])[0]["title"] == "A new title"
    assert cat.label(new_row) == (item, "A new title") and cat.tags(new_row) == ["fresh"]
    rec.update_items([{"item_id": item, "vector": vector, "title": "Newer still", "tags": ["fresher"]}])
    assert cat.metas([new_row])[0]["title"] == "Newer still" and cat.label(new_row)[1] == "Newer still"
    shown = {r.item_id: r for r in rec.recommend("u", k=cat.base_count)}
    assert shown[item].title == "Newer still" and shown[item].meta["tags"] == ["fresher"]


def test_the_caches_are_bounded_and_bulk_reads_are_not_kept(rec, monkeypatch):
    monkeypatch.setattr(item_meta, "META_CACHE_ROWS", 8)
    cat = rec.catalog
    kept = cat.rows
    for start in range(0, min(cat.base_count, 60), 3):
        rows = list(range(start, min(start + 3, cat.base_count)))
        assert cat.metas(rows) == [{**m, "tags": list(m["tags"])} for m in _fresh_read(cat, rows).values()]
        assert len(kept._metas) <= 8 and len(kept._labels) <= 8
    kept._metas.clear()
    everything = list(range(cat.base_count))
    assert len(cat.metas(everything)) == cat.base_count and not kept._metas  # a host tool's bulk read
