"""Ranking distillation: a large next-item teacher teaches a small student.

The student keeps its own next-item loss and adds (a) a listwise KL term that
makes its scores over the teacher's top-K candidates and some shared sampled
negatives follow the teacher's softmax, and optionally (b) an alignment term
pulling a projection of its hidden states towards the teacher's. The teacher
scores each training window once, when a batch first holds it: its hidden
states (fp16) and top-K candidates per training position are kept, so after
the first epoch a student step costs little more than plain training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgerec.data.schema import Dataset
from edgerec.data.split import Split
from edgerec.errors import ConfigError, ModelError
from edgerec.models.config import ModelConfig
from edgerec.models.recommenders import NextItemModel
from edgerec.models.train import (
    TrainConfig,
    TrainResult,
    item_counts,
    train_model,
    training_windows,
)


@dataclass
class DistillConfig:
    top_k: int = 32  # teacher candidates per position
    negatives: int = 128  # shared sampled items per batch added to the candidate lists
    weight: float = 1.0  # weight of the listwise KL term
    temperature: float = 1.0  # softening of both score lists
    align: float = 0.0  # weight of hidden-state alignment (0 = off)

    def validate(self) -> DistillConfig:
        finite = all(math.isfinite(v) for v in (self.weight, self.temperature, self.align))  # NaN passes `< 0`
        if not finite or self.top_k < 1 or self.weight < 0 or self.temperature <= 0 or self.align < 0:
            raise ConfigError("distillation needs top_k >= 1, weight >= 0, temperature > 0, align >= 0")
        return self


class TeacherTargets:
    """The teacher's targets for every training window: its hidden states (fp16), and its top-K rows with
    their logits (fp16) at each position the training loss reads (an item predicting an item: train.py's
    mask; the other positions keep zeros). Windows are left-padded, so on a log of short histories most
    positions are padding: over four fifths of them on a 300k-user log with a median of 3 events.

    A window is scored the first time a batch needs it (`ensure`), so a time-capped training pays only
    for the windows it reaches: scoring all 204k windows of that log against its 150k items ahead of
    training took longer than the quick demo's whole budget. Positions are scored `cells // catalog` at
    a time: 256 windows of 30 positions by a music catalog of 93k tracks were 2.9 GB of scores at once
    (the rows come out the same either way)."""

    def __init__(self, teacher: NextItemModel, windows: np.ndarray, top_k: int, cells: int = 1 << 24,
                 progress: Callable[[int, int], None] | None = None):
        if windows.shape[1] - 1 > teacher.config.max_len:
            raise ConfigError(f"the student's history length {windows.shape[1] - 1} exceeds the teacher's "
                              f"{teacher.config.max_len}; use --max-len <= {teacher.config.max_len}")
        teacher.eval()
        self.teacher, self.top_k, self.progress = teacher, top_k, progress
        with torch.no_grad():  # item 0 is padding: its column is set to -inf in every product
            self.items = teacher.item_vectors().detach()
        n, length = windows.shape[0], windows.shape[1] - 1
        self.inputs = torch.as_tensor(windows[:, :-1])
        self.read = torch.as_tensor((windows[:, 1:] > 0) & (windows[:, :-1] > 0))
        self.hidden = torch.zeros(n, length, self.items.shape[1], dtype=torch.float16)
        self.top = torch.zeros(n, length, top_k, dtype=torch.int32)
        self.logits = torch.zeros(n, length, top_k, dtype=torch.float16)
        self.done = torch.zeros(n, dtype=torch.bool)
        self.at_once = max(1, cells // self.items.shape[0])  # positions scored together

    def ensure(self, rows: torch.Tensor) -> None:
        """Score the windows of `rows` not scored yet."""
        rows = torch.unique(torch.as_tensor(rows, dtype=torch.long))
        rows = rows[~self.done[rows]]
        if len(rows) == 0:
            return
        with torch.no_grad():  # a teacher's outputs are targets: no graph (and a decorator hides it from mutation)
            self._score(rows)
        self.done[rows] = True
        if self.progress:
            self.progress(int(self.done.sum()), len(self.done))

    def _score(self, rows: torch.Tensor) -> None:
        h = self.teacher.hidden(self.inputs[rows])
        self.hidden[rows] = h.half()
        window, place = torch.nonzero(self.read[rows], as_tuple=True)
        h = h[window, place]
        top, logits = self.top[rows], self.logits[rows]
        for at in range(0, len(h), self.at_once):
            scores = h[at:at + self.at_once] @ self.items.T
            scores[:, 0] = float("-inf")
            best = scores.topk(self.top_k, dim=-1)
            where = (window[at:at + self.at_once], place[at:at + self.at_once])
            top[where] = best.indices.to(torch.int32)
            logits[where] = (best.values / self.teacher.config.temperature).half()
        self.top[rows], self.logits[rows] = top, logits


def teacher_targets(teacher: NextItemModel, windows: np.ndarray, top_k: int, batch: int = 256,
                    progress: Callable[[int, int], None] | None = None,
                    cells: int = 1 << 24) -> tuple[torch.Tensor, ...]:
    """TeacherTargets of every window at once, `batch` windows at a time: (hidden, top, logits)."""
    targets = TeacherTargets(teacher, windows, top_k, cells, progress)
    for start in range(0, len(targets.done), batch):
        targets.ensure(torch.arange(start, min(start + batch, len(targets.done))))
    return targets.hidden, targets.top, targets.logits


class DistillationLoss(nn.Module):
    """The extra loss of `train_model` for a student: listwise KL to the teacher (+ alignment)."""

    def __init__(self, teacher: NextItemModel, targets: tuple[torch.Tensor, ...], counts: np.ndarray,
                 student_dim: int, config: DistillConfig, seed: int = 0):
        super().__init__()
        self.config = config
        with torch.no_grad():
            self.teacher_items = teacher.item_vectors().detach()
        self.teacher_temperature = teacher.config.temperature
        # targets scored ahead (hidden, top, logits), or a TeacherTargets that scores a batch's windows when
        # the batch first comes (its tensors are filled in place)
        self.lazy = targets if isinstance(targets, TeacherTargets) else None
        self.hidden, self.top, self.top_logits = (targets.hidden, targets.top, targets.logits) if self.lazy \
            else targets
        weights = (np.asarray(counts, np.float64) + 1.0) ** 0.75
        self.probs = torch.as_tensor(weights / weights.sum(), dtype=torch.float32)
        self.drawable = int(torch.count_nonzero(self.probs))
        self.generator = torch.Generator().manual_seed(seed + 17)
        self.project = nn.Linear(student_dim, self.hidden.shape[-1]) if config.align > 0 else None

    def forward(self, student: NextItemModel, hidden: torch.Tensor, mask: torch.Tensor,
                batch: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.config
        if self.lazy is not None:
            self.lazy.ensure(batch)
        table = student.item_vectors() if table is None else table
        h_student = hidden[mask]  # (T, d)
        own = self.top[batch][mask].long()  # (T, K)
        t_own = self.top_logits[batch][mask].float()
        s_own = (h_student.unsqueeze(1) * table[own]).sum(-1) / student.config.temperature
        teacher_logits, student_logits = t_own, s_own
        h_teacher = None
        count = min(cfg.negatives, self.drawable)  # a catalog of 42 items has no 128 shared negatives to draw
        if count:
            shared = torch.multinomial(self.probs, count, replacement=False, generator=self.generator) + 1
            h_teacher = self.hidden[batch][mask].float()
            t_shared = h_teacher @ self.teacher_items[shared].T / self.teacher_temperature
            s_shared = h_student @ table[shared].T / student.config.temperature
            # a shared item that is also in a row's top-K would count twice: hide the duplicate
            duplicate = (shared.view(1, 1, -1) == own.unsqueeze(-1)).any(1)
            teacher_logits = torch.cat([t_own, t_shared.masked_fill(duplicate, float("-inf"))], 1)
            student_logits = torch.cat([s_own, s_shared.masked_fill(duplicate, float("-inf"))], 1)
        target = F.softmax(teacher_logits / cfg.temperature, -1)
        terms = target * (torch.log(target.clamp_min(1e-12)) - F.log_softmax(student_logits / cfg.temperature, -1))
        kl = torch.where(target > 0, terms, 0.0).sum(-1).mean()  # hidden duplicates add nothing
        loss = cfg.weight * kl * cfg.temperature ** 2
        if self.project is not None:
            h_teacher = self.hidden[batch][mask].float() if h_teacher is None else h_teacher
            loss = loss + cfg.align * F.mse_loss(self.project(h_student), h_teacher)
        return loss


def distill_model(dataset: Dataset, split: Split, teacher: NextItemModel, config: ModelConfig,
                  train: TrainConfig, distill: DistillConfig, *, out: str | Path | None = None,
                  progress: Callable[[str, int, int, dict], None] | None = None,
                  info_extra: dict | None = None, content: dict[str, np.ndarray] | None = None) -> TrainResult:
    """Train the student `config` with the teacher's help; the result records both losses' settings."""
    distill.validate()
    teacher_items = getattr(getattr(teacher, "item_data", None), "item_ids", None)
    if teacher_items is not None and list(teacher_items) != list(dataset.catalog.item_ids):
        raise ModelError("the teacher was trained on another catalog than this data set (its items differ); distill "
                         "it on its own data, or warm-start a teacher on this one with `edgerec train --init`")
    if distill.top_k > dataset.n_items:
        raise ConfigError(f"--top-k {distill.top_k} asks for more teacher candidates than the catalog's "
                          f"{dataset.n_items} items; pass at most {dataset.n_items}")
    windows = training_windows(split.train, config.max_len)
    targets = TeacherTargets(teacher, windows, distill.top_k,
                             progress=(lambda d, t: progress("teacher", d, t, {})) if progress else None)
    extra = DistillationLoss(teacher, targets, item_counts(split), config.dim, distill, train.seed)
    info = {"distillation": asdict(distill), "teacher_parameters": int(sum(p.numel() for p in teacher.parameters())),
            **(info_extra or {})}
    return train_model(dataset, split, config, train, out=out, extra_loss=extra, progress=progress, info_extra=info,
                       content=content)
