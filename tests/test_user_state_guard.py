"""The user's state stage by hand: which events count as what, the newest-n fields, the windows' edges,
the per-user cache's bounds and when a state is reused, appended to or read anew (mutation guard)."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from edgerec.runtime import user_state as us
from edgerec.runtime.history import HistoryStore, Retention
from edgerec.runtime.request import Request, UserState

# play 0, finish 1, skip 2, like 3, not_interested 4, more_like_this 5 (vocab.DEVICE_EVENTS)
PLAY, FINISH, SKIP, LIKE, NOT_INTERESTED, MORE = range(6)


class Index:
    def __init__(self, rows: dict):
        self.rows = rows

    def get_many(self, ids):
        return [self.rows.get(i) for i in ids]


class Cat:
    """A catalog of `n` rows "i0".."i{n-1}" (plus "big" -> row n, outside it), a tag and a language each."""

    def __init__(self, n=60, version=1, tags=None, langs=None, languages=True):
        self.n, self.version = n, version
        self.index = Index({**{f"i{r}": r for r in range(n)}, "big": n})
        self.tags = tags or {}
        self.langs = langs or {}
        self.categorical = {"language": None} if languages else {}
        self.asked = []

    def __len__(self):
        return self.n

    def tag_counts(self, rows):
        self.asked.append(list(rows))
        return Counter(t for r in rows for t in self.tags.get(r, []))

    def column(self, name, rows):
        assert name == "language" and rows.dtype == np.int64
        return np.array([self.langs.get(r, "") for r in rows.tolist()], object)

    def encoder_inputs(self, rows):
        return np.array([r for r in rows if r < 50], np.int64)


def window(rows, codes, times=None, last=0):
    times = np.zeros(len(rows)) if times is None else np.array(times, np.float64)
    return us.Window(np.array(rows, np.int64), np.array(codes, np.int8), last, times)


# ------------------------------------------------------------------ event codes and folding

def test_the_code_tables_mark_exactly_the_named_events():
    assert us._code_table(["play"]).tolist() == [True, False, False, False, False, False, False]
    table = us._code_table(["finish", "more_like_this"])
    assert table.dtype == bool and table.tolist() == [False, True, False, False, False, True, False]
    assert us._CONSUMING.tolist() == [True, True, False, True, False, False, False]
    assert us._EXCLUDING.tolist() == [True] * 6 + [False]
    assert us._CONSUMING_CODES == {PLAY, FINISH, LIKE} and us._EXCLUDING_CODES == set(range(6))


def test_folding_by_hand_on_both_paths(monkeypatch):
    rows = [3, 3, -1, 7, 2, 9, 4, 7, 5, 8, 1]
    codes = [SKIP, PLAY, PLAY, FINISH, -1, MORE, NOT_INTERESTED, LIKE, LIKE, PLAY, FINISH]
    want = {"consumed": [3, 7, 5, 8, 1], "excluded": {3, 7, 9, 4, 5, 8, 1},
            "liked": [9], "disliked": [4], "loved": [7, 5], "finished": [7, 1]}
    assert us.fold_events(rows, codes) == want
    assert window(rows, codes).folded() == want
    monkeypatch.setattr(us, "SHORT_WINDOW", 0)  # the numpy path
    got = window(rows, codes).folded()
    assert got == want and all(type(r) is int for r in got["consumed"] + got["loved"])
    assert us.fold_events([], []) == window([], []).folded() == {
        "consumed": [], "excluded": set(), "liked": [], "disliked": [], "loved": [], "finished": []}


@pytest.mark.parametrize("short", [True, False])
def test_the_newest_fields_keep_5_20_5_5_rows(monkeypatch, short):
    rows, codes = [], []
    for code in (MORE, NOT_INTERESTED, LIKE, FINISH):
        rows += [100 * code + i for i in range(30)]
        codes += [code] * 30
    if not short:
        monkeypatch.setattr(us, "SHORT_WINDOW", 0)
    got = window(rows, codes).folded()
    assert got["liked"] == [525, 526, 527, 528, 529]
    assert got["disliked"] == list(range(410, 430))
    assert got["loved"] == [325, 326, 327, 328, 329] and got["finished"] == [125, 126, 127, 128, 129]
    assert got["consumed"] == list(range(300, 330)) + list(range(100, 130))  # like and finish consume
    assert us.fold_events(rows, codes) == got


def test_the_short_path_ends_at_short_window_events(monkeypatch):
    calls = []
    monkeypatch.setattr(us, "fold_events", lambda r, c: calls.append(len(r)) or {})
    window([1] * us.SHORT_WINDOW, [PLAY] * us.SHORT_WINDOW).folded()
    assert calls == [256] and us.SHORT_WINDOW == 256
    assert window([1] * 257, [PLAY] * 257).folded()["consumed"] == [1] and calls == [256]


# ------------------------------------------------------------------ windows

def test_a_window_extended_by_events_maps_ids_codes_and_times():
    cat = Cat(n=10)
    events = [(4, "i9", "play", 10.0), (5, "big", "finish", 11.5), (6, "gone", "skip", 12.0),
              (9, "i0", "rate", 13.0)]
    w = us.Window().extended(events, cat.index, len(cat), 100)
    assert w.rows.dtype == np.int64 and w.codes.dtype == np.int8 and w.times.dtype == np.float64
    assert w.rows.tolist() == [9, -1, -1, 0] and w.codes.tolist() == [PLAY, FINISH, SKIP, -1]
    assert w.times.tolist() == [10.0, 11.5, 12.0, 13.0] and w.last_id == 9
    assert w.extended([], cat.index, 10, 100) is w
    more = w.extended([(12, "i1", "like", 20.0), (13, "i2", "not_interested", 21.0)], cat.index, 10, 5)
    assert more.rows.tolist() == [-1, -1, 0, 1, 2] and more.codes.tolist() == [FINISH, SKIP, -1, LIKE, NOT_INTERESTED]
    assert more.times.tolist() == [11.5, 12.0, 13.0, 20.0, 21.0] and more.last_id == 13
    assert w.rows.tolist() == [9, -1, -1, 0]  # a copy: the cached window is left as it was
    assert w.extended([(14, "i3", "play", 1.0)], cat.index, 10, 4).rows.tolist() == [-1, -1, 0, 3]
    whole = us.Window().extended([(1, "i1", "play", 5)], cat.index, 10, 3)  # an integer time: float64 all the same
    assert whole.times.dtype == np.float64 and whole.times.tolist() == [5.0]
    assert w.extended([(14, "i3", "play", 1.0)], cat.index, 10, 6).rows.tolist() == [9, -1, -1, 0, 3]


def test_a_window_expires_when_an_event_is_older_than_the_cutoff():
    assert us.Window().expired(-1e18) is True  # empty: a newcomer's choices age by their own time, read again
    w = window([1, 2], [PLAY, PLAY], [50.0, 40.0])
    assert w.expired(40.0) is False and w.expired(40.5) is True and w.expired(39.0) is False


def test_the_window_size_is_the_history_window_within_retention(tmp_path):
    assert us.HISTORY_WINDOW == 2_000
    assert us.window_size(HistoryStore(tmp_path / "a.db")) == 2_000
    assert us.window_size(HistoryStore(tmp_path / "b.db", Retention(max_events=7))) == 7


# ------------------------------------------------------------------ the state

def test_the_state_reads_tags_and_languages_of_the_50_newest_consumed():
    rows = list(range(55))
    tags = {r: ["old"] if r < 5 else ["new"] for r in rows}
    langs = {r: "fr" if r < 5 else ("en" if r % 2 else "") for r in rows}
    cat = Cat(tags=tags, langs=langs)
    prefs = {"tag": ["new", "jazz"], "genre": ["drama"], "language": ["de"], "other": ["x"]}
    state = us.state_of(window(rows, [PLAY] * 55), cat, prefs)
    assert state.consumed == rows and cat.asked == [rows[5:]]
    assert state.tags == Counter({"new": 53, "jazz": 3, "drama": 3})
    assert state.languages == Counter({"en": 25, "de": 3})
    assert state.choices == prefs and state.choices["tag"] is not prefs["tag"]
    plain = us.state_of(window(rows, [PLAY] * 55), Cat(tags=tags, langs=langs, languages=False), {})
    assert plain.languages == Counter() and plain.tags == Counter({"new": 50})


def test_a_newcomer_state_holds_the_onboarding_choices_only():
    cat = Cat(langs={1: "en"})
    state = us.state_of(us.Window(), cat, {"language": ["en", "fr"], "genre": ["jazz"]})
    assert state == UserState([], set(), [], [], Counter({"jazz": 3}), Counter({"en": 3, "fr": 3}), [], [],
                              {"language": ["en", "fr"], "genre": ["jazz"]})


# ------------------------------------------------------------------ the per-user cache

def entry(key, n=0):
    return us.UserEntry(key, UserState([], set(), [], [], Counter(), Counter()),
                        window=window(list(range(n)), [PLAY] * n) if n is not None else None)


def test_the_cache_gives_an_entry_for_its_key_and_keeps_the_newest_users():
    cache = us.UserCache(size=2, window_events=100)
    assert (cache.size, cache.window_events) == (2, 100) and us.UserCache().size == 64
    assert us.UserCache().window_events == 100_000
    a = entry(("a",), 3)
    cache.put("a", a)
    assert cache.get("a") is a and cache.get("a", ("a",)) is a and cache.get("a", ("b",)) is None
    assert cache.get("nobody") is None and cache.window("a") == (("a",), a.window)
    cache.put("b", entry(("b",), 4))
    cache.get("a")  # a is now the newest: b goes first
    cache.put("c", entry(("c",), 5))
    assert cache.get("b") is None and cache.window("b")[0] == ("b",) and cache._window_total == 4
    cache.get("a", ("other",))  # a miss does not make a the newest
    cache.put("d", entry(("d",), 6))
    assert cache.get("a") is None and cache.get("c") is not None and cache._window_total == 7
    cache.get("c")
    cache.put("a", entry(("a2",), 1))  # back in the cache (its kept window goes), pushing d out
    assert cache.window("a")[0] == ("a2",) and cache.window("d")[0] == ("d",) and cache._window_total == 10
    cache.drop("b")
    cache.drop("c")
    assert cache.window("b") is None and cache.get("c") is None and cache._window_total == 6
    cache.drop("d")
    assert cache.window("d") is None and cache._window_total == 0


def test_the_kept_windows_are_bounded_in_events():
    cache = us.UserCache(size=1, window_events=10)
    cache.put("big", entry(("k",), 11))
    cache.put("none", entry(("k",), None))
    cache.put("ten", entry(("k",), 10))  # pushes out "none": no window to keep
    cache.put("x", entry(("k",), 2))  # pushes out "ten": exactly the bound, kept
    assert cache.window("big") is None and cache.window("none") is None
    assert cache.window("ten") is not None and cache._window_total == 10
    cache.put("y", entry(("k",), 0))  # "x" makes 12: the oldest kept window goes
    assert cache.window("ten") is None and cache.window("x") is not None and cache._window_total == 2
    held = entry(("k",), None)
    cache.put("z", held)
    assert cache.window("z") is None and cache.window("y") is None  # an empty window is not kept


# ------------------------------------------------------------------ the history stage

def request(cat, user="u"):
    return Request(user, 5, 0.0, 12.0, -1, None, None, cat)


@pytest.fixture
def store(tmp_path):
    with_clock = HistoryStore(tmp_path / "h.db", Retention(max_age_days=1.0))
    with_clock.clock = lambda: 100_000.0
    yield with_clock
    with_clock.close()


def test_the_history_stage_reads_appends_and_reuses(store):
    cat, cache = Cat(), us.UserCache()
    stage = us.HistoryStage(store, cache)
    assert stage.history is store and stage.cache is cache
    store.set_preferences("u", "tag", ["jazz"])
    first = stage(request(cat))
    assert first.state.consumed == [] and first.encoded is True and first.vector is None and not first.counts
    assert first.entry is cache.get("u") and first.state.tags == Counter({"jazz": 3})
    again = stage(request(cat))  # a newcomer (no event) is read again: their choices age by their own time
    assert again.counts == Counter() and again.state.tags == first.state.tags
    store.record("u", "i3", "play", ts=99_000.0)
    store.record("u", "i4", "skip", ts=99_100.0)
    grown = stage(request(cat))
    assert grown.counts == Counter() and grown.state.consumed == [3]  # read whole: the empty window is not extended
    assert grown.state.excluded == {3, 4} and grown.encoded is False and grown.entry.window.last_id == 2
    assert grown.state == us.read_state(store, cat, "u")
    grown.entry.vector = np.ones(2)
    unencoded = stage(request(cat))  # the encoder never ran for it: built again, from the kept window
    assert unencoded.counts == Counter({"user_state_appended": 1}) and unencoded.vector is None
    unencoded.entry.encoded, unencoded.entry.vector = True, np.ones(2)
    hit = stage(request(cat))
    assert hit.counts == Counter({"user_cache_hits": 1}) and hit.encoded is True and hit.vector.tolist() == [1, 1]


def test_a_catalog_change_or_another_writer_means_a_full_read(store, tmp_path):
    cat, cache = Cat(), us.UserCache()
    stage = us.HistoryStage(store, cache)
    store.record("u", "i1", "play", ts=99_000.0)
    stage(request(cat))
    for changed in (Cat(version=2), Cat(n=61)):  # another version, another size
        assert stage(request(changed)).counts == Counter()
        stage(request(cat))
    other = HistoryStore(store.path)
    other.clock = store.clock
    other.record("u", "i2", "play", ts=99_500.0)
    full = stage(request(cat))
    assert full.counts == Counter() and full.state.consumed == [1, 2]
    store.forget("u")
    assert stage(request(cat)).state.consumed == [] and cache.get("u").window.last_id == 0
    other.close()


def test_a_window_with_an_event_retention_no_longer_keeps_is_read_anew(store):
    cat = Cat()
    stage = us.HistoryStage(store, us.UserCache())
    store.record("u", "i1", "play", ts=50_000.0)
    store.record("u", "i2", "play", ts=90_000.0)
    first = stage(request(cat))
    first.entry.encoded = True
    assert stage(request(cat)).counts == Counter({"user_cache_hits": 1})
    store.clock = lambda: 50_000.0 + 86_400.0 + 1  # i1 ages out
    aged = stage(request(cat))
    assert aged.counts == Counter() and aged.state.consumed == [2]
    aged.entry.encoded = False
    store.clock = lambda: 90_000.0 + 86_400.0  # i2 is exactly at the cutoff: kept
    assert stage(request(cat)).counts == Counter({"user_state_appended": 1})


def test_a_user_pushed_out_is_appended_to_from_the_kept_window(store):
    cat, cache = Cat(), us.UserCache(size=1)
    stage = us.HistoryStage(store, cache)
    store.record("u", "i1", "play", ts=99_000.0)
    stage(request(cat))
    stage(request(cat, "v"))  # pushes u out; its window stays
    store.record("u", "i2", "finish", ts=99_500.0)
    back = stage(request(cat))
    assert back.counts == Counter({"user_state_appended": 1}) and back.state.consumed == [1, 2]
    assert back.state.finished == [2] and back.state == us.read_state(store, cat, "u")


# ------------------------------------------------------------------ the encode stage

class Encoder:
    def __init__(self, out):
        self.out, self.seen = out, []

    def encode(self, rows):
        self.seen.append([r.tolist() for r in rows])
        return np.array([self.out], np.float32)


class Models:
    def __init__(self, out):
        self.encoder = Encoder(out)
        self.manifest = SimpleNamespace(dim=len(out))


def encode_request(consumed, encoded=False):
    req = request(Cat())
    req.state = UserState(consumed, set(), [], [], Counter(), Counter())
    req.encoded, req.entry = encoded, entry(("k",), 0)
    return req


def test_the_encoder_runs_on_the_consumed_rows_and_fills_the_entry():
    models = Models([0.5, -1.0])
    stage = us.EncodeStage(models)
    assert stage.models is models
    req = encode_request([7, 60, 3])
    assert us.EncodeStage.applies(req) is True
    assert us.EncodeStage.applies(encode_request([7], encoded=True)) is False
    assert us.EncodeStage.applies(encode_request([])) is False
    done = stage(req)
    assert models.encoder.seen == [[[7, 3]]] and done.vector.tolist() == [0.5, -1.0] and done.encoded is True
    assert done.entry.vector is done.vector and done.entry.encoded is True


def test_items_without_model_input_give_no_vector_and_no_call():
    models = Models([1.0])
    done = us.EncodeStage(models)(encode_request([55, 60]))
    assert done.vector is None and done.encoded is True and done.entry.encoded is True
    assert done.entry.vector is None and models.encoder.seen == []


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_user_vector_is_refused_for_the_fallback(bad):
    req = encode_request([1])
    with pytest.raises(FloatingPointError) as err:
        us.EncodeStage(Models([0.0, bad]))(req)
    assert str(err.value) == "the user encoder returned NaN or infinite values"
    assert req.entry.encoded is False and req.entry.vector is None
    out = us.EncodeStage.fallback(req)
    assert out is req and out.vector is None and out.fallback == us.FALLBACK_TEXT
    assert us.FALLBACK_TEXT == "popular right now (your personal picks are unavailable at the moment)"
