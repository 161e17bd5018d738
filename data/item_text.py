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


def lone_surrogate(value: str) -> str | None:
    """The first half of a UTF-16 pair standing alone in `value` (JSON's "\\ud83d" decodes to one), or None:
    such text cannot be written as UTF-8."""
    if value.isascii():
        return None
    return next((ch for ch in value if "\ud800" <= ch <= "\udfff"), None)


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
    if (half := lone_surrogate(value)) is not None:
        return (f"holds half of a character (U+{ord(half):04X}, a JSON \\u escape without its pair), which no text "
                "file can store: remove it")
    ch = control_char(value, multiline=column == "description")
    if ch is None:
        return None
    if ch in LINE_BREAKS:
        return f"holds a line break (U+{ord(ch):04X}); it is shown on one line: replace it with a space"
    return (f"holds the control character U+{ord(ch):04X}, which shows as nothing or garbles the line on a "
            "screen: remove it from the file (a byte of another text encoding? a CSV import takes --encoding)")


def control_char(value: str, multiline: bool = False) -> str | None:
    """The first line break or control character of `value` (tabs and line breaks allowed when `multiline`),
    or None: what a screen shows as nothing or as a broken line."""
    if value.isprintable():  # the usual case, checked fast (no line break or control character is printable)
        return None
    kept = "\t" + LINE_BREAKS if multiline else ""
    return next((ch for ch in value if ch not in kept and (ch in LINE_BREAKS or ch < " " or "\x7f" <= ch < "\xa0")),
                None)


def check_item_text(values: Sequence[str], field: str, path, line_of: Callable[[int], int], what: str = "",
                    column: str | None = None) -> None:
    """Stop at the first cell of `values` the device would refuse or garble, naming its line. The item `field`
    the cells fill (title, tags, description) sets the rules; the file's `column` (default: the field's name)
    names them in the message."""
    for row, value in enumerate(values):  # a row of tags: a tuple, each tag checked
        problem = next(filter(None, (text_problem(v, field) for v in
                                     (value if isinstance(value, tuple) else (value,)))), None)
        if problem:
            named = f"column {column!r} (read as {field})" if column not in (None, field) else f"column {field!r}"
            what = what or (f"a tag of {named}" if isinstance(value, tuple) else named)
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


def bidi_ids_warning(ids: Sequence[str]) -> list[str]:
    """bidi_warning for item ids: an item without a title is shown by its id, in a device's reasons too."""
    if BIDI_OVERRIDES.isdisjoint("".join(ids)):  # the usual case, checked fast
        return []
    count = sum(not BIDI_OVERRIDES.isdisjoint(i) for i in ids)
    return [f"{count:,} item {'id holds' if count == 1 else 'ids hold'} bidirectional override characters (U+202A-U+202E, U+2066-U+2069), kept as "
            "written: an item without a title is shown by its id, and one left open reverses the text shown after "
            "it on the device, the words of a reason included; remove them from the ids unless they need them"]


def device_safe(value: str, column: str) -> str:
    """`value` as the device takes it in `column`: half characters become U+FFFD, NUL and control characters
    (and, outside descriptions, line breaks) spaces, and text past the column's limit is cut with '…'."""
    multiline = column == "description"
    kept = "\t\n\r" + LINE_BREAKS if multiline else ""
    out = []
    for ch in value:
        if "\ud800" <= ch <= "\udfff":
            out.append("\ufffd")
        elif ch not in kept and (ch in LINE_BREAKS or ch < " " or "\x7f" <= ch < "\xa0"):
            out.append(" ")
        else:
            out.append(ch)
    text = "".join(out)
    limit = LIMITS.get(column, ONE_LINE_MAX)
    return text[: limit - 1] + "…" if limit is not None and len(text) > limit else text


class TextRepairs:
    """Names of a release's files that the device would refuse or garble, repaired (device_safe) rather than
    refused: the user cannot edit a release's files (and an MPD slice that is edited fails its checksum).
    Counted, with the first one's place, for one warning."""

    def __init__(self):
        self.count, self.first = 0, None

    def repaired(self, values: Sequence[str], column: str, where: Callable[[int], str], what: str) -> list[str]:
        out = list(values)
        for row, value in enumerate(values):
            problem = text_problem(value, column)
            if problem is not None:
                self.count += 1
                self.first = self.first or f"{where(row)}: {what} {problem.split(':')[0]}"
                out[row] = device_safe(value, column)
        return out

    def repaired_tags(self, rows: Sequence[Sequence[str]], where: Callable[[int], str], what: str) -> list[list[str]]:
        """Each row's tags (a genre list), repaired as `repaired` repairs names."""
        return [self.repaired(list(tags), "tags", lambda _, row=row: where(row), what) for row, tags in enumerate(rows)]

    def warnings(self) -> list[str]:
        if not self.count:
            return []
        held = "1 name held" if self.count == 1 else f"{self.count:,} names held"
        return [f"{held} text the device refuses or garbles and {'was' if self.count == 1 else 'were'} repaired (control "
                "characters and line breaks became spaces, half characters U+FFFD, names past the device's length "
                f"limit (1,000 characters, 256 for a tag) were cut); the first: {self.first}"]
