"""Times written as text the user's way (`data import --time-format`, `--time-zone`).

Logs that write times as text outside ISO-8601 (Goodreads' `Thu Dec 15 12:54:18 -0800 2016`, Amazon's
`09 13, 2009`) name a strptime format; logs whose times carry no zone (KuaiRec's `time`, Beijing time;
Yelp's `date`) name the zone they were written in, an IANA name or a fixed offset. Without either, text
times are ISO-8601 and a time without a zone is UTC, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo

from edgerec.errors import ConfigError

_OFFSET = re.compile(r"(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)


def zone_of(text: str) -> tzinfo:
    """The zone an option names: UTC, a fixed offset (+08:00, -0500, UTC+8) or an IANA name (Asia/Shanghai)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("--time-zone is empty; name a zone such as Asia/Shanghai, or an offset such as +08:00")
    name = text.strip()
    if name.upper() in ("UTC", "Z", "GMT"):
        return timezone.utc
    if match := _OFFSET.fullmatch(name):
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if hours > 14 or minutes > 59:
            raise ConfigError(f"--time-zone {name!r} is no offset a clock uses (-14:00 to +14:00)")
        return timezone((-1 if sign == "-" else 1) * timedelta(hours=hours, minutes=minutes))
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(f"unknown time zone {name!r}; name an IANA zone (Asia/Shanghai, America/New_York) or an "
                          "offset (+08:00); on a system without a zone database, pip install tzdata") from None


def _directives(form: str) -> list[str]:
    """The strptime directives of a format in order ('%%' is a literal '%', so '%%Z' holds no %Z)."""
    return re.findall(r"%.", form)


class LocalTimeError(ValueError):
    """A time written without a zone that its --time-zone makes ambiguous (clocks went back) or skips."""


def _repeated(stamp: datetime) -> bool:
    """True when the wall time `stamp` shows comes twice (an autumn change), False when it is skipped."""
    first, second = stamp.replace(fold=0), stamp.replace(fold=1)
    return first.utcoffset() > second.utcoffset()


@dataclass(frozen=True)
class TimeText:
    """How a log's text times read: `format` (strptime; None: ISO-8601) and the `zone` of times written
    without one (None: UTC)."""

    format: str | None = None
    zone: str | None = None
    tz: tzinfo = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.format is not None and (not isinstance(self.format, str) or "%" not in self.format):
            raise ConfigError(f"--time-format {self.format!r} has no % directive; write it as Python's strptime "
                              "does, e.g. '%Y-%m-%d %H:%M:%S' or '%a %b %d %H:%M:%S %z %Y'")
        if self.format is not None and not any(d in self.format for d in ("%Y", "%y", "%G", "%c", "%x")):
            raise ConfigError(f"--time-format {self.format!r} has no year (%Y or %y): Python would date every time "
                              "in 1900, before any event can be; write the year into the times first (Tmall's "
                              "time_stamp 1111 is 11 November 2015: '2015' + the value, with --time-format '%Y%m%d')")
        if self.format is not None and "%Z" in _directives(self.format):
            raise ConfigError(f"--time-format {self.format!r} has %Z (a zone's name), which Python reads only as UTC, "
                              "GMT or the computer's own zone and then drops, so the time would read in --time-zone "
                              "(UTC without it) whatever zone it names: for offsets (+0800, -05:00) write %z; for a "
                              "name every line shares, write it as text in the format ('%Y-%m-%d %H:%M:%S UTC') and "
                              "name its zone with --time-zone (UTC by default); convert other zone names to "
                              "offsets first")
        if self.format is not None and ("%p" in self.format) != ("%I" in self.format):
            raise ConfigError(f"--time-format {self.format!r} " + (
                "has %p (AM/PM) with a 24-hour %H: Python then ignores %p and reads 12:05 AM as noon; write the "
                "hour as %I" if "%p" in self.format else
                "has a 12-hour %I without %p (AM/PM): every time would read as AM; add %p, or write the hour as %H "
                "if it counts to 23"))
        object.__setattr__(self, "tz", timezone.utc if self.zone is None else zone_of(self.zone))

    @property
    def plain(self) -> bool:
        """No option given: ISO-8601 text, UTC when it names no zone."""
        return self.format is None and self.zone is None

    def seconds(self, text: str) -> float:
        """Epoch seconds of one text time; ValueError when it does not read."""
        text = text.strip()
        if self.format is not None:
            stamp = datetime.strptime(text, self.format)
        else:
            # Python 3.10 reads no "Z", nor the lower-case "t" and "z" RFC 3339 allows
            stamp = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=self.tz)
            if stamp.utcoffset() != stamp.replace(fold=1).utcoffset():  # Python would pick one silently
                raise LocalTimeError(f"a local time that {'comes twice' if _repeated(stamp) else 'does not exist'} "
                                     f"in {self.zone} (a daylight-saving change), so its moment is unknown; write "
                                     "such times with their offset (+01:00) or in UTC, or drop the row")
        return stamp.timestamp()

    def as_meta(self) -> dict:
        return {k: v for k, v in (("format", self.format), ("zone", self.zone)) if v is not None}


ISO_UTC = TimeText()
