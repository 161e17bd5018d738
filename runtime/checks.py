"""Checks of public arguments at the API boundary: one ConfigError saying what was wrong and what to pass.

Lists of names are lists: a single string where a list is expected is refused
(never split into its characters), so `Filters(languages="en")` is an error
that says to pass ["en"]. Ids are non-empty strings of at most MAX_ID
characters that encode to UTF-8; numbers are finite and in their range
(booleans are not numbers); metadata is JSON of bounded size.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Iterable, Mapping

from edgerec.errors import ConfigError
from edgerec.runtime.vocab import DEVICE_EVENTS, MAX_ID, MAX_TS

MAX_LIST = 10_000  # names in one list argument
MAX_JSON_BYTES = 64 << 10  # an item's metadata or an event's context, as JSON


def _shown(value) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int past Python's 4,300 digits has no repr: the refusal itself failed
        return f"an int of {value.bit_length()} bits"
    return text if len(text) <= 60 else text[:57] + "..."


def file_name(path) -> str:
    """A file as error messages name it: its name only (a full path can name the user, e.g. .../alice/); a
    folder given with a trailing slash (tab completion's `runs/teacher/`) is named by its last part too."""
    given = os.fspath(path)
    return (os.path.basename(os.path.normpath(given)) if given else "") or given  # "/": no name, the path


def text(value, what: str, limit: int = MAX_ID) -> str:
    """A non-empty string of at most `limit` characters that encodes to UTF-8."""
    if not isinstance(value, str):
        # the type only: the value may be a user id (an account number passed as an int)
        raise ConfigError(f"{what} must be a string (got {type(value).__name__})")
    if not value:
        raise ConfigError(f"{what} must not be empty")
    if len(value) > limit:
        raise ConfigError(f"{what} is {len(value):,} characters long; the limit is {limit}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{what} holds a lone surrogate, which is not valid Unicode text; pass a properly "
                          "decoded string") from None  # the value itself is not shown: it may be a user id
    if "\x00" in value:
        raise ConfigError(f"{what} holds a NUL character; pass plain text")
    return value


def names(value, what: str, allow_none: bool = True) -> list[str] | None:
    """A list (tuple, set) of strings; a lone string is refused rather than split into characters."""
    if value is None and allow_none:
        return None
    owner, _, field = what.rpartition(": ")  # "item 'c': tags" -> "item 'c': each of tags"
    each = f"{owner}: each of {field}" if owner else f"each of {what}"
    return [text(v, each) for v in values(value, what, "strings")]


def values(value, what: str, kind: str = "values") -> list:
    """A list (tuple, set, 1-d array) as a list of at most MAX_LIST entries; a lone string, a mapping
    or a scalar is refused."""
    if isinstance(value, (str, bytes)):
        raise ConfigError(f"{what} must be a list of {kind}, e.g. [{_shown(value)}], not a single string "
                          f"(got {_shown(value)})")  # _shown: a long string (an id list joined by mistake) is cut
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise ConfigError(f"{what} must be a list of {kind} (got {type(value).__name__} {_shown(value)})")
    try:
        out = list(value)
    except TypeError:  # e.g. a 0-d numpy array: iterable by type, not by value
        raise ConfigError(f"{what} must be a list of {kind} (got {type(value).__name__} {_shown(value)})") from None
    if len(out) > MAX_LIST:
        raise ConfigError(f"{what} has {len(out):,} entries; the limit is {MAX_LIST:,}")
    return out


def number(value, what: str, low: float = -math.inf, high: float = math.inf, allow_none: bool = False,
           low_open: bool = False) -> float | None:
    """A finite real number in [low, high] (or (low, high] with low_open); booleans are refused."""
    if value is None and allow_none:
        return None
    # a plain float or int skips the ABC check, which is slow (a Policy's fields, on every request)
    if type(value) not in (float, int) and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise ConfigError(f"{what} must be a number (got {type(value).__name__} {_shown(value)})")
    try:
        result = float(value)
    except (OverflowError, ValueError):
        result = math.nan
    if not math.isfinite(result) or result < low or result > high or (low_open and result == low):
        bounds = f"{'above' if low_open else 'from'} {low:g} {'up ' if high < math.inf else ''}to {high:g}"
        raise ConfigError(f"{what} must be a finite number {bounds} (got {_shown(value)})")
    return result


def real_numbers(value, what: str, count: int) -> list[float]:
    """Exactly `count` real numbers from a flat list (or 1-d array) as floats, too large ones as inf (for the
    caller's finiteness check). Nested lists, strings and booleans are refused, never flattened or parsed."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable) or getattr(value, "ndim", 1) != 1:
        raise ConfigError(f"{what} must be a flat list of {count} numbers (got {type(value).__name__} "
                          f"{_shown(value)})")
    out: list[float] = []
    for entry in value:
        if isinstance(entry, bool) or not isinstance(entry, numbers.Real):
            raise ConfigError(f"{what} must be a flat list of {count} numbers; one entry is "
                              f"{type(entry).__name__} {_shown(entry)}")
        if len(out) == count:
            raise ConfigError(f"{what} has more than {count} values, the bundle's space has {count}")
        try:
            out.append(float(entry))
        except OverflowError:
            out.append(math.inf)
    if len(out) != count:
        raise ConfigError(f"{what} has {len(out)} values, the bundle's space has {count}")
    return out


def integer(value, what: str, low: int = 0, high: int = 1 << 31, allow_none: bool = False) -> int | None:
    """An integer in [low, high]; booleans and floats are refused."""
    if value is None and allow_none:
        return None
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise ConfigError(f"{what} must be an integer (got {type(value).__name__} {_shown(value)})")
    if not low <= int(value) <= high:
        words = f"a positive integer of at most {high}" if low == 1 else f"an integer from {low} to {high}"
        raise ConfigError(f"{what} must be {words} (got {_shown(value)})")
    return int(value)


def flag(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be True or False (got {type(value).__name__} {_shown(value)})")
    return value


def choice(value, options: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or value not in options:  # `in` would compare an array elementwise
        raise ConfigError(f"{what} must be one of {', '.join(options)} (got {_shown(value)})")
    return value


def known(values: list[str], options: set[str], what: str, whose: str = "this catalog's") -> list[str]:
    """Every value one of `options`; the error names the unknown ones, a value that differs only in
    case, and some of the options (an onboarding choice nothing matches would steer nothing)."""
    unknown = [v for v in values if v not in options]
    if not unknown:
        return values
    if not options:
        raise ConfigError(f"this catalog has no {what}; leave them out (got {_shown(unknown)})")
    folded = {o.casefold(): o for o in options}
    hints = [f"{v!r} -> {folded[v.casefold()]!r}" for v in unknown if v.casefold() in folded]
    listed = sorted(options)
    more = f" and {len(listed) - 12} more" if len(listed) > 12 else ""
    raise ConfigError(f"unknown {what} {_shown(unknown)}" + (f" (did you mean {', '.join(hints)}?)" if hints else "")
                      + f"; {whose} {what}: {', '.join(listed[:12])}{more}")


def event(value) -> str:
    """One of the device's event names; the error shows at most 60 characters of what was given."""
    if not isinstance(value, str) or value not in DEVICE_EVENTS:
        raise ConfigError(f"unknown event {_shown(value)}; use one of {', '.join(DEVICE_EVENTS)}")
    return value


def timestamp(value, what: str = "timestamp", allow_none: bool = True) -> float | None:
    """Epoch seconds: a finite number from 0 to MAX_TS."""
    return number(value, f"{what} (epoch seconds)", 0.0, MAX_TS, allow_none=allow_none)


def json_object(value, what: str, allow_none: bool = True, limit: int = MAX_JSON_BYTES) -> dict | None:
    """A dict with string keys that JSON can store (no NaN), of at most `limit` bytes as UTF-8 JSON (unescaped:
    counted with ASCII escapes, a 35 KB Hindi description was refused as 67 KB)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} must be a dict (got {type(value).__name__} {_shown(value)})")
    try:
        encoded = json.dumps(dict(value), sort_keys=True, allow_nan=False, ensure_ascii=False).encode(
            "utf-8", "surrogatepass")  # a lone surrogate counts its 3 bytes here, as it did escaped (6)
    except (TypeError, ValueError, RecursionError, UnicodeEncodeError) as exc:
        raise ConfigError(f"{what} must hold only JSON values (strings, finite numbers, lists, dicts with "
                          f"string keys): {exc}") from None
    if len(encoded) > limit:
        raise ConfigError(f"{what} takes {len(encoded):,} bytes as JSON; the limit is {limit:,}")
    bad = _keys_not_text(value)
    if bad:  # JSON would store 1 as "1": read back, the dict would not be the one given
        key = bad[0]
        raise ConfigError(f"{what} must have text keys, at every level (got the {type(key).__name__} key "
                          f"{_shown(key)})")
    return dict(value)


def _keys_not_text(value) -> list:
    """The first key of a dict (at any depth of dicts and lists) that is not a str, in a list; [] if none."""
    stack = [value]
    while stack:
        part = stack.pop()
        if isinstance(part, Mapping):
            for key, inner in part.items():
                if not isinstance(key, str):
                    return [key]
                stack.append(inner)
        elif isinstance(part, (list, tuple)):
            stack.extend(part)
    return []


def path(value, what: str, allow_none: bool = False):
    """A filesystem path: a non-empty str or os.PathLike (bytes are refused, as for ids)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        got = type(value).__name__  # never the value: a path can name the user (.../alice/...)
    elif not str(value):
        got = "an empty path"
    elif "\x00" in str(value):  # a NUL byte cannot be in a file name
        got = "a path holding a NUL byte"
    else:
        return value
    raise ConfigError(f"{what} must be a path (a non-empty str or pathlib.Path; got {got})")


def instance(value, kind: type, what: str, allow_none: bool = True):
    if value is None and allow_none:
        return None
    if not isinstance(value, kind):
        raise ConfigError(f"{what} must be a {kind.__name__}{' (or None)' * allow_none}, e.g. {kind.__name__}(...) "
                          f"(got {type(value).__name__} {_shown(value)})")
    return value


def shown(value) -> str:
    """A value as an error message shows it: repr (JSON for containers), at most 60 characters."""
    if not isinstance(value, (dict, list)):
        return _shown(value)
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
