"""Audit fixes on the request path: "not interested" cancels a like's or a "more like this"'s pulls
(spec §2), a list the caps leave short while the pool was cut runs again on a wider one (§5); the
clean-room reader follows both."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from handmade import NOW, ids, write_handmade_bundle

from edgerec.runtime import Policy, Recommender
from edgerec.runtime.golden import Case, run_case

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("spec_cleanroom_reader_g9", ROOT / "tests/spec_cleanroom/reader.py")
reader = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reader)
GOLDEN = ROOT / "spec" / "golden" / "bundle"


def lists(rec, user, seq, item, policy):
    for i, event in enumerate(seq):
        rec.record(user, item, event, timestamp=NOW["now"] - 10 + i)
    return ids(rec.recommend(user, k=10, context=NOW, policy=policy))


def test_not_interested_cancels_the_pulls_of_an_earlier_like_or_more_like_this(rec):
    """The state after like + not_interested is the one after play + not_interested (the like consumed the
    item), and after more_like_this + not_interested the one after not_interested alone."""
    seed = [rec.catalog.item_id(r) for r in range(8)]
    for i, item in enumerate(seed):
        rec.record("base", item, "play", timestamp=NOW["now"] - 3600 + i)
    target = ids(rec.recommend("base", k=10, context=NOW))[7]
    policy = replace(rec.policy, engagement=1.0)  # the like pulls, whatever the bundle's default
    got = {}
    for name, seq in (("like_ni", ["like", "not_interested"]), ("play_ni", ["play", "not_interested"]),
                      ("more_ni", ["more_like_this", "not_interested"]), ("ni", ["not_interested"]),
                      ("like", ["like"])):
        for i, item in enumerate(seed):
            rec.record(name, item, "play", timestamp=NOW["now"] - 3600 + i)
        got[name] = lists(rec, name, seq, target, policy)
    assert got["like"] != got["play_ni"]  # a like alone does pull
    assert got["like_ni"] == got["play_ni"] and got["more_ni"] == got["ni"]


# ------------------------------------------------------------------ caps after a reordering boost

def caps_bundle(root: Path) -> Path:
    """Row 0 is the history. By score 1 > 2 > 3 > 4 > 5 > 6; row 2 is by far the most popular. Rows 1 and 2
    share creator A, rows 2 and 3 genre Y: in score order the caps keep 1 and 3 (k = 2 within 3 rows), but
    a popularity boost puts 2 first, and after it both 1 and 3 are capped."""
    v = np.array([[1, 0, 0], [0.99, 0.14, 0], [0.98, 0.2, 0], [0.97, 0.24, 0], [0.5, 0.86, 0], [0.4, 0.9, 0],
                  [0.3, 0.2, 0.93]], np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return write_handmade_bundle(root, v, popularity=[1, 1, 1e6, 1, 1, 1, 1],
                                 creator=["H", "A", "A", "B", "C", "D", "E"], genre=["h", "x", "y", "y", "z", "w", "v"])


POLICY = {"max_per_creator": 1, "max_per_genre": 1, "popularity": 5.0, "short_list": 1, "cold_start_items": 0}


def test_a_list_the_caps_leave_short_runs_again_on_a_wider_short_list(tmp_path):
    bundle = caps_bundle(tmp_path / "b")
    with Recommender.open(bundle, history=tmp_path / "h.db") as rec:
        rec.record("u", "i0", "play", timestamp=NOW["now"] - 10)
        got = ids(rec.recommend("u", k=2, context=NOW, policy=Policy(**POLICY)))
        assert got == ["i2", "i4"]  # the walk after i2 drops i1 (creator A) and i3 (genre y): i4 from a wider pool
        assert rec.stats()["counters"]["list_widened"] == 1
        wide = ids(rec.recommend("u", k=2, context=NOW, policy=Policy(**{**POLICY, "short_list": 100})))
        assert got == wide
        # a full list is never computed again
        assert ids(rec.recommend("u", k=1, context=NOW, policy=Policy(**POLICY))) == ["i1"]  # a pool of one row
        assert rec.stats()["counters"]["list_widened"] == 1


def test_a_list_that_no_wider_pool_can_fill_stays_short(tmp_path):
    """One item per genre and creator, more asked than there are: the pool holds every candidate already."""
    bundle = caps_bundle(tmp_path / "b")
    with Recommender.open(bundle, history=tmp_path / "h.db") as rec:
        rec.record("u", "i0", "play", timestamp=NOW["now"] - 10)
        got = rec.recommend("u", k=6, context=NOW, policy=Policy(**POLICY))
        assert len(got) == 4 and "list_widened" not in rec.stats()["counters"]


# ------------------------------------------------------------------ the clean-room reader agrees

def agree(bundle: Path, steps: list[dict]) -> list[list[tuple]]:
    expected = run_case(bundle, Case("audit", "", json.loads(json.dumps(steps))), "onnx")
    got = [one for _, one, _ in reader.play(reader.Runtime(reader.Bundle(bundle)),
                                            {"steps": [{**s, "expected": []} for s in steps]})]
    assert len(got) == len(expected)
    for mine, ref in zip(got, expected):
        assert [r["item_id"] for r in mine] == [r["item_id"] for r in ref]
        for a, b in zip(mine, ref):
            assert abs(a["score"] - b["score"]) <= 1e-4
            assert (a["reason"], a["reason_item"], a["tags"]) == (b["reason"], b["reason_item"], b["tags"])
    return [[r["item_id"] for r in one] for one in got]


def test_the_reader_widens_a_short_list_as_the_runtime_does(tmp_path):
    bundle = caps_bundle(tmp_path / "b")
    steps = [{"op": "record", "user": "u", "item": "i0", "event": "play", "timestamp": NOW["now"] - 10},
             {"op": "recommend", "user": "u", "k": 2, "context": NOW, "policy": POLICY}]
    assert agree(bundle, steps) == [["i2", "i4"]]


@pytest.mark.parametrize("feedback", [["like", "not_interested"], ["more_like_this", "not_interested"],
                                      ["not_interested", "more_like_this"], ["finish", "not_interested"],
                                      ["not_interested", "like", "finish"]])
def test_the_reader_folds_feedback_and_names_reasons_as_the_runtime_does(feedback):
    ctx = {"now": 1763598915.0, "hour": 20.0}
    cat = reader.Bundle(GOLDEN).strings["ids"]
    steps = [{"op": "record", "user": "u", "item": item, "event": "play"} for item in cat[:6]]
    steps += [{"op": "record", "user": "u", "item": cat[i], "event": event}
              for i in (0, 9) for event in feedback]
    for policy in ({}, {"engagement": 1.0}, {"max_per_genre": 1, "diversity": 0.5}):
        steps.append({"op": "recommend", "user": "u", "k": 12, "context": ctx, "policy": policy})
    for one in agree(GOLDEN, steps):
        assert one
