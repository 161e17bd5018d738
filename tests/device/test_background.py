"""Background: calls that return at once, run in order on one thread, and lose nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from concurrent.futures import CancelledError

import pytest

from edgerec.errors import BusyError, ConfigError, UnknownIdError
from edgerec.runtime import Background, Recommender

WAIT = 30  # seconds a test waits for a Future at most (it fails rather than hangs)


@pytest.fixture
def rec(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx") as opened:
        yield opened


def items(rec, start, n):
    return [rec.catalog.item_id(i) for i in range(start, start + n)]


def ids(results):
    return [r.item_id for r in results]


class Gate:
    """A call that holds the worker thread until the test opens it: what waits behind it is queued."""

    def __init__(self):
        self.entered, self.opened = threading.Event(), threading.Event()

    def __call__(self):
        self.entered.set()
        assert self.opened.wait(WAIT)
        return "opened"


def held(bg) -> Gate:
    gate = Gate()
    bg.submit(gate)
    assert gate.entered.wait(WAIT)
    return gate


def test_the_lists_are_the_direct_calls_lists_and_events_count_in_order(rec):
    now = time.time() - 600
    with Background(rec) as bg:
        for i, item in enumerate(items(rec, 0, 5)):
            bg.record("ana", item, "finish", timestamp=now + i)
        listed = bg.recommend("ana", k=8).result(WAIT)  # asked after the events: built with them
        assert ids(listed) == ids(rec.recommend("ana", k=8))  # the same list as a direct call
        assert not set(items(rec, 0, 5)) & set(ids(listed))  # the finished items are never listed again
        skipped = ids(listed)[0]
        assert bg.record("ana", skipped, "skip").result(WAIT) > 0  # the event's id
        assert skipped not in ids(bg.recommend("ana", k=8).result(WAIT))
    assert rec.history.count("ana") == 6


def test_a_call_returns_before_its_work_is_done(rec):
    with Background(rec) as bg:
        gate = held(bg)
        future = bg.recommend("ben", k=5)
        assert not future.done() and bg.pending == 1  # the list waits; the gate runs
        gate.opened.set()
        assert len(future.result(WAIT)) == 5
        assert bg.flush().result(WAIT) is None and bg.pending == 0


def test_only_the_newest_list_of_a_screen_is_built_and_events_are_never_skipped(rec):
    with Background(rec) as bg:
        gate = held(bg)
        first = bg.recommend("cy", k=3, latest="home")
        other_screen = bg.recommend("cy", k=3, latest="search")
        other_user = bg.recommend("dee", k=3, latest="home")
        event = bg.record("cy", items(rec, 0, 1)[0], "finish")
        second = bg.recommend("cy", k=3, latest="home")
        plain = bg.recommend("cy", k=3)  # no screen named: never cancelled
        assert first.cancelled() and not second.cancelled()
        gate.opened.set()
        for future in (other_screen, other_user, second, plain):
            assert len(future.result(WAIT)) == 3
        assert event.result(WAIT) > 0 and rec.history.count("cy") == 1
        with pytest.raises(CancelledError):
            first.result(WAIT)
        assert items(rec, 0, 1)[0] not in ids(second.result())  # built after the event queued before it
        assert bg._latest == {}  # nothing kept of finished lists


def test_errors_reach_the_caller_and_the_worker_goes_on(rec):
    with Background(rec) as bg:
        bad = bg.record("eve", "no-such-item", "play")
        wrong = bg.recommend("eve", k=0)
        good = bg.recommend("eve", k=2)
        with pytest.raises(UnknownIdError, match="no-such-item"):
            bad.result(WAIT)
        with pytest.raises(ConfigError, match="k"):
            wrong.result(WAIT)
        assert len(good.result(WAIT)) == 2

        def crash():
            raise SystemExit("an app's own call may end in anything")
        with pytest.raises(SystemExit):
            bg.submit(crash).result(WAIT)
        assert bg.flush().result(WAIT) is None  # the thread survived it


def test_too_many_waiting_calls_are_refused_at_once_with_what_to_do(rec):
    with Background(rec, max_pending=3) as bg:
        gate = held(bg)
        kept = [bg.record("fay", item, "play") for item in items(rec, 0, 3)]  # waiting; the running gate is not
        with pytest.raises(BusyError, match=r"3 calls are waiting already \(max_pending=3\).*wait for earlier"):
            bg.record("fay", items(rec, 3, 1)[0], "play")
        gate.opened.set()
        assert all(f.result(WAIT) > 0 for f in kept)
        assert bg.record("fay", items(rec, 3, 1)[0], "play").result(WAIT) > 0  # room again
    assert rec.history.count("fay") == 4


def test_close_runs_what_waits_and_refuses_what_comes_after(rec):
    bg = Background(rec)
    gate = held(bg)
    waiting = [bg.record("gus", item, "play") for item in items(rec, 0, 4)]
    threading.Timer(0.05, gate.opened.set).start()
    bg.close()  # returns once the four events are written
    assert all(f.done() for f in waiting) and rec.history.count("gus") == 4
    with pytest.raises(ConfigError, match="closed"):
        bg.recommend("gus")
    bg.close()  # twice is fine


def test_a_call_may_close_its_own_runner(rec):
    bg = Background(rec)
    assert bg.submit(bg.close).result(WAIT) is None
    with pytest.raises(ConfigError, match="closed"):
        bg.flush()


def test_asyncio_code_awaits_lists_and_events(rec):
    async def main():
        with Background(rec) as bg:
            await bg.record_async("hal", items(rec, 0, 1)[0], "finish")
            return await bg.recommend_async("hal", k=4, latest="home")
    listed = asyncio.run(main())
    assert len(listed) == 4 and items(rec, 0, 1)[0] not in ids(listed)


def test_two_threads_asking_at_once_keep_one_newest_list_each(rec):
    with Background(rec) as bg:
        gate = held(bg)
        futures, lock = [], threading.Lock()

        def ask(user):
            for _ in range(20):
                future = bg.recommend(user, k=2, latest="home")
                with lock:
                    futures.append((user, future))
        threads = [threading.Thread(target=ask, args=(u,)) for u in ("ivy", "jon")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        gate.opened.set()
        bg.flush().result(WAIT)
    for user in ("ivy", "jon"):
        mine = [f for u, f in futures if u == user]
        assert [f.cancelled() for f in mine] == [True] * 19 + [False]
        assert len(mine[-1].result()) == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "8", None])
def test_hostile_arguments_are_config_errors(rec, bad):
    with pytest.raises(ConfigError, match="max_pending"):
        Background(rec, max_pending=bad)
    with pytest.raises(ConfigError, match="Recommender"):
        Background("bundle")
    with Background(rec) as bg:
        with pytest.raises(ConfigError, match="callable"):
            bg.submit("recommend")
        for latest in ("", 3, b"home"):
            with pytest.raises(ConfigError, match="latest"):
                bg.recommend("kim", latest=latest)
        for user in (["kim"], None, 7):  # a user that cannot key the newest list: refused before queueing
            with pytest.raises(ConfigError, match="user"):
                bg.recommend(user, latest="home")
        assert bg.pending == 0 and bg._latest == {}


def test_events_waiting_when_the_program_ends_are_written(golden_bundle, tmp_path):
    """An app that never closes its runner: the events it handed over are still written at exit."""
    script = f"""
import threading
from edgerec.runtime import Background, Recommender
rec = Recommender.open({str(golden_bundle)!r}, history={str(tmp_path / 'h.db')!r}, backend="onnx")
bg = Background(rec)
gate = threading.Event()
bg.submit(gate.wait, 0.2)  # the worker is busy while the events queue up
for row in range(40):
    bg.record("lou", rec.catalog.item_id(row), "play")
"""  # no close(): the interpreter ends with 40 events waiting
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx") as again:
        assert again.history.count("lou") == 40


def test_every_argument_reaches_the_recommender_in_its_place(rec, monkeypatch):
    from edgerec.runtime import Filters, Policy

    def seen(name):
        return lambda *args, **kwargs: (name, args, kwargs)
    for name in ("record", "recommend", "add_items", "forget"):
        monkeypatch.setattr(rec, name, seen(name))
    hand_over = time.time() + 60  # ahead of the history's mark: the clock dates it (behind, the mark would)
    monkeypatch.setattr(rec.history, "clock", lambda: hand_over)  # an event without a time is dated at the hand-over
    filters, policy, context = Filters(kids_safe=True), Policy(diversity=0.3), {"device": "tv"}
    with Background(rec) as bg:
        assert bg.record("u", "i", "like", 0.5, 123.0, {"where": "sofa"}).result(WAIT) == \
            ("record", ("u", "i", "like", 0.5, 123.0, {"where": "sofa"}), {})
        assert bg.recommend("u", 7, context, filters, policy, latest="home").result(WAIT) == \
            ("recommend", ("u", 7, context, filters, policy), {})
        assert asyncio.run(bg.recommend_async("u", 3, context, filters, policy, latest="x")) == \
            ("recommend", ("u", 3, context, filters, policy), {})
        assert asyncio.run(bg.record_async("u", "i", "skip", 1.0, 9.0, {"a": 1})) == \
            ("record", ("u", "i", "skip", 1.0, 9.0, {"a": 1}), {})
        assert bg.record("u", "i").result(WAIT) == ("record", ("u", "i", "play", None, hand_over, None), {})
        assert bg.add_items([{"item_id": "n"}]).result(WAIT) == ("add_items", ([{"item_id": "n"}],), {})
        assert bg.forget("u").result(WAIT) == ("forget", ("u",), {})
        assert bg.submit(dict, [("a", 1)], b=2).result(WAIT) == {"a": 1, "b": 2}


def test_the_worker_is_a_named_daemon_thread_that_ends_with_close(rec):
    bg = Background(rec)
    threads = [t for t in threading.enumerate() if t.name == "edgerec-background"]
    assert len(threads) == 1 and threads[0].daemon  # a forgotten runner never keeps a program alive
    bg.close()
    assert not threads[0].is_alive()


def test_the_refusals_say_what_was_wrong_and_what_to_do(rec):
    with pytest.raises(ConfigError) as err:
        Background(42)
    assert str(err.value) == "Background runs a Recommender (Recommender.open(...)), not int"
    assert Background(rec, max_pending=1).close() is None  # one waiting call is allowed
    with pytest.raises(ConfigError) as err:
        Background(rec, max_pending=0)
    assert str(err.value) == "max_pending must be a whole number of at least 1, not 0"
    bg = Background(rec, max_pending=1)
    with pytest.raises(ConfigError) as err:
        bg.submit(42)
    assert str(err.value) == "submit() runs a callable, not int"
    with pytest.raises(ConfigError) as err:
        bg.recommend("u", latest="")
    assert str(err.value) == "latest names the screen a list is for (a non-empty string), not ''"
    gate = held(bg)
    waiting = bg.flush()
    with pytest.raises(BusyError) as err:
        bg.flush()
    assert str(err.value) == ("1 calls are waiting already (max_pending=1); the device is not keeping up: wait for "
                              "earlier Futures, or ask for fewer lists")
    gate.opened.set()
    bg.close()
    assert waiting.done()
    with pytest.raises(ConfigError) as err:
        bg.flush()
    assert str(err.value) == "this Background is closed; make a new one (or call the Recommender directly)"


def test_awaited_calls_keep_their_defaults_and_the_newest_list_rule(rec, monkeypatch):
    monkeypatch.setattr(rec, "record", lambda *args: ("record", args))
    hand_over = time.time() + 60  # ahead of the history's mark: the clock dates it (behind, the mark would)
    monkeypatch.setattr(rec.history, "clock", lambda: hand_over)  # an event without a time is dated at the hand-over
    with Background(rec) as bg:
        assert asyncio.run(bg.record_async("u", "i")) == ("record", ("u", "i", "play", None, hand_over, None))

    async def main(bg):
        older = bg.recommend("mo", k=2, latest="home")
        newer = asyncio.ensure_future(bg.recommend_async("mo", k=2, latest="home"))
        await asyncio.sleep(0)  # the coroutine has asked for its list and now waits for it
        assert older.cancelled()
        gate.opened.set()
        return await newer
    with Background(rec) as bg:
        gate = held(bg)
        assert len(asyncio.run(main(bg))) == 2


def test_an_event_cannot_be_cancelled_and_a_timed_out_wait_still_stores_it(rec):
    """An asyncio timeout on record_async cancelled the event's Future, and the worker skipped it: never stored."""
    import asyncio

    with Background(rec) as bg:
        gate = held(bg)
        event = bg.record("ida", items(rec, 0, 1)[0], "finish")
        assert not event.cancel()

        async def impatient():
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(bg.record_async("ida", items(rec, 1, 1)[0], "finish"), 0.05)

        asyncio.run(impatient())
        gate.opened.set()
    assert rec.history.count("ida") == 2


def test_a_second_close_waits_for_the_calls_still_waiting(rec):
    """A second close() returned at once, and the app's rec.close() next failed the events still waiting."""
    bg = Background(rec)
    gate = held(bg)
    waiting = [bg.record("jo", item, "play") for item in items(rec, 0, 3)]
    first = threading.Thread(target=bg.close)
    first.start()
    threading.Timer(0.1, gate.opened.set).start()
    bg.close()
    assert all(f.done() and f.exception() is None for f in waiting)
    first.join(WAIT)


@pytest.mark.parametrize("closing", ["done-callback", "submitted"])
def test_the_recommender_closed_on_its_runners_worker_stores_what_waited_first(rec, closing, golden_bundle, tmp_path):
    """rec.close() from a done-callback (or bg.submit(rec.close)) ran on the worker, which cannot wait for
    itself: the history closed at once and the 5 events handed over before it failed (audit J2)."""
    bg = Background(rec)
    gate = held(bg)
    first = bg.recommend("jo", k=3)
    if closing == "done-callback":
        first.add_done_callback(lambda _: rec.close())
    else:
        bg.submit(rec.close)
    waiting = [bg.record("jo", item, "finish") for item in items(rec, 0, 5)]
    gate.opened.set()
    bg._thread.join(WAIT)
    assert not bg._thread.is_alive()
    assert [f.exception(WAIT) for f in waiting] == [None] * 5
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx") as again:
        assert again.history.count("jo") == 5


def test_two_runners_whose_workers_both_close_the_recommender_do_not_wait_for_each_other(rec, golden_bundle,
                                                                                         tmp_path):
    """Each worker closed its own runner, then joined the other's thread, itself inside rec.close() (audit K1)."""
    first, second = Background(rec), Background(rec)
    both_inside = threading.Barrier(3)  # the two workers, and this thread once the record is queued

    def closer():
        both_inside.wait(WAIT)
        rec.close()
        return "closed"

    closing = [runner.submit(closer) for runner in (first, second)]
    waiting = second.record("jo", items(rec, 0, 1)[0], "finish")  # behind the close: runs before the history closes
    both_inside.wait(WAIT)
    assert [f.result(WAIT) for f in closing] == ["closed", "closed"]
    assert waiting.exception(WAIT) is None and rec.history.closed
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx") as again:
        assert again.history.count("jo") == 1


def test_pending_counts_waiting_calls_only_and_cancelled_lists_free_theirs(rec):
    """max_pending counted the running call, a finished one still in its callbacks and cancelled lists: a
    done-callback asking for the next list always got BusyError at max_pending=1, and a fast scroller too."""
    with Background(rec, max_pending=1) as bg:
        chained = []
        first = bg.submit(lambda: 1)
        first.add_done_callback(lambda _: chained.append(bg.flush()))
        first.result(WAIT)
        bg.flush().result(WAIT)
        assert chained and chained[0].result(WAIT) is None
    with Background(rec, max_pending=2) as bg:
        gate = held(bg)
        for _ in range(10):
            bg.recommend("kim", k=3, latest="home")  # each cancels the one before: one waits at a time
        assert bg.pending == 1
        gate.opened.set()


def test_a_callback_that_exits_does_not_stop_the_worker(rec):
    import sys

    with Background(rec) as bg:
        done = bg.submit(lambda: 1)
        done.add_done_callback(lambda _: sys.exit("an app's callback exits"))
        done.result(WAIT)
        assert bg.record("lu", items(rec, 0, 1)[0], "play").result(WAIT) > 0


def test_a_background_for_a_closed_recommender_is_refused_at_once(golden_bundle, tmp_path):
    """It was made, and every call failed later on its Future (audit J2)."""
    rec = Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx")
    rec.close()
    with pytest.raises(ConfigError, match="this Recommender is closed; open it again"):
        Background(rec)


def test_a_close_interrupted_in_a_runner_can_be_done_again(golden_bundle, tmp_path):
    """Ctrl-C in a runner's join left the close 'under way' for ever: every later close() returned at once
    and the history was never closed (audit L1)."""
    rec = Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx")
    runner = Background(rec)
    real_close, calls = runner.close, []

    def interrupted_once():
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        real_close()

    runner.close = interrupted_once
    with pytest.raises(KeyboardInterrupt):
        rec.close()
    assert not rec.history.closed
    rec.close()
    assert rec.history.closed and len(calls) == 2
