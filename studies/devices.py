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

from edgerec.runtime import Recommender
from edgerec.runtime.history import KEEP_EVERYTHING


def open_device(bundle: str | Path, **options) -> Recommender:
    """Recommender.open with a history that keeps every replayed event, whatever its time."""
    return Recommender.open(bundle, retention=KEEP_EVERYTHING, **options)
