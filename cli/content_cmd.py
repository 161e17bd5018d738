"""`edgerec content ...`: content encoders: distill, report, embed, tag, audio features, cold start."""

from __future__ import annotations

import click

from edgerec.cli.output import console, key_values, table, write_json


@click.group("content")
def content_group() -> None:
    """Content encoders: the large teacher, a small on-device student, tags and cold-start items."""


def _texts(data_dir, train_items, held_out, seed):
    import numpy as np

    from edgerec.data.store import load_dataset
    from edgerec.models.content import item_texts

    dataset = load_dataset(data_dir)
    texts = item_texts(dataset.catalog)
    order = np.random.default_rng(seed).permutation(len(texts))
    held = [texts[i] for i in order[:held_out]]
    train = [texts[i] for i in order[held_out:held_out + train_items]]
    return dataset, train, held


@content_group.command("distill")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--encoder", "encoder_dir", type=click.Path(exists=True, file_okay=False),
              help="Teacher: a sentence-transformers folder (default: the packaged all-MiniLM-L6-v2). "
                   "Pass a multilingual model for multilingual catalogs.")
@click.option("--train-items", default=6000, show_default=True, help="Catalog texts the student learns from.")
@click.option("--held-out", default=1000, show_default=True, help="Catalog texts kept for measuring it.")
@click.option("--dim", default=128, show_default=True)
@click.option("--epochs", default=30, show_default=True)
@click.option("--seed", default=0, show_default=True)
def distill(data_dir, out, encoder_dir, train_items, held_out, dim, epochs, seed) -> None:
    """Distill the teacher into a static-token student on the catalog's own text."""
    from edgerec.compress.content_distill import ContentDistillConfig, distill_content, save_student
    from edgerec.models.content import ContentTeacher, load_tokenizer

    _, train, held = _texts(data_dir, train_items, held_out, seed)
    with console.status(f"teacher embeds {len(train) + len(held):,} catalog texts"):
        teacher = ContentTeacher(encoder_dir)
        train_vectors, held_vectors = teacher.encode(train), teacher.encode(held)
    tokenizer = load_tokenizer(teacher.dir, 48)

    def progress(epoch, record):
        if epoch % 5 == 0 or epoch == 1:
            console.print(f"  epoch {epoch:>3}  held-out cosine {record['cosine_mean']:.4f} (min "
                          f"{record['cosine_min']:.3f})  ({record['seconds']:.0f}s)")

    student, info = distill_content(tokenizer, train, train_vectors, held, held_vectors,
                                    ContentDistillConfig(dim=dim, epochs=epochs, seed=seed), progress)
    save_student(out, student, teacher.dir, {k: v for k, v in info.items() if k != "history"} | {"data": data_dir})
    key_values({"held-out cosine (mean)": info["held_out_cosine_mean"], "train texts": info["train_texts"],
                "parameters": sum(p.numel() for p in student.parameters()), "checkpoint": out},
               title="content student")


@content_group.command("report")
@click.option("--student", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--encoder", "encoder_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--held-out", default=1000, show_default=True)
@click.option("--seed", default=0, show_default=True, help="Must match the seed of `content distill`.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False))
def report(student, data_dir, encoder_dir, held_out, seed, json_out) -> None:
    """MiniLM fp32 vs int8 vs the student: bytes, cosine to the teacher, neighbours, ms per title."""
    from edgerec.compress.content_distill import load_student
    from edgerec.export.content import content_report
    from edgerec.models.content import ContentTeacher

    _, _, held = _texts(data_dir, 0, held_out, seed)
    teacher = ContentTeacher(encoder_dir)
    model, _ = load_student(student)
    with console.status("exporting and timing every content encoder"):
        rows = content_report(teacher.dir, model, held, teacher.encode(held))
    table(rows, title=f"content encoders on {len(held):,} held-out catalog texts (1 thread)",
          columns=["model", "bytes", "cosine_mean", "cosine_min", "top10_neighbour_agreement", "ms_per_title_p50",
                   "bytes_vs_minilm_int8", "speedup_vs_minilm_int8"])
    write_json(json_out, {"held_out_texts": len(held), "models": rows})


@content_group.command("embed")
@click.option("--student", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="A .npy, rows in items.csv order.")
def embed(student, data_dir, out) -> None:
    """Text vectors of every catalog item (for `edgerec train --content text=OUT`)."""
    import numpy as np

    from edgerec.compress.content_distill import embed as run
    from edgerec.compress.content_distill import load_student
    from edgerec.data.store import load_dataset
    from edgerec.models.content import item_texts, load_tokenizer, tokenize

    model, _ = load_student(student)
    ids, mask = tokenize(load_tokenizer(student, 48), item_texts(load_dataset(data_dir).catalog))
    vectors = run(model, ids, mask)
    np.save(out, vectors.astype(np.float32), allow_pickle=False)
    console.print(f"wrote {out}: {vectors.shape[0]:,} x {vectors.shape[1]}")


@content_group.command("audio-features")
@click.option("--audio-dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="WAV files named <item_id>.wav (mono or stereo, 16-bit PCM).")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False))
def audio_features(audio_dir, data_dir, out) -> None:
    """Simple audio vectors (band energies, spectral shape, loudness, tempo) per item, rows in items.csv order."""
    from edgerec.data.store import load_dataset
    from edgerec.models.audio import catalog_audio_features

    matrix, found = catalog_audio_features(load_dataset(data_dir).catalog.item_ids, audio_dir)
    import numpy as np

    np.save(out, matrix, allow_pickle=False)
    console.print(f"wrote {out}: {matrix.shape[1]} features for {found:,} of {len(matrix):,} items "
                  "(items without a file get zeros)")


@content_group.command("tag")
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--text", help="Any text, e.g. a new item's title and description.")
@click.option("--item", "item_id", help="An item of the bundle.")
@click.option("--k", default=5, show_default=True)
def tag(bundle, text, item_id, k) -> None:
    """Zero-shot genre, mood and tags from the bundle's content encoder (runs on the device runtime)."""
    from edgerec.runtime import Recommender

    labels = Recommender.open(bundle).tag(text=text, item_id=item_id, k=k)
    key_values({kind: value if kind != "tags" else ", ".join(f"{t} ({s:.2f})" for t, s in value)
                for kind, value in labels.items()}, title="labels")


@content_group.command("coldstart")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--content", "content_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--held-items", default=600, show_default=True, help="Items removed from training.")
@click.option("--epochs", default=8, show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False))
def coldstart(data_dir, content_dir, out, held_items, epochs, json_out) -> None:
    """Hold items out of training, add them on the device from metadata only, and measure HR@10."""
    from edgerec.export.coldstart import cold_start_check

    result = cold_start_check(data_dir, content_dir, out, held_items=held_items, epochs=epochs,
                              progress=lambda m: console.print(f"  {m}"))
    table(result["placements"], title=f"cold-start items: {result['pairs']:,} (user, new item) pairs")
    write_json(json_out, result)


def register(cli: click.Group) -> None:
    cli.add_command(content_group)
