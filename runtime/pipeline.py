"""The request path as named stages, and the one runner that times them and handles their failures.

A stage is a callable that takes the `Request` and returns it. The runner
times each stage under its name (stats()["stages"]) and decides what a
failure means, in one place:

- a stage that returns anything but a Request has failed as if it raised a
  TypeError (a forgotten `return request` must not reach the next stage);
- an optional stage that raises is skipped (the request goes on as the stage
  left it, since it ran on a shallow copy) and counted as "<name>_fallback";
- a required stage with a `fallback` that raises anything but an
  EdgerecError is counted the same way and its fallback runs instead;
- any other failure of a required stage (or of its fallback): EdgerecErrors
  pass through, other exceptions become a StageError, so the app only ever
  sees EdgerecErrors.

Apps add their own stages at a named point:

    rec.pipeline.insert_after("policies", Stage("only_short", keep_short, required=False))
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

from edgerec.errors import ConfigError, EdgerecError, StageError
from edgerec.runtime import checks
from edgerec.runtime.request import Request

TOTAL = "total"  # the whole request's timing in the monitor: no stage may take the name


@dataclass
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
    """An ordered list of stages with unique names."""

    def __init__(self, stages: list[Stage]):
        self.stages: list[Stage] = []
        for stage in checks.values(stages, "stages", "Stage objects"):
            self._check_new(stage)
            self.stages.append(stage)
        # the pipeline's own required stages: later ones read what they make, so they stay (an app's may go)
        self.kept = frozenset(s.name for s in self.stages if s.required)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def __getitem__(self, name: str) -> Stage:
        return self.stages[self._position(name)]

    def insert_after(self, name: str, stage: Stage) -> None:
        self._check_new(stage)
        self.stages.insert(self._position(name) + 1, stage)

    def insert_all(self, stages: list[tuple[str, Stage]]) -> None:
        """Insert each (name of the stage to follow, Stage) pair, checking the list first."""
        stages = checks.values(stages, "stages", "(name of the stage to follow, Stage) pairs")
        if not all(isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], Stage) for pair in stages):
            raise ConfigError("stages must be a list of (name of the stage to follow, Stage) pairs")
        trial = Pipeline(self.stages)  # all or nothing: a bad pair leaves the pipeline as it was
        for after, stage in stages:
            trial.insert_after(after, stage)
        self.stages[:] = trial.stages

    def insert_before(self, name: str, stage: Stage) -> None:
        self._check_new(stage)
        self.stages.insert(self._position(name), stage)

    def replace(self, name: str, stage: Stage) -> None:
        at = self._position(name)
        if not isinstance(stage, Stage) or stage.name != name:
            self._check_new(stage)
        if name in self.kept and not stage.required:  # later stages read what it makes
            raise ConfigError(f"the {name!r} stage is required (later stages read what it makes); replace it with "
                              "a required stage, Stage(name, fn, required=True)")
        if name in self.kept:  # its replacement makes what it made: kept in its turn
            self.kept = (self.kept - {name}) | {stage.name}
        self.stages[at] = stage

    def remove(self, name: str) -> None:
        at = self._position(name)
        if name in self.kept:  # removing 'explain' gave empty lists, 'policies' a "bug in the stage" error
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
        is timed too under `total` when given)."""
        if not isinstance(request, Request):
            raise ConfigError(f"the pipeline runs a Request, not {type(request).__name__}")
        timings, start = [], time.perf_counter()  # handed to the monitor at the end, under one lock
        try:
            for stage in list(self.stages):  # a copy: an app may edit the pipeline from another thread
                if request.done:
                    break
                if stage.applies is not None and not self._applies(stage, request):
                    continue
                began = time.perf_counter()  # not monitor.stage(): a context manager per stage costs more
                try:
                    request = self._run_one(stage, request)
                finally:
                    timings.append((stage.name, (time.perf_counter() - began) * 1e3))
        finally:
            if total is not None:
                timings.append((total, (time.perf_counter() - start) * 1e3))
            monitor.record(timings, request.counts)
            request.counts.clear()
        return request

    @staticmethod
    def _applies(stage: Stage, request: Request) -> bool:
        """The stage's own check; when the check fails, the failure rules of its stage apply."""
        try:
            return bool(stage.applies(request))
        except EdgerecError:
            if stage.required:
                raise
        except Exception as exc:
            if stage.required:
                raise _bug(stage, exc) from exc
        request.count(f"{stage.name}_fallback")
        return False

    @staticmethod
    def _run_one(stage: Stage, request: Request) -> Request:
        if not stage.required:
            try:
                return _returned(stage.run(copy.copy(request)))  # its field changes vanish if it fails
            except Exception:  # an optional stage: whatever went wrong, skip it
                request.count(f"{stage.name}_fallback")
                return request
        try:
            return _returned(stage.run(request))
        except EdgerecError:
            raise
        except Exception as exc:
            if stage.fallback is None:
                raise _bug(stage, exc) from exc
            request.count(f"{stage.name}_fallback")
        try:
            return _returned(stage.fallback(request))
        except EdgerecError:
            raise
        except Exception as exc:
            raise _bug(stage, exc, "stage's fallback") from exc


def _returned(out) -> Request:
    if not isinstance(out, Request):
        raise TypeError(f"returned {type(out).__name__}, not the request")
    return out


def _bug(stage: Stage, exc: Exception, what: str = "stage") -> StageError:
    return StageError(f"the {stage.name!r} {what} failed ({type(exc).__name__}: {exc}); this is a bug in the "
                      "stage, please report it with the bundle's name and edgerec version")
