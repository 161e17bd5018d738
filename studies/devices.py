"""Simulated devices for host studies: the runtime's Recommender, keeping every event it is given.

Studies replay logs through the device's own code. A device's history applies its retention
(runtime.history.Retention: 730 days by default) against the wall clock every 100 records, while
a replayed log carries its own times (MovieLens-100K: 1997 and 1998), so a default device erased
most of a replay as it went: 1,008 of the 45,267 events of a 943-user ML-100K replay were left,
most users were ranked from an emptied history, and the replay's HR@10 was 0.194 instead of 0.214.
A simulated device keeps everything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError
from edgerec.runtime import Recommender
from edgerec.runtime.history import KEEP_EVERYTHING
from edgerec.runtime.vocab import LOG_EVENTS, LOG_TO_DEVICE


def open_device(bundle: str | Path, dataset=None, **options) -> Recommender:
    """Recommender.open with a history that keeps every replayed event, whatever its time; given the study's
    `dataset`, a bundle built on other data is refused (with the same item ids, its figures came out as real)."""
    rec = Recommender.open(bundle, retention=KEEP_EVERYTHING, **options)
    if dataset is None:
        return rec
    built_on = rec.manifest.data_version
    found = {"users": dataset.n_users, "items": dataset.n_items, "events": len(dataset.interactions)}
    other = [f"{k} {built_on[k]:,} against {n:,}" for k, n in found.items()
             if isinstance(built_on.get(k), int) and built_on[k] != n]
    if other:
        rec.close()
        raise ConfigError(f"the bundle was built on other data than --data ({'; '.join(other)}); pass the --data "
                          "the bundle was built on")
    return rec


MADE_UP_USER = "example"  # the one profile a report may show: its history is the catalog's aggregates


def made_up_user(rec: Recommender, played: int) -> list[str]:
    """Record plays of the `played` most popular items for MADE_UP_USER on `rec`; their ids, in play order.

    What a report shows as "a user's list" comes from this history, never a replayed user's: the list
    and its reasons ("because you watched ...") would name items of that user's history."""
    rows = np.arange(rec.catalog.base_count)
    popular = np.argsort(-rec.catalog.numeric_column("popularity", rows), kind="stable")[:played]
    items = [rec.catalog.item_id(int(r)) for r in popular]
    for item in items:
        rec.record(MADE_UP_USER, item, "play")
    return items


def validation_event(dataset, split, row: int) -> tuple[str, str, float]:
    """The validation consumption of test user `row` (a row of `split.test_users`) as a device records it:
    the item's id, the logged event as a device event (MovieLens's `rate` is a finish) and its logged time.

    Recorded without a time, it was dated at the host's wall clock: a replayed ML-100K history held 1998
    events and one from the day the study ran, and `history show` listed a 1998 film as finished today."""
    user = split.test_users[row]
    val_row = row if row < len(split.val_users) and split.val_users[row] == user else int(
        np.flatnonzero(split.val_users == user)[0])
    item = dataset.catalog.item_ids[int(split.val_items[val_row])]
    event = "finish"  # a split without its events' indices (built by hand) gives no kind: a consumption
    if split.val_events is not None:
        log = dataset.interactions
        event = LOG_TO_DEVICE[LOG_EVENTS[int(log.event[split.val_events[val_row]])]]
    return item, event, float(split.val_times[val_row])
