"""Training the interpretable scorer on the host, measuring it, and saving it as plain numbers.

The examples are the ranker's candidate groups (what the user chose among the
retrieval short list, see models/ranker.py) with the scorer's named features;
the model is a listwise logistic (softmax) regression with an L2 penalty, fitted
by L-BFGS on standardised features. Saved as one JSON file: names, weights,
means, scales, intercept and the measured NDCG@10 (no code, no pickle).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgerec.data.schema import Dataset
from edgerec.data.split import Split
from edgerec.errors import ModelError
from edgerec.models.checkpoint import path_from, with_path_in
from edgerec.models.ranker import (
    LikesBefore,
    RankerConfig,
    RerankScorer,
    build_training_set,
    check_enough_groups,
    item_table,
)
from edgerec.models.scoring import ModelScorer
from edgerec.runtime.atomic import write_file
from edgerec.runtime.checks import file_name
from edgerec.runtime.scorer import (
    FEATURES,
    SCORER_VERSION,
    Featurizer,
    LinearScorer,
    TagCodes,
    scorer_names,
)

SCORER_FILE = "scorer.json"


@dataclass
class ScorerConfig:
    l2: float = 1e-3  # penalty on the standardised weights (keeps unused context cells at zero)
    steps: int = 100  # L-BFGS iterations


def host_featurizer(dataset: Dataset, table, item_matrix: np.ndarray) -> Featurizer:
    codes, vocab = dataset.catalog.codes("genre")
    if "" in vocab:
        codes = np.where(codes == vocab.index(""), -1, codes)
    tags = dataset.catalog.tags
    return Featurizer(table, np.asarray(codes, np.int64), TagCodes(lambda row: tags[row], len(tags)),
                      lambda rows: item_matrix[rows])


def train_scorer(groups: np.ndarray, weights: np.ndarray, cfg: ScorerConfig) -> tuple[LinearScorer, dict]:
    """Fit the listwise logistic regression: groups (G, 1 + negatives, F), the chosen item first."""
    check_enough_groups(len(groups), "scorer")
    flat = groups.reshape(-1, groups.shape[-1]).astype(np.float64)
    mean = flat.mean(0)
    std = flat.std(0)
    scale = np.where(std > 1e-6, std, 1.0)
    x = torch.as_tensor((groups - mean) / scale, dtype=torch.float64)
    w = torch.as_tensor(weights, dtype=torch.float64)
    theta = torch.zeros(groups.shape[-1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([theta], max_iter=cfg.steps, line_search_fn="strong_wolfe")

    def objective():
        logits = x @ theta
        return (torch.nn.functional.cross_entropy(logits, torch.zeros(len(x), dtype=torch.long),
                                                  reduction="none") * w).mean() + cfg.l2 * (theta ** 2).sum()

    def closure():
        optimizer.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        top1 = float(((x @ theta).argmax(1) == 0).double().mean())
        loss = float(objective())
    names = scorer_names(groups.shape[-1] - len(FEATURES))
    scorer = LinearScorer(names, theta.detach().numpy().copy(), mean, scale, 0.0)
    return scorer, {"groups": int(len(groups)), "loss": loss, "train_group_top1": top1}


class ScorerRerank(RerankScorer):
    """Retrieval for the whole catalog with the short list re-ordered by the interpretable scorer."""

    def __init__(self, retrieval: ModelScorer, scorer: LinearScorer, table, dataset: Dataset, split: Split,
                 phase: str, name: str = "retrieval+scorer"):
        super().__init__(retrieval, None, table, dataset, split, phase, name=name)
        self.scorer, self.likes = scorer, LikesBefore(dataset)
        self.featurize = host_featurizer(dataset, table, retrieval.item_matrix())

    def rerank(self, user, vector, items, top, hist, t, device) -> np.ndarray:
        feats = self.featurize(vector, items[top], top, hist, self.hour(t), device, t, self.likes.rows(user, t))
        return self.scorer.score(feats)


def compare(dataset: Dataset, split: Split, retrieval: ModelScorer, scorer: LinearScorer, table,
            ranker=None, phase: str = "val", users: int = 1000) -> dict:
    """NDCG@10 of the retrieval order, the scorer and (when given) the deep ranker, on the same users."""
    from edgerec.models.evaluation import Evaluator

    evaluator = Evaluator(split, dataset.catalog)
    rows = np.arange(min(users, len(split.val_users)))
    out = {"phase": phase, "users": int(len(rows)),
           "NDCG@10 retrieval only": evaluator.evaluate(retrieval, phase, rows=rows)["NDCG@10"],
           "NDCG@10 with scorer": evaluator.evaluate(
               ScorerRerank(retrieval, scorer, table, dataset, split, phase), phase, rows=rows)["NDCG@10"]}
    if ranker is not None:
        out["NDCG@10 with ranker"] = evaluator.evaluate(
            RerankScorer(retrieval, ranker, table, dataset, split, phase), phase, rows=rows)["NDCG@10"]
    return out


def fit_scorer(dataset: Dataset, split: Split, retrieval: str | Path, out: str | Path,
               ranker_cfg: RankerConfig | None = None, cfg: ScorerConfig | None = None,
               ranker: str | Path | None = None, phases: tuple[str, ...] = ("val",),
               progress: Callable[[str], None] | None = None) -> dict:
    """Train the scorer for the recommender at `retrieval`, compare it (with `ranker` when given), save it."""
    from edgerec.models.checkpoint import load_model
    from edgerec.models.evaluation import train_popularity

    say = progress or (lambda _m: None)
    model, _ = load_model(retrieval)
    scorer_in = ModelScorer(model)
    table = item_table(dataset.catalog, train_popularity(split))
    featurize = host_featurizer(dataset, table, scorer_in.item_matrix())
    say("building scorer examples from logged events")
    examples = build_training_set(dataset, split, scorer_in, table, ranker_cfg or RankerConfig(), featurize)
    say(f"fitting the scorer on {len(examples.groups):,} candidate groups")
    scorer, info = train_scorer(examples.groups, examples.weights, cfg or ScorerConfig())
    deep = None
    if ranker is not None:
        from edgerec.models.persist import load_ranker

        deep, _ = load_ranker(ranker)
    for phase in dict.fromkeys(phases):
        info["validation" if phase == "val" else phase] = compare(dataset, split, scorer_in, scorer, table, deep, phase)
    save_scorer(out, scorer, retrieval, info)
    return info


def save_scorer(folder: str | Path, scorer: LinearScorer, retrieval: str | Path, info: dict) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"kind": "linear-scorer", "version": SCORER_VERSION, "features": list(scorer.names),
               "weights": scorer.weights.tolist(), "mean": scorer.mean.tolist(), "scale": scorer.scale.tolist(),
               "intercept": scorer.intercept, "retrieval": path_from(folder, retrieval), "info": info}
    write_file(folder / SCORER_FILE, json.dumps(payload, indent=1))
    return folder


def load_scorer(folder: str | Path) -> tuple[LinearScorer, dict]:
    path, name = Path(folder) / SCORER_FILE, file_name(folder)
    if not path.is_file():
        raise ModelError(f"{name} holds no {SCORER_FILE}; train one with `edgerec scorer train`")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:  # a damaged or unreadable file (saves are whole since 2026-12)
        raise ModelError(f"{name}/{SCORER_FILE} cannot be read ({type(exc).__name__}); train the scorer again with "
                         "`edgerec scorer train`") from None
    if not isinstance(payload, dict) or payload.get("version") != SCORER_VERSION:
        version = payload.get("version") if isinstance(payload, dict) else None
        raise ModelError(f"{name} holds a scorer of feature version {version}, not {SCORER_VERSION}; "
                         "train it again with `edgerec scorer train`")
    try:
        scorer = LinearScorer(tuple(payload["features"]), np.array(payload["weights"], np.float64),
                              np.array(payload["mean"], np.float64), np.array(payload["scale"], np.float64),
                              float(payload["intercept"]))
    except KeyError as exc:
        raise ModelError(f"{name}/{SCORER_FILE} has no {exc.args[0]!r}; train the scorer again with "
                         "`edgerec scorer train`") from None
    except (TypeError, ValueError) as exc:  # a hand-edited or damaged file: a NaN weight, a short mean
        raise ModelError(f"{name}/{SCORER_FILE} is not a usable scorer ({exc}); train it again with "
                         "`edgerec scorer train`") from None
    return scorer, with_path_in(folder, payload, "retrieval")
