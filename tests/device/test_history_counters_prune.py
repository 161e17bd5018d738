"""The per-profile write counters behind HistoryStore.generation() keep no name of a profile whose
rows are all gone: forget() always dropped them; a retention prune that removes a profile's last
event and choice now does too. A token of a dropped profile never equals one it had before (its
counts restart above any given, as after forget()). Device suite: the standard library and the runtime."""

from __future__ import annotations

import time

from edgerec.runtime.history import HistoryStore, Retention
from edgerec.runtime.retention import DAY


def counted(store):
    assert store._profile_writes.keys() == store._rewrites.keys()
    return set(store._profile_writes)


def test_a_prune_that_removes_a_profiles_last_rows_drops_its_counters(tmp_path):
    store = HistoryStore(tmp_path / "h.db", retention=Retention(max_age_days=2))
    now = time.time()
    for n in range(30):  # guests of a shared device, each gone with their events
        store.record(f"guest{n}", "i1", "play", ts=now - 1.5 * DAY)
    store.record("gone", "i1", "play", ts=now - 1.5 * DAY)
    store.record("stays", "i2", "play", ts=now)
    store.set_preferences("chooser", "genre", ["jazz"])  # onboarding choices only, young: kept
    tokens = [store.generation("gone")]
    assert {"gone", "stays", "chooser"} <= counted(store)
    assert store.prune(now=now + DAY) == 31
    assert counted(store) == {"stays", "chooser"}  # 32 names before
    tokens.append(store.generation("gone"))
    store.record("gone", "i3", "play")  # back again: counted anew, above any count given
    tokens.append(store.generation("gone"))
    assert len(set(tokens)) == 3
    assert min(tokens[2][2:]) > max(tokens[0][2:])  # its own counts too, not only the store's
    store.close()


def test_a_dropped_profiles_token_never_repeats_an_older_one_even_when_nothing_else_moved(tmp_path):
    store = HistoryStore(tmp_path / "h.db", retention=Retention(max_age_days=2))
    now = time.time()
    store.record("gone", "i1", "play", ts=now - 1.5 * DAY)
    old = store.generation("gone")
    store.prune(now=now + DAY)
    assert "gone" not in counted(store)
    store.record("gone", "i2", "play", ts=now)  # written as often as when the old token was given
    store._writes = old[1]  # the token's other parts as they were: only its own counts tell the states apart
    assert store.generation("gone") != old
    store.close()


def test_the_automatic_prune_of_record_drops_them_too(tmp_path):
    store = HistoryStore(tmp_path / "h.db", retention=Retention(max_age_days=2))
    now = time.time()
    store.record("gone", "i1", "play", ts=now - 1.5 * DAY)
    store.clock = lambda: now + 0.9 * DAY  # the next day: "gone"'s only event is past two days
    for n in range(99):  # the 100th record of the file prunes
        store.record("stays", f"i{n}", "play")
    assert counted(store) == {"stays"}
    store.forget("stays")
    assert counted(store) == set()
    store.close()


def test_a_profile_keeping_rows_keeps_its_token_steady_across_a_prune_of_others(tmp_path):
    store = HistoryStore(tmp_path / "h.db", retention=Retention(max_age_days=2))
    now = time.time()
    store.record("stays", "i2", "play", ts=now)
    store.record("gone", "i1", "play", ts=now - 1.5 * DAY)
    before = store.generation("stays")
    store.prune(now=now + DAY)
    after = store.generation("stays")
    assert after[2:] == before[2:]  # its own counts kept (the store's commit moves the token, as before)
    store.close()
