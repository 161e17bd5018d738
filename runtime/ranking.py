"""The bundle's `ranking` section on the device: the interpretable scorer stage and the context priors stage.

    manifest["ranking"] = {
      "scorer": {"features": [...names], "arrays": {"weights": file, "mean": file, "scale": file,
                 "intercept": file}, "metrics": {...}},
      "context_prior": {"modalities": [...], "device": {name: [lift per modality]},
                        "day_part": {name: [lift per modality]}, "weight": 0.3},
      "engagement": 0.5}

Both stages are optional (a failure leaves the list as it was). The scorer
re-scores the pool and keeps the features it read, so the explain stage can
split the shown items' scores into contributions; the context stage adds a small boost from what is
consumed on this device at this time of day (log lift of the modality, learned
from the training log at export), unless the scorer ranked: its own context features carry that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgerec.errors import BundleError, ModelError
from edgerec.runtime.bundle import Manifest
from edgerec.runtime.models import Models
from edgerec.runtime.policies import standardize
from edgerec.runtime.request import Request
from edgerec.runtime.scorer import (
    DAY_PARTS,
    SCORER_VERSION,
    Featurizer,
    LinearScorer,
    TagCodes,
    day_part,
    scorer_names,
)
from edgerec.runtime.vocab import DEVICES, MODALITIES


def open_scorer(manifest: Manifest, bundle) -> LinearScorer | None:
    """The bundle's interpretable scorer, or None when it ships none; BundleError when it is unusable."""
    spec = manifest.ranking.get("scorer")
    if not spec:
        return None
    if spec.get("version", 1) != SCORER_VERSION:
        raise BundleError(f"the bundle's scorer was trained on scorer features version {spec.get('version', 1)}, "
                          f"this runtime computes version {SCORER_VERSION}; re-train it (`edgerec scorer train`) "
                          "and export the bundle again")
    expected = scorer_names(manifest.dim)
    if tuple(spec["features"]) != expected:
        raise BundleError(f"the bundle's scorer uses {len(spec['features'])} features that are not the "
                          f"{len(expected)} this runtime computes; export the bundle with this edgerec version")
    try:
        arrays = {k: bundle.array(v, mmap=False) for k, v in spec["arrays"].items()}
        scorer = LinearScorer.from_arrays(spec["features"], arrays)
    except (ValueError, TypeError, IndexError) as exc:
        raise BundleError(f"the bundle's scorer arrays are unusable ({exc}); re-export the bundle") from None
    return scorer


def device_featurizer(catalog) -> Featurizer:
    """The scorer's features over the device catalog (genre codes built once per catalog version)."""
    genre = catalog._cached("scorer_genre", lambda: catalog.code_column("genre"))  # computed per row asked for
    tags = catalog._cached("scorer_tags", lambda: TagCodes(catalog._tag_tuple, len(catalog)))
    return Featurizer(catalog.feature_table(), genre, tags, catalog.vectors)


class ScorerStage:
    """scorer: the bundle's interpretable scorer re-scores the pool, keeping the features it read."""

    def __init__(self, models: Models):
        self.models = models
        self.scorer = open_scorer(models.manifest, models.bundle)  # a few arrays: checked when the bundle opens, not mid-request

    def applies(self, request: Request) -> bool:
        """A scorer ships and is wanted: by default only when no deep ranker runs for this engine."""
        use = request.policy.use_scorer
        if request.cold or use is False or not self.models.manifest.ranking.get("scorer"):
            return False
        if use is None:
            ranker = self.models.manifest.model("ranker", self.models.backend_name)
            return ranker is None or not request.policy.use_ranker
        return True

    def __call__(self, request: Request) -> Request:
        scorer, state, pool = self.scorer, request.state, request.pool
        featurize, history = device_featurizer(request.catalog), np.asarray(state.consumed, np.int64)
        liked = np.asarray(state.loved, np.int64)
        side = request.for_user("scorer_side", lambda: featurize.side(history, liked))
        feats = featurize(request.query, request.vectors, pool, history, request.hour, request.device, int(request.now),
                          liked, side)
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            scores = scorer.score(feats)
        if not np.all(np.isfinite(scores)):  # raised, not dropped: the stage is skipped and the order stays
            raise ModelError("the bundle's scorer gave a non-finite score (its weights are too large for these "
                             "features); the previous order is kept, re-train the scorer and export the bundle")
        request.scorer_features, request.scorer = feats, scorer
        request.relevance = standardize(scores)  # contributions: for the shown items only
        return request


@dataclass
class ContextPrior:
    """Log lift of each modality per device and per part of day (0 = the catalog-wide share)."""

    modalities: list[str]
    device: dict[str, list[float]]
    day_part: dict[str, list[float]]
    weight: float

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> ContextPrior | None:
        spec = manifest.ranking.get("context_prior")
        if not spec:
            return None
        # the schema bounds the weight to [0, 100] and each lift to [-100, 100] (huge lifts summed to inf)
        return cls(list(spec["modalities"]), spec["device"], spec["day_part"], float(spec.get("weight", 0.0)))

    def lift(self, device: int, hour: float) -> np.ndarray:
        """(len(MODALITIES),) lift for this context, in the runtime's modality order."""
        out = np.zeros(len(MODALITIES))
        rows = [self.day_part.get(DAY_PARTS[day_part(hour)])]
        if 0 <= device < len(DEVICES):
            rows.append(self.device.get(DEVICES[device]))
        for row in rows:
            if row is not None:
                for name, value in zip(self.modalities, row):
                    if name in MODALITIES:
                        out[MODALITIES.index(name)] += float(value)
        return out


class ContextStage:
    """context: a small boost for the modalities this device and time of day favour (optional)."""

    def __init__(self, manifest: Manifest):
        self.prior = ContextPrior.from_manifest(manifest)
        self._lifts: tuple = (self.prior, {})  # the prior, and its lifts by (device, part of day): a few

    def lifts(self, device: int, hour: float) -> np.ndarray:
        """The prior's lift for this context by modality code, then a 0 that code -1 (unknown) reads; made
        once per device and part of day (all it depends on), again for a prior put in its place."""
        if self._lifts[0] is not self.prior:
            self._lifts = (self.prior, {})
        kept, key = self._lifts[1], (device if 0 <= device < len(DEVICES) else -1, day_part(hour))
        lifts = kept.get(key)
        if lifts is None:
            lifts = np.r_[self.prior.lift(device, hour), 0.0]
            lifts.flags.writeable = False  # shared by the requests of that context
            kept[key] = lifts
        return lifts

    def weight(self, request: Request) -> float:
        chosen = request.policy.context_weight
        return (self.prior.weight if chosen is None else float(chosen)) if self.prior else 0.0

    def applies(self, request: Request) -> bool:
        """Not after the scorer: its features hold device x modality and part of day x modality already, and
        its contributions must add up to the order it gives (spec §4 Context)."""
        return (self.prior is not None and self.weight(request) > 0 and request.fallback is None
                and request.scorer is None)

    def __call__(self, request: Request) -> Request:
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            boost = self.lifts(request.device, request.hour)[request.catalog.feature_table().modality[request.pool]]
            relevance = request.relevance + self.weight(request) * boost
        if not np.array_equal(np.isfinite(relevance), np.isfinite(request.relevance)):  # else the items are dropped
            raise ModelError("the context prior gave a non-finite boost; the list keeps the order without it")
        request.relevance = relevance
        return request


def engagement_weight(request: Request, manifest: Manifest) -> float:
    """How strongly liked and finished items pull the query (Policy.engagement, else the bundle's)."""
    chosen = request.policy.engagement
    return float(manifest.ranking.get("engagement", 0.0)) if chosen is None else float(chosen)


def engagement_pull(request: Request, weight: float, means: tuple | None = None) -> np.ndarray | None:
    """The query's pull towards items the user liked (full weight) or finished (half weight): a `like`
    says more than a `play`, a `finish` more than a `play` that stopped early. means: engaged_means(request)
    when the caller keeps them (kept_pull)."""
    if not weight > 0:
        return None
    pull = None
    for mean, share in zip(engaged_means(request) if means is None else means, (1.0, 0.5)):
        if mean is not None:
            term = mean * weight * share
            pull = term if pull is None else pull + term
    return pull


def kept_pull(request: Request, weight: float) -> np.ndarray | None:
    """engagement_pull with its means built once per user state: kept in the user's cache entry, which a
    new event or a catalog change replaces (the retrieve stage's, on every request)."""
    if not weight > 0:
        return None
    keep = getattr(request, "for_user", None)  # a bare record (a test's, a tool's) has no user entry: built anew
    return engagement_pull(request, weight, None if keep is None else keep("engagement means",
                                                                            lambda: engaged_means(request)))


def pulled_query(query: np.ndarray, pull: np.ndarray) -> np.ndarray:
    """`query` plus `pull` in units of its length, scaled back to that length (float32)."""
    norm = _norm(query)
    pulled = query + pull * norm
    return (pulled * (norm / max(_norm(pulled), 1e-12))).astype(np.float32)


def _norm(vector: np.ndarray) -> float:
    """float(np.linalg.norm(vector)) of a 1-d float vector (the same sqrt of the same dot), without its wrapper."""
    return float(np.sqrt(vector.dot(vector)))


def engaged_means(request: Request) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The mean vectors of the newest 5 liked and of the newest 5 finished items (None: no such item)."""
    state, cat = request.state, request.catalog
    means = tuple(cat.vectors(np.asarray(rows, np.int64)).mean(0) if rows else None
                  for rows in (state.loved[-5:], state.finished[-5:]))
    for mean in means:
        if mean is not None:
            mean.flags.writeable = False  # kept per user state: shared by its requests
    return means


def rows_with_tags(catalog, tags) -> np.ndarray:
    """True for every row carrying one of `tags` (exact tag match; tag_column.py reads the bundle's
    rows without decoding them)."""
    out = np.r_[catalog.tag_column.rows_with(tags), np.zeros(len(catalog.added), bool)]
    for i, item in enumerate(catalog.added):
        if set(item.meta.get("tags", [])) & set(tags):
            out[catalog.base_count + i] = True
    return out
