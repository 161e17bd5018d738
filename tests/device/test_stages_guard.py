"""Guards of the request path's own stages (runtime/stages.py), from its mutation run (note 20): a
fixed-batch ranker run block by block, the ranker's history part kept per user state, and what the
interpretable scorer adds to each result, on the golden ranked bundle."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime import Filters, Policy, Recommender, stages
from edgerec.runtime.cold_spread import spread_tiers
from edgerec.runtime.drift import top_summary
from edgerec.runtime.explain import Reason
from edgerec.runtime.features import HistorySide
from edgerec.runtime.list_order import best_first, kept_head, policy_order
from edgerec.runtime.policies import (
    feedback_adjustment,
    freshness_boost,
    hub_boost,
    popularity_boost,
)
from edgerec.runtime.user_state import FALLBACK_TEXT

RANKED = Path(__file__).resolve().parents[2] / "spec" / "golden" / "ranked"
CONTEXT = {"now": 1763598915.0, "hour": 20.5}
HISTORY = ("i03", "i11", "i05", "i06")


class Engine:
    """A ranker engine that returns twice the first feature, as a (rows, 1) column, and keeps its inputs."""

    input_names = ["x"]

    def __init__(self):
        self.feeds = []

    def run(self, feeds):
        self.feeds.append(feeds)
        (block,) = feeds.values()
        return [block[:, :1] * 2.0]


def test_a_fixed_batch_ranker_runs_zero_padded_blocks_and_keeps_one_logit_per_row():
    feats = np.arange(30, dtype=np.float32).reshape(10, 3) + 1
    engine = Engine()
    logits = stages.run_ranker(SimpleNamespace(batch=4), engine, feats)
    assert logits.tolist() == (feats[:, 0] * 2).tolist()
    assert [list(f) for f in engine.feeds] == [["features"]] * 3  # the fixed-size file's input name
    blocks = [f["features"] for f in engine.feeds]
    assert all(b.shape == (4, 3) and b.dtype == np.float32 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks)[:10], feats)
    assert not blocks[2][2:].any()  # the last block's padding is zeros
    exact = Engine()
    assert stages.run_ranker(SimpleNamespace(batch=5), exact, feats).tolist() == logits.tolist()
    assert len(exact.feeds) == 2
    one = stages.run_ranker(SimpleNamespace(batch=16), Engine(), feats[:1])
    assert one.tolist() == [2.0]


def test_a_dynamic_ranker_runs_once_under_its_input_name():
    feats = np.arange(12, dtype=np.float32).reshape(4, 3)
    engine = Engine()
    logits = stages.run_ranker(SimpleNamespace(batch=0), engine, feats)
    assert logits.shape == (4,) and logits.tolist() == (feats[:, 0] * 2).tolist()
    assert len(engine.feeds) == 1 and engine.feeds[0]["x"] is feats


@pytest.fixture
def ranked(tmp_path):
    with Recommender.open(RANKED, backend="onnx", history=tmp_path / "h.db") as rec:
        for item in HISTORY:
            rec.record("r", item, "finish")
        yield rec


def test_the_rankers_history_part_is_read_once_per_user_state(ranked, monkeypatch):
    built, sides = [], []
    read, features = stages.history_side, stages.ranker_features
    monkeypatch.setattr(stages, "history_side", lambda table, history: built.append(len(history)) or read(table, history))
    monkeypatch.setattr(stages, "ranker_features", lambda *args: sides.append(args[-1]) or features(*args))
    first = ranked.recommend("r", k=6, context=CONTEXT)
    again = ranked.recommend("r", k=6, context=CONTEXT)
    assert ranked.stats()["stages"]["ranker"]["count"] == 2
    assert [r.item_id for r in first] == [r.item_id for r in again]
    assert built == [4] and isinstance(sides[0], HistorySide) and sides[1] is sides[0]
    ranked.record("r", "i19", "finish")  # a new event: a new state, read again
    ranked.recommend("r", k=6, context=CONTEXT)
    assert built == [4, 5] and sides[2] is not sides[0]


def test_the_scorer_says_why_in_words_before_the_reason_and_lists_its_non_zero_terms(ranked):
    plain = ranked.recommend("r", k=6, context=CONTEXT, policy=Policy(use_ranker=False, use_scorer=False))
    scored = ranked.recommend("r", k=6, context=CONTEXT, policy=Policy(use_ranker=False, use_scorer=True))
    assert "contributions" not in plain[0].meta and plain[0].reason.kind != "scorer"
    base = {r.item_id: r.reason for r in plain}
    assert set(base) & {r.item_id for r in scored}
    for result in scored:
        terms = result.meta["contributions"]
        assert "intercept" in terms and all(isinstance(v, float) for v in terms.values())
        assert sum(terms.values()) == pytest.approx(result.meta["scorer_score"], abs=1e-9)
        words, sep, rest = result.reason.text.partition("; ")
        assert result.reason.kind == "scorer" and sep and ("(+" in words or "(-" in words)
        if result.item_id in base:  # the plain reason follows, with its item and tags
            want = base[result.item_id]
            assert (rest, result.reason.item_id, result.reason.tags) == (want.text, want.item_id, want.tags)


class Scorer:
    """Terms: the two features, then an intercept of 0.5; words name the first feature."""

    def contributions(self, features):
        return np.column_stack([features, np.full(len(features), 0.5)])

    def grouped(self, terms):
        return {"a": float(terms[0]), "b": float(terms[1]), "intercept": float(terms[2])}

    def same_for_all(self, features):
        self.compared = features  # every scored candidate, not the shown rows
        return frozenset({"b"})

    def words(self, shown, terms, same=frozenset()):
        return f"a is {shown[0]:g}" + (f" ({', '.join(sorted(same))} alike)" if same else "")


def test_scorer_reasons_keep_the_non_zero_terms_of_the_shown_rows_in_list_order():
    request = SimpleNamespace(scorer=Scorer(), scorer_features=np.array([[0.0, 1.0], [2.0, -1.0], [3.0, 0.0]]),
                              order=np.array([2, 0]))
    metas = [{"genre": "x"}, {}]
    reasons = [Reason("history", "because you watched X", "i1", ("dark",)), Reason("tags", "tagged", None, ())]
    out = stages.scorer_reasons(request, metas, reasons)
    assert metas == [{"genre": "x", "contributions": {"a": 3.0, "intercept": 0.5}, "scorer_score": 3.5},
                     {"contributions": {"b": 1.0, "intercept": 0.5}, "scorer_score": 1.5}]
    assert out == [Reason("scorer", "a is 3 (b alike); because you watched X", "i1", ("dark",)),
                   Reason("scorer", "a is 0 (b alike); tagged", None, ())]
    assert request.scorer.compared is request.scorer_features


PLAYS = ("i29", "i30", "i31", "i32", "i00", "i29", "i30", "i00", "i29", "i33", "i34", "i35")  # golden case replay
REPLAY = Policy(replay=2.0, replay_gap=3, replay_minutes=0.0)


def test_only_plain_requests_feed_the_drift_window_with_the_models_scores_of_unseen_items(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "h.db") as rec:
        ranked = []
        rec.pipeline.insert_after("rank", stages.Stage("spy", lambda r: ranked.append(r) or r, required=False))
        for item in PLAYS:
            rec.record("m", item, "play")
        rec.record("short", "i05", "play")
        rec.record("fan", "i07", "play")
        rec.record("fan", "i08", "play")
        rec.record("fan", "i09", "more_like_this")

        def window_after(user, **kw):
            rec.recommend(user, k=5, context={"hour": 20.5}, **kw)
            return rec.monitor.score_window()

        assert window_after("newcomer") == [] and window_after("short") == []  # cold; a short history
        assert window_after("fan") == []  # "more like this" pulls the query away from the model's own
        assert window_after("m", filters=Filters(modalities=["music_track"])) == []
        plain = window_after("m", filters=Filters())  # empty filters are no filters
        exact = ranked[-1].vectors @ ranked[-1].query
        assert plain == [top_summary(exact)] and ranked[-1].replay is None
        replayed = window_after("m", policy=REPLAY)
        back = ranked[-1].replay
        assert back is not None and (back > 0).any()  # favourites came back: they are not scored for drift
        # one sample per user, their newest: m's replayed request replaced m's plain one
        assert len(replayed) == 1 and replayed.requests == 2
        assert replayed[-1] == top_summary((ranked[-1].vectors @ ranked[-1].query)[back == 0])
        assert replayed[-1] != top_summary(ranked[-1].vectors @ ranked[-1].query)


def test_a_failed_encoder_says_so_on_every_result_and_results_carry_titles_not_in_meta(golden_bundle, tmp_path,
                                                                                        monkeypatch):
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "h.db") as rec:
        for item in PLAYS[:5]:
            rec.record("m", item, "play")
        plain = rec.recommend("m", k=5, context={"hour": 20.5})
        assert all(r.reason.kind != "fallback" for r in plain)
        for r in plain:
            assert r.title == rec.catalog.title(rec.catalog.row(r.item_id)) and r.title
            assert "title" not in r.meta and "item_id" not in r.meta
        rec.record("m", "i36", "play")  # a new event: the next request encodes again

        def broken(rows):
            raise RuntimeError("the engine is gone")

        monkeypatch.setattr(rec.models.encoder, "encode", broken)
        failed = rec.recommend("m", k=5, context={"hour": 20.5})
        assert failed and all((r.reason.kind, r.reason.text) == ("fallback", FALLBACK_TEXT) for r in failed)
        assert rec.stats()["counters"]["encode_fallback"] == 1


def manifest_with(formats):
    entries = [SimpleNamespace(role="ranker", format=f, extra={}, inputs=[]) for f in formats]
    return SimpleNamespace(dim=8, models=entries,
                           model=lambda role, fmt=None: next((e for e in entries if e.role == role
                                                              and fmt in (None, e.format)), None))


def test_the_ranker_applies_only_with_a_ranker_for_the_running_engine():
    request = SimpleNamespace(cold=False, policy=Policy())
    for formats, engine, applies in ((["onnx"], "tflite", False), (["onnx"], "onnx", True),
                                     (["onnx", "tflite"], "tflite", True), ([], "onnx", False)):
        stage = stages.RankerStage(SimpleNamespace(manifest=manifest_with(formats), backend_name=engine))
        assert stage.applies(request) is applies
    onnx = stages.RankerStage(SimpleNamespace(manifest=manifest_with(["onnx"]), backend_name="onnx"))
    assert not onnx.applies(SimpleNamespace(cold=True, policy=Policy()))
    assert not onnx.applies(SimpleNamespace(cold=False, policy=Policy(use_ranker=False)))


LEVERS = Policy(freshness=1.5, freshness_days=400.0, popularity=0.7, hub_penalty=0.5, language_boost=0.4, keep_top=3,
                diversity=0.0)


def test_the_policies_stage_adds_every_levers_term_and_keeps_the_head_of_feedback_and_language(golden_bundle,
                                                                                               tmp_path):
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "h.db") as rec:
        seen = []
        rec.pipeline.insert_before("policies", stages.Stage("before", lambda r: seen.append(r.relevance.copy()) or r,
                                                            required=False))
        rec.pipeline.insert_after("policies", stages.Stage("after", lambda r: seen.append(r) or r, required=False))
        for item in PLAYS:
            rec.record("m", item, "play")
        rec.record("m", "i40", "more_like_this")
        rec.record("m", "i41", "not_interested")
        rec.recommend("m", k=8, context={"now": 1.8e9, "hour": 20.5}, policy=LEVERS)
        before, req = seen
        cat, pool, vectors, policy, state = req.catalog, req.pool, req.vectors, req.policy, req.state
        assert state.liked and state.disliked and len(state.languages) >= 2 and req.replay is None
        usual = [lang for lang, _ in state.languages.most_common(2)]
        near = (feedback_adjustment(vectors, cat.vectors(state.liked), cat.vectors(state.disliked), policy)
                + policy.language_boost * cat.matches("language", pool, usual))
        wide = (freshness_boost(cat.numeric_column("release_ts", pool), req.now, policy)
                + popularity_boost(cat.numeric_column("popularity", pool), policy)
                + hub_boost(cat.hubness(pool), vectors @ req.query, policy))
        assert np.abs(near).max() > 0 and all(np.abs(term).max() > 0 for term in (wide, near))
        np.testing.assert_allclose(req.relevance, before + near + wide, rtol=1e-12, atol=1e-12)
        head = kept_head(before + near, policy, 8)
        assert req.head.tolist() == head.tolist() and len(head) == 3
        assert req.order.dtype == np.int64 and req.order[:3].tolist() == head.tolist()
        assert best_first(req.relevance)[:3].tolist() != head.tolist()  # the levers alone would reorder the head
        np.testing.assert_array_equal(req.order, policy_order(req.relevance, vectors, 8, policy, cat, pool, head,
                                                              spread_tiers(req)))


def test_a_hub_penalty_leaves_a_newcomers_popular_list_alone(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "h.db") as rec:
        plain = [r.item_id for r in rec.recommend("newcomer", k=8)]
        assert [r.item_id for r in rec.recommend("newcomer", k=8, policy=Policy(hub_penalty=3.0))] == plain


def test_the_default_stages_are_required_or_optional_as_the_request_path_says(golden_bundle):
    with Recommender.open(golden_bundle, backend="onnx") as rec:
        shape = [(s.name, s.required, s.applies is not None, s.fallback is not None) for s in rec.pipeline.stages]
    assert shape == [("history", True, False, False), ("encode", True, True, True), ("retrieve", True, False, False),
                     ("replay", False, True, False), ("rank", True, False, False), ("ranker", False, True, False),
                     ("scorer", False, True, False), ("context", False, True, False), ("policies", True, False, False),
                     ("fairness", False, True, False), ("explain", True, False, False)]


def ranker(shape=None, version=None, inputs=True):
    spec = [SimpleNamespace(shape=shape)] if inputs else []
    return SimpleNamespace(role="ranker", format="onnx", extra={} if version is None else {"features_version": version},
                           inputs=spec)


def test_a_rankers_width_is_checked_only_where_its_input_declares_one():
    for entry in (ranker(), ranker(inputs=False), ranker(shape=[]), ranker(shape=["candidates", "features"]),
                  ranker(shape=["candidates", 28]), ranker(shape=[28]), ranker(shape=[3, 28], version=1)):
        stages.check_rankers(SimpleNamespace(dim=8, models=[entry]))  # dim 8: 28 features
    for entry, version, width in ((ranker(shape=[28, 27]), 1, 27), (ranker(shape=[5], version=1), 1, 5),
                                  (ranker(shape=[28], version=2), 2, 28)):
        with pytest.raises(BundleError) as caught:
            stages.check_rankers(SimpleNamespace(dim=8, models=[entry]))
        assert str(caught.value) == (
            f"the bundle's onnx ranker reads ranker features version {version} ({width} columns); this runtime "
            "computes version 1 (28 columns): export the bundle again with this edgerec version")


def test_because_you_watched_names_the_nearest_of_the_newest_50_items_only(golden_bundle, tmp_path):
    """The reason's history is the newest 50 items: an item 51 places back is not named, however close."""
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx") as rec:
        base = rec.catalog.base_count
        twin = rec.catalog.vectors([0])[0].tolist()  # two added items on one vector, no bundle item's twin
        rec.add_items([{"item_id": "old", "title": "Old", "vector": twin},
                       {"item_id": "new", "title": "New", "vector": twin}])
        played = ["old"] + [rec.catalog.item_id(row) for row in range(1, 51)]
        for n, item in enumerate(played):  # "old" first: 51 places back once the others are played
            rec.record("w", item, "play", timestamp=CONTEXT["now"] - 1000 + n)
        shown = {r.item_id: r for r in rec.recommend("w", k=base + 2 - len(played), context=CONTEXT)}
        reason = shown["new"].reason
        assert reason.kind == "history" and reason.item_id != "old" and reason.item_id in played[1:]
        for n, item in enumerate(played[:50]):  # another user: "old" 50 places back, the nearest, is named
            rec.record("v", item, "play", timestamp=CONTEXT["now"] - 1000 + n)
        near = {r.item_id: r for r in rec.recommend("v", k=base + 2 - 50, context=CONTEXT)}
        assert near["new"].reason.kind == "history" and near["new"].reason.item_id == "old"
