"""The one interface every study has: a configured `Study` runs and returns a `StudyResult`.

A study's inputs are the fields of its dataclass. `run()` does the work and
returns a record (plain JSON values), the tables a person reads and, when
the study draws one, a plot. Tables are derived from the record alone
(`Study.tables`), so a saved record prints the same tables later (the demo
relies on this when it resumes).
"""

from __future__ import annotations

import io
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from edgerec.errors import ConfigError
from edgerec.runtime.atomic import write_file

# progress(message, values): a line of progress and the numbers that go with it ({} when none)
Progress = Callable[[str, dict], None]


def json_safe(value):
    """`value` with every NaN or infinite float as None: strict JSON has no NaN (JSON.parse and most
    parsers outside Python reject the `NaN` json.dumps writes), and a figure that is undefined is null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def json_text(payload, **options) -> str:
    """Strict JSON of a record (see `json_safe`); anything else json cannot write becomes its str."""
    return json.dumps(json_safe(payload), allow_nan=False, default=str, **options)


def quiet(_message: str, _values: dict) -> None:
    """The progress callback that says nothing."""


@dataclass
class Table:
    """Rows to print; `columns` picks and orders them (default: the keys of the first row)."""

    title: str
    rows: list[dict]
    columns: list[str] | None = None


@dataclass
class StudyResult:
    study: str
    record: dict
    tables: list[Table] = field(default_factory=list)
    plot: Callable[[Path], Path | None] | None = None  # writes a PNG; None when matplotlib is missing

    def to_json(self) -> str:
        return json_text(self.record, indent=2)

    def write_json(self, path: str | Path) -> Path:
        """Write the record atomically (a reader never sees half a file)."""
        path = Path(path)
        write_file(path, self.to_json())  # a private temporary renamed: two runs never share one
        return path

    def write_plot(self, path: str | Path) -> Path | None:
        return self.plot(Path(path)) if self.plot else None


class Study(ABC):
    """Base of every study. Subclasses are dataclasses holding their inputs, and define
    `name`, `measure()` (the work, returning the record) and, when they have any,
    `tables(record)` and `draw(record, path)`."""

    name: ClassVar[str] = ""
    draws: ClassVar[bool] = False  # True when `draw` makes a plot

    @abstractmethod
    def measure(self, progress: Progress) -> dict:
        """Do the work; return the record (plain JSON values)."""

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        return []

    @classmethod
    def draw(cls, record: dict, path: Path) -> Path | None:
        return None

    def run(self, progress: Progress | None = None) -> StudyResult:
        record = self.measure(progress or quiet)
        return self.result(record)

    @classmethod
    def result(cls, record: dict) -> StudyResult:
        """A result from a record (also one read back from JSON)."""
        plot = (lambda path: cls.draw(record, path)) if cls.draws else None
        return StudyResult(cls.name, record, cls.tables(record), plot)


def say(progress: Progress) -> Callable[[str], None]:
    """Adapts `progress` to the one-argument callbacks of library functions."""
    return lambda message: progress(message, {})


def epoch_lines(progress: Progress, who: str, every: float = 60.0):
    """Training progress (kind, done, total, record) -> one progress line per epoch, and a heartbeat line
    during long stretches between them."""
    from edgerec.models.train import (  # torch: loaded only where a model trains
        Heartbeat,
        schedule_note,
    )

    heartbeat = Heartbeat(lambda message: progress(f"{who} {message}", {}), every)
    planned: list[int | None] = [None]  # the epochs planned at the last epoch line

    def on(kind, done, total, record):
        heartbeat(kind, done, total, record)
        if kind == "epoch":
            if note := schedule_note(record, planned[0]):
                progress(f"{who}: {note}", {})
            planned[0] = record.get("epochs_planned")
            progress(f"{who} epoch {record['epoch']}", {"loss": record["loss"], "val NDCG@10": record["val_NDCG@10"]})
    return on


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or None where matplotlib is not installed
    (a study then writes no plot)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write a finished figure (PNG, or the format its suffix names) whole or not at all, and free it: drawn into
    memory, then published with `write_file`. Saved in place, a process killed while writing left a cut-short
    image where the previous good one was."""
    plt = pyplot()
    path = Path(path)
    try:
        fig.tight_layout()
        image = io.BytesIO()
        fig.savefig(image, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi)
    finally:
        plt.close(fig)
    write_file(path, image.getvalue())  # makes the folder
    return path


HISTORY_FILES = ("", "-wal", "-shm", "-journal")  # a SQLite history and the files SQLite keeps beside it


def fresh_history(path: Path, own: bool) -> Path:
    """Ready `path` for a study that fills a device history from nothing: users replayed on top of an earlier
    history have their events recorded twice (a demo resumed after a kill in its replay step counted 10,426
    events, 7,384 of them distinct, and its HR@10 moved without a word).

    `own`: the history is the study's own file (the demo's, inside its --out): what an earlier, unfinished run
    left is removed. Otherwise it is a file the user named: one that holds anything is refused, never deleted."""
    path = Path(path)
    files = [path.with_name(path.name + suffix) for suffix in HISTORY_FILES]
    if own:
        for file in files:
            file.unlink(missing_ok=True)
        return path
    if any(file.is_file() and file.stat().st_size > 0 for file in files if not file.name.endswith("-shm")):
        raise ConfigError("the --history file already holds a device history; the study replays its users into "
                          "a new one (recorded again, their events would count twice): give --history a file "
                          "that does not exist yet, or leave it out")
    return path


def replay_context(t: float, zone: str | None, **more) -> dict:
    """A replayed request's context: the event's time and its hour of day in the data set's zone (what the
    bundle's hour priors were learned in; left out, the device took the hour of the host machine's zone)."""
    from edgerec.data.local_hours import local_hours

    return {"now": float(t), "hour": float(local_hours([t], zone)[0]), **more}
