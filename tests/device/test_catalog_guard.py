"""Guards of the on-device catalog (runtime/catalog.py) on the golden bundle: ids and rows of bundle items and
of items added on the device, their vectors and metadata in the order asked for, the feature codes, the
cached values per catalog version, snapshots, and what add, replace and remove do with each kind of id.
Expectations come from the bundle's arrays read with numpy, not from the catalog."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from bundle_edit import replace_array, rewrite

from edgerec.errors import ConfigError, UnknownIdError
from edgerec.runtime import Bundle
from edgerec.runtime.bundle import BundleWriter, ModelEntry, TensorSpec
from edgerec.runtime.catalog import AddedItem, ItemCatalog
from edgerec.runtime.catalog_columns import one_of
from edgerec.runtime.item_table import StoredTable
from edgerec.runtime.tag_column import TagSpec
from edgerec.runtime.vocab import MODALITIES

BASE = 56  # items in the golden bundle


def column(root, name) -> np.ndarray:
    return np.load(Path(root) / "items" / f"{name}.npy")


def vocab(root, name) -> list[str]:
    return json.loads((Path(root) / "manifest.json").read_text())["items"]["categorical"][name]["vocab"]


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(8).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def cat(golden_bundle) -> ItemCatalog:
    return ItemCatalog(Bundle.open(golden_bundle))


def added(cat, *items) -> list[int]:
    """Add items (id, meta) at unit vectors; their rows."""
    return [cat.replace(AddedItem(item_id, unit(k), dict(meta))) for k, (item_id, meta) in enumerate(items)]


# ---------------------------------------------------------------- ids and rows


def test_rows_ids_and_titles_of_bundle_and_added_items(cat):
    assert len(cat) == BASE and cat.row("i03") == 3 and cat.item_id(3) == "i03"
    assert added(cat, ("new", {"title": "New one"}), ("plain", {}), ("numbered", {"title": 7})) == [BASE, BASE + 1,
                                                                                                    BASE + 2]
    assert len(cat) == BASE + 3 and cat.row("new") == BASE and cat.item_id(BASE + 1) == "plain"
    assert [cat.title(r) for r in (0, BASE, BASE + 1, BASE + 2)] == ["Final Frontier", "New one", "", "7"]
    assert cat.label(BASE) == ("new", "New one") and cat.label(5) == ("i05", "Faded Canyon, Episode 1")


@pytest.mark.parametrize("item_id", ["nope", 5, None, ["i00"], b"i00"])
def test_an_unknown_or_non_text_id_is_an_unknown_id_error(cat, item_id):
    with pytest.raises(UnknownIdError) as caught:
        cat.row(item_id)
    assert str(caught.value) == (f"unknown item {item_id!r}: it is not in the bundle's catalog (or was removed); "
                                 "add it with add_items() first")


def test_the_catalog_reuses_the_id_index_the_checks_built_at_open(golden_bundle):
    bundle = Bundle.open(golden_bundle)
    cat = ItemCatalog(bundle)
    assert cat.bundle is bundle and cat.index.base is bundle.id_index and cat.ids is bundle.id_index.column
    del bundle.id_index  # a bundle opened without that index: the catalog reads the ids column and builds its own
    own = ItemCatalog(bundle)
    assert own.row("i07") == 7 and own.item_id(9) == "i09" and own.index.get_many(["i03", "x"]) == [3, None]
    assert own.index.base is not cat.index.base and own.ids[BASE - 1] == "i55"


def test_which_rows_are_active(cat):
    added(cat, ("a", {}), ("b", {}))
    assert all(cat.is_active(r) for r in (0, BASE - 1, BASE, BASE + 1))
    assert not cat.is_active(BASE + 2) and not cat.is_active(BASE + 50)
    cat.remove("i04")
    cat.remove("b")
    assert [cat.is_active(r) for r in (3, 4, 5, BASE, BASE + 1)] == [True, False, True, True, False]
    for gone in ("i04", "b"):
        with pytest.raises(UnknownIdError, match="or was removed"):
            cat.row(gone)


def test_encoder_inputs_are_row_plus_one_for_bundle_rows_only(cat):
    added(cat, ("a", {}), ("b", {}))
    out = cat.encoder_inputs([3, BASE, 0, BASE - 1, BASE + 1, 7])
    assert out.dtype == np.int64 and out.tolist() == [4, 1, BASE, 8]
    assert cat.encoder_inputs([]).tolist() == [] and cat.encoder_inputs([[2, 5]]).tolist() == [3, 6]
    assert cat.encoder_inputs([]).dtype == np.int64


def test_encoder_inputs_read_the_bundles_map_when_it_has_one(bundle_copy):
    np.save(bundle_copy / "items" / "encoder_inputs.npy", (np.arange(BASE) * 3 + 10).astype(np.int32))

    def with_map(data):
        data["items"]["encoder_inputs"] = "items/encoder_inputs.npy"
        data["files"]["items/encoder_inputs.npy"] = {}

    rewrite(bundle_copy, with_map)
    cat = ItemCatalog(Bundle.open(bundle_copy))
    added(cat, ("a", {}))
    out = cat.encoder_inputs([2, BASE, 0, BASE - 1])
    assert out.dtype == np.int64 and out.tolist() == [16, 10, (BASE - 1) * 3 + 10]
    assert cat.encoder_inputs([]).dtype == np.int64 and cat.encoder_inputs([]).tolist() == []


# ---------------------------------------------------------------- vectors


def dequantized(root, rows) -> np.ndarray:
    return column(root, "embeddings")[rows].astype(np.float32) * column(root, "scales").astype(np.float32)


def test_vectors_in_the_order_asked_for(cat, golden_bundle):
    plain = cat.vectors(np.array([5, 0, 9]))
    assert plain.dtype == np.float32 and np.allclose(plain, dequantized(golden_bundle, [5, 0, 9]), atol=1e-6)
    assert cat.vectors(np.array([], np.int64)).shape == (0, 8)
    rows = added(cat, ("a", {}), ("b", {}), ("c", {}))
    cat.remove("b")
    mixed = cat.vectors(np.array([BASE + 2, 5, BASE, BASE + 1, 0]))
    assert mixed.dtype == np.float32 and mixed.shape == (5, 8)
    assert np.array_equal(mixed[0], unit(2)) and np.array_equal(mixed[2], unit(0))
    assert not mixed[3].any()  # a removed added item reads as zeros, not NaN
    assert np.allclose(mixed[[1, 4]], dequantized(golden_bundle, [5, 0]), atol=1e-6)
    only_added = cat.vectors(rows[::-1])
    assert np.array_equal(only_added, np.stack([unit(2), np.zeros(8, np.float32), unit(0)]))
    assert np.allclose(cat.vectors([BASE - 1, 3]), dequantized(golden_bundle, [BASE - 1, 3]), atol=1e-6)
    assert cat.vectors([]).shape == (0, 8) and cat.numeric_column("duration", []).tolist() == []  # a plain empty list
    assert cat.vectors(np.array([], np.int64)).shape == (0, 8)


def test_the_added_matrix_follows_every_change(cat):
    empty = cat.added_matrix()
    assert empty.shape == (0, 8) and empty.dtype == np.float32
    added(cat, ("a", {}))
    assert np.array_equal(cat.added_matrix(), unit(0)[None])
    added(cat, ("a", {}), ("b", {}))  # "a" again: updated in place, at the same vector
    assert np.array_equal(cat.added_matrix(), np.stack([unit(0), unit(1)]))
    cat.replace(AddedItem("a", unit(9), {}))
    assert np.array_equal(cat.added_matrix(), np.stack([unit(9), unit(1)]))
    cat.remove("a")
    assert np.array_equal(cat.added_matrix(), np.stack([np.zeros(8, np.float32), unit(1)]))
    assert cat.added_matrix().dtype == np.float32  # a removed item's zeros do not widen the matrix


def test_inactive_rows_list_removed_bundle_and_added_rows(cat):
    first = cat.inactive_rows()
    assert first.dtype == np.int64 and first.tolist() == []
    added(cat, ("a", {}), ("b", {}), ("c", {}))
    cat.remove("i07")
    cat.remove("i02")
    cat.remove("b")
    assert cat.inactive_rows().tolist() == [2, 7, BASE + 1] and cat.inactive_rows().dtype == np.int64
    cat.remove("c")
    assert cat.inactive_rows().tolist() == [2, 7, BASE + 1, BASE + 2]


# ---------------------------------------------------------------- metadata


def test_metas_in_the_order_asked_for_as_new_dicts(cat):
    added(cat, ("a", {"title": "A", "genre": "jazz", "tags": ["x"]}), ("b", {"creator": "Me"}))
    out = cat.metas([BASE + 1, 0, BASE, 13])
    assert [m["item_id"] for m in out] == ["b", "i00", "a", "i13"]
    assert out[0] == {"item_id": "b", "creator": "Me"} and out[2] == {"item_id": "a", "title": "A", "genre": "jazz",
                                                                      "tags": ["x"]}
    assert out[1]["title"] == "Final Frontier" and out[3]["series_id"] == "s01" and out[3]["episode"] == 1
    out[0]["creator"] = "changed"
    assert cat.meta(BASE + 1) == {"item_id": "b", "creator": "Me"} and cat.meta(0) == out[1]
    assert cat.metas(np.array([BASE])) == [out[2]] and cat.metas([]) == []


def test_tags_and_their_counts_over_bundle_and_added_rows(cat):
    bundle_only = cat.tag_counts([0, 1, 2])
    assert bundle_only == Counter(cat.tags(0) + cat.tags(1) + cat.tags(2)) and bundle_only["thriller"] == 3
    assert cat.tags(0) == ["thriller", "tense", "amnesia", "hackers"]
    assert cat.tag_counts([0, BASE - 1]) == Counter(cat.tags(0) + cat.tags(BASE - 1))
    added(cat, ("a", {"tags": ["thriller", "new tag"]}), ("b", {}))
    assert cat.tags(BASE) == ["thriller", "new tag"] and cat.tags(BASE + 1) == []
    assert cat.tag_counts([0, 1, 2]) == bundle_only
    assert cat.tag_counts([BASE, 0, BASE + 1]) == Counter(cat.tags(0)) + Counter({"thriller": 1, "new tag": 1})
    assert cat.tag_counts([BASE]) == Counter({"thriller": 1, "new tag": 1})


def test_a_categorical_column_as_strings(cat, golden_bundle):
    series = vocab(golden_bundle, "series_id") + [""]
    codes = column(golden_bundle, "series_id")
    rows = np.array([0, 5, 13, 40, 3])
    assert cat.column("series_id", rows).tolist() == [series[c] for c in codes[rows]]
    assert "" in cat.column("series_id", rows).tolist()  # code -1: none
    assert cat.column("series_id", rows).dtype == object  # as when added rows are among them
    added(cat, ("a", {"series_id": "s99"}), ("b", {}), ("c", {"series_id": 4}))
    out = cat.column("series_id", np.array([BASE, 13, BASE + 1, 0, BASE + 2]))
    assert out.dtype == object and out.tolist() == ["s99", "s01", "", "", "4"]
    assert cat.column("genre", [BASE + 1, BASE]).tolist() == ["", ""]


@pytest.mark.parametrize("values", [["jazz"], ["jazz", "rock"], ["jazz", "rock", "latin", "travel", "gaming"],
                                    ["jazz", "rock", "latin", "travel", "gaming", "cooking", "nope"], ["nope"], []])
def test_matches_compare_a_column_with_a_set_of_values(cat, golden_bundle, values):
    genre = np.array(vocab(golden_bundle, "genre") + [""])[column(golden_bundle, "genre")]
    expected = np.isin(genre, values)
    assert cat.matches("genre", None, values).tolist() == expected.tolist()
    assert cat.matches("genre", None, values).dtype == bool
    rows = np.array([17, 0, 30, 18, 55])
    assert cat.matches("genre", rows, set(values)).tolist() == expected[rows].tolist()
    added(cat, ("a", {"genre": "jazz"}), ("b", {}), ("c", {"genre": "nope"}))
    every = cat.matches("genre", None, values)
    assert every.dtype == bool and every.tolist() == expected.tolist() + ["jazz" in values, False, "nope" in values]
    mixed = cat.matches("genre", np.array([BASE + 2, 17, BASE, BASE + 1, 0]), values)
    assert mixed.tolist() == ["nope" in values, expected[17], "jazz" in values, False, expected[0]]
    assert mixed.dtype == bool


def test_one_of_with_few_and_many_wanted_codes():
    values = np.array([0, 3, 5, 7, 9, 3, -1])
    for wanted in ([], [3], [3, 9], [0, 3, 5, 7], [0, 3, 5, 7, 9], [1, 2, 4, 6, 8, -1]):
        assert one_of(values, wanted).tolist() == np.isin(values, wanted).tolist()


def test_numeric_columns_of_bundle_and_added_items(cat, golden_bundle):
    duration = column(golden_bundle, "duration").astype(np.float64)
    out = cat.numeric_column("duration", np.array([4, 0, 9]))
    assert out.dtype == np.float64 and out.tolist() == duration[[4, 0, 9]].tolist()
    added(cat, ("a", {"duration": 125.5}), ("b", {}), ("c", {"duration": None}))
    out = cat.numeric_column("duration", np.array([BASE, 4, BASE + 1, BASE + 2, 0]))
    assert out.dtype == np.float64 and out.tolist() == [125.5, duration[4], 0.0, 0.0, duration[0]]


def test_hubness_of_added_items_is_the_bundles_median(cat, golden_bundle):
    hub = column(golden_bundle, "hubness").astype(np.float64)
    added(cat, ("a", {"hubness": 9.0}), ("b", {}))
    out = cat.hubness(np.array([BASE + 1, 3, BASE, 0]))
    assert out.dtype == np.float64
    assert out.tolist() == pytest.approx([np.median(hub), hub[3], np.median(hub), hub[0]])


# ---------------------------------------------------------------- feature table


def test_the_feature_table_of_the_bundles_rows(cat, golden_bundle):
    table = cat.feature_table()
    rows = np.arange(BASE)
    modality = np.array(vocab(golden_bundle, "modality"))[column(golden_bundle, "modality")]
    assert table.modality[rows].tolist() == [MODALITIES.index(m) for m in modality]
    for name, field in (("language", "language"), ("creator", "creator"), ("series_id", "series")):
        assert getattr(table, field)[rows].tolist() == column(golden_bundle, name).tolist()  # -1 stays -1
    assert table.duration[rows].dtype == np.float32
    assert table.duration[rows].tolist() == column(golden_bundle, "duration").astype(np.float32).tolist()
    assert table.release_ts[rows].dtype == np.int64
    assert table.release_ts[rows].tolist() == column(golden_bundle, "release_ts").tolist()
    assert table.episode[rows].tolist() == column(golden_bundle, "episode").tolist()
    for name in ("modality", "language", "creator", "series", "episode", "release_ts"):
        assert getattr(table, name)[rows].dtype == np.int64 and len(getattr(table, name)) == BASE, name
    assert table.popularity[rows].dtype == np.float32
    popularity = column(golden_bundle, "popularity")
    assert table.popularity[rows].tolist() == popularity.astype(np.float32).tolist()
    assert table.popularity.max() == popularity.max() and len(table.popularity) == BASE
    assert cat.feature_table() is table  # built once per catalog version


def test_the_feature_table_of_added_items(cat, golden_bundle):
    popularity = column(golden_bundle, "popularity")
    typical = float(np.float32(np.median(popularity.astype(np.float64))))
    added(cat, ("a", {"popularity": 50, "language": "hi", "creator": "Leo Park", "modality": "podcast_episode",
                      "duration": 30, "release_ts": 1_700_000_000, "episode": 4, "series_id": "s02"}),
          ("b", {"popularity": 0, "language": "fr", "creator": "", "modality": "opera"}),
          ("c", {"language": "de", "creator": "Someone"}),
          ("d", {"language": "fr", "series_id": "s77"}))
    table = cat.feature_table()
    rows = np.array([BASE, BASE + 1, BASE + 2, BASE + 3])
    assert len(table.popularity) == BASE + 4
    assert table.popularity[rows].tolist() == [50.0, typical, typical, typical]  # 0 or missing: a typical item
    assert table.popularity.max() == 50.0
    assert table.modality[rows].tolist() == [MODALITIES.index("podcast_episode"), -1, -1, -1]
    assert table.duration[rows].tolist() == [30.0, 0.0, 0.0, 0.0]
    assert table.release_ts[rows].tolist() == [1_700_000_000, 0, 0, 0] and table.episode[rows].tolist() == [4, 0, 0, 0]
    language = table.language[rows].tolist()
    assert language[0] == vocab(golden_bundle, "language").index("hi")
    assert language[1] == language[3] and len(set(language)) == 3
    assert min(language[1:]) >= len(vocab(golden_bundle, "language"))  # values only added items have: new codes
    creator = table.creator[rows].tolist()
    assert creator[0] == vocab(golden_bundle, "creator").index("Leo Park") and creator[1:3] == [-1, creator[2]]
    assert creator[2] >= len(vocab(golden_bundle, "creator")) and creator[3] == -1
    series = table.series[rows].tolist()
    assert series[0] == 2 and series[1] == series[2] == -1 and series[3] >= 3
    mixed = np.array([BASE, 0])
    for name, dtype in (("duration", np.float32), ("popularity", np.float32), ("release_ts", np.int64),
                        ("episode", np.int64), ("modality", np.int64), ("language", np.int64), ("series", np.int64)):
        assert getattr(table, name)[mixed].dtype == dtype, name  # bundle and added rows in one read: one dtype
    mixed = table.language[np.array([BASE + 1, 0, 17])].tolist()
    assert mixed == [language[1], *column(golden_bundle, "language")[[0, 17]].tolist()]
    assert cat.feature_table() is table
    cat.remove("a")
    assert cat.feature_table() is not table  # a new catalog version


def test_a_catalog_without_popular_added_items_keeps_the_bundles_maximum(cat, golden_bundle):
    added(cat, ("a", {"popularity": 5}))
    assert cat.feature_table().popularity.max() == column(golden_bundle, "popularity").max()


def test_without_popularity_in_the_bundle_an_added_item_of_unknown_popularity_reads_0(bundle_copy):
    replace_array(bundle_copy, "items/popularity.npy", np.zeros(BASE, np.int8))
    cat = ItemCatalog(Bundle.open(bundle_copy))
    added(cat, ("a", {}), ("b", {"popularity": 0}))
    table = cat.feature_table()
    assert table.popularity[[BASE, BASE + 1, 0]].tolist() == [0.0, 0.0, 0.0] and table.popularity.max() == 0.0


def test_the_hubness_of_a_bundle_without_the_column_is_refused_with_what_to_do(bundle_copy):
    (bundle_copy / "items" / "hubness.npy").unlink()
    rewrite(bundle_copy, lambda d: (d["items"]["numeric"].pop("hubness"), d["files"].pop("items/hubness.npy")))
    cat = ItemCatalog(Bundle.open(bundle_copy))
    with pytest.raises(ConfigError) as caught:
        cat.hubness(np.array([0]))
    assert str(caught.value) == ("this bundle has no hubness column (exported before it existed, or with "
                                 "ExportConfig(hubness=False)): re-export it, or leave Policy.hub_penalty at 0")


def test_codes_of_a_given_value_list(cat, golden_bundle):
    genre = np.array(vocab(golden_bundle, "genre"))[column(golden_bundle, "genre")]
    added(cat, ("a", {"genre": "jazz"}), ("b", {"genre": "opera"}))
    codes = cat.code_column("genre", ["rock", "jazz"])
    assert len(codes) == BASE + 2 and len(cat.code_column("genre")) == BASE + 2
    wanted = {"rock": 0, "jazz": 1}
    assert codes[np.arange(BASE)].tolist() == [wanted.get(g, -1) for g in genre]  # other values: -1
    assert codes[[BASE, BASE + 1, 0]].tolist() == [1, -1, wanted.get(genre[0], -1)]


def test_fixed_codes_follow_the_given_order_not_the_bundles_vocabulary(bundle_copy):
    rewrite(bundle_copy, lambda d: d["items"]["categorical"]["modality"].update(vocab=list(MODALITIES)[::-1]))
    cat = ItemCatalog(Bundle.open(bundle_copy))
    codes = column(bundle_copy, "modality")
    assert cat.feature_table().modality[np.arange(BASE)].tolist() == [len(MODALITIES) - 1 - c for c in codes]
    added(cat, ("a", {"modality": "film"}))
    assert cat.code_column("modality", list(MODALITIES))[[BASE, 0]].tolist() == [0, len(MODALITIES) - 1 - codes[0]]
    assert cat.code_column("modality")[[BASE, 0]].tolist() == [len(MODALITIES) - 1, codes[0]]


def empty_bundle(root, golden) -> Path:
    """A bundle of 0 items (the schema allows it): the golden user encoder, every item column empty."""
    writer = BundleWriter(root, "empty")
    shutil.copy(golden / "user_encoder.onnx", writer.file_path("user_encoder.onnx"))
    writer.add_model(ModelEntry("user_encoder", "onnx", "user_encoder.onnx", [TensorSpec("ids", "int64", ["batch", "history"])],
                                [TensorSpec("user_vector", "float32", ["batch", 8])]))
    categorical = {name: {"codes": writer.add_array(f"items/{name}.npy", np.zeros(0, np.int8)), "vocab": []}
                   for name in ("modality", "language", "genre", "creator", "provider", "series_id")}
    numeric = {name: writer.add_array(f"items/{name}.npy", np.zeros(0, dtype)) for name, dtype in (
        ("duration", np.float32), ("release_ts", np.int64), ("episode", np.int32), ("popularity", np.float32),
        ("hubness", np.float16))}
    items = {"count": 0, "embeddings": StoredTable.quantize(np.zeros((0, 8), np.float32), "int8").manifest_entry(writer),
             "strings": {name: writer.add_strings(f"items/{name}", []) for name in ("ids", "titles")},
             "categorical": categorical, "numeric": numeric, "tags": TagSpec.write(writer, []).to_manifest()}
    writer.finish(dim=8, items=items, defaults={"k": 10, "history_length": 10, "diversity": 0.0, "short_list": 100},
                  metrics={}, budgets={}, reference={}, data_version={})
    return Path(root)


def test_a_bundle_of_no_items_gives_added_items_0_for_what_the_bundle_would_tell(tmp_path, golden_bundle):
    cat = ItemCatalog(Bundle.open(empty_bundle(tmp_path / "empty", golden_bundle)))
    assert len(cat) == 0 and cat.inactive_rows().tolist() == [] and cat.matches("genre", None, ["jazz"]).tolist() == []
    added(cat, ("a", {}), ("b", {"popularity": 0}))
    table = cat.feature_table()  # no median and no maximum to read: unknown popularity is 0, the scale's top 0
    assert table.popularity[[0, 1]].tolist() == [0.0, 0.0] and table.popularity.max() == 0.0
    assert cat.hubness(np.array([1, 0])).tolist() == [0.0, 0.0]
    assert cat.vectors([1, 0]).shape == (2, 8) and cat.encoder_inputs([0, 1]).tolist() == []


# ---------------------------------------------------------------- updates and snapshots


def test_add_refuses_a_bundle_id_and_replace_takes_it_over(cat, golden_bundle):
    with pytest.raises(UnknownIdError, match=r"^item 'i05' is in the bundle already; use update_items\(\)"):
        cat.add(AddedItem("i05", unit(0), {}))
    assert len(cat) == BASE and cat.is_active(5)
    assert cat.add(AddedItem("new", unit(1), {})) == BASE and cat.add(AddedItem("new", unit(2), {"title": "t"})) == BASE
    assert len(cat) == BASE + 1 and cat.title(BASE) == "t"
    version = cat.version
    assert cat.replace(AddedItem("i05", unit(3), {"title": "Fresh"})) == BASE + 1
    assert cat.version > version and not cat.is_active(5) and cat.row("i05") == BASE + 1
    assert cat.index.bundle_row("i05") == 5 and cat.inactive_rows().tolist() == [5]
    assert cat.replace(AddedItem("i05", unit(4), {})) == BASE + 1 and len(cat) == BASE + 2
    assert cat.add(AddedItem("i05", unit(5), {})) == BASE + 1  # an added item of that id now: an update
    assert np.array_equal(cat.vectors([BASE + 1])[0], unit(5)) and cat.inactive_rows().tolist() == [5]


def test_remove_and_add_again(cat):
    added(cat, ("a", {"title": "A"}))
    version = cat.version
    cat.remove("a")
    assert cat.version > version and len(cat) == BASE + 1
    assert cat.meta(BASE) == {"item_id": "a", "title": "A"} and cat.added[0].vector is None  # its metadata stays
    assert cat.replace(AddedItem("a", unit(7), {"title": "B"})) == BASE and cat.row("a") == BASE
    assert cat.inactive_rows().tolist() == []
    version = cat.version
    cat.remove("i09")
    assert cat.version > version and not cat.is_active(9)
    with pytest.raises(UnknownIdError):
        cat.remove("i09")


def test_a_snapshot_keeps_the_catalog_as_it_was(cat):
    added(cat, ("a", {}))
    snap = cat.snapshot()
    assert snap is not cat and snap.index.base is cat.index.base  # the bundle's index is shared, not rebuilt
    matrix = snap.added_matrix()
    added(cat, ("b", {}))
    cat.remove("i01")
    cat.remove("a")
    assert len(snap) == BASE + 1 and snap.is_active(1) and snap.is_active(BASE) and not snap.is_active(BASE + 1)
    assert snap.inactive_rows().tolist() == [] and cat.inactive_rows().tolist() == [1, BASE]
    assert np.array_equal(snap.added_matrix(), matrix) and cat.added_matrix().shape == (2, 8)
    assert np.array_equal(snap.added_matrix(), unit(0)[None])  # after the live catalog rebuilt its own
    with pytest.raises(UnknownIdError):
        snap.row("b")
    assert len(cat.snapshot()) == BASE + 2


def test_a_snapshot_finds_ids_as_they_were(cat):
    """Ids added or taken over after a snapshot resolve there as before (the id index was shared: an
    in-flight request read a replaced bundle id as a row past its own end, and lost it)."""
    added(cat, ("a", {}))
    snap = cat.snapshot()
    cat.replace(AddedItem("i05", unit(3), {}))
    added(cat, ("later", {}), ("a", {"title": "again"}))
    assert snap.row("i05") == 5 and snap.index.get("i05") == 5 and snap.index["i05"] == 5
    assert snap.index.get_many(["i05", "later", "a", "i06"]) == [5, None, BASE, 6]
    assert "later" not in snap.index and snap.index.get("later", -1) == -1
    with pytest.raises(KeyError):
        snap.index["later"]
    assert cat.row("i05") == BASE + 1 and cat.index.get_many(["i05", "later"]) == [BASE + 1, BASE + 2]
    assert snap.snapshot().index.get("i05") == 5 and snap.index.nbytes == cat.index.nbytes > 0
    # an id added before the snapshot and replaced after it keeps its row, and the snapshot its old metadata
    assert snap.row("a") == cat.row("a") == BASE and (snap.title(BASE), cat.title(BASE)) == ("", "again")


@pytest.mark.parametrize("name", ["creator", "genre", "series_id", "provider"])
def test_a_none_value_of_an_added_item_reads_as_none_everywhere(cat, name):
    """None in an added item's metadata is "none", as '' is (add_items keeps it): not the text 'None'."""
    rows = np.array(added(cat, ("a", {name: None}), ("b", {name: ""}), ("c", {})))
    assert cat.column(name, rows).tolist() == ["", "", ""]
    assert not cat.matches(name, rows, ["None"]).any() and not cat.matches(name, None, ["None"]).any()
    assert cat.code_column(name)[rows].tolist() == [-1, -1, -1]


# ---------------------------------------------------------------- rows at the edges (note 32)


ONE_ROW = ["meta", "title", "item_id", "label", "tags"]


@pytest.mark.parametrize("method", ONE_ROW + ["metas"])
@pytest.mark.parametrize("row", [-1, -2, -BASE, -1000, BASE + 2, BASE + 3, 10**6, np.int64(-1), np.int32(BASE + 2)])
def test_a_number_that_is_no_row_is_refused_by_the_methods_of_one_row(cat, method, row):
    """-1 was an IndexError from the tag or id column (an EdgerecError nowhere), a row past the end
    an IndexError of the added list ('list index out of range')."""
    added(cat, ("a", {}), ("b", {}))
    call = (lambda: cat.metas([3, row, BASE])) if method == "metas" else (lambda: getattr(cat, method)(row))
    with pytest.raises(ConfigError) as caught:
        call()
    assert str(caught.value) == (f"row {int(row)} is not one of this catalog's {BASE + 2} rows: "
                                 "take rows from catalog.row(item_id)")


def test_a_catalog_of_no_added_item_refuses_its_length_as_a_row(cat):
    for method in ONE_ROW:
        with pytest.raises(ConfigError, match=f"^row {BASE} is not one of this catalog's {BASE} rows: "):
            getattr(cat, method)(BASE)
    assert cat.item_id(BASE - 1) == "i55" and cat.item_id(0) == "i00" and cat.metas([]) == []


def test_a_snapshot_refuses_rows_added_after_it(cat):
    added(cat, ("a", {"title": "A"}))
    snap = cat.snapshot()
    added(cat, ("later", {"title": "L"}))
    assert cat.title(BASE + 1) == "L" and snap.title(BASE) == "A"
    with pytest.raises(ConfigError, match=f"^row {BASE + 1} is not one of this catalog's {BASE + 1} rows: "):
        snap.item_id(BASE + 1)


@pytest.mark.parametrize("kind", [np.int64, np.int32, np.uint32, np.uint64, np.intp])
def test_numpy_integer_rows_read_as_python_ones(cat, kind):
    added(cat, ("a", {"title": "A", "tags": ["t"], "genre": "g"}))
    for row in (0, 7, BASE - 1, BASE):
        assert cat.meta(kind(row)) == cat.meta(row) and cat.metas([kind(row)]) == [cat.meta(row)]
        assert (cat.item_id(kind(row)), cat.title(kind(row))) == cat.label(kind(row)) == cat.label(row)
        assert cat.tags(kind(row)) == cat.tags(row) and cat.is_active(kind(row))
    rows = np.array([BASE, 3], kind)
    assert cat.column("genre", rows).tolist() == ["g", cat.column("genre", [3])[0]]
    assert np.array_equal(cat.vectors(rows), cat.vectors([BASE, 3]))


def test_a_number_that_is_no_row_is_not_active(cat):
    """is_active(-1) was True (the last bundle item's flag) and is_active(-1000) an IndexError."""
    added(cat, ("a", {}))
    assert [cat.is_active(r) for r in (-1, -BASE, -BASE - 1, -1000, np.int64(-1), BASE + 1, 10**9)] == [False] * 7
    assert cat.is_active(BASE - 1) and cat.is_active(BASE) and cat.is_active(0)


def test_removed_items_keep_their_metadata_and_vectors(cat, golden_bundle):
    """A removed row is still a row: remove_items stores an added item's metadata by it, and a history
    keeps its rows (their vectors read as zeros for a removed added item, as in added_matrix)."""
    rows = added(cat, ("a", {"title": "A", "tags": ["t"]}))
    vector = cat.vectors([2])
    cat.remove("i02")
    cat.remove("a")
    assert [cat.is_active(r) for r in (2, rows[0])] == [False, False]
    assert cat.label(2) == ("i02", cat.title(2)) and cat.meta(2)["item_id"] == "i02"
    assert cat.meta(BASE) == {"item_id": "a", "title": "A", "tags": ["t"]} and cat.tags(BASE) == ["t"]
    assert cat.label(BASE) == ("a", "A") and cat.metas([BASE, 2])[0]["title"] == "A"
    assert np.array_equal(cat.vectors([2]), vector) and cat.vectors([BASE]).tolist() == [[0.0] * 8]


@pytest.mark.parametrize("with_added", [False, True])
def test_no_rows_read_nothing(cat, with_added):
    if with_added:
        added(cat, ("a", {"genre": "g"}))
    for rows in ([], np.array([], np.int64), np.array([], np.int32)):
        assert cat.metas(rows) == [] and cat.tag_counts([]) == Counter()
        out = cat.vectors(rows)
        assert out.shape == (0, 8) and out.dtype == np.float32
        strings, hits, numbers = cat.column("genre", rows), cat.matches("genre", rows, ["g"]), \
            cat.numeric_column("duration", rows)
        assert (strings.shape, strings.dtype, hits.shape, hits.dtype) == ((0,), object, (0,), bool)
        assert (numbers.shape, numbers.dtype) == ((0,), np.float64)
        assert cat.hubness(rows).shape == (0,) and cat.encoder_inputs(rows).shape == (0,)
        assert cat.feature_table().popularity[rows].shape == (0,) and cat.feature_table().modality[rows].shape == (0,)
