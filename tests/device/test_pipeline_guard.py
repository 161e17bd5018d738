"""Guards of the stage runner (runtime/pipeline.py), from its mutation run (note 27): what is timed and
in which unit, what a failing stage, check or fallback turns into, what is counted, and how the
pipeline's edits are checked. The runner is driven directly, with stages written here and a monitor
that keeps what it is handed."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest

from edgerec.errors import BundleError, ConfigError, StageError
from edgerec.runtime import Pipeline, Policy, Recommender, Request, Stage, pipeline
from edgerec.runtime.monitor import Monitor


class Kept:
    """A monitor that keeps each record() call: (timings, counts) as they were handed over."""

    def __init__(self):
        self.calls = []

    def record(self, timings, counts):
        self.calls.append((list(timings), dict(counts)))


def request() -> Request:
    return Request("u", 5, 0.0, 12.0, -1, None, Policy(), catalog=None)


def passing(name, ran=None, **kw) -> Stage:
    def run(r):
        if ran is not None:
            ran.append(name)
        return r
    return Stage(name, run, **kw)


def failing(exc):
    def run(r):
        raise exc
    return run


@pytest.fixture
def clock(monkeypatch):
    """perf_counter of the runner reads these seconds in turn."""
    def use(*seconds):
        ticks = iter(seconds)
        monkeypatch.setattr(pipeline, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    return use


# ------------------------------------------------------------------ the run: timings and counters

def test_each_stage_and_the_whole_run_are_timed_in_milliseconds(clock):
    clock(10.0, 10.5, 11.25, 12.0, 14.0, 15.0)
    monitor, req = Kept(), request()

    def counting(r):
        r.count("seen", 2)
        return r

    out = Pipeline([Stage("a", counting), passing("b")]).run(req, monitor, total="total")
    assert out is req
    assert monitor.calls == [([("a", 750.0), ("b", 2000.0), ("total", 5000.0)], {"seen": 2})]
    assert req.counts == Counter()  # handed to the monitor once, then cleared


def test_without_a_total_only_the_stages_are_timed(clock):
    clock(1.0, 2.0, 2.5)
    monitor = Kept()
    Pipeline([passing("a")]).run(request(), monitor)
    assert monitor.calls == [([("a", 500.0)], {})]


def test_a_stage_that_does_not_apply_is_neither_run_nor_timed(clock):
    clock(0.0, 1.0, 1.5, 2.0)
    ran, checked, monitor = [], [], Kept()

    def check(answer):
        def applies(r):
            checked.append(answer)
            return answer
        return applies

    stages = [passing("no", ran, applies=check(0)), passing("yes", ran, applies=check([1])),
              passing("empty", ran, required=False, applies=check([]))]
    Pipeline(stages).run(request(), monitor, total="all")
    assert ran == ["yes"] and checked == [0, [1], []]
    assert monitor.calls == [([("yes", 500.0), ("all", 2000.0)], {})]


def test_the_run_stops_at_done_and_a_done_request_runs_nothing():
    ran, monitor = [], Kept()

    def finish(r):
        ran.append("finish")
        r.done = True
        return r

    req = request()
    out = Pipeline([passing("a", ran), Stage("finish", finish), passing("c", ran)]).run(req, monitor, total="t")
    assert out is req and ran == ["a", "finish"] and [name for name, _ in monitor.calls[0][0]] == ["a", "finish", "t"]
    done = request()
    done.done, ran[:] = True, []
    assert Pipeline([passing("a", ran)]).run(done, monitor, total="t") is done
    assert ran == [] and [name for name, _ in monitor.calls[1][0]] == ["t"]


def test_a_failing_run_still_hands_its_timings_and_counters_over(clock):
    clock(0.0, 1.0, 3.0, 4.0)
    monitor, req = Kept(), request()

    def broken(r):
        r.count("before")
        raise ValueError("boom")

    with pytest.raises(StageError):
        Pipeline([Stage("broken", broken), passing("never")]).run(req, monitor, total="total")
    assert monitor.calls == [([("broken", 2000.0), ("total", 4000.0)], {"before": 1})]
    assert req.counts == Counter()


def test_a_stage_added_during_a_run_runs_from_the_next_request():
    ran = []
    pipe = Pipeline([passing("a", ran), passing("b", ran)])

    def adds(r):
        ran.append("adds")
        if "late" not in pipe.names:
            pipe.insert_after("adds", passing("late", ran))
        return r

    pipe.insert_after("a", Stage("adds", adds))
    pipe.run(request(), Monitor())
    assert ran == ["a", "adds", "b"]
    ran.clear()
    pipe.run(request(), Monitor())
    assert ran == ["a", "adds", "late", "b"]


def test_the_runner_refuses_what_is_not_a_request():
    with pytest.raises(ConfigError, match=r"^the pipeline runs a Request, not dict$"):
        Pipeline([passing("a")]).run({"user": "u"}, Kept())


# ------------------------------------------------------------------ failures

def test_a_failing_optional_stage_leaves_the_request_as_it_was_and_is_counted():
    req, seen = request(), []

    def broken(r):
        r.k, r.fallback = 99, "changed"  # on the stage's copy: gone with the failure
        raise RuntimeError("down")

    def edgerec_broken(r):
        raise BundleError("an optional stage's own error is skipped too")

    stages = [Stage("broken", broken, required=False), Stage("strict", edgerec_broken, required=False),
              Stage("nothing", lambda r: None, required=False), Stage("list", lambda r: [r], required=False),
              Stage("after", lambda r: seen.append(r) or r)]
    monitor = Kept()
    out = Pipeline(stages).run(req, monitor, total="t")
    assert out is req and seen == [req] and (req.k, req.fallback) == (5, None)
    assert monitor.calls[0][1] == {"broken_fallback": 1, "strict_fallback": 1, "nothing_fallback": 1,
                                   "list_fallback": 1}
    assert [name for name, _ in monitor.calls[0][0]] == ["broken", "strict", "nothing", "list", "after", "t"]


def test_an_optional_stage_runs_on_a_copy_whose_changes_it_returns():
    req, seen = request(), []

    def change(r):
        seen.append(r)
        r.k = 7
        return r

    out = Pipeline([Stage("change", change, required=False)]).run(req, Kept())
    assert seen[0] is not req and out is seen[0] and (out.k, req.k) == (7, 5)


def test_a_failing_check_of_an_optional_stage_skips_and_counts_it():
    ran, monitor = [], Kept()
    stages = [passing("a", ran, required=False, applies=failing(OSError("gone"))),
              passing("b", ran, required=False, applies=failing(ConfigError("bad"))),
              passing("c", ran)]
    Pipeline(stages).run(request(), monitor, total="t")
    assert ran == ["c"] and [name for name, _ in monitor.calls[0][0]] == ["c", "t"]
    assert monitor.calls[0][1] == {"a_fallback": 1, "b_fallback": 1}


def test_a_failing_check_of_a_required_stage_is_an_edgerec_error():
    error = ConfigError("the check's own error")
    with pytest.raises(ConfigError) as caught:
        Pipeline([passing("a", applies=failing(error))]).run(request(), Kept())
    assert caught.value is error
    cause = OSError("gone")
    with pytest.raises(StageError) as caught:
        Pipeline([passing("a", applies=failing(cause))]).run(request(), Kept())
    assert str(caught.value) == ("the 'a' stage failed (OSError: gone); this is a bug in the stage, please "
                                 "report it with the bundle's name and edgerec version")
    assert caught.value.__cause__ is cause


def test_a_required_stage_passes_edgerec_errors_on_and_wraps_the_rest():
    error, monitor = BundleError("the bundle's own words"), Kept()
    with pytest.raises(BundleError) as caught:
        Pipeline([Stage("a", failing(error))]).run(request(), monitor)
    assert caught.value is error and monitor.calls[0][1] == {}
    cause = KeyError("x")
    with pytest.raises(StageError) as wrapped:
        Pipeline([Stage("b", failing(cause))]).run(request(), monitor)
    assert str(wrapped.value) == ("the 'b' stage failed (KeyError: 'x'); this is a bug in the stage, please "
                                  "report it with the bundle's name and edgerec version")
    assert wrapped.value.__cause__ is cause and monitor.calls[1][1] == {}


@pytest.mark.parametrize("returned", [None, [], "request"])
def test_a_required_stage_that_returns_no_request_is_a_stage_error(returned):
    """It was an AttributeError of the next stage, or of the runner itself (a forgotten return)."""
    after = []
    with pytest.raises(StageError, match=(r"^the 'b' stage failed \(TypeError: returned "
                                          rf"{type(returned).__name__}, not the request\)")):
        Pipeline([Stage("b", lambda r: returned), Stage("c", lambda r: after.append(r) or r)]).run(request(), Kept())
    assert after == []


def test_a_required_stage_with_a_fallback_counts_it_and_goes_on_with_its_answer():
    req, monitor, seen = request(), Kept(), []

    def fallback(r):
        seen.append(r)
        r.fallback = "popular instead"
        return r

    stages = [Stage("enc", failing(RuntimeError("engine gone")), fallback=fallback),
              Stage("none", lambda r: None, fallback=fallback), passing("after")]
    out = Pipeline(stages).run(req, monitor, total="t")
    assert out is req and seen == [req, req] and req.fallback == "popular instead"
    assert monitor.calls[0][1] == {"enc_fallback": 1, "none_fallback": 1}
    assert [name for name, _ in monitor.calls[0][0]] == ["enc", "none", "after", "t"]
    error, used = ConfigError("not for the fallback"), []
    with pytest.raises(ConfigError) as caught:  # an EdgerecError of the stage skips the fallback
        Pipeline([Stage("enc", failing(error), fallback=lambda r: used.append(r) or r)]).run(request(), monitor)
    assert caught.value is error and used == [] and monitor.calls[1][1] == {}


@pytest.mark.parametrize("fallback, message", [
    (failing(IndexError("no rows")), r"\(IndexError: no rows\)"),
    (lambda r: None, r"\(TypeError: returned NoneType, not the request\)"),
])
def test_a_failing_fallback_is_a_stage_error(fallback, message):
    """It was the fallback's own exception (IndexError) or the runner's AttributeError."""
    monitor = Kept()
    with pytest.raises(StageError, match=r"^the 'enc' stage's fallback failed " + message):
        Pipeline([Stage("enc", failing(RuntimeError("x")), fallback=fallback)]).run(request(), monitor)
    assert monitor.calls[0][1] == {"enc_fallback": 1}


def test_an_edgerec_error_of_a_fallback_passes_on():
    error = BundleError("the fallback's own words")
    with pytest.raises(BundleError) as caught:
        Pipeline([Stage("enc", failing(RuntimeError("x")), fallback=failing(error))]).run(request(), Kept())
    assert caught.value is error


# ------------------------------------------------------------------ stages and edits

@pytest.mark.parametrize("make, message", [
    (lambda: Stage("", lambda r: r), r"^a stage needs a name \(it is what stats\(\) times it under\)$"),
    (lambda: Stage(3, lambda r: r), r"^a stage needs a name"),
    (lambda: Stage("s", lambda r: r, required=1), r"^stage 's': required must be True or False"),
    (lambda: Stage("s", "run"), r"^stage 's': run \(and applies, fallback when given\) must be functions$"),
    (lambda: Stage("s", lambda r: r, applies=True), r"^stage 's': run \(and applies"),
    (lambda: Stage("s", lambda r: r, fallback="popular"), r"^stage 's': run \(and applies"),
    (lambda: Stage("s", lambda r: r, required=False, fallback=lambda r: r),
     r"^stage 's': only a required stage has a fallback \(an optional one is simply skipped when it fails\)$"),
])
def test_a_stage_is_checked_when_made(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_a_stage_with_every_part_given_is_kept_as_given():
    run, applies, fallback = (lambda r: r), (lambda r: True), (lambda r: r)
    stage = Stage("s", run, True, applies, fallback)
    assert (stage.name, stage.run, stage.required, stage.applies, stage.fallback) == ("s", run, True, applies, fallback)
    assert Stage("o", run, required=False, applies=applies).fallback is None


def test_stages_are_found_inserted_replaced_and_removed_by_name():
    a, b, c = passing("a"), passing("b"), passing("c")
    pipe = Pipeline([a, c])
    assert pipe.names == ["a", "c"] and pipe["c"] is c
    pipe.insert_after("a", b)
    pipe.insert_after("c", passing("d"))  # an app's own stages: required or not, they may go again
    pipe.insert_before("a", passing("first", required=False))
    pipe.insert_before("d", passing("before_d"))
    assert pipe.names == ["first", "a", "b", "c", "before_d", "d"]
    new_b = passing("b")
    pipe.replace("b", new_b)
    pipe.replace("c", passing("c2"))
    pipe.replace("d", passing("d", required=False))
    assert pipe.names == ["first", "a", "b", "c2", "before_d", "d"] and pipe["b"] is new_b
    pipe.remove("first")
    pipe.remove("d")
    assert pipe.names == ["a", "b", "c2", "before_d"]
    # a required stage stays: removing 'explain' gave empty lists, 'policies' a "bug in the stage" error
    with pytest.raises(ConfigError, match=r"^the 'a' stage is required \(later stages read what it makes\) and "
                                          "cannot be removed"):
        pipe.remove("a")
    with pytest.raises(ConfigError, match=r"^the 'c2' stage is required .*replace it with a required stage"):
        pipe.replace("c2", passing("c2", required=False))  # c was the pipeline's own
    with pytest.raises(ConfigError, match="is the request's total"):  # its timings merged into the total's
        pipe.insert_after("a", passing("total", required=False))
    assert pipe.names == ["a", "b", "c2", "before_d"]


def test_an_unknown_name_lists_the_stages():
    pipe = Pipeline([passing("a"), passing("b")])
    for edit in (lambda: pipe["x"], lambda: pipe.insert_after("x", passing("n")),
                 lambda: pipe.insert_before("x", passing("n")), lambda: pipe.replace("x", passing("n")),
                 lambda: pipe.remove("x")):
        with pytest.raises(ConfigError, match=r"^no stage named 'x'; the stages are a, b$"):
            edit()
    with pytest.raises(ConfigError, match=r"^a stage is named by a string \(got int\)$"):
        pipe.remove(0)
    assert pipe.names == ["a", "b"]


def test_a_new_stage_must_be_a_stage_with_a_new_name():
    pipe = Pipeline([passing("a"), passing("b")])
    for edit in (lambda s: pipe.insert_after("a", s), lambda s: pipe.insert_before("a", s),
                 lambda s: pipe.replace("a", s)):
        with pytest.raises(ConfigError, match=r"^expected a Stage, got function; wrap the function: "
                                              r"Stage\('my_rule', fn, required=False\)$"):
            edit(lambda r: r)
    with pytest.raises(ConfigError, match=r"^a stage named 'b' exists already \(or is the request's total\); "
                                          r"choose another name$"):
        pipe.insert_after("a", passing("b"))
    with pytest.raises(ConfigError, match="'b' exists already"):
        pipe.replace("a", passing("b"))
    with pytest.raises(ConfigError, match="'a' exists already"):
        Pipeline([passing("a"), passing("a")])
    assert pipe.names == ["a", "b"]


def test_replace_refuses_what_is_not_a_stage_even_under_the_same_name():
    """It was an AttributeError (no .name), or, for an object with a matching `name`, accepted silently
    and broken at the next request."""
    pipe = Pipeline([passing("a")])
    for bad in (lambda r: r, SimpleNamespace(name="a", run=lambda r: r)):
        with pytest.raises(ConfigError, match="^expected a Stage"):
            pipe.replace("a", bad)
    assert isinstance(pipe["a"], Stage)


def test_a_pipeline_is_made_from_a_list_of_stages():
    """Pipeline(None) was a TypeError."""
    assert Pipeline([]).names == [] and Pipeline((passing("a"),)).names == ["a"]
    with pytest.raises(ConfigError, match=r"^stages must be a list of Stage objects \(got NoneType"):
        Pipeline(None)
    with pytest.raises(ConfigError, match="^expected a Stage, got str"):
        Pipeline(["a"])


def test_insert_all_inserts_each_pair_after_its_stage_in_order():
    pipe = Pipeline([passing("a"), passing("b")])
    pipe.insert_all([("a", passing("x")), ("x", passing("y")), ("b", passing("z"))])
    assert pipe.names == ["a", "x", "y", "b", "z"]
    pipe.insert_all([])
    assert pipe.names == ["a", "x", "y", "b", "z"]


@pytest.mark.parametrize("stages", [
    "a", None, {"a": passing("x")}, [["a", passing("x")]], [("a",)], [("a", passing("x"), 1)], [("a", lambda r: r)],
    [("a", passing("x")), ("a", "y")],
])
def test_insert_all_refuses_anything_but_pairs_before_inserting_any(stages):
    pipe = Pipeline([passing("a")])
    with pytest.raises(ConfigError, match=r"^stages must be a list of \(name of the stage to follow, Stage\) pairs"):
        pipe.insert_all(stages)
    assert pipe.names == ["a"]


@pytest.mark.parametrize("stages, message", [
    ([("a", passing("x")), ("nope", passing("y"))], "^no stage named 'nope'; the stages are a, x$"),
    ([("a", passing("x")), ("a", passing("x"))], "^a stage named 'x' exists already"),
    ([("a", passing("x")), (3, passing("y"))], r"^a stage is named by a string \(got int\)$"),
])
def test_insert_all_inserts_all_or_nothing(stages, message):
    """The first pairs stayed inserted when a later one was refused."""
    pipe = Pipeline([passing("a")])
    kept = pipe.stages
    with pytest.raises(ConfigError, match=message):
        pipe.insert_all(stages)
    assert pipe.names == ["a"] and pipe.stages is kept


def test_open_with_a_bad_stage_list_is_refused(golden_bundle):
    with pytest.raises(ConfigError, match="^no stage named 'nope'"):
        Recommender.open(golden_bundle, stages=[("policies", passing("mine")), ("nope", passing("other"))])
    with Recommender.open(golden_bundle, stages=[("policies", passing("mine"))]) as rec:
        names = rec.pipeline.names
        assert names[names.index("policies") + 1] == "mine"
