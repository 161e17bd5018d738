"""Guards of the catalog sync (runtime/catalog_sync.py): when the items saved in the history are applied
to an open catalog (at open; after another connection's commit that moved the items counter), and what
applying does with each saved item; with stand-ins for the history and the catalog."""

import threading

import numpy as np
import pytest

from edgerec.errors import HistoryError
from edgerec.runtime.catalog import AddedItem
from edgerec.runtime.catalog_sync import CatalogSync


class History:
    def __init__(self, saved=(), version=1, counter="1"):
        self.saved, self.version, self.counter, self.failing, self.asked = list(saved), version, counter, False, []
        self._lock = threading.RLock()  # HistoryStore's: refresh() takes it before its own

    def _read(self, sql):
        self.asked.append(sql)
        if self.failing:
            raise HistoryError("the history cannot be read")
        if sql == "PRAGMA data_version":
            return [(self.version,)]
        assert sql == "SELECT value FROM meta WHERE key='items_version'"
        return [] if self.counter is None else [(self.counter,)]

    def saved_items(self, space, dim, since=None):
        self.asked.append(("saved_items", space, dim))
        return self.saved


class Catalog:
    """Bundle rows 0..1 ('b0', 'b1'); added rows from 2."""

    base_count = 2
    numeric: dict = {}  # no metadata columns: an added item's metadata is checked against none (checked_meta)
    categorical: dict = {}

    def __init__(self, added=()):
        self.added = list(added)
        self.index = {"b0": 0, "b1": 1, **{a.item_id: 2 + i for i, a in enumerate(self.added)}}
        self.retired, self.calls = set(), []

    def is_active(self, row):
        return row not in self.retired if row < 2 else self.added[row - 2].vector is not None

    def remove(self, item_id):
        self.calls.append(("remove", item_id))

    def replace_many(self, items):
        self.calls.append(("batch", len(items)))
        for item in items:
            self.calls.append(("replace", item.item_id, item.vector.tolist(), item.meta))


def blob(*values):
    return np.asarray(values, np.float32).tobytes()


def applied(history):
    return sum(1 for a in history.asked if isinstance(a, tuple))


def test_the_saved_items_are_applied_at_open_and_again_only_when_the_counter_moved():
    history = History()
    sync = CatalogSync(history, Catalog(), "space-1", 2)
    sync.refresh()
    assert history.asked == ["PRAGMA data_version", "SELECT value FROM meta WHERE key='items_version'",
                              ("saved_items", "space-1", 2)]
    sync.refresh()  # no other connection committed: one pragma, nothing else
    assert history.asked[3:] == ["PRAGMA data_version"]
    history.version = 2  # another connection committed something else
    sync.refresh()
    assert applied(history) == 1 and history.asked[-1] == "SELECT value FROM meta WHERE key='items_version'"
    sync.refresh()  # that commit is now known
    assert history.asked[-1] == "PRAGMA data_version"
    history.version, history.counter = 3, "2"  # another connection saved items
    sync.refresh()
    assert applied(history) == 2
    history.version, history.counter = 4, 2  # the same counter read as a number: not a change
    sync.refresh()
    assert applied(history) == 2


def test_a_history_without_an_items_counter_applies_at_open_and_when_one_appears():
    history = History(counter=None)
    sync = CatalogSync(history, Catalog(), "s", 2)
    sync.refresh()
    history.version = 2
    sync.refresh()
    assert applied(history) == 1
    history.version, history.counter = 3, "1"
    sync.refresh()
    assert applied(history) == 2


def test_an_unreadable_history_stops_the_open_but_not_a_later_request():
    history = History()
    history.failing = True
    sync = CatalogSync(history, Catalog(), "s", 2)
    with pytest.raises(HistoryError, match="cannot be read"):
        sync.refresh()
    history.failing = False
    sync.refresh()  # opened now
    history.failing, history.version = True, 2
    sync.refresh()  # the call's own read or write says so; nothing is applied, nothing raised here
    history.failing = False
    sync.refresh()  # the commit is still unseen, so it is looked at now
    assert history.asked[-1] == "SELECT value FROM meta WHERE key='items_version'"


def test_applying_removes_active_items_and_adds_or_updates_the_others():
    same = AddedItem("kept", np.array([1.0, 0.0], np.float32), {"title": "K", "tags": []})
    gone = AddedItem("was-removed", None, {"title": "R", "tags": []})
    catalog = Catalog([same, gone])
    catalog.retired.add(1)  # bundle item b1 is already removed
    # metadata as add_items() saves it (checked again when read back: checked_meta)
    saved = [("b0", None, {}, True), ("b1", None, {}, True), ("unknown", None, {}, True),
             ("was-removed", None, {}, True),
             ("kept", blob(1.0, 0.0), {"title": "K", "tags": []}, False),  # unchanged: nothing to do
             ("kept", blob(1.0, 0.0), {"title": "K2", "tags": []}, False),  # new metadata
             ("kept", blob(0.0, 1.0), {"title": "K", "tags": []}, False),  # new vector
             ("was-removed", blob(0.6, 0.8), {"title": "R", "tags": []}, False),  # back again
             ("b0", blob(0.0, 1.0), {"title": "B", "tags": []}, False),  # a bundle item updated on the device
             ("new", blob(0.5, 0.5), {"title": "new", "tags": []}, False)]
    sync = CatalogSync(History(saved), catalog, "s", 2)
    sync.refresh()
    # in batches (one copy of the catalog's list each), a second row of an id after the first is applied
    assert catalog.calls == [
        ("remove", "b0"),
        ("batch", 1), ("replace", "kept", [1.0, 0.0], {"title": "K2", "tags": []}),
        ("batch", 4), ("replace", "kept", [0.0, 1.0], {"title": "K", "tags": []}),
        ("replace", "was-removed", [pytest.approx(0.6), pytest.approx(0.8)], {"title": "R", "tags": []}),
        ("replace", "b0", [0.0, 1.0], {"title": "B", "tags": []}), ("replace", "new", [0.5, 0.5], {"title": "new", "tags": []})]


def test_an_applied_vector_is_a_writable_float32_copy_of_the_saved_bytes():
    kept = []
    catalog = Catalog()
    catalog.replace_many = kept.extend
    raw = blob(0.25, 0.75)
    CatalogSync(History([("new", raw, {"t": 1, "title": "N", "tags": []}, False)]), catalog, "s", 2).refresh()
    (item,) = kept
    assert item.item_id == "new" and item.meta == {"t": 1, "title": "N", "tags": []}
    assert item.vector.dtype == np.float32 and item.vector.tolist() == [0.25, 0.75] and item.vector.flags.writeable
