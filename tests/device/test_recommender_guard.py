"""Guards of the Recommender facade (runtime/recommender.py) on the golden bundle: which engine is
chosen, what open() sets up and closes, what record/onboard/forget/add_items/remove_items store, the
exact refusals, and the request's defaults and counters."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import pytest

from edgerec.errors import BundleError, ConfigError, EdgerecError, HistoryError, UnknownIdError
from edgerec.runtime import Policy, Recommender, Stage
from edgerec.runtime import recommender as module


@pytest.fixture(scope="module")
def rec(golden_bundle, tmp_path_factory):
    with Recommender.open(golden_bundle, history=tmp_path_factory.mktemp("h") / "h.db") as opened:
        yield opened


@pytest.fixture
def fresh(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as opened:
        yield opened


def offering(*formats):
    return SimpleNamespace(manifest=SimpleNamespace(formats=lambda role: list(formats) if role == "user_encoder" else []))


# ------------------------------------------------------------------ engine and open


def test_auto_takes_the_first_installed_engine_the_bundle_has(monkeypatch):
    monkeypatch.setattr(module, "available_backends", lambda: ["onnx", "tflite"])
    assert Recommender._choose_backend(offering("tflite", "onnx"), "auto") == "onnx"
    assert Recommender._choose_backend(offering("tflite"), "auto") == "tflite"
    monkeypatch.setattr(module, "available_backends", lambda: ["tflite", "onnx"])
    assert Recommender._choose_backend(offering("onnx", "tflite"), "auto") == "tflite"
    monkeypatch.setattr(module, "available_backends", lambda: ["tflite"])
    with pytest.raises(ConfigError) as caught:
        Recommender._choose_backend(offering("onnx", "coreml"), "auto")
    assert str(caught.value) == ("no inference engine for this bundle's formats (onnx, coreml); install onnxruntime "
                                 "or ai-edge-litert")


def test_a_named_engine_must_be_one_the_bundle_has():
    assert Recommender._choose_backend(offering("onnx", "tflite"), "tflite") == "tflite"
    with pytest.raises(ConfigError) as caught:
        Recommender._choose_backend(offering("onnx", "coreml"), "tflite")
    assert str(caught.value) == "the bundle has no tflite user encoder (it has onnx, coreml)"
    with pytest.raises(ConfigError) as caught:
        Recommender._choose_backend(offering(), "auto")
    assert str(caught.value) == "the bundle has no user encoder; re-export it with `edgerec export`"


def test_open_sets_the_bundles_defaults_and_the_cache_folder(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h" / "h.db", backend="tflite", threads=2) as rec:
        assert rec.backend_name == "tflite" and rec.models.threads == 2
        assert rec.models.cache_dir == tmp_path / "h"  # next to the history
        assert rec.default_k == 5 and rec.policy.short_list == 20 and rec.policy.diversity == 0.0
        assert rec.update is None and rec.stats()["update"] is None
        assert len(rec.recommend("u")) == 5
    with Recommender.open(golden_bundle, history=tmp_path / "h" / "h.db", cache_dir=tmp_path / "c") as rec:
        assert rec.models.cache_dir == tmp_path / "c" and rec.backend_name == "onnx"
    with Recommender.open(golden_bundle) as rec:
        assert rec.models.cache_dir is None and rec.history.count() == 0


def test_open_hands_the_history_settings_to_the_store(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "p.db", profile_secret=b"s" * 32,
                          retention=module.Retention(max_events=2)) as rec:
        for item in ("i01", "i02", "i03"):
            rec.record("ann", item)
        assert rec.history.profiles() != ["ann"] and len(rec.history.profiles()) == 1  # a keyed hash
        assert [e.item for e in rec.history.events("ann")] == ["i02", "i03"]  # the newest two kept


def test_verify_false_skips_the_file_checks(bundle_copy):
    path = bundle_copy / "items" / "popularity.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # same size: only the checksum can tell
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        Recommender.open(bundle_copy)
    with Recommender.open(bundle_copy, verify=False) as rec:
        assert rec.recommend("u", k=2)


def test_a_bundle_without_k_in_its_defaults_answers_ten(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle) as rec:
        rec.manifest.defaults.pop("k")
        again = Recommender(rec.bundle, rec.history, "onnx", 1, None, "auto", None)
        assert again.default_k == 10


def test_an_unknown_ann_is_refused_by_name(golden_bundle):
    for ann in ("faiss", "USEARCH", 1):
        with pytest.raises(ConfigError) as caught:
            Recommender.open(golden_bundle, ann=ann)
        assert str(caught.value) == f"unknown ann {ann!r}; use None (exact) or 'usearch'"


def test_a_failing_open_closes_the_history_it_opened(golden_bundle, monkeypatch):
    opened = []
    real = module.open_history

    def recording(*args, **kwargs):
        opened.append(real(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(module, "open_history", recording)
    with pytest.raises(ConfigError):
        Recommender.open(golden_bundle, stages=[("no-such-stage", Stage("mine", lambda request: request))])
    with pytest.raises(Exception, match="closed"):
        opened[0].count()


def test_app_stages_are_inserted_after_the_stage_named(golden_bundle):
    seen = []
    mine = Stage("mine", lambda request: seen.append(1) or request)
    with Recommender.open(golden_bundle, stages=[("policies", mine)]) as rec:
        rec.recommend("u", k=2)
    assert seen == [1]


def test_close_and_the_with_block_close_the_history(golden_bundle):
    rec = Recommender.open(golden_bundle)
    with rec as entered:
        assert entered is rec
    with pytest.raises(Exception, match="closed"):
        rec.history.count()
    other = Recommender.open(golden_bundle)
    other.close()
    with pytest.raises(Exception, match="closed"):
        other.history.count()


# ------------------------------------------------------------------ events


def test_record_stores_the_event_as_given_and_returns_its_id(fresh):
    when = round(time.time()) - 60
    first = fresh.record("ann", "i03", "finish", value=0.5, timestamp=when, context={"device": "tv"})
    second = fresh.record("ann", "i04")
    assert second > first > 0
    events = fresh.export_history("ann")["events"]
    assert [(e["item"], e["event"]) for e in events] == [("i03", "finish"), ("i04", "play")]
    assert events[0]["value"] == 0.5 and events[0]["ts"] == when


@pytest.mark.parametrize("event", ["watched", 5, None, ["play"]])
def test_an_unknown_event_is_refused_with_the_known_ones(fresh, event):
    with pytest.raises(ConfigError) as caught:
        fresh.record("ann", "i03", event)
    assert str(caught.value).startswith(f"unknown event {event!r}; use one of play, finish, skip, ")
    assert fresh.history.count() == 0


def test_an_unknown_item_is_refused_and_nothing_stored(fresh):
    with pytest.raises(UnknownIdError):
        fresh.record("ann", "no-such-item")
    assert fresh.history.count() == 0


def test_onboarding_stores_each_choice_kind_and_likes_the_items(fresh):
    fresh.onboard("new", genres=["jazz", "rock"], tags=["anything-free"], languages=["en"], items=["i05", "i06"])
    assert fresh.history.preferences("new") == {"genre": ["jazz", "rock"], "language": ["en"], "tag": ["anything-free"]}
    assert [(e.item, e.event) for e in fresh.history.events("new")] == [("i05", "more_like_this"),
                                                                      ("i06", "more_like_this")]
    fresh.onboard("new", genres=["latin"])  # an empty kind leaves that kind's earlier choices alone
    assert fresh.history.preferences("new") == {"genre": ["latin"], "language": ["en"], "tag": ["anything-free"]}


@pytest.mark.parametrize(("choices", "error"), [
    ({"genres": ["jazz", "polka"]}, ConfigError), ({"languages": ["xx"]}, ConfigError),
    ({"genres": ["jazz"], "items": ["i01", "no-such-item"]}, UnknownIdError),
])
def test_onboarding_checks_everything_before_storing_anything(fresh, choices, error):
    with pytest.raises(error):
        fresh.onboard("new", **choices)
    assert fresh.history.preferences("new") == {} and fresh.history.count() == 0


def test_forget_returns_the_events_removed_and_drops_the_users_cached_state(fresh):
    fresh.record("ann", "i03", "finish")
    fresh.record("ann", "i04", "finish")
    fresh.recommend("ann")
    assert fresh.users.get("ann") is not None
    assert fresh.forget("ann") == 2 and fresh.users.get("ann") is None and fresh.history.count() == 0


def test_forget_drops_the_cached_state_even_when_the_erase_fails(fresh, monkeypatch):
    fresh.record("ann", "i03", "finish")
    fresh.recommend("ann")

    def failing(user):
        raise HistoryError("disk gone")

    monkeypatch.setattr(fresh.history, "forget", failing)
    with pytest.raises(HistoryError):
        fresh.forget("ann")
    assert fresh.users.get("ann") is None


# ------------------------------------------------------------------ catalog updates


@pytest.mark.parametrize(("items", "got"), [("i01", "str"), ({"item_id": "x"}, "dict"), (b"x", "bytes"),
                                            (None, "NoneType"), (5, "int")])
def test_add_items_wants_a_list_of_dicts(rec, items, got):
    with pytest.raises(ConfigError) as caught:
        rec.add_items(items)
    assert str(caught.value) == f"add_items() takes a list of dicts, one per item (got {got})"
    if got != "dict":
        with pytest.raises(ConfigError) as caught:
            rec.add_items([items])
        assert str(caught.value) == f"each added item must be a dict with an 'item_id' (got {got})"


def test_an_item_twice_in_one_batch_is_refused(rec):
    with pytest.raises(ConfigError, match=r"^add_items\(\) got the same item_id twice in one batch; pass each item "
                                          r"once$"):
        rec.add_items([{"item_id": "twice", "genre": "jazz"}, {"item_id": "twice", "genre": "rock"}])
    with pytest.raises(UnknownIdError):
        rec.catalog.row("twice")


def test_added_items_are_stored_and_served_with_their_metadata(fresh):
    vector = [3.0, 4.0, 0, 0, 0, 0, 0, 0]
    assert fresh.update_items([{"item_id": "a1", "vector": vector, "genre": "", "duration": 30, "tags": ["t"]},
                               {"item_id": "a2", "genre": "jazz", "creator": "Leo Park"}]) == ["a1", "a2"]
    saved = {item: (np.frombuffer(blob, np.float32), meta, removed) for item, blob, meta, removed in
             fresh.history.saved_items(fresh.manifest.embedding_space)}
    np.testing.assert_allclose(saved["a1"][0], [0.6, 0.8, 0, 0, 0, 0, 0, 0], rtol=1e-6)  # unit length
    assert saved["a1"][1] == {"title": "a1", "tags": ["t"], "genre": "", "duration": 30.0, "vector_source": "given"}
    assert saved["a2"][1]["vector_source"] != "given" and saved["a2"][1]["title"] == "a2"
    assert saved["a2"][1]["tags"] == [] and not saved["a1"][2]
    assert math.isclose(float(np.linalg.norm(saved["a2"][0])), 1.0, rel_tol=1e-5)
    row = fresh.catalog.row("a1")
    assert fresh.catalog.meta(row)["title"] == "a1" and fresh.catalog.vectors([row]).dtype == np.float32
    np.testing.assert_allclose(fresh.catalog.vectors([row])[0], [0.6, 0.8, 0, 0, 0, 0, 0, 0], rtol=1e-6)
    assert fresh.stats()["added_items"] == 2 and fresh.stats()["items"] == 58


@pytest.mark.parametrize(("vector", "message"), [
    ([1.0] * 7, "item 'v' : vector has 7 values, the bundle's space has 8"),
    ([[1.0] * 4] * 2, "item 'v' : vector must be a flat list of 8 numbers; one entry is list [1.0, 1.0, 1.0, 1.0]"),
    ([1.0] * 7 + [math.nan], "item 'v' : vector holds NaN or infinite values"),
    ([1.0] * 7 + [1e39], "item 'v' : vector holds NaN or infinite values"),  # inf as float32
    ([0.0] * 8, "item 'v' : vector is all zeros"),
    (["a"] * 8, "item 'v' : vector must be a flat list of 8 numbers; one entry is str 'a'"),
    ([1, [2]], "item 'v' : vector must be a flat list of 8 numbers; one entry is list [2]"),
])
def test_a_given_vector_is_checked(fresh, vector, message):
    if message is None:
        assert fresh.add_items([{"item_id": "v", "vector": vector}]) == ["v"]
        return
    with pytest.raises(ConfigError) as caught:
        fresh.add_items([{"item_id": "v", "vector": vector}])
    assert str(caught.value) == message.replace("'v' :", "'v':")


def test_added_metadata_is_checked_field_by_field(rec):
    for spec, message in [
        ({"item_id": "m", "title": 5}, "item 'm': title must be a string"),
        ({"item_id": "m", "tags": "jazz"}, "item 'm': tags must be a list of strings"),
        ({"item_id": "m", "duration": "long"}, "item 'm': duration must be a number"),
        ({"item_id": "m", "genre": 5}, "item 'm': genre must be a string"),
        ({"item_id": 5}, "an added item's 'item_id' must be a string"),
    ]:
        with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(")):
            rec.add_items([spec])
    assert rec.add_items([{"item_id": "m", "genre": "jazz", "language": None, "duration": None}]) == ["m"]


def test_removed_items_are_stored_with_an_added_items_metadata_only(fresh):
    fresh.add_items([{"item_id": "a1", "genre": "jazz", "vector": [1.0] + [0.0] * 7}])
    fresh.remove_items(["a1", "i02", "i02"])
    saved = {item: (blob, meta, removed) for item, blob, meta, removed in
             fresh.history.saved_items(fresh.manifest.embedding_space)}
    assert saved["a1"][0] is None and saved["a1"][2] and saved["a1"][1]["genre"] == "jazz"
    assert saved["i02"] == (None, {}, True)
    assert not fresh.catalog.is_active(fresh.catalog.base_count) and not fresh.catalog.is_active(2)
    assert fresh.stats()["removed_items"] == 2  # a bundle item and an added one


def test_tag_needs_a_content_encoder(rec):
    with pytest.raises(ConfigError) as caught:
        rec.tag("some text")
    assert str(caught.value) == "this bundle has no content encoder; export it with `edgerec export --content`"


# ------------------------------------------------------------------ requests


def test_a_request_counts_itself_and_its_errors(fresh):
    fresh.recommend("u", k=3)
    with pytest.raises(EdgerecError):
        fresh.recommend("u", k=3, context={"hour": 25})  # refused before the request: not counted
    assert fresh.stats()["counters"]["requests"] == 1

    def broken(request):
        raise ConfigError("the app's stage failed")

    fresh.pipeline.insert_after("policies", Stage("broken", broken))
    with pytest.raises(ConfigError, match="the app's stage failed"):
        fresh.recommend("u", k=3)
    counters = fresh.stats()["counters"]
    assert counters["requests"] == 2 and counters["errors"] == 1


def test_a_policy_with_unset_fields_gets_the_bundles_defaults(fresh):
    seen = []
    fresh.pipeline.insert_after("policies", Stage("seen", lambda request: seen.append(request.policy) or request))
    fresh.recommend("u", policy=Policy(diversity=0.5))
    fresh.policy = Policy()  # an app's own unresolved policy on the recommender
    fresh.recommend("u")
    assert (seen[0].short_list, seen[0].diversity) == (20, 0.5)
    assert (seen[1].short_list, seen[1].diversity) == (20, 0.0)


def test_a_policy_changed_after_it_was_made_is_checked_again(fresh):
    policy = Policy(diversity=0.3)
    policy.diversity = 7.0
    with pytest.raises(ConfigError, match="diversity"):
        fresh.recommend("u", policy=policy)


def test_stats_report_the_bundle_and_the_history(fresh):
    for item in ("i01", "i02", "i03", "i04", "i05"):
        fresh.record("ann", item)
    fresh.record("bob", "i02")
    fresh.recommend("ann", k=3)
    stats = fresh.stats()
    assert (stats["bundle"], stats["backend"], stats["items"], stats["profiles"], stats["events"]) == (
        "golden", "onnx", 56, 2, 6)
    assert stats["embedding_space"] == fresh.manifest.embedding_space and stats["removed_items"] == 0
    assert stats["drift"]["window"] == 1 and stats["kernel"] is not None
    (top,) = fresh.monitor.score_window()  # the model's best scores of that request, for drift
    assert len(top) == 2 and all(math.isfinite(x) for x in top)


def test_a_removal_batch_the_history_cannot_store_removes_nothing(fresh, monkeypatch):
    """Was: each id left the catalog, then was stored alone; a failure on the second id left the first
    stored as removed and the second gone from this catalog only (back again at the next open)."""
    fresh.add_items([{"item_id": "a1", "genre": "jazz", "vector": [1.0] + [0.0] * 7}])
    real = fresh.history.save_items

    def failing_on_i03(rows):
        if any(row[0] == "i03" for row in rows):
            raise HistoryError("the disk is full")
        real(rows)

    monkeypatch.setattr(fresh.history, "save_items", failing_on_i03)
    with pytest.raises(HistoryError):
        fresh.remove_items(["i02", "a1", "i03"])
    assert all(fresh.catalog.is_active(fresh.catalog.row(item)) for item in ("i02", "a1", "i03"))
    assert not any(removed for *_, removed in fresh.history.saved_items(fresh.manifest.embedding_space))


def test_a_filter_that_could_only_empty_the_list_by_mistake_is_refused(fresh):
    from edgerec.runtime import Filters

    with pytest.raises(ConfigError, match="Jazz"):
        fresh.recommend("u", filters=Filters(genres=["Jazz"]))  # the catalog's value is 'jazz'
    assert fresh.recommend("u", k=3, filters=Filters(genres=["jazz"]))
    filters = Filters(genres=["jazz"])
    filters.genres = "jazz"  # changed after it was made
    with pytest.raises(ConfigError, match="list of strings"):
        fresh.recommend("u", filters=filters)


# ------------------------------------------------------------------ more of open, found by mutation


def test_an_update_serves_when_it_verifies_and_the_fallback_when_it_does_not(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, fallback=golden_bundle, backend="tflite") as rec:
        assert rec.update.to_dict() == {"accepted": True, "serving": "golden", "rejected": None, "reason": None}
        assert rec.backend_name == "tflite" and rec.stats()["update"]["accepted"] is True
    with Recommender.open(tmp_path / "no-bundle", fallback=golden_bundle, backend="tflite") as rec:
        assert rec.update.accepted is False and rec.update.rejected == "no-bundle"
        assert rec.backend_name == "tflite" and len(rec.recommend("u")) == 5


def test_open_passes_its_settings_on(golden_bundle, tmp_path, monkeypatch, usearch):
    seen = {}
    real_open, real_history = module.Bundle.open, module.open_history
    monkeypatch.setattr(module.Bundle, "open", lambda *a, **kw: seen.update(bundle=kw) or real_open(*a, **kw))
    monkeypatch.setattr(module, "open_history", lambda *a, **kw: seen.update(history=(a, kw)) or real_history(*a, **kw))
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", ann="usearch") as rec:
        assert rec.ann_kind == "usearch" and rec.models.threads == 1  # the default
    assert seen["bundle"] == {"verify": True, "spare": tmp_path}  # a read-only packed bundle is unpacked there
    assert seen["history"] == ((tmp_path / "h.db",), {"key": None, "profile_secret": None, "retention": None})
    secret = b"k" * 32
    with Recommender.open(golden_bundle, key=None, profile_secret=secret):
        assert seen["history"] == ((":memory:",), {"key": None, "profile_secret": secret, "retention": None})
    monkeypatch.setattr(module, "open_history", lambda *a, **kw: seen.update(history=(a, kw)) or real_history(*a))
    with Recommender.open(golden_bundle, key=secret):  # (the store opened here is a plain one)
        assert seen["history"][1]["key"] == secret
    real_update = module.open_update
    monkeypatch.setattr(module, "open_update", lambda *a: seen.update(update=a) or real_update(*a))
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", fallback=golden_bundle):
        assert seen["update"][:2] == (golden_bundle, golden_bundle) and seen["update"][3] == tmp_path


def test_the_history_file_keeps_the_events_between_opens(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as rec:
        rec.record("ann", "i01")
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as rec:
        assert rec.history.count() == 1


def test_threads_are_between_1_and_1024(golden_bundle):
    with Recommender.open(golden_bundle, threads=1024) as rec:
        assert rec.models.threads == 1024
    with pytest.raises(ConfigError, match="threads"):
        Recommender.open(golden_bundle, threads=1025)


# ------------------------------------------------------------------ argument labels and limits


def test_each_refusal_names_the_argument(rec):
    for call, message in [
        (lambda: rec.record("u", 5), "item must be a string"),
        (lambda: rec.forget(5), "user must be a string"),
        (lambda: rec.recommend("u", policy="diverse"), "policy must be a Policy"),
        (lambda: rec.recommend("u", k=10_001), "k must be"),
        (lambda: rec.recommend("u", k=0), "k must be"),
        (lambda: rec.add_items([{"item_id": "m", "genre": "jazz", "x": object()}]), "item 'm': metadata"),
        (lambda: rec.add_items([{"item_id": "m", "genre": "jazz", "tags": None}]), "item 'm': tags must be a list"),
        (lambda: rec.add_items([{"item_id": "m", "genre": "jazz", "title": "t" * 1001}]), "item 'm': title"),
        (lambda: rec.add_items([{"item_id": "m", "vector": [1.0] * 8, "creator": "c" * 1001}]), "item 'm': creator"),
    ]:
        with pytest.raises(ConfigError, match="^" + message):
            call()


def test_the_longest_accepted_values(rec):
    assert len(rec.recommend("u", k=1)) == 1 and len(rec.recommend("u", k=10_000)) == len(rec.catalog)
    assert rec.add_items([{"item_id": "long", "vector": [1.0] * 8, "title": "t" * 1000, "creator": "c" * 1000,
                           "hubness": 0.5, "episode": 3}]) == ["long"]
    assert rec.catalog.meta(rec.catalog.row("long"))["title"] == "t" * 1000


def test_a_request_is_timed_as_a_whole(fresh):
    fresh.recommend("u", k=2)
    assert fresh.stats()["stages"]["total"]["count"] == 1


def test_a_column_without_a_range_takes_any_finite_number(fresh, monkeypatch):
    monkeypatch.setitem(fresh.catalog.numeric, "custom", np.zeros(fresh.catalog.base_count, np.float32))
    assert fresh.add_items([{"item_id": "c1", "vector": [1.0] * 8, "custom": -1e9}]) == ["c1"]



def test_the_event_is_checked_before_the_item(rec):
    with pytest.raises(ConfigError, match="^unknown event 'watched'"):
        rec.record("ann", "no-such-item", "watched")


def test_an_update_its_ranker_or_scorer_checks_refuse_falls_back_to_the_previous_bundle(bundle_copy, golden_bundle):
    """The ranker's and scorer's checks ran once the update had been chosen: their BundleError reached the app,
    which was left with no recommender instead of the previous bundle."""
    from bundle_edit import rewrite

    def other_ranker(m):
        encoder = next(e for e in m["models"] if e["role"] == "user_encoder")
        m["models"].append({**encoder, "role": "ranker", "extra": {"features_version": 2}})

    rewrite(bundle_copy, other_ranker)
    with Recommender.open(bundle_copy, fallback=golden_bundle) as rec:
        assert not rec.update.accepted and "ranker features version 2" in rec.update.reason
        assert rec.recommend("u", k=3)


def test_stats_count_removed_added_items_as_removed(fresh):
    fresh.add_items([{"item_id": "d1", "title": "D", "vector": fresh.catalog.vectors([3])[0].tolist()}])
    fresh.remove_items(["d1", fresh.catalog.item_id(5)])
    stats = fresh.stats()
    assert (stats["added_items"], stats["removed_items"]) == (0, 2)
