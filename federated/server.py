"""The server's round: sample devices, average their updates (FedAvg or DP-FedAvg), move the table.

Either way the server checks every update against the run (space, width, rows, this round's number)
and clips it again to the task's bound C: it does not trust a device's own clip (one unclipped FedAvg
upload would set a row's direction alone, or overflow it to NaN).

FedAvg weighs each device by its examples (capped, so one heavy user does not
steer a row alone) and averages the rows' changes. DP-FedAvg (McMahan et al.,
ICLR 2018) gives each device the same weight, adds Gaussian noise
of standard deviation sigma * C to every coordinate of the summed table, and
divides by the expected number of devices K, so the noise the table gets is
sigma * C / K per coordinate. Only rows whose noisy change clearly exceeds
what noise alone gives are applied (a post-processing step: without it the
noise walks every untouched row away from v1). By default the server keeps the
running sum of the rounds' noisy averages and publishes v1 plus that sum on the
rows where it clears the noise of all rounds so far (sqrt(r) times one
round's): a row that a few devices move in every round adds up linearly, its
noise only as the square root, so rows emerge that no single round could show
(on the demo world projected to 30 times its devices, deciding per round kept
clearly less of the centralized gain). Both are functions of the released
noisy sums only, so the accounting is unchanged. Devices are sampled independently with probability q = K /
population (what the accountant assumes). Rows are put back on the unit
sphere after each round, as the exporter ships them. FedAvg's step size is
searched every round by federated evaluation: the right step differs by more
than tenfold between data sets (how many examples a device holds sets how
far its clipped change reaches).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from edgerec.errors import ConfigError, PrivacyBudgetError
from edgerec.federated.accounting import DPPlan
from edgerec.runtime.fed_format import (
    ENCODINGS,
    UPLOAD_LIMIT,
    ClientUpdate,
    decode_update,
    upload_bytes,
)
from edgerec.runtime.federated import RoundTask, moved_rows

# (rows, their summed change, candidate steps) -> the evaluation cohort's summed loss per step, or None
Evaluate = Callable[[np.ndarray, np.ndarray, list[float]], "np.ndarray | None"]


@dataclass
class ServerConfig:
    rounds: int = 20
    clients_per_round: int = 100  # expected K: each device takes part with probability K / population
    server_lr: float = 10.0  # FedAvg divides by all the round's weight: each row is touched by few devices
    weight_cap: float = 50.0  # FedAvg: a device weighs min(examples, cap)
    dp_row_threshold: float = 2.0  # DP: a row moves only when its noisy change is this many times the noise's
    dp_accumulate: bool = True  # DP: decide on the sum of all rounds so far (False: on each round alone)
    # FedAvg: each round tries the current step times each factor and keeps the one whose table gives
    # devices of an evaluation cohort the lowest loss on their newest item; () keeps server_lr fixed.
    # One item a device is a noisy verdict: a cohort of a round's size (~100) chose worse steps than
    # every idle device of the demo world (~1,000) did
    step_search: tuple[float, ...] = (0.5, 1.0, 2.0)
    eval_devices: int = 2000  # the evaluation cohort: at most this many devices not training in the round
    seed: int = 0
    # DP only. False (the default): the noise and the device sample come from the OS's entropy, never from
    # `seed`: whoever knew the seed could redraw the noise, subtract it and read a device's update off the
    # published table. True is for simulations whose figures must repeat; such a table is not private.
    seeded_noise: bool = False

    def check(self, population: int) -> ServerConfig:
        if not (self.rounds >= 1 and 1 <= self.clients_per_round <= population and 0 < self.server_lr < math.inf
                and self.weight_cap > 0 and all(0 < f < math.inf for f in self.step_search)
                and self.eval_devices >= 1):
            raise ConfigError(f"a federated run needs rounds >= 1, 1 <= clients per round <= the {population} "
                              f"devices, server lr, weight cap and step-search factors finite and > 0, eval devices >= 1 "
                              f"(got {self})")
        return self


def clipped(delta: np.ndarray, clip: float) -> np.ndarray:
    norm = float(np.linalg.norm(delta))
    return delta * (clip / norm) if norm > clip else delta


def fedavg(updates: list[ClientUpdate], shape: tuple[int, int], weight_cap: float) -> tuple[np.ndarray, np.ndarray]:
    """The example-weighted mean change of the table, and the rows any update touched."""
    total = np.zeros(shape, np.float32)
    weights = np.array([min(u.weight, weight_cap) for u in updates], np.float64)
    if not len(updates) or weights.sum() <= 0:
        return total, np.zeros(0, np.int64)
    for update, weight in zip(updates, weights):
        np.add.at(total, update.rows, update.delta * np.float32(weight))
    total /= np.float32(weights.sum())
    return total, np.unique(np.concatenate([u.rows for u in updates]))


def dp_fedavg(updates: list[ClientUpdate], shape: tuple[int, int], clip: float, noise_multiplier: float,
              expected_clients: float, rng: np.random.Generator) -> np.ndarray:
    """(sum of the updates clipped to `clip` + N(0, (sigma * clip)^2) per coordinate) / K."""
    total = np.zeros(shape, np.float64)
    for update in updates:
        np.add.at(total, update.rows, clipped(update.delta.astype(np.float64), clip))
    total += rng.normal(0.0, noise_multiplier * clip, shape)
    return (total / expected_clients).astype(np.float32)


def above_noise(delta: np.ndarray, noise_std: float, threshold: float) -> np.ndarray:
    """Rows whose change is `threshold` times longer than noise alone would make it (sqrt(D) * std).

    A decision on the noisy aggregate only (post-processing: the DP guarantee stands); rows no
    device moved much would otherwise random-walk away from where v1 put them."""
    if noise_std <= 0:
        return np.flatnonzero(np.any(delta != 0, axis=1))
    norms = np.linalg.norm(delta, axis=1)
    return np.flatnonzero(norms > threshold * noise_std * np.sqrt(delta.shape[1]))


class FederatedServer:
    """The table across rounds, the device sampler and the privacy plan of one run."""

    def __init__(self, table: np.ndarray, space: str, population: int, cfg: ServerConfig, task: RoundTask,
                 dp: DPPlan | None = None):
        self.cfg = cfg.check(population)
        self.table = np.array(table, np.float32)
        self.start = self.table.copy()  # DP with dp_accumulate: the table is start + lr * the noisy sum
        self.noisy_sum = np.zeros(self.table.shape, np.float32)
        self.space, self.population, self.template, self.dp = space, population, task.check(), dp
        self.q = cfg.clients_per_round / population
        seeded = dp is None or cfg.seeded_noise  # FedAvg has nothing to hide in its draws
        self.rng = np.random.default_rng([cfg.seed, 1] if seeded else None)  # None: fresh OS entropy
        self.lr = cfg.server_lr  # FedAvg's step, which the step search moves
        self.noise_multiplier = dp.noise_multiplier() if dp is not None else 0.0
        if dp is not None and (dp.rounds != cfg.rounds or abs(dp.q - self.q) > 1e-12 or dp.clip != task.clip):
            raise ConfigError("the DP plan must have the run's rounds, sampling rate and the task's clip")
        self.upload_rows = min(task.upload_rows, len(self.table))  # what every DP upload holds
        size = upload_bytes(self.upload_rows, self.table.shape[1], task.encoding)
        if dp is not None and size > UPLOAD_LIMIT:
            raise ConfigError(f"a DP round's uploads of {self.upload_rows} rows of width {self.table.shape[1]} "
                              f"({task.encoding}) would take {size:,} bytes, over the {UPLOAD_LIMIT:,}-byte upload "
                              "limit; lower RoundTask.upload_rows or use int8")
        self.log: list[dict] = []
        self._seen: tuple[int, set] = (0, set())  # digests of the uploads admitted in round _seen[0]

    @property
    def noise_std(self) -> float:
        """Standard deviation of the noise each table coordinate gets per round: sigma * C / K."""
        return self.noise_multiplier * self.template.clip / self.cfg.clients_per_round

    def sample(self) -> np.ndarray:
        """Devices (indices into the population) of the next round, each with probability q."""
        return np.flatnonzero(self.rng.random(self.population) < self.q)

    def task(self, round_: int) -> RoundTask:
        """This round's task; under DP each round charges the devices epsilon / rounds in their ledger."""
        epsilon = self.dp.epsilon / self.dp.rounds if self.dp is not None else None
        return replace(self.template, round=round_, space=self.space, epsilon=epsilon)

    def aggregate(self, updates: list[ClientUpdate], evaluate: Evaluate | None = None) -> dict:
        """Apply one round's updates to the table; returns what the round did.

        evaluate(rows, delta, steps): the summed losses an evaluation cohort of devices reports for each
        candidate step (runtime/federated.py: step_losses), None when no device answered. FedAvg only:
        under DP a step chosen on answers without noise would make the table depend on them."""
        if self.dp is not None and len(self.log) >= self.dp.rounds:
            raise PrivacyBudgetError(f"the DP plan covers {self.dp.rounds} rounds and they are done; a further round "
                                     "would spend more than the epsilon it publishes (plan more rounds)")
        updates = [self._admitted(update) for update in updates]  # all of them before anything moves
        if self.dp is None:
            delta, rows = fedavg(updates, self.table.shape, self.cfg.weight_cap)
            if evaluate is not None and self.cfg.step_search and len(rows):
                self.lr = self._searched(rows, delta[rows], evaluate)
        else:
            delta = dp_fedavg(updates, self.table.shape, self.template.clip, self.noise_multiplier,
                              self.cfg.clients_per_round, self.rng)
            if self.cfg.dp_accumulate:
                return self._accumulated(delta, len(updates))
            rows = above_noise(delta, self.noise_std, self.cfg.dp_row_threshold)
        self.table[rows] = moved_rows(self.table[rows], delta[rows], self.lr)
        return self._logged(len(updates), rows)

    def uploads(self, payloads: list[bytes]) -> tuple[list[ClientUpdate], list[str]]:
        """The round's uploads that decode and fit this run, and why each other one was refused: one
        broken or hostile device must not stop the round (and the run) for every other device."""
        kept, refused = [], []
        if self._seen[0] != len(self.log):
            self._seen = (len(self.log), set())
        rows = self.upload_rows if self.dp is not None else len(self.table)  # what an upload holds at most
        for payload in payloads:
            try:
                data = self._sized(payload, rows)
                digest = hashlib.sha256(data).digest()  # whatever the buffer type: a memoryview is a copy too
                if digest in self._seen[1]:  # a re-sent upload counted twice gives its device 2C: DP's bound breaks
                    raise ConfigError("an update came twice in one round; the copy is refused (each device "
                                      "counts once)")
                kept.append(self._admitted(decode_update(data, rows)))
                self._seen[1].add(digest)
            except ConfigError as exc:
                refused.append(str(exc))
        return kept, refused

    def _sized(self, payload, rows: int) -> bytes:
        """The upload's bytes, refused by their size before anything is decoded (a header claiming millions of
        rows for a table of a thousand was read in full first): at most `rows` rows of the table's width."""
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise ConfigError(f"an update is bytes, as encode_update wrote them (got {type(payload).__name__})")
        size = payload.nbytes if isinstance(payload, memoryview) else len(payload)
        limit = max(upload_bytes(rows, self.table.shape[1], encoding) for encoding in ENCODINGS)
        if size > limit:
            raise ConfigError(f"an update of {size:,} bytes is larger than any of this run ({rows} rows of width "
                              f"{self.table.shape[1]}: {limit:,} bytes at most); it is refused")
        return bytes(payload)

    def _admitted(self, update: ClientUpdate) -> ClientUpdate:
        """`update` if it fits this run and round, clipped to the task's bound: the server trusts neither a
        device's clip (one unclipped upload set a FedAvg row's direction, or overflowed it to NaN) nor an
        update built without the upload format's checks (numpy reads row -1 as the last row)."""
        if not isinstance(update, ClientUpdate):
            raise ConfigError(f"the server aggregates ClientUpdates (decode_update of the upload; got "
                              f"{type(update).__name__})")
        rows, delta = np.asarray(update.rows), np.asarray(update.delta)
        ids = rows.ndim == 1 and rows.dtype.kind in "iu"
        if update.space != self.space[:24] or delta.ndim != 2 or delta.shape[1] != self.table.shape[1] or \
                (ids and rows.max(initial=0) >= len(self.table)):
            raise ConfigError("an update does not fit this run's table (space, width or rows); it is refused")
        if update.round != len(self.log):
            raise ConfigError(f"an update of round {update.round} came in round {len(self.log)}; it is refused (a "
                              "stale or replayed upload)")
        weight = update.weight if isinstance(update.weight, (int, float, np.number)) else math.nan
        if not (ids and len(rows) == len(delta) and rows.min(initial=0) >= 0 and np.all(np.diff(rows) > 0)
                and delta.dtype.kind in "fiu" and np.all(np.isfinite(delta)) and 0 <= weight < math.inf):
            raise ConfigError("an update needs unique ascending row ids of the table, one finite change row each "
                              "and a finite weight >= 0; it is refused")
        if self.dp is not None and len(rows) != self.upload_rows:  # a count of its own would tell of its history
            raise ConfigError(f"an update of a DP round holds {self.upload_rows} rows (the task's upload_rows), "
                              f"not {len(rows)}; it is refused")
        return replace(update, rows=rows.astype(np.int64),
                       delta=clipped(delta.astype(np.float64), self.template.clip).astype(np.float32))

    def _searched(self, rows: np.ndarray, delta: np.ndarray, evaluate: Evaluate) -> float:
        """The candidate step whose table the evaluation cohort finds best (the current one when none answered)."""
        steps = [self.lr * factor for factor in self.cfg.step_search]
        losses = evaluate(rows, delta, steps)
        if losses is None:
            return self.lr
        losses = np.asarray(losses, np.float64)
        if losses.shape != (len(steps),) or not np.all(np.isfinite(losses)):
            raise ConfigError(f"the evaluation cohort must report one finite loss per candidate step "
                              f"({len(steps)}); got {losses.shape}")
        return steps[int(np.argmin(losses))]

    def _accumulated(self, delta: np.ndarray, devices: int) -> dict:
        """DP: the table becomes start + lr * (sum of the noisy averages so far) on the rows where
        that sum clears the noise of all rounds so far; the other rows stay as they started."""
        self.noisy_sum += delta
        rounds = len(self.log) + 1
        rows = above_noise(self.noisy_sum, self.noise_std * np.sqrt(rounds), self.cfg.dp_row_threshold)
        self.table = self.start.copy()
        self.table[rows] = moved_rows(self.start[rows], self.noisy_sum[rows], self.cfg.server_lr)
        return self._logged(devices, rows)

    def _logged(self, devices: int, rows: np.ndarray) -> dict:
        entry = {"devices": devices, "rows_changed": int(len(rows)), "server_lr": self.lr}
        self.log.append(entry)
        return entry
