"""Catalog updates on the device against an outside audit: an unknown episode, vectors that are not a flat
list of numbers, the genre placement over every row, queued items copied at the call, hostile JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import Recommender


def test_an_added_episode_of_unknown_number_is_never_the_next_one(rec):
    """`"episode": null` is allowed in add_items; the explanation read it with int() and failed the list."""
    cat = rec.catalog
    series = next(s for s in cat.column("series_id", np.arange(cat.base_count)) if s)
    rows = [r for r in range(cat.base_count) if cat.column("series_id", np.array([r]))[0] == series]
    for row in rows[:2]:
        rec.record("u1", cat.item_id(row), "finish")
    rec.add_items([{"item_id": "special", "series_id": series, "episode": None, "genre": "drama",
                    "vector": cat.vectors(np.array([rows[-1]]))[0].tolist()}])
    out = rec.recommend("u1", k=len(cat))
    assert "special" in [r.item_id for r in out]
    assert next(r for r in out if r.item_id == "special").reason.kind != "series"
    rec.record("u1", "special", "finish")  # and in the history, an episode of no number reads as none
    assert rec.recommend("u1", k=10) and rec.stats()["counters"].get("errors", 0) == 0


@pytest.mark.parametrize("vector", [
    [[0.5] * 4] * 4,  # nested: was flattened
    ["0.5"] * 16,  # strings: were parsed
    [True] * 16,  # booleans: were ones
    np.ones((4, 4), np.float32),
    "0.5",
])
def test_a_given_vector_must_be_a_flat_list_of_numbers(rec, vector):
    with pytest.raises(ConfigError, match="flat list of 16 numbers"):
        rec.add_items([{"item_id": "x", "genre": "drama", "vector": vector}])
    assert "x" not in rec.catalog.index


def test_a_given_vector_of_the_wrong_length_or_huge_values(rec):
    with pytest.raises(ConfigError, match="has 3 values, the bundle's space has 16"):
        rec.add_items([{"item_id": "x", "vector": [0.1, 0.2, 0.3]}])
    with pytest.raises(ConfigError, match="more than 16 values"):
        rec.add_items([{"item_id": "x", "vector": [0.1] * 10**6}])
    with pytest.raises(ConfigError, match="NaN or infinite"):
        rec.add_items([{"item_id": "x", "vector": [10**400] + [0.1] * 15}])
    rec.add_items([{"item_id": "ok", "vector": np.arange(1, 17, dtype=np.float16)},
                   {"item_id": "ok2", "vector": [1] * 8 + [np.float32(0.5)] * 8}])
    assert {"ok", "ok2"} <= set(rec.catalog.index.added)


def test_the_genre_placement_reads_every_row_of_the_genre(handmade_bundle, tmp_path):
    """Placed by genre and tags: the rows sharing most tags, found among all of the genre (only its first
    5,000 rows were read, so a tag of the later rows placed the item on the earlier ones)."""
    n = 6_000
    vectors = np.zeros((n, 4), np.float32)
    vectors[:5_000, 0], vectors[5_000:, 1] = 1, 1
    bundle = handmade_bundle(vectors, genre=["drama"] * n, tags=[["drama", "romance"]] * 5_000 + [["drama", "heist"]] * 1_000)
    with Recommender.open(bundle, history=tmp_path / "h.db") as rec:
        rec.add_items([{"item_id": "new", "genre": "drama", "tags": ["heist"]},
                       {"item_id": "new2", "genre": "drama", "tags": ["romance", "heist", "other"]},
                       {"item_id": "new3", "genre": "drama", "tags": ["unknown"]}])
        rows = [rec.catalog.index["new"], rec.catalog.index["new2"], rec.catalog.index["new3"]]
        placed = rec.catalog.vectors(np.array(rows))
    np.testing.assert_allclose(placed[0], [0, 1, 0, 0], atol=1e-6)
    # one tag shared with either, or none shared: the 200 most popular of the genre, ties to the lower rows
    np.testing.assert_allclose(placed[1:], [[1, 0, 0, 0], [1, 0, 0, 0]], atol=1e-6)


def test_queued_items_are_copied_when_the_call_is_made(rec):
    """An app that clears and refills its list once add_items returns adds what it passed, not the refill."""
    from edgerec.runtime.background import Background

    with Background(rec) as bg:
        gate = __import__("threading").Event()
        bg.submit(gate.wait, 10)  # the worker is busy
        batch = [{"item_id": "new-1", "vector": [0.25] * 16}]
        done = bg.add_items(batch)
        batch.clear()
        batch.append({"item_id": "new-2", "vector": [0.25] * 16})
        gate.set()
        done.result(10)
    assert "new-1" in rec.catalog.index.added and "new-2" not in rec.catalog.index.added


@pytest.mark.parametrize("text", ['[{"item_id": "x", "extra": ' + "[" * 5_000 + "]" * 5_000 + "}]",
                                  '[{"item_id": "x", "release_ts": ' + "9" * 5_000 + "}]"])
def test_add_items_json_too_deep_or_too_long_is_a_clear_error(tiny_bundle, tmp_path, text):
    from click.testing import CliRunner

    from edgerec.cli.main import cli

    (tmp_path / "items.json").write_text(text)
    result = CliRunner().invoke(cli, ["add-items", str(tiny_bundle), "--history", str(tmp_path / "h.db"),
                                      "--items", str(tmp_path / "items.json")])
    assert result.exit_code != 0 and "--items is not valid JSON" in result.output
    assert not isinstance(result.exception, (RecursionError, ValueError)) or isinstance(result.exception, SystemExit)
    json.dumps(result.output)


def test_a_batch_of_items_is_applied_at_once_at_add_and_at_reopen(tiny_bundle, tmp_path):
    """Each item copied the whole added list (20,000 items: 5.8 s to add, 4.9 s at every open); a batch now
    makes one new list and one version, in the batch's order, bundle ids taken over and retired."""
    items = [{"item_id": f"n{i}", "vector": [float(i % 7 + 1)] + [0.5] * 15} for i in range(300)]
    with Recommender.open(tiny_bundle, history=tmp_path / "h.db") as rec:
        cat = rec.catalog
        before, old_view, taken = cat.version, cat.snapshot(), cat.item_id(3)
        rec.add_items(items + [{"item_id": taken, "vector": [0.5] * 16}])
        assert cat.version == before + 1
        assert [cat.index[f"n{i}"] for i in range(300)] == list(range(cat.base_count, cat.base_count + 300))
        assert cat.index[taken] == cat.base_count + 300 and not cat.is_active(3)
        assert len(old_view) == cat.base_count  # a request's view taken before sees none of it
    with Recommender.open(tiny_bundle, history=tmp_path / "h.db") as rec:
        cat = rec.catalog
        assert [cat.item_id(cat.base_count + i) for i in range(301)] == [f"n{i}" for i in range(300)] + [taken]
        assert not cat.is_active(3) and cat.version == 1


def test_an_unknown_modality_is_refused_as_a_data_import_refuses_it(rec):
    """"podcast" for "podcast_episode" was stored: no modality filter could ever show the item."""
    with pytest.raises(ConfigError, match="item 'pod-1': unknown modality 'podcast'; use one of film, .*podcast_episode"):
        rec.add_items([{"item_id": "pod-1", "genre": "drama", "modality": "podcast"}])
    assert "pod-1" not in rec.catalog.index
    rec.add_items([{"item_id": "pod-2", "genre": "drama", "modality": "podcast_episode"}])
    assert "pod-2" in rec.catalog.index.added
