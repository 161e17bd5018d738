"""The bias and fairness study: who gets exposure, how popular the lists are, who they serve well,
and what the fair re-ranking weight trades.

Held-out users' training events are recorded into a device (as the replay
study does); each is then asked for ten items at the moment of their test
event, on the device of that event. From those lists: position-discounted
exposure share by provider, language, modality and popularity bucket;
popularity bias (mean popularity of what is shown, long-tail share, provider
exposure Gini); NDCG@10 and HR@10 by user segment (activity, language,
device). Then the same users at several `Policy.fairness` weights, for the
exposure re-ranker and the per-provider cap baseline: Gini against NDCG@10.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.data.local_hours import dataset_zone
from edgerec.data.split import leave_last_out, require_targets
from edgerec.data.store import load_dataset
from edgerec.runtime import Policy
from edgerec.runtime.fairness import exposure, gini, position_discount
from edgerec.runtime.vocab import DEVICES, LOG_EVENTS, LOG_TO_DEVICE
from edgerec.studies.base import (
    Progress,
    Study,
    Table,
    fresh_history,
    pyplot,
    replay_context,
    save_figure,
)
from edgerec.studies.devices import open_device, validation_event

REPLAYED_EVENTS = 60
WEIGHTS = (0.25, 0.5, 1.0, 2.0)
TAIL_SHARE = 0.8  # items outside the most popular fifth (that draw most plays) are the long tail


@dataclass
class FairnessStudy(Study):
    name = "fairness"
    draws = True
    bundle: Path
    data_dir: Path
    history: Path  # a device history database, created new (one that holds anything is refused)
    users: int = 200
    seed: int = 0
    weights: tuple[float, ...] = WEIGHTS
    own_history: bool = False  # `history` is the study's own file (the demo's): an earlier run's is removed first

    def measure(self, progress: Progress) -> dict:
        dataset = load_dataset(self.data_dir)
        split = leave_last_out(dataset)
        require_targets(split)
        log, ids = dataset.interactions, dataset.catalog.item_ids
        rng = np.random.default_rng(self.seed)
        picked = rng.choice(len(split.test_users), min(self.users, len(split.test_users)), replace=False)
        events = split.target_events("test")
        progress(f"replaying {len(picked)} users into the device", {})
        with open_device(self.bundle, dataset, history=fresh_history(self.history, self.own_history)) as rec:
            cat = rec.catalog
            rows = np.array([cat.row(i) for i in ids], np.int64)  # by id: the bundle's order may be another's
            meta = {c: dict(zip(ids, cat.column(c, rows).tolist())) for c in ("provider", "language", "modality")}
            popularity = dict(zip(ids, cat.numeric_column("popularity", rows).tolist()))
            head = head_rows(ids, [popularity[i] for i in ids])
            bucket = {item: ("head" if i in head else "tail") for i, item in enumerate(ids)}
            requests, segments = [], []
            for row in picked:
                user = int(split.test_users[row])
                name = dataset.user_ids[user]
                mine = np.flatnonzero((log.user == user) & split.train_events)
                for e in mine[-REPLAYED_EVENTS:]:
                    rec.record(name, ids[log.item[e]], LOG_TO_DEVICE[LOG_EVENTS[log.event[e]]],
                               timestamp=float(log.timestamp[e]))
                item, event, at = validation_event(dataset, split, row)  # as replay_lists records it
                rec.record(name, item, event, timestamp=at)
                device = int(log.device[events[row]])
                context = replay_context(split.test_times[row], dataset_zone(dataset))
                if 0 <= device < len(DEVICES):
                    context["device"] = DEVICES[device]
                requests.append((name, ids[split.test_items[row]], context))
                langs = Counter(meta["language"].get(ids[i], "") for i in log.item[mine])
                segments.append({"activity": len(mine), "language": langs.most_common(1)[0][0] if langs else "",
                                 "device": context.get("device", "unknown")})
            activity = np.array([s["activity"] for s in segments])
            cuts = np.quantile(activity, [1 / 3, 2 / 3]) if len(activity) else [0, 0]
            for s in segments:
                s["activity"] = "light" if s["activity"] <= cuts[0] else "medium" if s["activity"] <= cuts[1] else "heavy"

            def run(policy: Policy) -> list[list[str]]:
                return [[r.item_id for r in rec.recommend(n, k=10, context=c, policy=policy)] for n, _, c in requests]

            base_policy = rec.policy
            progress("measuring the default lists", {})
            lists = run(base_policy)
            providers = sorted(set(meta["provider"].values()) - {""})
            record = {"users": len(requests), "items": len(ids), "providers": len(providers),
                      "exposure": {c: _top(exposure([[meta[c].get(i, "") for i in items] for items in lists]))
                                   for c in ("provider", "language", "modality")},
                      "popularity_bucket": exposure([[bucket[i] for i in items] for items in lists], ["head", "tail"]),
                      "popularity_bias": _popularity_bias(lists, popularity, bucket, meta["provider"], providers),
                      "segments": _segments(lists, requests, segments)}
            if len(providers) < 2:  # nothing to spread exposure over: every weight would give the same lists
                record["trade_off"], record["note"] = [], NO_PROVIDERS
                return record
            trade = []
            for method in ("exposure", "cap"):
                for weight in (0.0,) + tuple(self.weights):
                    got = lists if weight == 0 else run(_with(base_policy, weight, method))
                    point = _accuracy(got, requests)
                    point.update(method=method, weight=weight,
                                 provider_gini=_gini(got, meta["provider"], providers),
                                 long_tail_share=record["popularity_bias"]["long_tail_share"] if weight == 0 else
                                 _popularity_bias(got, popularity, bucket, meta["provider"], providers)["long_tail_share"])
                    progress(f"{method} at {weight}", {k: point[k] for k in ("NDCG@10", "provider_gini")})
                    trade.append(point)
            record["trade_off"] = trade
        return record

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        out = []
        for column in ("provider", "language", "modality"):
            shares = record["exposure"][column]
            rows = [{column: _label(k, shares), "exposure share": v} for k, v in shares.items()]
            out.append(Table(f"exposure share by {column} (position-discounted)", rows))
        out.append(Table("popularity bias", [dict(record["popularity_bias"],
                                                  **{f"{k} exposure": v for k, v in record["popularity_bucket"].items()})]))
        out.append(Table("accuracy by user segment", record["segments"],
                         ["segment", "value", "users", "NDCG@10", "HR@10"]))
        if record["trade_off"]:
            out.append(Table("fair re-ranking: provider exposure Gini against NDCG@10", record["trade_off"],
                             ["method", "weight", "NDCG@10", "HR@10", "provider_gini", "long_tail_share"]))
        else:
            out.append(Table("fair re-ranking: not measured", [{"why": record.get("note", NO_PROVIDERS)}]))
        return out

    @classmethod
    def draw(cls, record: dict, path: Path) -> Path | None:
        plt = pyplot()
        if plt is None:
            return None
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        shares = record["exposure"]["provider"]
        left.barh([_label(k, shares) for k in shares][::-1], list(shares.values())[::-1], color="#4a7ab5")
        left.set_xlabel("position-discounted exposure share")
        left.set_title("exposure by provider (default lists)")
        for method, colour in (("exposure", "#c0392b"), ("cap", "#7f8c8d")):
            points = [p for p in record["trade_off"] if p["method"] == method]
            right.plot([p["provider_gini"] for p in points], [p["NDCG@10"] for p in points], "o-", color=colour,
                       label=f"{method} re-ranking")
            for p in points:
                right.annotate(f"{p['weight']:g}", (p["provider_gini"], p["NDCG@10"]), fontsize=7)
        if not record["trade_off"]:
            right.text(0.5, 0.5, "fewer than two providers:\nnothing to re-rank", ha="center", va="center",
                       transform=right.transAxes)
        right.set_xlabel("provider exposure Gini (lower is fairer)")
        right.set_ylabel("NDCG@10")
        right.set_title("fairness weight trade-off")
        if record["trade_off"]:
            right.legend()
        return save_figure(fig, path)


NO_PROVIDERS = ("the items name fewer than two providers, so there is no provider exposure to re-rank; "
                "give the items a `provider` column to measure the trade-off")


def _with(policy: Policy, weight: float, method: str) -> Policy:
    from dataclasses import replace

    return replace(policy, fairness=weight, fairness_method=method)


def head_rows(ids: list[str], popularity: list[float]) -> set[int]:
    """Positions of the most popular fifth of `ids` (ties by id: the split must not follow the rows' order)."""
    count = round(len(ids) * (1 - TAIL_SHARE))  # int() cut 0.1999.. x 1,000 to 199
    return set(np.lexsort((np.asarray(ids), -np.asarray(popularity, float)))[:count].tolist())


def _top(shares: dict, count: int = 8) -> dict:
    """The `count` largest shares, the rest summed under 'others' (bracketed until no name has it: a
    provider called "others" had its share overwritten by the bucket)."""
    ranked = sorted(shares.items(), key=lambda kv: -kv[1])
    out = dict(ranked[:count])
    if len(ranked) > count:
        out[_free("others", shares)] = sum(v for _, v in ranked[count:])
    return out


def _free(label: str, taken) -> str:
    while label in taken:
        label = f"({label})"
    return label


def _label(name: str, names) -> str:
    """A name as a table shows it: no name is "(unknown)", unless a real name is that already."""
    return name or _free("(unknown)", names)


def _gini(lists: list[list[str]], provider_of: dict, providers: list[str]) -> float | None:
    if len(providers) < 2:  # no provider column, or one name: no inequality between providers to measure (not 0)
        return None
    shares = exposure([[provider_of.get(i, "") for i in items] for items in lists], providers)
    return gini([shares.get(p, 0.0) for p in providers])


def _popularity_bias(lists, popularity: dict, bucket: dict, provider_of: dict, providers: list[str]) -> dict:
    shown = [i for items in lists for i in items]
    return {"mean_popularity_shown": float(np.mean([popularity[i] for i in shown])) if shown else 0.0,
            "mean_popularity_catalog": float(np.mean(list(popularity.values()))),
            "long_tail_share": float(np.mean([bucket[i] == "tail" for i in shown])) if shown else 0.0,
            "provider_gini": _gini(lists, provider_of, providers)}


def _gains(lists, requests) -> np.ndarray:
    discount = position_discount(10)
    return np.array([discount[items.index(target)] if target in items else 0.0
                     for items, (_, target, _) in zip(lists, requests)])


def _accuracy(lists, requests) -> dict:
    gains = _gains(lists, requests)
    return {"NDCG@10": float(gains.mean()) if len(gains) else 0.0,
            "HR@10": float((gains > 0).mean()) if len(gains) else 0.0}


def _segments(lists, requests, segments: list[dict]) -> list[dict]:
    gains = _gains(lists, requests)
    rows = []
    for key in ("activity", "language", "device"):
        names = {s[key] for s in segments}
        values = np.array([_label(s[key], names) for s in segments])
        for value in sorted(set(values.tolist())):
            g = gains[values == value]
            rows.append({"segment": key, "value": value, "users": int(len(g)), "NDCG@10": float(g.mean()),
                         "HR@10": float((g > 0).mean())})
    return rows
