"""The users' kept work between requests: each recent user's state and vector (UserEntry), and of
users pushed out of those, the window of events their state was built from (user_state.Window).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from edgerec.runtime.request import UserState

if TYPE_CHECKING:  # (user_state imports this module)
    from edgerec.runtime.user_state import Window

USER_CACHE = 64  # users whose state and vector are kept between requests (a household, a test bench)
WINDOW_EVENTS = 100_000  # events of the windows kept for users beyond those (21 bytes each, inputs included)
WINDOWS = 2_000  # windows kept at most, however few events each holds (about 0.8 KiB each when near empty)


@dataclass
class UserEntry:
    key: tuple  # (history generation, catalog version, catalog size) it was built for
    state: UserState
    vector: np.ndarray | None = None
    encoded: bool = False  # a failed encoder leaves this False, so the next request tries again
    derived: dict = field(default_factory=dict)  # later stages' per-user work, valid as long as the entry
    window: Window | None = None  # the events behind `state`, to add newer ones to


class UserCache:
    """The newest `size` users' entries; of users pushed out, their windows alone (a few bytes an
    event, at most `window_events` in all and `windows` of them), so their next request reads only
    the events after it. An empty window is not kept: a read of no events costs nothing to repeat."""

    def __init__(self, size: int = USER_CACHE, window_events: int = WINDOW_EVENTS, windows: int = WINDOWS):
        self.size, self.window_events, self.windows = size, window_events, windows
        self._entries: OrderedDict[str, UserEntry] = OrderedDict()
        self._windows: OrderedDict[str, tuple[tuple, Window]] = OrderedDict()  # user -> (key, window)
        self._window_total = 0  # events in _windows
        self.forgets = 0  # drop() calls so far: a request that read before one keeps nothing (put)
        self._lock = threading.Lock()

    def get(self, user: str, key: tuple | None = None) -> UserEntry | None:
        """The user's entry if it was built for `key` (None: whatever it was built for)."""
        with self._lock:
            entry = self._entries.get(user)
            if entry is None or (key is not None and entry.key != key):
                return None
            self._entries.move_to_end(user)
            return entry

    def window(self, user: str) -> tuple[tuple, Window] | None:
        """(the key it was read for, the window) of the user's last state, entry or not."""
        with self._lock:
            entry = self._entries.get(user)
            if entry is not None:
                return (entry.key, entry.window) if entry.window is not None else None
            return self._windows.get(user)

    def drop(self, user: str) -> None:
        """Forget what is kept of `user` (forget(): their history must not outlive it in memory)."""
        with self._lock:
            self.forgets += 1
            self._entries.pop(user, None)
            self._drop_window(user)

    def put(self, user: str, entry: UserEntry, forgets: int | None = None) -> None:
        """Keep `entry`; not when a forget() ran since the request took `forgets` (it may hold what was forgotten)."""
        with self._lock:
            if forgets is not None and forgets != self.forgets:
                return
            self._entries[user] = entry
            self._entries.move_to_end(user)
            self._drop_window(user)
            while len(self._entries) > self.size:
                name, old = self._entries.popitem(last=False)
                # not an empty window: guests asking for lists kept one each (0.8 KiB) without a bound
                if old.window is not None and 0 < len(old.window.rows) <= self.window_events:
                    self._windows[name] = (old.key, old.window)
                    self._window_total += len(old.window.rows)
            while self._window_total > self.window_events or len(self._windows) > self.windows:
                self._window_total -= len(self._windows.popitem(last=False)[1][1].rows)

    def _drop_window(self, user: str) -> None:
        kept = self._windows.pop(user, None)
        if kept is not None:
            self._window_total -= len(kept[1].rows)
