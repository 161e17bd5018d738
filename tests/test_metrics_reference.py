"""An outside check of the offline metrics: a plain reference written from the textbook definitions
(one relevant item per user: HR@k = [pos <= k], NDCG@k = 1 / log2(pos + 1), MRR@k = 1 / pos, 1-based pos
in a full sort of the unseen items; coverage, self-information novelty, Gini of exposure, 1 - Jaccard
diversity), computed from the CSV text itself, against `edgerec evaluate`'s Evaluator on hand-made logs
with the awkward cases of real ones: duplicate events, equal timestamps (file order decides), re-plays of
an old item as the last event, skips, a user with one event, a catalog item nobody touched, k past the
catalog, and a scorer that scores everything equal.
"""

import math

import numpy as np
import pytest
from scipy.stats import rankdata

from edgerec.data.loaders import import_dataset
from edgerec.data.split import leave_last_out
from edgerec.models.evaluation import Evaluator

LOG = """user_id,item_id,timestamp,event,value
a,i3,100,play,1
a,i1,100,play,1
a,i1,100,play,1
a,i4,200,skip,0
a,i5,300,play,1
a,i2,300,finish,1
a,i3,400,play,1
b,i5,50,play,1
b,i4,60,like,1
b,i2,60,play,1
b,i6,70,play,1
b,i6,80,play,1
c,i2,10,play,1
d,i1,5,play,1
d,i6,5,play,1
d,i3,5,play,1
e,i4,1,play,1
e,i5,2,play,1
e,i1,3,play,1
e,i6,4,play,1
"""
ITEMS = """item_id,title,genre,tags
i1,One,drama,x|y
i2,Two,comedy,x
i3,Three,drama,
i4,Four,horror,y|z
i5,Five,,
i6,Six,comedy,z
i7,Seven,drama,x
"""


def _dataset(tmp_path):
    (tmp_path / "log.csv").write_text(LOG)
    (tmp_path / "items.csv").write_text(ITEMS)
    return import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.csv")


def _reference_split():
    """Per user: the distinct consumed items in (time, file line) order; skips are not consumption."""
    rows = [line.split(",") for line in LOG.strip().splitlines()[1:]]
    events = {}
    for line, (user, item, ts, event, _) in enumerate(rows):
        events.setdefault(user, []).append((int(ts), line, item, event))
    seqs = {}
    for user, evs in events.items():
        seq = []
        for _, _, item, event in sorted(evs):
            if event != "skip" and item not in seq:
                seq.append(item)
        seqs[user] = seq
    return seqs


def _reference_metrics(seqs, items, tags, score, k):
    """The metrics of the test phase, each from its definition."""
    train_pop = {i: 0 for i in items}
    for seq in seqs.values():
        for item in (seq[:-2] if len(seq) >= 3 else seq):
            train_pop[item] += 1
    hr, ndcg, mrr, lists = [], [], [], []
    for user, seq in seqs.items():
        if len(seq) < 3:
            continue
        history, target = seq[:-1], seq[-1]
        unseen = sorted((i for i in items if i not in history), key=lambda i: -score(user, i))
        pos = unseen.index(target) + 1
        hr.append(float(pos <= k))
        ndcg.append(1 / math.log2(pos + 1) if pos <= k else 0.0)
        mrr.append(1 / pos if pos <= k else 0.0)
        lists.append(unseen[:k])
    shown = [i for lst in lists for i in lst]
    counts = np.sort([shown.count(i) for i in items]).astype(float)
    n = len(items)
    gini = float(np.sum((2 * np.arange(1, n + 1) - n - 1) * counts) / (n * counts.sum()))
    pairs = [1 - len(tags[x] & tags[y]) / len(tags[x] | tags[y])  # a pair with an untagged item says nothing
             for lst in lists for a, x in enumerate(lst) for y in lst[a + 1:] if tags[x] and tags[y]]
    pop = np.array([train_pop[i] for i in items])
    percentile = dict(zip(items, (rankdata(pop, "average") - 1) / (n - 1)))  # ties share their mean rank
    return {f"HR@{k}": np.mean(hr), f"NDCG@{k}": np.mean(ndcg), f"MRR@{k}": np.mean(mrr),
            f"coverage@{k}": len(set(shown)) / n,
            f"novelty@{k}": np.mean([-math.log2(max(train_pop[i], 1) / len(seqs)) for i in shown]),
            f"pop_percentile@{k}": np.mean([percentile[i] for i in shown]), f"gini@{k}": gini, f"diversity@{k}": np.mean(pairs) if pairs else None}


def _score(user, item):
    """Distinct continuous scores per (user, item), so the reference's plain sort has no ties."""
    return math.sin(7.1 * (ord(user) - 96) + 3.3 * int(item[1:]))


class _Scorer:
    name = "reference"

    def __init__(self, dataset, score):
        self.dataset, self.fn = dataset, score

    def score(self, users, history):
        return np.array([[self.fn(self.dataset.user_ids[u], i) for i in self.dataset.catalog.item_ids]
                         for u in users])


def test_the_split_follows_file_order_on_equal_times_and_first_consumptions(tmp_path):
    dataset = _dataset(tmp_path)
    split = leave_last_out(dataset)
    seqs = _reference_split()
    ids, users = dataset.catalog.item_ids, dataset.user_ids
    assert seqs == {"a": ["i3", "i1", "i5", "i2"], "b": ["i5", "i4", "i2", "i6"], "c": ["i2"],
                    "d": ["i1", "i6", "i3"], "e": ["i4", "i5", "i1", "i6"]}
    got = {users[u]: (ids[v], ids[t]) for u, v, t in zip(split.test_users, split.val_items, split.test_items)}
    assert got == {u: (s[-2], s[-1]) for u, s in seqs.items() if len(s) >= 3}
    history = split.history("test")
    for u, t in zip(split.test_users, split.test_items):
        assert t not in history.of(u)  # a re-played old item is never the held-out one


@pytest.mark.parametrize("k", [1, 2, 3, 10])
def test_evaluator_matches_the_reference_metrics(tmp_path, k):
    dataset = _dataset(tmp_path)
    seqs = _reference_split()
    items = dataset.catalog.item_ids
    assert "i7" in items  # in the catalog, never in the log
    tags = {i: set(filter(None, [g] + t.split("|")))
            for i, g, t in (line.split(",")[0::2][:1] + line.split(",")[2:4] for line in ITEMS.splitlines()[1:])}
    want = _reference_metrics(seqs, items, tags, _score, k)
    got = Evaluator(leave_last_out(dataset), dataset.catalog, k=k).evaluate(_Scorer(dataset, _score))
    assert got["users"] == 4
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_a_scorer_that_scores_everything_equal_gets_chance_not_the_first_items(tmp_path):
    """Ties go by a per-user key, not by item index: a flat scorer's held-out items are ranked as by a
    random order (the reference mean over every order of the tied items), whatever their position in
    the catalog. With the lower index first, the held-out items early in the catalog were hits."""
    n_items, users, k = 200, 3000, 10
    rng = np.random.default_rng(0)
    lines = ["user_id,item_id,timestamp,event,value"]
    for u in range(users):  # held-out items among the first 20 of the catalog, histories among the rest
        picks = list(rng.choice(np.arange(20, n_items), 3, replace=False)) + [rng.integers(0, 20)]
        lines += [f"u{u},i{i:03d},{n},play,1" for n, i in enumerate(picks)]
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "items.csv").write_text("item_id\n" + "\n".join(f"i{i:03d}" for i in range(n_items)) + "\n")
    dataset = import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.csv")
    flat = _Scorer(dataset, lambda user, item: 0.5)
    got = Evaluator(leave_last_out(dataset), dataset.catalog, k=k).evaluate(flat)
    unseen = n_items - 3  # every test history holds three items
    chance = k / unseen
    chance_ndcg = sum(1 / math.log2(p + 1) for p in range(1, k + 1)) / unseen
    se = math.sqrt(chance * (1 - chance) / users)
    assert abs(got[f"HR@{k}"] - chance) < 4 * se  # lower index first: 1.0
    assert got[f"NDCG@{k}"] == pytest.approx(chance_ndcg, abs=4 * se)
    assert got[f"coverage@{k}"] > 0.9  # each user's own order: not the same ten items for everyone
