"""Guards of the request record (runtime/request.py), from its mutation run (note 27): a result as a
dict, the shallow copy an optional stage runs on, the counters, the values kept per user state, and
what a request's context turns into."""

from __future__ import annotations

import copy
import dataclasses
import time
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import Policy, Recommendation, Request
from edgerec.runtime.explain import Reason
from edgerec.runtime.request import parse_context
from edgerec.runtime.vocab import DEVICES

NOW = 1_763_598_915.0  # a time whose local minutes are not 0 in any whole-hour time zone


def request(**fields) -> Request:
    return Request("u", 5, NOW, 20.5, 1, None, Policy(), catalog=None, **fields)


def test_a_recommendation_as_a_dict():
    reason = Reason("tags", "matches your tags", "i03", ["jazz"])
    rec = Recommendation("i07", 0.25, "Seven", reason, {"genre": "jazz"})
    assert rec.to_dict() == {"item_id": "i07", "score": 0.25, "title": "Seven",
                             "reason": {"kind": "tags", "text": "matches your tags", "item_id": "i03", "tags": ["jazz"]},
                             "meta": {"genre": "jazz"}}
    assert Recommendation("i", 1.0, "", Reason("popular", "popular")).to_dict()["meta"] == {}


def test_a_copy_shares_every_field_and_changes_apart():
    original = request(vector=np.ones(3), counts=Counter(seen=1))
    original.results.append("r")
    twin = copy.copy(original)
    assert type(twin) is Request and twin is not original
    for f in dataclasses.fields(Request):
        assert getattr(twin, f.name) is getattr(original, f.name), f.name
    twin.count("on the copy")  # a stage's counters reach the request it was copied from
    twin.k, twin.done = 9, True
    assert original.counts == Counter({"seen": 1, "on the copy": 1}) and (original.k, original.done) == (5, False)


def test_counts_add_up():
    req = request()
    req.count("a")
    req.count("a")
    req.count("b", 5)
    req.count("b", -2)
    assert req.counts == Counter({"a": 2, "b": 3})


def test_a_value_per_user_state_is_built_once_when_an_entry_keeps_it():
    builds = []

    def build(value):
        def make():
            builds.append(value)
            return [value]
        return make

    entry = SimpleNamespace(derived={})
    req = request(entry=entry)
    first = req.for_user("x", build(1))
    assert first == [1] and req.for_user("x", build(2)) is first and builds == [1]
    assert req.for_user("y", build(3)) == [3] and entry.derived == {"x": [1], "y": [3]}
    assert request(entry=entry).for_user("x", build(4)) is first and builds == [1, 3]


@pytest.mark.parametrize("entry", [None, SimpleNamespace(), SimpleNamespace(derived=None)])
def test_a_value_per_user_state_is_built_anew_without_a_place_to_keep_it(entry):
    builds = []
    req = request(entry=entry)
    assert req.for_user("x", lambda: builds.append(1) or len(builds)) == 1
    assert req.for_user("x", lambda: builds.append(1) or len(builds)) == 2


def test_a_context_gives_the_time_the_hour_and_the_device():
    assert parse_context({"now": NOW, "hour": 7.25, "device": "tv"}) == (NOW, 7.25, DEVICES.index("tv"))
    for code, device in enumerate(DEVICES):
        assert parse_context({"device": device, "now": NOW})[2] == code
    assert parse_context({"now": 0, "hour": 0})[:2] == (0.0, 0.0)
    assert parse_context({"now": NOW, "hour": 24})[1] == 24.0
    assert parse_context({"now": NOW, "device": None})[2] == -1
    now, hour, _ = parse_context({"now": np.float64(NOW), "hour": np.float64(3)})
    assert (type(now), type(hour)) == (float, float) and (now, hour) == (NOW, 3.0)


def test_the_hour_defaults_to_the_local_time_of_now():
    local = time.localtime(NOW)
    assert local.tm_min != 0
    now, hour, device = parse_context({"now": NOW})
    assert (now, device) == (NOW, -1) and hour == pytest.approx(local.tm_hour + local.tm_min / 60, abs=1e-12)


@pytest.mark.parametrize("context", [None, {}])
def test_no_context_is_now_at_the_local_hour_on_an_unknown_device(context):
    before = time.time()
    now, hour, device = parse_context(context)
    after = time.time()
    local = time.localtime(now)
    assert before <= now <= after and device == -1
    assert hour == pytest.approx(local.tm_hour + local.tm_min / 60, abs=1e-12)


@pytest.mark.parametrize("context, message", [
    ({"now": None}, r"^context 'now' \(epoch seconds\) must be a number \(got NoneType None\)$"),
    ({"now": -1}, r"^context 'now' \(epoch seconds\) must be a finite number from 0 up to 1e\+11 \(got -1\)$"),
    ({"now": True}, r"^context 'now' \(epoch seconds\) must be a number"),
    ({"now": NOW, "hour": 24.5}, r"^context 'hour' must be a finite number from 0 up to 24 \(got 24.5\)$"),
    ({"now": NOW, "hour": -0.5}, r"^context 'hour' must be a finite number from 0 up to 24"),
    ({"now": NOW, "hour": "20"}, r"^context 'hour' must be a number"),
    ({"now": NOW, "hour": float("nan")}, r"^context 'hour' must be a finite number from 0 up to 24 \(got nan\)$"),
    ({"now": float("inf")}, r"^context 'now' \(epoch seconds\) must be a finite number"),  # not "not JSON"
    ({"now": NOW, "device": "toaster"}, r"^unknown device 'toaster'; use one of phone, tv, tablet, web$"),
    ({"now": NOW, "device": "TV"}, r"^unknown device 'TV'; use one of"),
    ({"now": NOW, "device": 1}, r"^unknown device 1; use one of"),
    ([("now", NOW)], r"^context must be a dict \(got list"),
])
def test_a_bad_context_is_refused_with_what_was_wrong(context, message):
    with pytest.raises(ConfigError, match=message):
        parse_context(context)
