"""The next-play study: what a listener plays next, new track or replay, beside leave-last-out's next new item.

Leave-last-out holds out a user's last *new* items, so a replay is never a target and the seen
filter's cost never shows: on a listening log most plays are replays. Here each sampled user is
replayed into the device twice, with the newest `events` log events before a target (every event,
replays included; the device's window holds 2,000):

- next new (leave-last-out): the target is the user's test item, a track never played before;
- next play: the target is the user's last play, new or a replay.

Each is asked for k items by four lists: the seen filter (Policy.replay 0: every played item out),
the replay policy (played favourites come back, runtime/replay.py), the bundle's default (whichever
of those its `defaults.replay` picks), and "most played recently": the played items by the replay's
recency-weighted play count alone, no model (the classic repeat-consumption baseline).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.data.local_hours import dataset_zone
from edgerec.data.split import leave_last_out, require_targets
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError, UnknownIdError
from edgerec.export.replay_default import REPLAY_WEIGHT
from edgerec.runtime import Policy
from edgerec.runtime.replay import favourite_table
from edgerec.runtime.vocab import DEVICE_EVENTS, LOG_EVENTS, LOG_TO_DEVICE
from edgerec.studies.base import Progress, Study, Table, replay_context
from edgerec.studies.devices import open_device

PROTOCOLS = ("next new (leave-last-out)", "next play")


@dataclass
class NextPlayStudy(Study):
    """HR@k of the next new item and of the next play, with and without replays, on the device."""

    name = "next-play"
    bundle: Path
    data_dir: Path
    users: int = 300
    events: int = 500  # newest log events before a target recorded on the device
    weights: tuple[float, ...] = (REPLAY_WEIGHT,)  # Policy.replay of the replay lists
    k: int = 10
    seed: int = 0
    gap: int | None = None  # Policy.replay_gap of the replay lists (None: the Policy's default)
    minutes: float | None = None  # Policy.replay_minutes likewise
    history: Path | None = None  # a history database to replay into (None: in memory; a file syncs every event)

    def measure(self, progress: Progress) -> dict:
        if self.users < 1 or self.events < 1 or self.k < 1 or not self.weights or min(self.weights) <= 0:
            raise ConfigError("users, events and k must be at least 1, and each replay weight above 0")
        dataset = load_dataset(self.data_dir)
        split = leave_last_out(dataset)
        require_targets(split)
        log = dataset.interactions
        rng = np.random.default_rng(self.seed)
        picked = np.sort(rng.choice(len(split.test_users), min(self.users, len(split.test_users)), replace=False))
        starts = np.searchsorted(log.user, np.arange(dataset.n_users + 1))  # the log is sorted by (user, time)
        consumed = log.consumed_mask()
        lists = ["seen filter", *[f"replay {w:g}" for w in self.weights], "bundle default", "most played recently"]
        cool = {k: v for k, v in (("replay_gap", self.gap), ("replay_minutes", self.minutes)) if v is not None}
        policies = [Policy(replay=0.0), *[Policy(replay=float(w), **cool) for w in self.weights], None]
        hits = {p: {name: 0 for name in lists} for p in PROTOCOLS}
        by_kind = {name: {"replay": 0, "new": 0} for name in lists}  # next play's hits by its target's kind
        played_shown = {name: 0 for name in lists}  # next play: listed items the user had played
        targets = {p: 0 for p in PROTOCOLS}
        replays = 0
        progress(f"replaying {len(picked)} users into the device, twice", {})
        with open_device(self.bundle, dataset, **({"history": self.history} if self.history else {})) as rec:
            default = rec.manifest.defaults.get("replay", 0.0)
            for row in picked.tolist():
                user = int(split.test_users[row])
                begin, end = int(starts[user]), int(starts[user + 1])
                last_play = begin + int(np.flatnonzero(consumed[begin:end])[-1])
                for protocol, target in zip(PROTOCOLS, (int(split.test_events[row]), last_play)):
                    span = np.arange(max(begin, target - self.events), target)
                    name = f"{protocol[:9]}:{dataset.user_ids[user]}"
                    self._record(rec, dataset, name, span)
                    item = dataset.catalog.item_ids[log.item[target]]
                    before = set(log.item[begin:target][consumed[begin:target]].tolist())
                    is_replay = int(log.item[target]) in before
                    context = replay_context(log.timestamp[target], dataset_zone(dataset), device="tv")
                    shown = [[r.item_id for r in rec.recommend(name, k=self.k, context=context, policy=p)]
                             for p in policies]
                    shown.append(self._most_played(dataset, span))
                    targets[protocol] += 1
                    replays += is_replay and protocol == PROTOCOLS[1]
                    for list_name, items in zip(lists, shown):
                        hit = item in items
                        hits[protocol][list_name] += hit
                        if protocol == PROTOCOLS[1]:
                            by_kind[list_name]["replay" if is_replay else "new"] += hit
                            played_shown[list_name] += sum(dataset.catalog.index[i] in before for i in items)
        n = len(picked)
        return {"users": n, "events": self.events, "k": self.k, "weights": list(self.weights),
                "bundle_default_replay": default,
                "next_play_replay_share": replays / n,
                f"HR@{self.k}": {p: {name: hits[p][name] / n for name in lists} for p in PROTOCOLS},
                "next_play_hits_by_target": by_kind, "cool_down": cool or "the Policy's",
                "next_play_played_per_list": {name: v / n for name, v in played_shown.items()}, "next_play_targets": {"replay": replays, "new": n - replays}}

    def _record(self, rec, dataset, name: str, span: np.ndarray) -> None:
        log, items = dataset.interactions, dataset.catalog.item_ids
        for e in span.tolist():
            try:
                rec.record(name, items[log.item[e]], LOG_TO_DEVICE[LOG_EVENTS[log.event[e]]],
                           timestamp=float(log.timestamp[e]))
            except UnknownIdError:  # not a case for add_items(): the data is not the bundle's
                raise ConfigError(f"the data holds item {items[log.item[e]]!r}, which the bundle does not know: "
                                  "pass the --data the bundle was built on") from None

    def _most_played(self, dataset, span: np.ndarray) -> list[str]:
        """The k items of the span by the replay's recency-weighted play count (no model, no cool-down)."""
        log = dataset.interactions
        codes = np.array([DEVICE_EVENTS.index(LOG_TO_DEVICE[e]) for e in LOG_EVENTS], np.int8)[log.event[span]]
        rows, strength, *_ = favourite_table(log.item[span].astype(np.int64), codes,
                                             log.timestamp[span].astype(np.float64), 1)
        order = np.lexsort((rows, -strength))[:self.k]
        return [dataset.catalog.item_ids[r] for r in rows[order]]

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        key = f"HR@{record['k']}"
        names = list(next(iter(record[key].values())))
        rows = [{"protocol": p, **{name: round(v, 4) for name, v in record[key][p].items()}} for p in record[key]]
        kinds = record["next_play_targets"]
        split = [{"list": name, f"replay targets ({kinds['replay']})": record["next_play_hits_by_target"][name]["replay"],
                  f"new targets ({kinds['new']})": record["next_play_hits_by_target"][name]["new"],
                  f"played items in the {record['k']}": round(record["next_play_played_per_list"][name], 2)}
                 for name in names]
        return [Table(f"{key} of {record['users']} users, {record['events']} events each (bundle default replay "
                      f"{record['bundle_default_replay']:g}; {record['next_play_replay_share']:.0%} of next plays "
                      "are replays)", rows, ["protocol", *names]),
                Table(f"next play: hits by the target's kind, and how many listed items the user had played "
                      f"(replay cool-down: {record['cool_down']})", split)]
