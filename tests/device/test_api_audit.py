"""An app developer's audit of the device API (Recommender on the golden bundle): hostile event times,
names and contexts, catalog updates seen through a second Recommender on the same history, random
sequences of calls from two Recommenders, and a process killed while another records into the file.
Each call gives a right answer or an EdgerecError that says what to do; never a silently wrong list."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgerec.errors import ConfigError, UnknownIdError
from edgerec.runtime import Filters, Recommender
from edgerec.runtime.vocab import DEVICE_EVENTS, EXCLUDING

NOW = 1_790_000_000.0
DAY = 86_400.0


@pytest.fixture
def pair(golden_bundle, tmp_path):
    """Two Recommenders on one history file, as two processes of one app."""
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as a, \
            Recommender.open(golden_bundle, history=tmp_path / "h.db") as b:
        yield a, b


def ids(results) -> list[str]:
    return [r.item_id for r in results]


# ------------------------------------------------------------------ record()


def test_a_very_long_unknown_event_is_named_shortened(pair):
    rec = pair[0]
    for call in (lambda: rec.record("u", "i01", "x" * 100_000), lambda: rec.history.record("u", "i01", "y" * 100_000)):
        with pytest.raises(ConfigError) as caught:
            call()
        message = str(caught.value)  # was the whole 100,000 characters, in every log line of the app
        assert len(message) < 200 and message.endswith("...; use one of " + ", ".join(DEVICE_EVENTS))
    assert rec.history.count() == 0


@pytest.mark.parametrize("ahead", [DAY + 1, 365 * DAY, 1e11 - NOW])
def test_an_event_dated_after_now_is_refused_and_nothing_stored(pair, ahead):
    rec, now = pair[0], time.time() + 5  # the history's clock mark is the real time it opened at: not behind it
    rec.history.clock = lambda: now
    with pytest.raises(ConfigError, match=r"after now by the device clock .*leave the timestamp out"):
        rec.record("u", "i01", "play", timestamp=min(now + ahead, 1e11))  # was stored, kept past max_age_days
    assert rec.history.count() == 0


def test_an_event_up_to_a_day_ahead_of_the_clock_is_kept(pair):
    rec, now = pair[0], time.time() + 5  # (a clock set behind the mark dates events at the mark)
    rec.history.clock = lambda: now
    rec.record("u", "i01", "play", timestamp=now + DAY)  # two clocks a little apart
    rec.record("u", "i02", "play")  # no timestamp: the store's clock
    assert [e["ts"] for e in rec.export_history("u")["events"]] == [now + DAY, now]


# ------------------------------------------------------------------ recommend()


@pytest.mark.parametrize("context", [{"Device": "tv"}, {"devcie": "tv"}, {"time": 20}, {"now": NOW, "hour ": 3}])
def test_an_unknown_context_key_is_refused_naming_the_known_ones(pair, context):
    with pytest.raises(ConfigError, match="unknown context key .*takes now, hour, device"):
        pair[0].recommend("u", k=3, context=context)  # was ignored: a list for another context


def test_the_known_context_keys_still_steer_the_list(pair):
    rec = pair[0]
    assert rec.recommend("u", k=3, context={"now": NOW, "hour": 8.5, "device": "phone"})
    assert rec.recommend("u", k=3, context={}) and rec.recommend("u", k=3, context=None)


@pytest.mark.parametrize("k", [0, -1, True, 2.0, "3", 10_001])
def test_a_bad_k_is_refused(pair, k):
    with pytest.raises(ConfigError, match="k must be"):
        pair[0].recommend("u", k=k)


def test_k_above_the_catalog_gives_every_item_once(pair):
    rec = pair[0]
    out = ids(rec.recommend("u", k=10_000))
    assert sorted(out) == sorted(rec.catalog.item_id(r) for r in range(len(rec.catalog)))


def test_feedback_on_an_unknown_or_removed_item_is_refused_and_nothing_stored(pair):
    a, b = pair
    a.remove_items(["i07"])
    for event in ("like", "not_interested", "more_like_this"):
        for item in ("no-such-item", "i07"):
            with pytest.raises(UnknownIdError, match="add it with add_items"):
                b.record("u", item, event)
    assert b.history.count() == 0


def test_a_history_of_removed_items_only_still_gets_a_full_list_without_them(pair):
    a, b = pair
    for item in ("i00", "i01", "i02"):
        a.record("u", item, "finish")
    a.add_items([{"item_id": "new", "genre": "jazz", "vector": [1, 0, 0, 0, 0, 0, 0, 0]}])
    a.record("u", "new", "more_like_this")
    a.remove_items(["i00", "i01", "i02", "new"])
    out = ids(b.recommend("u", k=100))
    assert len(out) == len(set(out)) == 53 and not {"i00", "i01", "i02", "new"} & set(out)


def test_forget_and_export_of_a_user_never_seen(pair):
    assert pair[0].forget("nobody") == 0
    export = pair[1].export_history("nobody")
    assert (export["profile"], export["events"], export["preferences"]) == ("nobody", [], {})


# ------------------------------------------------------------------ another Recommender's catalog updates


def test_onboarding_takes_a_genre_another_recommender_added(pair):
    a, b = pair
    a.add_items([{"item_id": "f1", "genre": "Folk", "vector": [1, 0, 0, 0, 0, 0, 0, 0]}])
    b.onboard("n", genres=["Folk"])  # was "unknown genres ['Folk']" until some other call of b
    assert b.history.preferences("n") == {"genre": ["Folk"]}


def test_a_miscased_filter_of_a_genre_another_recommender_added_is_refused(pair):
    a, b = pair
    a.add_items([{"item_id": "f1", "genre": "Folk", "vector": [1, 0, 0, 0, 0, 0, 0, 0]}])
    with pytest.raises(ConfigError, match="'folk' -> 'Folk'"):
        b.recommend("u", k=5, filters=Filters(genres=["folk"]))  # was an empty list, without a word
    assert ids(b.recommend("u", k=5, filters=Filters(genres=["Folk"]))) == ["f1"]


def test_stats_count_the_items_another_recommender_added_and_removed(pair):
    a, b = pair
    a.add_items([{"item_id": "f1", "genre": "jazz", "vector": [1, 0, 0, 0, 0, 0, 0, 0]}])
    a.remove_items(["i03"])
    stats = b.stats()  # was the catalog of b's last other call
    assert (stats["items"], stats["added_items"], stats["removed_items"]) == (56, 1, 1)


# ------------------------------------------------------------------ random sequences from two Recommenders

N_ITEMS = 56  # the golden catalog
OPERATION = st.one_of(
    st.tuples(st.just("record"), st.integers(0, 1), st.sampled_from(["u", "v"]), st.integers(0, N_ITEMS + 2),
              st.sampled_from(DEVICE_EVENTS)),
    st.tuples(st.just("add"), st.integers(0, 1), st.integers(0, N_ITEMS + 2)),
    st.tuples(st.just("remove"), st.integers(0, 1), st.integers(0, N_ITEMS + 2)),
    st.tuples(st.just("forget"), st.integers(0, 1), st.sampled_from(["u", "v"])),
    st.tuples(st.just("recommend"), st.integers(0, 1), st.sampled_from(["u", "v", "w"]), st.integers(1, 70)),
)


class Model:
    """What the API promises: the active items, and each user's items never to be shown again."""

    def __init__(self, names: list[str]):
        self.names, self.active = names, set(names[:N_ITEMS])
        self.excluded: dict[str, set] = {"u": set(), "v": set(), "w": set()}

    def apply(self, rec, op, rng) -> None:
        kind, item = op[0], (self.names[op[-1]] if op[0] in ("add", "remove") else None)
        if kind == "record":
            user, item, event = op[2], self.names[op[3]], op[4]
            try:
                rec.record(user, item, event)
            except UnknownIdError:
                assert item not in self.active
                return
            assert item in self.active
            if event in EXCLUDING or event == "more_like_this":
                self.excluded[user].add(item)
        elif kind == "add":
            rec.add_items([{"item_id": item, "genre": "jazz", "vector": rng.normal(size=8).tolist()}])
            self.active.add(item)
        elif kind == "remove":
            try:
                rec.remove_items([item])
            except UnknownIdError:
                assert item not in self.active
                return
            assert item in self.active
            self.active.discard(item)
        elif kind == "forget":
            rec.forget(op[2])
            self.excluded[op[2]] = set()
        else:
            self.check(rec.recommend(op[2], k=op[3]), op[2], op[3])

    def check(self, results, user: str, k: int) -> None:
        got = ids(results)
        allowed = self.active - self.excluded[user]
        assert len(got) == len(set(got)) == min(k, len(allowed)), (got, k)
        assert set(got) <= allowed, set(got) - allowed
        assert all(math.isfinite(r.score) for r in results)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(operations=st.lists(OPERATION, min_size=1, max_size=20))
def test_two_recommenders_on_one_file_keep_every_promise(golden_bundle, tmp_path_factory, operations):
    path = tmp_path_factory.mktemp("two") / "h.db"
    with Recommender.open(golden_bundle, history=path) as a, Recommender.open(golden_bundle, history=path) as b:
        model = Model([a.catalog.item_id(r) for r in range(N_ITEMS)] + ["x0", "x1", "x2"])
        rng = np.random.default_rng(0)
        for op in operations:
            model.apply((a, b)[op[1]], op, rng)
    with Recommender.open(golden_bundle, history=path) as c:  # reopened: the same catalog and histories
        for user in ("u", "v"):
            model.check(c.recommend(user, k=70), user, 70)


# ------------------------------------------------------------------ processes


CHILD = textwrap.dedent("""
    import sys
    from edgerec.runtime import Recommender
    bundle, history, user, stop = sys.argv[1:5]
    with Recommender.open(bundle, history=history) as rec:
        items = [rec.catalog.item_id(r) for r in range(50)]
        print("ready", flush=True)
        i = 0
        while stop == "never" or i < int(stop):
            event_id = rec.record(user, items[i % 50], "play", context={"n": i})
            print("event", event_id, flush=True)  # acknowledged once record() returned
            if i % 9 == 8:
                rec.add_items([{"item_id": f"{user}-{i}", "genre": "jazz"}])
                print("item", f"{user}-{i}", flush=True)
            i += 1
""")


def test_a_process_killed_while_another_records_loses_no_acknowledged_event(golden_bundle, tmp_path):
    history = tmp_path / "h.db"
    Recommender.open(golden_bundle, history=history).close()  # created before the two race to create it

    def start(user, stop):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(golden_bundle), str(history), user, stop],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    steady, doomed = start("steady", "150"), start("doomed", "never")
    acked: list[int] = []
    items: list[str] = []
    while len(acked) < 120:
        kind, value = doomed.stdout.readline().split()
        (acked.append(int(value)) if kind == "event" else items.append(value))
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    out, _ = steady.communicate(timeout=60)
    assert steady.returncode == 0 and out.count("event") == 150
    with Recommender.open(golden_bundle, history=history) as rec:
        assert rec.history.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = [e["id"] for e in rec.export_history("doomed")["events"]]
        assert set(acked) <= set(stored) and stored == sorted(stored)
        assert rec.history.count("steady") == 150
        assert all(item in rec.catalog.index for item in items) and len(items) >= 13
        assert len(rec.recommend("doomed", k=5)) == 5


def test_a_closed_recommender_says_it_was_closed_not_that_the_file_is_damaged(golden_bundle, tmp_path):
    """After `with` ended, record() and recommend() advised `edgerec history recover` for a healthy file."""
    from edgerec.errors import HistoryError

    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as rec:
        item = rec.catalog.item_id(0)
        rec.record("u", item, "play")
    closed = r"^the history h\.db was closed \(close\(\) or the end of a `with` block\); open it again to use it$"
    for call in (lambda: rec.record("u", item, "play"), lambda: rec.recommend("u", k=3), lambda: rec.forget("u")):
        with pytest.raises(HistoryError, match=closed):
            call()
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as again:  # the file was fine all along
        assert item not in ids(again.recommend("u", k=3))
