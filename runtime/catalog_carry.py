"""Catalog changes across a bundle swap: the removals the app made under its previous bundle stand in a new space.

The history keeps catalog updates per embedding space (history schema 3), so a bundle of a new space opened on a
history started with none of them: items the app had removed (a licence ended) were served again, and items it
had added were gone, without a word. Removals are the app's decisions about ids, so the first time a space is
opened on a history where it has no catalog changes and another space has some, the removals of the newest other
space (the one whose rows were written last) are saved for this space too, for the ids its bundle holds. Items
added on the device are not carried: their vectors are in the old space's coordinates; they are counted, so the
app can add them again with vectors of the new space (docs/runtime.md, "Catalog updates across a bundle swap").

It is done once per space and durably: the carried rows and a record of the counts (meta key `catalog_carried:` +
the space) are written in one transaction, which looks again, under the write lock, whether another connection
(a second process opening the same bundle at the same moment) has carried first. stats()["catalog_carried"] reads
the record; the one process that carries logs one line with the counts (never ids) on the runtime's logger.
"""

from __future__ import annotations

import json

from edgerec.runtime import history_care

KEY = "catalog_carried:"  # + the embedding space: {"from": space, "removed": n, "added_not_carried": m}
NONE = {"removed": 0, "added_not_carried": 0}


def carry_removals(history, catalog, space: str) -> dict:
    """Carry the newest other space's removals into `space` if it is opened for the first time after catalog
    changes under another space; returns what was carried into `space` ({"removed": n, "added_not_carried": m},
    zeros when nothing was)."""
    if not _pending(history._read, space):  # the usual open: reads only, no write lock
        return carried(history, space)
    with history._transaction():
        db = history.db
        if not _pending(lambda sql, args=(): db.execute(sql, args).fetchall(), space):
            source = None  # another connection carried (or saved changes) first
        else:
            source = _newest_other(db, space)
            removed = [item for (item,) in db.execute(
                "SELECT item FROM added_items WHERE space = ? AND removed != 0 ORDER BY rowid", (source,))]
            held = [item for item in removed if isinstance(item, str) and item and
                    catalog.index.bundle_row(item) is not None]
            live = db.execute("SELECT count(*) FROM added_items WHERE space = ? AND removed = 0", (source,))
            record = {"from": source, "removed": len(held), "added_not_carried": int(live.fetchone()[0])}
            history_care.upsert_items(db, [(item, space, None, {}, True) for item in held])
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (KEY + space, json.dumps(record)))
    if source is None:
        return carried(history, space)
    import logging  # here, not at the top: the module costs 0.7 MB on a device, and only a swap logs this

    logging.getLogger("edgerec.runtime").log(
        logging.WARNING if record["added_not_carried"] else logging.INFO,
        "catalog changes of the previous bundle's embedding space: %d removed items still removed in the new "
        "space, %d items added on the device not carried (their vectors are of the old space; add them again)",
        record["removed"], record["added_not_carried"])
    return {key: record[key] for key in NONE}


def carried(history, space: str) -> dict:
    """What was carried into `space` when it was first opened ({"removed": n, "added_not_carried": m}); zeros when
    nothing was, or the record was altered outside edgerec."""
    rows = history._read("SELECT value FROM meta WHERE key = ?", (KEY + space,))
    try:
        record = json.loads(rows[0][0]) if rows else {}
        return {key: max(0, int(record.get(key, 0))) for key in NONE}
    except (TypeError, ValueError, AttributeError, RecursionError, OverflowError):
        return dict(NONE)


def _pending(read, space: str) -> bool:
    """Whether `space` has no catalog changes and no record of a carry, while another space has changes."""
    if read("SELECT 1 FROM meta WHERE key = ?", (KEY + space,)):
        return False
    if read("SELECT 1 FROM added_items WHERE space = ? LIMIT 1", (space,)):
        return False
    return bool(read("SELECT 1 FROM added_items WHERE space != ? LIMIT 1", (space,)))


def _newest_other(db, space: str) -> str:
    """The other space whose catalog changes were written last (the change numbers of history schema 4, then the
    rows' order for rows written before it)."""
    return db.execute("SELECT space FROM added_items WHERE space != ? GROUP BY space "
                      "ORDER BY max(change) DESC, max(rowid) DESC LIMIT 1", (space,)).fetchone()[0]
