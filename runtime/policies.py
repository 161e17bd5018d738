"""What happens between raw scores and the list a user sees: filters, blends, boosts, diversity.

Each policy is a small function over a candidate short list (row indices,
scores, vectors, metadata) so it can be tested on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from edgerec.errors import ConfigError
from edgerec.runtime import checks
from edgerec.runtime.vocab import MODALITIES

COLD_MAX_PER_CREATOR = 3  # newcomers: items of one creator before others (spec §5; docs/runtime.md: 2 cost more)
KIDS_SAFE_GENRES = frozenset({"family", "animation", "kids", "pets", "cooking", "diy", "science", "travel",
                              "documentary", "classical", "ambient", "pop", "folk", "dance", "sports"})


@dataclass
class Filters:
    """Business filters: every set field must hold for an item to be shown."""

    languages: list[str] | None = None
    modalities: list[str] | None = None
    genres: list[str] | None = None
    exclude_genres: list[str] | None = None
    exclude_items: list[str] | None = None
    kids_safe: bool = False
    max_duration_s: float | None = None

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> Filters:
        """ConfigError for a field of the wrong kind (a lone string for a list, NaN for a number)."""
        for name in ("languages", "modalities", "genres", "exclude_genres", "exclude_items"):
            setattr(self, name, checks.names(getattr(self, name), f"Filters.{name}"))
        checks.flag(self.kids_safe, "Filters.kids_safe")
        self.max_duration_s = checks.number(self.max_duration_s, "Filters.max_duration_s", 0.0, allow_none=True,
                                            low_open=True)
        return self


@dataclass
class Policy:
    """Tunable behaviour of `recommend()` (bundle defaults apply where not set: see with_defaults)."""

    diversity: float | None = None  # MMR trade-off: 0 = pure relevance, 1 = pure novelty; None: the bundle's
    max_per_creator: int | None = None
    max_per_genre: int | None = None
    cold_max_per_creator: int | None = None  # newcomers' lists (cold, short history): creator cap; None: the bundle's; 0: off
    freshness: float = 0.0  # score bonus for new releases (decays over freshness_days)
    freshness_days: float = 30.0
    language_boost: float = 0.05  # bonus for items in the user's usual languages
    feedback_weight: float = 1.0  # how strongly "more like this" / "not interested" steer (in score deviations)
    popularity: float = 0.0  # blend of standardised log popularity into relevance (0 = none, < 0 = long tail)
    hub_penalty: float = 0.0  # share of each item's hubness taken off its score (coverage; needs the column)
    cold_start_items: int = 3  # histories shorter than this blend in popularity
    short_list: int | None = None  # candidates the policies re-rank; None: the bundle's (100 without one)
    keep_top: int = 0  # the list's first places keep the model's order; freshness, popularity, hubs, diversity act below
    use_ranker: bool = True
    # responsible ranking (runtime/ranking.py, runtime/fairness.py); None = the bundle's setting
    use_scorer: bool | None = None  # None: the bundle's interpretable scorer runs when no deep ranker does
    context_weight: float | None = None  # boost from the bundle's device / time-of-day priors
    engagement: float | None = None  # pull of liked (and finished) items on the query
    fairness: float = 0.0  # 0 = relevance only; higher trades relevance for provider exposure
    fairness_method: str = "exposure"  # exposure (providers' excess share of plays) | cap (per-provider cap)
    # replays (runtime/replay.py): favourites that come back; None: the bundle's defaults.replay, else 0 (off)
    replay: float | None = None  # weight of the user's own recency-weighted plays (0: the seen filter removes all)
    replay_min_plays: int = 2  # plays in the history window that make an item a favourite
    replay_gap: int = 10  # an item among the newest this many plays stays filtered (a cool-down)
    replay_minutes: float = 60.0  # ... and one played within this many minutes of the request
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.check()

    @classmethod
    def from_dict(cls, weights: dict) -> Policy:
        """A Policy from JSON-like settings (e.g. `edgerec tune`'s policy.json); unknown names are refused."""
        if not isinstance(weights, dict):
            raise ConfigError(f"policy settings must be a JSON object of Policy fields (got {type(weights).__name__})")
        unknown = sorted(set(map(str, weights)) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"unknown policy settings {', '.join(unknown)}; the fields are "
                              f"{', '.join(cls.__dataclass_fields__)}")
        return cls(**weights)

    def unresolved(self) -> bool:
        """Whether a field the bundle's defaults fill is unset (with_defaults)."""
        return None in (self.short_list, self.diversity, self.cold_max_per_creator, self.replay)

    def with_defaults(self, defaults: dict | None = None) -> Policy:
        """This policy with a bundle's `defaults` (diversity 0, short list 100, newcomers' creator cap
        COLD_MAX_PER_CREATOR, replay 0 without them) where it leaves those unset: what a request runs with.
        A policy that sets only, say, freshness keeps the bundle's short list (it used to take 100)."""
        defaults = defaults or {}
        diversity = float(defaults.get("diversity", 0.0)) if self.diversity is None else self.diversity
        short_list = int(defaults.get("short_list", 100)) if self.short_list is None else self.short_list
        cold_cap = self.cold_max_per_creator
        cold_cap = int(defaults.get("cold_max_per_creator", COLD_MAX_PER_CREATOR)) if cold_cap is None else cold_cap
        replay = float(defaults.get("replay", 0.0)) if self.replay is None else self.replay
        return replace(self, diversity=diversity, short_list=short_list, cold_max_per_creator=cold_cap,
                       replay=replay)

    def check(self) -> Policy:
        """ConfigError naming a field that is not a finite number in its range (or of the wrong kind); each number
        is kept as a plain float or int (a numpy float64 weight made the float32 query float64: other scores)."""
        self.diversity = checks.number(self.diversity, "Policy.diversity", 0.0, 1.0, allow_none=True)
        for name in ("max_per_creator", "max_per_genre"):
            setattr(self, name, checks.integer(getattr(self, name), f"Policy.{name}", 1, allow_none=True))
        self.cold_max_per_creator = checks.integer(self.cold_max_per_creator, "Policy.cold_max_per_creator", 0, allow_none=True)
        self.freshness = checks.number(self.freshness, "Policy.freshness", 0.0, 100.0)
        self.freshness_days = checks.number(self.freshness_days, "Policy.freshness_days", 0.0, 36_500.0, low_open=True)
        self.popularity = checks.number(self.popularity, "Policy.popularity", -100.0, 100.0)
        self.hub_penalty = checks.number(self.hub_penalty, "Policy.hub_penalty", 0.0, 10.0)
        self.language_boost = checks.number(self.language_boost, "Policy.language_boost", -100.0, 100.0)
        self.feedback_weight = checks.number(self.feedback_weight, "Policy.feedback_weight", 0.0, 100.0)
        self.cold_start_items = checks.integer(self.cold_start_items, "Policy.cold_start_items", 0, 10_000)
        self.short_list = checks.integer(self.short_list, "Policy.short_list", 1, 100_000, allow_none=True)
        self.keep_top = checks.integer(self.keep_top, "Policy.keep_top", 0, 10_000)
        checks.flag(self.use_ranker, "Policy.use_ranker")
        if self.use_scorer is not None:
            checks.flag(self.use_scorer, "Policy.use_scorer")
        self.context_weight = checks.number(self.context_weight, "Policy.context_weight", 0.0, 100.0, allow_none=True)
        self.engagement = checks.number(self.engagement, "Policy.engagement", 0.0, 10.0, allow_none=True)
        self.fairness = checks.number(self.fairness, "Policy.fairness", 0.0, 100.0)
        checks.choice(self.fairness_method, ("exposure", "cap"), "Policy.fairness_method")
        self.replay = checks.number(self.replay, "Policy.replay", 0.0, 100.0, allow_none=True)
        self.replay_min_plays = checks.integer(self.replay_min_plays, "Policy.replay_min_plays", 1, 10_000)
        self.replay_gap = checks.integer(self.replay_gap, "Policy.replay_gap", 0, 10_000)
        self.replay_minutes = checks.number(self.replay_minutes, "Policy.replay_minutes", 0.0, 525_600.0)
        checks.instance(self.extra, dict, "Policy.extra", allow_none=False)
        return self


def column_values(catalog, column: str) -> set[str]:
    """The values a categorical column takes among the active items: bundle rows not removed, and items
    added on the device and not removed. Onboarding accepts these only: a genre whose items were all
    removed was accepted and steered nothing."""
    def build():
        codes, vocab = catalog.categorical.get(column, (np.zeros(0, np.int64), []))
        codes = np.asarray(codes)
        if catalog.removed is not None and catalog.removed.any():  # None: nothing was removed
            codes = codes[~catalog.removed]
        valid = codes[(codes >= 0) & (codes < len(vocab))].astype(np.intp)  # -1: no value
        held = np.flatnonzero(np.bincount(valid, minlength=len(vocab)))
        added = {str(a.meta[column]) for a in catalog.added if a.vector is not None and a.meta.get(column)}
        return {vocab[c] for c in held if vocab[c]} | added
    return catalog._cached(f"active values of {column}", build)


def catalog_values(catalog, column: str) -> set[str]:
    """The values a categorical column has ever held here, removed items included: what a filter value
    is checked against (spec §5: a value no item has now is allowed and gives an empty list)."""
    def build():
        _, vocab = catalog.categorical.get(column, (None, []))
        return {v for v in vocab if v} | {str(a.meta[column]) for a in catalog.added if a.meta.get(column)}
    return catalog._cached(f"values of {column}", build)


def check_filters(catalog, filters: Filters | None) -> None:
    """ConfigError for a filter that could only ever empty the list by mistake: a value that differs
    from the catalog's only in case ('Comedy' for 'comedy'), a column no item of this catalog fills
    (languages on a catalog without languages), an unknown modality. A well-formed value no item has
    yet stays allowed: the list is then empty, which is its true answer."""
    if filters is None:
        return
    for column, values in (("language", filters.languages), ("genre", filters.genres),
                           ("genre", filters.exclude_genres)):
        options = catalog_values(catalog, column) if values else set()
        miscased = [v for v in values or () if v not in options and _folds_to(v, options)]
        if values and (miscased or not options):
            checks.known(miscased or values, options, f"{column}s")
    if filters.modalities:
        checks.known(filters.modalities, set(MODALITIES), "modalities", "the known")  # not only this catalog's
    if filters.kids_safe and not catalog_values(catalog, "genre"):
        raise ConfigError("this catalog has no genres, so no item can be shown as kids-safe; drop "
                          "Filters.kids_safe or export the bundle from data with a genre column")
    if filters.max_duration_s is not None and not catalog._cached("has durations", lambda: _has_durations(catalog)):
        raise ConfigError("this catalog's items carry no duration, so Filters.max_duration_s would pass "
                          "none of them; drop it or export the bundle from data with a duration column")


def _has_durations(catalog) -> bool:
    """Whether any item has a duration, read a block of the stored column at a time (no float64 copy
    of the catalog: a stored value is > 0 exactly when its float64 value is)."""
    if "duration" not in catalog.numeric:
        return False
    stored, block = catalog.numeric["duration"], 1 << 16
    return any(bool(np.any(stored[s:s + block] > 0)) for s in range(0, catalog.base_count, block)) or bool(np.any(
        catalog.numeric_column("duration", np.arange(catalog.base_count, len(catalog))) > 0))


def _folds_to(value: str, options: set[str]) -> bool:
    folded = value.casefold()
    return any(o.casefold() == folded for o in options)


def filter_mask(catalog, rows: np.ndarray, filters: Filters | None) -> np.ndarray:
    """True where the item at `rows` passes every filter."""
    keep = np.ones(len(rows), bool)
    if filters is None:
        return keep
    if filters.languages:
        keep &= catalog.matches("language", rows, filters.languages)
    if filters.modalities:
        keep &= catalog.matches("modality", rows, filters.modalities)
    if filters.genres:
        keep &= catalog.matches("genre", rows, filters.genres)
    if filters.exclude_genres:
        keep &= ~catalog.matches("genre", rows, filters.exclude_genres)
    if filters.kids_safe:
        keep &= catalog.matches("genre", rows, KIDS_SAFE_GENRES)
    if filters.max_duration_s is not None:  # an unknown duration (0) cannot be shown to hold
        duration = catalog.numeric_column("duration", rows)
        keep &= (duration > 0) & (duration <= filters.max_duration_s)
    if filters.exclude_items:
        excluded = {catalog.index.get(i) for i in filters.exclude_items} - {None}
        keep &= ~np.isin(rows, list(excluded))
    return keep


def standardize(scores: np.ndarray) -> np.ndarray:
    """Zero mean, unit deviation over the finite scores (-inf stays -inf)."""
    finite = np.isfinite(scores)
    count = int(finite.sum())
    if count < 2:
        return np.where(finite, 0.0, scores)
    whole = count == len(scores)  # the usual case: no copies of the finite part
    part = scores if whole else scores[finite]
    # float64: the sum over the count is np.mean's own value, without its Python wrapper
    centred = scores - (np.add.reduce(part) / count if part.dtype == np.float64 else part.mean())
    spread = centred if whole else centred[finite]
    std = math.sqrt(float(spread @ spread) / count)  # np.std takes several passes
    return centred / max(std, 1e-9)


def popularity_prior(popularity: np.ndarray, release_ts: np.ndarray, now: float, trend_days: float = 30.0) -> np.ndarray:
    """Log popularity with a bonus for recent releases: what a newcomer sees first. An item released
    after `now` gets none (it cannot be played yet; in a replay of an old log its popularity is the future's)."""
    age_days = np.maximum(now - release_ts, 0) / 86_400
    fresh = np.where((release_ts > 0) & (release_ts <= now), np.exp(-age_days / trend_days), 0.0)
    return np.log1p(popularity) * (1.0 + fresh)


def freshness_boost(release_ts: np.ndarray, now: float, policy: Policy) -> np.ndarray:
    """Bonus for new releases: `freshness` at release, decaying over `freshness_days` (0 when unknown)."""
    if not policy.freshness:
        return np.zeros(len(release_ts))
    age = np.maximum(now - release_ts, 0) / 86_400
    return policy.freshness * np.where((release_ts > 0) & (release_ts <= now), np.exp(-age / policy.freshness_days), 0.0)


def popularity_boost(popularity: np.ndarray, policy: Policy) -> np.ndarray:
    """`popularity` times the standardised log popularity of the candidates."""
    if not policy.popularity:
        return np.zeros(len(popularity))
    return policy.popularity * standardize(np.log1p(np.asarray(popularity, np.float64)))


def hub_boost(hubness: np.ndarray, cosines: np.ndarray, policy: Policy) -> np.ndarray:
    """Minus `hub_penalty` times each candidate's hubness, in units of the spread of the candidates'
    cosines to the query (the relevance's units): the plain list in the order of
    cosine - hub_penalty x hubness."""
    finite = np.asarray(cosines, np.float64)
    finite = finite[np.isfinite(finite)]
    spread = float(finite.std()) if len(finite) > 1 else 0.0
    if not policy.hub_penalty or spread <= 1e-9:
        return np.zeros(len(hubness))
    return -policy.hub_penalty * np.asarray(hubness, np.float64) / spread


def feedback_adjustment(vectors: np.ndarray, liked: np.ndarray, disliked: np.ndarray, policy: Policy) -> np.ndarray:
    """Raise near neighbours of "more like this" items, lower those of "not interested" ones.

    "Near" is relative to the candidates at hand (standardised similarity above
    one deviation), so it works the same for any model's similarity scale.
    """
    adjust = np.zeros(len(vectors), np.float64)
    for group, sign in ((liked, 1.0), (disliked, -2.0)):
        if len(group) and len(vectors) > 1:
            closeness = standardize((vectors @ group.T).max(1).astype(np.float64))
            adjust += sign * policy.feedback_weight * np.clip(closeness - 1.0, 0.0, 3.0)
    return adjust
