"""Loading any trained model folder by what it holds: a next-item recommender or a ranker."""

from __future__ import annotations

from pathlib import Path

from edgerec.errors import ModelError
from edgerec.models.checkpoint import (
    load_checkpoint,
    load_model,
    path_from,
    require_same_catalog,
    save_checkpoint,
    with_path_in,
)
from edgerec.models.config import ModelConfig
from edgerec.models.ranker import Ranker
from edgerec.runtime.checks import file_name


def save_ranker(folder: str | Path, ranker: Ranker, retrieval: str | Path, info: dict) -> Path:
    config = ModelConfig(arch="ranker", dim=ranker.deep[0].out_features, layers=len(ranker.cross), heads=1)
    info = dict(info, retrieval=path_from(folder, retrieval), n_features=int(ranker.mean.shape[0]))
    return save_checkpoint(folder, ranker.state_dict(), config, None, info)


def load_ranker(folder: str | Path) -> tuple[Ranker, dict]:
    ckpt = load_checkpoint(folder)
    if ckpt.config.arch != "ranker":
        raise ModelError(f"{file_name(folder)} holds a {ckpt.config.arch} model, not a ranker")
    ranker = Ranker(int(ckpt.info["n_features"]), ckpt.config.dim, ckpt.config.layers)
    ranker.load_state_dict(ckpt.state, strict=False)  # a ranker saved before the clamp keeps none
    missing = set(ranker.state_dict()) - set(ckpt.state) - {"low", "high"}
    if missing:
        raise ModelError(f"{file_name(folder)} is a ranker without {', '.join(sorted(missing))}: retrain it with "
                         "`edgerec train --arch ranker`")
    return ranker.eval(), with_path_in(folder, ckpt.info, "retrieval")


def checkpoint_arch(folder: str | Path) -> str:
    return load_checkpoint(folder).config.arch


def model_bytes(folder: str | Path) -> int:
    return int((Path(folder) / "model.safetensors").stat().st_size)


__all__ = ["checkpoint_arch", "load_model", "load_ranker", "model_bytes", "save_ranker"]


def scorer_for(spec: str, dataset, split, phase: str = "test"):
    """A baseline name or a checkpoint folder -> (scorer, facts about the model for the report)."""
    from edgerec.models.baselines import BASELINES, make_baseline

    if spec in BASELINES:
        return make_baseline(spec, dataset, split), {}
    path = Path(spec)
    if not path.is_dir():
        raise ModelError(f"--model {spec!r} is neither a baseline ({', '.join(BASELINES)}) nor a checkpoint folder")
    from edgerec.models.evaluation import train_popularity
    from edgerec.models.ranker import RerankScorer, item_table
    from edgerec.models.scoring import ModelScorer

    if checkpoint_arch(path) == "ranker":
        ranker, info = load_ranker(path)
        model, _ = load_model(info["retrieval"])
        require_same_catalog(model, dataset, f"{path.name}'s retrieval model")
        table = item_table(dataset.catalog, train_popularity(split))
        scorer = RerankScorer(ModelScorer(model), ranker, table, dataset, split, phase, name=path.name)
        params = sum(p.numel() for p in ranker.parameters())
        return scorer, {"parameters": int(params), "bytes": model_bytes(path)}
    model, ckpt = load_model(path)
    require_same_catalog(model, dataset, path.name)
    params = sum(p.numel() for p in model.parameters())
    return ModelScorer(model, path.name), {"parameters": int(params), "bytes": model_bytes(path),
                                           "train_seconds": ckpt.info.get("train_seconds")}
