"""`edgerec export | inspect | pack`: make, read and package bundles."""

from __future__ import annotations

from pathlib import Path

import click

from edgerec.cli.output import FiniteRange, console, example, fmt, key_values, table


@click.command("export", epilog=example(
    "edgerec export --model ckpt/student --data data/world --ranker ckpt/ranker --teacher ckpt/teacher --out bundle"))
@click.option("--model", "checkpoint", type=click.Path(exists=True, file_okay=False),
              help="The trained recommender (usually the distilled student).")
@click.option("--encoder", "user_encoder", type=click.Path(exists=True, dir_okay=False),
              help="Instead of --model: your own ONNX/TFLite user encoder (with --spec and --item-vectors).")
@click.option("--torch-module", help="Instead of --model: 'package.module:factory' returning your PyTorch encoder.")
@click.option("--spec", type=click.Path(exists=True, dir_okay=False),
              help='JSON: {"input": {"name", "dtype", "history_length"}, "output": {"name"}, "dim"}.')
@click.option("--item-vectors", type=click.Path(exists=True, dir_okay=False),
              help="(items, dim) float32 .npy in items.csv order, for --encoder/--torch-module.")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New bundle folder.")
@click.option("--format", "formats", default="onnx,tflite", show_default=True,
              help="onnx, tflite or both as onnx,tflite (--torch-module: one file, ONNX unless only tflite is named).")
@click.option("--quantize", type=click.Choice(["none", "int8", "int8-dynamic", "int8-static", "fp16"]), default="int8",
              show_default=True)
@click.option("--table", "table_dtype", type=click.Choice(["int8", "int8-row", "fp16", "fp32"]), default="int8",
              show_default=True, help="Item table precision: int8 with a scale per dimension, or per row.")
@click.option("--ranker", type=click.Path(exists=True, file_okay=False), help="A ranker trained for --model.")
@click.option("--scorer", type=click.Path(exists=True, file_okay=False),
              help="An interpretable scorer trained for --model (`edgerec scorer train`).")
@click.option("--teacher", type=click.Path(exists=True, file_okay=False), help="Record the teacher's metrics.")
@click.option("--content", type=click.Path(exists=True, file_okay=False),
              help="A content student (`edgerec content distill`) to ship for new items and tagging.")
@click.option("--min-agreement", default=0.9, show_default=True, type=FiniteRange(0, 1), help="Top-10 agreement a quantized file must keep.")
@click.option("--name", help="Bundle name (default: the folder name).")
@click.option("--popularity", type=click.Path(exists=True, dir_okay=False),
              help="The popularity prior to ship, estimated from DP device reports (JSON from "
                   "`edgerec study dp-popularity`), instead of the training log's counts.")
@click.option("--allow-unfinished", is_flag=True,
              help="Export --model even if the training run that wrote it did not finish (killed): its best "
                   "epoch so far ships, and the model card says so.")
def export(checkpoint, user_encoder, torch_module, spec, item_vectors, data_dir, out, formats, quantize, table_dtype,
           ranker, scorer, teacher, content, min_agreement, name, popularity, allow_unfinished) -> None:
    """Export a recommender to ONNX/TFLite, check parity, quantize, and write a bundle.

    Your own models can be bundled too: --encoder FILE or --torch-module MOD:FN, with --spec and --item-vectors.
    """
    from edgerec.errors import ConfigError
    from edgerec.export.bundle_builder import ExportConfig, export_bundle

    if user_encoder or torch_module:
        if not (spec and item_vectors):
            raise ConfigError("a user-supplied encoder needs --spec and --item-vectors")
        if user_encoder and torch_module:
            raise ConfigError("give --encoder FILE or --torch-module MOD:FN, not both")
        others = [flag for flag, value in (("--model", checkpoint), ("--ranker", ranker), ("--scorer", scorer),
                                           ("--teacher", teacher), ("--popularity", popularity),
                                           ("--allow-unfinished", allow_unfinished)) if value]
        given = click.get_current_context().get_parameter_source
        if given("quantize") == click.core.ParameterSource.COMMANDLINE:
            others.append("--quantize")
        if user_encoder and given("formats") == click.core.ParameterSource.COMMANDLINE:
            others.append("--format (your file ships in its own format)")
        if others:
            raise ConfigError(f"{', '.join(others)} go with --model (edgerec's own models); a user-supplied encoder "
                              "ships as supplied (quantize it before), with --table, --content and --name")
        _export_user_model(user_encoder, torch_module, spec, item_vectors, data_dir, out, table_dtype, name,
                           formats, content)
        return
    if not checkpoint:
        raise ConfigError("give --model CKPT (or --encoder/--torch-module for your own model)")

    cfg = ExportConfig(formats=tuple(f.strip() for f in formats.split(",") if f.strip()), quantize=quantize,
                       table_dtype=table_dtype, min_top10_agreement=min_agreement, name=name)
    from edgerec.export.popularity import PopularityPrior

    prior = PopularityPrior.read(popularity) if popularity else None
    manifest = export_bundle(checkpoint, data_dir, out, cfg, ranker=ranker, teacher=teacher, content=content,
                             scorer=scorer, progress=lambda msg: console.print(f"  {msg}"), popularity=prior,
                             allow_unfinished=allow_unfinished)
    _print_manifest(manifest, out)


def _export_user_model(user_encoder, torch_module, spec, item_vectors, data_dir, out, table_dtype, name,
                       formats, content) -> None:
    from edgerec.export.custom import bundle_user_model
    from edgerec.export.own_encoder import EncoderSpec
    from edgerec.export.own_torch import bundle_torch_module, load_torch_module

    encoder_spec = EncoderSpec.load(spec)
    if user_encoder:
        manifest = bundle_user_model(user_encoder, encoder_spec, item_vectors, data_dir, out, table_dtype=table_dtype,
                                     name=name, content=content)
    else:
        wanted = {f.strip().lower() for f in formats.split(",") if f.strip()}
        if not wanted or wanted - {"onnx", "tflite"}:  # "TFLite" or a typo gave ONNX without a word
            raise click.UsageError(f"--format must be onnx and/or tflite (got {formats!r})")
        chosen = ("tflite",) if wanted == {"tflite"} else ("onnx",)
        manifest = bundle_torch_module(load_torch_module(torch_module), encoder_spec, item_vectors, data_dir, out,
                                       formats=chosen, table_dtype=table_dtype, name=name, content=content)
    _print_manifest(manifest, out)
    _print_user_model(manifest)


def _print_user_model(manifest) -> None:
    """What the checks of a user's model found: padding, adaptation, and its metrics beside popularity's."""
    entry = manifest.models[0]
    padding = entry.parity.get("padding", {})
    if padding.get("padded_to") not in (None, "longest history"):
        moved = padding.get("cosine_gap", 0.0)
        console.print(f"padding: every history is left-padded to {padding['padded_to']} on the device, as in the "
                      "checks: " + (f"the output's direction moved with the amount of padding (cosine down to {1 - moved:.4f})" if moved
                                    else "the file fixes the history length"))
        if moved > 0.05:
            console.print("warning: that much suggests the model reads 0 as an item; the runtime's ids are "
                          "item rows (catalog index + 1 in items.csv order) and 0 is padding", style="yellow")
    if entry.parity.get("adapted"):
        console.print(f"output: {entry.parity['adapted']} is the user vector")
    model, popular = manifest.metrics.get("user_model"), manifest.metrics.get("popular")
    if model and popular and model["NDCG@10"] < popular["NDCG@10"]:
        console.print("warning: your model ranks below popularity on held-out users; check that its ids "
                      "are item rows (catalog index + 1 in items.csv order, 0 = padding, newest last) and "
                      "that the item vectors are in items.csv order", style="yellow")


@click.command("inspect", epilog=example("edgerec inspect bundle --json"))
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def inspect(bundle, as_json) -> None:
    """Verify a bundle (checksums, version) and print what it holds."""
    from edgerec.runtime.bundle import Bundle

    opened = Bundle.open(bundle)
    if as_json:
        import json

        click.echo(json.dumps(opened.manifest.to_dict(), indent=2))
        return
    packed = Path(bundle).is_file()  # the file that ships, not its unpacked copy
    _print_manifest(opened.manifest, bundle, Path(bundle).stat().st_size if packed else opened.size_bytes())
    _print_sections(opened, " (unpacked)" if packed else "")


def _print_sections(opened, unpacked: str = "") -> None:
    """Bytes by section, and each item column's stored dtype and bytes (format 3 narrows them)."""
    import numpy as np

    from edgerec.device_tests.footprint import sections

    total = opened.size_bytes()
    table([{"section": k, "bytes": v, "share": v / total} for k, v in sections(opened).items()],
          title="bytes by section" + unpacked)
    files = opened.manifest.files
    rows = []
    for name, column in opened.manifest.items.columns().items():
        if column.constant is not None:  # format 6: the value itself, in the manifest
            rows.append({"column": name, "kind": column.kind, "dtype": np.dtype(column.constant_dtype(name)).name,
                         "bytes": 0, "stored as": f"constant {column.constant!r} (every item)"})
            continue
        stored = column.offsets if column.kind == "string" else column.file
        rows.append({"column": name, "kind": column.kind, "dtype": str(opened.array(stored).dtype),
                     "bytes": sum(files[f]["bytes"] for f in column.files()),
                     "stored as": f"{column.codec} blocks of {column.block_rows}, {column.raw_bytes} bytes of text"
                     if column.codec else ""})
    tags = opened.manifest.items.tags
    if tags:  # format 5: codes and offsets, the vocabulary in the manifest
        rows.append({"column": "tags", "kind": "tag codes", "dtype": str(opened.array(tags.codes).dtype),
                     "bytes": sum(files[f]["bytes"] for f in tags.files()),
                     "stored as": f"codes into {len(tags.vocab)} tags, {opened.array(tags.offsets).dtype} offsets"})
    table(rows, title="item columns (strings: offsets or block starts dtype; bytes include the blob)")


def _print_manifest(manifest, where, size: int | None = None) -> None:
    m = manifest
    key_values({"name": m.name, "format version": m.format_version, "created": m.created,
                "edgerec": m.edgerec_version, "embedding space": m.embedding_space, "dim": m.dim,
                "items": m.items.count, "item table": m.items.embeddings.dtype,
                "bytes": size if size is not None else sum(f["bytes"] for f in m.files.values()),
                "defaults": m.defaults, "data": m.data_version}, title=f"bundle {where}")
    rows = []
    for e in m.models:
        q = e.parity.get(e.quantization, e.parity) if e.role == "user_encoder" else e.parity
        rows.append({"role": e.role, "format": e.format, "file": e.file, "quantization": e.quantization,
                     "bytes": m.files[e.file]["bytes"], "shape": " ".join(map(str, e.inputs[0].shape)),
                     "max |diff|": q.get("max_abs_diff", ""), "top-10 agreement": q.get("top10_agreement", "")})
    table(rows, title="models")
    metric_rows = [{"model": k, **{c: v.get(c) for c in ("HR@10", "NDCG@10", "parameters")}}
                   for k, v in m.metrics.items() if isinstance(v, dict) and "NDCG@10" in v]
    if metric_rows:
        table(metric_rows, title="test metrics (full ranking)")
    if "onnx_vs_tflite" in m.metrics:
        console.print("onnx vs tflite: " + fmt(m.metrics["onnx_vs_tflite"]))
    partial = m.metrics.get("unfinished_training")
    if isinstance(partial, dict):  # `export --allow-unfinished`: a killed run's best epoch so far (not torch's
        for who, run in partial.items():  # import for it: export.bundle_builder.unfinished_lines says the same)
            epoch = run.get("best_epoch") if isinstance(run, dict) else None
            console.print(f"{'' if who == 'model' else who + ': '}unfinished training run (best epoch {epoch}): "
                          "its best epoch so far, exported with --allow-unfinished", style="yellow")


@click.command("pack", epilog=example("edgerec pack bundle --out bundle.edgerec"))
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Packed file (default: BUNDLE.edgerec).")
def pack(bundle, out) -> None:
    """Pack a verified bundle folder into one file the runtime opens directly."""
    from edgerec.runtime.pack import pack as pack_bundle

    path = pack_bundle(bundle, out)
    console.print(f"packed {bundle} -> {path} ({path.stat().st_size:,} bytes)")


def register(cli: click.Group) -> None:
    cli.add_command(export)
    cli.add_command(inspect)
    cli.add_command(pack)
