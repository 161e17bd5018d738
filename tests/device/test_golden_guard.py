"""Guards of the golden-case runner (runtime/golden.py): how a case file is read and refused, which
runtime call each step makes with which arguments, what a recommendation is reduced to, and the
comparison's words and tolerance. test_golden.py plays the committed cases; nothing there reads a
malformed file, a step's optional arguments, or a message of `differences` but one."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import golden
from edgerec.runtime.golden import (
    SCORE_TOLERANCE,
    Case,
    differences,
    labels_observed,
    load_cases,
    observed,
    run_case,
)
from edgerec.runtime.recommender import Recommender

WHEN = 1763595315.0  # a fixed past time (the golden cases' clock)


def write(folder, name, case) -> object:
    path = folder / name
    path.write_text(case if isinstance(case, str) else json.dumps(case), encoding="utf-8")
    return path


# ------------------------------------------------------------------ reading a case


def test_a_case_file_with_only_a_name_and_steps_takes_the_defaults(tmp_path):
    case = Case.load(write(tmp_path, "c.json", {"name": "c", "steps": [{"op": "forget", "user": "u"}]}))
    assert case == Case("c", "", [{"op": "forget", "user": "u"}], 1e-4, "bundle", None) and SCORE_TOLERANCE == 1e-4
    assert case.plays_on("onnx") and case.plays_on("tflite")
    assert case.to_dict() == {"name": "c", "description": "", "tolerance": {"score": 1e-4},
                              "steps": [{"op": "forget", "user": "u"}]}


def test_a_case_file_with_every_field(tmp_path):
    raw = {"name": "c", "description": "d", "bundle": "ranked", "engines": ["onnx"], "tolerance": {"score": 0.5},
           "steps": [{"op": "recommend", "user": "u", "expected": [{"item_id": "i01"}],
                      "expected_by_engine": {"tflite": [{"item_id": "i02"}]}},
                     {"op": "record", "user": "u", "item": "i01", "event": "play"},
                     {"op": "recommend", "user": "u", "expected": []}]}
    case = Case.load(write(tmp_path, "c.json", raw))
    assert (case.name, case.description, case.bundle, case.engines, case.tolerance) == ("c", "d", "ranked",
                                                                                         ("onnx",), 0.5)
    assert case.plays_on("onnx") and not case.plays_on("tflite")
    assert case.to_dict() == {"name": "c", "description": "d", "bundle": "ranked", "engines": ["onnx"],
                              "tolerance": {"score": 0.5}, "steps": raw["steps"]}
    assert case.expected("onnx") == [[{"item_id": "i01"}], []]
    assert case.expected("tflite") == [[{"item_id": "i02"}], []]
    assert Case.load(write(tmp_path, "d.json", case.to_dict())) == case
    assert Case("c", "", [], engines=("tflite",)).to_dict() == {"name": "c", "description": "", "engines": ["tflite"],
                                                                "tolerance": {"score": 1e-4}, "steps": []}


def test_the_cases_of_a_folder_are_its_json_files_by_name(tmp_path):
    for name in ("b.json", "a.json", "c.txt"):
        write(tmp_path, name, {"name": name[0], "steps": []})
    assert [case.name for case in load_cases(tmp_path)] == ["a", "b"]
    assert [case.name for case in load_cases(str(tmp_path))] == ["a", "b"]


def test_a_folder_without_cases_is_refused(tmp_path):
    """Was: an empty list, so a self-check pointed at the wrong folder passed every case of none."""
    (tmp_path / "cases").mkdir()
    for folder in (tmp_path / "cases", tmp_path / "no-such-folder"):
        with pytest.raises(ConfigError) as caught:
            load_cases(folder)
        assert str(caught.value) == f"no golden cases (*.json) in {folder.name}"
    with pytest.raises(ConfigError, match="^the cases folder must be a path"):
        load_cases(None)


OPS = "('record', 'onboard', 'add_items', 'remove_items', 'forget', 'recommend', 'transfer', 'tag')"


@pytest.mark.parametrize(("case", "message"), [
    ("{", "c.json: not a JSON case file (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ([], "c.json: a case is a JSON object with a 'name' (text) and 'steps' (a list)"),
    ({"steps": []}, "c.json: a case is a JSON object with a 'name' (text) and 'steps' (a list)"),
    ({"name": 5, "steps": []}, "c.json: a case is a JSON object with a 'name' (text) and 'steps' (a list)"),
    ({"name": "c"}, "c.json: a case is a JSON object with a 'name' (text) and 'steps' (a list)"),
    ({"name": "c", "steps": {"op": "forget"}}, "c.json: a case is a JSON object with a 'name' (text) and 'steps' "
                                               "(a list)"),
    ({"name": "c", "steps": ["forget"]}, "c.json: step 0 must be an object with an 'op' (got str)"),
    ({"name": "c", "steps": [{"op": "forget", "user": "u"}, {"op": "play"}]},
     f"c.json: step 1 has op 'play'; use one of {OPS}"),
    ({"name": "c", "steps": [{"user": "u"}]}, f"c.json: step 0 has op None; use one of {OPS}"),
    ({"name": "c", "steps": [{"op": "record", "user": "u"}]}, "c.json: step 0 (record) has no item, event"),
    ({"name": "c", "steps": [{"op": "onboard"}]}, "c.json: step 0 (onboard) has no user"),
    ({"name": "c", "steps": [{"op": "add_items"}]}, "c.json: step 0 (add_items) has no items"),
    ({"name": "c", "steps": [{"op": "remove_items"}]}, "c.json: step 0 (remove_items) has no items"),
    ({"name": "c", "steps": [{"op": "forget"}]}, "c.json: step 0 (forget) has no user"),
    ({"name": "c", "steps": [{"op": "recommend", "user": "u"}]}, "c.json: step 0 (recommend) has no expected"),
    ({"name": "c", "steps": [{"op": "recommend", "user": "u", "expected": [], "filters": ["jazz"]}]},
     "c.json: step 0: filters must be an object of Filters fields"),
    ({"name": "c", "steps": [{"op": "recommend", "user": "u", "expected": [], "policy": 0.5}]},
     "c.json: step 0: policy must be an object of Policy fields"),
    ({"name": "c", "steps": [{"op": "recommend", "user": "u", "expected": [], "filters": {"moods": [], "genres": []}}]},
     "c.json: step 0: unknown Filters fields ['moods']; update edgerec"),
    ({"name": "c", "steps": [{"op": "recommend", "user": "u", "expected": [],
                              "policy": {"diversity": 0.5, "serendipity": 1, "boost": 2}}]},
     "c.json: step 0: unknown Policy fields ['boost', 'serendipity']; update edgerec"),
    ({"name": "c", "steps": [{"op": "tag", "text": "x"}]}, "c.json: step 0 (tag) has no expected"),
    ({"name": "c", "steps": [{"op": "tag", "expected": {}}]}, "c.json: step 0 (tag) needs a text or an item_id, one "
                                                               "of them"),
    ({"name": "c", "steps": [{"op": "tag", "text": "x", "item_id": "i01", "expected": {}}]},
     "c.json: step 0 (tag) needs a text or an item_id, one of them"),
    ({"name": "c", "steps": [{"op": "tag", "text": "x", "expected": []}]},
     "c.json: step 0 (tag): expected must be an object with 'labels' (an object) and 'tags' (a list)"),
    ({"name": "c", "steps": [{"op": "tag", "text": "x", "expected": {"labels": {}, "tags": {}}}]},
     "c.json: step 0 (tag): expected must be an object with 'labels' (an object) and 'tags' (a list)"),
    ({"name": "c", "steps": [{"op": "tag", "text": "x", "expected": {"labels": [], "tags": []}}]},
     "c.json: step 0 (tag): expected must be an object with 'labels' (an object) and 'tags' (a list)"),
    ({"name": "c", "steps": [], "tolerance": 0.1}, 'c.json: tolerance must be an object such as {"score": 0.0001}'),
    ({"name": "c", "steps": [], "tolerance": {"score": "0.1"}}, "c.json: tolerance.score must be a number (got str '0.1')"),
    ({"name": "c", "steps": [], "tolerance": {"score": -0.1}},
     "c.json: tolerance.score must be a finite number from 0 to inf (got -0.1)"),
    ({"name": "c", "steps": [], "engines": "onnx"},
     "c.json: engines must be a list of strings, e.g. ['onnx'], not a single string (got 'onnx')"),
    ({"name": "c", "steps": [], "bundle": 5}, "c.json: bundle must be a string (got int)"),
    ({"name": "c", "steps": [], "description": ["d"]}, "c.json: description must be a string (got list)"),
])
def test_a_malformed_case_file_is_refused_by_file_and_step(tmp_path, case, message):
    """Was: KeyError, AttributeError or JSONDecodeError at load, a TypeError from Filters(**...) or
    math.isclose midway through play, or an engines string read letter by letter."""
    with pytest.raises(ConfigError) as caught:
        Case.load(write(tmp_path, "c.json", case))
    assert str(caught.value) == message


def test_an_unreadable_case_file_is_refused_by_its_name_only(tmp_path):
    with pytest.raises(ConfigError) as caught:
        Case.load(tmp_path / "missing.json")
    assert str(caught.value) == "missing.json: cannot read the case file (No such file or directory)"
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"name": "\xe9"}')
    with pytest.raises(ConfigError, match=r"^latin1\.json: not a JSON case file \('utf-8' codec can't decode"):
        Case.load(path)
    with pytest.raises(ConfigError, match="^a case file must be a path"):
        Case.load(5)


def test_a_zero_tolerance_and_an_empty_engine_list_are_kept(tmp_path):
    case = Case.load(write(tmp_path, "c.json", {"name": "c", "steps": [], "tolerance": {"score": 0},
                                                "engines": []}))
    assert case.tolerance == 0.0 and case.engines == () and not case.plays_on("onnx")


# ------------------------------------------------------------------ playing a case


class Spy(Recommender):
    """The real runtime, with every call the runner makes written down."""

    calls: list = []

    @classmethod
    def open(cls, bundle, **kwargs):
        cls.calls.append(("open", bundle, kwargs))
        return super().open(bundle, **kwargs)

    def recommend(self, *args, **kwargs):
        results = super().recommend(*args, **kwargs)
        Spy.calls.append(("recommend", args, kwargs, [observed(r) for r in results]))
        return results


def _written_down(name: str):
    def call(self, *args, **kwargs):
        Spy.calls.append((name, args, kwargs))
        return getattr(Recommender, name)(self, *args, **kwargs)
    return call


for _op in ("record", "onboard", "add_items", "remove_items", "forget"):  # every op but recommend, which keeps its list
    setattr(Spy, _op, _written_down(_op))


STEPS = [
    {"op": "record", "user": "u", "item": "i03", "event": "finish", "value": 0.5, "timestamp": WHEN},
    {"op": "record", "user": "u", "item": "i04", "event": "like"},
    {"op": "onboard", "user": "n", "genres": ["jazz"], "tags": ["t"], "languages": ["en"], "items": ["i05"]},
    {"op": "onboard", "user": "m"},
    {"op": "add_items", "items": [{"item_id": "a1", "genre": "jazz", "vector": [1.0] + [0.0] * 7}]},
    {"op": "remove_items", "items": ["i02"]},
    {"op": "recommend", "user": "u", "k": 3, "context": {"now": WHEN + 60, "hour": 20.5},
     "filters": {"genres": ["jazz"]}, "policy": {"diversity": 0.5}, "expected": []},
    {"op": "forget", "user": "m"},
    {"op": "recommend", "user": "n", "expected": []},
]


def test_each_step_makes_its_call_with_every_argument(golden_bundle, monkeypatch):
    Spy.calls = []
    monkeypatch.setattr(golden, "Recommender", Spy)
    got = run_case(golden_bundle, Case("spy", "", STEPS), "tflite", kernel="numpy")
    calls = Spy.calls
    assert calls[0] == ("open", golden_bundle, {"backend": "tflite", "kernel": "numpy"})
    assert calls[1] == ("record", ("u", "i03", "finish"), {"value": 0.5, "timestamp": WHEN})
    assert calls[2] == ("record", ("u", "i04", "like"), {"value": None, "timestamp": None})
    assert calls[3] == ("onboard", ("n",), {"genres": ["jazz"], "tags": ["t"], "languages": ["en"], "items": ["i05"]})
    assert calls[4] == ("onboard", ("m",), {"genres": (), "tags": (), "languages": (), "items": ()})
    assert calls[5] == ("add_items", ([STEPS[4]["items"][0]],), {})
    assert calls[6] == ("remove_items", (["i02"],), {})
    name, args, kwargs, first = calls[7]
    assert (name, args) == ("recommend", ("u",))
    assert (kwargs["k"], kwargs["context"]) == (3, {"now": WHEN + 60, "hour": 20.5})
    assert kwargs["filters"].genres == ["jazz"] and kwargs["policy"].diversity == 0.5
    assert calls[8] == ("forget", ("m",), {})
    name, args, kwargs, second = calls[9]
    assert (name, args, kwargs) == ("recommend", ("n",), {"k": None, "context": None, "filters": None, "policy": None})
    assert len(calls) == 10 and got == [first, second]
    assert len(first) == 3 and all(r["item_id"] != "i02" for r in first + second)
    assert "a1" in [r["item_id"] for r in first]  # the added jazz item, through the genre filter
    assert len(second) == 5 and (second[0]["reason"], second[0]["reason_item"]) == ("feedback", "i05")


def test_a_case_plays_on_the_auto_kernel_by_default(golden_bundle, monkeypatch):
    Spy.calls = []
    monkeypatch.setattr(golden, "Recommender", Spy)
    assert run_case(golden_bundle, Case("c", "", [{"op": "recommend", "user": "u", "k": 2, "expected": []}]),
                    "onnx") == [Spy.calls[1][3]]
    assert Spy.calls[0] == ("open", golden_bundle, {"backend": "onnx", "kernel": "auto"})


# ------------------------------------------------------------------ what a case pins of a result


def result(score, meta=None, kind="history", item="i01", tags=("a", "b")):
    return SimpleNamespace(item_id="x", score=score, meta=meta or {},
                           reason=SimpleNamespace(kind=kind, item_id=item, tags=tags))


def test_a_result_is_reduced_to_its_id_rounded_score_and_reason():
    assert observed(result(np.float32(0.5))) == {"item_id": "x", "score": 0.5, "reason": "history",
                                                 "reason_item": "i01", "tags": ["a", "b"]}
    got = observed(result(0.12345649999, {"scorer_score": np.float32(2.0) / 3, "other": 1}, "popular", None, ()))
    assert got == {"item_id": "x", "score": 0.123456, "reason": "popular", "reason_item": None, "tags": [],
                   "scorer_score": 0.666667}
    assert type(got["score"]) is float and type(got["scorer_score"]) is float and type(got["tags"]) is list


# ------------------------------------------------------------------ the comparison


def entry(item, score=1.0, **more):
    return {"item_id": item, "score": score, "reason": "history", "reason_item": "i01", "tags": ["a"], **more}


def test_a_different_number_of_lists_is_one_difference():
    assert differences([[]], [[], []], 0.25) == ["2 recommend steps ran, the case has 1"]
    assert differences([[], []], [[]], 0.25) == ["1 recommend steps ran, the case has 2"]
    assert differences([], [], 0.25) == [] and differences([[]], [[]], 0.25) == []


def test_other_items_are_reported_once_per_list_and_the_next_lists_still_compared():
    want = [[entry("a"), entry("b")], [entry("c")]]
    have = [[entry("b", 9.0), entry("a", 9.0)], [entry("c", 2.0)]]
    assert differences(want, have, 0.25) == ["recommend #0: items ['b', 'a'], expected ['a', 'b']",
                                             "recommend #1 rank 0 (c): score 2.0, expected 1.0 +- 0.25"]
    assert differences([[entry("a")]], [[]], 0.25) == ["recommend #0: items [], expected ['a']"]


def test_a_score_within_the_tolerance_passes_with_its_edge_and_not_relative():
    assert differences([[entry("a", 1.0)]], [[entry("a", 1.25)]], 0.25) == []
    assert differences([[entry("a", 1.0)]], [[entry("a", 0.75)]], 0.25) == []
    assert differences([[entry("a", 1.0)]], [[entry("a", 1.3)]], 0.25) == [
        "recommend #0 rank 0 (a): score 1.3, expected 1.0 +- 0.25"]
    assert differences([[entry("a", 100.0)]], [[entry("a", 101.0)]], 0.25) == [
        "recommend #0 rank 0 (a): score 101.0, expected 100.0 +- 0.25"]  # an absolute tolerance only
    assert differences([[entry("a"), entry("b", 2.0)]], [[entry("a"), entry("b", 2.5)]], 0.25) == [
        "recommend #0 rank 1 (b): score 2.5, expected 2.0 +- 0.25"]


def test_a_zero_tolerance_asks_for_the_same_score():
    assert differences([[entry("a", 1.0, scorer_score=2.0)]], [[entry("a", 1.0, scorer_score=2.0)]], 0.0) == []
    assert differences([[entry("a", 1.0, scorer_score=2.0)]], [[entry("a", 1.0 + 1e-12, scorer_score=2.0 + 1e-12)]],
                       0.0) == ["recommend #0 rank 0 (a): score 1.000000000001, expected 1.0 +- 0.0",
                                "recommend #0 rank 0 (a): scorer_score 2.000000000001, expected 2.0 +- 0.0"]


def test_the_scorer_score_is_compared_where_either_side_has_it():
    within = differences([[entry("a", scorer_score=1.0)]], [[entry("a", scorer_score=1.25)]], 0.25)
    assert within == []
    assert differences([[entry("a", scorer_score=1.0)]], [[entry("a", scorer_score=1.5)]], 0.25) == [
        "recommend #0 rank 0 (a): scorer_score 1.5, expected 1.0 +- 0.25"]
    assert differences([[entry("a", scorer_score=100.0)]], [[entry("a", scorer_score=101.0)]], 0.25) == [
        "recommend #0 rank 0 (a): scorer_score 101.0, expected 100.0 +- 0.25"]
    assert differences([[entry("a", scorer_score=1.0)]], [[entry("a")]], 0.25) == [
        "recommend #0 rank 0 (a): scorer_score None, expected 1.0 +- 0.25"]
    assert differences([[entry("a")]], [[entry("a", scorer_score=1.0)]], 0.25) == [
        "recommend #0 rank 0 (a): scorer_score 1.0, expected None +- 0.25"]


def test_each_reason_field_is_compared_by_name():
    for key, value in (("reason", "popular"), ("reason_item", "i02"), ("tags", ["a", "b"])):
        have = entry("a")
        have[key] = value
        assert differences([[entry("b"), entry("a")]], [[entry("b"), have]], 0.25) == [
            f"recommend #0 rank 1 (a): {key} {value!r}, expected {entry('a')[key]!r}"]
    both = {**entry("a", 2.0), "reason": "popular", "tags": []}
    assert differences([[entry("a")]], [[both]], 0.25) == [
        "recommend #0 rank 0 (a): score 2.0, expected 1.0 +- 0.25",
        "recommend #0 rank 0 (a): reason 'popular', expected 'history'",
        "recommend #0 rank 0 (a): tags [], expected ['a']"]


def test_a_transfer_step_plays_spec_section_8_and_needs_its_method(golden_bundle, tmp_path):
    """The transfer step (spec §9): the case's bundle to itself, its list compared like a recommend's."""
    steps = [{"op": "record", "user": "x", "item": "i29", "event": "finish"},
             {"op": "transfer", "user": "x", "method": "content", "k": 3, "expected": []}]
    got = run_case(golden_bundle, Case("t", "", steps), "onnx")
    assert len(got) == 1 and len(got[0]) == 3
    got = run_case(golden_bundle, Case("t", "", [steps[0], {"op": "transfer", "user": "x", "method": "content"}]),
                   "onnx")
    assert len(got[0]) == 10  # k defaults to 10 (spec §9)
    assert {(r["reason"], r["reason_item"], tuple(r["tags"])) for r in got[0]} == {("transfer", "i29", ())}
    with pytest.raises(ConfigError, match=r"^t.json: step 0 \(transfer\) has no method$"):
        Case.load(write(tmp_path, "t.json", {"name": "t", "steps": [{"op": "transfer", "user": "x", "expected": []}]}))


# ------------------------------------------------------------------ tag steps (spec §7b)

LABELS = {"labels": {"genre": "jazz", "mood": "calm"}, "tags": [{"tag": "jazz", "score": 0.5}, {"tag": "bebop",
                                                                                              "score": 0.25}]}


def test_tag_output_is_reduced_to_labels_and_rounded_tags_without_the_summary():
    described = {"genre": "jazz", "mood": "calm", "tags": [("jazz", 0.49999997), ("bebop", np.float32(0.25))],
                 "summary": "A record."}
    assert labels_observed(described) == {"labels": {"genre": "jazz", "mood": "calm"},
                                          "tags": [{"tag": "jazz", "score": 0.5}, {"tag": "bebop", "score": 0.25}]}


def _tags(*pairs):
    return {"labels": dict(LABELS["labels"]), "tags": [{"tag": t, "score": s} for t, s in pairs]}


@pytest.mark.parametrize(("have", "problems"), [
    (_tags(("jazz", 0.5), ("bebop", 0.25)), []),
    (_tags(("jazz", 0.5001), ("bebop", 0.2499)), []),  # at the tolerance's edge
    (_tags(("jazz", 0.50011), ("bebop", 0.25)), ["tag #0 (jazz): score 0.50011, expected 0.5 +- 0.0001"]),
    (_tags(("bebop", 0.5), ("jazz", 0.25)), ["tag #0: tags ['bebop', 'jazz'], expected ['jazz', 'bebop']"]),
    (_tags(("jazz", 0.5)), ["tag #0: tags ['jazz'], expected ['jazz', 'bebop']"]),
    ({"labels": {"genre": "rock", "mood": "calm"}, "tags": LABELS["tags"]},
     ["tag #0: labels {'genre': 'rock', 'mood': 'calm'}, expected {'genre': 'jazz', 'mood': 'calm'}"]),
    ([], ["step #0: labels and a list compared (the case and the run disagree on its op)"]),
])
def test_tag_steps_are_compared_by_labels_then_tag_order_then_scores(have, problems):
    assert differences([LABELS], [have], SCORE_TOLERANCE) == problems


def test_a_list_where_labels_were_expected_is_one_difference_and_later_steps_still_compared():
    got = differences([[], LABELS], [LABELS, _tags(("jazz", 0.4), ("bebop", 0.25))], SCORE_TOLERANCE)
    assert got == ["step #0: labels and a list compared (the case and the run disagree on its op)",
                   "tag #1 (jazz): score 0.4, expected 0.5 +- 0.0001"]


def test_a_tag_step_asks_the_runtime_for_a_text_or_an_item_with_its_k(monkeypatch, golden_bundle):
    asked = []

    class Tagging(Spy):
        def tag(self, text=None, item_id=None, k=5):
            asked.append((text, item_id, k))
            return {"genre": "jazz", "tags": [("jazz", 0.5)], "summary": ""}

    monkeypatch.setattr(golden, "Recommender", Tagging)
    got = run_case(golden_bundle, Case("t", "", [{"op": "tag", "text": "a song"},
                                                 {"op": "tag", "item_id": "i01", "k": 2}]), "onnx")
    assert asked == [("a song", None, 5), (None, "i01", 2)]
    assert got == [{"labels": {"genre": "jazz"}, "tags": [{"tag": "jazz", "score": 0.5}]}] * 2


def test_a_well_formed_tag_step_loads_and_a_malformed_step_made_in_code_is_named_when_played(tmp_path, golden_bundle):
    step = {"op": "tag", "text": "a song", "k": 2, "expected": LABELS}
    assert Case.load(write(tmp_path, "t.json", {"name": "t", "steps": [step]})).steps == [step]
    with pytest.raises(ConfigError) as caught:
        run_case(golden_bundle, Case("made", "", [{"op": "tag"}]), "onnx")
    assert str(caught.value) == "made: step 0 (tag) needs a text or an item_id, one of them"


def test_tag_scores_are_rounded_to_six_places_and_a_zero_tolerance_is_absolute():
    assert labels_observed({"tags": [("a", 0.12345678)]})["tags"] == [{"tag": "a", "score": 0.123457}]
    near = _tags(("jazz", 0.5000000000001), ("bebop", 0.25))
    assert differences([LABELS], [near], 0.0) == ["tag #0 (jazz): score 0.5000000000001, expected 0.5 +- 0.0"]
