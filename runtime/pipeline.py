"""The request path as named stages, and the one runner that times them and handles their failures.

A stage is a callable that takes the `Request` and returns it. The runner
times each stage under its name (stats()["stages"]) and decides what a
failure means, in one place:

- a stage that returns anything but the very Request it was given has failed
  as if it raised a TypeError (a forgotten `return request`, or another
  request, must not reach the next stage);
- an optional stage that raises is skipped (the request goes on as it was
  before the stage, which ran on a copy: a private one for an app's stage,
  a shallow one for the runtime's, which set fields and never change them
  in place) and counted as "<name>_fallback";
- a required stage with a `fallback` that raises anything but an
  EdgerecError is counted the same way and its fallback runs instead;
- any other failure of a required stage (or of its fallback): EdgerecErrors
  pass through, other exceptions become a StageError, so the app only ever
  sees EdgerecErrors;
- an app's own stage (one added to the pipeline, not one it was made with)
  runs on a private copy and what it leaves is checked (stage_checks.py): a
  list the runtime cannot show is that stage's failure.

The last failure of each stage is kept, in words, in `failures`.

Apps add their own stages at a named point:

    rec.pipeline.insert_after("policies", Stage("only_short", keep_short, required=False))
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edgerec.errors import ConfigError, EdgerecError, StageError
from edgerec.runtime import checks
from edgerec.runtime import monitor as nesting
from edgerec.runtime.request import Request
from edgerec.runtime.stage_checks import check, isolated, settled

TOTAL = "total"  # the whole request's timing in the monitor: no stage may take the name


@dataclass(frozen=True, eq=False)  # fixed once made: a renamed 'explain' slipped past remove()'s guard
class Stage:
    name: str
    run: Callable[[Request], Request]
    required: bool = True
    applies: Callable[[Request], bool] | None = None  # when it says False the stage is not run (nor timed)
    fallback: Callable[[Request], Request] | None = None  # a required stage's way out of a failure

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("a stage needs a name (it is what stats() times it under)")
        checks.flag(self.required, f"stage {self.name!r}: required")
        if not callable(self.run) or any(f is not None and not callable(f) for f in (self.applies, self.fallback)):
            raise ConfigError(f"stage {self.name!r}: run (and applies, fallback when given) must be functions")
        if self.fallback is not None and not self.required:
            raise ConfigError(f"stage {self.name!r}: only a required stage has a fallback "
                              "(an optional one is simply skipped when it fails)")


class Pipeline:
    """An ordered list of stages with unique names; edits and runs may come from several threads."""

    def __init__(self, stages: list[Stage]):
        self._lock = threading.RLock()
        self.stages: list[Stage] = []
        for stage in checks.values(stages, "stages", "Stage objects"):
            self._check_new(stage)
            self.stages.append(stage)
        self._own = tuple(self.stages)  # the pipeline's own stages, by identity (kept: their ids stay theirs)
        self._own_ids = frozenset(map(id, self._own))
        # the pipeline's own required stages: later ones read what they make, so they stay (an app's may go)
        self._kept = [s for s in self.stages if s.required]
        self.failures: dict[str, str] = {}  # stage name -> why it last failed (skipped, or its fallback ran)
        self._failed_for: dict[str, str] = {}  # stage name -> whose request that failure came from

    @property
    def kept(self) -> frozenset[str]:
        with self._lock:
            return frozenset(s.name for s in self._kept)

    @property
    def names(self) -> list[str]:
        with self._lock:
            return [s.name for s in self.stages]

    def __getitem__(self, name: str) -> Stage:
        with self._lock:
            return self.stages[self._position(name)]

    def insert_after(self, name: str, stage: Stage) -> None:
        with self._lock:
            self._check_new(stage)
            self.stages.insert(self._position(name) + 1, stage)

    def insert_all(self, stages: list[tuple[str, Stage]]) -> None:
        """Insert each (name of the stage to follow, Stage) pair, checking the list first."""
        stages = checks.values(stages, "stages", "(name of the stage to follow, Stage) pairs")
        if not all(isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], Stage) for pair in stages):
            raise ConfigError("stages must be a list of (name of the stage to follow, Stage) pairs")
        with self._lock:
            trial = Pipeline(self.stages)  # all or nothing: a bad pair leaves the pipeline as it was
            for after, stage in stages:
                trial.insert_after(after, stage)
            self.stages[:] = trial.stages

    def insert_before(self, name: str, stage: Stage) -> None:
        with self._lock:
            self._check_new(stage)
            self.stages.insert(self._position(name), stage)

    def replace(self, name: str, stage: Stage) -> None:
        with self._lock:
            at = self._position(name)
            if not isinstance(stage, Stage) or stage.name != name:
                self._check_new(stage)
            old = self.stages[at]
            kept = any(s is old for s in self._kept)
            if kept and not stage.required:  # later stages read what it makes
                raise ConfigError(f"the {name!r} stage is required (later stages read what it makes); replace it "
                                  "with a required stage, Stage(name, fn, required=True)")
            if kept:  # its replacement makes what it made: kept in its turn
                self._kept = [stage if s is old else s for s in self._kept]
            self.stages[at] = stage

    def remove(self, name: str) -> None:
        with self._lock:
            at = self._position(name)
            if any(s is self.stages[at] for s in self._kept):  # removing 'explain' gave empty lists
                raise ConfigError(f"the {name!r} stage is required (later stages read what it makes) and cannot be "
                                  f"removed; replace it with a required stage of your own")
            del self.stages[at]

    def _position(self, name: str) -> int:
        if not isinstance(name, str):
            raise ConfigError(f"a stage is named by a string (got {type(name).__name__})")
        for i, stage in enumerate(self.stages):
            if stage.name == name:
                return i
        raise ConfigError(f"no stage named {name!r}; the stages are {', '.join(self.names)}")

    def _check_new(self, stage: Stage) -> None:
        if not isinstance(stage, Stage):
            raise ConfigError(f"expected a Stage, got {type(stage).__name__}; wrap the function: "
                              "Stage('my_rule', fn, required=False)")
        if stage.name in self.names or stage.name == TOTAL:
            raise ConfigError(f"a stage named {stage.name!r} exists already (or is the request's total); choose "
                              "another name")

    def run(self, request: Request, monitor, total: str | None = None) -> Request:
        """Run every stage that applies, in order, until one marks the request done (the whole run
        is timed too under `total` when given). A request run while the same monitor runs another
        in this thread (an interleaving stage asking this pipeline) is not recorded."""
        if not isinstance(request, Request):
            raise ConfigError(f"the pipeline runs a Request, not {type(request).__name__}")
        with self._lock:  # a copy: an app may edit the pipeline from another thread
            stages = list(self.stages)
        counts = request.counts  # the runner's: a stage that replaces it does not lose the others' counts
        nested = nesting.begin(monitor)
        timings, start = [], time.perf_counter()  # handed to the monitor at the end, under one lock
        try:
            for stage in stages:
                if request.done:
                    break
                app = id(stage) not in self._own_ids  # an app's own stage: isolated and checked
                if stage.applies is not None and not self._applies(stage, request, app):
                    continue
                began = time.perf_counter()  # not monitor.stage(): a context manager per stage costs more
                try:
                    request = self._run_one(stage, request, app)
                finally:
                    timings.append((stage.name, (time.perf_counter() - began) * 1e3))
        except EdgerecError:
            raise
        except Exception as exc:  # the runner's own: the app still sees only EdgerecErrors
            raise StageError(f"the request path failed ({_said(exc)}); please report it with the bundle's name "
                             "and edgerec version") from exc
        finally:
            nesting.end(monitor)
            if total is not None:
                timings.append((total, (time.perf_counter() - start) * 1e3))
            request.counts = counts
            if not nested:
                monitor.record(timings, counts)
            counts.clear()
        return request

    def run_span(self, request: Request, first: str, last: str) -> Request:
        """The stages from `first` up to (not including) `last`, as run() runs them but untimed: for a stage
        that computes its request again on other settings (policies on a wider short list, spec §5)."""
        with self._lock:
            stages = list(self.stages)
        names = [stage.name for stage in stages]
        for stage in stages[names.index(first):names.index(last)]:
            if request.done:
                break
            app = id(stage) not in self._own_ids
            if stage.applies is None or self._applies(stage, request, app):
                request = self._run_one(stage, request, app)
        return request

    def _applies(self, stage: Stage, request: Request, app: bool = False) -> bool:
        """The stage's own check; when the check fails, the failure rules of its stage apply."""
        try:
            return bool(stage.applies(request))
        except EdgerecError as exc:
            if stage.required:
                raise
            failure = exc
        except Exception as exc:
            if stage.required:
                raise _bug(stage, exc, app=app) from exc
            failure = exc
        self._failed(stage, request, failure)
        return False

    def _run_one(self, stage: Stage, request: Request, app: bool) -> Request:
        try:
            return self._attempt(stage, stage.run, request, app)
        except EdgerecError as exc:
            if stage.required:
                raise
            failure = exc
        except Exception as exc:
            if stage.required and stage.fallback is None:
                raise _bug(stage, exc, app=app) from exc
            failure = exc
        self._failed(stage, request, failure)  # an optional stage: skipped; a required one: its fallback
        if not stage.required:
            return request
        try:
            return self._attempt(stage, stage.fallback, request, app)
        except EdgerecError:
            raise
        except Exception as exc:
            raise _bug(stage, exc, "stage's fallback", app) from exc

    @staticmethod
    def _attempt(stage: Stage, run, request: Request, app: bool) -> Request:
        """`run` on the request (an app stage: on a private copy, then checked; another optional stage:
        on a shallow copy), the request it returns."""
        given = isolated(request) if app else request if stage.required else request.__copy__()
        out = run(given)
        if out is not given:
            _returned(out, given)  # raises
        if app:
            out = settled(out, request, request.counts)
            check(out, request)
        return out

    def failure_reasons(self) -> dict[str, str]:
        with self._lock:
            return dict(self.failures)

    def forget(self, user: str) -> None:
        """Drop the failure reasons of `user`'s requests (an app stage's error may quote the request); matching
        by owner, not by words, so a short id does not erase other users' reasons that merely contain it."""
        with self._lock:
            for name in [name for name, owner in self._failed_for.items() if owner == user]:
                self.failures.pop(name, None)
                del self._failed_for[name]

    def _failed(self, stage: Stage, request: Request, exc: Exception) -> None:
        request.count(f"{stage.name}_fallback")
        with self._lock:
            self.failures[stage.name] = _said(exc)
            self._failed_for[stage.name] = request.user


def _returned(out, given: Request) -> Request:
    if isinstance(out, Request) and out is not given:  # a memoised one: another user's list
        raise TypeError("returned another Request, not the one it was given")
    if out is not given:
        raise TypeError(f"returned {type(out).__name__}, not the request")
    return out


def _said(exc: BaseException) -> str:
    """`Type: message`, even for an exception whose message cannot be rendered."""
    try:
        text = str(exc)
    except Exception:
        text = "(its message could not be rendered)"
    return f"{type(exc).__name__}: {text}"


def _bug(stage: Stage, exc: Exception, what: str = "stage", app: bool = False) -> StageError:
    if app:  # the app's own code: edgerec cannot fix it
        return StageError(f"the app's {stage.name!r} {what} failed ({_said(exc)}); fix that stage, or add it "
                          "with required=False to have it skipped when it fails")
    return StageError(f"the {stage.name!r} {what} failed ({_said(exc)}); this is a bug in the stage, please "
                      "report it with the bundle's name and edgerec version")
