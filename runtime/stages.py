"""The request path: which stages run, in which order, and the last four of them.

    history   (required)  user state from the on-device history     user_state.py
    encode    (required)  user vector; on failure: popularity list  user_state.py
    retrieve  (required)  query vector and candidate pool           retrieve.py
    replay    (optional)  played favourites join the pool           replay.py
    rank      (required)  relevance of each candidate               here
    ranker    (optional)  the bundle's ranker re-scores the pool    here
    scorer    (optional)  the interpretable scorer re-scores it     ranking.py
    context   (optional)  device / time-of-day priors boost         ranking.py
    policies  (required)  feedback, language, freshness, diversity  here
    fairness  (optional)  provider-exposure re-ranking              fairness.py
    explain   (required)  the results, each with its reason         here

Each stage reads the fields earlier stages filled in the `Request` and
fills its own; pipeline.py runs them.
"""

from __future__ import annotations

from copy import copy
from dataclasses import replace

import numpy as np

from edgerec.errors import BundleError
from edgerec.runtime.cold_spread import spread_tiers
from edgerec.runtime.drift import DriftSample, top_summary
from edgerec.runtime.explain import Explainer, Reason
from edgerec.runtime.fairness import fairness_applies, fairness_stage
from edgerec.runtime.features import VERSION as FEATURES_VERSION
from edgerec.runtime.features import feature_count, history_side, ranker_features
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.list_order import kept_head, policy_order
from edgerec.runtime.models import Models
from edgerec.runtime.pipeline import Pipeline, Stage
from edgerec.runtime.policies import (
    Filters,
    feedback_adjustment,
    freshness_boost,
    hub_boost,
    popularity_boost,
    standardize,
)
from edgerec.runtime.ranking import ContextStage, ScorerStage
from edgerec.runtime.replay import replay_applies, replay_reasons, replay_stage
from edgerec.runtime.request import Recommendation, Request
from edgerec.runtime.retrieve import RetrieveStage
from edgerec.runtime.user_state import EncodeStage, HistoryStage, UserCache

NO_FILTERS = Filters()
MAX_SHORT_LIST = 100_000  # Policy.short_list's largest value (spec §5)


def default_pipeline(models: Models, history: HistoryStore, users: UserCache) -> Pipeline:
    encode = EncodeStage(models)
    ranker = RankerStage(models)
    scorer = ScorerStage(models)
    context = ContextStage(models.manifest)
    widen = PoliciesStage()
    pipeline = Pipeline([
        Stage("history", HistoryStage(history, users)),
        Stage("encode", encode, applies=encode.applies, fallback=encode.fallback),
        Stage("retrieve", RetrieveStage(models)),
        Stage("replay", replay_stage, required=False, applies=replay_applies),
        Stage("rank", rank),
        Stage("ranker", ranker, required=False, applies=ranker.applies),
        Stage("scorer", scorer, required=False, applies=scorer.applies),
        Stage("context", context, required=False, applies=context.applies),
        Stage("policies", widen),
        Stage("fairness", fairness_stage, required=False, applies=fairness_applies),
        Stage("explain", explain),
    ])
    widen.pipeline = pipeline
    return pipeline


def rank(request: Request) -> Request:
    """Relevance from retrieval: exact float scores of the pool against the query, standardised
    (cold starts and short histories keep their popularity-blended retrieval scores)."""
    cat, state, policy, pool = request.catalog, request.state, request.policy, request.pool
    request.vectors = vectors = cat.vectors(pool)
    if request.cold:
        request.relevance = standardize(request.pool_scores.astype(np.float64))
        return request
    exact = vectors @ request.query
    plain = len(state.consumed) >= policy.cold_start_items
    if plain and request.vector is not None and not state.liked and request.filters in (None, NO_FILTERS):
        raw = vectors @ request.vector  # not the query, which engagement pulls towards finished items
        found = top_summary(raw if request.replay is None else raw[request.replay == 0])
        # the model's own scores over unseen items: what drift is measured on (as the export's baseline),
        # with the user: the window keeps one sample per user
        request.top_scores = None if found is None else DriftSample(*found, request.user)
    if not plain:
        exact = request.pool_scores
    request.relevance = standardize(exact.astype(np.float64))
    return request


class RankerStage:
    """ranker: the bundle's ranker model re-scores the pool (optional: on failure the retrieval order stays)."""

    def __init__(self, models: Models):
        self.models = models
        check_rankers(models.manifest)  # on open: a ranker of other features would run, silently wrong

    def applies(self, request: Request) -> bool:
        """The bundle has a ranker for this engine (opened in the stage, so a load failure is skipped too)."""
        models = self.models
        return (not request.cold and request.policy.use_ranker
                and models.manifest.model("ranker", models.backend_name) is not None)

    def __call__(self, request: Request) -> Request:
        entry, backend = self.models.ranker
        state, pool = request.state, request.pool
        table, history = request.catalog.feature_table(), np.array(state.consumed, np.int64)
        side = request.for_user("ranker_side", lambda: history_side(table, history))
        feats = ranker_features(request.query, request.vectors, pool, table, history, request.hour, request.device,
                                int(request.now), side)
        logits = run_ranker(entry, backend, feats)
        if len(logits) != len(pool) or not np.all(np.isfinite(logits)):
            raise ValueError("ranker returned another number of scores, or non-finite ones")
        request.relevance = standardize(logits.astype(np.float64))
        return request


def run_ranker(entry, backend, feats: np.ndarray) -> np.ndarray:
    """(C,) logits of (C, F) features; a fixed-size TFLite ranker runs on blocks of its batch, zero-padded
    (export checks parity through this too, so the file is checked as it runs here)."""
    if entry.batch:
        out = []
        for start in range(0, len(feats), entry.batch):
            padded = block = feats[start:start + entry.batch]
            if len(block) < entry.batch or block.dtype != np.float32:  # (a whole float32 block runs as it is)
                padded = np.zeros((entry.batch, feats.shape[1]), np.float32)
                padded[: len(block)] = block
            out.append(np.asarray(backend.run({"features": padded})[0]).reshape(-1)[: len(block)])
        return np.concatenate(out)
    return np.asarray(backend.run({backend.input_names[0]: feats})[0]).reshape(-1)  # (C,) or a (C, 1) column


def check_rankers(manifest) -> None:
    """BundleError unless every ranker of the bundle reads the features this runtime computes."""
    width = feature_count(manifest.dim)
    for entry in (m for m in manifest.models if m.role == "ranker"):
        version = (entry.extra or {}).get("features_version", FEATURES_VERSION)
        axis = entry.inputs[0].shape[-1] if entry.inputs and entry.inputs[0].shape else None
        if version != FEATURES_VERSION or (isinstance(axis, int) and axis != width):
            raise BundleError(f"the bundle's {entry.format} ranker reads ranker features version {version} "
                              f"({axis} columns); this runtime computes version {FEATURES_VERSION} ({width} columns): "
                              "export the bundle again with this edgerec version")


def policies(request: Request) -> Request:
    """Feedback, replay, language, freshness and popularity boosts, then MMR diversity and per-creator/genre caps
    (below the first `keep_top` places, which keep the order of relevance with feedback and language)."""
    cat, state, policy, pool, vectors = request.catalog, request.state, request.policy, request.pool, request.vectors
    boost = np.zeros(len(pool))
    if state.liked or state.disliked:
        boost += feedback_adjustment(vectors, cat.vectors(state.liked), cat.vectors(state.disliked), policy)
    if request.replay is not None:  # the favourites the replay stage brought back
        boost += request.replay
    if policy.language_boost and state.languages:
        usual = request.for_user("usual languages", lambda: [lang for lang, _ in state.languages.most_common(2)])
        boost += policy.language_boost * cat.matches("language", pool, usual)
    request.head = kept_head(request.relevance + boost, policy, request.k)  # before the catalog-wide levers
    if policy.freshness:
        boost += freshness_boost(cat.numeric_column("release_ts", pool), request.now, policy)
    if policy.popularity:
        boost += popularity_boost(cat.numeric_column("popularity", pool), policy)
    if policy.hub_penalty and not request.cold and request.query is not None:
        boost += hub_boost(cat.hubness(pool), vectors @ request.query, policy)
    request.relevance = relevance = request.relevance + boost
    request.order = np.asarray(policy_order(relevance, vectors, request.k, policy, cat, pool, request.head,
                                            spread_tiers(request)), np.int64)
    return request


class PoliciesStage:
    """policies; a list the caps left short of k while the pool was cut runs again from retrieve with a short list
    twice the pool's length, until it is full or nothing is left out (spec §5): the pool widens until the caps keep k in
    score order, but diversity and the boosts walk it in another order, which two caps may keep fewer of."""

    def __init__(self):
        self.pipeline: Pipeline | None = None  # the stages from retrieve to policies run again

    def __call__(self, request: Request) -> Request:
        policies(request)
        while len(request.order) < request.k and request.pool_cut and request.unretrieved is not None:
            start, had = request.unretrieved, len(request.pool)  # the pool may pass short_list (the caps' cut)
            if start.policy.short_list >= MAX_SHORT_LIST or self.pipeline is None:
                break
            again = copy(start)
            again.policy = replace(start.policy, short_list=min(2 * had, MAX_SHORT_LIST))
            again = self.pipeline.run_span(again, "retrieve", "policies")
            if again.done or len(again.pool) <= had:  # nothing new: the same list
                break
            request.count("list_widened")
            request.__dict__.update(policies(again).__dict__)  # the pipeline goes on with the request it gave
        return request


def explain(request: Request) -> Request:
    """The list as Recommendations, each with why it is there."""
    cat, order = request.catalog, request.order
    rows = request.pool[order]
    metas = cat.metas(rows)
    if request.fallback is not None:  # say so, rather than dress popularity up as personal
        reasons = [Reason("fallback", request.fallback) for _ in metas]
    else:
        reasons = _explainer(request).explain_all(metas, request.vectors[order])
        reasons = replay_reasons(request, rows, reasons)
    if request.scorer is not None and request.fallback is None:
        reasons = scorer_reasons(request, metas, reasons)
    request.results = []
    for meta, reason, score in zip(metas, reasons, request.relevance[order].tolist()):
        item_id, title = meta.pop("item_id"), meta.pop("title", "")
        request.results.append(Recommendation(item_id, score, title, reason, meta))
    return request


def _explainer(request: Request) -> Explainer:
    """The user's side of the reasons (history vectors, series watched), built once per user state:
    kept in the user's cache entry, which a new event or a catalog change replaces."""
    return request.for_user(f"explainer cold={request.cold}", lambda: _built_explainer(request))


def _built_explainer(request: Request) -> Explainer:
    """A reason never names an item the user refused (spec §6): "not interested" rows leave the history
    it may name and their tags leave the profile ("liked" holds none of them, spec §2)."""
    cat, state = request.catalog, request.state
    history, tags = state.consumed[-50:], dict(state.tags)
    refused = set(state.disliked).intersection(history) if state.disliked else ()
    if refused:
        history = [row for row in history if row not in refused]
        for tag, count in cat.tag_counts(sorted(refused)).items():  # what they added to the profile (§2)
            if tags.get(tag, 0) > count:
                tags[tag] -= count
            else:
                tags.pop(tag, None)
    return Explainer(cat, history, state.liked, tags, request.cold, state.choices)


def scorer_reasons(request: Request, metas: list[dict], reasons: list[Reason]) -> list[Reason]:
    """The scorer's top contributions in words; each item's terms (and their sum) go in its meta."""
    scorer, features = request.scorer, request.scorer_features[request.order]
    same = scorer.same_for_all(request.scorer_features)  # over every scored candidate, not the k shown
    out = []
    for meta, reason, shown, terms in zip(metas, reasons, features, scorer.contributions(features)):
        meta["contributions"] = {n: v for n, v in scorer.grouped(terms).items() if v != 0.0}
        meta["scorer_score"] = float(terms.sum())
        words = scorer.words(shown, terms, same=same)
        out.append(Reason("scorer", f"{words}; {reason.text}", reason.item_id, reason.tags))
    return out
