"""How commands talk to people and scripts: tables on screen, JSON files, progress bars."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from edgerec.errors import ConfigError
from edgerec.runtime.atomic import write_file
from edgerec.studies.base import json_text

# C0 and C1 control characters but tab and line break, and DEL: a bundle's name or an item's title holding
# ESC sequences cleared the screen or retitled the terminal when printed
_CONTROLS = {c: "\ufffd" for c in [*range(0x00, 0x09), *range(0x0b, 0x20), *range(0x7f, 0xa0)]}


def printable(text: str) -> str:
    """`text` with its terminal control characters shown as U+FFFD."""
    return text.translate(_CONTROLS)


class _Console(Console):
    """Prints text from data and apps as text: markup off (rich read "[/b]" in a title as markup, a
    MarkupError after the work was done; styles are given as style=) and control characters shown."""

    def print(self, *objects, **kwargs) -> None:
        super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **kwargs)


console = _Console(markup=False)
if not console.is_terminal:  # logs and pipes: do not squeeze tables into 80 columns
    console.width = 160


def fmt(value) -> str:
    if value is None:  # a figure the data cannot give (JSON: null)
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    return str(value)


def table(rows: Sequence[dict], title: str | None = None, columns: Sequence[str] | None = None) -> None:
    """Print rows (dicts) as one table; columns default to the keys of the first row."""
    if not rows:
        console.print("(nothing to show)")
        return
    columns = list(columns or rows[0].keys())
    # every cell, header and title as plain Text: ids, titles, tags, reasons and names come from data and apps,
    # and rich read "[/b]" in one as markup (a MarkupError after the work was done)
    out = Table(title=None if title is None else Text(printable(title)), show_lines=False)
    for c in columns:
        out.add_column(Text(printable(str(c))), justify="left" if isinstance(rows[0].get(c), str) else "right")
    for row in rows:
        out.add_row(*(Text(printable(fmt(row.get(c, "")))) for c in columns))
    console.print(out)


def plot_written(made) -> None:
    """What a --plot gave: the file, or why there is none."""
    if made:
        console.print(f"wrote {made}", style="dim")
    else:
        console.print("matplotlib is not installed: no plot", style="yellow")


def example(*commands: str) -> str:
    """The end of a command's --help: lines that run as they are (click keeps them unwrapped)."""
    return "\b\nExample:\n" + "\n".join(f"  {c}" for c in commands)


def print_study(result) -> None:
    """Every table of a study's result (edgerec.studies.StudyResult)."""
    for t in result.tables:
        table(t.rows, title=t.title, columns=t.columns)


def key_values(values: dict, title: str | None = None) -> None:
    table([{"field": k, "value": fmt(v)} for k, v in values.items()], title=title)


def read_json(path: str | os.PathLike, option: str):
    """A JSON file given to `option`; unreadable or invalid JSON is a ConfigError naming the option."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad UTF-8 or JSON, huge integers
        raise ConfigError(f"{option} {Path(path).name} is not a readable JSON file ({exc})") from None


def refuse_writing_over_ours(path: Path) -> None:
    """An output that would replace a file of a bundle, a data folder or a checkpoint (`--json d/items.csv`,
    `--json bundle/manifest.json`), or an SQLite database (a history), is refused before it is written."""
    from edgerec.runtime.outputs import output_refusal  # here: `edgerec --help` imports no runtime

    if str(path) == "-":  # a file named "-" appeared where the standard output was meant
        raise click.UsageError("- is not the standard output here: outputs are written to files; give a file name")
    if (why := output_refusal(path)) is not None:  # it walks up too: a file deep in a bundle is refused
        raise click.UsageError(why)


def refuse_out(out, kind: str, **inputs) -> None:
    """Before any work: an --out that is one of the command's input folders (`distill --out` the teacher's), or
    that holds another kind of model, is refused; the save replaced the input, or mixed two models' files."""
    target = Path(out).expanduser().resolve()
    for option, given in inputs.items():
        if given and ":" not in str(given) and Path(given).expanduser().resolve() == target:
            raise click.UsageError(f"--out is the --{option.replace('_', '-')} folder; writing there would replace "
                                   "it: choose another --out")
    config = target / "config.json"
    if config.is_file():
        try:
            found = json.loads(config.read_text()).get("format")
        except (ValueError, OSError, AttributeError):
            found = None
        if found != kind:
            raise click.UsageError(f"--out {Path(out).name} holds {found or 'files of another program'}, not an "
                                   f"{kind}; writing there would mix the two: choose another --out")


def write_json(path: str | os.PathLike | None, payload, private: bool = False) -> None:
    """Write JSON whole (a temporary, then renamed); `private`: a user's own data, readable by its owner only."""
    if not path:
        return
    path = Path(path)
    refuse_writing_over_ours(path)
    write_file(path, json_text(payload, indent=2), 0o600 if private else 0o666)  # 0o666: what the umask leaves
    console.print(f"wrote {path}", style="dim")


def save_npy(path: str | os.PathLike, array) -> None:
    """One array as a .npy file, whole or not at all (np.save straight to the path left a part on failure)."""
    import io

    import numpy as np

    path = Path(path)
    refuse_writing_over_ours(path)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    write_file(path, buffer.getvalue())


@contextmanager
def progress_bar(description: str) -> Iterator:
    """Yields `update(done, total)` for long work."""
    with Progress(TextColumn("{task.description}", style="bold", markup=False), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


class FiniteRange(click.FloatRange):
    """A float range that refuses NaN and infinities: click's range compares, and NaN passes every comparison."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class SuffixPath(click.Path):
    """An output file whose suffix must be one of `suffixes`: a library that picks the format from it (matplotlib)
    or adds its own (numpy's .npy) would fail after the work, or write another file than the one named."""

    def __init__(self, suffixes: tuple[str, ...], why: str):
        super().__init__(dir_okay=False, path_type=Path)
        self.suffixes, self.why = suffixes, why

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        if Path(path).suffix.lower() not in self.suffixes:
            self.fail(f"{str(value)!r} must end in {', '.join(self.suffixes)} ({self.why})", param, ctx)
        try:  # `--out bundle/items/embeddings.npy` left a bundle that no longer opened
            refuse_writing_over_ours(Path(path))
        except click.UsageError as exc:
            self.fail(exc.message, param, ctx)
        return path


class OutputFile(click.Path):
    """A file a command writes (`--json`): one that would destroy a history, a bundle's file, a data folder's or
    a checkpoint's is refused as the options are read, before hours of work end in the refusal."""

    def __init__(self):
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        try:
            refuse_writing_over_ours(Path(path))
        except click.UsageError as exc:
            self.fail(exc.message, param, ctx)
        return path


FILE_OUT = OutputFile()
SEED = click.IntRange(0, 2**32 - 1)  # what numpy's and torch's seeding take: -1 ended in a numpy traceback
PLOT_OUT = SuffixPath((".png", ".svg", ".pdf", ".jpg"), "its suffix picks the image format")
NPY_OUT = SuffixPath((".npy",), "numpy adds .npy to any other name, and the file would not be where you said")


class VocabularyChoice(click.Choice):
    """A choice among the names of one list in edgerec.runtime.vocab, read when first needed
    (importing the runtime at start-up would slow down every `edgerec --help`)."""

    def __init__(self, name: str):
        self.vocabulary, self.case_sensitive = name, True

    @property
    def choices(self):
        from edgerec.runtime import vocab

        return getattr(vocab, self.vocabulary)
