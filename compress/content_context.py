"""Distillation of the contextual content student: a tiny transformer that starts from the
vocabulary pass and learns MiniLM's sentence vectors on many real texts.

The static student averages token vectors that do not see each other, so two
titles sharing a word look alike whatever the other words say; MiniLM's
neighbours depend on word order and context. The loss is 1 - cosine to the
teacher plus a similarity-structure term (MSE between the student's and the
teacher's in-batch cosine matrices), because what the device uses is who is
near whom. Batches group texts of similar token length, so short titles are
not padded to the longest description.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from edgerec.compress.content_distill import (
    BestEpoch,
    cosine_stats,
    embed,
    neighbour_agreement,
    structure_loss,
)
from edgerec.errors import ConfigError
from edgerec.models.content import ContextualContentStudent, StaticContentStudent, tokenize


@dataclass
class ContextualConfig:
    layers: int = 2
    heads: int = 4
    ffn_mult: int = 2
    max_length: int = 48  # tokens read per text (also the student's position table)
    epochs: int = 5  # 53,500 real titles + 6,000 catalog texts: about 4 minutes an epoch on 2 threads
    batch_size: int = 256
    lr: float = 2e-3  # attention blocks, positions and map
    token_lr: float = 2e-3  # token table (2e-4 was worse: held-out cosine 0.764 after 2 epochs, not 0.793)
    structure_weight: float = 5.0  # weight of the in-batch similarity term
    seed: int = 0
    max_seconds: float | None = None

    def validate(self) -> ContextualConfig:
        if self.layers < 1 or self.heads < 1 or self.max_length < 32 or self.epochs < 1 or self.batch_size < 2:
            # 32: the fixed text length of TFLite content files, which the position table must cover
            raise ConfigError("the contextual student needs layers >= 1, heads >= 1, max_length >= 32, "
                              "epochs >= 1 and batch_size >= 2")
        if self.lr <= 0 or self.token_lr < 0 or self.structure_weight < 0:
            raise ConfigError("learning rates must be positive (token_lr may be 0: a frozen table) and "
                              "structure_weight >= 0")
        return self


def length_batches(mask: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of texts of similar length (shuffled within each length, then batch order shuffled)."""
    lengths = mask.sum(1)
    order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def distill_contextual(start: StaticContentStudent, tokenizer, texts: list[str], targets: np.ndarray,
                       held_texts: list[str], held_targets: np.ndarray, cfg: ContextualConfig | None = None,
                       progress: Callable[[int, dict], None] | None = None
                       ) -> tuple[ContextualContentStudent, dict]:
    """Train a contextual student whose token table and map start from `start`; keep the epoch with
    the best held-out cosine + top-10 agreement (the starting point competes too)."""
    cfg = (cfg or ContextualConfig()).validate()
    torch.manual_seed(cfg.seed)
    student = ContextualContentStudent.from_static(start, layers=cfg.layers, heads=cfg.heads,
                                                   max_len=cfg.max_length, ffn_mult=cfg.ffn_mult)
    ids, mask = tokenize(tokenizer, texts)
    held_ids, held_mask = tokenize(tokenizer, held_texts)
    if ids.shape[1] > cfg.max_length or held_ids.shape[1] > cfg.max_length:
        raise ConfigError(f"the tokenizer reads more than the student's {cfg.max_length} positions; "
                          "truncate it to max_length")
    rest = [p for name, p in student.named_parameters() if name != "tokens.weight"]
    optimizer = torch.optim.Adam([{"params": [student.tokens.weight], "lr": cfg.token_lr},
                                  {"params": rest, "lr": cfg.lr}])
    y = torch.as_tensor(targets, dtype=torch.float32)
    rng = np.random.default_rng(cfg.seed)
    batches_per_epoch = -(-len(texts) // cfg.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[cfg.token_lr or 1e-12, cfg.lr],
                                                   total_steps=cfg.epochs * batches_per_epoch, pct_start=0.1)

    def score(vectors):
        agreement = neighbour_agreement(vectors, held_targets)
        return cosine_stats(vectors, held_targets) | {"top10_agreement": agreement}

    first = score(embed(student, held_ids, held_mask))
    epochs = BestEpoch(student, first, lambda record: record["cosine_mean"] + (record["top10_agreement"] or 0.0))
    for epoch in range(cfg.epochs):
        student.train()
        for b in length_batches(mask, cfg.batch_size, rng):
            width = int(mask[b].sum(1).max())
            out = student(torch.as_tensor(ids[b, :width]), torch.as_tensor(mask[b, :width]))
            loss = (1 - (out * y[b]).sum(-1)).mean() + cfg.structure_weight * structure_loss(out, y[b])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        epochs.add(epoch, loss, score(embed(student, held_ids, held_mask)), progress)
        if cfg.max_seconds and epochs.elapsed() > cfg.max_seconds:
            break
    best = epochs.best
    return epochs.restore(), {"history": epochs.history, "config": asdict(cfg), "start": first,
                              "held_out_cosine_mean": best["cosine_mean"],
                              "held_out_top10_agreement": best["top10_agreement"], "train_texts": len(texts),
                              "held_out_texts": len(held_texts)}
