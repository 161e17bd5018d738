"""The history file's schema: its version, the statements that bring an older file forward, and an event row."""

from dataclasses import dataclass

from edgerec.errors import HistoryError
from edgerec.runtime.history_care import APPLICATION_ID, schema_version

SCHEMA_VERSION = 4


@dataclass
class Event:
    """One row of the events table, as reads return it."""
    id: int
    profile: str
    item: str
    event: str
    value: float | None
    ts: float
    context: dict


def _numbering(name: str, when: str) -> str:
    """A trigger that numbers each added-item row written (schema v4). The database does it, so every writer's
    rows are numbered (recovery's copy, a repair tool, a process of the previous version still running): the
    items counter moves by one per row, above every number given so far even when the counter was altered
    or deleted, and the row takes it."""
    return f"""CREATE TRIGGER added_items_{name} AFTER {when} ON added_items BEGIN
        INSERT OR REPLACE INTO meta VALUES ('items_version', max(
            COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'items_version'), 0),
            COALESCE((SELECT max(change) FROM added_items), 0)) + 1);
        UPDATE added_items SET change = (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'items_version')
         WHERE rowid = NEW.rowid;
    END"""


# v1: events only. v2: context as JSON, a preferences table (onboarding choices) and the items added on
# the device. v3: an added item is kept per embedding space (it was one row per item, and opening a
# bundle of another space deleted the rows of every other: two bundles sharing a history, as
# interleaving does, or an update rolled back, lost the items added and removed under the other). v4: each
# added-item row carries the change number it was last written at, so a catalog reads only the rows saved
# since it last looked (catalog_sync.py), not every vector and metadata of the space; events are indexed by
# time (the check for misdated rows at every open scanned the whole table: 9 to 20 ms at 200,000 events).
MIGRATIONS = {
    1: [
        """CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, profile TEXT NOT NULL, item TEXT NOT NULL,
           event TEXT NOT NULL, value REAL, ts REAL NOT NULL)""",
        "CREATE INDEX events_by_profile ON events(profile, id)",
    ],
    2: [
        "ALTER TABLE events ADD COLUMN context TEXT",
        """CREATE TABLE preferences (profile TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
           ts REAL NOT NULL, PRIMARY KEY (profile, kind, value))""",
        """CREATE TABLE added_items (item TEXT PRIMARY KEY, space TEXT NOT NULL, vector BLOB, meta TEXT NOT NULL,
           removed INTEGER NOT NULL DEFAULT 0)""",
    ],
    3: [
        """CREATE TABLE added_items_by_space (item TEXT NOT NULL, space TEXT NOT NULL, vector BLOB,
           meta TEXT NOT NULL, removed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (item, space))""",
        "INSERT INTO added_items_by_space SELECT item, space, vector, meta, removed FROM added_items ORDER BY rowid",
        "DROP TABLE added_items",
        "ALTER TABLE added_items_by_space RENAME TO added_items",
    ],
    4: [
        "ALTER TABLE added_items ADD COLUMN change INTEGER NOT NULL DEFAULT 0",  # rows of before: 0, read at open
        "CREATE INDEX added_items_by_change ON added_items(change)",
        _numbering("saved", "INSERT"),
        _numbering("resaved", "UPDATE OF item, space, vector, meta, removed"),  # not `change`: no loop
        "CREATE INDEX events_by_ts ON events(ts)",  # the misdated-row check at open and age pruning: no full scan
    ],
}


def up_to_date(db, current: int, file: str) -> bool:
    """Whether a file at schema `current` needs nothing written (a newer runtime's file: HistoryError)."""
    if current > SCHEMA_VERSION:
        raise HistoryError(f"history database {file} has schema version {current}, newer than this runtime "
                           f"({SCHEMA_VERSION}); update edgerec")
    app = db.execute("PRAGMA application_id").fetchone()[0]  # 0: new, or made by an older version
    return current == SCHEMA_VERSION and app == APPLICATION_ID


def migrate(db, current: int) -> None:
    """Inside a write transaction: create the tables, or bring them forward from schema `current`."""
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute(f"PRAGMA application_id={APPLICATION_ID}")
    for version in range(current + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


def version(db, path) -> int:
    """The file's schema version (0: a new file, before any table)."""
    if not db.execute("SELECT name FROM sqlite_master WHERE name='meta'").fetchone():
        return 0
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return schema_version(row[0], path) if row else 0
