"""What the federated loop could reach: the item table trained centrally, the encoder frozen.

The federated loop moves item rows only, while full retraining also learns the
encoder again. `fit_table` trains the same rows on every device's next-item
steps at once: the devices' softmax over the whole catalog (their own gradient code), with the user
vectors the shipped encoder gives, from v1's table, with Adam. Like full
retraining it reads every history, so it is a reference for studies, never a
product path. Where it lands tells what the gap between FedAvg and full
retraining is made of: near full retraining, the part the devices train could
carry the gain and the loop's optimization leaves it; near FedAvg, the part
the devices do not train is what is missing.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from edgerec.errors import ConfigError
from edgerec.runtime.federated import softmax_gradients


@dataclass(frozen=True)
class TableFit:
    epochs: int = 3
    min_steps: int = 300  # small worlds: enough Adam steps to move rows at all
    lr: float = 1e-3
    batch: int = 1024
    seed: int = 0

    def check(self) -> TableFit:
        counts = (self.epochs, self.min_steps, self.batch, self.seed)
        whole = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in counts)
        rate = isinstance(self.lr, numbers.Real) and not isinstance(self.lr, bool)
        if not (whole and rate and self.epochs >= 1 and self.min_steps >= 1 and self.batch >= 1 and self.seed >= 0
                and 0 < self.lr < math.inf):
            raise ConfigError(f"a table fit needs whole epochs, min_steps and batch >= 1, a seed >= 0 and a finite "
                              f"lr > 0 (got {self})")
        return self


def _checked(users, targets, table, temperature: float, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, targets, table) as float32, int64, float32, or a ConfigError naming what is wrong with `what`."""
    users, targets, table = np.asarray(users, np.float32), np.asarray(targets), np.asarray(table, np.float32)
    warm = isinstance(temperature, numbers.Real) and not isinstance(temperature, bool) and 0 < temperature < math.inf
    if users.ndim != 2 or table.ndim != 2 or users.shape[1] != table.shape[1] or targets.shape != (len(users),) \
            or not len(users) or not warm:
        raise ConfigError(f"{what} need users (n, d), n targets, a table (items, d) and a finite temperature > 0 "
                          f"(got {users.shape}, {targets.shape}, {table.shape}, {temperature})")
    if not (np.all(np.isfinite(users)) and np.all(np.isfinite(table))):
        raise ConfigError(f"{what} need finite user vectors and table rows (found NaN or infinity)")
    if not np.issubdtype(targets.dtype, np.integer) or targets.min() < 0 or targets.max() >= len(table):
        raise ConfigError(f"{what} need targets that are rows of the {len(table)}-row table (got {targets.dtype})")
    return users, targets.astype(np.int64), table


def fit_table(users: np.ndarray, targets: np.ndarray, table: np.ndarray, temperature: float,
              fit: TableFit | None = None, held_out: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The table after Adam on the mean softmax loss of (users / temperature) @ table.T against targets.

    `held_out` (user vectors, targets) not trained on: the table is the one of lowest loss on them,
    read at the start and after every epoch (a small world's minimum step count is many epochs,
    which overfits the rows: a bound below v1 would be no bound)."""
    fit = (fit or TableFit()).check()
    users, targets, weights = _checked(users, targets, table, temperature, "a table fit's steps")
    weights = weights.copy()  # trained in place; the caller's table stays v1's
    rng = np.random.default_rng(fit.seed)
    per_epoch = math.ceil(len(users) / fit.batch)
    steps = max(fit.epochs * per_epoch, fit.min_steps)
    best = (held_out_loss(*held_out, weights, temperature), weights.copy()) if held_out else None
    order = np.concatenate([rng.permutation(len(users))
                            for _ in range(math.ceil(steps * fit.batch / len(users)))])
    first, second = np.zeros_like(weights), np.zeros_like(weights)
    beta1, beta2 = 0.9, 0.999
    for step in range(1, steps + 1):
        batch = order[(step - 1) * fit.batch:step * fit.batch]
        grad = softmax_gradients(users[batch], targets[batch], weights, temperature, None, False)[0]
        grad /= np.float32(len(batch))  # the devices' loss is summed; the mean keeps lr independent of batch
        first = beta1 * first + (1 - beta1) * grad
        second = beta2 * second + (1 - beta2) * grad * grad
        unbiased = np.sqrt(second / (1 - beta2 ** step))
        weights -= np.float32(fit.lr) * (first / (1 - beta1 ** step)) / (unbiased + np.float32(1e-8))
        if best is not None and (step % per_epoch == 0 or step == steps):
            loss = held_out_loss(*held_out, weights, temperature)
            if loss < best[0]:
                best = (loss, weights.copy())
    return weights if best is None else best[1]


def held_out_loss(users: np.ndarray, targets: np.ndarray, table: np.ndarray, temperature: float) -> float:
    """Mean softmax loss of `users` against `targets` over the whole table."""
    users, targets, table = _checked(users, targets, table, temperature, "held-out steps")
    total = 0.0
    for start in range(0, len(users), 256):
        logits = (users[start:start + 256] / temperature) @ table.T
        top = logits.max(1)
        total += float(np.sum(top + np.log(np.exp(logits - top[:, None]).sum(1))
                              - logits[np.arange(len(logits)), targets[start:start + 256]]))
    return total / len(users)
