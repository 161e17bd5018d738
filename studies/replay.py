"""The replay study: held-out users' logged histories played into the on-device runtime.

For each sampled test user, the training events (newest 60) and the
validation item are recorded through `Recommender.record()` as the device
would have seen them, then `recommend()` is asked for ten items at the
moment of the user's next (test) event: HR@10 of that item, and the
latency of each call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.data.local_hours import dataset_zone
from edgerec.data.split import leave_last_out, require_targets
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError, UnknownIdError
from edgerec.runtime import Recommender
from edgerec.runtime.vocab import LOG_EVENTS, LOG_TO_DEVICE
from edgerec.studies.base import Progress, Study, Table, fresh_history, replay_context
from edgerec.studies.devices import MADE_UP_USER, made_up_user, open_device, validation_event

REPLAYED_EVENTS = 60  # newest training events per user


@dataclass
class ReplayStudy(Study):
    """HR@10 and recommend() latency of a bundle on the device, over replayed held-out users."""

    name = "replay"
    bundle: Path
    data_dir: Path
    history: Path  # the device's history database, created new (one that holds anything is refused)
    users: int = 300
    seed: int = 0
    device: str = "tv"  # the context of every request
    own_history: bool = False  # `history` is the study's own file (the demo's): an earlier run's is removed first

    def measure(self, progress: Progress) -> dict:
        dataset = load_dataset(self.data_dir)
        split = leave_last_out(dataset)
        require_targets(split)
        rng = np.random.default_rng(self.seed)
        picked = rng.choice(len(split.test_users), min(self.users, len(split.test_users)), replace=False)
        progress(f"replaying {len(picked)} users into the device", {})
        hits, latencies = 0, []
        with open_device(self.bundle, dataset, history=fresh_history(self.history, self.own_history)) as rec:
            for _, target, listed, ms in replay_lists(rec, dataset, split, picked, device=self.device):
                latencies.append(ms)
                hits += target in [r.item_id for r in listed]
            stats = rec.stats()
        example = self._example()
        return {"users": len(picked), "HR@10": hits / len(picked),
                "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
                "example": example,
                "fallbacks": {k: v for k, v in stats["counters"].items() if "fallback" in k}}

    def _example(self) -> dict:
        """What a made-up user who played the three most popular items sees, and why: a report shows no
        replayed user's history (their titles would be part of it), only the catalog's aggregates."""
        with open_device(self.bundle) as rec:
            played = made_up_user(rec, 3)
            listed = rec.recommend(MADE_UP_USER, k=5, context={"device": self.device})
        return {"played": played, "recommendations": [
            {"item": r.item_id, "title": r.title, "why": r.reason.text} for r in listed]}

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        out = [Table("on-device replay", [{k: record[k] for k in ("users", "HR@10", "p50_ms", "p99_ms")}])]
        if record.get("example"):
            out.append(Table("what a user who played the three most popular items sees, and why",
                             record["example"]["recommendations"]))
        return out


def replay_lists(rec: Recommender, dataset, split, picked: np.ndarray, policy=None, device: str = "tv", k: int = 10):
    """For each picked test user (rows of `split.test_users`): their newest training events and the
    validation item recorded on the device, then `k` items asked for at the moment of the test event.
    Yields (user name, the test item's id, the list, milliseconds of the call)."""
    log, items = dataset.interactions, dataset.catalog.item_ids
    zone = dataset_zone(dataset)
    on_device = [LOG_TO_DEVICE[name] for name in LOG_EVENTS]  # log event code -> device event
    for row in picked:
        user = int(split.test_users[row])
        name = dataset.user_ids[user]
        mask = (log.user == user) & split.train_events
        events = [(items[log.item[e]], on_device[log.event[e]], float(log.timestamp[e]))
                  for e in np.flatnonzero(mask)[-REPLAYED_EVENTS:]]
        events.append(validation_event(dataset, split, row))  # at its logged time, as the training events
        for item_id, event, timestamp in events:
            try:
                rec.record(name, item_id, event, timestamp=timestamp)
            except UnknownIdError:  # not a case for add_items(): the data is not the bundle's
                raise ConfigError(f"the data holds item {item_id!r}, which the bundle does not know: pass the "
                                  "--data the bundle was built on") from None
        context = replay_context(split.test_times[row], zone, device=device)
        began = time.perf_counter()
        listed = rec.recommend(name, k=k, context=context, policy=policy)
        yield name, items[split.test_items[row]], listed, (time.perf_counter() - began) * 1e3
