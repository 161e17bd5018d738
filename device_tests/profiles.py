"""Device profiles: how many threads and cores, how much memory, and the budgets a bundle must meet."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from edgerec.errors import ConfigError


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    threads: int = 1
    cpus: tuple[int, ...] | None = None  # CPU affinity (None = any)
    memory_mb: int | None = None  # address-space cap of the benchmark process
    p99_ms: float = 25.0  # end-to-end recommend() latency budget
    rss_mb: float = 512.0  # peak resident memory budget
    bundle_mb: float = 50.0  # bundle size budget
    open_ms: float = 500.0  # bundle open (verify + mmap) budget
    description: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES = {
    "phone-mid": DeviceProfile("phone-mid", threads=1, p99_ms=10.0, rss_mb=400.0, bundle_mb=30.0, open_ms=200.0,
                               description="mid-range phone: one big core for the app, a few hundred MB"),
    "stb-low": DeviceProfile("stb-low", threads=1, cpus=(0,), memory_mb=2048, p99_ms=25.0, rss_mb=300.0,
                             bundle_mb=20.0, open_ms=300.0,
                             description="low-end set-top box: one pinned core, a hard memory cap"),
    "tv-high": DeviceProfile("tv-high", threads=2, p99_ms=8.0, rss_mb=800.0, bundle_mb=100.0, open_ms=200.0,
                             description="high-end smart TV: two cores, generous memory"),
}


def get_profile(name: str, overrides: dict | None = None) -> DeviceProfile:
    """A named profile with `overrides` (field -> value, values may be strings from the command line)."""
    if not isinstance(name, str) or name not in PROFILES:
        raise ConfigError(f"unknown device profile {name!r}; choose one of {', '.join(PROFILES)}")
    profile = PROFILES[name]
    if not overrides:
        return profile
    types = {f.name: f.type for f in fields(DeviceProfile)}
    values = {}
    for key, raw in overrides.items():
        if key not in types or key == "name":
            raise ConfigError(f"unknown profile field {key!r}; use one of {', '.join(t for t in types if t != 'name')}")
        try:
            values[key] = _field_value(key, raw)
        except ValueError:
            raise ConfigError(f"profile field {key} takes {_KINDS.get(key, 'a positive number')}, not {raw!r}") from None
    return replace(profile, **values)


_KINDS = {"cpus": "CPU numbers such as 0,1 (or any)", "threads": "a whole number >= 1",
          "memory_mb": "a whole number of MB >= 1 (or none)", "description": "text"}


def _field_value(key: str, raw):
    if key == "description":
        return str(raw)
    if key == "cpus":
        value = tuple(int(c) for c in str(raw).split(",")) if raw not in (None, "", "any") else None
        if value is not None and min(value) < 0:
            raise ValueError(raw)
        return value
    if key == "memory_mb" and raw in (None, "", "none"):
        return None
    if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):  # None, True: no count, no budget
        raise ValueError(raw)
    whole = key in ("threads", "memory_mb")
    if whole and isinstance(raw, float) and not raw.is_integer():  # int(1.5) would run one thread silently
        raise ValueError(raw)
    value = int(raw) if whole else float(raw)
    if not (value >= 1 if whole else math.isfinite(value) and value > 0):
        raise ValueError(raw)
    return value
