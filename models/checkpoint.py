"""Checkpoints: a folder with `model.safetensors`, `config.json` and, for resuming, the training state.

No pickle anywhere: tensors go to safetensors, everything else to JSON.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from edgerec.errors import ModelError
from edgerec.models.config import ModelConfig
from edgerec.models.items import ItemData
from edgerec.runtime.checks import file_name

FORMAT = "edgerec-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    config: ModelConfig
    items: ItemData | None
    state: dict[str, torch.Tensor]
    info: dict = field(default_factory=dict)  # training figures: metrics, seconds, data, seed, ...
    path: Path | None = None


def _atomic_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_weights(path: Path, state: dict[str, torch.Tensor]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(tmp))
    os.replace(tmp, path)


def save_checkpoint(folder: str | Path, state: dict[str, torch.Tensor], config: ModelConfig,
                    items: ItemData | None, info: dict | None = None) -> Path:
    """Write weights (a state dict) and config; each file is replaced atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(folder / "model.safetensors", state)
    _atomic_json(folder / "config.json", {
        "format": FORMAT, "version": VERSION, "model": config.to_dict(),
        "items": items.to_meta() if items is not None else None, "info": info or {},
    })
    return folder


def load_checkpoint(folder: str | Path) -> Checkpoint:
    folder = Path(folder)
    config_path, weights = folder / "config.json", folder / "model.safetensors"
    if not config_path.exists() or not weights.exists():
        raise ModelError(f"{file_name(folder)} is not an edgerec checkpoint (needs config.json and model.safetensors); "
                         "create one with `edgerec train`")
    try:
        meta = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{file_name(folder)}/config.json is not JSON ({exc}); the checkpoint is damaged") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{file_name(folder)}/config.json is not an edgerec checkpoint config")
    if meta.get("version", 0) > VERSION:
        raise ModelError(f"checkpoint version {meta['version']} is newer than this edgerec ({VERSION}); upgrade")
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ModelError(f"{file_name(folder)}/{weights.name} cannot be read ({exc}); the checkpoint is damaged") from None
    config = ModelConfig.from_dict(meta["model"])
    items = None
    if meta.get("items"):
        im = meta["items"]
        prefix = "items."
        content = {name: state[f"{prefix}content_{name}"].numpy() for name in im.get("content", {})}
        items = ItemData(
            item_ids=im["item_ids"], vocab=im["vocab"],
            field_codes=state[f"{prefix}field_codes"].numpy(), tag_codes=state[f"{prefix}tag_codes"].numpy(),
            id_rows=state[f"{prefix}id_rows"].numpy(), n_id_rows=im["n_id_rows"], content=content,
        )
    return Checkpoint(config, items, state, meta.get("info", {}), folder)


def load_model(folder: str | Path):
    """Rebuild the trained model of a checkpoint (in eval mode) and return (model, checkpoint)."""
    from edgerec.models.recommenders import build_model

    ckpt = load_checkpoint(folder)
    if ckpt.items is None:
        raise ModelError(f"{file_name(folder)} holds a {ckpt.config.arch} model, not a next-item recommender")
    model = build_model(ckpt.config, ckpt.items)
    try:
        model.load_state_dict(ckpt.state)
    except RuntimeError as exc:
        raise ModelError(f"weights in {file_name(folder)} do not fit its config ({exc})") from None
    return model.eval(), ckpt


# ------------------------------------------------------------------ resuming


def save_train_state(folder: str | Path, optimizer: torch.optim.Optimizer, progress: dict) -> None:
    """Optimizer tensors to safetensors, everything else (epoch, best, RNG) to JSON."""
    folder = Path(folder)
    opt = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, values in opt["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{key}"] = value.contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    save_weights(folder / "optimizer.safetensors", tensors)
    rng = torch.get_rng_state().numpy().tolist()
    _atomic_json(folder / "train_state.json", {"param_groups": opt["param_groups"], "scalars": scalars,
                                               "progress": progress, "torch_rng": rng})


def load_train_state(folder: str | Path, optimizer: torch.optim.Optimizer) -> dict:
    folder = Path(folder)
    path = folder / "train_state.json"
    if not path.exists():
        raise ModelError(f"{folder} has no training state to resume from; train it with `edgerec train` first")
    meta = json.loads(path.read_text())
    tensors = load_file(str(folder / "optimizer.safetensors"))
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    for key, value in meta["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(torch.tensor(meta["torch_rng"], dtype=torch.uint8))
    return meta["progress"]
