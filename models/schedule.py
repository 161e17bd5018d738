"""How long a training run lasts and how its learning rate moves: a budget that follows the data.

A fixed epoch count suits one data-set size only: a small log gives few
optimizer steps per epoch, so twenty epochs end long before the model has
converged. Here the run gets a target number of optimizer steps (at least
`MIN_STEPS`, and never fewer than `MIN_EPOCHS` epochs), a linear warmup and a
cosine decay over that budget, and early stopping on validation with a
patience that grows with the number of evaluations (validation NDCG on a
thousand users is noisy). The outcome says why the run ended and whether
validation was still rising then, with what to do about it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

MIN_STEPS = 3000  # optimizer steps a run gets at least, whatever the data size
MIN_EPOCHS = 20  # ... and never fewer epochs than this (large data sets)
MAX_EPOCHS = 400  # a tiny data set does not loop for ever
PATIENCE_RANGE = (5, 15)  # evaluations without a new best before stopping, when not set


@dataclass
class Budget:
    """The plan of one run: epochs of `steps_per_epoch` optimizer steps, warmup, patience."""

    steps_per_epoch: int
    epochs: int
    warmup_steps: int
    patience: int
    final_lr: float  # the cosine ends at this fraction of the peak learning rate

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def lr_factor(self, step: int) -> float:
        """Fraction of the peak learning rate at global step `step` (0-based)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / span, 1.0)
        return self.final_lr + (1 - self.final_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def plan_budget(steps_per_epoch: int, *, epochs: int | None = None, steps: int | None = None,
                patience: int | None = None, warmup: float = 0.03, final_lr: float = 0.1) -> Budget:
    """The budget for a run with `steps_per_epoch` batches per epoch.

    `epochs` and `steps` are caps the user set (None: follow the data); the run
    always ends on a whole epoch, so each window is seen equally often.
    """
    spe = max(int(steps_per_epoch), 1)
    if steps is None and epochs is None:
        n_epochs = min(max(math.ceil(MIN_STEPS / spe), MIN_EPOCHS), MAX_EPOCHS)
    else:
        n_epochs = epochs if epochs is not None else MAX_EPOCHS * 100
        if steps is not None:
            n_epochs = min(n_epochs, max(math.ceil(steps / spe), 1))
    if patience is None:
        low, high = PATIENCE_RANGE
        patience = min(max(math.ceil(n_epochs / 10), low), high)
    warmup_steps = max(int(round(warmup * n_epochs * spe)), 1)
    return Budget(spe, n_epochs, warmup_steps, patience, final_lr)


def fit_to_time(budget: Budget, epochs_done: int, seconds: float, max_minutes: float | None) -> Budget:
    """The budget shrunk so that, at the pace measured so far, its cosine ends by the time cap.

    A cap that cuts a run in the middle of its schedule leaves it at a high
    learning rate, never annealed: a shorter, whole schedule does better. The
    budget only shrinks (the cap is a cap) and keeps at least the next epoch.
    """
    if max_minutes is None or epochs_done < 1 or seconds <= 0:
        return budget
    fits = int(60 * max_minutes / (seconds / epochs_done))
    if fits >= budget.epochs or epochs_done >= budget.epochs:  # a run at its last epoch is not extended
        return budget
    epochs = max(fits, epochs_done + 1)
    warmup = max(budget.warmup_steps * epochs // budget.epochs, 1)  # the same share of a shorter run
    return replace(budget, epochs=epochs, warmup_steps=warmup)


@dataclass
class Outcome:
    """Why a run ended, and whether validation was still improving when it did."""

    stopped_by: str  # "patience" | "budget" | "time"
    still_improving: bool
    advice: str  # empty when there is nothing to do


def outcome(stopped_by: str, history: list[float], budget: Budget, capped_by_user: dict) -> Outcome:
    """Judge a finished run from its validation history (one value per evaluation).

    "Still improving": the run ended on a cap (not on patience) and its best
    evaluation came within the last third of the patience window.
    """
    if stopped_by == "patience" or not history:
        return Outcome(stopped_by, False, "")
    best_at = max(range(len(history)), key=lambda i: (history[i], -i))
    since_best = len(history) - 1 - best_at
    rising = since_best < max(2, math.ceil(budget.patience / 3))
    if not rising:
        return Outcome(stopped_by, False, "")
    if stopped_by == "time" and len(history) == 1:  # one value: no trend, but a run cut that short is short
        advice = (f"the time cap ({capped_by_user.get('max_minutes'):g} min) ran out after one validation, too few "
                  "to tell whether it was still improving: raise --max-minutes, or continue this run with --resume")
    elif stopped_by == "time":
        advice = (f"validation NDCG@10 was still rising when the time cap ({capped_by_user.get('max_minutes'):g} min) "
                  "ran out: raise --max-minutes, or continue this run with --resume")
    elif capped_by_user.get("epochs") is not None:
        advice = (f"validation NDCG@10 was still rising at the --epochs cap ({budget.epochs}): raise --epochs, "
                  "or leave it out so the step budget decides")
    else:
        advice = (f"validation NDCG@10 was still rising at the end of the step budget ({budget.total_steps:,} steps): "
                  f"train longer, e.g. --steps {2 * budget.total_steps}")
    return Outcome(stopped_by, True, advice)


__all__ = ["Budget", "Outcome", "fit_to_time", "outcome", "plan_budget"]
