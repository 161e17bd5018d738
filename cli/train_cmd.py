"""`edgerec train` and `edgerec distill`: host-side training of teachers, students and rankers."""

from __future__ import annotations

import os
from pathlib import Path

import click
from click.core import ParameterSource

from edgerec.cli.output import SEED, FiniteRange, console, example, key_values, refuse_out, table
from edgerec.runtime.checks import file_name

# The options shared by train and distill, declared once.
MODEL_OPTIONS = [
    click.option("--dim", default=64, show_default=True, help="Embedding/hidden width."),
    click.option("--layers", default=2, show_default=True, help="Attention blocks (sasrec)."),
    click.option("--heads", default=2, show_default=True),
    click.option("--max-len", default=50, show_default=True, help="History length the model reads."),
    click.option("--dropout", default=0.2, show_default=True),
    click.option("--own-rows", type=int, help="Only the N most consumed items get an own id row ..."),
    click.option("--hash-buckets", default=0, show_default=True, help="... the rest share this many rows."),
    click.option("--no-features", is_flag=True, help="Ids only: no genre/creator/series/tag embeddings."),
    click.option("--content", "content_specs", multiple=True, metavar="NAME=FILE.npy",
                 help="Per-modality item vectors fused into the item tower (rows in items.csv order), "
                      "e.g. --content text=text.npy --content audio=audio.npy."),
    click.option("--epochs", type=click.IntRange(min=1), help="Hard cap on epochs (default: the step budget decides)."),
    click.option("--steps", type=int, help="Target optimizer steps (default: from the data size, at least 3000, at most 400 epochs)."),
    click.option("--batch-size", default=128, show_default=True),
    click.option("--lr", default=2e-3, show_default=True),
    click.option("--loss", type=click.Choice(["full", "sampled"]), default="sampled", show_default=True),
    click.option("--negatives", default=1024, show_default=True, help="Sampled-softmax negatives per batch."),
    click.option("--patience", type=int,
                 help="Evaluations without improvement before stopping (default: 5-15, growing with the run)."),
    click.option("--eval-users", default=2000, show_default=True, help="Validation users scored per epoch."),
    click.option("--max-minutes", type=float, help="Stop after this long, keeping the best epoch."),
    click.option("--seed", default=0, show_default=True, type=SEED),
]


def model_options(f):
    for option in reversed(MODEL_OPTIONS):
        f = option(f)
    return f


# model config field -> the option that sets it (train's --arch aside)
CONFIG_OPTIONS = {"dim": "dim", "layers": "layers", "heads": "heads", "max_len": "max_len", "dropout": "dropout",
                  "own_rows": "own_rows", "hash_buckets": "hash_buckets", "use_features": "no_features"}
# what --arch ranker reads of the model options; the others would be ignored without a word
RANKER_OPTIONS = {"epochs", "seed"}


def _given(name: str) -> bool:
    """Whether the user set option `name` (on the command line or in the environment), not its default."""
    source = click.get_current_context().get_parameter_source(name)
    return source is not None and source not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def _configs(arch, o, content: dict, base=None):
    """The model and training configs of the options; with `base` (the config of the --init checkpoint or
    of the run --resume continues) every model option left out is taken from it."""
    from edgerec.models.config import ModelConfig
    from edgerec.models.train import TrainConfig

    values = dict(arch=arch, dim=o["dim"], layers=o["layers"], heads=o["heads"], max_len=o["max_len"],
                  dropout=o["dropout"], own_rows=o["own_rows"], hash_buckets=o["hash_buckets"],
                  use_features=not o["no_features"], content={name: int(v.shape[1]) for name, v in content.items()})
    if base is not None:
        taken = {field: getattr(base, field) for field, name in [("arch", "arch"), *CONFIG_OPTIONS.items()]
                 if not _given(name)}
        values.update(taken, temperature=base.temperature)
    model = ModelConfig(**values)
    train = TrainConfig(epochs=o["epochs"], steps=o["steps"], batch_size=o["batch_size"], lr=o["lr"], loss=o["loss"],
                        negatives=o["negatives"], patience=o["patience"], eval_users=o["eval_users"],
                        seed=o["seed"], max_minutes=o["max_minutes"])
    return model, train


def _content(specs) -> dict:
    """NAME=FILE.npy options -> {name: (items, width) float32 array}."""
    from edgerec.data.tables import read_vectors
    from edgerec.errors import ConfigError
    from edgerec.models.config import check_content_name

    out = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        if not name or not path:
            raise ConfigError(f"--content takes NAME=FILE.npy, not {spec!r}")
        check_content_name(name)
        if name in out:
            raise ConfigError(f"--content {name} is given twice; give each modality once")
        out[name] = read_vectors(path, f"--content {name}")
    return out


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


class TrainProgress:
    """Prints one line per epoch (and per phase of a long precomputation), and a heartbeat line during long
    stretches between them, from process 0 only."""

    def __init__(self, every: float = 60.0) -> None:
        from edgerec.models.train import Heartbeat

        self.heartbeat = Heartbeat(lambda message: console.print(f"  {message}"), every)
        self.planned: int | None = None  # the epochs the schedule planned at the last epoch line

    def __call__(self, kind: str, done: int, total: int, record: dict) -> None:
        from edgerec.models.train import schedule_note

        if _rank() != 0:
            return
        self.heartbeat(kind, done, total, record)
        if kind == "epoch":
            if note := schedule_note(record, self.planned):
                console.print(f"  {note}", style="dim")
            self.planned = record.get("epochs_planned")
            console.print(f"  epoch {record['epoch']:>3}  loss {record['loss']:.4f}  "
                          f"val NDCG@10 {record['val_NDCG@10']:.4f}  ({record['seconds']:.0f}s)")
        elif kind == "teacher" and done == total:
            console.print(f"  teacher scored {total:,} training windows")


def _load(data_dir):
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset

    with console.status(f"reading {data_dir}"):
        dataset = load_dataset(data_dir)
        return dataset, leave_last_out(dataset)


def _summary(info: dict, out) -> None:
    if _rank() == 0:
        key_values({k: info[k] for k in ("parameters", "best_epoch", "val_NDCG@10", "val_NDCG@10_popular",
                                         "epochs_run", "stopped_by", "train_seconds") if k in info}
                   | {"checkpoint": str(out)}, title="training")
        _warnings(info)


def _warnings(info: dict) -> None:
    for key in ("advice", "warning"):  # the advice only while still improving (it says to train on)
        if info.get(key) and (key != "advice" or info.get("still_improving")):
            console.print(info[key], style="yellow")


@click.command("train", epilog=example(
    "edgerec train --data data/world --dim 256 --layers 2 --max-minutes 30 --out ckpt/teacher",
    "edgerec train --data data/world --arch ranker --retrieval ckpt/student --out ckpt/ranker"))
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--arch", type=click.Choice(["sasrec", "two-tower", "ranker"]), default="sasrec", show_default=True)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Checkpoint folder to write.")
@click.option("--resume", is_flag=True, help="Continue the interrupted run saved at --out.")
@click.option("--init", "init_ckpt", type=click.Path(exists=True, file_okay=False),
              help="Warm start: begin from this checkpoint (new items and users are added).")
@click.option("--retrieval", type=click.Path(exists=True, file_okay=False),
              help="For --arch ranker: the retrieval checkpoint whose vectors the ranker reads.")
@model_options
def train(data_dir, arch, out, resume, init_ckpt, retrieval, **options) -> None:
    """Train a recommender (sasrec, two-tower) or a ranker on a data folder.

    For several processes: torchrun --nproc_per_node 2 -m edgerec.cli.main train ...
    """
    _refuse_unused(arch, options)
    refuse_out(out, "edgerec-checkpoint", data=data_dir, retrieval=retrieval, init=init_ckpt)
    content = _content(options["content_specs"])  # before the data: a bad --content fails at once
    _refuse_inputs(arch, out, resume, init_ckpt, retrieval)
    held = _claim(out)  # for the whole run: it saves into --out at every epoch
    try:
        _train(data_dir, arch, out, resume, init_ckpt, retrieval, content, options)
    finally:
        held.release()


def _refuse_inputs(arch, out, resume, init_ckpt, retrieval) -> None:
    """Refusals of the checkpoints train reads, before --out is claimed (made): a refused run leaves no folder
    holding only its lock."""
    from edgerec.errors import ConfigError
    from edgerec.models.checkpoint import TRAIN, refuse_resume_by, refuse_unfinished

    if arch == "ranker":
        if not retrieval:
            raise ConfigError("--arch ranker needs --retrieval CKPT: the recommender whose short list it re-ranks")
        refuse_unfinished(retrieval, "--retrieval")  # its short lists would be a killed run's
        return
    if init_ckpt:
        refuse_unfinished(init_ckpt, "--init")  # a killed run's best epoch so far
    if resume:
        refuse_resume_by(out, TRAIN)  # a distill student: finished without its teacher's loss


def _claim(out):
    """Hold --out for this run (process 0 of several writes it; the others hold nothing)."""
    from edgerec.models.checkpoint import claim_out

    return claim_out(out) if _rank() == 0 else _Unclaimed()


class _Unclaimed:
    def release(self) -> None:
        pass


def _train(data_dir, arch, out, resume, init_ckpt, retrieval, content, options) -> None:
    dataset, split = _load(data_dir)
    if arch == "ranker":
        _train_ranker(dataset, split, retrieval, out, options)
        return
    from edgerec.models.checkpoint import load_model, path_from, read_config
    from edgerec.models.train import train_model

    init = load_model(init_ckpt)[0] if init_ckpt else None
    # model options left out continue the run being resumed, or else the --init checkpoint
    base, source = (read_config(out)[0], "the run resumed") if resume and (Path(out) / "config.json").is_file() \
        else (init.config, "--init") if init is not None else (None, "")
    model_cfg, train_cfg = _configs(arch, options, content, base)
    if base is not None and _rank() == 0:
        console.print(f"model: {model_cfg.arch}, dim {model_cfg.dim}, {model_cfg.layers} layers, "
                      f"{model_cfg.heads} heads, max-len {model_cfg.max_len} (options left out: as in {source})", style="dim")
    result = train_model(dataset, split, model_cfg, train_cfg, out=out, init=init, resume=resume,
                         progress=TrainProgress(), content=content or None,
                         info_extra={"data": path_from(out, data_dir),
                                     "init": init_ckpt and path_from(out, init_ckpt)})
    _summary(result.info, out)


def _refuse_unused(arch: str, options: dict) -> None:
    """A UsageError for options this --arch would ignore."""
    if arch == "ranker":
        unused = [name for name in ("resume", "init_ckpt", *options) if name not in RANKER_OPTIONS and _given(name)]
        if unused:
            flags = ", ".join("--init" if n == "init_ckpt" else "--content" if n == "content_specs"
                              else "--" + n.replace("_", "-") for n in unused)
            raise click.UsageError(f"--arch ranker does not use {flags} (it reads --retrieval, --epochs and --seed); "
                                   "leave them out")
    elif _given("retrieval"):
        raise click.UsageError(f"--retrieval is for --arch ranker; --arch {arch} does not use it")


def _train_ranker(dataset, split, retrieval, out, options) -> None:
    from edgerec.models.ranker import RankerConfig
    from edgerec.models.ranker_recipe import fit_ranker

    cfg = RankerConfig(epochs=min(options["epochs"] or 8, 8), seed=options["seed"])
    info = fit_ranker(dataset, split, retrieval, out, cfg, progress=lambda m: console.print(f"  {m}"))
    table(info["history"], title=f"ranker on {info['groups']:,} candidate groups and {info['skips']:,} skips "
                                 f"(retrieval order: group MRR {info['val_group_mrr_retrieval_order']:.4f})")
    key_values(info["validation"], title="validation: does re-ranking help?")
    console.print(f"checkpoint: {out}" + ("" if info["ships"] else " (it does not help on validation)"))


@click.command("distill", epilog=example(
    "edgerec distill --teacher ckpt/teacher --data data/world --dim 32 --layers 2 --heads 1 --out ckpt/student",
    "edgerec distill --teacher ckpt/teacher --data data/world --max-bytes 2000000 --out ckpt/student"))
@click.option("--teacher", required=True,
              help="An edgerec checkpoint folder, or your own user encoder: an ONNX file or 'module:factory' "
                   "returning a PyTorch module (with --teacher-spec and --teacher-vectors).")
@click.option("--teacher-spec", type=click.Path(exists=True, dir_okay=False),
              help="With your own teacher: its spec JSON, as for `edgerec export --spec`.")
@click.option("--teacher-vectors", type=click.Path(exists=True, dir_okay=False),
              help="With your own teacher: its (items, dim) float32 .npy item vectors in items.csv order.")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--top-k", default=32, show_default=True, type=click.IntRange(min=1), help="Teacher candidates per position.")
@click.option("--kd-weight", default=1.0, show_default=True, type=FiniteRange(min=0), help="Weight of the listwise distillation loss.")
@click.option("--kd-temperature", default=1.0, show_default=True, type=FiniteRange(min=0, min_open=True))
@click.option("--align", default=0.0, show_default=True, type=FiniteRange(min=0), help="Weight of hidden-state alignment (0 = off).")
@click.option("--max-bytes", type=click.IntRange(min=1), help="Pick the student's width and layers to fit this many bytes of int8 "
                                            "bundle (encoder + item table); --dim and --layers are then searched.")
@click.option("--candidates", default=3, show_default=True, help="With --max-bytes: fitting students trained.")
@model_options
def distill(teacher, teacher_spec, teacher_vectors, data_dir, out, top_k, kd_weight, kd_temperature, align, max_bytes,
            candidates, **options) -> None:
    """Distill a teacher checkpoint (or your own user encoder) into a small student (e.g. --dim 32 --layers 1
    --own-rows 8000)."""
    from edgerec.models.checkpoint import refuse_unfinished

    refuse_out(out, "edgerec-checkpoint", teacher=teacher, data=data_dir)
    if max_bytes is not None and options["content_specs"]:  # the search trained students without them, unsaid
        raise click.UsageError("--max-bytes sizes students without content vectors and --content was given: "
                               "distill with --content at a chosen --dim and --layers instead")
    if not (teacher_spec or teacher_vectors) and Path(teacher).is_dir():
        refuse_unfinished(teacher, "--teacher")  # a killed run's best epoch so far: before --out is made
    held = _claim(out)  # for the whole run: it saves into --out at every epoch
    try:
        _distill(teacher, teacher_spec, teacher_vectors, data_dir, out, top_k, kd_weight, kd_temperature, align,
                 max_bytes, candidates, options)
    finally:
        held.release()


def _distill(teacher, teacher_spec, teacher_vectors, data_dir, out, top_k, kd_weight, kd_temperature, align, max_bytes,
             candidates, options) -> None:
    from edgerec.compress.distill import DistillConfig, distill_model
    from edgerec.errors import ConfigError
    from edgerec.models.checkpoint import load_model, path_from

    dataset, split = _load(data_dir)
    if not Path(teacher).exists() and ":" not in teacher:
        raise ConfigError(f"--teacher {file_name(teacher)} does not exist; give a checkpoint folder of `edgerec train`, or your "
                          "own encoder (an .onnx file or module:factory) with --teacher-spec and --teacher-vectors")
    if teacher_spec or teacher_vectors or not Path(teacher).is_dir():
        from edgerec.export.own_torch import own_teacher

        teacher_model = own_teacher(teacher, teacher_spec, teacher_vectors, dataset.n_items)
    else:
        teacher_model, _ = load_model(teacher)
    content = _content(options["content_specs"])
    model_cfg, train_cfg = _configs(teacher_model.config.arch, options, content)
    kd = DistillConfig(top_k=top_k, weight=kd_weight, temperature=kd_temperature, align=align)
    if max_bytes is not None:
        _distill_to_budget(dataset, split, teacher_model, model_cfg, train_cfg, kd, max_bytes, candidates, out)
        return
    result = distill_model(dataset, split, teacher_model, model_cfg, train_cfg, kd, out=out,
                           progress=TrainProgress(),
                           info_extra={"data": path_from(out, data_dir),  # a module:factory teacher is no path
                                       "teacher": path_from(out, teacher) if Path(teacher).exists() else teacher},
                           content=content or None)
    _summary(result.info, out)


def _distill_to_budget(dataset, split, teacher, model_cfg, train_cfg, kd, max_bytes, candidates, out) -> None:
    from edgerec.compress.budget import distill_to_budget
    from edgerec.export.size_check import verify_bytes

    result = distill_to_budget(dataset, split, teacher, model_cfg, train_cfg, kd, max_bytes, out=out,
                               keep=candidates, progress=lambda m: console.print(f"  {m}"),
                               measure=lambda model: verify_bytes(model, split))
    table(result.curve, title=f"students that fit {max_bytes:,} bytes: size against validation NDCG@10")
    real = verify_bytes(result.model, split)
    key_values({"dim": result.config.dim, "layers": result.config.layers,
                "estimated_bytes": result.estimate["total"], "exported_bytes": real["total"],
                "encoder_bytes": real["encoder"], "table_bytes": real["table"], "checkpoint": str(out)},
               title="chosen student (int8 ONNX encoder + int8 item table)")
    if real["total"] > max_bytes:
        console.print(f"the exported student takes {real['total']:,} bytes, over the budget: "
                      "lower --max-bytes a little and run again", style="yellow")
    _warnings(result.info)


def register(cli: click.Group) -> None:
    cli.add_command(train)
    cli.add_command(distill)
