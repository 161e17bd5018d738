"""Items added and removed on the device, as the history stores them, applied to an open catalog.

The history keeps every catalog update (added_items) and a counter that each row written moves, in the
same transaction, the row taking the counter's new value as its change number (history_schema.py v4). A
Recommender applies the saved items at open, and again when the counter moved under another connection
(a second Recommender or another process of the app on the same file): otherwise it served an item the
other had removed until it was reopened. Only another connection's commit can move the counter unseen,
and SQLite's data_version says whether there was one, so the common request costs one pragma; and when
it moved, only the rows numbered above the counter this catalog last read are read again (every row of
the space was: one item added elsewhere cost every process 1,000 vectors and metadata read and checked).
"""

from __future__ import annotations

import threading

import numpy as np

from edgerec.errors import ConfigError, HistoryError
from edgerec.runtime.catalog import AddedItem, ItemCatalog
from edgerec.runtime.catalog_carry import NONE, carry_removals
from edgerec.runtime.catalog_counts import catalog_counts
from edgerec.runtime.new_items import checked_meta


class CatalogSync:
    def __init__(self, history, catalog: ItemCatalog, space: str, dim: int):
        self.history, self.catalog, self.space, self.dim = history, catalog, space, dim
        self._lock = threading.Lock()
        self._seen: tuple[int, str | None] | None = None  # (data_version, counter) when last applied
        self._applied: int | None = None  # the counter's number when the rows were last read
        self.carried = dict(NONE)  # what carry() found carried into this space from the bundle before

    def carry(self) -> None:
        """At open, before the first refresh: a space opened for the first time after catalog changes under
        another takes that space's removals (catalog_carry.py)."""
        self.carried = carry_removals(self.history, self.catalog, self.space)

    def counts(self) -> dict:
        """The catalog's item counts as every connection saved them (catalog_counts.py) and what was carried."""
        self.refresh()
        return {**catalog_counts(self.catalog.snapshot()), "catalog_carried": dict(self.carried)}

    def refresh(self) -> None:
        """Apply the saved items if another connection may have changed them since the last time."""
        with self.history._lock, self._lock:  # the history's lock first, as a record() inside history.batch() takes them
            try:
                external = int(self.history._read("PRAGMA data_version")[0][0])
                if self._seen is not None and self._seen[0] == external:
                    return  # no other connection committed anything
                row = self.history._read("SELECT value FROM meta WHERE key='items_version'")
            except HistoryError:
                if self._seen is None:
                    raise  # at open: the store cannot be used
                return  # the call's own read or write says so, with what to do for that call
            counter = str(row[0][0]) if row else None
            if self._seen is None or self._seen[1] != counter:
                number = _number(counter)
                self._apply(self._unapplied(number))
                self._applied = number  # rows written after the read are read again next time: no harm
            self._seen = (external, counter)

    def _unapplied(self, number: int | None) -> list:
        """The saved rows numbered above the counter when this catalog last read them; every row at open,
        and when the counter is no number or went back (a backup written into the file, the counter altered):
        then the numbers no longer tell what this catalog has applied."""
        since = self._applied
        if self._seen is None or since is None or number is None or number < since:
            return self.history.saved_items(self.space, self.dim)
        return self.history.saved_items(self.space, self.dim, since=since)

    def _apply(self, saved: list) -> None:
        catalog, taking = self.catalog, {}  # items added or updated, applied in batches (one copy of the list each)
        for item_id, blob, meta, removed in saved:
            if item_id in taking:  # a second row of an id: the first is applied before this one is read
                catalog.replace_many(list(taking.values()))
                taking.clear()
            row = catalog.index.get(item_id)
            if removed:
                if meta and (row is None or row < catalog.base_count):
                    # an item added on the device, then removed (a removed bundle item's row saves no
                    # metadata): it keeps a row of its own without a vector (spec §7), as in the session
                    # that removed it; the bundle's row of the same id stays retired, its events read zeros
                    try:
                        meta = checked_meta(item_id, meta, catalog)
                    except ConfigError:
                        meta = checked_meta(item_id, {}, catalog)
                    taking[item_id] = AddedItem(item_id, None, meta)
                elif row is not None and catalog.is_active(row):
                    catalog.remove(item_id)
                continue
            try:  # checked as add_items() checks it: another program may have edited the file
                meta = checked_meta(item_id, meta, catalog)
            except ConfigError:
                continue  # left out, as a row with a damaged vector (history_care.readable_items)
            vector = np.frombuffer(blob, np.float32).copy()
            if row is not None and row >= catalog.base_count:  # the same item as before: nothing to do
                known = catalog.added[row - catalog.base_count]
                if known.vector is not None and known.meta == meta and np.array_equal(known.vector, vector):
                    continue
            taking[item_id] = AddedItem(item_id, vector, meta)
        if taking:
            catalog.replace_many(list(taking.values()))


def _number(counter: str | None) -> int | None:
    try:
        return int(counter)
    except (TypeError, ValueError):  # no counter yet, or one altered into something else
        return None
