"""What requests keep, and what the Background runner queues, stays bounded (audit I2):

- the retrieve stage keeps no scan answer longer than KEPT_ROWS rows (a short list of 100k kept up to
  1.2 MB a request, four a user, in a 64-user cache);
- the replay stage keeps one favourites table a user state, whatever replay_min_plays a request asks for;
- Background.record / recommend refuse an oversized or malformed context, Filters or Policy at the call,
  with the direct call's ConfigError, before copying or queueing it.

Device suite: the golden bundle (grown with device_tests.scale where a test needs more rows), no torch.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from edgerec.device_tests.scale import scaled_bundle
from edgerec.errors import ConfigError
from edgerec.runtime import Background, Bundle, Filters, Policy, Recommender
from edgerec.runtime.pipeline import Stage
from edgerec.runtime.retrieve import KEPT_ROWS

NOW = 1763598915.0
CONTEXT = {"now": NOW, "hour": 20.5}
WAIT = 30  # seconds a test waits for the worker at most (it fails rather than hangs)


def probed(rec, after: str) -> list:
    """The requests as they leave the stage `after`."""
    seen = []
    rec.pipeline.insert_after(after, Stage(f"probe {after}", lambda r: seen.append(r) or r))
    return seen


def ids(results):
    return [r.item_id for r in results]


# ---------------------------------------------------------------- the scan answers kept (retrieve.py)


@pytest.fixture(scope="module")
def grown(golden_bundle, tmp_path_factory):
    """The golden bundle grown to a catalog longer than KEPT_ROWS (a fraction of a second)."""
    return scaled_bundle(Bundle.open(golden_bundle), KEPT_ROWS + 1_500, tmp_path_factory.mktemp("grown") / "b")


def test_a_scan_answer_longer_than_kept_rows_is_searched_anew_not_kept(grown):
    with Recommender.open(grown, history=None, backend="onnx") as rec:
        for j in range(4):  # past cold_start_items: the pool streams from the scan's best rows
            rec.record("ana", rec.catalog.item_id(7 * j), "play", timestamp=NOW - 1000 + j)
        seen = probed(rec, "retrieve")
        long = Policy(short_list=KEPT_ROWS + 1_000)
        first = ids(rec.recommend("ana", k=10, context=CONTEXT, policy=long))
        kept = seen[-1].entry.derived["best rows"]
        assert seen[-1].scores is None  # the streamed path, which asks _best_rows for the long answer
        assert kept == {}  # nothing of over KEPT_ROWS rows stays in the user's entry
        assert ids(rec.recommend("ana", k=10, context=CONTEXT, policy=long)) == first  # recomputed alike
        rec.recommend("ana", k=10, context=CONTEXT)  # the bundle's short list (20): kept as before
        assert [len(rows) for rows, _, _ in kept.values()] == [20]
        assert all(len(rows) <= KEPT_ROWS for rows, _, _ in kept.values())
    with Recommender.open(grown, history=None, backend="onnx") as fresh:  # the list itself is unchanged
        for j in range(4):
            fresh.record("ana", fresh.catalog.item_id(7 * j), "play", timestamp=NOW - 1000 + j)
        assert ids(fresh.recommend("ana", k=10, context=CONTEXT, policy=long)) == first


# ---------------------------------------------------------------- the favourites kept (replay.py)


def test_one_favourites_table_serves_every_replay_min_plays_with_the_same_lists(golden_bundle):
    with Recommender.open(golden_bundle, history=None, backend="onnx") as rec:
        cat = rec.catalog
        tracks = [r for r in range(len(cat)) if cat.column("modality", np.array([r]))[0] == "music_track"]
        plays = [track for i, track in enumerate(tracks[:8]) for _ in range(i + 1)]  # track i: i + 1 plays
        for n, row in enumerate(plays):
            rec.record("fan", cat.item_id(row), "play", timestamp=NOW - 86_400 + 60 * n)
        seen = probed(rec, "replay")

        def policy(m):
            return Policy(replay=1.0, replay_min_plays=m, replay_gap=0, replay_minutes=0.0)

        lists = {}
        for m in range(1, 11):
            lists[m] = [(r.item_id, r.reason.kind) for r in rec.recommend("fan", k=20, context=CONTEXT,
                                                                         policy=policy(m))]
        derived = seen[-1].entry.derived
        assert [name for name in derived if name.startswith("favourites")] == ["favourites"]
        assert seen[-1].entry is seen[0].entry  # one user state all along: the table was built once
        replayed = {m: sum(kind == "replay" for _, kind in got) for m, got in lists.items()}
        assert replayed[1] > replayed[5] > replayed[9] == 0  # the threshold still applies per request
        for m, got in lists.items():  # each list as a request without any kept table gives it
            rec.users.drop("fan")
            assert [(r.item_id, r.reason.kind) for r in rec.recommend(
                "fan", k=20, context=CONTEXT, policy=policy(m))] == got


# ---------------------------------------------------------------- what Background takes (background.py)


@pytest.fixture
def rec(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx") as opened:
        yield opened


def refused(call) -> str:
    with pytest.raises(ConfigError) as caught:
        call()
    return str(caught.value)


def bad_filters() -> Filters:
    filters = Filters()
    filters.languages = "en"  # a lone string for a list, set after construction
    return filters


def bad_policy() -> Policy:
    policy = Policy()
    policy.short_list = 0
    return policy


def test_background_refuses_bad_arguments_at_the_call_with_the_direct_calls_error(rec):
    item = rec.catalog.item_id(0)
    oversized = {"rows": list(range(20_000))}  # about 130 KB as JSON: over the 64 KB limit
    bg = Background(rec)
    try:
        entered, opened = threading.Event(), threading.Event()
        bg.submit(lambda: entered.set() or opened.wait(WAIT))  # holds the worker: whatever is accepted waits
        assert entered.wait(WAIT)
        cases = [
            (lambda: bg.record("ana", item, "play", context=oversized),
             lambda: rec.record("ana", item, "play", context=oversized)),
            (lambda: bg.record("ana", item, "play", context={1: "x"}),
             lambda: rec.record("ana", item, "play", context={1: "x"})),
            (lambda: bg.recommend("ana", k=3, context=oversized),
             lambda: rec.recommend("ana", k=3, context=oversized)),
            (lambda: bg.recommend("ana", k=3, context={"now": float("nan")}),
             lambda: rec.recommend("ana", k=3, context={"now": float("nan")})),
            (lambda: bg.recommend("ana", k=3, filters=bad_filters(), latest="home"),
             lambda: rec.recommend("ana", k=3, filters=bad_filters())),
            (lambda: bg.recommend("ana", k=3, policy=bad_policy()),
             lambda: rec.recommend("ana", k=3, policy=bad_policy())),
            (lambda: bg.recommend("ana", k=3, policy={"short_list": 5}),
             lambda: rec.recommend("ana", k=3, policy={"short_list": 5})),
        ]
        for queued, direct in cases:
            assert refused(queued) == refused(direct)
            assert bg.pending == 0  # nothing was queued
        good = bg.record("ana", item, "play", context={"screen": "home"})  # a good call still goes through
        listed = bg.recommend("ana", k=3, context=CONTEXT, filters=Filters(), policy=Policy())
        assert bg.pending == 2
        opened.set()
        assert good.result(WAIT) > 0 and len(listed.result(WAIT)) == 3
    finally:
        opened.set()
        bg.close()
