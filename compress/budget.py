"""Students sized to a byte budget: estimate the int8 bundle of a config, pick the fitting ones, keep the best.

The shipped bytes are the int8 user encoder (weight-only int8: one int8 per
weight, a float scale and a zero point per channel, float vectors such as
biases and norms) plus the int8 item table (dim bytes per item and one float
scale per dimension, in two .npy files with their headers). The encoder carries the item input table baked in, one
row per catalog item whatever `own_rows` and `hash_buckets` say (those save
training parameters, not shipped bytes). The estimate counts the deployed
module's tensors that way, with a margin for the graph, so it bounds the real
file; `edgerec.export.size_check.verify_bytes` exports the chosen student to check. A config whose
estimate is over the budget by no more than that margin may still fit: given a `measure` (the CLI
passes verify_bytes), its fresh-weights model, jittered so that no two tensors are equal (the exporter
stores equal constants once: fresh zero biases made a file 666 bytes smaller than the trained one), is
exported and its real bytes decide. When no config fits, the smallest is measured as well (it may
fit for real), and the error names its bytes: the least budget that fits a student.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from edgerec.compress.distill import DistillConfig, distill_model
from edgerec.data.schema import Dataset
from edgerec.data.split import Split
from edgerec.errors import ConfigError
from edgerec.models.checkpoint import save_checkpoint
from edgerec.models.config import ModelConfig
from edgerec.models.evaluation import Evaluator
from edgerec.models.items import build_item_data
from edgerec.models.recommenders import NextItemModel, build_model
from edgerec.models.scoring import ModelScorer
from edgerec.models.train import TrainConfig, item_counts

# The graph itself (operator nodes, names, shapes), measured on exported encoders of 8-64 wide, 1-2 layers,
# histories of 8-200 once every graph's metadata and doc strings are stripped (about 4.7 KB plus 3.3 KB a layer;
# 6.8 KB plus 6.7 KB a layer while the exporter's graph signature stayed), with some margin: a base and a share
# per layer.
GRAPH_BYTES = 6 * 1024
LAYER_GRAPH_BYTES = 4 * 1024
TENSOR_BYTES = 96  # per stored tensor: name, shape and type
NPY_HEADER_BYTES = 128  # the header np.save writes before a 1-D or 2-D array (padded to 64 bytes, then 128)
WIDTHS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256)
LAYERS = (1, 2)


def estimate_bytes(model: NextItemModel) -> dict:
    """Upper estimate of the int8 encoder file and the int8 item table of `model`, in bytes."""
    cfg = model.config
    encoder = GRAPH_BYTES + LAYER_GRAPH_BYTES * cfg.layers + 4 * cfg.max_len ** 2
    for name, tensor in model.deploy().state_dict().items():
        if not torch.is_floating_point(tensor):
            continue
        # positions are added, not multiplied: float (told by name: a dim x dim weight or an item table can have
        # max_len rows too, and those are int8)
        if tensor.dim() >= 2 and name.rpartition(".")[2] != "position":
            encoder += tensor.numel() + 5 * max(tensor.shape) + TENSOR_BYTES  # int8 + scale/zero per channel
        else:
            encoder += 4 * tensor.numel() + TENSOR_BYTES
    n_items, dim = model.item_data.n_items, cfg.dim
    table = n_items * dim + 4 * dim + 2 * NPY_HEADER_BYTES  # int8 rows, float scales: two .npy files
    return {"encoder": int(encoder), "table": int(table), "total": int(encoder + table)}


def fresh_model(config: ModelConfig, dataset: Dataset, split: Split) -> NextItemModel:
    """A model of `config` with fresh weights (what the estimate and the measurement read)."""
    items = build_item_data(dataset.catalog, item_counts(split), own_rows=config.own_rows,
                            hash_buckets=config.hash_buckets)
    return build_model(config, items).eval()


def estimate_config(config: ModelConfig, dataset: Dataset, split: Split) -> dict:
    """The estimate for a config without training it (the model is built with fresh weights)."""
    return estimate_bytes(fresh_model(config, dataset, split))


def jittered(model: NextItemModel) -> NextItemModel:
    """`model` with every float parameter moved by a little noise: no two tensors equal, as after training."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if torch.is_floating_point(parameter):
                parameter.add_(1e-3 * torch.randn(parameter.shape, generator=generator))
    return model


def graph_margin(config: ModelConfig) -> int:
    """The part of an estimate that is a margin for the graph rather than counted tensors: the base, a share per
    layer and the 4 L^2 bytes of masks. Configs whose estimate passes the budget by no more than this are
    measured: at L = 200 the masks alone were 160 KB of the estimate, the exported SASRec held 80 KB of them and
    a two-tower none, and students that fit were dropped unmeasured."""
    return GRAPH_BYTES + LAYER_GRAPH_BYTES * config.layers + 4 * config.max_len ** 2


def candidate(base: ModelConfig, dim: int, n_layers: int) -> ModelConfig:
    """`base` at width `dim` with `n_layers` layers, its heads a divisor of the width."""
    return replace(base, dim=dim, layers=n_layers, heads=math.gcd(dim, base.heads) or 1)


def fitting_configs(base: ModelConfig, dataset: Dataset, split: Split, max_bytes: int,
                    widths=WIDTHS, layers=LAYERS, keep: int = 3,
                    measure: Callable[[NextItemModel], dict] | None = None) -> list[tuple[ModelConfig, dict]]:
    """The `keep` largest configs (width x layers) that fit, largest first: by their estimate, or, with
    `measure`, by their exported bytes, measured for every config whose estimate is within its margin of the
    budget or under it (ranking estimates beside exported bytes kept a student of 39 KB over one of 52 KB that
    fit 60 KB: the estimates overshoot by a graph margin). When none fits, the smallest is measured too (it
    may fit for real): its bytes are the floor the error names."""
    layers = layers if base.arch == "sasrec" else (min(layers),)  # a two-tower has no layers: one of each width
    fits, smallest = [], (min(widths), min(layers))
    floor = None  # the smallest config and its bytes, measured when they were
    for dim in widths:
        for n_layers in layers:
            cfg = candidate(base, dim, n_layers)
            model = fresh_model(cfg, dataset, split)
            estimate = estimate_bytes(model)
            if measure is not None and estimate["total"] <= max_bytes + graph_margin(cfg):
                estimate = {**measure(jittered(model)), "measured": True}
            if estimate["total"] <= max_bytes:
                fits.append((cfg, estimate))
            if (dim, n_layers) == smallest:
                floor = (cfg, model, estimate)
    if not fits:
        cfg, model, estimate = floor
        if measure is not None and not estimate.get("measured"):
            estimate = {**measure(jittered(model)), "measured": True}
            if estimate["total"] <= max_bytes:
                return [(cfg, estimate)]
        raise ConfigError(floor_message(cfg, dataset, max_bytes, estimate))
    fits.sort(key=lambda pair: -pair[1]["total"])
    return fits[:keep]


def floor_message(smallest: ModelConfig, dataset: Dataset, max_bytes: int, size: dict) -> str:
    """Why no student fits: the smallest one's bytes, split into what every item costs and what the graph does."""
    dim, n_layers, n_items = smallest.dim, smallest.layers, dataset.n_items
    per_item = 2 * dim + 5  # an int8 input row with its scale and zero point, and an int8 table row
    layer = "layer" if n_layers == 1 else "layers"
    needs = f"exports to {size['total']:,}" if size.get("measured") else f"needs about {size['total']:,}"
    return (f"no student fits {max_bytes:,} bytes: the smallest (dim {dim}, {n_layers} {layer}) {needs}, of which "
            f"{per_item * n_items:,} are {per_item} bytes for each of the {n_items:,} items (the encoder's input "
            f"row and the item table's row; --own-rows and --hash-buckets do not shrink them) and the rest the "
            f"graph and its {layer}; that is the floor for this catalog: raise --max-bytes to at least "
            f"{size['total']:,}")


@dataclass
class BudgetResult:
    config: ModelConfig
    estimate: dict
    curve: list[dict]  # one row per candidate: width, layers, estimated bytes, validation NDCG@10
    model: NextItemModel
    info: dict


def distill_to_budget(dataset: Dataset, split: Split, teacher: NextItemModel, base: ModelConfig,
                      train: TrainConfig, kd: DistillConfig, max_bytes: int, *, out: str | Path | None = None,
                      keep: int = 3, progress: Callable[[str], None] | None = None,
                      measure: Callable[[NextItemModel], dict] | None = None) -> BudgetResult:
    """Distill each fitting candidate, keep the one with the best validation NDCG@10, save it at `out`
    (`measure`: see fitting_configs)."""
    say = progress or (lambda _m: None)
    if keep < 1:
        raise ConfigError(f"--candidates must be at least 1 student to train (got {keep})")
    # no wider and no deeper than a trained teacher (a budget above it made a "student" 41 times its size);
    # a user's own teacher states no width
    shape = getattr(teacher, "config", None)
    t_dim, t_layers = getattr(shape, "dim", None), getattr(shape, "layers", None)
    widths = [w for w in WIDTHS if t_dim is None or w <= t_dim] or [min(WIDTHS)]
    layers = [n for n in LAYERS if t_layers is None or n <= t_layers] or [min(LAYERS)]
    if t_dim is not None and (max(widths), max(layers)) != (max(WIDTHS), max(LAYERS)):
        say(f"students are at most the teacher's width ({t_dim}) and layers ({t_layers})")
    candidates = fitting_configs(base, dataset, split, max_bytes, widths=widths, layers=layers, keep=keep,
                                 measure=measure)
    evaluator = Evaluator(split, dataset.catalog, k=10)
    each = None if train.max_minutes is None else train.max_minutes / len(candidates)
    curve, best = [], None
    for cfg, estimate in candidates:
        size = "exported" if estimate.get("measured") else "about"
        say(f"student dim {cfg.dim}, {cfg.layers} layer(s): {size} {estimate['total']:,} bytes")
        result = distill_model(dataset, split, teacher, cfg, replace(train, max_minutes=each), kd)
        ndcg = evaluator.evaluate(ModelScorer(result.model), "val")["NDCG@10"]
        curve.append({"dim": cfg.dim, "layers": cfg.layers, "estimated_bytes": estimate["total"],
                      "bytes_from": "export" if estimate.get("measured") else "estimate", "val_NDCG@10": ndcg,
                      "stopped_by": result.info["stopped_by"]})
        if best is None or ndcg > best[0]:
            best = (ndcg, cfg, estimate, result)
    _, cfg, estimate, result = best
    info = {**result.info, "max_bytes": int(max_bytes), "estimated_bytes": estimate, "size_curve": curve}
    if out is not None:
        save_checkpoint(out, result.model.state_dict(), cfg, result.items, info)
    return BudgetResult(cfg, estimate, curve, result.model, info)


__all__ = ["BudgetResult", "candidate", "distill_to_budget", "estimate_bytes", "fitting_configs", "floor_message",
           "fresh_model", "graph_margin", "jittered"]
