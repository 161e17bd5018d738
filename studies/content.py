"""The content study: MiniLM against the on-device content students, on texts the students never saw.

Every encoder is exported for real and run by its engine: bytes on disk,
milliseconds per title on one thread, and on each text set the cosine to the
teacher's vectors and the agreement of the ten nearest neighbours. The text
sets are the catalog's held-out texts and titles, and real film titles (shipped
in a package) with words the student's adaptation texts never used, among them
titles in other languages, and titles of a second real catalog (MovieLens) that
no student read as a text. Zero-shot tagging accuracy is measured on held-out
items whose genres the encoders never read.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgerec.compress.content_distill import cosine_stats, load_student, neighbour_agreement
from edgerec.compress.content_vocab import VOCABULARY_ONLY
from edgerec.compress.quantize import MODE_LABEL, quantize_onnx
from edgerec.data.film_texts import (
    movielens_films,
    split_imdb_titles,
    unseen_titles,
    untrained_titles,
)
from edgerec.data.schema import Catalog
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError
from edgerec.export.content import (
    TFLITE_TOKENS,
    export_student,
    export_teacher_onnx,
    run_content_file,
)
from edgerec.models.content import ContentTeacher, held_out_texts, load_tokenizer, text_order
from edgerec.runtime.backends import open_backend
from edgerec.studies.base import Progress, Study, Table

SIZE_COLUMNS = ["model", "bytes", "ms_per_title_p50", "bytes_vs_minilm_int8", "speedup_vs_minilm_int8"]
SET_COLUMNS = ["set", "model", "cosine_mean", "cosine_p05", "top10_neighbour_agreement"]


MOST_COMMON_LABEL = "no model: always the most common label"


@dataclass
class TaggingSet:
    """Texts without their labels, the label names, and for each text the indices of its true labels."""

    texts: list[str]
    labels: list[str]
    truth: list[set[int]]


def tagging_accuracy(text_vectors: np.ndarray, label_vectors: np.ndarray, truth: list[set[int]]) -> float:
    """Share of texts whose most similar label is one of their own labels (top-1, zero-shot)."""
    if not truth:
        return float("nan")
    best = np.argmax(text_vectors @ label_vectors.T, axis=1)
    return float(np.mean([int(b) in t for b, t in zip(best, truth)]))


def most_common_label_accuracy(truth: list[set[int]], n_labels: int) -> float:
    """Top-1 accuracy of reading no text at all and always naming the label most texts carry: the
    floor a zero-shot tagger must clear (on MovieLens-100K a film is a drama more often than MiniLM
    names one of its genres from the title)."""
    if not truth:
        return float("nan")
    counts = np.bincount([label for labels in truth for label in labels], minlength=max(n_labels, 1))
    best = int(np.argmax(counts))
    return float(np.mean([best in labels for labels in truth]))


def genre_tagging_set(catalog: Catalog, rows: np.ndarray) -> TaggingSet:
    """The catalog's own genres as labels of held-out items. The text is the title and description
    with every genre name cut out, and no tags, so no label word reaches the encoder."""
    genres = catalog.text["genre"]
    labels = sorted({g for g in genres if g})
    index = {g: i for i, g in enumerate(labels)}
    names = re.compile(r"\b(" + "|".join(re.escape(g) for g in sorted(labels, key=len, reverse=True))
                       + r")\b", re.IGNORECASE) if labels else None
    texts, truth = [], []
    for row in rows:
        own = {index[g] for g in (genres[row], *catalog.tags[row]) if g in index}
        text = " ".join(p for p in (catalog.text["title"][row], catalog.text["description"][row]) if p)
        text = " ".join(names.sub(" ", text).split()) if names else text
        if own and text:
            texts.append(text)
            truth.append(own)
    return TaggingSet(texts, labels, truth)


@dataclass
class Encoder:
    name: str
    path: Path
    fmt: str
    config: dict | None
    tokens: int = 128  # tokens read per text (a contextual student: no more than its position table)


def _export_encoders(encoder_dir: Path, students: dict, scratch: Path, minilm: bool) -> list[Encoder]:
    out = []
    if minilm:
        teacher_onnx = export_teacher_onnx(encoder_dir, scratch / "teacher")
        teacher_int8 = quantize_onnx(teacher_onnx, scratch / "teacher-int8.onnx", "int8-dynamic")
        out += [Encoder("MiniLM fp32 (onnx)", teacher_onnx, "onnx", None),
                Encoder("MiniLM int8 per-channel (onnx)", teacher_int8, "onnx", None)]
    for k, (name, (student, variants)) in enumerate(students.items()):
        for fmt, mode in variants:
            path, config = export_student(student, fmt, mode, scratch / f"student{k}-{mode}.{fmt}", scratch)
            out.append(Encoder(f"{name} {MODE_LABEL[mode]} ({fmt})", path, fmt, config,
                               getattr(student, "max_len", 128)))
    return out


def content_report(encoder_dir: Path, students: dict, sets: dict[str, list[str]], teacher: ContentTeacher,
                   tagging: TaggingSet | None = None, latency_texts: int = 200, minilm: bool = True,
                   latency_set: str | None = None) -> dict:
    """Every encoder on every text set. `students`: name -> (student, [(format, mode), ...]); the
    milliseconds are timed one text at a time on `latency_set` (default: the first set)."""
    fixed = load_tokenizer(encoder_dir, TFLITE_TOKENS, pad_to=TFLITE_TOKENS)
    targets = {name: teacher.encode(texts) for name, texts in sets.items()}
    sizes, quality, tags = [], [], []
    with tempfile.TemporaryDirectory(prefix="edgerec-content-report-") as scratch:
        for enc in _export_encoders(encoder_dir, students, Path(scratch), minilm):
            backend = open_backend(enc.path, enc.fmt, threads=1, config=enc.config)
            tokenizer = load_tokenizer(encoder_dir, enc.tokens)

            def run(texts, backend=backend, enc=enc, tokenizer=tokenizer):
                v = run_content_file(backend, enc.fmt, fixed, tokenizer, texts)
                return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

            for set_name, texts in sets.items():
                vectors = run(texts)
                quality.append({"set": set_name, "model": enc.name, **cosine_stats(vectors, targets[set_name]),
                                "top10_neighbour_agreement": neighbour_agreement(vectors, targets[set_name])})
            times = []
            for text in sets[latency_set or next(iter(sets))][:latency_texts]:
                began = time.perf_counter()
                run([text])
                times.append((time.perf_counter() - began) * 1e3)
            sizes.append({"model": enc.name, "bytes": enc.path.stat().st_size,
                          "ms_per_title_p50": float(np.percentile(times, 50)),
                          "ms_per_title_mean": float(np.mean(times))})
            if tagging and tagging.texts:
                tags.append({"model": enc.name, "texts": len(tagging.texts), "labels": len(tagging.labels),
                             "top1_accuracy": tagging_accuracy(run(tagging.texts), run(tagging.labels),
                                                               tagging.truth)})
    if tagging and tagging.texts:
        tags.append({"model": "MiniLM (PyTorch, the teacher)", "texts": len(tagging.texts),
                     "labels": len(tagging.labels),
                     "top1_accuracy": tagging_accuracy(teacher.encode(tagging.texts),
                                                       teacher.encode(tagging.labels), tagging.truth)})
        tags.append({"model": MOST_COMMON_LABEL, "texts": len(tagging.texts), "labels": len(tagging.labels),
                     "top1_accuracy": most_common_label_accuracy(tagging.truth, len(tagging.labels))})
    base = next((r for r in sizes if r["model"].startswith("MiniLM int8")), None)
    for row in sizes:
        row["bytes_vs_minilm_int8"] = row["bytes"] / base["bytes"] if base else float("nan")
        row["speedup_vs_minilm_int8"] = base["ms_per_title_mean"] / row["ms_per_title_mean"] if base \
            else float("nan")
    return {"models": sizes, "sets": {k: len(v) for k, v in sets.items()}, "quality": quality, "tagging": tags}


def student_name(folder: Path) -> str:
    """A student by its folder and how it was made, e.g. "ctx1 (vocabulary, contextual, 1 block)"."""
    _, config = load_student(folder)
    made = config.get("info", {}).get("init", "catalog tokens only")
    layers = config.get("architecture", {}).get("layers")
    return f"{Path(folder).name} ({made}" + (f", {layers} block{'s' * (layers > 1)})" if layers else ")")


@dataclass
class ContentStudy(Study):
    """The content encoders compared on unseen texts (`seed` must match `content distill`'s)."""

    name = "content"
    student: Path
    data_dir: Path
    encoder_dir: Path | None = None  # the teacher; default: the packaged all-MiniLM-L6-v2
    held_out: int | None = None  # None: the student's own (what `content distill --held-out` kept out)
    seed: int | None = None  # None: the student's own
    baselines: list[Path] = field(default_factory=list)  # e.g. `content distill --no-vocabulary`
    unseen: int = 500  # real film titles with words absent from the adaptation texts
    formats: list[str] = field(default_factory=lambda: ["onnx"])  # the students' files (int8)

    def measure(self, progress: Progress) -> dict:
        if (self.held_out is not None and self.held_out < 1) or self.unseen < 1:
            raise ConfigError(f"--held-out and --unseen must be at least 1 text each (got {self.held_out}, "
                              f"{self.unseen})")
        model, config = load_student(self.student)
        info = config.get("info", {})
        self.held_out, self.seed = self._split_of(info)
        catalog = load_dataset(self.data_dir).catalog
        train, held = held_out_texts(catalog, int(info.get("catalog_texts", info.get("train_texts", 0))),
                                     self.held_out, self.seed)
        order = text_order(catalog, self.seed)  # held_out_texts' order
        rows = order[:self.held_out]
        titles = [catalog.text["title"][r] for r in rows if catalog.text["title"][r]]
        # real titles held out by row before a contextual student read the others (same seed)
        split = split_imdb_titles(seed=self.seed)
        seen = train + split.train[:info["real_titles"]] if info.get("real_titles") else train
        read_titles = [catalog.text["title"][r] for r in order[self.held_out:self.held_out + len(train)]]
        sets = {"held-out catalog texts": held, "held-out catalog titles": titles,
                "held-out real titles": split.held[:self.unseen],
                "real titles with unseen words": unseen_titles(split.held, seen, self.unseen),
                "real titles in other languages": split.held_other[:self.unseen],
                # another real catalog: MovieLens titles the students never read as a text
                "MovieLens titles never trained on": untrained_titles(movielens_films().titles,
                                                                      seen + read_titles, self.unseen,
                                                                      self.seed)}
        sets = {name: texts for name, texts in sets.items() if texts}  # a catalog without titles has none
        variants = [(fmt, "int8") for fmt in self.formats]
        students = {"student": (model, variants)}
        if (Path(self.student) / VOCABULARY_ONLY).exists():
            contextual = config.get("architecture", {}).get("kind") == "contextual"
            name = "contextual student" if contextual else "adapted student"
            students = {"vocabulary-only student": (load_student(Path(self.student) / VOCABULARY_ONLY)[0],
                                                    variants), name: (model, variants)}
        for folder in self.baselines:
            if student_name(folder) in students:
                raise ConfigError(f"two students are called {student_name(folder)!r}; give them folders "
                                  "with different names")
            students[student_name(folder)] = (load_student(folder)[0], variants)
        teacher = ContentTeacher(self.encoder_dir)
        progress(f"exporting and measuring {len(students)} students and MiniLM on "
                 f"{sum(len(v) for v in sets.values()):,} unseen texts", {})
        report = content_report(teacher.dir, students, sets, teacher, genre_tagging_set(catalog, rows),
                                latency_set="held-out real titles")
        return {"held_out_texts": len(held), "train_texts": len(train), **report}

    def _split_of(self, info: dict) -> tuple[int, int]:
        """--held-out and --seed as the student was distilled with: another split counted the student's own
        training texts as held out (half of them, at --held-out 100 against the 50 it kept out)."""
        own_held, own_seed = info.get("held_out_texts"), info.get("config", {}).get("seed")
        held = self.held_out if self.held_out is not None else own_held if own_held is not None else 1000
        seed = self.seed if self.seed is not None else own_seed if own_seed is not None else 0
        for option, given, own in (("--held-out", held, own_held), ("--seed", seed, own_seed)):
            if own is not None and given != own:
                raise ConfigError(f"the student was distilled with {option} {own}, and {option} {given} would count "
                                  f"texts it trained on as held out: leave {option} out (the student's is used)")
        return held, seed

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        out = [Table(f"content encoders: bytes and speed (1 thread; student trained on "
                     f"{record.get('train_texts', 0):,} texts)", record["models"], SIZE_COLUMNS),
               Table("fidelity to MiniLM on unseen texts (" + ", ".join(f"{k}: {v:,}" for k, v in
                                                                       record["sets"].items()) + ")",
                     record["quality"], SET_COLUMNS)]
        if record.get("tagging"):
            out.append(Table("zero-shot genre tagging of held-out titles (top-1)", record["tagging"]))
        return out

