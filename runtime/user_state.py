"""The first stages: the user's state from the history ("history") and the user vector ("encode").

Both are kept per user until the user's history or the catalog changes, so a
new event reaches the very next request while repeated requests skip the
work. When the user encoder raises or returns non-finite values, the encode
stage's fallback serves the popularity list and says why.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import numpy as np

from edgerec.runtime.history import HistoryStore
from edgerec.runtime.models import Models
from edgerec.runtime.request import Request, UserState
from edgerec.runtime.vocab import CONSUMED, EXCLUDING

HISTORY_WINDOW = 2_000  # newest events read per request
USER_CACHE = 64  # users whose state and vector are kept between requests (a household, a test bench)
FALLBACK_TEXT = "popular right now (your personal picks are unavailable at the moment)"


@dataclass
class UserEntry:
    key: tuple  # (history generation, catalog version, catalog size) it was built for
    state: UserState
    vector: np.ndarray | None = None
    encoded: bool = False  # a failed encoder leaves this False, so the next request tries again
    derived: dict = field(default_factory=dict)  # later stages' per-user work, valid as long as the entry


class UserCache:
    def __init__(self, size: int = USER_CACHE):
        self.size = size
        self._entries: OrderedDict[str, UserEntry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, user: str, key: tuple) -> UserEntry | None:
        with self._lock:
            entry = self._entries.get(user)
            if entry is None or entry.key != key:
                return None
            self._entries.move_to_end(user)
            return entry

    def put(self, user: str, entry: UserEntry) -> None:
        with self._lock:
            self._entries[user] = entry
            self._entries.move_to_end(user)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


class HistoryStage:
    """history: the user's consumed, excluded, liked and disliked rows, tags and languages."""

    def __init__(self, history: HistoryStore, cache: UserCache):
        self.history, self.cache = history, cache

    def __call__(self, request: Request) -> Request:
        cat = request.catalog
        key = (self.history.generation(request.user), cat.version, len(cat))
        entry = self.cache.get(request.user, key)
        if entry is not None and entry.encoded:
            request.count("user_cache_hits")
        else:
            state = read_state(self.history, cat, request.user)
            entry = UserEntry(key, state, encoded=not state.consumed)  # a newcomer has nothing to encode
            self.cache.put(request.user, entry)
        request.state, request.vector, request.encoded = entry.state, entry.vector, entry.encoded
        request.entry = entry
        return request


def read_state(history: HistoryStore, cat, user: str) -> UserState:
    index, size = cat.index, len(cat)
    consumed, seen_consumed, excluded, liked, disliked = [], set(), set(), [], []
    loved, finished = [], []
    tags, languages = Counter(), Counter()
    events = history.item_events(user, HISTORY_WINDOW)
    for (_, event), row in zip(events, index.get_many([item for item, _ in events])):
        if row is None or row >= size:
            continue  # an item the catalog no longer has (or that arrived after this request began)
        if event in CONSUMED and row not in seen_consumed:
            seen_consumed.add(row)
            consumed.append(row)
        if event in EXCLUDING:
            excluded.add(row)
        if event == "more_like_this":
            liked.append(row)
            excluded.add(row)  # show what is like it, not the item itself
        elif event == "not_interested":
            disliked.append(row)
        elif event == "like":
            loved.append(row)
        elif event == "finish":
            finished.append(row)
    recent = np.array(consumed[-50:], np.int64)
    tags.update(cat.tag_counts(consumed[-50:]))
    if "language" in cat.categorical:
        languages.update(lang for lang in cat.column("language", recent) if lang)
    prefs = history.preferences(user)
    tags.update({t: 3 for t in prefs.get("tag", []) + prefs.get("genre", [])})
    languages.update({lang: 3 for lang in prefs.get("language", [])})
    return UserState(consumed, excluded, liked[-5:], disliked[-20:], tags, languages, loved[-5:], finished[-5:],
                     list(prefs.get("tag", [])))


class EncodeStage:
    """encode: the user vector from the consumed items (required; falls back to popularity)."""

    def __init__(self, models: Models):
        self.models = models

    @staticmethod
    def applies(request: Request) -> bool:
        return not request.encoded and bool(request.state.consumed)

    def __call__(self, request: Request) -> Request:
        rows = [request.catalog.encoder_inputs(request.state.consumed)]
        vector = None
        if len(rows[0]):  # items added on the device have no model input
            vector = self.models.encoder.encode(rows)[0]
            if not np.all(np.isfinite(vector)):
                raise FloatingPointError("the user encoder returned NaN or infinite values")
        request.vector, request.encoded = vector, True
        request.entry.vector, request.entry.encoded = vector, True
        return request

    @staticmethod
    def fallback(request: Request) -> Request:
        """The encoder failed: serve the popularity list (seen items, filters and feedback still apply)."""
        request.vector, request.fallback = None, FALLBACK_TEXT
        return request
