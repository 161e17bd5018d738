"""The ranker: re-scores the retrieval short list with context and history features.

A DCN-style network (cross layers + a small MLP) over `runtime.features`
(the same code computes the features on the device). It is trained on logged
events: finish and like are positives, a skip is a negative, a partial play
counts by how much was watched, and a few retrieved-but-not-chosen items per
event are negatives too. It pairs with one retrieval model (its user and item
vectors are inputs), so it is trained after that model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgerec.data.local_hours import dataset_zone, local_hours
from edgerec.data.schema import EVENT_CODE, Catalog, Dataset
from edgerec.data.split import Split, consumed_sequences
from edgerec.errors import ConfigError, DataError
from edgerec.models.layers import gelu_mlp
from edgerec.models.scoring import ModelScorer, history_rows
from edgerec.runtime.features import EXTRA, ItemTable, feature_count, ranker_features
from edgerec.runtime.vocab import MODALITIES

MIN_GROUPS = 20  # the fewest candidate groups a ranker or scorer is fitted on
SHORT_HISTORY = 5  # the training report also measures the gain on users' newest 5 items (a new user)


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


UNBOUNDED = 1e30  # the clamp of a ranker saved before the training range was kept: none


class Ranker(nn.Module):
    """features (B, F) float32 -> logit (B,). Feature scaling is baked in as buffers, and scaled features are
    clamped to the range training saw: the net never extrapolates (an hour a short log never had, or an
    item older than any in training, would otherwise reach the cross layers at hundreds of standard
    deviations and give logits of ~1e5 that int8 rounding scrambles)."""

    def __init__(self, n_features: int, hidden: int = 64, cross_layers: int = 2):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.register_buffer("low", torch.full((n_features,), -UNBOUNDED))
        self.register_buffer("high", torch.full((n_features,), UNBOUNDED))
        self.cross = nn.ModuleList(nn.Linear(n_features, n_features) for _ in range(cross_layers))
        self.deep = gelu_mlp([n_features, hidden, hidden // 2])
        self.head = nn.Linear(n_features + hidden // 2, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x0 = torch.minimum(torch.maximum((features - self.mean) * self.scale, self.low), self.high)
        x = x0
        for layer in self.cross:
            x = x0 * layer(x) + x
        return self.head(torch.cat([x, F.gelu(self.deep(x0), approximate="tanh")], -1)).squeeze(-1)


@dataclass
class RankerConfig:
    events_per_user: int = 30  # most recent training events per user
    max_events: int = 100_000  # events the examples come from at most (a seeded sample past it): each costs a
    # user vector and a catalog scan, and a 300k-user log's 1.5M recent events would take the quick demo hours
    negatives_per_event: int = 9  # retrieved-but-not-chosen items in each event's candidate group
    retrieve: int = 100  # the short list the ranker re-orders on the device (where negatives come from)
    skip_weight: float = 0.2  # weight of the pointwise term (finish/like = 1, skip = 0)
    epochs: int = 4
    batch_size: int = 256  # groups per step
    lr: float = 3e-3
    hidden: int = 64
    seed: int = 0


@dataclass
class RankerExamples:
    groups: np.ndarray  # (G, 1 + negatives, F): the consumed item first, then retrieved negatives
    weights: np.ndarray  # (G,) how much each consumption counts (finish/like more than a partial play)
    engaged: np.ndarray  # (G,) 1 for finish/like, the watched share for a play
    skipped: np.ndarray  # (S, F): items the user skipped, in their context


ENGAGEMENT_WEIGHT = {EVENT_CODE["finish"]: 1.0, EVENT_CODE["like"]: 1.0, EVENT_CODE["rate"]: 1.0,
                     EVENT_CODE["play"]: 0.6}


def build_training_set(dataset: Dataset, split: Split, retrieval: ModelScorer, table: ItemTable,
                       cfg: RankerConfig, featurize: Featurize | None = None) -> RankerExamples:
    """Candidate groups of recent training events: what the user chose among what retrieval offered.

    Each consumption (play, finish, like) whose item is in the retrieval short
    list forms a group with short-list items the user did not choose (so the
    ranker learns on the very distribution it re-orders on the device); each
    skip is kept as a pointwise negative.
    """
    if cfg.max_events < 1:
        raise ConfigError(f"a ranker learns from at least one event (max_events {cfg.max_events})")
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
    if len(index) > cfg.max_events:
        index = np.sort(rng.choice(index, cfg.max_events, replace=False))
    train_positions = np.flatnonzero(split.train_events)
    # how many consumed items precede each event (its history), via the event's place in the train log
    place = np.searchsorted(train_positions, index)
    u = log.user[index]
    before = np.array([np.searchsorted(seq_events[seq.indptr[x]:seq.indptr[x + 1]], p)
                       for x, p in zip(u, place)], np.int64)
    prefix = _prefix_sequences(seq, u, before)
    vectors = retrieval.user_vectors(np.arange(len(u)), prefix)
    item_matrix = retrieval.item_matrix()
    featurize = featurize or ranker_featurizer(table)
    likes = LikesBefore(dataset)
    hours = local_hours(log.timestamp[index], dataset_zone(dataset))  # the log's local time, as on the device
    groups, weights, engaged, skipped = [], [], [], []
    for row in range(len(index)):
        hist = prefix.of(row)
        e = index[row]
        if len(hist) == 0:
            continue
        t = int(log.timestamp[e])
        context = (float(hours[row]), int(log.device[e]), t)
        item = int(log.item[e])
        liked = likes.rows(int(log.user[e]), t)
        if log.event[e] == EVENT_CODE["skip"]:
            skipped.append(featurize(vectors[row], item_matrix[[item]], np.array([item]), hist, *context, liked)[0])
            continue
        scores = item_matrix @ vectors[row]
        scores[hist] = -np.inf
        # an item consumed before (a finish after its play) is never ranked on the device: no group of it (with
        # under `retrieve` unseen items it passed the short-list test, and 59% of a small catalog's positives
        # were such items)
        if not np.isfinite(scores[item]) or (scores > scores[item]).sum() >= cfg.retrieve:
            continue  # not in the short list: the ranker never sees such an item on the device
        scores[item] = -np.inf
        top = short_list(scores, cfg.retrieve)
        if len(top) < cfg.negatives_per_event:
            continue
        negatives = rng.choice(top, cfg.negatives_per_event, replace=False)
        cands = np.r_[item, negatives].astype(np.int64)
        groups.append(featurize(vectors[row], item_matrix[cands], cands, hist, *context, liked))
        weights.append(ENGAGEMENT_WEIGHT.get(int(log.event[e]), 1.0))
        engaged.append(1.0 if log.event[e] != EVENT_CODE["play"] else float(np.clip(log.value[e], 0, 1)))
    if not groups:
        raise DataError(f"no examples to train a ranker or scorer on: no consumed item came with "
                        f"{cfg.negatives_per_event} unseen items in retrieval's short list to contrast it with "
                        f"({dataset.n_items} items in the catalog); a re-ranker needs more items than its users have "
                        "consumed, and users with several events")
    width = groups[0].shape[-1]
    return RankerExamples(np.stack(groups).astype(np.float32), np.asarray(weights, np.float32),
                          np.asarray(engaged, np.float32),
                          np.stack(skipped).astype(np.float32) if skipped else np.zeros((0, width), np.float32))


def short_list(scores: np.ndarray, k: int) -> np.ndarray:
    """The rows of the `k` best scores, those at -inf (seen items) left out: in a catalog not much larger
    than the list they reach it, and a catalog no larger is the whole list."""
    top = np.argpartition(-scores, k)[:k] if k < len(scores) else np.arange(len(scores))
    return top[np.isfinite(scores[top])]


# features of candidates: (user vector, their vectors, their rows, history, hour, device, now, liked rows)
Featurize = Callable[..., np.ndarray]


def ranker_featurizer(table: ItemTable) -> Featurize:
    def featurize(user, items, candidates, history, hour, device, now, _liked):
        return ranker_features(user, items, candidates, table, history, hour, device, now)
    return featurize


class LikesBefore:
    """Each user's `like` events in the log: the items a user had liked before a moment."""

    def __init__(self, dataset: Dataset):
        log = dataset.interactions
        at = np.flatnonzero(log.event == EVENT_CODE["like"])
        order = np.lexsort((log.timestamp[at], log.user[at]))
        at = at[order]
        self.users, self.times, self.items = log.user[at], log.timestamp[at], log.item[at].astype(np.int64)

    def rows(self, user: int, before: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.users, user, "left"), np.searchsorted(self.users, user, "right")
        end = lo + int(np.searchsorted(self.times[lo:hi], before, "left"))
        return self.items[lo:end]


def _prefix_sequences(seq, users: np.ndarray, lengths: np.ndarray):
    """A Sequences object whose row r is the first lengths[r] items of user users[r]."""
    from edgerec.data.split import Sequences

    indptr = np.r_[0, np.cumsum(lengths)]
    items = np.concatenate([seq.items[seq.indptr[u]:seq.indptr[u] + n] for u, n in zip(users, lengths)]) \
        if len(users) else np.zeros(0, np.int32)
    times = np.zeros(len(items), np.int64)
    return Sequences(indptr.astype(np.int64), items.astype(np.int32), times)


def feature_scale(flat: np.ndarray) -> np.ndarray:
    """1 / std of each feature column, and 0 for a column constant in training: nothing was learnt
    from it, and a value the training never had (a device type a log without devices never names)
    would otherwise enter the net scaled 1,000-fold and scramble the list (measured on MovieLens:
    HR@10 on the device 0.20 -> 0.05 when the app said "tv")."""
    std = flat.std(0)
    return np.where(std > 1e-6, 1.0 / np.maximum(std, 1e-3), 0.0).astype(np.float32)


def check_enough_groups(count: int, model: str) -> None:
    """A few groups fit noise: a model fitted on them would only look trained."""
    if count < MIN_GROUPS:
        raise DataError(f"{count} candidate group{'' if count == 1 else 's'} to fit the {model} on, and it needs "
                        f"at least {MIN_GROUPS}: use more logged events (--events-per-user, more users) or leave "
                        f"the {model} out (retrieval alone ranks)")


def train_ranker(examples: RankerExamples, cfg: RankerConfig) -> tuple[Ranker, dict]:
    """Listwise softmax over each group (the chosen item first), plus a pointwise finish-vs-skip term."""
    check_enough_groups(len(examples.groups), "ranker")
    torch.manual_seed(cfg.seed)
    groups = examples.groups
    width = groups.shape[-1]
    model = Ranker(width, cfg.hidden)
    flat = groups.reshape(-1, width)
    center, scale = flat.mean(0), feature_scale(flat)
    scaled = (flat - center) * scale
    for buffer, value in ((model.mean, center), (model.scale, scale), (model.low, scaled.min(0)),
                          (model.high, scaled.max(0))):
        buffer.copy_(torch.as_tensor(value))
    rng = np.random.default_rng(cfg.seed)
    held = rng.random(len(groups)) < 0.1
    if not held.any() or held.all():  # 20 groups held none out 12% of the time, and the validation pass failed
        held[:] = False
        held[rng.integers(len(groups))] = True
    x, w, eng = (torch.as_tensor(a[~held]) for a in (groups, examples.weights, examples.engaged))
    xv = torch.as_tensor(groups[held])
    skips = torch.as_tensor(examples.skipped)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.as_tensor(rng.permutation(len(x)))
        for i in range(0, len(order), cfg.batch_size):
            b = order[i:i + cfg.batch_size]
            logits = model(x[b].reshape(-1, width)).reshape(len(b), -1)
            listwise = (F.cross_entropy(logits, torch.zeros(len(b), dtype=torch.long), reduction="none") * w[b]).mean()
            pointwise_logits, labels = logits[:, 0], eng[b]
            if len(skips):
                s = skips[torch.randint(0, len(skips), (len(b),))]
                pointwise_logits = torch.cat([pointwise_logits, model(s)])
                labels = torch.cat([labels, torch.zeros(len(b))])
            loss = listwise + cfg.skip_weight * F.binary_cross_entropy_with_logits(pointwise_logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(xv.reshape(-1, width)).reshape(len(xv), -1)
            rank = (logits > logits[:, :1]).sum(1).float()
        history.append({"epoch": epoch + 1, "val_group_mrr": float((1.0 / (rank + 1)).mean()),
                        "val_group_top1": float((rank == 0).float().mean())})
    cosine = xv[:, :, width - EXTRA - 1]  # the retrieval score is one of the features
    retrieval_rank = (cosine > cosine[:, :1]).sum(1).float()
    return model.eval(), {"history": history, "groups": int(len(groups)), "skips": int(len(examples.skipped)),
                          "candidates_per_group": int(groups.shape[1]),
                          "val_group_mrr_retrieval_order": float((1.0 / (retrieval_rank + 1)).mean())}


def ranker_gain(dataset: Dataset, split: Split, retrieval: ModelScorer, ranker: Ranker, table: ItemTable,
                phase: str = "val", users: int = 1000) -> dict:
    """NDCG@10 of retrieval alone and re-ranked, on the same users (validation by default: decide there),
    and the same from each user's newest SHORT_HISTORY items alone (what a short history gets)."""
    from edgerec.models.evaluation import Evaluator, NewestOnly

    evaluator = Evaluator(split, dataset.catalog)
    rows = np.arange(min(users, len(split.val_users)))
    rerank = RerankScorer(retrieval, ranker, table, dataset, split, phase)
    out = {"phase": phase, "users": int(len(rows))}
    for suffix, plain, ranked in (("", retrieval, rerank),
                                  (f", newest {SHORT_HISTORY}", NewestOnly(retrieval, SHORT_HISTORY),
                                   NewestOnly(rerank, SHORT_HISTORY))):
        a, b = evaluator.evaluate(plain, phase, rows=rows), evaluator.evaluate(ranked, phase, rows=rows)
        out |= {f"NDCG@10 retrieval only{suffix}": a["NDCG@10"], f"NDCG@10 with ranker{suffix}": b["NDCG@10"],
                f"HR@10 retrieval only{suffix}": a["HR@10"], f"HR@10 with ranker{suffix}": b["HR@10"]}
    return out


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
        self.zone = dataset_zone(dataset)  # hours of day in the log's local time, as the device reads its own

    def rerank(self, user: int, vector: np.ndarray, items: np.ndarray, top: np.ndarray, hist: np.ndarray,
               t: int, device: int) -> np.ndarray:
        """Scores of the short list `top` (higher first); the deep ranker's logits here."""
        feats = ranker_features(vector, items[top], top, self.table, hist, self.hour(t), device, t)
        return self.ranker(torch.as_tensor(feats)).numpy()

    def hour(self, t: int) -> float:
        """Hour of day of the time `t` in the data set's local time (data/local_hours.py)."""
        return float(local_hours(t, self.zone))

    @torch.no_grad()
    def score(self, users: np.ndarray, history) -> np.ndarray:
        vectors = self.retrieval.user_vectors(users, history)
        items = self.retrieval.item_matrix()
        scores = vectors @ items.T
        for row, user in enumerate(users):
            hist = history.of(user)
            s = scores[row].copy()
            s[hist] = -np.inf
            top = short_list(s, self.short_list)
            if not top.size:
                continue
            t, device = self.context[int(user)]
            logits = self.rerank(int(user), vectors[row], items, top, hist, t, device)
            scores[row, top] = 1e3 + logits  # the short list stays on top, in the ranker's order
        return scores


__all__ = ["Ranker", "RankerConfig", "RerankScorer", "build_training_set", "feature_count", "history_rows",
           "item_table", "train_ranker"]
