"""Cross-domain transfer study: users with history in a source domain (audio) get recommendations in
a target domain (video) whose history is hidden, by each method the device has, against baselines.

Protocol: users with at least `min_items` consumed items in both domains are split once (seeded);
the test users' target history is removed from everything fit on the target domain and is the
ground truth (every target item they consumed is relevant; full ranking over the target catalog).
Each domain's model is PureSVD item factors fit on its own events (the two apps train apart);
the content space is one encoder over both catalogs' texts (hashed words by default).

    popularity   the target's most consumed items
    target-only  the target model with no history: its average training user
    content      pooled source history in the shared content space (runtime/transfer.py)
    mapping      pooled source history through a linear bridge fit on the other overlapping users
    direct       pooled source history through a bridge fit to the training users' target consumption
                 itself, plus its per-item prior (their target popularity): fit on training users only
    direct+content  the same, the bridge mapping the history pooled in the source's item space and in
                 the shared content space side by side (a bridge with input "items+content")
    oracle       (synthetic worlds) the generator's true tastes plus popularity: how far any method could go
    oracle (source taste)  (coupled synthetic worlds, audio -> video) the same, with the video taste
                 read off the user's true audio taste through the known pairing: how far a transfer of
                 taste could go; about the oracle at coupling 1, about popularity at coupling 0

Two yardsticks beside the methods: the ceiling (a list with every hidden item first scores NDCG 1, so
1 / popularity's NDCG is the most any method can gain over it), and an in-domain reference: the
target model given a random half of each test user's own target history, ranking the other half,
against popularity on the same halves (what knowing the target history itself would give).

With a synthetic world, `couplings` reruns the whole protocol on worlds whose audio taste follows
the video taste by that much (SynthConfig.domain_coupling): the ground truth of the transfer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgerec.data.domains import split_domains
from edgerec.data.schema import Dataset
from edgerec.data.split import Sequences, consumed_sequences
from edgerec.data.synth import (
    GroundTruth,
    SynthConfig,
    ground_truth,
    item_fit,
    synth_dataset,
    video_taste_from_audio,
)
from edgerec.errors import ConfigError
from edgerec.models.content import item_texts
from edgerec.models.transfer import (
    consumed_matrix,
    fit_bridge,
    fit_direct_bridge,
    hashed_text_vectors,
    item_factors,
    pooled_users,
)
from edgerec.runtime.space import Bridge
from edgerec.runtime.transfer import (
    content_query,
    direct_query,
    direct_scores,
    mapped_query,
    pooled,
)
from edgerec.studies.base import Progress, Study, Table, pyplot, save_figure

METHODS = ("popularity", "target-only", "content", "mapping", "direct", "direct+content")
ORACLE = "oracle (true tastes)"
SOURCE_ORACLE = "oracle (source taste)"
K = 10


def ndcg_at_k(top: np.ndarray, relevant: np.ndarray, k: int = K) -> float:
    """NDCG@k of one list with binary relevance over a set of relevant items."""
    hits = np.isin(top[:k], relevant)
    dcg = float((hits / np.log2(np.arange(2, len(hits) + 2))).sum())
    ideal = float((1.0 / np.log2(np.arange(2, min(k, len(relevant)) + 2))).sum())
    return dcg / ideal if ideal else 0.0


def without_users(seq: Sequences, users: np.ndarray) -> Sequences:
    """The sequences with the listed users' entries removed (their rows left empty)."""
    keep = ~np.isin(seq.row_of(), users)
    lengths = np.bincount(seq.row_of()[keep], minlength=seq.n_users)
    return Sequences(np.concatenate([[0], np.cumsum(lengths)]), seq.items[keep], seq.times[keep])


@dataclass
class TransferFit:
    """Everything the methods learn, from source events and the training users' target events only."""

    source: Dataset
    target: Dataset
    seq_a: Sequences  # every user's source history (the test users keep theirs: it is their input)
    seq_b: Sequences  # every user's target history (the test users' rows are the ground truth)
    test: np.ndarray
    train: np.ndarray
    items_a: np.ndarray
    items_b: np.ndarray
    popularity: np.ndarray
    average: np.ndarray  # the target-only model's user: the average training user
    bridge: Bridge  # mapping
    direct: Bridge  # direct
    content_a: np.ndarray  # the source items in the shared content space
    content_b: np.ndarray  # ... and the target items
    direct_content: Bridge  # direct+content


def fit_transfer(dataset: Dataset, source: str, target: str, by: str = "modality", min_items: int = 5,
                 test_share: float = 0.2, dim: int = 32, seed: int = 0, content: np.ndarray | None = None
                 ) -> TransferFit:
    """Split the users with `min_items`+ in both domains once (seeded), hide the test users' target
    history, and fit each domain's factors, popularity, the target-only user and the bridges;
    `content`: every catalog item in the shared content space (default: hashed words)."""
    if source == target:  # the hidden target history would be the source history: NDCG 0.91, HR 1.0
        raise ConfigError(f"--source and --target are both {source!r}: a transfer needs two domains; name "
                          "another --target")
    parts = split_domains(dataset, by, allow_empty=True)
    for name in (source, target):
        if name not in parts:
            raise ConfigError(f"no domain {name!r} by {by!r} (the data has {', '.join(sorted(parts))})")
    a, b = parts[source], parts[target]
    seq_a, _ = consumed_sequences(a.interactions, a.n_users)
    seq_b, _ = consumed_sequences(b.interactions, b.n_users)
    both = np.flatnonzero((seq_a.lengths() >= min_items) & (seq_b.lengths() >= min_items))
    n_test = int(round(len(both) * test_share))
    if n_test < 10 or len(both) - n_test < 10:
        raise ConfigError(f"only {len(both)} users have {min_items}+ items in both domains; need 20 or more")
    order = np.random.default_rng(seed).permutation(both)
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    train_b = without_users(seq_b, test)  # the test users' target history is hidden from all of it
    items_a, items_b = item_factors(seq_a, a.n_items, dim, seed), item_factors(train_b, b.n_items, dim, seed)
    popularity = np.bincount(train_b.items, minlength=b.n_items).astype(np.float32)
    average = pooled_users(items_b, train_b, np.flatnonzero(train_b.lengths() > 0)).mean(0)
    source_users = pooled_users(items_a, seq_a, train)
    fit = fit_bridge(source_users, pooled_users(items_b, train_b, train))
    consumed = consumed_matrix([train_b.of(int(u)) for u in train], b.n_items)
    direct = fit_direct_bridge(source_users, consumed, items_b)
    if content is None:
        content = hashed_text_vectors(item_texts(dataset.catalog))
    code_of = {item: i for i, item in enumerate(dataset.catalog.item_ids)}
    content_a = content[[code_of[i] for i in a.catalog.item_ids]]
    content_b = content[[code_of[i] for i in b.catalog.item_ids]]
    both = fit_direct_bridge(np.c_[source_users, pooled_users(content_a, seq_a, train)], consumed, items_b)
    return TransferFit(a, b, seq_a, seq_b, test, train, items_a, items_b, popularity, average,
                       Bridge(source, "", fit.weights, fit.bias, fit.users),
                       Bridge(source, "", direct.weights, direct.bias, direct.users, direct.prior),
                       content_a, content_b,
                       Bridge(source, "", both.weights, both.bias, both.users, both.prior, "items+content"))


def transfer_eval(dataset: Dataset, source: str, target: str, by: str = "modality", min_items: int = 5,
                  test_share: float = 0.2, dim: int = 32, seed: int = 0, content: np.ndarray | None = None,
                  truth: GroundTruth | None = None) -> dict:
    """NDCG@10 and HR@10 per method for the test users (see the module's protocol); with the synthetic
    world's `truth`, also a reference that knows each user's true tastes (what no method can beat by much)."""
    f = fit_transfer(dataset, source, target, by, min_items, test_share, dim, seed, content)
    a, b, seq_a, seq_b, items_a, items_b = f.source, f.target, f.seq_a, f.seq_b, f.items_a, f.items_b
    content_a, content_b, both = f.content_a, f.content_b, f.direct_content
    code_of = {item: i for i, item in enumerate(dataset.catalog.item_ids)}
    popularity = f.popularity
    scores = {"popularity": lambda _h, _u: popularity, "target-only": lambda _h, _u: items_b @ f.average,
              "content": lambda h, _u: content_b @ content_query(content_a[h]),
              "mapping": lambda h, _u: items_b @ mapped_query(items_a[h], f.bridge),
              "direct": lambda h, _u: direct_scores(items_b @ direct_query(items_a[h], f.direct), f.direct),
              "direct+content": lambda h, _u: direct_scores(items_b @ direct_query(items_a[h], both, content_a[h]),
                                                            both)}
    methods = METHODS
    if truth is not None:
        codes = np.array([code_of[i] for i in b.catalog.item_ids])
        scores[ORACLE] = lambda _h, u: oracle_scores(truth, int(u), codes, popularity)
        methods = METHODS + (ORACLE,)
        if truth.config.domain_coupling is not None and (by, source, target) == ("modality", "audio", "video"):
            users = truth.users
            inferred = video_taste_from_audio(users.audio_taste_start, users.taste_start.mean(0)[None].repeat(
                len(users.taste_start), 0), truth.config.seed)
            scores[SOURCE_ORACLE] = lambda _h, u: oracle_scores(truth, int(u), codes, popularity, inferred[int(u)])
            methods += (SOURCE_ORACLE,)
    ndcg = {m: [] for m in methods}
    hit = {m: [] for m in methods}
    for user in f.test:
        history, relevant = seq_a.of(int(user))[-50:], seq_b.of(int(user))
        for method in methods:
            top = top_k(scores[method](history, user))
            ndcg[method].append(ndcg_at_k(top, relevant))
            hit[method].append(float(np.isin(top, relevant).any()))
    result = {m: {"NDCG@10": round(float(np.mean(ndcg[m])), 4), "HR@10": round(float(np.mean(hit[m])), 4)}
              for m in methods}
    base = result["popularity"]["NDCG@10"]
    for m in methods:
        result[m]["x_popularity"] = round(result[m]["NDCG@10"] / base, 2) if base else None
    # a list that ranks every hidden item first scores NDCG 1: the most any method can gain over popularity
    ceiling = round(1.0 / base, 2) if base else None
    return {"source": source, "target": target, "test_users": int(len(f.test)), "train_users": int(len(f.train)),
            "source_items": a.n_items, "target_items": b.n_items, "ceiling_x_popularity": ceiling,
            "in_domain_reference": in_domain_reference(f, seed), "methods": result}


def top_k(scores: np.ndarray, k: int = K) -> np.ndarray:
    """The k best rows, best first."""
    top = np.argpartition(-scores, k)[:k] if len(scores) > k else np.arange(len(scores))
    return top[np.argsort(-scores[top], kind="stable")]


def in_domain_reference(fit: TransferFit, seed: int = 0) -> dict:
    """The target model with half of each test user's own target history (seeded) as input, ranking the
    other half with the input left out, against popularity on the same halves."""
    rng = np.random.default_rng(seed)
    ndcg = {"popularity": [], "target model": []}
    for user in fit.test:
        order = rng.permutation(fit.seq_b.of(int(user)))
        given, held = order[:len(order) // 2], order[len(order) // 2:]
        if not len(given):  # one target item: no half to take as input (min_items=1 ended in a wrong message)
            continue
        model = fit.items_b @ pooled(fit.items_b[given])
        for name, scores in (("popularity", fit.popularity), ("target model", model)):
            scores = scores.astype(np.float64)  # a copy: the input items are left out
            scores[given] = -np.inf
            ndcg[name].append(ndcg_at_k(top_k(scores), held))
    out = {name: round(float(np.mean(v)), 4) if v else None for name, v in ndcg.items()}
    out["x_popularity"] = round(out["target model"] / out["popularity"], 2) if out["popularity"] else None
    return out


def oracle_scores(truth: GroundTruth, user: int, codes: np.ndarray, popularity: np.ndarray,
                  taste: np.ndarray | None = None) -> np.ndarray:
    """The generator's own view of a user: how well each item fits their true taste (or `taste`, a row
    over the genres), mood and themes, their languages and modality mix, on top of the items' log
    popularity (a reference, not a method)."""
    world, users = truth.world, truth.users
    taste = users.taste_start[user] if taste is None else taste
    fit = item_fit(world, users, np.full(len(codes), user), np.repeat(np.asarray(taste)[None], len(codes), 0), codes)
    own_language = np.isin(world.language[codes], users.languages[user])
    return np.log1p(popularity) + 3 * fit + 3 * own_language + np.log(users.modality_mix[user, world.modality[codes]])


@dataclass
class TransferStudy(Study):
    """Transfer NDCG@10 in the target domain for users with only source-domain history."""

    name = "transfer"
    draws = True

    data: Path | None = None  # a data folder; None: the synthetic world of `synth`
    synth: SynthConfig | None = None
    source: str = "audio"
    target: str = "video"
    by: str = "modality"
    couplings: tuple[float, ...] = ()  # synthetic worlds only: rerun at these domain couplings
    min_items: int = 5
    seed: int = 0
    anchor: str | None = None  # the content space: None (hashed words), "use-multilingual" or an encoder folder

    def measure(self, progress: Progress) -> dict:
        from edgerec.data.store import load_dataset

        if self.data is None and self.synth is None:
            raise ConfigError("give the study a data folder or a synthetic world config")
        runs = []
        if self.data is not None:
            progress(f"loading {self.data}", {})
            runs.append({"world": str(Path(self.data).name), **self._eval(load_dataset(self.data))})
        if self.synth is not None:
            for coupling in self.couplings or (self.synth.domain_coupling,):
                progress("synthetic world", {"domain_coupling": coupling})
                cfg = replace(self.synth, domain_coupling=coupling)
                runs.append({"world": "synthetic", "domain_coupling": coupling,
                             **self._eval(synth_dataset(cfg), ground_truth(cfg))})
        return {"source": self.source, "target": self.target, "by": self.by, "k": K,
                "anchor": self.anchor or "hashed-words", "runs": runs}

    def _eval(self, dataset: Dataset, truth: GroundTruth | None = None) -> dict:
        from edgerec.export.space import content_anchor

        content = content_anchor(dataset.catalog, self.anchor)[0] if self.anchor else None
        return transfer_eval(dataset, self.source, self.target, self.by, self.min_items, seed=self.seed,
                             content=content, truth=truth)

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        rows, reference = [], []
        for run in record["runs"]:
            label = run["world"] + (f" (coupling {run['domain_coupling']})"
                                    if run.get("domain_coupling") is not None else "")
            ref = run["in_domain_reference"]
            reference.append({"world": label, "popularity": ref["popularity"], "target model": ref["target model"],
                              "x popularity": ref["x_popularity"], "test users": run["test_users"]})
            for method, m in run["methods"].items():
                rows.append({"world": label, "method": method, "NDCG@10": m["NDCG@10"], "HR@10": m["HR@10"],
                             "x popularity": m["x_popularity"], "ceiling x": run.get("ceiling_x_popularity"),
                             "test users": run["test_users"]})
        return [Table(f"Transfer {record['source']} -> {record['target']}: NDCG@10 on hidden target history",
                      rows),
                Table(f"In-domain reference: the {record['target']} model given half of each test user's own "
                      f"{record['target']} history, NDCG@10 on the other half", reference)]

    @classmethod
    def draw(cls, record: dict, path: Path) -> Path | None:
        plt = pyplot()
        if plt is None:
            return None
        runs = record["runs"]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        names = list(dict.fromkeys(m for r in runs for m in r["methods"]))
        width = 0.8 / len(names)
        for j, method in enumerate(names):
            ax.bar(np.arange(len(runs)) + j * width, [r["methods"].get(method, {}).get("NDCG@10", 0) for r in runs],
                   width, label=method)
        ax.set_xticks(np.arange(len(runs)) + 0.4 - width / 2)
        ax.set_xticklabels([r["world"] + (f"\ncoupling {r['domain_coupling']}"
                                          if r.get("domain_coupling") is not None else "") for r in runs])
        ax.set_ylabel("NDCG@10 (target domain)")
        ax.set_title(f"{record['source']} history -> {record['target']} recommendations")
        ax.legend(fontsize=8)
        return save_figure(fig, path, dpi=120)
