"""Audit L7, the catalog's metadata (device side, no tokenizer needed): the size limit of an added item's
metadata is the stored metadata's, in UTF-8 bytes, so an item add_items() takes is read back after a restart;
a bundle's extra columns named like an item's own keys do not replace its title, tags or description."""

from __future__ import annotations

import json
import shutil

import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import Recommender, checks
from edgerec.runtime.checks import MAX_JSON_BYTES
from edgerec.runtime.content import metadata_text


def _size(meta: dict) -> int:
    return len(json.dumps(meta, sort_keys=True, ensure_ascii=False).encode("utf-8"))


def _near_limit(margin: int) -> dict:
    """Metadata of MAX_JSON_BYTES - margin bytes as UTF-8 JSON, with a known genre (its vector: related items)."""
    meta = {"title": "Long notes", "genre": "jazz", "tags": [], "description": "A long story. " * 3_000, "notes": ""}
    meta["notes"] = "x" * (MAX_JSON_BYTES - margin - _size(meta))  # an app's own key (a description stops at 60,000)
    assert _size(meta) == MAX_JSON_BYTES - margin
    return meta


def _genre(rec) -> str:
    return rec.catalog.meta(0)["genre"]


def test_an_item_added_just_under_the_limit_is_still_there_after_a_restart(bundle_copy, tmp_path):
    """The runtime adds `vector_source` (and an untitled item's id as its title) to what it stores; the open
    checked the stored, larger metadata against the limit again and silently left the item out."""
    history = tmp_path / "history.db"
    rec = Recommender.open(bundle_copy, history, backend="onnx")
    meta = {**_near_limit(10), "genre": _genre(rec)}
    rec.add_items([{"item_id": "long-one", **meta}])
    vector = rec.catalog.vectors([rec.catalog.row("long-one")])[0]
    assert rec.catalog.meta(rec.catalog.row("long-one"))["vector_source"] == "related items (genre)"
    rec.close()
    again = Recommender.open(bundle_copy, history, backend="onnx")
    try:
        row = again.catalog.row("long-one")
        assert again.stats()["added_items"] == 1
        assert (again.catalog.vectors([row])[0] == vector).all()
        assert again.catalog.meta(row)["description"] == meta["description"]
    finally:
        again.close()


def test_metadata_that_fits_only_without_the_ids_title_is_refused_when_added(bundle_copy, tmp_path):
    """An untitled item is stored with its id as its title: metadata that fits as given but not as stored would
    be gone after a restart, so add_items refuses it (and stores nothing)."""
    rec = Recommender.open(bundle_copy, tmp_path / "history.db", backend="onnx")
    try:
        item_id = "u" * 200
        meta = {**_near_limit(60), "genre": _genre(rec), "title": ""}
        with pytest.raises(ConfigError, match=r"metadata as stored \(an untitled item's id as its title\) takes "
                                              r"[\d,]+ bytes as JSON; the limit is 65,536"):
            rec.add_items([{"item_id": item_id, **meta}])
        assert rec.stats()["added_items"] == 0
        rec.add_items([{"item_id": "short", **meta}])  # a short id fits
        assert rec.catalog.meta(rec.catalog.row("short"))["title"] == "short"
    finally:
        rec.close()


def test_the_metadata_limit_counts_utf8_bytes_not_ascii_escapes(bundle_copy):
    """A 35 KB Hindi description was measured as 67 KB (json.dumps escapes each character as 6 bytes)."""
    hindi = {"title": "जैज़ की रात", "description": "जैज़ " * 2700}  # 13,500 characters, 35 KB as UTF-8
    assert 30_000 < _size(hindi) < 40_000
    assert checks.json_object(hindi, "metadata") == hindi
    emoji = {"title": "🎷" * 15_000}  # 60 KB as UTF-8 (4 bytes a character), 180 KB escaped
    assert checks.json_object(emoji, "metadata") == emoji
    too_big = {"title": "🎷" * 17_000}  # 68 KB as UTF-8
    with pytest.raises(ConfigError, match="^metadata takes 68,013 bytes as JSON; the limit is 65,536$"):
        checks.json_object(too_big, "metadata")
    assert checks.json_object({"a": "\ud800"}, "context") == {"a": "\ud800"}  # a lone surrogate: as before
    rec = Recommender.open(bundle_copy, None, backend="onnx")
    rec.add_items([{"item_id": "hindi", **hindi, "genre": _genre(rec)}])
    assert rec.catalog.meta(rec.catalog.row("hindi"))["description"] == hindi["description"]


def _with_columns(bundle, tmp_path, **columns):
    """A copy of the bundle whose manifest adds constant categorical columns (format 6)."""
    out = shutil.copytree(bundle, tmp_path / "with-columns")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for name, value in columns.items():
        manifest["items"]["categorical"][name] = {"constant": 0, "vocab": [value]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return out


@pytest.mark.parametrize("name", ["description", "tags", "title", "item_id"])
def test_a_bundle_column_named_like_an_items_own_key_does_not_replace_it(bundle_copy, tmp_path, name):
    """A categorical column `description` was read into tag(item_id=...)'s text, and one named `tags` replaced
    the row's tags by its value's characters ("rock": r, o, c, k) (spec §7b: a bundle item's text is its title
    and tags)."""
    plain = Recommender.open(bundle_copy, None, backend="onnx")
    rec = Recommender.open(_with_columns(bundle_copy, tmp_path, **{name: "rock"}), None, backend="onnx")
    first = plain.catalog.item_id(0)
    expected, got = plain.catalog.meta(plain.catalog.row(first)), rec.catalog.meta(rec.catalog.row(first))
    assert got == expected and metadata_text(got) == metadata_text(expected)
    assert "description" not in got
    assert [m["item_id"] for m in rec.catalog.metas([0, 1])] == [plain.catalog.item_id(0), plain.catalog.item_id(1)]


def test_an_item_with_tags_can_be_added_to_a_bundle_with_a_tags_column(bundle_copy, tmp_path):
    """The column named `tags` is not the item's tags: a list of tags is not checked as its text value."""
    rec = Recommender.open(_with_columns(bundle_copy, tmp_path, tags="rock"), None, backend="onnx")
    rec.add_items([{"item_id": "new", "title": "New", "tags": ["jazz", "night"], "genre": _genre(rec)}])
    assert rec.catalog.meta(rec.catalog.row("new"))["tags"] == ["jazz", "night"]
