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
        if not (self.epochs >= 1 and self.min_steps >= 1 and self.lr > 0 and self.batch >= 1):
            raise ConfigError(f"a table fit needs epochs, min_steps and batch >= 1 and lr > 0 (got {self})")
        return self


def fit_table(users: np.ndarray, targets: np.ndarray, table: np.ndarray, temperature: float,
              fit: TableFit | None = None, held_out: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The table after Adam on the mean softmax loss of (users / temperature) @ table.T against targets.

    `held_out` (user vectors, targets) not trained on: the table is the one of lowest loss on them,
    read at the start and after every epoch (a small world's minimum step count is many epochs,
    which overfits the rows: a bound below v1 would be no bound)."""
    fit = (fit or TableFit()).check()
    users, targets = np.asarray(users, np.float32), np.asarray(targets, np.int64)
    weights = np.array(table, np.float32)
    if users.ndim != 2 or weights.ndim != 2 or users.shape[1] != weights.shape[1] or len(users) != len(targets) \
            or not len(users) or not temperature > 0:
        raise ConfigError(f"a table fit needs users (n, d), n targets, a table (items, d) and a temperature > 0 "
                          f"(got {users.shape}, {targets.shape}, {weights.shape}, {temperature})")
    if not (np.all(np.isfinite(users)) and np.all(np.isfinite(weights))):
        raise ConfigError("a table fit needs finite user vectors and table rows (found NaN or infinity)")
    if targets.min() < 0 or targets.max() >= len(weights):
        raise ConfigError(f"targets must be rows of the {len(weights)}-row table")
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
    total = 0.0
    for start in range(0, len(users), 256):
        logits = (np.asarray(users[start:start + 256], np.float32) / temperature) @ table.T
        top = logits.max(1)
        total += float(np.sum(top + np.log(np.exp(logits - top[:, None]).sum(1))
                              - logits[np.arange(len(logits)), targets[start:start + 256]]))
    return total / max(len(users), 1)
