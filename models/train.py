"""Training of next-item recommenders: windows, losses, early stopping, resume, warm start, DDP.

One loop serves plain training and distillation (which adds a loss term).
Every position of a history window predicts the item after it, with a full
softmax over the catalog or a sampled softmax (popularity-sampled negatives
with log-Q correction). Validation NDCG@10 over full ranking decides early
stopping. With `torchrun --nproc_per_node N`, each process takes a share of
every epoch's batches and DDP (gloo on CPU) averages the gradients.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from edgerec.data.schema import Dataset
from edgerec.data.split import Sequences, Split
from edgerec.errors import ConfigError, ModelError
from edgerec.models.baselines import Popular
from edgerec.models.checkpoint import (
    DISTILL,
    TRAIN,
    load_train_state,
    read_config,
    refuse_resume_by,
    save_checkpoint,
    save_train_state,
)
from edgerec.models.config import ModelConfig
from edgerec.models.evaluation import Evaluator
from edgerec.models.items import ItemData, build_item_data, extend_item_data, id_layout
from edgerec.models.recommenders import NextItemModel, build_model
from edgerec.models.schedule import Budget, fit_to_time, outcome, plan_budget
from edgerec.models.scoring import ModelScorer
from edgerec.runtime.checks import file_name


@dataclass
class TrainConfig:
    epochs: int | None = None  # a hard cap on epochs; None: the step budget decides (models/schedule.py)
    steps: int | None = None  # target optimizer steps; None: derived from the data size
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    loss: str = "sampled"  # "sampled" softmax (log-Q corrected), or "full" softmax over the catalog
    negatives: int = 1024  # for the sampled softmax
    patience: int | None = None  # evaluations without a better validation NDCG@10; None: grows with the run
    eval_users: int = 2000  # validation users scored after each epoch (0 = all)
    seed: int = 0
    max_minutes: float | None = None  # stop (keeping the best epoch) when this much time has passed
    warmup: float = 0.03  # fraction of the steps over which the learning rate rises linearly
    final_lr: float = 0.1  # cosine decay of the learning rate to this fraction of lr over the budget

    def validate(self) -> TrainConfig:
        if self.loss not in ("full", "sampled"):
            raise ConfigError(f"loss must be 'full' or 'sampled', not {self.loss!r}")
        if (self.epochs is not None and self.epochs < 1) or (self.steps is not None and self.steps < 1) \
                or self.batch_size < 1:
            raise ConfigError("epochs, steps and batch size must be at least 1 (or left unset)")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be at least 1 evaluation, not {self.patience}")
        if not (0 < self.lr < math.inf and 0 <= self.weight_decay < math.inf):
            raise ConfigError(f"the learning rate must be finite and > 0, weight decay finite and >= 0 "
                              f"(lr={self.lr}, weight_decay={self.weight_decay})")
        if (self.loss == "sampled" and self.negatives < 1) or self.eval_users < 0:
            raise ConfigError(f"negatives must be at least 1 and eval users at least 0 (0 = all) "
                              f"(negatives={self.negatives}, eval_users={self.eval_users})")
        if self.max_minutes is not None and not 0 <= self.max_minutes < math.inf:
            raise ConfigError(f"max minutes must be a finite time >= 0, or left unset (got {self.max_minutes})")
        return self

    def budget(self, steps_per_epoch: int) -> Budget:
        return plan_budget(steps_per_epoch, epochs=self.epochs, steps=self.steps, patience=self.patience,
                           warmup=self.warmup, final_lr=self.final_lr)


def schedule_note(record: dict, last_planned: int | None) -> str | None:
    """What to say when an epoch's record plans fewer epochs than the one before (a time cap fitted the
    schedule to the pace measured so far); None otherwise."""
    planned = record.get("epochs_planned")
    if last_planned is None or planned is None or planned >= last_planned:
        return None
    return (f"the schedule now ends at epoch {planned} (it was {last_planned}) so that it anneals within the "
            "time cap (--max-minutes)")


@dataclass
class Heartbeat:
    """A line now and then while train_model works between epoch lines: an epoch, or the teacher's scoring
    before distillation, ran 5 minutes on MovieLens-1M on a shared core with nothing on screen (about 20
    times that at a 19M-play log). Fed the same (kind, done, total, record) stream as `progress`; says a
    line at most every `every` seconds of `clock`, counted from the last epoch line or heartbeat."""

    say: Callable[[str], None]
    every: float = 60.0
    clock: Callable[[], float] = time.monotonic
    last: float | None = None

    def __call__(self, kind: str, done: int, total: int, record: dict) -> None:
        now = self.clock()
        if self.last is None or kind == "epoch":
            self.last = now
            return
        if now - self.last < self.every:
            return
        self.last = now
        if kind == "train":
            self.say(f"epoch {record['epoch']}: step {done:,} of {total:,}, loss {record['loss']:.4f}")
        elif kind == "teacher":
            self.say(f"teacher scoring: {done:,} of {total:,} training windows")


# ------------------------------------------------------------------- inputs


def training_windows(train: Sequences, max_len: int) -> np.ndarray:
    """Cut each user's sequence into windows of max_len + 1 model rows, newest first, left-padded.

    Consecutive windows overlap by one item, so every transition is learned once.
    """
    windows = []
    rows = train.items.astype(np.int64) + 1
    for u in range(train.n_users):
        start, end = train.indptr[u], train.indptr[u + 1]
        while end - start >= 2:
            piece = rows[max(start, end - max_len - 1):end]
            window = np.zeros(max_len + 1, np.int64)
            window[max_len + 1 - len(piece):] = piece
            windows.append(window)
            end -= max_len
    return np.stack(windows) if windows else np.zeros((0, max_len + 1), np.int64)


def item_counts(split: Split) -> np.ndarray:
    return np.bincount(split.train.items, minlength=split.n_items)


class NegativeSampler:
    """Popularity^0.75 sampling of negative rows, with the log-probabilities for log-Q correction."""

    def __init__(self, counts: np.ndarray, seed: int):
        weights = (np.asarray(counts, np.float64) + 1.0) ** 0.75
        self.probs = torch.as_tensor(weights / weights.sum(), dtype=torch.float32)
        self.log_q = torch.log(self.probs)
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.multinomial(self.probs, n, replacement=True, generator=self.generator)
        return idx + 1, self.log_q[idx]  # model rows


# ------------------------------------------------------------------- losses


class NextItemLoss(nn.Module):
    """Wraps a model so that `forward` returns the loss (what DDP needs to sync gradients)."""

    def __init__(self, model: NextItemModel, loss: str, extra: nn.Module | None = None):
        super().__init__()
        self.model, self.loss, self.extra = model, loss, extra

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor, negatives=None, log_q=None,
                batch: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.model.hidden(inputs)
        mask = (targets > 0) & (inputs > 0)  # the first item of a history has nothing to predict it from
        h, t = hidden[mask], targets[mask]
        temperature = self.model.config.temperature
        # every item's vector once per step, when many lookups follow (full softmax, distillation)
        table = self.model.item_vectors() if (self.loss == "full" or self.extra is not None) else None

        def vectors(index: torch.Tensor) -> torch.Tensor:
            return table[index] if table is not None else self.model.item_vectors(index)

        if self.loss == "full":
            logits = h @ table.T / temperature
            logits[:, 0] = float("-inf")  # never predict padding
            loss = F.cross_entropy(logits, t)
        else:
            # sampled softmax with log-Q correction; accidental hits of the target are masked out
            h = h / temperature
            pos = (h * vectors(t)).sum(-1)
            neg = torch.addmm(-log_q.unsqueeze(0), h, vectors(negatives).T)
            neg = neg.masked_fill(negatives.unsqueeze(0) == t.unsqueeze(1), float("-inf"))
            loss = (torch.logaddexp(pos, torch.logsumexp(neg, 1)) - pos).mean()
        if self.extra is not None:
            loss = loss + self.extra(self.model, hidden, mask, batch, table)
        return loss


# ------------------------------------------------------------------ trainer


@dataclass
class TrainResult:
    model: NextItemModel
    items: ItemData
    info: dict


def train_model(dataset: Dataset, split: Split, config: ModelConfig, train: TrainConfig, *,
                out: str | Path | None = None, init: NextItemModel | None = None, resume: bool = False,
                extra_loss: nn.Module | None = None, content: dict[str, np.ndarray] | None = None,
                info_extra: dict | None = None,
                progress: Callable[[str, int, int, dict], None] | None = None) -> TrainResult:
    """Train `config` on `split`'s training part; early-stop on validation NDCG@10.

    `init` warm-starts from a trained model: `config` must keep its architecture,
    width, heads, id table and content modalities (a ConfigError otherwise), and
    every weight is copied (`warm_start`); `resume` continues an interrupted run
    saved at `out`, with the same model options and catalog. `extra_loss`
    (distillation) is called as extra(model, hidden, mask, window_index, item_table) and
    its own parameters are trained too.
    """
    train.validate()
    config.validate()
    rank, world = _rank_world()
    torch.manual_seed(train.seed)
    counts = item_counts(split)
    if init is None:
        items = build_item_data(dataset.catalog, counts, own_rows=config.own_rows,
                                hash_buckets=config.hash_buckets, content=content)
    else:
        config = warm_config(config, init)
        items = extend_item_data(init.item_data, dataset.catalog, config.own_rows, config.hash_buckets, content)
        _require_init_content(init.item_data, items)
    kind = DISTILL if extra_loss is not None else TRAIN  # recorded in every save: what may resume the run
    if resume and out is not None:
        refuse_resume_by(out, kind)  # a distill student resumed without its teacher's loss
        _require_same_run(out, config, items)
    model = build_model(config, items)
    copied = warm_start(model, init) if init is not None else None
    windows = training_windows(split.train, config.max_len)
    if len(windows) == 0:
        raise ConfigError("no training windows: no user has two consumed items left for training (skips do not count; "
                          "once a user has three, the last two are held out for validation and test): import a "
                          "log in which users consume several items each")
    loss_module = NextItemLoss(model, train.loss, extra_loss)
    runner: nn.Module = loss_module
    if world > 1:
        runner = nn.parallel.DistributedDataParallel(loss_module)
    params = list(model.parameters()) + (list(extra_loss.parameters()) if extra_loss is not None else [])
    optimizer = torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)
    sampler = NegativeSampler(counts, train.seed + rank)
    evaluator = Evaluator(split, dataset.catalog, k=10)
    eval_rows = _eval_subset(split, train.eval_users, train.seed)
    scorer = ModelScorer(model)

    progress_state = {"epoch": 0, "best": -1.0, "best_epoch": 0, "bad_epochs": 0, "history": [], "seconds": 0.0,
                      "run": kind}
    best_state = None
    if resume:
        if out is None:
            raise ConfigError("resume needs the checkpoint folder of the interrupted run")
        latest, progress_state, best_state = load_train_state(out, optimizer)
        refuse_resume_by(out, kind, {"run": progress_state.get("run", TRAIN)})  # killed before its first config
        progress_state["run"] = kind
        try:
            model.load_state_dict(latest)
        except RuntimeError:  # what the saved config could not tell (e.g. other item fields, same ids)
            raise ModelError(f"the interrupted run in {file_name(out)} holds weights of another shape than this "
                             "run's model (other model options or data); resume it with the same options and "
                             "--data, or train into another --out") from None
        if "sampler_rng" in progress_state:  # the negatives continue where they stopped
            sampler.generator.set_state(torch.tensor(progress_state["sampler_rng"], dtype=torch.uint8))

    began = time.perf_counter() - progress_state["seconds"]
    rng = np.random.default_rng(train.seed)
    for _ in range(progress_state["epoch"]):  # replay the shuffles of finished epochs
        rng.permutation(len(windows))
    per_epoch = math.ceil(len(windows) / train.batch_size)
    budget = train.budget(max(per_epoch // world, 1) if world > 1 else per_epoch)
    planned = budget.epochs
    stopped_by = "budget"
    for epoch in range(progress_state["epoch"], planned):
        # a time cap shrinks the schedule to what fits at the measured pace, so the run still anneals
        budget = fit_to_time(budget, epoch, time.perf_counter() - began, train.max_minutes)
        if world > 1:  # every process follows rank 0's clock, or they would stop at different epochs
            epochs = torch.tensor([budget.epochs, budget.warmup_steps])
            dist.broadcast(epochs, 0)
            budget = replace(budget, epochs=int(epochs[0]), warmup_steps=int(epochs[1]))
        if epoch >= budget.epochs:
            break
        model.train()
        order = rng.permutation(len(windows))
        batches = [order[i:i + train.batch_size] for i in range(0, len(order), train.batch_size)]
        batches = batches[: len(batches) // world * world][rank::world] if world > 1 else batches
        total, seen, cut_at = 0.0, 0, None
        for step, batch in enumerate(batches):
            if world == 1 and train.max_minutes is not None and step and \
                    time.perf_counter() - began > 60 * train.max_minutes:
                cut_at = step  # an epoch longer than what is left of the cap ends here, not at its last batch
                break
            w = torch.as_tensor(windows[batch])
            negatives, log_q = sampler.sample(train.negatives) if train.loss == "sampled" else (None, None)
            loss = runner(w[:, :-1], w[:, 1:], negatives, log_q, torch.as_tensor(batch))
            value = float(loss.detach())
            if not math.isfinite(value):  # one such step turns every weight into NaN: stop before it
                raise ModelError(_diverged(value, epoch, step, len(batches), train.lr, tuple(sorted(items.content))))
            for group in optimizer.param_groups:
                group["lr"] = train.lr * budget.lr_factor(epoch * budget.steps_per_epoch + step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 5.0)
            optimizer.step()
            total += value * len(batch)
            seen += len(batch)
            if progress and step % 20 == 0:
                progress("train", epoch * len(batches) + step, budget.total_steps,
                         {"epoch": epoch + 1, "loss": total / max(seen, 1)})
        scorer.refresh()
        stop = False
        if rank == 0:
            ndcg = evaluator.evaluate(scorer, "val", rows=eval_rows)["NDCG@10"]
            record = {"epoch": epoch + 1, "loss": total / max(seen, 1), "val_NDCG@10": ndcg,
                      "seconds": round(time.perf_counter() - began, 1), "epochs_planned": budget.epochs}
            if cut_at is not None:
                record["steps_of_epoch"] = [cut_at, len(batches)]
            progress_state["history"].append(record)
            if ndcg > progress_state["best"]:
                progress_state.update(best=ndcg, best_epoch=epoch + 1, bad_epochs=0)
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                progress_state["bad_epochs"] += 1
            if progress_state["bad_epochs"] >= budget.patience:
                stop, stopped_by = True, "patience"
            elif cut_at is not None or (train.max_minutes is not None
                                        and time.perf_counter() - began > 60 * train.max_minutes):
                stop, stopped_by = True, "time"
            if progress:
                progress("epoch", epoch + 1, budget.epochs, record)
        progress_state["epoch"] = epoch + 1
        progress_state["seconds"] = time.perf_counter() - began
        progress_state["sampler_rng"] = sampler.generator.get_state().tolist()
        if out is not None and rank == 0:
            _save_progress(out, model, best_state, config, items, optimizer, progress_state)
        if world > 1:
            flag = torch.tensor([1 if stop else 0])
            dist.broadcast(flag, 0)
            stop = bool(flag.item())
        if stop:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    if stopped_by == "budget" and budget.epochs < planned:
        stopped_by = "time"  # the schedule was shortened to fit --max-minutes
    ended = outcome(stopped_by, [h["val_NDCG@10"] for h in progress_state["history"]], budget,
                    {"epochs": train.epochs, "max_minutes": train.max_minutes})
    popular = evaluator.evaluate(Popular(split, dataset), "val", rows=eval_rows)["NDCG@10"] if rank == 0 else None
    info = {
        "best_epoch": progress_state["best_epoch"],
        "val_NDCG@10": progress_state["best"],
        "epochs_run": progress_state["epoch"],
        "budget": {"steps_per_epoch": budget.steps_per_epoch, "epochs": budget.epochs, "steps": budget.total_steps,
                   "warmup_steps": budget.warmup_steps, "patience": budget.patience, "planned_epochs": planned,
                   "last_lr_factor": round(budget.lr_factor(progress_state["epoch"] * budget.steps_per_epoch - 1),
                                           4)},
        "stopped_by": ended.stopped_by,
        "still_improving": ended.still_improving,
        "advice": ended.advice,
        "val_NDCG@10_popular": popular,
        "warning": below_popularity(progress_state["best"], popular, ended.stopped_by),
        "train_seconds": round(time.perf_counter() - began, 1),
        "history": progress_state["history"],
        "train_config": asdict(train),
        "parameters": count_parameters(model),
        "windows": int(len(windows)),
        "processes": world,
        **({"warm_start": copied} if copied is not None else {}),
        **(info_extra or {}),
    }
    if out is not None and rank == 0:
        save_checkpoint(out, model.state_dict(), config, items, info)
    return TrainResult(model, items, info)


def below_popularity(best: float, popular: float | None, stopped_by: str) -> str:
    """What to say when a trained model ranks no better than the most played items on the same validation
    users ("" otherwise): such a model is worse than the list it would replace, whatever its loss says."""
    if popular is None or best > popular:
        return ""
    todo = ("it stopped improving below it: try other settings (edgerec tune) or a log with longer histories"
            if stopped_by == "patience" else
            "it has not learnt the data yet: train it longer (--max-minutes, or --resume)")
    return (f"validation NDCG@10 {max(best, 0.0):.4f} is not above plain popularity's {popular:.4f} on the same "
            f"users; {todo}, or ship the popularity list instead")


def _rank_world() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size()


def _diverged(value: float, epoch: int, step: int, batches: int, lr: float, content: tuple[str, ...] = ()) -> str:
    # read_vectors refuses far outliers, but content vectors on a large scale overall diverge too
    inputs = (f"; or the content vectors ({', '.join(content)}) are on too large a scale: standardize them"
              if content else "")
    return (f"the training loss became {value} at epoch {epoch + 1}, batch {step + 1} of {batches}: training "
            f"diverged (a learning rate too high for this model and data is the usual cause); lower --lr "
            f"(now {lr:g}), e.g. to {lr / 10:g}, and train again{inputs}")


def _save_progress(out, model, best_state, config, items, optimizer, progress_state) -> None:
    """What the run resumes from (one file, so one epoch's), then the best weights so far as the checkpoint."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_train_state(out, model.state_dict(), best_state, optimizer, progress_state)
    save_checkpoint(out, best_state if best_state is not None else model.state_dict(), config, items,
                    {"in_progress": True, "best_epoch": progress_state["best_epoch"],
                     "run": progress_state.get("run", TRAIN)})


def _eval_subset(split: Split, n: int, seed: int) -> np.ndarray | None:
    if n <= 0 or n >= len(split.val_users):
        return None
    return np.sort(np.random.default_rng(seed).choice(len(split.val_users), n, replace=False))


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


# the CLI option of each model config field, for messages
OPTION = {"arch": "--arch", "dim": "--dim", "layers": "--layers", "heads": "--heads", "max_len": "--max-len",
          "dropout": "--dropout", "temperature": "temperature", "own_rows": "--own-rows",
          "hash_buckets": "--hash-buckets", "use_features": "features (--no-features)", "content": "--content"}
POSITIONAL = ("encoder.position", "pool.logits")  # one row per history position, right-aligned (newest last)
ITEM_DATA = ("id_rows", "field_codes", "tag_codes")  # buffers of the item data, set from the new catalog


def warm_config(config: ModelConfig, init: NextItemModel) -> ModelConfig:
    """`config` as a warm start from `init` trains it (with the id-table layout of `init`), or a ConfigError
    when `init`'s weights would not fit: another architecture, width or head count, fewer layers, or an
    id table laid out otherwise (new items would share rows trained for other items)."""
    old = init.config
    differ = [f"{OPTION[name]} {getattr(old, name)} (not {getattr(config, name)})"
              for name in ("arch", "dim", "heads") if getattr(config, name) != getattr(old, name)]
    if config.layers < old.layers:
        differ.append(f"{OPTION['layers']} {old.layers} or more (not {config.layers})")
    if differ:
        raise ConfigError(f"the --init checkpoint's weights do not fit the model asked for: it needs "
                          f"{', '.join(differ)}; leave these options out (the --init checkpoint's are used) or "
                          "train without --init")
    layout = id_layout(init.item_data, old.own_rows, old.hash_buckets)
    asked = (None, 0) if config.own_rows is None else (config.own_rows, config.hash_buckets)
    if asked not in (layout, (old.own_rows, old.hash_buckets)):
        trained = "an own row for every item" if layout[0] is None else \
            f"--own-rows {layout[0]} --hash-buckets {layout[1]}"
        raise ConfigError(f"a warm start keeps the id table of the --init checkpoint ({trained}); leave --own-rows "
                          "and --hash-buckets out (or give those), or train without --init")
    return replace(config, own_rows=layout[0], hash_buckets=layout[1])


def _require_init_content(old: ItemData, new: ItemData) -> None:
    """A ConfigError when the warm start would drop a content modality `old` fuses into its items (or read
    one of another width): its projection was trained and every item vector leans on it."""
    widths = {name: matrix.shape[1] for name, matrix in new.content.items()}
    lost = [f"{name} (width {matrix.shape[1]})" for name, matrix in sorted(old.content.items())
            if widths.get(name) != matrix.shape[1]]
    if lost:
        raise ConfigError(f"the --init checkpoint fuses content vectors into its items: {', '.join(lost)}; pass "
                          "them again (--content NAME=FILE.npy, the same width) or train without --init")


def _require_same_run(out, config: ModelConfig, items: ItemData) -> None:
    """A ConfigError (other model options) or ModelError (other catalog) before resuming the run saved at
    `out` with a model its weights do not belong to."""
    if not (Path(out) / "config.json").is_file():
        return  # killed before its first checkpoint: the weights' shapes are checked on loading
    saved, meta = read_config(out)
    differ = [f"{OPTION[name]} {value} (now {getattr(config, name)})" for name, value in saved.to_dict().items()
              if getattr(config, name) != value]
    if differ:
        raise ConfigError(f"the interrupted run in {file_name(out)} was trained with {', '.join(differ)}; resume "
                          "it with the same model options, or use another --out")
    saved_ids = (meta.get("items") or {}).get("item_ids")
    if saved_ids != items.item_ids:
        raise ModelError(f"the interrupted run in {file_name(out)} was trained on another catalog "
                         f"({len(saved_ids or [])} items, this data set has {items.n_items} or other ids); resume "
                         "it with its own --data, or use another --out")


def warm_start(model: NextItemModel, old: NextItemModel) -> dict:
    """Copy every weight of `old` into `model`: equal shapes whole; item tables (ids, fields, tags, which a
    warm start only grows) old rows first; position weights aligned at the newest position (the newest
    rows when the new history is shorter). A ConfigError names old weights that fit nowhere. Returns how
    many of `model`'s weight tensors were taken from `old`."""
    new_state = model.state_dict()
    unused, taken = [], set()
    for key, value in old.state_dict().items():
        if key.startswith("items.") and (key.split(".")[-1] in ITEM_DATA or key.startswith("items.content_")):
            continue  # item data, not weights: the new catalog's
        target = new_state.get(key)
        if target is not None and target.shape == value.shape:
            target.copy_(value)
        elif target is not None and key in POSITIONAL and target.shape[1:] == value.shape[1:]:
            n = min(len(target), len(value))
            target[len(target) - n:].copy_(value[len(value) - n:])
        elif target is not None and key.startswith("items.") and target.dim() == 2 \
                and target.shape[1] == value.shape[1] and target.shape[0] >= value.shape[0]:
            target[: value.shape[0]].copy_(value)  # a grown table: old rows first
        else:
            unused.append(key)
            continue
        taken.add(key)
    if unused:
        raise ConfigError(f"weights of the --init checkpoint fit nowhere in the new model ({', '.join(unused[:3])}"
                          f"{', ...' if len(unused) > 3 else ''}); train with its model options, or without --init")
    model.load_state_dict(new_state)
    weights = [name for name, _ in model.named_parameters()]
    return {"weights_from_init": sum(name in taken for name in weights), "weights": len(weights)}


__all__ = ["TrainConfig", "TrainResult", "train_model", "training_windows"]
