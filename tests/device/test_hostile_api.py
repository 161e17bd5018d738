"""Hostile API arguments: every public call either works or raises one EdgerecError subclass that
says what to pass; never a raw TypeError/ValueError/..., never a silently wrong result."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgerec.errors import ConfigError, EdgerecError, UnknownIdError
from edgerec.runtime import Filters, Policy, Recommender
from edgerec.runtime.checks import MAX_ID

ANY = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), st.binary(max_size=10),
    st.sampled_from(["", "jazz", "\ud800", "a\x00b", "x" * 300, "tv", "en", float("nan"), 1e300, -1, 0, 10**20]),
    st.lists(st.one_of(st.text(max_size=5), st.integers(), st.none()), max_size=4),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.floats(), st.text(max_size=5)), max_size=3),
    st.tuples(st.integers()), st.sets(st.text(max_size=3), max_size=3), st.just(object()),
    st.sampled_from([np.array(3), np.array("en"), np.array(["en"]), np.array(["en", "cap"]), np.float64("nan"), np.int64(-1), np.float32(1e30),
                     np.bool_(True)]),  # numpy scalars and arrays: a 0-d array is iterable by type only
)


@pytest.fixture(scope="module")
def rec(golden_bundle, tmp_path_factory):
    with Recommender.open(golden_bundle, history=tmp_path_factory.mktemp("h") / "h.db") as opened:
        yield opened


def calls(rec, x):
    """One public call per argument, with `x` there and valid values everywhere else."""
    item = rec.catalog.item_id(0)
    return {
        "record.user": lambda: rec.record(x, item, "play"),
        "record.item": lambda: rec.record("u", x, "play"),
        "record.event": lambda: rec.record("u", item, x),
        "record.value": lambda: rec.record("u", item, "play", value=x),
        "record.timestamp": lambda: rec.record("u", item, "play", timestamp=x),
        "record.context": lambda: rec.record("u", item, "play", context=x),
        "recommend.user": lambda: rec.recommend(x),
        "recommend.k": lambda: rec.recommend("u", k=x),
        "recommend.context": lambda: rec.recommend("u", context=x),
        "recommend.context.now": lambda: rec.recommend("u", context={"now": x}),
        "recommend.context.hour": lambda: rec.recommend("u", context={"hour": x}),
        "recommend.context.device": lambda: rec.recommend("u", context={"device": x}),
        "recommend.filters": lambda: rec.recommend("u", filters=x),
        "recommend.policy": lambda: rec.recommend("u", policy=x),
        "onboard.user": lambda: rec.onboard(x, genres=["jazz"]),
        "onboard.genres": lambda: rec.onboard("v", genres=x),
        "onboard.tags": lambda: rec.onboard("v", tags=x),
        "onboard.items": lambda: rec.onboard("v", items=x),
        "add_items": lambda: rec.add_items(x),
        "add_items.item": lambda: rec.add_items([x]),
        "add_items.item_id": lambda: rec.add_items([{"item_id": x, "genre": "jazz"}]),
        **{f"add_items.{key}": (lambda key=key: rec.add_items([{"item_id": "new-1", "genre": "jazz", key: x}]))
           for key in ("title", "tags", "vector", "genre", "duration", "language", "creator", "popularity")},
        "remove_items": lambda: rec.remove_items(x),
        "forget": lambda: rec.forget(x),
        "export_history": lambda: rec.export_history(x),
        "history.events.limit": lambda: rec.history.events("u", limit=x),
        "history.count": lambda: rec.history.count(x),
        "history.preferences": lambda: rec.history.preferences(x),
        **{f"Filters.{f}": (lambda f=f: Filters(**{f: x})) for f in Filters.__dataclass_fields__},
        **{f"Policy.{f}": (lambda f=f: Policy(**{f: x})) for f in Policy.__dataclass_fields__},
    }


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=ANY)
def test_any_argument_gives_a_result_or_an_edgerec_error(rec, x):
    for name, call in calls(rec, x).items():  # every argument of every public call gets this value
        try:
            call()
        except EdgerecError as exc:
            assert str(exc), name  # a message, always
        except Exception as exc:
            raise AssertionError(f"{name}({x!r}) raised {type(exc).__name__}: {exc}") from exc
    results = rec.recommend("u", k=5)  # nothing that went in broke the next request
    assert 0 < len(results) <= 5 and all(math.isfinite(r.score) for r in results)


@pytest.mark.parametrize("call", [
    lambda rec: Filters(languages="en"), lambda rec: Filters(genres="jazz"),
    lambda rec: rec.onboard("w", genres="jazz"), lambda rec: rec.onboard("w", tags="jazz"),
    lambda rec: rec.add_items([{"item_id": "n2", "tags": "jazz"}]), lambda rec: rec.remove_items("abc"),
])
def test_a_single_string_for_a_list_is_refused_not_split(rec, call):
    with pytest.raises(ConfigError, match="list of strings"):
        call(rec)


@pytest.mark.parametrize(("call", "message"), [
    (lambda rec: rec.record(5, rec.catalog.item_id(0)), "user must be a string"),
    (lambda rec: rec.recommend(None), "user must be a string"),
    (lambda rec: rec.recommend("u", k=True), "k must be an integer"),
    (lambda rec: rec.recommend("u", context=[("now", 1)]), "context must be a dict"),
    (lambda rec: rec.recommend("u", context={"now": math.nan}), "finite"),
    (lambda rec: rec.recommend("u", context={"now": "yesterday"}), "must be a number"),
    (lambda rec: rec.recommend("u", context={"hour": 25}), "hour"),
    (lambda rec: rec.recommend("u", filters={"languages": ["en"]}), "filters must be a Filters"),
    (lambda rec: rec.record("u" * (MAX_ID + 1), rec.catalog.item_id(0)), "limit is 256"),
    (lambda rec: rec.record("\ud800", rec.catalog.item_id(0)), "lone surrogate"),
    (lambda rec: rec.record("u", rec.catalog.item_id(0), context={"x": object()}), "JSON"),
    (lambda rec: rec.record("u", rec.catalog.item_id(0), timestamp=math.inf), "finite"),
    (lambda rec: rec.add_items([{"item_id": "n3", "note": "x" * 100_000}]), "bytes as JSON"),
    (lambda rec: rec.add_items([{"item_id": "n4", "popularity": -5}]), "popularity must be a finite number from 0"),
    (lambda rec: rec.add_items([{"item_id": "n5", "popularity": 1e300}]), "popularity"),  # was inf as float32
    (lambda rec: rec.add_items([{"item_id": "n6", "duration": -120}]), "duration"),
    (lambda rec: Policy(diversity=math.nan), "Policy.diversity"),
    (lambda rec: Policy(freshness_days=0), "Policy.freshness_days"),
    (lambda rec: Filters(max_duration_s=-5), "Filters.max_duration_s"),
])
def test_each_known_bad_argument_names_what_to_pass(rec, call, message):
    with pytest.raises(EdgerecError, match=message):
        call(rec)


def test_valid_arguments_still_work(rec):
    item = rec.catalog.item_id(1)
    recent = time.time() - 60  # an explicit time retention keeps (reads drop what it would remove)
    assert rec.record("ok-user", item, "finish", value=0.5, timestamp=recent, context={"device": "tv"}) > 0
    rec.onboard("ok-new", genres=["jazz"], tags=("chill",), languages={"en"}, items=[item])
    assert rec.history.preferences("ok-new")["genre"] == ["jazz"]
    out = rec.recommend("ok-user", k=np.int64(3), context={"now": 1.7e9, "hour": 20, "device": "tv"},
                        filters=Filters(languages=["en", "hi", "ja", "ko"]), policy=Policy(diversity=0.5))
    assert len(out) == 3 and item not in {r.item_id for r in out}
    assert rec.add_items([{"item_id": "ok-added", "genre": "jazz", "tags": ["x"], "duration": 30}]) == ["ok-added"]
    assert rec.export_history("ok-user")["events"][0]["item"] == item


def test_a_failing_add_items_batch_adds_nothing(rec):
    before = len(rec.catalog)
    with pytest.raises(ConfigError):
        rec.add_items([{"item_id": "batch-ok", "genre": "jazz"}, {"item_id": "batch-bad", "vector": [math.nan] * 8}])
    assert len(rec.catalog) == before
    with pytest.raises(UnknownIdError):
        rec.catalog.row("batch-ok")
    assert "batch-ok" not in {r[0] for r in rec.history.saved_items(rec.manifest.embedding_space)}
    with pytest.raises(UnknownIdError):
        rec.remove_items([rec.catalog.item_id(2), "no-such-item"])
    assert rec.catalog.is_active(2)  # the known id before the unknown one was not removed either
    rec.remove_items([rec.catalog.item_id(2), rec.catalog.item_id(2)])  # named twice: removed once, no error
    assert not rec.catalog.is_active(2)  # (was UnknownIdError after the first removal had been stored)


def test_add_items_racing_recommend_in_threads_raises_nothing(rec):
    errors: list[BaseException] = []
    stop = threading.Event()

    def read():
        while not stop.is_set():
            try:
                assert rec.recommend("u", k=5)
            except BaseException as exc:  # noqa: BLE001  (the test collects whatever escapes)
                errors.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    rng = np.random.default_rng(0)
    for i in range(60):
        rec.add_items([{"item_id": f"race-{i}-{j}", "vector": rng.normal(size=8).tolist()} for j in range(3)])
        if i % 3 == 0:
            rec.remove_items([f"race-{i}-0"])
    stop.set()
    for thread in readers:
        thread.join()
    assert errors == []


@pytest.mark.parametrize(("arguments", "message"), [
    ({"threads": True}, "threads must be an integer"), ({"threads": 1.5}, "threads must be an integer"),
    ({"threads": "2"}, "threads must be an integer"), ({"threads": None}, "threads must be an integer"),
    ({"threads": 0}, "threads must be a positive integer"),
    ({"bundle": None}, "bundle must be a path"), ({"bundle": b"bundle"}, "bundle must be a path"),
    ({"bundle": 5}, "bundle must be a path"), ({"bundle": ""}, "bundle must be a path"),
    ({"history": 5}, "history must be a path"), ({"history": b"h.db"}, "history must be a path"),
    ({"cache_dir": 5}, "cache_dir must be a path"), ({"fallback": b"old"}, "fallback must be a path"),
    ({"kernel": "gpu"}, "kernel must be one of auto, native"), ({"kernel": None}, "kernel must be one of"),
    ({"backend": np.array(["onnx", "tflite"])}, "backend must be one of"), ({"verify": "no"}, "verify must be True"),
    ({"stages": None}, "stages must be a list"), ({"stages": [("encode",)]}, "stages must be a list of"),
    ({"ann": np.array(["usearch", "x"])}, "unknown ann"),
])
def test_open_refuses_wrong_argument_types_with_a_config_error(golden_bundle, tmp_path, arguments, message):
    """These were raw TypeErrors (or, for the kernel, an error at the first request that scans)."""
    with pytest.raises(ConfigError, match=message):
        Recommender.open(**{"bundle": golden_bundle, **arguments})
    assert list(tmp_path.iterdir()) == []


def test_open_takes_paths_as_str_or_pathlib(golden_bundle, tmp_path):
    with Recommender.open(str(golden_bundle), history=str(tmp_path / "h.db"), threads=np.int64(2),
                          kernel="numpy", cache_dir=tmp_path) as rec:
        assert rec.recommend("u", k=2)
