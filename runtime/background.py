"""Non-blocking use of a Recommender: calls return at once, and run on one worker thread.

An app's UI thread must not wait for a history write on slow flash or for a ranking pass:

    rec = Recommender.open("bundle")
    with Background(rec) as bg:
        bg.record("ana", "film-42", "finish")                 # returns a Future at once
        shown = bg.recommend("ana", k=10, latest="home")     # a Future of the list
        shown.add_done_callback(lambda f: ui.show(f.result()))
        items = await bg.recommend_async("ana", k=10)        # or awaited, from asyncio code

Calls run one at a time, in the order they were made: a list asked for after an event is built
with that event, as a direct call would be. Results and errors arrive through
`concurrent.futures.Future`s (an EdgerecError raised by a call is raised again by `result()`).
Nothing is dropped silently: when `max_pending` calls wait already, a new call raises BusyError at
once (the app still holds the event), and `close()` - called by `with`, or at interpreter exit for
a runner nobody closed - runs every call still waiting before the thread stops. The one call that
can be skipped is a list nobody will show: with `latest="<screen>"`, a list still waiting for the
same user and screen is cancelled when a newer one is asked for (so its place in the queue is free
for the newer one). Closing the Recommender closes its runners first, running what waits.
"""

from __future__ import annotations

import copy
import queue
import threading
import weakref

from edgerec.errors import BusyError, ConfigError
from edgerec.runtime import checks
from edgerec.runtime.policies import Filters, Policy
from edgerec.runtime.request import parse_context

MAX_PENDING = 256  # calls waiting at most: a device this far behind should tell its app, not queue on


class Background:
    """Runs calls on `recommender` from one worker thread; each call returns a Future."""

    def __init__(self, recommender, max_pending: int = MAX_PENDING):
        # imported here: importing the runtime stays as light as before (concurrent.futures loads logging)
        from concurrent.futures import Future

        from edgerec.runtime.recommender import Recommender

        if not isinstance(recommender, Recommender):
            raise ConfigError(f"Background runs a Recommender (Recommender.open(...)), not {type(recommender).__name__}")
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ConfigError(f"max_pending must be a whole number of at least 1, not {max_pending!r}")
        if getattr(getattr(recommender, "history", None), "closed", False):  # every call would fail on its Future
            raise ConfigError("this Recommender is closed; open it again before making a Background for it")
        self.recommender, self._future = recommender, Future
        self._state = _Worker(max_pending)
        self._latest: dict[tuple[str, str], object] = {}  # (user, screen) -> the newest list's Future
        self._lock = threading.RLock()  # reentrant: cancelling an older list runs its callback (_forget) at once
        self._thread = threading.Thread(target=self._state.run, name="edgerec-background", daemon=True)
        self._state.thread = self._thread
        self._thread.start()
        # a runner nobody closed still runs what waits (events) when the program ends
        self._finalizer = weakref.finalize(self, self._state.stop, self._thread)
        recommender.runners.add(self)  # its close() runs what waits here first (weakly held: no leak)

    # ---------------------------------------------------------- the calls

    def submit(self, fn, *args, **kwargs):
        """Run `fn(*args, **kwargs)` in turn on the worker thread (any callable: a Recommender method
        this class has no shortcut for, or the app's own work that must follow earlier calls). It cannot
        be cancelled: its Future reads as running from the start (an asyncio timeout on record_async
        cancelled an event, and it was never stored)."""
        return self._queued(False, fn, *args, **kwargs)

    def _queued(self, cancellable: bool, fn, *args, **kwargs):
        if not callable(fn):
            raise ConfigError(f"submit() runs a callable, not {type(fn).__name__}")
        future = self._future()
        if cancellable:  # a cancelled list frees its place at once (it waited for nothing)
            state = self._state  # not self: a waiting Future must not keep the runner alive
            future.add_done_callback(lambda done: done.cancelled() and state.release())
        else:
            future.set_running_or_notify_cancel()
        self._state.put((future, fn, args, kwargs))
        return future

    def record(self, user: str, item: str, event: str = "play", value: float | None = None,
               timestamp: float | None = None, context: dict | None = None):
        """Recommender.record in turn; the Future holds the event's id. The event is dated now, when it is handed
        over, as the history dates an event recorded now (its clock, or its mark while the clock is set back:
        retention.py), not when the worker reaches it; its context is checked and copied now."""
        checks.json_object(context, "context")  # here: an oversized context was deep-copied and queued first
        if timestamp is None:  # not the raw clock: as a given time it is kept as given, and a clock reading
            timestamp = self.recommender.history.times()[2]  # 2001 was erased once corrected (audit J1)
        return self.submit(self.recommender.record, user, item, event, value, timestamp, _copied(context))

    def recommend(self, user: str, k: int | None = None, context: dict | None = None, filters=None,
                  policy=None, *, latest: str | None = None):
        """Recommender.recommend in turn; the Future holds the list. With `latest` (a name for the
        screen or row the list is for), a list for the same user and `latest` that has not started
        yet is cancelled: only the newest is built. The context, filters and policy are checked and copied now."""
        if latest is not None:
            if not isinstance(latest, str) or not latest:
                raise ConfigError(f"latest names the screen a list is for (a non-empty string), not {latest!r}")
            checks.text(user, "user")  # before it keys the newest list: a list or None would fail after queueing
        _check_request(filters, policy, context)
        context, filters, policy = _copied(context), _copied(filters), _copied(policy)
        with self._lock:  # two threads asking at once must not both keep an older list
            key = (user, latest)
            older = self._latest.get(key) if latest is not None else None
            if older is not None:  # first: the place it frees may be the one this list needs (max_pending)
                older.cancel()  # False, and no effect, once it runs or has run
            future = self._queued(True, self.recommender.recommend, user, k, context, filters, policy)
            if latest is not None:
                self._latest[key] = future
                future.add_done_callback(lambda done, key=key: self._forget(key, done))
        return future

    def _forget(self, key: tuple[str, str], done) -> None:
        with self._lock:
            if self._latest.get(key) is done:
                del self._latest[key]

    def add_items(self, items: list[dict]):
        """Recommender.add_items in turn (embedding new items from their text can take a while). The items are
        copied now: an app may clear or refill its list once this returns, before the call runs."""
        return self.submit(self.recommender.add_items, _copied(items))

    def forget(self, user: str):
        """Recommender.forget in turn: after every call made before it, so no event of the user
        waiting here is written after the erase."""
        return self.submit(self.recommender.forget, user)

    def flush(self):
        """A Future that is done when every call made before it has run."""
        return self.submit(_nothing)

    async def recommend_async(self, user: str, k: int | None = None, context: dict | None = None, filters=None,
                              policy=None, *, latest: str | None = None):
        """recommend(), awaited: the list, without blocking the event loop."""
        import asyncio

        return await asyncio.wrap_future(self.recommend(user, k, context, filters, policy, latest=latest))

    async def record_async(self, user: str, item: str, event: str = "play", value: float | None = None,
                           timestamp: float | None = None, context: dict | None = None):
        """record(), awaited."""
        import asyncio

        return await asyncio.wrap_future(self.record(user, item, event, value, timestamp, context))

    # ---------------------------------------------------------- the thread

    @property
    def pending(self) -> int:
        """Calls waiting (not started yet, cancelled lists left out): `max_pending` of them at most."""
        return self._state.pending

    def close(self) -> None:
        """Run every call still waiting, then stop the thread; later calls raise ConfigError. The
        recommender stays open (close it after this). A second close() waits too: one that returned at
        once lost the events still waiting when the app closed the recommender next."""
        self._finalizer()
        self._state.stop(self._thread)

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *_) -> None:
        self.close()


class Runners:
    """A Recommender's Background runners, weakly held (no leak), closed with it."""

    def __init__(self):
        self._runners: weakref.WeakSet = weakref.WeakSet()
        self._lock, self._closing = threading.Lock(), False

    def add(self, runner: Background) -> None:
        self._runners.add(runner)

    def close(self) -> bool:
        """Close every runner (what waits in them runs first); False when another close() is under way: two
        runners' workers each closing the Recommender waited for each other's thread for ever."""
        with self._lock:
            if self._closing:
                return False
            self._closing = True
        try:
            for runner in list(self._runners):
                runner.close()
        except BaseException:  # e.g. Ctrl-C in a join: a later close() must still close them and the history
            with self._lock:
                self._closing = False
            raise
        return True


def _nothing() -> None:
    return None


def _check_request(filters, policy, context) -> None:
    """recommend()'s checks of what is copied, in its order, on the caller's thread: the same ConfigError
    at the call, before an oversized argument is deep-copied (~300 ms for a 1M-item list) and queued."""
    checks.instance(filters, Filters, "filters")
    checks.instance(policy, Policy, "policy")
    for part in (filters, policy):
        if part is not None:
            part.check()
    parse_context(context)  # the numbers, then the JSON object of at most 64 KB


def _copied(value):
    """A deep copy of an argument the app may change once the call returned, before the worker runs it."""
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - what cannot be copied is refused by the call itself, in turn
        return value


class _Worker:
    """The queue and the loop of the worker thread (no reference to the Background: its finalizer
    must be able to run when the Background is gone)."""

    def __init__(self, max_pending: int):
        self.max_pending = max_pending
        self.calls: queue.SimpleQueue = queue.SimpleQueue()
        self.pending = 0
        self.closed = False
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None  # set by the Background that starts it

    def release(self) -> None:
        with self.lock:
            self.pending -= 1

    def put(self, call) -> None:
        with self.lock:
            if self.closed:
                raise ConfigError("this Background is closed; make a new one (or call the Recommender directly)")
            if not self.alive():
                raise ConfigError("this Background's worker has stopped (an app's callback raised SystemExit or "
                                  "the like on it); make a new one")
            if self.pending >= self.max_pending:
                raise BusyError(f"{self.pending} calls are waiting already (max_pending={self.max_pending}); the "
                                "device is not keeping up: wait for earlier Futures, or ask for fewer lists")
            self.pending += 1
            self.calls.put(call)

    def run(self) -> None:
        while True:
            call = self.calls.get()
            if call is None:
                return
            future, fn, args, kwargs = call
            # an event's Future runs from the start; a list's runs now unless it was cancelled (and released)
            if not (future.running() or future.set_running_or_notify_cancel()):
                continue
            self.release()  # started: no longer waiting
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # every failure goes to the caller's Future
                outcome = (future.set_exception, exc)
            else:
                outcome = (future.set_result, result)
            try:
                outcome[0](outcome[1])  # runs the app's done-callbacks here
            except BaseException:  # noqa: BLE001 (a callback's SystemExit ended the thread, and every later call)
                pass

    def alive(self) -> bool:
        return self.thread is None or self.thread.is_alive()

    def stop(self, thread: threading.Thread) -> None:
        with self.lock:
            if not self.closed:
                self.closed = True
                self.calls.put(None)  # after every call already waiting
        if thread is not threading.current_thread():
            thread.join()
        else:  # a call or done-callback closing its own runner (rec.close() in one): it cannot wait for
            self.run()  # itself, so what waits runs here, before the app closes the history it writes to
            self.calls.put(None)  # and the loop this call came from ends too


__all__ = ["MAX_PENDING", "Background"]
