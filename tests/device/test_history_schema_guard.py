"""Guards of the history file's schema (runtime/history_schema.py), for what its column types and
keys decide that the history tests did not read: mutmut makes no mutants of a file of constants,
so these were found with hand-made ones (tools/mutation-scores.md, note 29)."""

from __future__ import annotations

from edgerec.runtime.history import HistoryStore

WHEN = 1763595315.0


def test_an_event_id_is_never_given_again_after_the_events_are_deleted(tmp_path):
    """An app may keep the id record() returned; after forget it must not name someone else's event."""
    store = HistoryStore(tmp_path / "h.db")
    ids = [store.record("ann", item, "play") for item in ("i01", "i02", "i03")]
    assert ids == [1, 2, 3]
    store.forget("ann")
    assert store.record("bob", "i04", "play") == 4
    store.close()
    again = HistoryStore(tmp_path / "h.db")  # kept in the file, not in memory
    again.forget("bob")
    assert again.record("bob", "i05", "play") == 5


def test_a_whole_value_and_time_are_read_back_as_the_floats_stored(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    store.record("ann", "i01", "finish", 1.0, WHEN)
    (event,) = store.events("ann")
    assert (event.value, event.ts) == (1.0, WHEN) and type(event.value) is float and type(event.ts) is float
    exported = store.export("ann")["events"][0]
    assert type(exported["value"]) is float and type(exported["ts"]) is float  # 1.0 in the JSON, not 1
