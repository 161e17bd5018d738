"""The footprint work (issue 19) loses nothing: compact columns (bundle format 3), compressed
text (format 4) and tags as integer codes (format 5) give the lists the wide ones (format 2) give, ids are found without a dict of every id, ranker features are computed
for the rows a request reads, and opening plus serving holds no Python object per item."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from edgerec.device_tests.scale import scaled_bundle
from edgerec.errors import BundleError
from edgerec.export.convert import convert_bundle
from edgerec.runtime import Filters, Policy, Recommender, policies
from edgerec.runtime import id_index as id_index_module
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.catalog import ItemCatalog
from edgerec.runtime.catalog_columns import StringColumn
from edgerec.runtime.id_index import IdIndex

pytestmark = pytest.mark.usefixtures("fixed_history_clock")  # events recorded at fixed times near 1.79e9

GOLDEN = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"
NOW = 1_790_000_000.0


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    """The golden bundle grown to 3,000 items (format 6), and the same bundle written as format 5
    (tags as codes), format 4 (tags as text in compressed blocks), format 3 and format 2."""
    root = tmp_path_factory.mktemp("footprint")
    newest = scaled_bundle(Bundle.open(GOLDEN), 3_000, root / "v6")
    return {6: newest, **{v: convert_bundle(newest, root / f"v{v}", format_version=v) for v in (5, 4, 3, 2)}}


@pytest.fixture(scope="module")
def grown(formats):
    """(format 3, format 2) copies of the grown bundle."""
    return formats[3], formats[2]


@pytest.fixture(scope="module")
def lists(formats):
    return {version: _lists(bundle) for version, bundle in formats.items()}


def _lists(bundle: Path) -> list:
    """Every list of a mix of requests: histories, a newcomer, onboarding, feedback, filters,
    policies, catalog updates; ids, exact scores and reasons."""
    out = []
    with Recommender.open(bundle) as rec:
        cat = rec.catalog
        for u in range(8):
            for i in range(3 + u):
                rec.record(f"u{u}", cat.item_id((u * 97 + 5 * i) % cat.base_count), "finish", timestamp=NOW - 50 + i)
        rec.onboard("onboarded", genres=[cat.meta(3)["genre"]], languages=[cat.meta(3)["language"]])
        rec.onboard("tagged", tags=cat.meta(11)["tags"][:2] + ["no-such-tag"])  # a scan of the tag column
        rec.record("u1", cat.item_id(40), "more_like_this", timestamp=NOW - 1)
        rec.record("u2", cat.item_id(41), "not_interested", timestamp=NOW - 1)
        rec.add_items([{"item_id": "new", "vector": cat.vectors([7])[0].tolist(), "title": "New",
                        "genre": cat.meta(7)["genre"]}])
        rec.remove_items([cat.item_id(9), cat.item_id(10)])
        requests = [{"k": k} for k in (1, 10, 60)] + [
            {"k": 10, "filters": Filters(languages=[cat.meta(3)["language"]])},
            {"k": 10, "filters": Filters(genres=[cat.meta(5)["genre"]], max_duration_s=3600)},
            {"k": 10, "policy": Policy(diversity=0.5, max_per_creator=1)},
            {"k": 10, "policy": Policy(freshness=0.5, language_boost=0.3)},
        ]
        for user in [f"u{u}" for u in range(8)] + ["newcomer", "onboarded", "tagged"]:
            for kwargs in requests:
                got = rec.recommend(user, context={"now": NOW}, **kwargs)
                out.append([(r.item_id, r.score, r.title, r.reason.kind, r.reason.text, sorted(r.meta.items()),
                             r.reason.tags) for r in got])
    return out


def test_compact_columns_give_the_same_lists_as_the_wide_ones(grown, lists):
    compact, wide = grown
    new, old = Bundle.open(compact), Bundle.open(wide)
    assert (new.manifest.format_version, old.manifest.format_version) == (3, 2)
    assert new.array(new.manifest.items.strings["ids"].offsets).dtype == np.uint32
    assert old.array(old.manifest.items.strings["ids"].offsets).dtype == np.int64
    assert new.array(new.manifest.items.categorical["genre"].file).dtype == np.int8
    assert new.array(new.manifest.items.numeric["release_ts"].file).dtype == np.int32
    assert new.size_bytes() < old.size_bytes()
    assert lists[3] == lists[2]


def test_compressed_text_gives_the_same_lists_as_plain_text(formats, lists):
    new, old = Bundle.open(formats[4]), Bundle.open(formats[3])
    assert new.manifest.format_version == 4
    with Recommender.open(formats[4]) as compressed, Recommender.open(formats[3]) as plain:
        for name, column in (("titles", "titles"), ("tags", "tag_column")):
            assert new.manifest.items.strings[name].codec == "zlib"
            assert getattr(compressed.catalog, column).all() == getattr(plain.catalog, column).all()
    assert new.manifest.items.strings["ids"].codec is None  # every id lookup reads one: kept plain
    assert new.size_bytes() < old.size_bytes()
    assert any(r[2] and r[4] for requests in lists[4] for r in requests)  # titles and reasons were read
    assert lists[4] == lists[3]


def test_tag_codes_give_the_same_lists_as_tag_text(formats, lists):
    """Format 5 reads the tags as codes (the history's tag profile, the reasons' matched tags, onboarding
    by tag, the new item's neighbours): every list is the one format 4's text gives."""
    new, old = Bundle.open(formats[5]), Bundle.open(formats[4])
    assert new.manifest.format_version == 5 and "tags" not in new.manifest.items.strings
    assert new.array(new.manifest.items.tags.codes).dtype == np.uint8 and new.manifest.items.tags.vocab
    with Recommender.open(formats[5]) as codes, Recommender.open(formats[4]) as text:
        assert type(codes.catalog.tag_column).__name__ == "TagColumn"
        assert codes.catalog.tag_column.all() == text.catalog.tag_column.all()
        rows = list(range(0, codes.catalog.base_count, 7))
        assert list(codes.catalog.tag_counts(rows).items()) == list(text.catalog.tag_counts(rows).items())
    assert new.size_bytes() < old.size_bytes()
    assert any(r[6] for requests in lists[5] for r in requests)  # the reasons matched tags
    assert lists[5] == lists[4]


@pytest.mark.parametrize("old, new", [(2, 3), (3, 4), (2, 4), (4, 5), (2, 5), (5, 4)])
def test_the_old_format_round_trips_through_the_new_one(formats, tmp_path, old, new):
    again = convert_bundle(formats[old], tmp_path / "again", format_version=new)
    for name in Bundle.open(formats[new]).manifest.files:
        if name.startswith("items/"):
            assert (again / name).read_bytes() == (formats[new] / name).read_bytes(), name


def test_a_narrowed_column_keeps_every_value():
    from edgerec.runtime.item_spec import narrowest

    assert narrowest(np.array([0, 1_700_000_000], np.int64)).dtype == np.int32
    assert narrowest(np.array([-1, 120], np.int64)).dtype == np.int8
    assert narrowest(np.array([3.5, 1024.0], np.float32)).dtype == np.float16
    assert narrowest(np.array([15.0, 8999.0], np.float32)).dtype == np.int16  # whole seconds
    assert narrowest(np.array([0.0, 41.0], np.float32)).dtype == np.int8
    assert narrowest(np.array([3.1, 1.0], np.float32)).dtype == np.float32  # 3.1 is not a float16
    assert narrowest(np.array([70_000.0], np.float32)).dtype == np.float32  # beyond float16's range


def _column(ids: list[str]) -> StringColumn:
    data = [i.encode() for i in ids]
    offsets = np.r_[0, np.cumsum([len(d) for d in data])].astype(np.uint32)
    return StringColumn(np.frombuffer(b"".join(data) or b"\0", np.uint8)[: offsets[-1]], offsets)


def test_ids_are_found_by_hash_even_when_hashes_collide(monkeypatch):
    ids = [f"item-{i}" for i in range(500)] + ["ünï", "a", "b"]
    index = IdIndex(_column(ids))
    assert [index.get(i) for i in ids] == list(range(len(ids)))
    assert index.get("item-500") is None and index.get("") is None and index.duplicate() is None
    # a hash that maps every id of a length to one value: the bytes decide, never the hash alone
    monkeypatch.setattr(id_index_module, "hash_one", lambda data: len(data))
    monkeypatch.setattr(id_index_module, "hash_strings", lambda blob, offsets: np.diff(offsets).astype(np.uint64))
    weak = IdIndex(_column(ids))
    assert weak.get_many(ids[::7]) == list(range(0, len(ids), 7)) and weak.get("item-999") is None
    assert weak.duplicate() is None
    assert IdIndex(_column(ids + ["item-42"])).duplicate() == len(ids)


def test_remembered_lookups_give_the_searched_rows_and_stay_bounded(monkeypatch):
    monkeypatch.setattr(id_index_module, "RECENT_IDS", 50)
    ids = [f"item-{i}" for i in range(300)]
    index = IdIndex(_column(ids))
    searched = []
    search = index._search
    index._search = lambda wanted: searched.append(len(wanted)) or search(wanted)
    asked = ids[:30] + ["nope", "item-1"]
    expected = list(range(30)) + [None, 1]
    assert index.get_many(asked) == expected and searched == [32]
    assert index.get_many(asked) == expected and searched == [32]  # the second time from memory
    for first in range(0, 300, 40):  # more ids than remembered: memory starts over, rows stay right
        assert index.get_many(ids[first:first + 40]) == list(range(first, min(first + 40, 300)))
        assert len(index._recent) <= 50
    assert index.get_many(asked) == expected and searched[-1] == 32


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the process's mappings (Linux)")
@pytest.mark.parametrize("version", [4, 3])
def test_plain_string_columns_are_read_from_their_files_never_mapped(formats, version):
    """Ids are read at random rows (every event's item, every row a lookup confirms): through a
    memory map a few thousand reads made both of their files resident whole (9 MB at a million
    items). The files are read with pread(); the strings are the same."""
    bundle = formats[version]
    strings = Bundle.open(bundle).manifest.items.strings
    plain = [name for name, column in strings.items() if not column.codec]
    assert "ids" in plain and (version == 4 or "titles" in plain)
    for verify in (True, False):  # the checks at open build the id index; without them the catalog does
        with Recommender.open(bundle, verify=verify) as rec:
            cat = rec.catalog
            ids = [cat.item_id(row) for row in range(cat.base_count)]
            assert [cat.index.get(i) for i in ids[::97]] == list(range(0, cat.base_count, 97))
            assert cat.ids.all() == ids and cat.titles.all() == [cat.title(r) for r in range(cat.base_count)]
            assert [first for first, _, _ in cat.ids.chunks()][:1] == [0]
            with pytest.raises(IndexError):
                cat.ids.bytes_at(cat.base_count)
            rec.recommend("u", k=10)
            mapped = Path("/proc/self/maps").read_text()
        for name in plain:
            for file in strings[name].files():
                assert str((bundle / file).resolve()) not in mapped, f"{file} is memory-mapped"
    assert len(set(ids)) == len(ids) and ids[0] == StringColumn(np.frombuffer(
        (bundle / strings["ids"].file).read_bytes(), np.uint8), np.load(bundle / strings["ids"].offsets))[0]


def test_duplicate_ids_are_refused_when_the_bundle_opens(grown, tmp_path):
    compact, _ = grown
    copy = convert_bundle(compact, tmp_path / "copy")
    ids = Bundle.open(copy).manifest.items.strings["ids"]
    blob = (copy / ids.file).read_bytes()
    offsets = np.load(copy / ids.offsets)
    first, second = blob[offsets[0]:offsets[1]], blob[offsets[1]:offsets[2]]
    if len(first) == len(second):  # the second id becomes the first: same length, same offsets
        (copy / ids.file).write_bytes(first + first + blob[offsets[2]:])
        with pytest.raises(BundleError, match="unique"):
            Bundle.open(copy, verify=False)


def test_ranker_features_are_computed_for_the_rows_asked_for(grown):
    compact, _ = grown
    with Recommender.open(compact) as rec:
        cat = rec.catalog
        rec.add_items([{"item_id": "n1", "vector": cat.vectors([1])[0].tolist(), "creator": "someone-new",
                        "language": cat.meta(2)["language"], "series_id": ""}])
        table = cat.snapshot().feature_table()
        rows = np.r_[np.arange(0, cat.base_count, 37), len(cat) - 1]
        for name, field in (("language", "language"), ("creator", "creator"), ("series_id", "series")):
            values = cat.column(name, rows)
            codes = getattr(table, field)[rows]
            assert np.array_equal(codes == -1, values == "")
            same_value = values[:, None] == values[None, :]
            assert np.array_equal((codes[:, None] == codes[None, :]) & (codes[:, None] >= 0),
                                  same_value & (values[:, None] != ""))
        popularity = cat.numeric_column("popularity", np.arange(len(cat)))
        assert table.log_pop_max == pytest.approx(float(np.log1p(np.float32(popularity.max()))))


def test_opening_and_serving_hold_no_python_object_per_item(tmp_path):
    """A dict of every id (what the catalog held before) costs ~100 bytes an item; the hash index
    12. Peak traced memory of open + events + requests stays under 40 bytes an item."""
    n = 60_000
    big = scaled_bundle(Bundle.open(GOLDEN), n, tmp_path / "big")
    with Recommender.open(GOLDEN) as warm:  # modules imported on first use are no per-item cost
        warm.recommend("u", k=10)
        warm.record("u", warm.catalog.item_id(0), "finish")
        warm.recommend("u", k=10)
    tracemalloc.start()
    try:
        with Recommender.open(big) as rec:
            for i in range(20):
                rec.record("u", rec.catalog.item_id(i * 2_999), "finish", timestamp=NOW - 100 + i)
            for _ in range(5):
                rec.recommend("u", k=10, context={"now": NOW})
                rec.recommend("newcomer", k=10, context={"now": NOW})
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * n, f"{peak / n:.0f} bytes an item"


def test_the_id_index_holds_at_most_four_and_a_quarter_bytes_an_item_and_finds_every_id():
    """32-bit entries (fingerprint above row) in buckets of 16 to 32, not a 64-bit key per item (8 bytes)
    nor buckets of 4 to 8 (their starts: 4.9 bytes an item here); ids whose fingerprints collide in a
    bucket are told apart by their bytes."""
    ids = [f"x{i}" for i in range(300_000)]  # 13-bit fingerprints: some share a bucket and a fingerprint
    index = IdIndex(_column(ids))
    assert index.entries.dtype == np.uint32 and index.nbytes <= 4.25 * len(ids) + 8
    rng = np.random.default_rng(0)
    asked = rng.integers(0, len(ids), 300).tolist()
    reads = []
    read = index.column.bytes_at
    index.column.bytes_at = lambda row: reads.append(row) or read(row)
    assert index.get_many([ids[r] for r in asked]) == asked
    assert len(reads) <= 1.05 * len(asked)  # the fingerprint spares reading the bucket's other ids
    del index.column.bytes_at
    assert index.get("x300000") is None and index.duplicate() is None
    fingerprints = index.entries >> np.uint32(index.row_bits)
    same = np.flatnonzero(fingerprints[1:] == fingerprints[:-1])
    inside = [at for at in same.tolist() if at + 1 not in set(index.starts.tolist())]
    assert inside  # the case the bytes must decide arises at this size
    rows = [int(index.entries[at + k]) & ((1 << index.row_bits) - 1) for at in inside[:20] for k in (0, 1)]
    assert index.get_many([ids[r] for r in rows]) == rows
    assert IdIndex(_column(ids + ["x123"])).duplicate() == len(ids)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int8, np.int32])
@pytest.mark.parametrize("n", [1, 2, 7, 1000])
def test_a_stored_median_is_numpys_float64_median(dtype, n):
    from edgerec.runtime.catalog_columns import stored_median

    rng = np.random.default_rng(n)
    values = (rng.normal(0, 50, n) if np.dtype(dtype).kind == "f" else rng.integers(-100, 100, n)).astype(dtype)
    assert stored_median(values) == float(np.median(values.astype(np.float64)))
    if np.dtype(dtype).kind == "f" and n > 1:
        values[n // 3] = np.nan
        assert np.isnan(stored_median(values)) and np.isnan(np.median(values.astype(np.float64)))


def test_catalog_wide_values_are_computed_without_catalog_long_float64_copies():
    """The popularity and hubness medians, the freshness pool and the durations check read the stored
    columns (a block at a time where they can), never a float64 copy of a million values (8 MB each)."""
    from types import SimpleNamespace

    from edgerec.runtime.catalog_columns import stored_median
    from edgerec.runtime.policies import _has_durations
    from edgerec.runtime.retrieve import fresh_rows

    n = 1_000_000
    rng = np.random.default_rng(0)
    popularity = rng.gamma(1.0, 50.0, n).astype(np.float16)
    release = rng.integers(NOW - 4_000 * 86_400, NOW + 86_400, n).astype(np.int32)  # ~2% fresh
    release[::97] = 0
    added = [SimpleNamespace(meta={"release_ts": NOW - 86_400, "duration": 60.0}), SimpleNamespace(meta={})]

    class Catalog:  # the part of ItemCatalog these read: stored columns, added items' metadata
        numeric, base_count = {"release_ts": release, "duration": np.zeros(n, np.int16)}, n

        def __len__(self):
            return n + len(self.added)

        def numeric_column(self, name, rows):
            return np.array([float(self.added[r - n].meta.get(name, 0) or 0) for r in rows], np.float64)

    cat = Catalog()
    cat.added = added
    request = SimpleNamespace(now=NOW, policy=Policy(freshness=1.0, freshness_days=30.0))
    every = np.r_[release.astype(np.float64), [NOW - 86_400, 0.0]]
    age = NOW - every
    expected = np.flatnonzero((every > 0) & (age >= 0) & (age <= 90 * 86_400))
    tracemalloc.start()
    try:
        median = stored_median(popularity)
        fresh = fresh_rows(cat, request)
        durations = _has_durations(cat)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert median == float(np.median(popularity.astype(np.float64)))
    assert np.array_equal(fresh, expected) and fresh.dtype == np.int64 and n in fresh
    assert durations  # only the added item has one
    cat.added = added[1:]
    assert not _has_durations(cat)
    assert peak < 3 * n  # a float16 copy (2 bytes an item) and the fresh rows; a float64 copy alone takes 8


def test_a_catalog_holds_no_flag_per_item_until_one_is_removed(tmp_path):
    """A removal flag per bundle row (1 MB at a million items, every page resident after open) is made
    when the first bundle item is retired, not at open; removed rows stay masked as before."""
    small, n = 60_000, 120_000

    def held_by_opened(count: int):
        bundle = Bundle.open(scaled_bundle(Bundle.open(GOLDEN), count, tmp_path / f"big{count}"))
        tracemalloc.start()
        try:
            cat = ItemCatalog(bundle)
            return tracemalloc.get_traced_memory()[0], cat
        finally:
            tracemalloc.stop()

    ItemCatalog(Bundle.open(GOLDEN))  # modules and their first-use work: no per-item cost
    held_small, _ = held_by_opened(small)
    held, cat = held_by_opened(n)
    # what grows with the catalog, per item (what a test run's other work left behind cancels out)
    per_item = (held - held_small) / (n - small)
    assert per_item < 0.5, f"{per_item:.2f} bytes an item held by an opened catalog"  # the flags: 1 byte an item
    assert cat.removed is None and cat.is_active(n - 1) and len(cat.inactive_rows()) == 0
    genres = cat.categorical["genre"]
    everyone = policies.column_values(cat, "genre")
    cat.remove(cat.item_id(3))
    assert not cat.is_active(3) and cat.is_active(4) and cat.inactive_rows().tolist() == [3]
    assert cat.removed.sum() == 1 and policies.column_values(cat, "genre") <= everyone
    kept = np.delete(np.asarray(genres[0]), 3)
    assert policies.column_values(cat, "genre") == {genres[1][c] for c in set(kept.tolist()) if c >= 0 and genres[1][c]}
