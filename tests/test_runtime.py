"""The on-device runtime against a real bundle: history, feedback, policies, catalog updates, errors."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from handmade import ids, recorded_back_then

from edgerec.errors import ConfigError, HistoryError, UnknownIdError
from edgerec.runtime import Filters, Policy, Recommender
from edgerec.runtime.history import HistoryStore, Retention


def watched(rec, user, n=6, start=0):
    """Give a user a history: the first n episodes/items of the catalog from `start`."""
    items = [rec.catalog.item_id(i) for i in range(start, start + n)]
    recent = int(time.time()) - 3_600  # explicit times retention keeps (reads drop what it would remove)
    for i, item in enumerate(items):
        rec.record(user, item, "finish", timestamp=recent + i)
    return items


def test_recommend_excludes_history_and_explains(rec):
    history = watched(rec, "ann")
    results = rec.recommend("ann", k=10)
    assert len(results) == 10
    assert not set(ids(results)) & set(history)
    assert all(r.reason.text for r in results)
    assert any(r.reason.kind in ("history", "series") and r.reason.item_id in history for r in results)
    assert results[0].score >= results[-1].score


def test_new_event_changes_the_very_next_list(rec):
    watched(rec, "bob", n=3)
    before = ids(rec.recommend("bob", k=10))
    rec.record("bob", before[0], "finish")
    after = ids(rec.recommend("bob", k=10))
    assert before[0] not in after and after != before


def test_a_users_state_is_reused_until_anything_of_theirs_is_written(rec):
    """Requests without new events reuse the user's state and vector; any write, even by another
    connection to the same file (another process, say), reaches the very next list."""
    watched(rec, "dan", n=5)
    first = ids(rec.recommend("dan", k=10))
    assert ids(rec.recommend("dan", k=10)) == first
    assert rec.stats()["counters"]["user_cache_hits"] == 1
    other = HistoryStore(rec.history.path)
    other.record("dan", first[0], "finish")
    other.close()
    assert first[0] not in ids(rec.recommend("dan", k=10))
    rec.forget("dan")
    assert rec.recommend("dan", k=10)[0].reason.kind in ("popular", "tags")  # a newcomer again
    assert rec.stats()["counters"]["user_cache_hits"] == 1


def test_forget_drops_what_was_kept_of_the_user_in_memory(rec, monkeypatch):
    """forget() erases the user's rows from the files; the state, event window and vector kept
    between requests go as well (they stayed in memory until evicted), even when the erasure
    itself must be completed later."""
    cache = rec.pipeline["history"].run.cache
    for user in ("fay", "gus"):
        watched(rec, user, n=5)
        rec.recommend(user, k=5)
    rec.forget("fay")
    assert cache.get("fay") is None and cache.get("gus") is not None
    rec.recommend("gus", k=5)

    def blocked():
        raise HistoryError("another connection holds a read snapshot")

    monkeypatch.setattr(rec.history, "erase_pending", blocked)
    with pytest.raises(HistoryError):
        rec.forget("gus")
    assert cache.get("gus") is None


def test_not_interested_removes_item_and_near_neighbours(rec):
    """A differential test: two users with the same history; one says "not interested" to the top item,
    the other (the control) to the item of the list least like it. Only the first loses the top item's
    neighbours. (Comparing list means alone would pass with no suppression at all: dropping the top
    item lowers the mean similarity by itself.)"""
    for user in ("treated", "control"):
        watched(rec, user, n=4)
    first = rec.recommend("control", k=20)
    target = first[0].item_id

    def vector(item):
        return rec.catalog.vectors(np.array([rec.catalog.row(item)]))[0]

    similarity = {r.item_id: float(vector(r.item_id) @ vector(target)) for r in first[1:]}
    far = min(similarity, key=similarity.get)
    near = sorted(similarity, key=similarity.get, reverse=True)[:3]
    rec.record("treated", target, "not_interested")
    rec.record("control", far, "not_interested")
    treated = {r.item_id: r.score for r in rec.recommend("treated", k=len(rec.catalog))}
    control = {r.item_id: r.score for r in rec.recommend("control", k=len(rec.catalog))}
    assert target not in treated and far not in control
    for item in near:  # at least half a deviation lower than for the control user
        assert treated[item] < control[item] - 0.5, item
    rank = {user: sorted(scores, key=lambda i: -scores[i]) for user, scores in (("t", treated), ("c", control))}
    assert all(rank["t"].index(item) > rank["c"].index(item) for item in near)


def test_more_like_this_pulls_neighbours_up(rec):
    watched(rec, "dan", n=4)
    anchor = rec.catalog.item_id(500)
    vec = rec.catalog.vectors(np.array([500]))[0]

    def similarity(results):
        return np.mean([rec.catalog.vectors(np.array([rec.catalog.row(r.item_id)]))[0] @ vec for r in results])

    before = similarity(rec.recommend("dan", k=10))
    rec.record("dan", anchor, "more_like_this")
    results = rec.recommend("dan", k=10)
    assert similarity(results) > before
    assert any(r.reason.kind == "feedback" for r in results)


def test_diversity_lowers_intra_list_similarity(rec):
    watched(rec, "eve", n=6)

    def intra(results):
        v = rec.catalog.vectors(np.array([rec.catalog.row(r.item_id) for r in results]))
        sims = v @ v.T
        return sims[np.triu_indices(len(v), 1)].mean()

    plain = intra(rec.recommend("eve", k=10, policy=Policy(diversity=0.0)))
    diverse = intra(rec.recommend("eve", k=10, policy=Policy(diversity=0.7)))
    assert diverse < plain
    capped = rec.recommend("eve", k=10, policy=Policy(max_per_creator=1))
    creators = [r.meta["creator"] for r in capped]
    assert len(creators) == len(set(creators))


def test_cold_start_user_gets_popular_and_onboarding_steers(rec):
    rows = np.arange(rec.catalog.base_count)
    popularity = rec.catalog.numeric_column("popularity", rows)
    release = rec.catalog.numeric_column("release_ts", rows)
    now = release.max() + 20 * 86_400  # the newest releases still carry most of their bonus
    # the prior's own order: the newcomer spread (spec §5, tests/device/test_newcomer_spread.py) off
    plain = rec.recommend("newcomer", k=10, context={"now": now}, policy=Policy(cold_max_per_creator=0))
    assert all(r.reason.kind == "popular" for r in plain)
    # the documented prior, from the bundle's own columns: log(1 + popularity) * (1 + exp(-age / 30 days))
    # for items with a release date; ties keep the lower row first
    age = np.maximum(now - release, 0) / 86_400
    prior = np.log1p(popularity) * (1 + np.where((release > 0) & (release <= now), np.exp(-age / 30), 0.0))
    expected = np.lexsort((rows, -prior.astype(np.float32)))[:10]
    assert ids(plain) == [rec.catalog.item_id(r) for r in expected]
    assert [r.score for r in plain] == sorted((r.score for r in plain), reverse=True)
    rec.onboard("fan", genres=["jazz"], languages=["en"])
    steered = rec.recommend("fan", k=10, context={"now": now})
    assert sum(r.meta["genre"] == "jazz" for r in steered) > sum(r.meta["genre"] == "jazz" for r in plain)


def test_onboarding_refuses_genres_and_languages_the_catalog_does_not_have(rec):
    """A choice nothing matches would steer nothing, silently: "Comedy" where the catalog says "comedy"."""
    genre = rec.catalog.meta(0)["genre"]
    with pytest.raises(ConfigError, match=f"did you mean '{genre.upper()}' -> '{genre}'"):
        rec.onboard("fan", genres=[genre.upper()])
    with pytest.raises(ConfigError, match="unknown languages \\['xx'\\]; this catalog's languages: .*en"):
        rec.onboard("fan", genres=[genre], languages=["en", "xx"])
    assert rec.history.preferences("fan") == {}  # every choice is checked before any is stored
    rec.add_items([{"item_id": "new-genre-item", "title": "A new sound", "genre": "hyperpop", "vector":
                    rec.catalog.vectors(np.array([0]))[0].tolist()}])
    rec.onboard("fan", genres=["hyperpop", genre], tags=["a tag no item has"])  # added items' genres count; tags are free
    assert rec.history.preferences("fan")["genre"] == sorted(["hyperpop", genre])


@pytest.mark.parametrize("size", [1e38, 3e19, 1e-30, 1e-44])
def test_an_added_vector_of_any_finite_size_is_stored_as_its_direction(rec, size):
    """float32's squares overflowed for 1e38 (the norm was inf, the vector stored as zeros) and vanish for 1e-30."""
    direction = rec.catalog.vectors(np.array([0]))[0].astype(np.float64)
    direction /= np.linalg.norm(direction)
    given = (np.sign(direction) * size).tolist()  # a vector along the signs, to compare with its own unit form
    rec.add_items([{"item_id": f"scaled-{size}", "vector": given}])
    stored = rec.catalog.vectors(np.array([rec.catalog.row(f"scaled-{size}")]))[0]
    expected = np.sign(direction) / np.sqrt(len(direction))
    np.testing.assert_allclose(stored, expected, atol=1e-6)
    with pytest.raises(ConfigError, match="vector is all zeros"):
        rec.add_items([{"item_id": "zero", "vector": [0.0] * len(direction)}])


def test_cold_start_item_added_with_metadata_only(rec):
    cat = rec.catalog
    creator_row = next(i for i in range(cat.base_count) if cat.meta(i)["modality"] == "music_track"
                       and sum(cat.meta(j)["creator"] == cat.meta(i)["creator"] for j in range(cat.base_count)) >= 6)
    meta = cat.meta(creator_row)
    rec.add_items([{"item_id": "brand-new", "title": "Fresh release", "creator": meta["creator"],
                    "genre": meta["genre"], "tags": meta["tags"], "modality": meta["modality"],
                    "language": meta["language"]}])
    new_vec = cat.vectors(np.array([cat.row("brand-new")]))[0]
    own = cat.vectors(np.array([creator_row]))[0]
    assert new_vec @ own > 0.3  # placed next to the creator's other work

    def rank_for(user, rows):
        for r in rows:
            rec.record(user, cat.item_id(r), "finish")
        return ids(rec.recommend(user, k=len(cat))).index("brand-new") / len(cat)

    fan = [i for i in range(cat.base_count) if cat.meta(i)["creator"] == meta["creator"]][:5]
    stranger = [i for i in range(cat.base_count) if cat.meta(i)["genre"] != meta["genre"]][:5]
    fan_rank, stranger_rank = rank_for("fan", fan), rank_for("stranger", stranger)
    assert fan_rank < 0.1 and fan_rank < stranger_rank
    rec.record("fan", "brand-new", "play")  # the device knows the new item now


def test_added_items_persist_and_another_spaces_are_not_served(tiny_bundle, tmp_path):
    db = tmp_path / "h.db"
    with Recommender.open(tiny_bundle, history=db) as rec:
        vec = rec.catalog.vectors(np.array([3]))[0]
        rec.add_items([{"item_id": "x1", "vector": vec.tolist(), "title": "X"}])
        rec.remove_items([rec.catalog.item_id(7)])
    with Recommender.open(tiny_bundle, history=db) as rec:
        assert rec.catalog.row("x1") >= rec.catalog.base_count
        with pytest.raises(UnknownIdError):
            rec.catalog.row(rec.catalog.item_id(7))
    with sqlite3.connect(db) as conn:  # pretend the cache was built for another model
        conn.execute("UPDATE added_items SET space='another-model'")
    with Recommender.open(tiny_bundle, history=db) as rec:
        with pytest.raises(UnknownIdError):
            rec.catalog.row("x1")
        with pytest.raises(UnknownIdError):  # the app's removal stands across a bundle swap
            rec.catalog.row(rec.catalog.item_id(7))
        assert rec.stats()["catalog_carried"] == {"removed": 1, "added_not_carried": 1}


@pytest.mark.parametrize("meta", [{"title": 5}, {"title": "T", "tags": "abc"}, {"title": "T", "duration": "long"},
                                  {"title": "T", "release_ts": 1e30}, {"title": "T", "genre": ["a"]}])
def test_added_items_whose_metadata_was_edited_outside_edgerec_are_left_out(tiny_bundle, tmp_path, meta):
    """The history file is the app's: a title 5 was served as the int 5, tags "abc" as ['a', 'b', 'c']."""
    db = tmp_path / "h.db"
    with Recommender.open(tiny_bundle, history=db) as rec:
        vec = rec.catalog.vectors(np.array([3]))[0].tolist()
        rec.add_items([{"item_id": "x1", "vector": vec, "title": "X"}, {"item_id": "x2", "vector": vec, "title": "Y"}])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE added_items SET meta = ? WHERE item = 'x1'", (json.dumps(meta),))
    with Recommender.open(tiny_bundle, history=db) as rec:
        assert rec.catalog.title(rec.catalog.row("x2")) == "Y"  # the others are served
        with pytest.raises(UnknownIdError):
            rec.catalog.row("x1")


def test_an_item_without_a_vector_or_known_metadata_is_named_by_its_id(rec):
    with pytest.raises(ConfigError, match=r"^item 'new-1': give a 'vector', or metadata the catalog knows"):
        rec.add_items([{"item_id": "new-1", "title": "Jazz night", "tags": ["jazz"]}])


def test_bad_inputs_get_clear_errors(rec):
    with pytest.raises(UnknownIdError, match="unknown item 'nope'"):
        rec.record("u", "nope", "play")
    with pytest.raises(ConfigError, match="unknown event"):
        rec.record("u", rec.catalog.item_id(0), "watched")
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        rec.recommend("u", k=0)
    with pytest.raises(ConfigError, match="NaN"):
        rec.add_items([{"item_id": "bad", "vector": [float("nan")] * rec.manifest.dim}])
    with pytest.raises(ConfigError, match="values"):
        rec.add_items([{"item_id": "bad", "vector": [1.0, 2.0]}])
    with pytest.raises(ConfigError, match="unknown device"):
        rec.recommend("u", context={"device": "toaster"})


def test_k_larger_than_catalog_and_filters(rec):
    everything = rec.recommend("nobody", k=5000)
    assert len(everything) == len(rec.catalog)
    watched(rec, "fil", n=3)
    spanish = rec.recommend("fil", k=10, filters=Filters(languages=["es"]))
    assert spanish and all(r.meta["language"] == "es" for r in spanish)
    kids = rec.recommend("fil", k=10, filters=Filters(kids_safe=True, modalities=["film", "series_episode"]))
    assert all(r.meta["modality"] in ("film", "series_episode") for r in kids)
    assert all(r.meta["genre"] not in ("horror", "thriller", "crime") for r in kids)


def test_streamed_top_k_gives_the_lists_of_scoring_every_item(tiny_bundle, tmp_path):
    """The native scan's top-k shortcut must not change a single list, whatever the request."""
    from edgerec.runtime.retrieval import native_scan

    if native_scan() is None:
        pytest.skip("no compiled kernel in this install: every request scores all items")
    lists = {}
    for kernel in ("native", "numpy"):
        with Recommender.open(tiny_bundle, history=tmp_path / f"{kernel}.db", kernel=kernel) as r:
            for user, start in (("a", 0), ("b", 40), ("c", 300)):
                watched(r, user, n=8, start=start)
            r.remove_items([r.catalog.item_id(i) for i in range(8, 30)])
            r.add_items([{"item_id": "fresh", "vector": r.catalog.vectors(np.array([41]))[0], "title": "Fresh"}])
            r.record("b", r.catalog.item_id(50), "not_interested")
            got = []
            for user in ("a", "b", "c"):
                for filters in (None, Filters(languages=["es"]), Filters(kids_safe=True, modalities=["podcast_episode"])):
                    got.append([(x.item_id, round(x.score, 5), x.reason.text)
                                for x in r.recommend(user, k=10, filters=filters)])
            lists[kernel] = got
            counters = r.stats()["counters"]
            if kernel == "native":  # both the shortcut and its way back (filters leaving too few) ran
                assert counters.get("retrieve_streamed", 0) > 0 and counters.get("retrieve_streamed_too_few", 0) > 0
            else:
                assert "retrieve_streamed" not in counters
    assert lists["native"] == lists["numpy"]


def test_a_repeated_request_reuses_the_scan_until_the_state_changes(tiny_bundle, tmp_path, monkeypatch):
    """The scan's answer is kept per user state and query: the same request again gives the same
    list without passing over the table; a filter (another count), k or a new event scans again."""
    with Recommender.open(tiny_bundle, history=tmp_path / "h.db") as r:
        if not r.models.scan.streams_top_k:
            pytest.skip("no compiled kernel in this install: every request scores all items")
        watched(r, "a", n=8)
        scans, top = [], r.models.scan.top
        monkeypatch.setattr(r.models.scan, "top", lambda *args: scans.append(args[1]) or top(*args))
        now = {"now": 1_800_000_000}

        def listed(**kw):
            return [(x.item_id, x.score, x.reason.text) for x in r.recommend("a", context=now, **kw)]
        first = listed(k=10)
        assert listed(k=10) == first and len(scans) == 1
        assert listed(k=10, filters=Filters(languages=["es"])) and len(scans) == 2
        assert listed(k=10) == first and len(listed(k=300)) == 300 and len(scans) == 3
        r.record("a", first[0][0], "finish")
        after = listed(k=10)
        assert len(scans) == 4 and first[0][0] not in [item for item, _, _ in after]
        assert after == listed(k=10) and len(scans) == 4


def test_both_backends_give_the_same_top10(tiny_bundle, tmp_path):
    onnx = Recommender.open(tiny_bundle, backend="onnx")
    tflite = Recommender.open(tiny_bundle, backend="tflite")
    same = 0
    for u in range(40):
        for r in (onnx, tflite):
            watched(r, f"u{u}", n=5, start=u * 20)
        a, b = ids(onnx.recommend(f"u{u}", k=10)), ids(tflite.recommend(f"u{u}", k=10))
        same += set(a) == set(b)
    assert same >= 36  # int8 files quantized separately: a near-tie may swap the 10th item


def test_concurrent_record_and_recommend(rec):
    errors = []

    def worker(n):
        try:
            for i in range(25):
                rec.record(f"t{n}", rec.catalog.item_id((n * 37 + i) % 900), "finish")
                assert len(rec.recommend(f"t{n}", k=5)) == 5
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert rec.history.count() == 100
    assert rec.stats()["counters"]["requests"] == 100


def test_stats_time_every_stage_and_count_fallbacks(rec):
    watched(rec, "sam", n=3)
    rec.recommend("sam", k=5)
    stats = rec.stats()
    for stage in ("history", "encode", "retrieve", "rank", "policies", "total"):
        assert stats["stages"][stage]["count"] >= 1
    # a broken optional ANN stage falls back to the exact scan and is counted
    rec.ann_kind = "usearch"
    rec._ann = object()  # not an index: search() fails
    assert len(rec.recommend("sam", k=5)) == 5
    assert rec.stats()["counters"]["ann_fallback"] == 1


# ------------------------------------------------------------------ history store


def test_forget_leaves_nothing_readable(tmp_path):
    db = tmp_path / "h.db"
    store = HistoryStore(db)
    for i in range(200):
        store.record("secret-user-42", f"secret-item-{i}", "play")
    store.record("other", "kept-item", "play")
    store.forget("secret-user-42")
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("h.db"))
    assert b"secret-user-42" not in raw and b"secret-item" not in raw
    assert store.count("other") == 1 and store.count("secret-user-42") == 0


def test_export_history_gives_the_user_their_data(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    store.record("me", "a", "play", 0.5, context={"device": "tv"})
    store.set_preferences("me", "genre", ["jazz"])
    data = store.export("me")
    assert data["events"][0]["item"] == "a" and data["events"][0]["context"] == {"device": "tv"}
    assert data["preferences"] == {"genre": ["jazz"]}


def test_retention_by_count_and_age(tmp_path):
    store = HistoryStore(tmp_path / "h.db", Retention(max_events=5, max_age_days=10))
    now = time.time()
    recorded_back_then(store, "p", "old", "play", now - 30 * 86_400)
    for i in range(8):
        store.record("p", f"i{i}", "play", ts=now)
    store.prune(now)
    assert [e.item for e in store.events("p")] == ["i3", "i4", "i5", "i6", "i7"]


def test_corrupt_database(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError, match="cannot be used"):
        HistoryStore(bad)
    # (a database locked by another process: tests/test_history.py)


def test_killed_process_loses_no_committed_event(tmp_path):
    db = tmp_path / "h.db"
    child = textwrap.dedent(f"""
        import sys
        from edgerec.runtime.history import HistoryStore
        store = HistoryStore({str(db)!r})
        i = 0
        while True:
            event_id = store.record("p", f"item-{{i}}", "play")
            print(event_id, flush=True)  # acknowledged only after the commit returned
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    acked = []
    while len(acked) < 300:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(acked) == 300
    store = HistoryStore(db)
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {e.id for e in store.events("p")}
    assert set(acked) <= stored
    ids_in_order = [e.id for e in store.events("p")]
    assert ids_in_order == sorted(ids_in_order)


@pytest.mark.parametrize("dtype", ["int8", "int8-row", "fp16", "fp32"])
def test_every_scan_kernel_gives_the_same_scores_and_top_k(dtype):
    from edgerec.runtime.item_table import StoredTable
    from edgerec.runtime.retrieval import ExactScan, available_kernels, top_rows

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(5_003, 32)).astype(np.float32)
    vectors[4000:4100] = vectors[:100]  # exact duplicates: ties must break the same way everywhere
    stored = StoredTable.quantize(vectors, dtype)
    user = rng.normal(size=32).astype(np.float32)
    scans = [ExactScan(stored, kernel) for kernel in available_kernels()]
    results = [scan.scores(user) for scan in scans]
    for scan, other in zip(scans[1:], results[1:]):
        if dtype.startswith("int8"):  # integer dot products: the same to the bit in every kernel
            np.testing.assert_array_equal(other, results[0], err_msg=scan.kernel)
        else:  # float sums in another order; numkong's fp16 kernels also round the query to fp16
            query_rounding = 1e-3 * np.abs(stored.dequantize()).sum(1).max() * np.abs(user).max()
            np.testing.assert_allclose(other, results[0], rtol=1e-5,
                                       atol=2 * query_rounding if dtype == "fp16" else 1e-5, err_msg=scan.kernel)
    # against the float scores of the stored table: for int8, only the query's own rounding (at most half
    # its step per value) separates them
    exact = stored.dequantize().astype(np.float64) @ user
    for scan, scores in zip(scans, results):
        bound = 1e-4
        if dtype.startswith("int8"):
            folded = user * stored.scales if stored.scale_axis == "dim" else user
            row_scale = stored.scales if stored.scale_axis == "row" else 1.0
            bound += (np.abs(stored.values.astype(np.float64)).sum(1) * np.abs(folded).max() / 254 * row_scale).max()
        elif dtype == "fp16":
            bound += 1e-3 * np.abs(stored.dequantize()).sum(1).max() * np.abs(user).max()  # the query in fp16
        assert np.abs(scores - exact).max() <= bound, scan.kernel
    for scan, scores in zip(scans, results):
        for k in (1, 10, 250, 6_000):
            rows, values = scan.top(user, k)
            np.testing.assert_array_equal(rows, top_rows(scores, k), err_msg=f"{scan.kernel} k={k}")
            np.testing.assert_array_equal(values, scores[rows])
    with pytest.raises(ConfigError, match="unknown scan kernel"):
        ExactScan(stored, "gpu")


def test_the_compiled_kernel_is_exact_and_refuses_bad_buffers():
    from edgerec.runtime.retrieval import native_scan

    scan = native_scan()
    if scan is None:
        pytest.skip("edgerec was installed without a C compiler; the numpy/numkong kernels serve instead")
    rng = np.random.default_rng(5)
    for rows, dim in ((0, 16), (1, 16), (7, 32), (1_027, 64), (2_049, 24), (300, 3)):  # AVX2 and portable paths
        table = rng.integers(-127, 128, (rows, dim), dtype=np.int8)
        query = rng.integers(-127, 128, dim, dtype=np.int8)
        expected = table.astype(np.int64) @ query.astype(np.int64)
        out = np.empty(rows, np.int32)
        scan.dots(table, query, out)
        np.testing.assert_array_equal(out, expected)
        k = min(5, rows)
        best, dots = np.empty(k, np.int64), np.empty(k, np.int32)
        assert scan.top_k(table, query, best, dots) == k
        order = np.lexsort((best, -dots.astype(np.int64)))
        np.testing.assert_array_equal(best[order], np.argsort(-expected, kind="stable")[:k])
    assert scan.kernel_name(24) == "portable"  # the AVX2 path takes widths of 16k only
    assert scan.kernel_name(32) in ("avx2", "portable")
    table = np.full((10, 16), 127, np.int8)
    query = np.full(16, -127, np.int8)  # the extreme products must not saturate
    out = np.empty(10, np.int32)
    scan.dots(table, query, out)
    assert (out == -127 * 127 * 16).all()
    with pytest.raises(ValueError, match="rows"):
        scan.dots(table, query, np.empty(9, np.int32))
    with pytest.raises(TypeError, match="4-byte"):
        scan.dots(table, query, np.empty(10, np.int64))
    with pytest.raises(ValueError, match="does not hold rows"):
        scan.dots(table, np.zeros(7, np.int8), out)


def test_reasons_name_the_next_episode_the_nearest_history_item_and_a_liked_item(rec):
    from edgerec.runtime.explain import Explainer

    cat = rec.catalog
    series = cat.column("series_id", np.arange(cat.base_count))
    episode = cat.numeric_column("episode", np.arange(cat.base_count))
    first = next(r for r in range(cat.base_count) if series[r] and episode[r] == 1)
    second = int(np.flatnonzero((series == series[first]) & (episode == 2))[0])
    other = next(r for r in range(cat.base_count) if not series[r])
    explainer = Explainer(cat, [other, first], [], {}, cold_start=False)
    reason, near = explainer.explain_all(cat.metas([second, other]), cat.vectors([second, other]))
    assert reason.kind == "series" and reason.item_id == cat.item_id(first) and "next episode" in reason.text
    third = int(np.flatnonzero((series == series[first]) & (episode == 3))[0])
    fourth = int(np.flatnonzero((series == series[first]) & (episode == 4))[0])
    out_of_order = Explainer(cat, [first, third, second], [], {}, cold_start=False)  # 2 watched after 3
    reason = out_of_order.explain_all(cat.metas([fourth]), cat.vectors([fourth]))[0]
    assert reason.kind == "series" and reason.item_id == cat.item_id(third)  # 4 follows the highest, 3
    assert near.kind == "history" and near.item_id == cat.item_id(other)  # closest history item: itself
    verb = {"music_track": "listened to", "podcast_episode": "listened to"}.get(
        cat.column("modality", np.array([other]))[0], "watched")  # a song was "watched" until Dec 2026
    assert near.text.startswith(f"because you {verb} ")
    audio = next(r for r in range(cat.base_count) if cat.column("modality", np.array([r]))[0] == "music_track")
    [song] = Explainer(cat, [audio], [], {}, cold_start=False).explain_all(cat.metas([audio]), cat.vectors([audio]))
    assert song.text.startswith("because you listened to ")
    [liked] = Explainer(cat, [first], [other], {}, cold_start=False).explain_all(cat.metas([other]), cat.vectors([other]))
    assert liked.kind == "feedback" and liked.item_id == cat.item_id(other)
    [newcomer] = Explainer(cat, [], [], {}, cold_start=True).explain_all(cat.metas([other]), cat.vectors([other]))
    assert newcomer.kind == "popular"


def test_reasons_follow_the_newest_event_though_the_users_side_is_kept_between_requests(rec):
    watched(rec, "fay", n=12)
    first = [r.reason.to_dict() for r in rec.recommend("fay", k=10)]
    assert [r.reason.to_dict() for r in rec.recommend("fay", k=10)] == first
    assert not any(r["kind"] == "feedback" for r in first)
    rec.record("fay", rec.catalog.item_id(500), "more_like_this")
    assert any(r.reason.kind == "feedback" for r in rec.recommend("fay", k=10))


def test_a_reopened_recommender_serves_what_the_session_that_changed_the_catalog_served(tiny_bundle, tmp_path):
    """Two ways the history's catalog updates read back differently: a bundle id added on the device and then
    removed came back as the bundle's item (a liked event read its vector again: a personal list instead of a
    newcomer's), and an updated added item moved behind the others (ties changed order)."""
    db, now = tmp_path / "h.db", {"now": 1.79e9, "hour": 12.0}
    with Recommender.open(tiny_bundle, history=db) as rec:
        taken = rec.catalog.item_id(3)
        vector = rec.catalog.vectors(np.array([5]))[0].tolist()
        rec.record("carol", taken, "like")
        rec.add_items([{"item_id": taken, "title": "Taken over", "vector": vector},
                       {"item_id": "only-added", "vector": vector}, {"item_id": "A", "vector": vector},
                       {"item_id": "B", "vector": vector}])
        rec.record("dave", "only-added", "finish")
        rec.remove_items([taken, "only-added"])
        rec.add_items([{"item_id": "A", "vector": vector, "title": "A, retitled"}])  # an update, in place
        before = {u: [(r.item_id, r.score) for r in rec.recommend(u, k=len(rec.catalog), context=now)]
                  for u in ("carol", "dave", "nobody")}
        counts = rec.stats()["added_items"], len(rec.catalog)
    with Recommender.open(tiny_bundle, history=db) as rec:
        after = {u: [(r.item_id, r.score) for r in rec.recommend(u, k=len(rec.catalog), context=now)]
                 for u in ("carol", "dave", "nobody")}
        assert (rec.stats()["added_items"], len(rec.catalog)) == counts
    assert after == before
    order = [i for i, _ in before["nobody"] if i in ("A", "B")]
    assert order == ["A", "B"]
