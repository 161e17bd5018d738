"""Host aggregation of DP device reports: unbiased item counts with confidence intervals, and their utility.

`aggregate_items(reports, item_ids)` turns the `items_consumed` records of
runtime/reporter.py into counts per item (OLH support counts, debiased) with 95%
intervals; `aggregate_labels` does the same for GRR questions (category shares,
health buckets). The study measures what the estimate is worth: top-10/top-50
recall of the truly most-consumed items and the count MAE, over epsilons and
device counts. Devices draw their reported item from the data set's consumption
distribution. Millions of devices are simulated from the exact marginal law of
each item's support count, Binomial(n_v, p) + Binomial(n - n_v, 1/g), instead of
one report at a time (tests check it against real reports). It can also write
the estimate as a popularity prior for `edgerec export --popularity`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError
from edgerec.runtime.ldp import (
    PRIME,
    Estimate,
    check_epsilon,
    grr_estimate,
    keep_probability,
    olh_buckets,
    olh_estimate,
    olh_support,
)
from edgerec.runtime.shuffle import Shuffled
from edgerec.studies.base import Progress, Study, Table, pyplot, save_figure
from edgerec.studies.stats import whole_number


def aggregate_items(reports: list[dict], item_ids: list[str]) -> tuple[Estimate, dict]:
    """Counts per bundle item from `items_consumed` reports of one epsilon (the last value is 'none')."""
    reports = _questions(reports, "items_consumed")
    with _malformed():
        sizes = {r["domain"]["size"] for r in reports}
        if sizes != {len(item_ids) + 1}:
            raise ConfigError(f"reports must share this catalog's size (+1): got sizes {sorted(sizes)} for "
                              f"{len(item_ids)} items")
        epsilon = randomized_with(reports)
        g, primes = olh_buckets(epsilon), {r["hash"]["prime"] for r in reports}
        triples = [(r["hash"]["a"], r["hash"]["b"], r["value"]) for r in reports]
        # the devices' own hash family: a in [1, p), b in [0, p), whole numbers. a = p hashed every item alike (one
        # forged report supported them all), a past 2**40 overflowed int64, another prime collided items
        if primes != {PRIME} or {r["hash"]["g"] for r in reports} != {g} or not all(
                whole_number(a) and whole_number(b) and whole_number(y) and 1 <= a < PRIME and 0 <= b < PRIME and 0 <= y < g
                for a, b, y in triples):
            raise ConfigError(f"reports carry hashes or values that OLH at epsilon {epsilon:g} cannot produce "
                              f"(prime {PRIME}, 1 <= a < prime, 0 <= b < prime, g {g}, values in [0, {g})): "
                              "refused rather than counted")
        if len(set(triples)) != len(triples):  # two devices draw one (a, b) with chance ~1e-18: a replayed report
            raise ConfigError(f"{len(triples) - len(set(triples)):,} reports repeat another exactly (the same hash "
                              "and value): replayed or forged reports, refused rather than counted")
        a, b, y = (np.asarray(column, np.int64) for column in zip(*triples))
    support = olh_support(a, b, g, y, len(item_ids) + 1, PRIME)
    return olh_estimate(support, len(reports), epsilon), {"epsilon": reports[0]["epsilon"], "local_epsilon": epsilon,
                                                          "reports": len(reports)}


def _questions(reports, question: str) -> list[dict]:
    """The reports answering `question` (anything that is not a report dict is an error, not skipped)."""
    if not all(isinstance(r, dict) for r in reports):
        raise ConfigError("reports must be the dicts PrivateReporter produces (one per device)")
    reports = [r for r in reports if r.get("question") == question]
    if not reports:
        raise ConfigError(f"no {question} reports to aggregate")
    return reports


@contextmanager
def _malformed():
    """Reports come from devices: a missing field or a wrong type is a clear error, not a KeyError."""
    try:
        yield
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"a report is malformed ({type(exc).__name__}: {exc}); aggregate only the records "
                          "PrivateReporter produces") from None


def randomized_with(reports: list[dict]) -> float:
    """The one epsilon the reports were randomized with (the local one when they were shuffled).

    Shuffled reports were promised a batch of at least some size; a smaller batch breaks their
    central guarantee, so it is refused rather than estimated from."""
    local = {check_epsilon(r.get("local_epsilon", r["epsilon"])) for r in reports}
    central = {check_epsilon(r["epsilon"]) for r in reports}
    if len(local) != 1 or len(central) != 1:
        raise ConfigError(f"reports must share one epsilon: got {sorted(central)} (randomized with {sorted(local)})")
    promised = {r["shuffle"]["batch"] if "shuffle" in r else 0 for r in reports}
    if max(promised) > 0 and (len(promised) > 1 or len(reports) < max(promised)):
        raise ConfigError(f"these reports were sent on the promise of shuffled batches of at least "
                          f"{max(promised):,} (all shuffled), and this batch holds {len(reports):,}: their central "
                          "epsilon does not hold; do not publish an estimate from it")
    return local.pop()


def aggregate_labels(reports: list[dict], question: str) -> dict:
    """Share estimates of a GRR question ('category_shares:genre', 'health:latency_ms', ...)."""
    reports = _questions(reports, question)
    with _malformed():
        labels = reports[0]["domain"]["labels"]
        if not (isinstance(labels, list) and len(labels) >= 2 and all(isinstance(x, str) for x in labels)
                and len(set(labels)) == len(labels)):  # one label divided by zero; a repeated one lost its share
            raise ConfigError(f"{question} reports must name at least 2 distinct labels (a list of strings)")
        raw = [r["value"] for r in reports]
        if not all(whole_number(v) for v in raw):  # 1.7 was read as label 1
            raise ConfigError(f"{question} reports must give a label's index, a whole number")
        values = np.asarray(raw, np.int64)
        if any(r["domain"]["labels"] != labels for r in reports) or not ((0 <= values) & (values < len(labels))).all():
            raise ConfigError(f"{question} reports must share one list of labels and give a value among them")
        est = grr_estimate(values, len(labels), randomized_with(reports))
    n = len(reports)
    return {label: {"share": float(c / n), "low": float(lo / n), "high": float(hi / n)}
            for label, c, lo, hi in zip(labels, est.counts, est.low, est.high)}


def simulate_support(true_counts: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """OLH support counts of n = sum(true_counts) devices, drawn from each item's exact marginal law."""
    g = olh_buckets(epsilon)
    n = int(true_counts.sum())
    return rng.binomial(true_counts, keep_probability(epsilon, g)) + rng.binomial(n - true_counts, 1.0 / g)


def consumption_shares(data_dir: str | Path) -> tuple[list[str], np.ndarray]:
    """Item ids and each item's share of consumption events in a data folder."""
    from edgerec.data.store import load_dataset
    from edgerec.runtime.vocab import CONSUMED_LOG_EVENTS, LOG_EVENTS

    dataset = load_dataset(data_dir)
    log = dataset.interactions
    consumed = np.isin(log.event, [LOG_EVENTS.index(e) for e in CONSUMED_LOG_EVENTS])
    counts = np.bincount(log.item[consumed], minlength=dataset.n_items).astype(np.float64)
    return list(dataset.catalog.item_ids), counts / counts.sum()


def recall_at(true_counts: np.ndarray, estimate: np.ndarray, k: int) -> float | None:
    """Share of the true top k the estimate's top k holds; None with k items or fewer, where both hold them
    all (39 items gave a top-50 recall of 0.78: 39 found over 50)."""
    if len(true_counts) <= k:
        return None
    top_true = set(np.argsort(-true_counts, kind="stable")[:k].tolist())
    return len(top_true & set(np.argsort(-estimate)[:k].tolist())) / k


def _mean(values: list) -> float | None:
    return None if None in values else float(np.mean(values))


@dataclass
class DPPopularityStudy(Study):
    name = "dp_popularity"
    draws = True

    data_dir: Path
    epsilons: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    devices: tuple[int, ...] = (10_000, 100_000, 300_000, 1_000_000)
    trials: int = 5
    seed: int = 0
    prior_out: Path | None = None  # write the estimate at (prior_epsilon, prior_devices) as a popularity prior
    prior_epsilon: float = 1.0
    prior_devices: int = 300_000
    zipf: float | None = None  # instead of the data's consumption shares: Zipf(s) over its items, by rank
    shuffled: bool = False  # reports reach the host in shuffled batches of all devices (runtime/shuffle.py)

    def local_epsilon(self, epsilon: float, devices: int) -> float:
        """What each device randomizes with for a central `epsilon` (the same without a shuffle)."""
        return Shuffled(devices).local_epsilon(epsilon) if self.shuffled else epsilon

    def measure(self, progress: Progress) -> dict:
        item_ids, shares = consumption_shares(self.data_dir)
        if self.zipf is not None:  # rank r gets r^-s; items keep the data's popularity order
            ranks = np.empty(len(shares))
            ranks[np.argsort(-shares, kind="stable")] = np.arange(1, len(shares) + 1)
            shares = ranks ** -float(self.zipf) / np.sum(ranks ** -float(self.zipf))
        rng = np.random.default_rng(self.seed)
        rows = []
        for n in self.devices:
            for eps in self.epsilons:
                r10, r50, mae, cover = [], [], [], []
                local = self.local_epsilon(eps, n)
                for _ in range(self.trials):
                    true = rng.multinomial(n, shares)
                    est = olh_estimate(simulate_support(true, local, rng), n, local)
                    r10.append(recall_at(true, est.counts, 10))
                    r50.append(recall_at(true, est.counts, 50))
                    mae.append(float(np.abs(est.counts - true).mean()))
                    cover.append(float(np.mean((est.low <= true) & (true <= est.high))))
                row = {"devices": n, "epsilon": eps, "local_epsilon": local, "top10_recall": _mean(r10),
                       "top50_recall": _mean(r50), "count_mae": float(np.mean(mae)),
                       "mae_share_of_top10_count": float(np.mean(mae) / np.sort(shares)[-10] / n)
                       if len(shares) >= 10 else None,
                       "ci95_coverage": float(np.mean(cover))}
                rows.append(row)
                progress(f"{n:,} devices, epsilon {eps:g}", {k: row[k] for k in ("top10_recall", "top50_recall")})
        top = np.sort(shares)[::-1]
        record = {"items": len(item_ids), "trials": self.trials, "rows": rows, "shuffled": self.shuffled,
                  "distribution": f"zipf {self.zipf:g}" if self.zipf is not None else "data",
                  "top1_share": float(top[0]), "top10_share": float(top[:10].sum()) if len(top) >= 10 else None,
                  "simulation": "per-item support ~ Binomial(n_v, p) + Binomial(n - n_v, 1/g) (exact marginals)"}
        if self.prior_out is not None:
            true = rng.multinomial(self.prior_devices, shares)
            local = self.local_epsilon(self.prior_epsilon, self.prior_devices)
            est = olh_estimate(simulate_support(true, local, rng), self.prior_devices, local)
            from edgerec.export.popularity import PopularityPrior

            PopularityPrior(dict(zip(item_ids, est.counts.tolist())), "dp-reports (simulated devices)",
                            self.prior_devices, self.prior_epsilon).write(self.prior_out)
            record["prior"] = {"path": Path(self.prior_out).name, "devices": self.prior_devices,
                               "epsilon": self.prior_epsilon, "top10_recall": recall_at(true, est.counts, 10)}
        return record

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        how = "shuffled batches of all devices, " if record.get("shuffled") else ""
        return [Table(f"DP item popularity (OLH, {how}{record['items']:,} items, {record.get('distribution', 'data')} "
                      f"shares, {record['trials']} trials)",
                      record["rows"], ["devices", "epsilon", "local_epsilon", "top10_recall", "top50_recall",
                                       "count_mae", "ci95_coverage"])]

    @classmethod
    def draw(cls, record: dict, path: Path) -> Path | None:
        plt = pyplot()
        if plt is None:
            return None
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        for eps in sorted({r["epsilon"] for r in record["rows"]}):
            rows = [r for r in record["rows"] if r["epsilon"] == eps]
            for ax, key in zip(axes, ("top10_recall", "top50_recall")):
                ax.plot([r["devices"] for r in rows], [np.nan if r[key] is None else r[key] for r in rows], marker="o",
                        label=f"eps {eps:g}")
                ax.set_xscale("log")
                ax.set_xlabel("devices reporting")
                ax.set_title(key.replace("_", " "))
                ax.set_ylim(0, 1.02)
        axes[0].legend()
        return save_figure(fig, path, dpi=100)
