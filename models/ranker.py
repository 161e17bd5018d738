"""The ranker: re-scores the retrieval short list with context and history features.

A DCN-style network (cross layers + a small MLP) over `runtime.features`
(the same code computes the features on the device). It is trained on logged
events: finish and like are positives, a skip is a negative, a partial play
counts by how much was watched, and a few retrieved-but-not-chosen items per
event are negatives too. It pairs with one retrieval model (its user and item
vectors are inputs), so it is trained after that model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgerec.data.schema import EVENT_CODE, Catalog, Dataset
from edgerec.data.split import Split, consumed_sequences
from edgerec.models.layers import gelu_mlp
from edgerec.models.scoring import ModelScorer, history_rows
from edgerec.runtime.features import MODALITIES, ItemTable, feature_count, ranker_features

DAY = 86_400


def item_table(catalog: Catalog, popularity: np.ndarray) -> ItemTable:
    """Integer attributes of the catalog for ranker features (codes follow sorted vocabularies)."""
    modality_code = {m: i for i, m in enumerate(MODALITIES)}
    series = catalog.text["series_id"]
    series_codes, series_vocab = catalog.codes("series_id")
    empty_series = series_vocab.index("") if "" in series_vocab else -2
    return ItemTable(
        modality=np.array([modality_code.get(m, -1) for m in catalog.text["modality"]], np.int64),
        duration=catalog.duration.astype(np.float32),
        popularity=np.asarray(popularity, np.float32),
        release_ts=catalog.release_ts.astype(np.int64),
        language=_codes_or_unknown(catalog, "language"),
        creator=_codes_or_unknown(catalog, "creator"),
        series=np.where(series_codes == empty_series, -1, series_codes).astype(np.int64) if series else series_codes,
        episode=catalog.episode.astype(np.int64),
    )


def _codes_or_unknown(catalog: Catalog, column: str) -> np.ndarray:
    codes, vocab = catalog.codes(column)
    if "" in vocab:
        codes = np.where(codes == vocab.index(""), -1, codes)
    return codes.astype(np.int64)


class Ranker(nn.Module):
    """features (B, F) float32 -> logit (B,). Feature scaling is baked in as buffers."""

    def __init__(self, n_features: int, hidden: int = 64, cross_layers: int = 2):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.cross = nn.ModuleList(nn.Linear(n_features, n_features) for _ in range(cross_layers))
        self.deep = gelu_mlp([n_features, hidden, hidden // 2])
        self.head = nn.Linear(n_features + hidden // 2, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x0 = (features - self.mean) * self.scale
        x = x0
        for layer in self.cross:
            x = x0 * layer(x) + x
        return self.head(torch.cat([x, F.gelu(self.deep(x0), approximate="tanh")], -1)).squeeze(-1)


@dataclass
class RankerConfig:
    events_per_user: int = 30  # most recent training events per user
    negatives_per_event: int = 2  # retrieved-but-not-chosen items per event
    retrieve: int = 50  # where those negatives come from
    epochs: int = 4
    batch_size: int = 512
    lr: float = 3e-3
    hidden: int = 64
    seed: int = 0


def event_labels(event: np.ndarray, value: np.ndarray) -> np.ndarray:
    return np.where(event == EVENT_CODE["skip"], 0.0,
                    np.where(event == EVENT_CODE["play"], np.clip(value, 0.0, 1.0), 1.0)).astype(np.float32)


def build_training_set(dataset: Dataset, split: Split, retrieval: ModelScorer, table: ItemTable,
                       cfg: RankerConfig) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of recent training events plus retrieved negatives."""
    rng = np.random.default_rng(cfg.seed)
    log = dataset.interactions
    seq, seq_events = consumed_sequences(log.take(np.flatnonzero(split.train_events)), dataset.n_users)
    index = np.flatnonzero(split.train_events & (log.event != EVENT_CODE["like"]))
    # keep each user's most recent events (the log is sorted by user, then time)
    users = log.user[index]
    new_run = np.r_[True, users[1:] != users[:-1]] if len(users) else np.zeros(0, bool)
    run_end = np.flatnonzero(np.r_[new_run[1:], True]) if len(users) else np.zeros(0, np.int64)
    rank_from_end = run_end[np.cumsum(new_run) - 1] - np.arange(len(users))
    index = index[rank_from_end < cfg.events_per_user]
    train_positions = np.flatnonzero(split.train_events)
    # how many consumed items precede each event (its history), via the event's place in the train log
    place = np.searchsorted(train_positions, index)
    u = log.user[index]
    before = np.array([np.searchsorted(seq_events[seq.indptr[x]:seq.indptr[x + 1]], p)
                       for x, p in zip(u, place)], np.int64)
    prefix = _prefix_sequences(seq, u, before)
    vectors = retrieval.user_vectors(np.arange(len(u)), prefix)
    item_matrix = retrieval.item_matrix()
    feats, labels = [], []
    labels_all = event_labels(log.event[index], log.value[index])
    for row in range(len(index)):
        hist = prefix.of(row)
        e = index[row]
        t = int(log.timestamp[e])
        hour = (t % DAY) / 3600.0
        scores = item_matrix @ vectors[row]
        scores[hist] = -np.inf
        top = np.argpartition(-scores, cfg.retrieve)[:cfg.retrieve]
        top = top[top != log.item[e]]
        negs = rng.choice(top, min(cfg.negatives_per_event, len(top)), replace=False)
        cands = np.r_[log.item[e], negs].astype(np.int64)
        feats.append(ranker_features(vectors[row], item_matrix[cands], cands, table, hist, hour,
                                     int(log.device[e]), t))
        labels.append(np.r_[labels_all[row], np.zeros(len(negs), np.float32)])
    return np.concatenate(feats), np.concatenate(labels).astype(np.float32)


def _prefix_sequences(seq, users: np.ndarray, lengths: np.ndarray):
    """A Sequences object whose row r is the first lengths[r] items of user users[r]."""
    from edgerec.data.split import Sequences

    indptr = np.r_[0, np.cumsum(lengths)]
    items = np.concatenate([seq.items[seq.indptr[u]:seq.indptr[u] + n] for u, n in zip(users, lengths)]) \
        if len(users) else np.zeros(0, np.int32)
    times = np.zeros(len(items), np.int64)
    return Sequences(indptr.astype(np.int64), items.astype(np.int32), times)


def train_ranker(features: np.ndarray, labels: np.ndarray, cfg: RankerConfig) -> tuple[Ranker, dict]:
    torch.manual_seed(cfg.seed)
    model = Ranker(features.shape[1], cfg.hidden)
    mean, std = features.mean(0), features.std(0)
    model.mean.copy_(torch.as_tensor(mean))
    model.scale.copy_(torch.as_tensor(1.0 / np.maximum(std, 1e-3)))
    rng = np.random.default_rng(cfg.seed)
    held = rng.random(len(labels)) < 0.1
    x, y = torch.as_tensor(features[~held]), torch.as_tensor(labels[~held])
    xv, yv = torch.as_tensor(features[held]), torch.as_tensor(labels[held])
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.as_tensor(rng.permutation(len(y)))
        for i in range(0, len(order), cfg.batch_size):
            b = order[i:i + cfg.batch_size]
            loss = F.binary_cross_entropy_with_logits(model(x[b]), y[b])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val = float(F.binary_cross_entropy_with_logits(model(xv), yv))
        history.append({"epoch": epoch + 1, "val_bce": val})
    return model.eval(), {"history": history, "examples": int(len(labels)), "positives": float(labels.mean())}


class RerankScorer:
    """Retrieval scores for the whole catalog, with the top `short_list` re-ordered by the ranker."""

    def __init__(self, retrieval: ModelScorer, ranker: Ranker, table: ItemTable, dataset: Dataset, split: Split,
                 phase: str, short_list: int = 100, name: str = "retrieval+ranker"):
        self.retrieval, self.ranker, self.table = retrieval, ranker, table
        self.short_list, self.name = short_list, name
        users, _ = split.targets(phase)
        events = split.target_events(phase)
        log = dataset.interactions
        self.context = {int(u): (int(log.timestamp[e]), int(log.device[e])) for u, e in zip(users, events)}

    @torch.no_grad()
    def score(self, users: np.ndarray, history) -> np.ndarray:
        vectors = self.retrieval.user_vectors(users, history)
        items = self.retrieval.item_matrix()
        scores = vectors @ items.T
        for row, user in enumerate(users):
            hist = history.of(user)
            s = scores[row].copy()
            s[hist] = -np.inf
            top = np.argpartition(-s, self.short_list)[:self.short_list]
            t, device = self.context[int(user)]
            feats = ranker_features(vectors[row], items[top], top, self.table, hist, (t % DAY) / 3600.0, device, t)
            logits = self.ranker(torch.as_tensor(feats)).numpy()
            scores[row, top] = 1e3 + logits  # the short list stays on top, in the ranker's order
        return scores


__all__ = ["Ranker", "RankerConfig", "RerankScorer", "build_training_set", "feature_count", "history_rows",
           "item_table", "train_ranker"]
