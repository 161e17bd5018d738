"""Guards of what the request path keeps between requests to save work (issue 19): the context stage's
lifts (per bundle), the engagement means and the explainer's reasons (per user state), a window's oldest
event time. A kept value must never outlive what it was made from: a long-lived Recommender gives the
very lists a fresh one gives after every kind of change."""

from types import SimpleNamespace as NS

import numpy as np
import pytest

from edgerec.runtime import Recommender
from edgerec.runtime.explain import Explainer
from edgerec.runtime.policies import Policy
from edgerec.runtime.ranking import ContextPrior, ContextStage
from edgerec.runtime.user_state import Window
from edgerec.runtime.vocab import MODALITIES

NOW = 1763598915.0


def _prior(tv_film: float) -> ContextPrior:
    return ContextPrior.from_manifest(NS(ranking={"context_prior": {
        "modalities": ["podcast_episode", "film"], "device": {"tv": [1.0, tv_film]},
        "day_part": {"evening": [0.5, 0.25], "night": [-1.0, 0.0]}, "weight": 0.5}}))


def test_the_context_lifts_are_the_priors_for_each_device_and_part_of_day_and_follow_a_new_prior():
    stage = ContextStage(NS(ranking={}))  # the manifest's ranking section is all it reads
    stage.prior = _prior(2.0)
    for device in (-1, 0, 1, 2, 3, 4, 99):
        for hour in (0.0, 5.9, 6.0, 13.0, 20.5, 29.9):
            lifts = stage.lifts(device, hour)
            assert lifts.tolist() == [*stage.prior.lift(device, hour).tolist(), 0.0]  # code -1 reads the 0
            assert not lifts.flags.writeable  # shared by the requests of that context
    assert stage.lifts(1, 20.5) is stage.lifts(1, 21.0)  # one per device and part of day
    film = MODALITIES.index("film")
    request = NS(policy=Policy(), device=1, hour=20.5, pool=np.array([1, 0]), relevance=np.array([1.0, 2.0]),
                 catalog=NS(feature_table=lambda: NS(modality=np.array([film, -1]))))
    assert stage(request).relevance.tolist() == [1.0, 2.0 + 0.5 * 2.25]  # row 1: no modality, no boost
    stage.prior = _prior(4.0)  # another prior: its own lifts, never the old one's
    request.relevance = np.array([1.0, 2.0])
    assert stage.lifts(1, 20.5)[film] == 4.25
    assert stage(request).relevance.tolist() == [1.0, 2.0 + 0.5 * 4.25]


def test_an_explainer_names_each_history_item_once_and_says_the_same_on_every_call():
    vectors = np.eye(4, dtype=np.float32)
    labels = []

    def label(row):
        labels.append(row)
        return f"i{row}", f"T{row}"

    catalog = NS(vectors=lambda rows: vectors[np.asarray(rows, np.int64)], categorical={"modality": None},
                 numeric={}, label=label, column=lambda name, rows: np.array(["film"] * len(rows), dtype=object))
    explainer = Explainer(catalog, [0, 1], [], {}, cold_start=False)
    metas = [{"item_id": f"i{r}"} for r in (2, 3, 0)]
    near = np.array([[0.9, 0.1, 0, 0], [0.8, 0.2, 0, 0], [0.1, 0.9, 0, 0]], np.float32)
    first = [r.to_dict() for r in explainer.explain_all(metas, near)]
    assert [r["text"] for r in first] == ['because you watched "T0"'] * 2 + ['because you watched "T1"']
    assert sorted(labels) == [0, 1]  # each history item looked up once, not once per item it explains
    assert [r.to_dict() for r in explainer.explain_all(metas, near)] == first and sorted(labels) == [0, 1]
    reasons = explainer.explain_all(metas, near)
    reasons[0].tags.append("changed by the app")  # each reason's tags are its own
    assert reasons[1].tags == [] and explainer.explain_all(metas, near)[0].tags == []


def test_a_windows_oldest_time_is_read_once_and_a_new_window_reads_its_own():
    index = NS(get_many=lambda items: [int(i[1:]) for i in items])
    window = Window().extended([(1, "i1", "play", 100.0), (2, "i2", "play", 200.0)], index, 10, 2)
    assert window.expired(150.0) and not window.expired(100.0)
    newer = window.extended([(3, "i3", "play", 300.0)], index, 10, 2)  # the event at 100 drops out
    assert not newer.expired(150.0) and newer.expired(250.0) and window.expired(150.0)
    assert Window().expired(-1e18) is True and window.expired(1e18) is True  # empty: always read again


def _replay(golden_bundle, actions, vector):
    """A fresh Recommender (nothing kept yet) with `actions` done, in order."""
    rec = Recommender.open(golden_bundle, backend="onnx")
    for kind, *args in actions:
        if kind == "item":
            rec.update_items([{"item_id": "mine", "title": args[0], "vector": vector}])
        else:
            rec.record("u", args[0], kind, timestamp=args[1])
    return rec


@pytest.mark.parametrize("policy", [Policy(engagement=0.8), Policy(engagement=0.0, use_ranker=False)])
def test_a_long_lived_recommender_lists_what_a_fresh_one_lists_after_every_change(golden_bundle, policy):
    """Each event and catalog change reaches the very next list: the engagement pull (likes, finishes),
    "more like this", "not interested", and an added item's new title in the reasons that name it."""
    with Recommender.open(golden_bundle, backend="onnx") as probe:
        cat = probe.catalog
        ids = [cat.item_id(r) for r in range(cat.base_count)]
        vector = cat.vectors(np.array([3]))[0].tolist()  # the added item sits on row 3: it explains its neighbours
    # after the play of i10 the list names "mine" (on row 3's vector) for i20, i21 and i03: then it is renamed
    steps = [("item", "Before"), ("finish", "mine", NOW - 500), ("play", ids[10], NOW - 400), ("item", "After"),
             ("finish", ids[20], NOW - 300), ("like", ids[30], NOW - 200), ("more_like_this", ids[40], NOW - 150),
             ("not_interested", ids[11], NOW - 100), ("finish", ids[12], NOW - 50)]
    context = {"now": NOW, "hour": 20.5, "device": "tv"}
    kept = Recommender.open(golden_bundle, backend="onnx")
    try:
        named = set()
        for at in range(len(steps)):
            step = steps[at]
            if step[0] == "item":
                kept.update_items([{"item_id": "mine", "title": step[1], "vector": vector}])
            else:
                kept.record("u", step[1], step[0], timestamp=step[2])
            fresh = _replay(golden_bundle, steps[:at + 1], vector)
            try:
                expected = [r.to_dict() for r in fresh.recommend("u", k=10, context=context, policy=policy)]
            finally:
                fresh.close()
            for _ in range(2):  # the second request from what the first one kept
                assert [r.to_dict() for r in kept.recommend("u", k=10, context=context, policy=policy)] == expected
            named |= {r["reason"]["text"] for r in expected if r["reason"]["item_id"] == "mine"}
        assert any('"Before"' in text for text in named) and any('"After"' in text for text in named)  # (both seen)
    finally:
        kept.close()
