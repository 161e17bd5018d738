"""Distillation of a content encoder: a static-token student learns to reproduce the teacher's
sentence embeddings on the catalog's own text (titles, descriptions, tags).

The token table is large and each batch touches few rows, so it is trained
with sparse gradients (SparseAdam); the small projection uses Adam. The loss
is 1 - cosine plus a small MSE term, against the teacher's L2-normalised
embeddings, plus optional in-batch terms on who is near whom: the structure
term (cosine-matrix MSE) and the listwise term (neighbour distributions, KL),
which `content distill` uses when it adapts on real titles.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgerec.errors import ConfigError
from edgerec.models.content import ContextualContentStudent, StaticContentStudent, tokenize
from edgerec.runtime.checks import file_name


@dataclass
class ContentDistillConfig:
    dim: int = 128  # width of the student's token vectors
    max_length: int = 48  # tokens read per text
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.05  # token table (SparseAdam)
    projection_lr: float = 3e-3
    seed: int = 0
    max_seconds: float | None = None
    structure_weight: float = 0.0  # MSE between in-batch cosine matrices (structure_loss)
    listwise_weight: float = 0.0  # KL between in-batch neighbour distributions (listwise_loss)
    temperature: float = 0.05  # of the listwise term

    def validate(self) -> ContentDistillConfig:
        if self.dim < 4 or self.max_length < 4 or self.epochs < 1 or self.projection_lr < 0:
            raise ConfigError("content distillation needs dim >= 4, max_length >= 4, epochs >= 1 and "
                              "projection_lr >= 0")
        if self.structure_weight < 0 or self.listwise_weight < 0 or not self.temperature > 0:
            raise ConfigError("structure_weight and listwise_weight must be >= 0 and temperature > 0")
        return self


def structure_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE between the in-batch cosine matrices of student and teacher (both L2-normalised)."""
    return F.mse_loss(out @ out.T, target @ target.T)


def listwise_loss(out: torch.Tensor, target: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL from the teacher's to the student's in-batch neighbour distribution: each text's softmax over
    its cosines to the other texts of the batch, at `temperature` (low: the nearest ones dominate)."""
    eye = torch.eye(len(out), dtype=torch.bool)
    student = (out @ out.T / temperature).masked_fill(eye, -1e9)
    teacher = (target @ target.T / temperature).masked_fill(eye, -1e9)
    return F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1), log_target=True,
                    reduction="batchmean")


def distill_loss(out: torch.Tensor, target: torch.Tensor, cfg: ContentDistillConfig) -> torch.Tensor:
    """1 - cosine + MSE per text, plus the weighted in-batch terms on who is near whom."""
    loss = (1 - (out * target).sum(-1)).mean() + F.mse_loss(out, target)
    if cfg.structure_weight:
        loss = loss + cfg.structure_weight * structure_loss(out, target)
    if cfg.listwise_weight:
        loss = loss + cfg.listwise_weight * listwise_loss(out, target, cfg.temperature)
    return loss


def cosine_stats(a: np.ndarray, b: np.ndarray) -> dict:
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    return {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()), "cosine_p05": float(np.percentile(cos, 5))}


def neighbour_agreement(a: np.ndarray, b: np.ndarray, k: int = 10) -> float | None:
    """Share of each text's k nearest other texts that two embeddings agree on; None with k + 1 texts or
    fewer, where any two embeddings agree on all of them (two texts gave MiniLM 0.2 against itself)."""
    if len(a) <= k + 1:
        return None
    def neighbours(x):
        sims = x @ x.T
        np.fill_diagonal(sims, -np.inf)
        return np.argsort(-sims, axis=1)[:, :k]
    na, nb = neighbours(a), neighbours(b)
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(na, nb)]))


def distill_content(tokenizer, texts: list[str], targets: np.ndarray, held_texts: list[str],
                    held_targets: np.ndarray, cfg: ContentDistillConfig | None = None,
                    progress: Callable[[int, dict], None] | None = None,
                    student: StaticContentStudent | None = None) -> tuple[StaticContentStudent, dict]:
    """Train a student on (texts, teacher vectors); report cosine on held-out texts after each epoch.

    `student` starts from given weights (e.g. the vocabulary pass) instead of random ones; a
    `projection_lr` of 0 keeps its projection fixed."""
    cfg = (cfg or ContentDistillConfig()).validate()
    if not texts or not held_texts:
        raise ConfigError(f"content distillation needs texts to learn from and held-out texts to measure on (got "
                          f"{len(texts)} and {len(held_texts)}): raise --train-items, or lower --held-out below "
                          "the catalog's item count")
    torch.manual_seed(cfg.seed)
    ids, mask = tokenize(tokenizer, texts)
    held_ids, held_mask = tokenize(tokenizer, held_texts)
    if student is None:
        student = StaticContentStudent(tokenizer.get_vocab_size(), cfg.dim, targets.shape[1])
    for parameter in student.map_parameters():
        parameter.requires_grad_(cfg.projection_lr > 0)
    sparse = torch.optim.SparseAdam([student.tokens.weight], lr=cfg.lr)
    dense = torch.optim.Adam(student.map_parameters(), lr=cfg.projection_lr or 1e-3)
    y = torch.as_tensor(targets, dtype=torch.float32)
    rng = np.random.default_rng(cfg.seed)
    epochs = BestEpoch(student, cosine_stats(embed(student, held_ids, held_mask), held_targets),
                       lambda record: record["cosine_mean"])
    for epoch in range(cfg.epochs):
        student.train()
        order = rng.permutation(len(texts))
        for start in range(0, len(order), cfg.batch_size):
            b = order[start:start + cfg.batch_size]
            out = student(torch.as_tensor(ids[b]), torch.as_tensor(mask[b]))
            loss = distill_loss(out, y[b], cfg)
            sparse.zero_grad()
            dense.zero_grad()
            loss.backward()
            sparse.step()
            if cfg.projection_lr > 0:
                dense.step()
        epochs.add(epoch, loss, cosine_stats(embed(student, held_ids, held_mask), held_targets), progress)
        if cfg.max_seconds and epochs.elapsed() > cfg.max_seconds:
            break
    return epochs.restore(), {"history": epochs.history, "config": asdict(cfg),
                              "held_out_cosine_mean": epochs.best["cosine_mean"], "train_texts": len(texts),
                              "held_out_texts": len(held_texts)}


class BestEpoch:
    """Each epoch's held-out record, and the weights of the best epoch by `value(record)`. The
    starting point (`start`, epoch 0) competes too, so training that only hurts is not kept."""

    def __init__(self, student: torch.nn.Module, start: dict, value: Callable[[dict], float]):
        self.student, self.value, self.history = student, value, []
        self.best, self.state = start, self._weights()
        self.began = time.perf_counter()

    def _weights(self) -> dict:
        return {k: v.clone() for k, v in self.student.state_dict().items()}

    def elapsed(self) -> float:
        return time.perf_counter() - self.began

    def add(self, epoch: int, loss: torch.Tensor, scores: dict, progress: Callable[[int, dict], None] | None) -> None:
        record = {"epoch": epoch + 1, "loss": float(loss.detach()), **scores, "seconds": round(self.elapsed(), 1)}
        self.history.append(record)
        if self.value(record) > self.value(self.best):
            self.best, self.state = record, self._weights()
        if progress:
            progress(epoch + 1, record)

    def restore(self) -> torch.nn.Module:
        """The student with the best epoch's weights, in eval mode."""
        self.student.load_state_dict(self.state)
        return self.student.eval()


@torch.no_grad()
def embed(student: StaticContentStudent, ids: np.ndarray, mask: np.ndarray, batch: int = 1024) -> np.ndarray:
    student.eval()
    return np.concatenate([student(torch.as_tensor(ids[i:i + batch]), torch.as_tensor(mask[i:i + batch])).numpy()
                           for i in range(0, len(ids), batch)])


def save_student(folder: str | Path, student: StaticContentStudent | ContextualContentStudent, encoder_dir: Path,
                 info: dict) -> Path:
    """A content checkpoint: the tokenizer file, safetensors weights, and last a JSON config holding the
    weights' save id and the tokenizer's sha256, so a folder a killed save left half new is refused by
    load_student. Each file is written whole (a private temporary renamed into place)."""
    import json

    from edgerec.models.checkpoint import save_weights

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer, save = (Path(encoder_dir) / "tokenizer.json").read_bytes(), secrets.token_hex(8)
    _write_whole(folder / "tokenizer.json", tokenizer)
    save_weights(folder / "model.safetensors", student.state_dict(), {"save": save})
    config = {"format": "edgerec-content-student", "version": 1, "save": save,
              "tokenizer_sha256": hashlib.sha256(tokenizer).hexdigest(), "vocab_size": student.tokens.num_embeddings,
              "dim": student.tokens.embedding_dim, "out_dim": student.project.out_features,
              "teacher": str(encoder_dir), "info": info}
    if isinstance(student, ContextualContentStudent):
        config["architecture"] = student.architecture()
    _write_whole(folder / "config.json", json.dumps(config, indent=2).encode())
    return folder


def _write_whole(path: Path, data: bytes) -> None:
    from edgerec.runtime.atomic import write_file

    write_file(path, data)


def load_student(folder: str | Path) -> tuple[StaticContentStudent | ContextualContentStudent, dict]:
    import json

    from safetensors.torch import load_file

    from edgerec.errors import ModelError
    from edgerec.models.checkpoint import weights_save_id

    folder = Path(folder)
    name = file_name(folder)
    try:
        config = json.loads((folder / "config.json").read_text())
        weights = folder / "model.safetensors"
        state, save = load_file(str(weights)), weights_save_id(weights)
    except Exception as exc:  # a missing file, JSON or safetensors' own error types for a damaged file
        raise ModelError(f"{name} is not a readable content student checkpoint ({type(exc).__name__}); make one "
                         "with `edgerec content distill`") from None
    if not isinstance(config, dict) or config.get("format") != "edgerec-content-student":
        raise ModelError(f"{name} is not a content student checkpoint")
    tokenizer = folder / "tokenizer.json"
    if config.get("save") is not None and (save != config["save"] or not tokenizer.is_file() or hashlib.sha256(
            tokenizer.read_bytes()).hexdigest() != config.get("tokenizer_sha256")):
        raise ModelError(f"{name}: its tokenizer, weights and config come from different saves (a save into the "
                         "folder was interrupted); distill it again")
    shape = dict(config.get("architecture", {"kind": "static"}))
    kind = shape.pop("kind")
    if kind not in ("static", "contextual"):
        raise ModelError(f"{name} holds a content student of an unknown kind {kind!r}; update edgerec")
    made = ContextualContentStudent if kind == "contextual" else StaticContentStudent
    student = made(config["vocab_size"], config["dim"], config["out_dim"], **shape)
    state.setdefault("offset", torch.zeros(config["out_dim"]))  # checkpoints from before the offset
    try:
        student.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"the weights in {name} do not fit its config ({str(exc)[:200]}); distill it again") from None
    return student.eval(), config
