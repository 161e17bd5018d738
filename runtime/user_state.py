"""The first stages: the user's state from the history ("history") and the user vector ("encode").

Both are kept per user until the user's history or the catalog changes, or an
event behind them ages out of retention, so a new event reaches the very next
request while repeated requests skip the work. When the user encoder raises or
returns non-finite values, the encode stage's fallback serves the popularity
list and says why.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from edgerec.errors import EdgerecError
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.models import Models
from edgerec.runtime.request import Request, UserState
from edgerec.runtime.user_cache import USER_CACHE, WINDOW_EVENTS, WINDOWS, UserCache, UserEntry  # noqa: F401
from edgerec.runtime.vocab import CONSUMED, DEVICE_EVENTS, EXCLUDING, FEEDBACK

HISTORY_WINDOW = 2_000  # newest events read per request
SHORT_WINDOW = 256  # windows up to this many events are folded in plain Python
FALLBACK_TEXT = "popular right now (your personal picks are unavailable at the moment)"


_CODES = {name: code for code, name in enumerate(DEVICE_EVENTS)}  # other names: -1, read but ignored


def _code_table(names) -> np.ndarray:
    """True at the codes of `names`, indexed by code (code -1 reads the last entry, False)."""
    table = np.zeros(len(DEVICE_EVENTS) + 1, bool)
    table[[_CODES[n] for n in names]] = True
    return table


_CONSUMING = _code_table(CONSUMED)
_EXCLUDING = _code_table([*EXCLUDING, "more_like_this"])  # show what is like it, not the item itself
_CONSUMING_CODES = frozenset(np.flatnonzero(_CONSUMING[:-1]).tolist())  # the same, as sets of codes
_EXCLUDING_CODES = frozenset(np.flatnonzero(_EXCLUDING[:-1]).tolist())
# feedback about a row: its newest such event wins (spec §2), so "not interested" after a like cancels the
# like's pulls, and a like or "more like this" after it lifts the refusal
_FEEDBACK = _code_table(["like", *FEEDBACK])
_NOT_INTERESTED = _CODES["not_interested"]
_FEEDBACK_CODES = frozenset(np.flatnonzero(_FEEDBACK[:-1]).tolist())


def window_size(history: HistoryStore) -> int:
    """Events a state is built from: the newest HISTORY_WINDOW, of those retention keeps."""
    return history.retention.cap(HISTORY_WINDOW)


@dataclass
class Window:
    """The user's newest window_size() events as catalog rows (-1: an item the catalog does not
    have), event codes and times, oldest first; newer events are added to it rather than read again.
    `inputs`: each event's user-encoder input (-1: none), read with the event when the history stage
    asks: a user's encode then reads no column (through the map, a million items' inputs stayed resident)."""

    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    last_id: int = 0  # the newest event read
    times: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    oldest: float | None = field(default=None, compare=False, repr=False)  # times.min(), once (expired)
    inputs: np.ndarray | None = field(default=None, compare=False, repr=False)  # int32, beside `rows`

    def extended(self, events: list[tuple[int, str, str, float]], index, size: int, window: int,
                 inputs_of=None) -> Window:
        """A copy with `events` ((id, item, event, ts), oldest first, newer than last_id) added and the
        oldest dropped beyond `window` events: what a read of the newest `window` events gives.
        inputs_of(rows) -> each row's encoder input (catalog.input_rows): kept beside the rows when
        this window has them (or is empty)."""
        if not events:
            return self
        _, items, names, stamps = zip(*events)
        rows = np.array([-1 if row is None or row >= size else row for row in index.get_many(list(items))], np.int64)
        codes = np.array([_CODES.get(name, -1) for name in names], np.int8)
        times = np.array(stamps, np.float64)
        inputs = None
        if inputs_of is not None and (self.inputs is not None or not len(self.rows)):
            try:
                inputs = np.asarray(inputs_of(rows), np.int32)
                inputs = np.concatenate([self.inputs, inputs]) if len(self.rows) else inputs
            except (OSError, EdgerecError):  # none kept: the encode stage reads them, and its failure has a fallback
                inputs = None
        if len(self.rows):
            rows, codes = np.concatenate([self.rows, rows]), np.concatenate([self.codes, codes])
            times = np.concatenate([self.times, times])
        drop = max(len(rows) - window, 0)
        return Window(rows[drop:], codes[drop:], events[-1][0], times[drop:],
                      inputs=None if inputs is None else inputs[drop:])

    def encoder_inputs(self, rows: list[int]) -> np.ndarray | None:
        """The encoder inputs of `rows` (the state's consumed rows), rows without one left out, as
        catalog.encoder_inputs gives them; None when they were not kept or a row is not in the window."""
        if self.inputs is None or not rows or len(self.inputs) != len(self.rows):
            return None
        if len(self.rows) <= SHORT_WINDOW:  # a dict costs a third of numpy's sort and search here
            of = dict(zip(self.rows.tolist(), self.inputs.tolist()))
            found = [of.get(row) for row in rows]
            if None in found:  # an app stage changed the state: read the column
                return None
            return np.array([x for x in found if x >= 0], np.int64)
        wanted = np.asarray(rows, np.int64)
        order = np.argsort(self.rows, kind="stable")
        at = order[np.minimum(np.searchsorted(self.rows[order], wanted), len(order) - 1)]
        if not np.array_equal(self.rows[at], wanted):
            return None
        found = self.inputs[at].astype(np.int64)
        return found[found >= 0]

    def expired(self, cutoff: float) -> bool:
        """Whether an event of the window is older than `cutoff`: retention no longer keeps it, so
        the window is not what a read gives now (and an event it left out may count again). An empty one
        always is: a newcomer's onboarding choices age out by their own time, which it does not hold."""
        if self.oldest is None:  # read once: a window's arrays never change (extended() makes a new one)
            self.oldest = float(self.times.min()) if len(self.times) else -math.inf
        return self.oldest < cutoff

    def folded(self) -> dict:
        """The state's event fields: consumed rows in first-consumption order, the excluded set and
        the newest liked (5), disliked (20), loved (5) and finished (5) rows, each row's newest feedback
        (like, more_like_this, not_interested) deciding whether it is refused (spec §2)."""
        if len(self.rows) <= SHORT_WINDOW:  # a few numpy calls on tiny arrays cost more than one loop
            return fold_events(self.rows.tolist(), self.codes.tolist())
        known = self.rows >= 0
        rows, codes = self.rows[known], self.codes[known]

        refused = positive = ()  # rows whose newest feedback is not_interested / like or more_like_this
        if (codes == _NOT_INTERESTED).any():  # without a refusal every row keeps its events
            said = _FEEDBACK[codes]
            last, at = np.unique(rows[said][::-1], return_index=True)  # newest first: each row's newest
            refusal = codes[said][::-1][at] == _NOT_INTERESTED
            refused, positive = set(last[refusal].tolist()), set(last[~refusal].tolist())

        def newest(event: str, n: int) -> list[int]:
            picked = rows[codes == _CODES[event]]
            dropped = positive if event == "not_interested" else refused
            if not dropped:
                return picked[-n:].tolist()
            kept = []
            for row in reversed(picked.tolist()):
                if row not in dropped:
                    kept.append(row)
                    if len(kept) == n:
                        break
            return kept[::-1]

        consumed = list(dict.fromkeys(rows[_CONSUMING[codes]].tolist()))  # first consumption order
        return {"consumed": consumed, "excluded": set(rows[_EXCLUDING[codes]].tolist()),
                "liked": newest("more_like_this", 5), "disliked": newest("not_interested", 20),
                "loved": newest("like", 5), "finished": newest("finish", 5)}


_NEWEST = (("liked", "more_like_this", 5), ("disliked", "not_interested", 20), ("loved", "like", 5),
           ("finished", "finish", 5))


def fold_events(rows: list[int], codes: list[int]) -> dict:
    """Window.folded() of a window given as lists, in one pass (the same fields, the same order)."""
    consuming, excluding, feedback = _CONSUMING_CODES, _EXCLUDING_CODES, _FEEDBACK_CODES
    newest = {_CODES[event]: [] for _, event, _ in _NEWEST}
    consumed, excluded, said = {}, set(), {}  # said: row -> its newest feedback code
    for row, code in zip(rows, codes):
        if row < 0:
            continue
        if code in consuming and row not in consumed:
            consumed[row] = None
        if code in excluding:
            excluded.add(row)
        if code in newest:  # (the feedback codes are among them)
            newest[code].append(row)
            if code in feedback:
                said[row] = code
    out = {"consumed": list(consumed), "excluded": excluded}
    refusals = bool(newest[_NOT_INTERESTED])  # without one every row keeps its events
    for field_name, event, n in _NEWEST:
        code = _CODES[event]
        picked = newest[code]
        if refusals and picked:  # the newest feedback about a row wins (spec §2)
            if code == _NOT_INTERESTED:
                picked = [row for row in picked if said[row] == code]
            else:
                picked = [row for row in picked if said.get(row) != _NOT_INTERESTED]
        out[field_name] = picked[-n:]
    return out


class HistoryStage:
    """history: the user's consumed, excluded, liked and disliked rows, tags and languages.

    After the user's own new events (and nothing else changed), only those are read and added to
    what the last request read: a long history costs its new events, not its length."""

    def __init__(self, history: HistoryStore, cache: UserCache):
        self.history, self.cache = history, cache

    def __call__(self, request: Request) -> Request:
        forgets = self.cache.forgets  # before anything is read: a forget() from now on keeps this state out
        cat = request.catalog
        key = (self.history.generation(request.user), cat.version, len(cat))
        cutoff = self.history.cutoff()  # nothing cached may hold an event retention no longer keeps
        entry = self.cache.get(request.user, key)
        if entry is not None and entry.encoded and entry.window is not None and not entry.window.expired(cutoff):
            request.count("user_cache_hits")
        else:
            window = self._appended(request.user, key, cat, cutoff)
            if window is None:
                size = window_size(self.history)
                window = Window().extended(self.history.events_after(request.user, 0, size), cat.index, len(cat), size,
                                           getattr(cat, "window_inputs", None))  # (a stand-in catalog: none)
            else:
                request.count("user_state_appended")
            state = state_of(window, cat, self.history.preferences(request.user))
            entry = UserEntry(key, state, encoded=not state.consumed, window=window)  # a newcomer: nothing to encode
            self.cache.put(request.user, entry, forgets)
        request.state, request.vector, request.encoded = entry.state, entry.vector, entry.encoded
        request.entry = entry
        return request

    def _appended(self, user: str, key: tuple, cat, cutoff: float) -> Window | None:
        """The cached window with the events appended since, when nothing else changed and none of
        its events has aged out; else None."""
        kept = self.cache.window(user)
        if kept is None or kept[0][1:] != key[1:] or kept[1].expired(cutoff):
            return None
        (before, now), window = (kept[0][0], key[0]), kept[1]
        if before[:3] != now[:3]:  # another connection, a store-wide change, or a rewrite of this profile
            return None
        size = window_size(self.history)
        new = self.history.events_after(user, window.last_id, size) if before != now else []
        return window.extended(new, cat.index, len(cat), size, getattr(cat, "window_inputs", None))


def read_state(history: HistoryStore, cat, user: str) -> UserState:
    """The user's state from a full read of the newest window_size() events."""
    size = window_size(history)
    window = Window().extended(history.events_after(user, 0, size), cat.index, len(cat), size)
    return state_of(window, cat, history.preferences(user))


def state_of(window: Window, cat, prefs: dict[str, list[str]]) -> UserState:
    """The state: the window's events plus the tags and languages of the recent items and the
    onboarding choices."""
    events = window.folded()
    consumed = events["consumed"]
    tags, languages = Counter(cat.tag_counts(consumed[-50:])), Counter()
    if "language" in cat.categorical and consumed:
        languages.update(lang for lang in cat.column("language", np.array(consumed[-50:], np.int64)).tolist() if lang)
    chosen, spoken = prefs.get("tag", []) + prefs.get("genre", []), prefs.get("language", [])
    if chosen:  # (Counter.update costs even when empty: most users made no onboarding choice)
        tags.update({t: 3 for t in chosen})
    if spoken:
        languages.update({lang: 3 for lang in spoken})
    return UserState(consumed, events["excluded"], events["liked"], events["disliked"], tags, languages,
                     events["loved"], events["finished"], {kind: list(v) for kind, v in prefs.items()})


class EncoderUnavailable(RuntimeError):
    """The user encoder could not be loaded (a file damaged after open): a failure of the encoder,
    which its stage's fallback answers, not an error for the app on every request."""


class EncodeStage:
    """encode: the user vector from the consumed items (required; falls back to popularity)."""

    def __init__(self, models: Models):
        self.models = models

    @staticmethod
    def applies(request: Request) -> bool:
        return not request.encoded and bool(request.state.consumed)

    def __call__(self, request: Request) -> Request:
        consumed, window = request.state.consumed, getattr(request.entry, "window", None)
        kept = window.encoder_inputs(consumed) if window is not None else None  # read with the events
        rows = [request.catalog.encoder_inputs(consumed) if kept is None else kept]
        vector = None
        if len(rows[0]):  # items added on the device have no model input
            try:
                encoder = self.models.encoder
            except EdgerecError as exc:  # its file fails its check at load: popularity, as for a crash
                raise EncoderUnavailable(str(exc)) from exc
            vector = encoder.encode(rows)[0]
            if vector.shape != (self.models.manifest.dim,):  # a file of another space: the scan would fail
                raise ValueError(f"the user encoder returned {vector.size} values; the bundle's space has "
                                 f"{self.models.manifest.dim}")
            if not np.all(np.isfinite(vector)):
                raise FloatingPointError("the user encoder returned NaN or infinite values")
            if not vector.any():  # no direction: every score 0, a list in row order with personal reasons
                raise FloatingPointError("the user encoder returned an all-zero vector")
            vector.flags.writeable = False  # kept in the user's cache entry: no stage may change it
        request.vector, request.encoded = vector, True
        if request.entry is not None:  # None when an app stage changed the state: nothing of it is kept
            request.entry.vector, request.entry.encoded = vector, True
        return request

    @staticmethod
    def fallback(request: Request) -> Request:
        """The encoder failed: serve the popularity list (seen items, filters and feedback still apply)."""
        request.vector, request.fallback = None, FALLBACK_TEXT
        return request
