"""The request path as stages: the runner, app stages at named points, and invariants of the default order."""

import threading
from collections import Counter

import numpy as np
import pytest
from handmade import NOW, ids, watch

from edgerec.errors import ConfigError, EdgerecError, StageError
from edgerec.runtime import Filters, Policy, Recommender, Request, Stage
from edgerec.runtime.monitor import Monitor
from edgerec.runtime.pipeline import Pipeline

pytestmark = pytest.mark.usefixtures("fixed_history_clock")  # events recorded at fixed times near 1.79e9

DEFAULT = ["history", "encode", "retrieve", "replay", "rank", "ranker", "scorer", "context", "policies", "fairness", "explain"]


def test_the_default_stages_and_their_timers(rec):
    assert rec.pipeline.names == DEFAULT
    watch(rec, "ann", range(5))
    rec.recommend("ann", k=5, context=NOW)
    stages = rec.stats()["stages"]
    for name in ("history", "encode", "retrieve", "rank", "policies", "explain", "total"):
        assert stages[name]["count"] == 1
    assert "ranker" not in stages  # the tiny bundle has no ranker: the stage does not apply, nor is it timed


def test_an_app_stage_that_filters_or_reorders_changes_the_list(rec):
    watch(rec, "bob", range(40, 46))
    plain = rec.recommend("bob", k=10, context=NOW)
    cat = rec.catalog

    def no_films(request: Request) -> Request:  # a business rule on the ordered list
        keep = cat.column("modality", request.pool[request.order]) != "film"
        request.order = request.order[keep]
        return request

    def reverse(request: Request) -> Request:  # a re-ranker
        request.order = request.order[::-1]
        return request

    rec.pipeline.insert_after("policies", Stage("no_films", no_films))
    filtered = rec.recommend("bob", k=10, context=NOW)
    assert filtered and all(r.meta["modality"] != "film" for r in filtered)
    assert ids(filtered) == [i for i in ids(plain) if rec.catalog.meta(rec.catalog.row(i))["modality"] != "film"]
    assert any(r.meta["modality"] == "film" for r in plain)  # the rule did remove something
    rec.pipeline.remove("no_films")
    rec.pipeline.insert_before("explain", Stage("reverse", reverse, required=False))
    assert ids(rec.recommend("bob", k=10, context=NOW)) == ids(plain)[::-1]
    assert rec.pipeline.names == DEFAULT[:-1] + ["reverse", "explain"]


def test_stages_given_to_open_run_at_their_point(tiny_bundle):
    seen = []

    def probe(request):
        seen.append(request.order is not None and request.results == [])
        return request

    rec = Recommender.open(tiny_bundle, stages=[("policies", Stage("probe", probe))])
    rec.recommend("newcomer", k=3, context=NOW)
    assert seen == [True]  # after policies ordered the list, before explain built the results


def test_a_failing_optional_stage_is_skipped_and_counted(rec):
    watch(rec, "cat", range(100, 106))
    plain = rec.recommend("cat", k=10, context=NOW)

    def broken(request):
        request.order = request.order[:2]  # a change made before failing must not survive
        raise RuntimeError("the rule's service is down")

    rec.pipeline.insert_after("policies", Stage("broken_rule", broken, required=False))
    assert ids(rec.recommend("cat", k=10, context=NOW)) == ids(plain)
    assert rec.stats()["counters"]["broken_rule_fallback"] == 1
    rec.pipeline.replace("broken_rule", Stage("broken_rule", lambda request: None, required=False))
    assert ids(rec.recommend("cat", k=10, context=NOW)) == ids(plain)  # not returning the request is a failure
    assert rec.stats()["counters"]["broken_rule_fallback"] == 2


def test_a_failing_check_of_an_optional_stage_skips_it_too(rec):
    def check(request):
        raise OSError("the rule's settings file is gone")

    rec.pipeline.insert_after("policies", Stage("rule", lambda r: r, required=False, applies=check))
    assert len(rec.recommend("newcomer", k=5, context=NOW)) == 5
    assert rec.stats()["counters"]["rule_fallback"] == 1 and "rule" not in rec.stats()["stages"]
    rec.pipeline.replace("rule", Stage("rule", lambda r: r, applies=check))
    with pytest.raises(StageError, match="OSError"):
        rec.recommend("newcomer", k=5, context=NOW)


def test_a_failing_required_stage_raises_an_edgerec_error(rec):
    rec.pipeline.insert_after("retrieve", Stage("strict", lambda request: 1 / 0))
    with pytest.raises(StageError, match="'strict' stage failed"):
        rec.recommend("dan", k=5, context=NOW)
    assert rec.stats()["counters"]["errors"] == 1


def test_pipeline_edits_are_checked(rec):
    with pytest.raises(ConfigError, match="no stage named 'ranking'"):
        rec.pipeline.insert_after("ranking", Stage("x", lambda r: r))
    with pytest.raises(ConfigError, match="exists already"):
        rec.pipeline.insert_after("rank", Stage("policies", lambda r: r))
    with pytest.raises(ConfigError, match="expected a Stage"):
        rec.pipeline.insert_after("rank", lambda r: r)
    with pytest.raises(ConfigError, match="only a required stage has a fallback"):
        Stage("x", lambda r: r, required=False, fallback=lambda r: r)


def test_the_runner_stops_when_a_stage_says_done():
    ran = []

    def stage(name, done=False):
        def run(request):
            ran.append(name)
            request.done = done
            return request
        return Stage(name, run)

    request = Request("u", 5, 0.0, 12.0, -1, None, Policy(), catalog=None)
    Pipeline([stage("a"), stage("b", done=True), stage("c")]).run(request, Monitor())
    assert ran == ["a", "b"]


def _fields_by_stage(rec):
    """Probe after every stage: which request fields are filled by then."""
    filled = {}

    def probe_after(name):
        def run(request):
            filled.setdefault(name, set()).update(
                f for f in ("state", "query", "pool", "vectors", "relevance", "order") if getattr(request, f) is not None)
            filled[name] |= {"results"} if request.results else set()
            return request
        return run

    for name in list(rec.pipeline.names):
        rec.pipeline.insert_after(name, Stage(f"probe_{name}", probe_after(name), required=False))
    return filled


def test_a_varied_request_mix_keeps_the_invariants_of_the_stage_order(rec):
    """Every kind of request through the default pipeline: each stage finds what the earlier ones
    filled, and the lists keep what the order guarantees (seen items out, filters held, feedback
    applied, caps held, scores in list order, reasons for every item)."""
    cat = rec.catalog
    watch(rec, "plain", range(200, 208))
    watch(rec, "short", [300])
    rec.onboard("onboarded", genres=["jazz"], languages=["en"])
    watch(rec, "feedback", range(400, 406))
    first = rec.recommend("feedback", k=3, context=NOW)
    rec.record("feedback", first[0].item_id, "not_interested")
    rec.record("feedback", cat.item_id(700), "more_like_this")
    rec.record("feedback", cat.item_id(401), "skip")
    rec.add_items([{"item_id": "fresh", "vector": cat.vectors([205])[0].tolist(), "title": "Fresh"}])
    rec.remove_items([cat.item_id(209), cat.item_id(210)])
    filled = _fields_by_stage(rec)
    requests = [
        ("plain", {}), ("plain", {"filters": Filters(languages=["es"])}),
        ("plain", {"filters": Filters(kids_safe=True, modalities=["film", "series_episode"])}),
        ("plain", {"policy": Policy(max_per_creator=1, max_per_genre=2)}), ("plain", {"policy": Policy(diversity=0.6)}),
        ("short", {}), ("newcomer", {}), ("onboarded", {}), ("feedback", {}),
        ("feedback", {"filters": Filters(max_duration_s=2_000)}), ("newcomer", {"k": 2_000}),
    ]
    for user, kwargs in requests:
        results = rec.recommend(user, k=kwargs.pop("k", 10), context=NOW, **kwargs)
        assert results, (user, kwargs)
        history = {e["item"] for e in rec.export_history(user)["events"]}  # every event excludes its item
        got = ids(results)
        assert len(got) == len(set(got)) and not set(got) & history  # seen/skipped/not interested: never again
        assert not {cat.item_id(209), cat.item_id(210)} & set(got)  # removed items are gone
        assert all(r.reason.text and r.reason.kind != "fallback" for r in results)
        filters, policy = kwargs.get("filters"), kwargs.get("policy")
        if filters is not None and filters.languages:
            assert all(r.meta["language"] in filters.languages for r in results)
        if filters is not None and filters.modalities:
            assert all(r.meta["modality"] in filters.modalities for r in results)
        if filters is not None and filters.max_duration_s:
            assert all(r.meta["duration"] <= filters.max_duration_s for r in results)
        if policy is not None and policy.max_per_creator:
            creators = [r.meta.get("creator") for r in results if r.meta.get("creator")]  # added items have none
            assert len(creators) == len(set(creators))
        if policy is None or policy.diversity == 0:  # no re-ranking: the list is in score order, but a
            seen = Counter()  # newcomer's items past the spread's cap (3 of a creator, spec §5) come later
            scores = []
            for r in results:
                seen[r.meta.get("creator")] += 1
                if user == "plain" or not r.meta.get("creator") or seen[r.meta.get("creator")] <= 3:
                    scores.append(r.score)
            assert scores == sorted(scores, reverse=True)
    # each stage saw the fields of the stages before it, and none of the later ones
    assert filled["history"] == {"state"}
    assert filled["encode"] == {"state"}
    assert filled["retrieve"] == {"state", "query", "pool"}
    assert filled["rank"] == {"state", "query", "pool", "vectors", "relevance"}
    assert filled["policies"] == {"state", "query", "pool", "vectors", "relevance", "order"}
    assert filled["explain"] == {"state", "query", "pool", "vectors", "relevance", "order", "results"}
    # feedback reached the list: the "more like this" item's neighbours lead, explained as such
    liked = rec.recommend("feedback", k=10, context=NOW)
    assert any(r.reason.kind == "feedback" and r.reason.item_id == cat.item_id(700) for r in liked)


def test_catalog_updates_racing_requests_never_break_one(rec):
    """Each request reads one catalog snapshot: adds, replacements and removals in another thread
    never mix two catalog sizes in one request (before snapshots this raised broadcast errors)."""
    watch(rec, "racer", range(10, 16))
    rec.record("liker", rec.catalog.item_id(500), "more_like_this")
    vectors = rec.catalog.vectors(np.arange(0, 200))
    errors, stop = [], threading.Event()

    def requests():
        n = 0
        while not stop.is_set():
            for user in ("racer", "newcomer", "liker"):
                try:
                    filters = Filters(languages=["en", "es"]) if n % 2 else None
                    assert len(rec.recommend(user, k=20, context=NOW, filters=filters)) == 20
                except Exception as exc:  # collected for the assertion below
                    errors.append(exc)
                n += 1

    thread = threading.Thread(target=requests)
    thread.start()
    try:
        for i, vector in enumerate(vectors):
            rec.add_items([{"item_id": f"new-{i}", "vector": vector.tolist(), "title": f"New {i}"}])
            rec.add_items([{"item_id": rec.catalog.item_id(100 + i), "vector": vector.tolist(), "title": "Swap"}])
            rec.remove_items([f"new-{i}"] if i % 2 else [rec.catalog.item_id(600 + i)])
    finally:
        stop.set()
        thread.join()
    assert not errors, errors[:3]
    assert len(rec.catalog) == rec.catalog.base_count + 400


@pytest.mark.parametrize("event", ["more_like_this", "like", "finish"])
def test_a_removed_item_the_user_acted_on_leaves_the_list_whole(rec, event):
    """An item added on the device and later removed keeps its place in the history (liked, loved,
    finished); its vector is gone. It must not turn the query into NaN: the list stays full and
    finite (it was empty: every score NaN)."""
    cat = rec.catalog
    watch(rec, "keeper", range(40, 46))
    rec.add_items([{"item_id": "home-video", "vector": cat.vectors([505])[0].tolist(), "title": "Home video"}])
    rec.record("keeper", "home-video", event)
    rec.remove_items(["home-video"])
    for ann in (None, "usearch"):
        rec.ann_kind = ann
        got = rec.recommend("keeper", k=10, context=NOW)
        assert len(got) == 10 and all(np.isfinite(r.score) for r in got)
        assert "home-video" not in ids(got)
    assert np.isfinite(cat.vectors([cat.base_count])).all()  # a removed item's vector reads as zeros


def test_recommend_raises_only_edgerec_errors_when_a_part_breaks(rec, monkeypatch):
    watch(rec, "eve", range(30, 36))
    with pytest.raises(ConfigError, match="epoch seconds"):
        rec.recommend("eve", k=5, context={"now": "yesterday"})
    monkeypatch.setattr(rec.catalog, "snapshot", lambda: None)  # every stage now fails on a missing catalog
    with pytest.raises(EdgerecError):
        rec.recommend("eve", k=5, context=NOW)


@pytest.mark.parametrize("failure", ["stage list", "catalog"])
def test_a_recommender_that_fails_to_open_leaves_no_history_open(tiny_bundle, tmp_path, monkeypatch, failure):
    from edgerec.errors import BundleError
    from edgerec.runtime import history, recommender

    closed = []
    monkeypatch.setattr(history.HistoryStore, "close", lambda self: closed.append(self))
    stages = []
    if failure == "stage list":
        stages = [("no such stage", Stage("probe", lambda request: request))]
    else:  # e.g. an unverified bundle whose column is damaged
        def damaged(bundle):
            raise BundleError("damaged column")
        monkeypatch.setattr(recommender, "ItemCatalog", damaged)
    with pytest.raises((ConfigError, BundleError)):
        Recommender.open(tiny_bundle, tmp_path / "history.db", stages=stages)
    assert len(closed) == 1
