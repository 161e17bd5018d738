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

from edgerec.errors import ConfigError
from edgerec.runtime.atomic import write_file
from edgerec.studies.base import json_text

console = Console()
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
    out = Table(title=title, show_lines=False)
    for c in columns:
        out.add_column(c, justify="left" if isinstance(rows[0].get(c), str) else "right")
    for row in rows:
        out.add_row(*(fmt(row.get(c, "")) for c in columns))
    console.print(out)


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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{option} {Path(path).name} is not a readable JSON file ({exc})") from None


SQLITE_HEADER = b"SQLite format 3\x00"


def write_json(path: str | os.PathLike | None, payload, private: bool = False) -> None:
    """Write JSON whole (a temporary, then renamed); `private`: a user's own data, readable by its owner only."""
    if not path:
        return
    path = Path(path)
    if path.is_file():
        with open(path, "rb") as existing:
            if existing.read(16) == SQLITE_HEADER:  # a history (or any database) mistyped as the output
                raise click.UsageError(f"{path.name} is an SQLite database; writing JSON over it would destroy it: "
                                       "choose another file for the output")
    write_file(path, json_text(payload, indent=2), 0o600 if private else 0o666)  # 0o666: what the umask leaves
    console.print(f"[dim]wrote {path}[/dim]")


@contextmanager
def progress_bar(description: str) -> Iterator:
    """Yields `update(done, total)` for long work."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
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


class PlotPath(click.Path):
    """A figure's file: its suffix picks matplotlib's format, so one it cannot write (.json, .txt) is refused
    before the work, not by a traceback after it."""

    FORMATS = (".png", ".svg", ".pdf", ".jpg", ".jpeg")

    def __init__(self):
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        if Path(path).suffix.lower() not in self.FORMATS:
            self.fail(f"{str(value)!r} must end in {', '.join(self.FORMATS[:-1])} (its suffix picks the image "
                      "format)", param, ctx)
        return path


PLOT_OUT = PlotPath()


class VocabularyChoice(click.Choice):
    """A choice among the names of one list in edgerec.runtime.vocab, read when first needed
    (importing the runtime at start-up would slow down every `edgerec --help`)."""

    def __init__(self, name: str):
        self.vocabulary, self.case_sensitive = name, True

    @property
    def choices(self):
        from edgerec.runtime import vocab

        return getattr(vocab, self.vocabulary)
