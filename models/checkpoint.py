"""Checkpoints: a folder with `model.safetensors`, `config.json` and, for resuming, the training state.

No pickle anywhere: tensors go to safetensors, everything else to JSON. Every file is
written whole or not at all (runtime/atomic.py). The weights and the config carry one
save id, so weights whose config was not written yet (a save killed between the two
files) are refused instead of read with another model's config or catalog. What a run
resumes from is one file (`resume.safetensors`: latest and best weights, optimizer,
progress), so a kill never leaves it half of one epoch and half of the next.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from edgerec.errors import ConfigError, ModelError
from edgerec.models.config import CONTENT_NAME, ModelConfig
from edgerec.models.items import FIELDS, ItemData
from edgerec.runtime.atomic import Temporary, claim, in_use, write_file
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


RESUME_FILE = "resume.safetensors"


def path_from(folder: str | Path, target: str | Path) -> str:
    """`target` as written into `folder`'s files: relative to it, so no host path is kept and a run folder
    moved whole still finds its parts (read back with `with_path_in`)."""
    return os.path.relpath(Path(target).resolve(), Path(folder).resolve())


def with_path_in(folder: str | Path, info: dict, key: str) -> dict:
    """`info` with its `key`, a path `path_from` wrote into `folder`'s files (or an absolute one, as older
    files hold), resolved; info without such a text is returned as it is (its users refuse it by name)."""
    written = info.get(key)
    return dict(info, **{key: str((Path(folder) / written).resolve())}) if isinstance(written, str) else info


def _atomic_json(path: Path, payload: dict) -> None:
    write_file(path, json.dumps(payload, indent=2, default=_jsonable))


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_weights(path: Path, state: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    with Temporary(path, ".tmp") as tmp:
        save_file({k: v.detach().contiguous() for k, v in state.items()}, str(tmp.path), metadata=metadata)
        tmp.publish()


def save_checkpoint(folder: str | Path, state: dict[str, torch.Tensor], config: ModelConfig,
                    items: ItemData | None, info: dict | None = None) -> Path:
    """Write weights (a state dict), then the config; each file is replaced atomically, and both hold the
    same save id (load_checkpoint refuses a pair from two saves)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save = secrets.token_hex(8)
    save_weights(folder / "model.safetensors", state, {"save": save})
    _atomic_json(folder / "config.json", {
        "format": FORMAT, "version": VERSION, "save": save, "model": config.to_dict(),
        "items": items.to_meta() if items is not None else None, "info": info or {},
    })
    return folder


def weights_save_id(path: Path) -> str | None:
    """The save id in a weights file's metadata (None: a file saved before ids, or none given)."""
    with safe_open(str(path), "pt") as handle:
        return (handle.metadata() or {}).get("save")


def _damaged(folder: Path, detail: str) -> ModelError:
    return ModelError(f"config.json in {file_name(folder)} is damaged ({detail}); re-train the model or restore "
                      "the file")


def _items_problem(im) -> str | None:
    """What is wrong with a config's `items` section (None: nothing)."""
    if not isinstance(im, dict):
        return "'items' is not an object"
    ids, vocab, content = im.get("item_ids"), im.get("vocab"), im.get("content", {})
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return "'items.item_ids' is missing or not a list of ids"
    if not isinstance(vocab, dict) or not all(
            isinstance(vocab.get(f), list) and all(isinstance(v, str) for v in vocab[f]) for f in (*FIELDS, "tags")):
        return f"'items.vocab' is missing or lacks a list of values for one of {', '.join((*FIELDS, 'tags'))}"
    if not isinstance(im.get("n_id_rows"), int) or isinstance(im["n_id_rows"], bool) or im["n_id_rows"] < 1:
        return "'items.n_id_rows' is missing or not a whole number"
    if not isinstance(content, dict) or not all(isinstance(n, str) and CONTENT_NAME.fullmatch(n) for n in content):
        return "'items.content' is not an object of modality names"
    return None


def read_config(folder: str | Path) -> tuple[ModelConfig, dict]:
    """(model config, the whole checked config.json) of a checkpoint folder, without reading its weights; a
    ModelError naming what is wrong when the file is missing or damaged."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{file_name(folder)} is not an edgerec checkpoint (needs config.json and model.safetensors); "
                         "create one with `edgerec train`")
    try:
        meta = json.loads(config_path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise _damaged(folder, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _damaged(folder, f"not JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise _damaged(folder, f"a JSON {type(meta).__name__}, not an object")
    if meta.get("format") != FORMAT:
        raise ModelError(f"{file_name(folder)}/config.json is not an edgerec checkpoint config")
    version = meta.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise _damaged(folder, f"version {version!r} is not a whole number")
    if version > VERSION:
        raise ModelError(f"checkpoint version {version} is newer than this edgerec ({VERSION}); upgrade")
    if not isinstance(meta.get("model"), dict):
        raise _damaged(folder, "'model' is missing or not an object")
    if not isinstance(meta.get("info", {}), dict):
        raise _damaged(folder, "'info' is not an object")
    if meta.get("items") and (problem := _items_problem(meta["items"])):
        raise _damaged(folder, problem)
    try:
        config = ModelConfig.from_dict(meta["model"])
    except ConfigError as exc:
        raise _damaged(folder, f"model: {exc}") from None
    return config, meta


def load_checkpoint(folder: str | Path) -> Checkpoint:
    folder = Path(folder)
    weights = folder / "model.safetensors"
    if not weights.exists():
        raise ModelError(f"{file_name(folder)} is not an edgerec checkpoint (needs config.json and model.safetensors); "
                         "create one with `edgerec train`")
    config, meta = read_config(folder)
    try:
        state, save = load_file(str(weights)), weights_save_id(weights)
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ModelError(f"{file_name(folder)}/{weights.name} cannot be read ({exc}); the checkpoint is damaged") from None
    if meta.get("save") is not None and save != meta["save"]:  # weights written, then killed before the config
        raise ModelError(f"{file_name(folder)}: model.safetensors and config.json come from two different saves (a "
                         "save into this folder was interrupted); train into it again, or resume the run with --resume")
    items = None
    if meta.get("items"):
        im = meta["items"]
        names = ["field_codes", "tag_codes", "id_rows", *(f"content_{name}" for name in im.get("content", {}))]
        missing = [name for name in names if f"items.{name}" not in state]
        if missing:
            raise ModelError(f"{file_name(folder)}/{weights.name} lacks the item data {', '.join(missing)}; the "
                             "checkpoint is damaged: re-train the model or restore the file")
        content = {name: state[f"items.content_{name}"].numpy() for name in im.get("content", {})}
        items = ItemData(
            item_ids=im["item_ids"], vocab=im["vocab"],
            field_codes=state["items.field_codes"].numpy(), tag_codes=state["items.tag_codes"].numpy(),
            id_rows=state["items.id_rows"].numpy(), n_id_rows=im["n_id_rows"], content=content,
        )
        if len(items.id_rows) != items.n_items + 1 or (len(items.id_rows) and items.id_rows.max() >= items.n_id_rows):
            raise _damaged(folder, "its item list or id-table size does not match the weights' item rows")
    return Checkpoint(config, items, state, meta.get("info", {}), folder)


def unfinished(info: dict) -> bool:
    """Whether a checkpoint's `info` marks the best-so-far save of a training run that never finished (killed, or
    still running); checkpoints of older versions carry no such mark and count as finished."""
    return info.get("in_progress") is True


TRAIN, DISTILL = "train", "distill"  # the run kinds an unfinished checkpoint's info names ("run")


def run_kind(info: dict) -> str | None:
    """Which command's run wrote a checkpoint: "distill" (a student: its loss needs the teacher), "train", or
    None when its info does not say (an unfinished save of an older version)."""
    if info.get("run") in (TRAIN, DISTILL):
        return info["run"]
    if "distillation" in info:  # a finished student's info records the distillation settings
        return DISTILL
    return None if unfinished(info) else TRAIN


AGAIN = "run that `edgerec distill` again with the same options (distill has no --resume; it starts anew)"


def refuse_unfinished(folder: str | Path, option: str, flag: str | None = None, info: dict | None = None) -> None:
    """A ConfigError when the checkpoint in `folder` (given as `option`) is an unfinished run's; `flag` names the
    option that takes it anyway, where the command has one; `info`: its info when already read. The advice
    fits the run: a run still going is waited for, a killed train is resumed, a killed distill run again."""
    if info is None:
        info = read_config(folder)[1].get("info", {})
    if not unfinished(info):
        return
    name = file_name(folder)
    best = info.get("best_epoch")
    so_far = f"its best epoch so far ({best})" if isinstance(best, int) and best > 0 else "its best epoch so far"
    instead = f", or pass {flag} to use {so_far}" if flag else f", then give it as {option} again"
    if in_use(Path(folder)):  # the lock of a run writing into it is held: not killed, still going
        raise ConfigError(f"{option} {name}: the training run writing it is still going; wait for it to finish"
                          f"{instead}")
    kind = run_kind(info)
    resume = (f"resume it with `edgerec train --resume --data DATA --out FOLDER`, FOLDER being the folder you gave "
              f"as {option}")
    if kind == DISTILL:
        raise ConfigError(f"{option} {name}: the `edgerec distill` run that wrote it did not finish (killed?): "
                          f"{AGAIN}, its --out the folder you gave as {option}{instead}")
    if kind == TRAIN:
        raise ConfigError(f"{option} {name}: the training run that wrote it did not finish (killed?): "
                          f"{resume}{instead}")
    raise ConfigError(f"{option} {name}: the training run that wrote it did not finish (killed?): {resume} (a "
                      f"student of `edgerec distill`: {AGAIN}){instead}")


def refuse_resume_by(folder: str | Path, kind: str, info: dict | None = None) -> None:
    """A ConfigError when a resume by the command `kind` (train) would continue the run in `folder` that another command
    started: a distill student resumed by train would finish without the teacher's loss and count as finished."""
    if info is None:
        if not (Path(folder) / "config.json").is_file():
            return  # killed before its first checkpoint: the resume file says (train_model checks it)
        info = read_config(folder)[1].get("info", {})
    started = run_kind(info)
    if started == DISTILL and kind != DISTILL:
        raise ConfigError(f"--out {file_name(folder)} holds a student of `edgerec distill`: `edgerec train --resume` "
                          f"would finish it without the teacher's loss; {AGAIN}, or train into another --out")


def claim_out(out: str | Path):
    """Hold the checkpoint folder `out` for this run (released when the returned claim is let go or the process
    ends); a ConfigError while another run writes there: two runs saving into one folder at every epoch leave
    one model silently lost, or weights and config of two runs."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        held = claim(out)
    except OSError as exc:  # a file in the way, no permission
        raise ConfigError(f"cannot write the checkpoint folder --out {file_name(out)} ({exc.strerror or exc}); "
                          "choose another --out") from None
    if held is None:
        raise ConfigError(f"another edgerec train or distill is writing into --out {file_name(out)} right now; wait "
                          "for it to finish, or choose another --out")
    return held


def require_same_catalog(model, dataset, name: str) -> None:
    """A ModelError unless `model` was trained on `dataset`'s catalog, item for item in order: its item codes
    would name other items, and every metric would be silently wrong (or an index error)."""
    if list(model.item_data.item_ids) != list(dataset.catalog.item_ids):
        raise ModelError(f"{name} was trained on another catalog than this data set; use it with its own data "
                         "(or warm-start a model on this one with `edgerec train --init`)")


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


def save_train_state(folder: str | Path, model_state: dict, best_state: dict | None, optimizer: torch.optim.Optimizer,
                     progress: dict) -> None:
    """What a run resumes from, as one file (written whole or not at all): the latest weights, the best ones,
    the optimizer's tensors, and (as JSON in the file's metadata) its other state, the progress and the RNG."""
    opt = optimizer.state_dict()
    tensors = {f"model/{k}": v for k, v in model_state.items()}
    tensors.update({f"best/{k}": v for k, v in (best_state or {}).items()})
    scalars = {}
    for pid, values in opt["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer/{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    tensors["rng/torch"] = torch.get_rng_state()
    state = {"param_groups": opt["param_groups"], "scalars": scalars, "progress": progress}
    save_weights(Path(folder) / RESUME_FILE, tensors, {"train_state": json.dumps(state, default=_jsonable)})


def load_train_state(folder: str | Path, optimizer: torch.optim.Optimizer) -> tuple[dict, dict, dict | None]:
    """(latest weights, progress, best weights or None) of the run saved in `folder`; the optimizer and
    torch's RNG are set as they were."""
    path = Path(folder) / RESUME_FILE
    if not path.is_file():
        raise ModelError(f"{file_name(folder)} holds no interrupted run to resume ({RESUME_FILE} missing); train "
                         "without --resume, or give the --out of the interrupted run")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), "pt") as handle:
            meta = json.loads((handle.metadata() or {})["train_state"])
    except Exception as exc:  # safetensors' own error types, a missing or broken state
        raise ModelError(f"{file_name(folder)}/{RESUME_FILE} cannot be read ({type(exc).__name__}); the run cannot "
                         "be resumed: train again without --resume") from None
    parts: dict[str, dict] = {"model": {}, "best": {}, "optimizer": {}, "rng": {}}
    for key, value in tensors.items():
        part, name = key.split("/", 1)
        parts[part][name] = value
    state: dict[int, dict] = {}
    for key, value in [*parts["optimizer"].items(), *meta["scalars"].items()]:
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(parts["rng"]["torch"])
    return parts["model"], meta["progress"], parts["best"] or None
