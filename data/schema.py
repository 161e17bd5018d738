"""The neutral in-memory data model: a catalog of items and a log of interactions.

Both are columnar (numpy arrays and plain lists) so that half a million events
or a million items stay cheap. Users and items are referred to by dense integer
codes; `user_ids` / `catalog.item_ids` map codes back to the external ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from edgerec.errors import DataError
from edgerec.runtime.vocab import CONSUMED_LOG_EVENTS, DEVICES, LOG_EVENTS, MODALITIES  # noqa: F401

# The names are the device's (runtime/vocab.py); a log's events are the device's plus `rate`.
EVENTS = LOG_EVENTS
EVENT_CODE = {name: code for code, name in enumerate(EVENTS)}
# A skip is a negative signal; every other event means the user consumed the item.
CONSUMED_EVENTS = CONSUMED_LOG_EVENTS
DEVICE_CODE = {name: code for code, name in enumerate(DEVICES)}

ITEM_TEXT_COLUMNS = (
    "title", "description", "genre", "mood", "modality", "language", "creator", "provider", "series_id",
)
ITEM_COLUMNS = ("item_id",) + ITEM_TEXT_COLUMNS + ("tags", "duration", "release_ts", "episode")


@dataclass
class Catalog:
    """One row per item. Text columns are lists of str ("" when unknown)."""

    item_ids: list[str]
    text: dict[str, list[str]] = field(default_factory=dict)
    tags: list[tuple[str, ...]] = field(default_factory=list)
    duration: np.ndarray = None  # float32 seconds, 0 when unknown
    release_ts: np.ndarray = None  # int64 epoch seconds, 0 when unknown
    episode: np.ndarray = None  # int32, 0 when not an episode

    def __post_init__(self):
        n = len(self.item_ids)
        for name in ITEM_TEXT_COLUMNS:
            self.text.setdefault(name, [""] * n)
        if not self.tags:
            self.tags = [()] * n
        if self.duration is None:
            self.duration = np.zeros(n, np.float32)
        if self.release_ts is None:
            self.release_ts = np.zeros(n, np.int64)
        if self.episode is None:
            self.episode = np.zeros(n, np.int32)
        lengths = {len(v) for v in self.text.values()} | {
            len(self.tags), len(self.duration), len(self.release_ts), len(self.episode)
        }
        if lengths != {n}:
            raise DataError(f"catalog columns have different lengths {sorted(lengths)}; expected {n}")
        self._index: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.item_ids)

    def column(self, name: str) -> list[str]:
        return self.text[name]

    @property
    def index(self) -> dict[str, int]:
        """External item id -> code."""
        if self._index is None:
            self._index = {item: code for code, item in enumerate(self.item_ids)}
            if len(self._index) != len(self.item_ids):
                self._index = None
                again, item = _first_repeat(self.item_ids)
                first = self.item_ids.index(item)
                raise DataError(f"catalog has duplicate item ids: {item!r} is item {first + 1} and item {again + 1} "
                                "(data rows counted from 1, in file order); every item_id must be unique")
        return self._index

    def codes(self, name: str) -> tuple[np.ndarray, list[str]]:
        """Integer codes of a categorical text column and its vocabulary (sorted)."""
        values = self.text[name]
        vocab = sorted(set(values))
        lookup = {v: i for i, v in enumerate(vocab)}
        return np.fromiter((lookup[v] for v in values), np.int32, len(values)), vocab

    def subset(self, codes: np.ndarray) -> Catalog:
        codes = np.asarray(codes)
        return Catalog(
            item_ids=[self.item_ids[i] for i in codes],
            text={k: [v[i] for i in codes] for k, v in self.text.items()},
            tags=[self.tags[i] for i in codes],
            duration=self.duration[codes],
            release_ts=self.release_ts[codes],
            episode=self.episode[codes],
        )

    @classmethod
    def bare(cls, item_ids: list[str]) -> Catalog:
        """A catalog that knows only ids (interaction data without item metadata)."""
        return cls(item_ids=list(item_ids))


@dataclass
class Interactions:
    """The event log, one entry per event, in file order until `sorted_by_time()`."""

    user: np.ndarray  # int32 user codes
    item: np.ndarray  # int32 item codes (into the catalog)
    timestamp: np.ndarray  # int64 epoch seconds
    event: np.ndarray  # int8 codes into EVENTS
    value: np.ndarray  # float32 (watched fraction, rating, ...)
    device: np.ndarray = None  # int8 codes into DEVICES, -1 when unknown

    def __post_init__(self):
        if self.device is None:
            self.device = np.full(len(self.user), -1, np.int8)
        n = len(self.user)
        if any(len(a) != n for a in (self.item, self.timestamp, self.event, self.value, self.device)):
            raise DataError("interaction columns have different lengths")

    def __len__(self) -> int:
        return len(self.user)

    def take(self, index: np.ndarray) -> Interactions:
        return Interactions(
            self.user[index], self.item[index], self.timestamp[index],
            self.event[index], self.value[index], self.device[index],
        )

    def sorted_by_time(self, within: np.ndarray | None = None) -> Interactions:
        """Order by (user, timestamp) with a stable sort: ties keep the file order. `within`: each event's
        nanoseconds within its second (an import's), so 1.7 s stays after 1.5 s though both are second 1."""
        keys = (self.timestamp, self.user) if within is None else (within, self.timestamp, self.user)
        return self.take(np.lexsort(keys))  # lexsort is stable

    def consumed_mask(self) -> np.ndarray:
        codes = [EVENT_CODE[e] for e in CONSUMED_EVENTS]
        return np.isin(self.event, codes)


@dataclass
class Dataset:
    """A catalog, an event log sorted by (user, time), and the external user ids."""

    catalog: Catalog
    interactions: Interactions
    user_ids: list[str]
    meta: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.catalog)

    def fingerprint(self) -> str:
        """A digest of the items, users and events (not the metadata): a folder of results made from a data
        set (a tuning study, a federated run's v1) is resumed or reused only for the same one."""
        digest = hashlib.sha256()
        for ids in (self.catalog.item_ids, self.user_ids):
            digest.update(len(ids).to_bytes(8, "little"))
            digest.update("\x00".join(ids).encode("utf-8", "surrogatepass"))
        log = self.interactions
        for column in (log.user, log.item, log.timestamp, log.event, log.value):
            digest.update(np.ascontiguousarray(column).tobytes())
        return digest.hexdigest()[:24]


def _first_repeat(values: list[str]) -> tuple[int, str]:
    """The position and value of the first entry that repeats an earlier one."""
    seen: set[str] = set()
    for position, value in enumerate(values):
        if value in seen:
            return position, value
        seen.add(value)
    raise ValueError("no repeated value")
