"""Exposure and its fairness: position-discounted exposure, the Gini index, and the fair re-ranking stage.

Exposure of a list position i (0-based) is 1 / log2(i + 2), as in DCG: what
a person sees first counts most. The fair stage re-ranks the pool by its
standardised relevance minus `Policy.fairness` x 3 x how far the item's
provider's share of all plays exceeds an equal share: a device sees one user
only, so the plays stand in for the exposure the provider gets in everyone
else's lists. (A greedy variant that also spread each list over providers,
by the exposure each provider already held in it, was measured: on 1,000
replayed users it lost more NDCG@10 for the same provider-exposure Gini, so
it was dropped.) The baseline (`fairness_method="cap"`) caps the items per
provider instead.
"""

from __future__ import annotations

import math

import numpy as np

from edgerec.runtime.policies import mmr, standardize
from edgerec.runtime.request import Request

PENALTY_SCALE = 3.0  # relevance is in deviations; a provider with every play costs about 3 * weight


def position_discount(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(k) + 2.0)


def gini(values) -> float:
    """Gini index of non-negative values (0 = equal, near 1 = one holds everything)."""
    x = np.sort(np.asarray(values, np.float64))
    n, total = len(x), float(np.sum(x))
    if n == 0 or total <= 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * total))


def exposure(lists: list[list], groups: list | None = None) -> dict:
    """Discounted exposure per group over many lists (each a list of group labels, best first),
    as shares of the total. `groups` lists every group that could be shown (zero exposure counts)."""
    totals: dict = {g: 0.0 for g in groups or []}
    for labels in lists:
        for label, weight in zip(labels, position_discount(len(labels)).tolist()):
            totals[label] = totals.get(label, 0.0) + weight
    whole = sum(totals.values()) or 1.0
    return {g: v / whole for g, v in totals.items()}


def fair_order(relevance: np.ndarray, dominance: np.ndarray, k: int, weight: float) -> np.ndarray:
    """Positions of the `k` best items by standardised relevance minus weight x 3 x `dominance` (each
    item's provider's excess share of plays); ties keep pool order, non-finite relevance is left out."""
    rel = standardize(np.asarray(relevance, np.float64)) - weight * PENALTY_SCALE * np.asarray(dominance, np.float64)
    order = np.argsort(-rel, kind="stable")
    return order[np.isfinite(rel[order])][:k].astype(np.int64)


def provider_cap(k: int, weight: float) -> int:
    """The baseline's cap per provider at a fairness weight: k at 0, down to 1 at weight 1."""
    return max(1, int(math.ceil(round(k * (1.0 - min(max(weight, 0.0), 1.0)), 9))))  # 10 x 0.3 is 3, not 4


def fairness_stage(request: Request) -> Request:
    """fairness: re-rank the pool for provider exposure (Policy.fairness > 0; optional stage)."""
    policy, cat, pool = request.policy, request.catalog, request.pool
    providers = cat.column("provider", pool).astype(str)
    if policy.fairness_method == "cap":
        cap = provider_cap(request.k, policy.fairness)
        order = mmr(request.relevance, request.vectors, request.k, 0.0, providers, None, cap, None)
    else:  # "exposure" (Policy.check allows no other)
        share = cat._cached("provider_dominance", lambda: provider_dominance(cat))
        order = fair_order(request.relevance, share[pool], request.k, policy.fairness)
    request.order = np.asarray(order, np.int64)
    return request


def provider_dominance(cat) -> np.ndarray:
    """Per row: how far its provider's share of all plays (the bundle's popularity) exceeds 1 / providers."""
    rows = np.arange(len(cat))
    providers = cat.column("provider", rows).astype(str)
    names, codes = np.unique(providers, return_inverse=True)
    plays = np.bincount(codes, weights=cat.numeric_column("popularity", rows), minlength=len(names))
    known = names != ""
    if plays[known].sum() <= 0:
        return np.zeros(len(rows))
    share = plays / plays[known].sum()
    excess = np.where(known, np.maximum(share - 1.0 / known.sum(), 0.0), 0.0)
    return excess[codes]


def fairness_applies(request: Request) -> bool:
    return request.policy.fairness > 0 and "provider" in request.catalog.categorical
