"""The device's answers to the host's aggregate questions, each one locally differentially private.

    reporter = PrivateReporter(rec)                  # rec: an open Recommender
    record = reporter.items_consumed(epsilon=1.0)    # a plain dict; the app sends it however it likes

Questions: which item the device consumed (one item drawn from the last day's
plays/finishes, OLH over the bundle's catalog; for popularity and trending), the
genre of what it consumed (category shares, GRR), health telemetry (latency
bucket, "(none)" without a timed request, and failed-request bucket: errors
and required-stage fallbacks; GRR), and an experiment's per-device figures
(outcome sums and CUPED's pre-period figures, clipped, discrete Laplace). Every report is charged to the privacy
ledger first and refused when over budget. With `shuffle=Shuffled(batch=...)` (an
app whose reports reach the host only through an anonymizing shuffler) the item and
category questions (and experiment figures) randomize at the larger local epsilon that the shuffled batch
brings down to the requested central one (runtime/shuffle.py); the ledger is charged
the central epsilon and names the local one. A report holds the perturbed value,
the mechanism's public parameters, epsilon and the UTC day: no user, no item
id, no time of day. Nothing here opens a network connection.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone

from edgerec.errors import ConfigError
from edgerec.runtime import checks
from edgerec.runtime.ldp import (
    PRIME,
    Randomness,
    SecureRandomness,
    check_epsilon,
    discrete_laplace,
    grr,
    laplace_scale,
    olh,
    on_grid,
)
from edgerec.runtime.privacy_ledger import DAY, Budget, PrivacyLedger, in_memory
from edgerec.runtime.shuffle import Shuffled
from edgerec.runtime.vocab import CONSUMED

FORMAT = 1
NONE = "(none)"  # the last value of every domain: nothing consumed / not in the bundle
LATENCY_BUCKETS_MS = (5.0, 10.0, 20.0, 50.0, 100.0)  # upper edges; one more bucket above the last
ERROR_BUCKETS = (0, 1, 5, 20)  # upper edges (inclusive); one more bucket above the last
STEPS = 1000  # an experiment figure is reported in thousandths of its bound
NAME_LIMIT = 900  # an experiment's name: its ledger question adds "experiment:" and a shuffle note, within 1000


def bucket(value: float, edges) -> int:
    return next((i for i, edge in enumerate(edges) if value <= edge), len(edges))


class PrivateReporter:
    def __init__(self, rec, budget: Budget | None = None, rng: Randomness | None = None, *, simulation: bool = False):
        """simulation: a simulation's reporter (its ledger checks the caps by the dates given only, and may be
        kept in memory: runtime/privacy_ledger.py)."""
        if in_memory(rec.history) and not checks.flag(simulation, "simulation"):  # its ledger would start empty
            raise ConfigError("private reports need the history in a file: a privacy ledger kept in memory forgets "
                              "what was spent when the app restarts, so no budget would hold; open the Recommender "
                              "with history=PATH")
        self.rec = rec
        self.ledger = PrivacyLedger(rec.history, budget, simulation=simulation)
        self.rng = rng or SecureRandomness()

    def _consumed_rows(self, entry: float) -> list[int]:
        """The bundle rows consumed in the day that ends at the report's ledger entry, the `now` it was given
        (the ledger counts it on the real day too, so reports dated a day apart fit one daily cap, not one each)."""
        catalog = self.rec.catalog
        since = math.nextafter(entry - DAY, math.inf)  # (entry - 1 day, entry], as the ledger's daily window
        rows = (catalog.index.get(item) for item in self.rec.history.items_since(since, tuple(CONSUMED), entry))
        return [r for r in rows if r is not None and r < catalog.base_count]

    def _pick(self, rows: list[int]) -> int | None:
        return rows[self.rng.below(len(rows))] if rows else None

    def _charge(self, question: str, epsilon: float, now: float, shuffle: Shuffled | None, check=None) -> tuple:
        """Charge the ledger; returns (time, central epsilon, local epsilon, extra record fields).
        check(local epsilon): what must hold of the mechanism, raised before anything is charged."""
        epsilon = check_epsilon(epsilon)
        checks.instance(shuffle, Shuffled, "shuffle")
        local = epsilon if shuffle is None else shuffle.local_epsilon(epsilon)
        if check is not None:
            check(local)
        if shuffle is None:
            return self.ledger.charge(question, epsilon, now), epsilon, epsilon, {}
        central = min(shuffle.central_epsilon(local), epsilon)  # local_epsilon proved the one asked for
        ts = self.ledger.charge(f"{question} (shuffled; local epsilon {local:.3g})", central, now)
        return ts, central, local, {"local_epsilon": local, "shuffle": shuffle.describe()}

    def items_consumed(self, epsilon: float = 1.0, now: float | None = None, shuffle: Shuffled | None = None) -> dict:
        """One item the device consumed in the last day (or none), through OLH over the bundle's catalog."""
        now = _now(now)
        size = self.rec.catalog.base_count
        ts, central, local, extra = self._charge("items_consumed", epsilon, now, shuffle)
        row = self._pick(self._consumed_rows(ts))
        h, y = olh(size if row is None else row, local, self.rng)
        return record("items_consumed", "olh", central, ts,
                      {"space": self.rec.manifest.embedding_space, "size": size + 1, "none": size},
                      hash={"a": h.a, "b": h.b, "g": h.g, "prime": PRIME}, value=y, **extra)

    def category_shares(self, epsilon: float = 1.0, column: str = "genre", now: float | None = None,
                        shuffle: Shuffled | None = None) -> dict:
        """The `column` (genre by default) of one item consumed in the last day, through GRR."""
        now = _now(now)
        columns = self.rec.catalog.categorical
        checks.choice(column, tuple(sorted(columns)), "category_shares column (this bundle's categorical columns)")
        codes, vocab = columns[column]
        labels = [*vocab, NONE]
        ts, central, local, extra = self._charge(f"category_shares:{column}", epsilon, now, shuffle)
        row = self._pick(self._consumed_rows(ts))
        code = int(codes[row]) if row is not None else -1
        value = grr(code if code >= 0 else len(vocab), len(labels), local, self.rng)
        return record(f"category_shares:{column}", "grr", central, ts, {"labels": labels}, value=value, **extra)

    def experiment(self, name: str, arm: str, values: dict, bounds: dict, epsilon: float = 1.0,
                   now: float | None = None, shuffle: Shuffled | None = None) -> dict:
        """This device's figures in an experiment (outcome sums over its period, and the pre-period
        figures of `pre_period` for CUPED), each clipped to its public bound, in STEPS steps, with discrete
        Laplace noise over the whole vector (ldp.on_grid). The host's tests read these per device
        (studies/device_reports.py): the noise is the same in both arms, so the difference of means stays
        unbiased and only its variance grows."""
        name, arm = checks.text(name, "the experiment name", NAME_LIMIT), checks.text(arm, "arm", 1000)
        now = _now(now)
        grid = on_grid(values, bounds, STEPS)  # refused before the ledger is charged, as a too small epsilon is:
        ts, central, local, extra = self._charge(f"experiment:{name}", epsilon, now, shuffle,
                                                 lambda local: laplace_scale(len(grid), STEPS, local))
        return experiment_record(name, arm, values, bounds, local, self.rng, ts) | {"epsilon": central, **extra}

    def health(self, epsilon: float = 1.0, now: float | None = None) -> list[dict]:
        """Median request latency bucket (NONE: no request timed) and failed-request bucket (errors raised
        to the app plus requests a required stage's fallback served), half the epsilon each."""
        epsilon = check_epsilon(epsilon)
        now = _now(now)
        stats = self.rec.monitor.snapshot()
        p50 = stats["stages"].get("total", {}).get("p50_ms")  # None: no measurement, not the fastest bucket
        failed = stats["counters"].get("errors", 0) + sum(
            stats["counters"].get(f"{stage.name}_fallback", 0)  # a broken encoder serves popularity, no error
            for stage in list(self.rec.pipeline.stages) if stage.required and stage.fallback is not None)
        ts = self.ledger.charge("health", epsilon, now)
        out = []
        for name, raw, edges, none in (("latency_ms", p50, LATENCY_BUCKETS_MS, [NONE]),
                                       ("errors", failed, ERROR_BUCKETS, [])):
            labels = [f"<={e:g}" for e in edges] + [f">{edges[-1]:g}"] + none
            value = grr(len(labels) - 1 if raw is None else bucket(raw, edges), len(labels), epsilon / 2, self.rng)
            out.append(record(f"health:{name}", "grr", epsilon / 2, ts, {"labels": labels}, value=value))
        return out


def record(question: str, mechanism: str, epsilon: float, ts: float, domain: dict, **fields) -> dict:
    """A report as it leaves the device: the question, its mechanism's public parameters and the UTC day."""
    day = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d")
    return {"format": FORMAT, "question": question, "mechanism": mechanism, "epsilon": epsilon, "day": day,
            "domain": domain, **fields}


def experiment_record(name: str, arm: str, values: dict, bounds: dict, epsilon: float, rng: Randomness,
                      ts: float) -> dict:
    """An experiment report at `epsilon` (nothing charged: PrivateReporter.experiment charges the ledger
    first; a simulation sends its users' figures through this same code)."""
    grid = on_grid(values, bounds, STEPS)
    scale = laplace_scale(len(grid), STEPS, epsilon)
    noisy = {k: v + discrete_laplace(scale, rng) for k, v in grid.items()}
    return record(f"experiment:{name}", "discrete_laplace", epsilon, ts,
                  {"bounds": {k: float(bounds[k]) for k in sorted(bounds)}, "steps": STEPS}, arm=arm, values=noisy)


def _now(now) -> float:
    return time.time() if now is None else checks.timestamp(now, "now", allow_none=False)
