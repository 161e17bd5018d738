"""The app's stages, from the stage-API audit (B3): what a failing or careless stage may change (nothing
that outlives it), the list it leaves (checked, blamed on it), the request it returns (the one it was
given), a damaged or zero-giving encoder (the popularity fallback), exceptions and bookkeeping (only
EdgerecErrors out, the runner's counts kept), interleaving against oneself (counted once), a frozen
Stage, and pipeline edits from two threads. On the golden bundle, with the runtime alone."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from edgerec.errors import ConfigError, StageError
from edgerec.runtime import Filters, Pipeline, Policy, Recommender, Stage
from edgerec.runtime.interleave import InterleaveStage, other_recommender
from edgerec.runtime.request import Recommendation, Request

HISTORY = ("i03", "i11", "i05", "i06")  # finished by alice
CONTEXT = {"now": 1763598915.0, "hour": 20.5}


def open_rec(bundle, tmp_path) -> Recommender:
    rec = Recommender.open(bundle, backend="onnx", history=tmp_path / "h.db")
    for item in HISTORY:
        rec.record("alice", item, "finish")
    return rec


@pytest.fixture
def rec(golden_bundle, tmp_path):
    with open_rec(golden_bundle, tmp_path) as opened:
        yield opened


def ids(results) -> list[str]:
    return [r.item_id for r in results]


def ask(rec, **kw) -> list[str]:
    return ids(rec.recommend("alice", k=5, context=CONTEXT, **kw))


def counters(rec) -> dict:
    return rec.stats()["counters"]


# ------------------------------------------------------------------ 1. what a stage changes stays its own

def test_a_failing_optional_stage_changes_neither_the_list_nor_the_cached_state_in_place(rec):
    """Its in-place changes reached the list (a finished item at the top) and the user's cached state."""
    clean = ask(rec)
    consumed = list(rec.users.get("alice").state.consumed)
    finished = rec.catalog.row("i03")

    def half_done(req):
        req.order[:] = req.order[::-1]
        req.pool[req.order[0]] = finished
        req.relevance[:] = 0.0
        req.state.consumed[:] = req.state.consumed[:1]
        req.state.excluded.clear()
        raise RuntimeError("rule service unavailable")

    def half_done_results(req):
        req.results[0].score, req.results[0].meta["x"] = -1.0, 1
        req.results.reverse()
        raise RuntimeError("down")

    rec.pipeline.insert_after("policies", Stage("half_done", half_done, required=False))
    rec.pipeline.insert_after("history", Stage("early_half_done", half_done, required=False))
    rec.pipeline.insert_after("explain", Stage("late_half_done", half_done_results, required=False))
    results = rec.recommend("alice", k=5, context=CONTEXT)
    assert ids(results) == clean and "x" not in results[0].meta and results[0].score != -1.0
    assert {n: counters(rec)[f"{n}_fallback"] for n in ("half_done", "early_half_done", "late_half_done")} == \
        {"half_done": 1, "early_half_done": 1, "late_half_done": 1}
    assert rec.users.get("alice").state.consumed == consumed
    for name in ("half_done", "early_half_done", "late_half_done"):
        rec.pipeline.remove(name)
    assert ask(rec) == clean


def test_an_app_stage_that_succeeds_changes_the_state_of_its_request_only(rec):
    clean = ask(rec)
    cached = rec.users.get("alice").state
    consumed, excluded = list(cached.consumed), set(cached.excluded)
    seen = []

    def newest_session_only(req):
        req.state.consumed[:] = req.state.consumed[-1:]
        req.state.excluded.clear()
        seen.append(len(req.state.consumed))
        return req

    rec.pipeline.insert_after("history", Stage("newest_only", newest_session_only))
    rec.recommend("alice", k=5, context=CONTEXT)
    assert seen == [1]
    assert (cached.consumed, cached.excluded) == (consumed, excluded)
    assert rec.users.get("alice").state is cached
    rec.pipeline.remove("newest_only")
    assert ask(rec) == clean


def test_an_app_stage_that_leaves_the_state_as_it_was_keeps_the_users_cache(rec):
    ask(rec)
    rec.pipeline.insert_after("history", Stage("look", lambda r: r, required=False))
    rec.record("alice", "i12", "finish")  # a new event: the next request encodes and caches anew
    ask(rec)
    assert rec.users.get("alice").encoded and rec.users.get("alice").vector is not None
    ask(rec)
    assert counters(rec)["user_cache_hits"] == 1 and "look_fallback" not in counters(rec)


# ------------------------------------------------------------------ 2. the list an app stage leaves is checked

def _pin(item):
    def pin(req):
        req.pool[req.order[0]] = req.catalog.index.get(item)
        return req
    return pin


def _junk_results(req):
    extra = Recommendation("no-such-item", float("nan"), "x", req.results[0].reason)
    req.results = req.results + [req.results[0], extra]
    return req


BAD = [
    ("dup", "policies", lambda r: setattr(r, "order", np.concatenate([r.order[:2], r.order[:2]])) or r,
     "the same position twice"),
    ("more_than_k", "policies", lambda r: setattr(r, "order", np.arange(len(r.pool))) or r, "more than k=5"),
    ("negative", "policies", lambda r: setattr(r, "order", np.array([-1, -2, -3])) or r, "outside the pool"),
    ("nan", "policies", lambda r: setattr(r, "relevance", np.full(len(r.relevance), np.nan)) or r, "without NaN"),
    ("float_order", "policies", lambda r: setattr(r, "order", r.order.astype(float)) or r, "integer"),
    ("done", "rank", lambda r: setattr(r, "done", True) or r, "done=True"),
    ("junk", "explain", _junk_results, "more than k=5"),
    ("nan_score", "explain", lambda r: setattr(r.results[0], "score", float("nan")) or r, "not a finite number"),
    ("unknown", "explain",
     lambda r: setattr(r, "results", [dataclasses.replace(r.results[0], item_id="nope")]) or r, "does not have"),
    ("finished", "policies", _pin("i03"), "the seen rule"),
    ("removed", "policies", _pin("i40"), "removed from the catalog"),
    ("filtered", "policies", _pin("i00"), "filters leave out"),
    ("short_pool", "rank", lambda r: setattr(r, "pool", r.pool[:-1]) or r, "one value per pool row"),
]


@pytest.mark.parametrize("name, after, stage, words", BAD, ids=[b[0] for b in BAD])
def test_a_list_an_app_stage_leaves_wrong_is_that_stages_failure(rec, name, after, stage, words):
    """Duplicates, 100 items for k=5, row -1, NaN scores, empty lists, unknown ids, removed, finished and
    filtered-out items were returned as they were; a float order blamed 'explain' as edgerec's bug."""
    rec.remove_items(["i40"])
    filters = Filters(languages=["en"])
    clean = ask(rec, filters=filters)
    rec.pipeline.insert_after(after, Stage(name, stage, required=False))
    assert ask(rec, filters=filters) == clean
    assert counters(rec)[f"{name}_fallback"] == 1 and words in rec.stats()["failures"][name]
    rec.pipeline.replace(name, Stage(name, stage))
    with pytest.raises(StageError, match=rf"^the app's '{name}' stage failed \(ListError: .*{words}"):
        ask(rec, filters=filters)


def test_a_good_app_stage_still_shapes_the_list(rec):
    clean = ask(rec)
    rec.pipeline.insert_after("policies", Stage("reverse", lambda r: setattr(r, "order", r.order[::-1][:3]) or r))
    assert ask(rec) == clean[::-1][:3] and rec.stats()["failures"] == {}


# ------------------------------------------------------------------ 3. the very request it was given

def test_a_stage_that_returns_another_request_has_failed(rec):
    rec.record("bob", "i30", "finish")
    rec.record("bob", "i31", "finish")
    bob = ids(rec.recommend("bob", k=5, context=CONTEXT))
    memo = {}
    rec.pipeline.insert_after("explain", Stage("memo", lambda r: memo.setdefault(r.k, r), required=False))
    ask(rec)
    assert ids(rec.recommend("bob", k=5, context=CONTEXT)) == bob != ask(rec)
    assert counters(rec)["memo_fallback"] == 2
    rec.pipeline.replace("memo", Stage("memo", lambda r: memo.setdefault(r.k, r)))
    with pytest.raises(StageError, match="returned another Request, not the one it was given"):
        rec.recommend("bob", k=5, context=CONTEXT)
    other = Request("u", 5, 0.0, 12.0, -1, None, Policy(), catalog=None)
    with pytest.raises(StageError, match="returned another Request"):  # the runtime's own stages too
        Pipeline([Stage("other", lambda r: other)]).run(Request("u", 5, 0.0, 12.0, -1, None, Policy(), None),
                                                          rec.monitor)


# ------------------------------------------------------------------ 4, 8. the encoder's failures: popularity

def test_an_encoder_file_damaged_after_open_serves_the_popularity_list(bundle_copy, tmp_path):
    """It was a BundleError on every request."""
    with open_rec(bundle_copy, tmp_path) as rec:
        path = bundle_copy / "user_encoder.onnx"
        data = bytearray(path.read_bytes())
        data[100] ^= 0xFF
        path.write_bytes(bytes(data))
        results = rec.recommend("alice", k=5, context=CONTEXT)
        assert results and {r.reason.kind for r in results} == {"fallback"}
        assert counters(rec)["encode_fallback"] == 1 and "sha256" in rec.pipeline.failures["encode"]
        assert "errors" not in counters(rec)


def test_an_all_zero_user_vector_is_a_failure_of_the_encoder(rec):
    """It gave row-order lists with personal reasons, and fed the drift window zeros."""
    rec.encoder.backend.run = lambda feeds: [np.zeros((1, 8), np.float32)]
    results = rec.recommend("alice", k=5, context=CONTEXT)
    assert {r.reason.kind for r in results} == {"fallback"} and counters(rec)["encode_fallback"] == 1
    assert rec.monitor.score_window() == [] and "all-zero" in rec.pipeline.failures["encode"]


# ------------------------------------------------------------------ 5. only EdgerecErrors, and the runner's counts

class Unprintable(Exception):
    def __str__(self):
        raise TypeError("no message")


def test_an_exception_whose_message_fails_is_still_a_stage_error(rec):
    def rule(req):
        raise Unprintable()

    rec.pipeline.insert_after("policies", Stage("rule", rule))
    with pytest.raises(StageError, match=r"^the app's 'rule' stage failed \(Unprintable: \(its message could not"):
        ask(rec)
    assert counters(rec)["errors"] == 1
    rec.pipeline.replace("rule", Stage("rule", lambda r: r, applies=rule))  # its check fails alike
    with pytest.raises(StageError, match=r"^the app's 'rule' stage failed \(Unprintable: \(its message could not"):
        ask(rec)


def test_a_stage_that_replaces_the_counters_loses_nobodys_counts(rec):
    """counts=None made recommend() raise a raw AttributeError."""
    rec.pipeline.insert_after("history", Stage("own_counts", lambda r: setattr(r, "counts", None) or r))
    rec.pipeline.insert_after("rank", Stage("dict_scores", lambda r: setattr(r, "top_scores", {"a": 1}) or r))
    assert ask(rec) and ask(rec)
    assert counters(rec)["requests"] == 2 and counters(rec)["user_cache_hits"] == 1
    assert all(isinstance(s, tuple) for s in rec.monitor.score_window())


# ------------------------------------------------------------------ 6. interleaving against oneself

def test_interleaving_this_recommender_against_itself_counts_each_app_request_once(rec):
    """5 calls were 10 requests, 10 totals and 10 drift samples."""
    other = other_recommender(rec, Policy(diversity=0.5))
    rec.pipeline.insert_after("explain", Stage("interleave", InterleaveStage(other, seed=7), required=False))
    for _ in range(3):
        results = rec.recommend("alice", k=5, context=CONTEXT)
        assert {r.meta["team"] for r in results} <= {"A", "B"} and len(results) == 5
    stats = rec.stats()
    assert stats["counters"]["requests"] == 3 and stats["stages"]["total"]["count"] == 3
    assert stats["drift"]["window"] == 3 and "interleave_fallback" not in stats["counters"]


# ------------------------------------------------------------------ 7. a Stage is fixed once made

def test_a_stage_cannot_be_renamed_past_the_required_stages_guard(rec):
    stage = rec.pipeline["explain"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        stage.name = "my_explain"
    object.__setattr__(stage, "name", "my_explain")  # by force: the guard holds the stage itself
    with pytest.raises(ConfigError, match="is required"):
        rec.pipeline.remove("my_explain")
    with pytest.raises(ConfigError, match="is required"):
        rec.pipeline.replace("my_explain", Stage("x", lambda r: r, required=False))
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.pipeline["rank"].name = "total"


# ------------------------------------------------------------------ 9. edits from two threads

class Name(str):
    """A stage name that runs `hook` (once) while a lookup compares it: another thread's edit lands then."""

    hook: list = []

    def __eq__(self, other):
        while self.hook:
            self.hook.pop()()
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_an_edit_from_another_thread_never_makes_a_stage_go_missing_from_a_lookup():
    """'no stage named policies' for a stage that was there: _position walked the list while another
    thread removed a stage before the one it was looking at."""
    pipe = Pipeline([Stage("rule", lambda r: r, required=False), Stage(Name("history"), lambda r: r),
                     Stage("policies", lambda r: r)])
    other = threading.Thread(target=pipe.remove, args=("rule",))

    def edit():  # started mid-lookup; it waits for the lock, if there is one
        other.start()
        other.join(0.5)

    Name.hook.append(edit)
    assert pipe["policies"].name == "policies"
    other.join()
    assert pipe.names == ["history", "policies"]
