"""What an item's text may hold once it reaches a bundle.

The device shows titles, tags and category names (genre, creator, ...) on one line, and refuses, when an
app adds an item, a NUL, a title past 1,000 characters or a tag past MAX_ID. An import refuses the same at
the file's line, so a bundle never carries text the device would refuse or show garbled (a control
character shows as nothing or breaks the line; a 10,000-character title is usually an unclosed quote).
Descriptions feed the content encoder only: they may hold line breaks and tabs, and have no length limit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from edgerec.errors import DataError
from edgerec.runtime.vocab import MAX_ID

EPISODES = (0, 2**31 - 1)  # the episode numbers a bundle may hold (runtime/item_spec.py; a test pins them)
ONE_LINE_MAX = 1000  # characters of a title or category name: what Recommender.add_items takes
LIMITS = {"tags": MAX_ID, "description": None}  # other text columns: ONE_LINE_MAX
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # str.splitlines() breaks at each of these
BIDI_OVERRIDES = frozenset(map(chr, (*range(0x202A, 0x202F), *range(0x2066, 0x206A))))  # embeddings, isolates


def text_problem(value: str, column: str) -> str | None:
    """What is wrong with one cell of a text column for the device (None: nothing)."""
    limit = LIMITS.get(column, ONE_LINE_MAX)
    if limit is not None and len(value) > limit:
        return (f"is {len(value):,} characters long; the device takes at most {limit:,} (an unclosed quote can "
                "swallow lines): shorten it")
    if value.isprintable():  # the usual case, checked fast
        return None
    if "\x00" in value:
        return "holds a NUL character, which the device refuses in text: remove it"
    multiline = column == "description"
    for ch in value:
        if ch in LINE_BREAKS and not multiline:
            return f"holds a line break (U+{ord(ch):04X}); it is shown on one line: replace it with a space"
        if (ch < " " or "\x7f" <= ch < "\xa0") and ch not in "\t\n\r" * multiline + LINE_BREAKS * multiline:
            return (f"holds the control character U+{ord(ch):04X}, which shows as nothing or garbles the line on a "
                    "screen: remove it from the file (a byte of another text encoding? a CSV import takes "
                    "--encoding)")
    return None


def check_item_text(values: Sequence[str], column: str, path, line_of: Callable[[int], int], what: str = "") -> None:
    """Stop at the first cell of `values` the device would refuse or garble, naming its line."""
    for row, value in enumerate(values):  # a row of tags: a tuple, each tag checked
        problem = next(filter(None, (text_problem(v, column) for v in
                                     (value if isinstance(value, tuple) else (value,)))), None)
        if problem:
            what = what or (f"a tag of column {column!r}" if isinstance(value, tuple) else f"column {column!r}")
            raise DataError(f"{what} {problem}", str(path), line_of(row))


def bidi_warning(titles: Sequence[str], tags: Sequence[tuple[str, ...]]) -> list[str]:
    """A warning when titles or tags hold bidirectional embedding/override/isolate characters: kept (text
    in right-to-left scripts may need them), but an unclosed one reverses what the screen shows after it,
    a reason's words included."""
    count = sum(any(ch in BIDI_OVERRIDES for ch in title + "".join(tag)) for title, tag in zip(titles, tags))
    if not count:
        return []
    return [f"{count:,} items' titles or tags hold bidirectional override characters (U+202A-U+202E, "
            "U+2066-U+2069), kept as written: one left open reverses the text shown after it on the device, "
            "the words of a reason included; remove them unless the text needs them"]
