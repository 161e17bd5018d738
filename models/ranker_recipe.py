"""The ranker recipe: from a data set and a retrieval checkpoint to a saved ranker and its verdict.

Examples from logged events -> training -> NDCG@10 with and without
re-ranking on the same users -> the checkpoint. The ranker is worth shipping
only if it helps on validation; the test figure is for reporting.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgerec.data.schema import Dataset
from edgerec.data.split import Split
from edgerec.models.checkpoint import load_model, require_same_catalog
from edgerec.models.evaluation import train_popularity
from edgerec.models.persist import save_ranker
from edgerec.models.ranker import (
    RankerConfig,
    build_training_set,
    item_table,
    ranker_gain,
    train_ranker,
)
from edgerec.models.scoring import ModelScorer


def fit_ranker(dataset: Dataset, split: Split, retrieval: str | Path, out: str | Path, cfg: RankerConfig,
               phases: tuple[str, ...] = ("val",), progress: Callable[[str], None] | None = None) -> dict:
    """Train a ranker for the recommender at `retrieval`, measure it on `phases`, save it at `out`.

    Returns the training info with `validation` (and `test` when asked) gains and `ships`:
    whether re-ranking beats retrieval alone on validation NDCG@10.
    """
    say = progress or (lambda _m: None)
    model, _ = load_model(retrieval)
    require_same_catalog(model, dataset, f"the retrieval model {Path(retrieval).name}")
    scorer = ModelScorer(model)
    table = item_table(dataset.catalog, train_popularity(split))
    say("building ranker examples from logged events")
    examples = build_training_set(dataset, split, scorer, table, cfg)
    say(f"training on {len(examples.groups):,} candidate groups")
    ranker, info = train_ranker(examples, cfg)
    for phase in dict.fromkeys(("val",) + tuple(phases)):  # validation always: it decides
        info["validation" if phase == "val" else phase] = ranker_gain(dataset, split, scorer, ranker, table, phase)
    val = info["validation"]
    info["ships"] = val["NDCG@10 with ranker"] > val["NDCG@10 retrieval only"]
    save_ranker(out, ranker, retrieval, info)
    return info
