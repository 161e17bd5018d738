"""The history file's schema: its version, the statements that bring an older file forward, and an event row."""

from dataclasses import dataclass

from edgerec.errors import HistoryError
from edgerec.runtime.history_care import APPLICATION_ID, schema_version

SCHEMA_VERSION = 3


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


# v1: events only. v2: context as JSON, a preferences table (onboarding choices) and the items added on
# the device. v3: an added item is kept per embedding space (it was one row per item, and opening a
# bundle of another space deleted the rows of every other: two bundles sharing a history, as
# interleaving does, or an update rolled back, lost the items added and removed under the other).
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
