"""The hour of day of a log's events in the data set's own local time.

The device reads the time of day in its own zone (`runtime/request.py`: "evening" is the phone's evening),
so the host learns every hour-based signal (the bundle's part-of-day context prior, the ranker's hour
features, the scorer's part-of-day x modality features) in the local time of the log's users: the zone
the log was imported with (`data import --time-zone`, kept in dataset.json as `time_text.zone`), UTC when
it named none (and for data folders written before that).

Vectorised: a zone's UTC offsets are found once per calendar year (probed daily, each change bisected to
the second) and cached, so 10M events cost one `searchsorted`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache

import numpy as np

from edgerec.data.time_text import zone_of

DAY = 86_400
UTC = "UTC"
_FIRST_YEAR, _LAST_YEAR = 1900, 2200  # times outside take the offsets of the nearest year (as its edges)


def dataset_zone(dataset) -> str:
    """The zone a data set's times are local to: `--time-zone` of its import, else UTC."""
    meta = getattr(dataset, "meta", None) or {}
    text = meta.get("time_text") if isinstance(meta, dict) else None
    zone = text.get("zone") if isinstance(text, dict) else None
    return zone if isinstance(zone, str) and zone.strip() else UTC


def local_hours(timestamps, zone: str | None = UTC) -> np.ndarray:
    """Hour of day in [0, 24) (fractional) of each epoch-second timestamp in `zone` (an IANA name such as
    America/New_York, a fixed offset such as +08:00, or UTC / None). In UTC exactly `(t % 86400) / 3600`."""
    t = np.asarray(timestamps)
    if t.dtype.kind not in "iuf":
        t = t.astype(np.float64)
    name = UTC if zone is None else zone
    tz = zone_of(name)
    if tz is timezone.utc:
        return (t % DAY) / 3600.0
    if isinstance(tz, timezone):  # a fixed offset
        return ((t + int(tz.utcoffset(None).total_seconds())) % DAY) / 3600.0
    if t.size == 0:
        return np.zeros(t.shape, np.float64)
    starts, offsets = _table(name, *_years(t))
    offset = offsets[np.maximum(np.searchsorted(starts, t, side="right") - 1, 0)]
    return ((t + offset) % DAY) / 3600.0


def _years(t: np.ndarray) -> tuple[int, ...]:
    """The calendar years (UTC) from the earliest timestamp's to the latest's, clipped to the probed range."""
    finite = t[np.isfinite(t)] if t.dtype.kind == "f" else t
    if finite.size == 0:
        return (1970,)
    ends = np.clip(np.floor(np.array([finite.min(), finite.max()], np.float64)), -2_208_988_800, 7_289_654_400)
    first, last = (ends.astype(np.int64).astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970)
    return tuple(range(max(int(first), _FIRST_YEAR), min(int(last), _LAST_YEAR) + 1)) or (int(np.clip(first, _FIRST_YEAR, _LAST_YEAR)),)


def _table(zone: str, *years: int) -> tuple[np.ndarray, np.ndarray]:
    """Start times and UTC offsets (seconds) of the zone's offset periods over `years`, in time order."""
    parts = [_year_table(zone, y) for y in sorted(set(years))]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@lru_cache(maxsize=1024)
def _year_table(zone: str, year: int) -> tuple[np.ndarray, np.ndarray]:
    """The offset periods of `zone` in the UTC year `year`: (starts, offsets) in epoch seconds."""
    tz = zone_of(zone)
    start = int(datetime(year, 1, 1, tzinfo=timezone.utc).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=timezone.utc).timestamp())

    def offset(second: int) -> int:
        return int(datetime.fromtimestamp(second, tz).utcoffset().total_seconds())

    starts, offsets = [start], [offset(start)]
    probes = [*range(start + DAY, end, DAY), end - 1]
    before, previous = start, offsets[0]
    for probe in probes:
        now = offset(probe)
        if now != previous:  # a change in (before, probe]: bisect to its first second
            lo, hi = before, probe
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset(mid) == previous:
                    lo = mid
                else:
                    hi = mid
            starts.append(hi)
            offsets.append(offset(hi))
            previous = offsets[-1]
            if previous != now:  # two changes within one day (never in practice): take the day's end
                starts.append(probe)
                offsets.append(now)
                previous = now
        before = probe
    return np.array(starts, np.int64), np.array(offsets, np.int64)
