"""The ranker's training report says what it does for a short history, not only for whole ones (a reader
asking "does the ranker hurt new users?" had to replay users through the device to find out)."""

from __future__ import annotations

import numpy as np

from edgerec.data.split import Sequences
from edgerec.models.evaluation import NewestOnly


def sequences(rows: list[list[int]]) -> Sequences:
    indptr = np.r_[0, np.cumsum([len(r) for r in rows])].astype(np.int64)
    items = np.array([i for r in rows for i in r], np.int32)
    return Sequences(indptr, items, items.astype(np.int64) * 10)


def test_newest_keeps_each_users_last_items_in_order():
    seq = sequences([[1, 2, 3, 4, 5, 6, 7], [8], [], [9, 10, 11]])
    short = seq.newest(3)
    assert [short.of(u).tolist() for u in range(4)] == [[5, 6, 7], [8], [], [9, 10, 11]]
    assert short.times.tolist() == [50, 60, 70, 80, 90, 100, 110]  # times follow their items
    assert [seq.newest(100).of(u).tolist() for u in range(4)] == [seq.of(u).tolist() for u in range(4)]


def test_the_short_history_scorer_gives_its_model_the_newest_items_only():
    seen = {}

    class Recorder:
        name = "model"

        def score(self, users, history):
            seen.update({int(u): history.of(int(u)).tolist() for u in users})
            return np.zeros((len(users), 20))

    history = sequences([list(range(12)), [3, 4], [7, 8, 9, 10, 11, 12]])
    NewestOnly(Recorder(), 5).score(np.array([0, 1, 2]), history)
    assert seen == {0: [7, 8, 9, 10, 11], 1: [3, 4], 2: [8, 9, 10, 11, 12]}
    assert "newest 5" in NewestOnly(Recorder(), 5).name


def test_the_ranker_report_has_the_short_history_gain(tmp_path, tiny_bundle):
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset
    from edgerec.models import ranker as ranker_module
    from edgerec.models.ranker import RankerConfig
    from edgerec.models.ranker_recipe import fit_ranker

    data = load_dataset(tiny_bundle.parent / "data")
    split = leave_last_out(data)
    info = fit_ranker(data, split, tiny_bundle.parent / "ckpt", tmp_path / "ranker", RankerConfig(epochs=1))
    gain, short = info["validation"], ranker_module.SHORT_HISTORY
    for model in ("retrieval only", "with ranker"):
        for metric in ("NDCG@10", "HR@10"):
            assert 0 <= gain[f"{metric} {model}, newest {short}"] <= 1
    # the short figures come from short histories: longer ones than the tiny world's users have change nothing,
    # and one item each changes the retrieval order's figure
    lengths = split.train.lengths()[split.val_users]
    assert lengths.max() > 1
    scorer_gain = _gain_at(data, split, tiny_bundle, tmp_path / "ranker", int(lengths.max()))
    assert scorer_gain["NDCG@10 retrieval only, newest"] == gain["NDCG@10 retrieval only"]
    assert scorer_gain["NDCG@10 with ranker, newest"] == gain["NDCG@10 with ranker"]
    one = _gain_at(data, split, tiny_bundle, tmp_path / "ranker", 1)
    assert one["NDCG@10 retrieval only, newest"] != gain["NDCG@10 retrieval only"]


def _gain_at(data, split, tiny_bundle, ranker_dir, n: int) -> dict:
    """ranker_gain with SHORT_HISTORY set to n, its short figures under keys without the number."""
    from edgerec.models import ranker as ranker_module
    from edgerec.models.checkpoint import load_model
    from edgerec.models.evaluation import train_popularity
    from edgerec.models.persist import load_ranker
    from edgerec.models.scoring import ModelScorer

    model, _ = load_model(tiny_bundle.parent / "ckpt")
    ranker, _ = load_ranker(ranker_dir)
    table = ranker_module.item_table(data.catalog, train_popularity(split))
    kept = ranker_module.SHORT_HISTORY
    ranker_module.SHORT_HISTORY = n
    try:
        out = ranker_module.ranker_gain(data, split, ModelScorer(model), ranker, table)
    finally:
        ranker_module.SHORT_HISTORY = kept
    return {key.replace(f", newest {n}", ", newest"): value for key, value in out.items()}
