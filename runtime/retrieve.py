"""The "retrieve" stage: the query vector, then the candidate pool (best rows that pass the filters).

A plain request (a real history, no "more like this") takes its pool
straight from the scan's top rows or the ANN index; anything else scores
every row: cold start (popularity, onboarding tags and languages), short
histories (blended with popularity), feedback pulls, filters that leave too
few of the top rows.
"""

from __future__ import annotations

import math
from copy import copy

import numpy as np

from edgerec.runtime.caps import capped_reach
from edgerec.runtime.cold_spread import spread_newcomers
from edgerec.runtime.column_rows import release_pages
from edgerec.runtime.models import Models
from edgerec.runtime.policies import filter_mask, popularity_prior, standardize
from edgerec.runtime.ranking import engagement_weight, kept_pull, pulled_query, rows_with_tags
from edgerec.runtime.request import Request
from edgerec.runtime.retrieval import sorted_contains, top_rows

FRESH_CANDIDATES = 20  # new releases that join the pool when Policy.freshness is set
KEPT_SEARCHES = 4  # scan answers kept per user state (one query each; a few counts if k varies)
KEPT_ROWS = 4_096  # longest answer kept (12 B a row): <= 192 KiB a user, 12 MiB over a 64-user cache; longer: searched anew
INDEX_CANDIDATES = 400  # fewest rows an ANN index is asked for when every row needs a score


class RetrieveStage:
    def __init__(self, models: Models):
        self.models = models
        self._prior_cache: tuple | None = None

    def __call__(self, request: Request) -> Request:
        request.unretrieved = copy(request)  # the policies stage widens a list the caps cut short from here
        self._query(request)
        spread_newcomers(request)  # before the pool: the caps decide how far it reaches
        cat = request.catalog
        inactive, added = cat.inactive_rows(), cat.added_matrix()
        pool = None
        if self._streamable(request):
            pool = self._streamed_pool(request, added, inactive)  # with its pool_scores
            request.count("retrieve_streamed" if pool is not None else "retrieve_streamed_too_few")
        if pool is None:  # every score is needed (cold start, short history, feedback pulls, filters)
            fresh = fresh_rows(cat, request)  # once: the index's answer and the pool both take them
            pool, scores = self._scored_pool(request, added, inactive, fresh, exact=False)
            if self.models.ann_kind and not request.cold and self._too_few(request, pool):
                request.count("ann_too_few")  # the filters or caps left too few of the index's candidates
                pool, scores = self._scored_pool(request, added, inactive, fresh, exact=True)
            elif self.models.ann_kind and not request.cold:
                request.pool_cut = True  # rows outside the index's answer were never candidates
            request.scores, request.pool_scores = scores, scores[pool]
        request.pool = pool
        request.done = not len(pool)  # nothing to rank: the list is empty
        return request

    @staticmethod
    def _too_few(request: Request, pool: np.ndarray) -> bool:
        """Whether a pool from the index's candidates falls short: fewer rows than the short list, or fewer
        than k that the creator / genre caps keep (the index's few creators cut lists short). A newcomer's
        spread passes rows over and drops none, as in _pool."""
        policy, k = request.policy, request.k
        reached = capped_reach(request.catalog, pool, policy, k, spread=bool(request.spread))[0]
        return len(pool) < max(policy.short_list, k) or reached < k

    def _query(self, request: Request) -> None:
        """The user vector, pulled towards "more like this" items (which also end a cold start) and,
        with an engagement weight, towards liked and finished items (see ranking.engagement_pull, kept_pull)."""
        state, query = request.state, request.vector
        request.cold = query is None
        pull = None if query is None else kept_pull(request, engagement_weight(request, self.models.manifest))
        if pull is not None:  # in units of the user vector's length, which is kept (the drift monitor reads it)
            query = pulled_query(query, pull)
        if state.liked and request.fallback is None:
            liked = request.catalog.vectors(np.array(state.liked[-3:], np.int64))
            pull = liked.mean(0) * request.policy.feedback_weight
            pulled = pull if query is None else query + pull
            # a pull of weight 0, or of removed added items (vectors of zeros), has no direction: left out,
            # so a request without a user vector stays cold (not every score tied, rows in row order)
            wide = pulled.astype(np.float64)  # below 1e-12 the normalised query is not a unit vector
            if np.all(np.isfinite(wide)) and np.linalg.norm(wide) >= 1e-12:  # (float64: float32 squares underflow)
                query = (pulled / max(float(np.linalg.norm(pulled)), 1e-12)).astype(np.float32)
                request.cold = False
            else:
                request.count("query_no_direction")
        request.query = query

    def prior(self, cat, now: float) -> tuple[np.ndarray, np.float32]:
        """Standardised popularity-with-freshness of every row at the start of the request's hour, and
        what one matched onboarding choice adds to it; cached per catalog version and hour."""
        hour = int(now // 3600)
        key = (cat.version, len(cat), hour)
        cached = self._prior_cache
        if cached is None or cached[0] != key:
            self._prior_cache = None  # the old one goes before the new one is built
            prior = standard_prior(cat, hour * 3600.0)  # at the hour's start (spec §3): the same all hour
            prior.flags.writeable = False  # shared by the requests of the hour: each copies before it adds
            self._prior_cache = cached = (key, prior, choice_weight(prior))
        return cached[1], cached[2]

    def _scored_pool(self, request: Request, added: np.ndarray, inactive: np.ndarray, fresh: np.ndarray,
                     exact: bool) -> tuple[np.ndarray, np.ndarray]:
        """The pool from a score for every row (-inf for rows the list never shows), and the scores;
        `fresh`: the new releases of fresh_rows."""
        scores = self._scores(request, added, fresh, exact)
        scores[inactive] = -np.inf
        if request.state.excluded:
            scores[list(request.state.excluded)] = -np.inf
        return self._pool(request, scores, added, fresh), scores

    def _scores(self, request: Request, added: np.ndarray, fresh: np.ndarray, exact: bool) -> np.ndarray:
        cat, state, policy, query = request.catalog, request.state, request.policy, request.query
        if request.cold:
            return self._cold_scores(request)
        n = len(state.consumed)
        prior = self._chosen_prior(request) if n < policy.cold_start_items else None
        if self.models.ann_kind and not exact:  # only the index's candidates get a score
            base = np.full(cat.base_count, -np.inf, np.float32)
            skip = _skipped_rows(request, cat.inactive_rows(), state.excluded)
            count = max(4 * policy.short_list, INDEX_CANDIDATES)
            rows, values, _ = self._best_rows(request, count, skip)
            base[rows] = values
            outside = fresh[fresh < cat.base_count]  # new releases get their score outside the index's answer,
            if prior is not None:  # and so do the prior's best rows, which a short history leans on
                outside = np.union1d(outside, _best_of(prior[:cat.base_count], count))
            base[outside] = self.models.scan.exact(outside, query)
        else:
            base = self.models.scan.scores(query)
        scores = np.r_[base, (added @ query).astype(np.float32)] if len(added) else base
        if prior is not None:  # a short history: lean on popularity until it grows
            alpha = n / policy.cold_start_items  # (0 x -inf, a row the index did not score, would warn: kept -inf)
            blend = alpha * standardize(scores) if alpha else np.where(np.isfinite(scores), 0.0, -np.inf)
            scores = (blend + (1 - alpha) * prior).astype(np.float32)
        return scores

    def _cold_scores(self, request: Request) -> np.ndarray:
        """A cold start's score: popularity with freshness, steered by the tag and language profiles
        (onboarding choices, and the recent items' tags when the encoder failed)."""
        state = request.state
        return self._steered_prior(request, state.tags, state.choices.get("tag", ()), state.languages)

    def _chosen_prior(self, request: Request) -> np.ndarray:
        """A short history's prior: the cold start's score from the onboarding choices alone (steering
        by the few items' own tags made MovieLens-100K's first lists worse: 0.24 -> 0.12 of the next 10 items)."""
        choices = request.state.choices
        if not any(choices.values()):  # the prior itself: read, never written, so not copied
            return self.prior(request.catalog, request.now)[0]
        return self._steered_prior(request, choices.get("genre", []) + choices.get("tag", []),
                                   choices.get("tag", ()), choices.get("language", ()))

    def _steered_prior(self, request: Request, genres, tags, languages) -> np.ndarray:
        """The prior plus `weight` for each matched term; request.tiers is 1 where a row matched any (the
        newcomer spread keeps a chosen row before a row that matches nothing, see cold_spread.py)."""
        cat = request.catalog
        prior, weight = self.prior(cat, request.now)
        scores = prior.copy()
        tiers = np.zeros(len(scores), bool)
        for matched in (cat.matches("genre", None, genres) if genres else None,  # the genre column against the
                        rows_with_tags(cat, tags) if tags else None,  # tag profile; chosen tags match item tags
                        cat.matches("language", None, languages) if languages else None):
            if matched is not None:  # (in this order: a float32 sum is the float64 sum rounded)
                np.add(scores, weight, out=scores, where=matched)
                tiers |= matched
        request.tiers = tiers.view(np.int8)
        return scores

    def _streamable(self, request: Request) -> bool:
        """Whether the pool can come straight from the best rows (scan top-k or ANN): a plain request."""
        state = request.state
        return (not request.cold and request.query is not None and not state.liked
                and not request.policy.freshness and len(state.consumed) >= request.policy.cold_start_items
                and bool(self.models.ann_kind or self.models.scan.streams_top_k))

    def _best_rows(self, request: Request, count: int, skip: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """_search's answer, kept in the user's cache entry per query and count (up to KEPT_ROWS rows): a request
        that repeats an unchanged state (a refresh, a second row of a screen) does not pass over the table."""
        kept = request.for_user("best rows", dict)  # skip is the state's own: the entry goes with it
        key = (request.query.tobytes(), count, self.models.ann_kind)
        found = kept.get(key)
        if found is None:
            if len(kept) >= KEPT_SEARCHES:
                kept.clear()
            found = self._search(request, count, skip)
            found[0].flags.writeable = found[1].flags.writeable = False  # shared: no stage may change them
            if len(found[0]) <= KEPT_ROWS:  # a long short list (up to 100k rows, 1.2 MB) is not worth its memory
                kept[key] = found
        return found

    def _search(self, request: Request, count: int, skip: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """About `count` best rows outside `skip` and their scores, and whether no other row is left:
        from the ANN index when there is one (asked for len(skip) more, as it cannot leave rows out;
        on failure the exact scan), else from the exact scan, which passes over the skipped rows."""
        scan, query = self.models.scan, request.query
        if self.models.ann_kind:
            try:
                rows = self.models.ann_index().search(query, count + len(skip))
                return rows, scan.exact(rows, query).astype(np.float32), False
            except Exception:  # the index is an optional part: fall back to the exact scan
                request.count("ann_fallback")
        rows, values = scan.top(query, count, skip)
        return rows, values, len(rows) < count  # fewer than asked for: every row left was scored

    def _streamed_pool(self, request: Request, added: np.ndarray, inactive: np.ndarray) -> np.ndarray | None:
        """The pool _pool would give, from the scan's top rows only (no score for every item).

        The scan returns enough rows to survive dropping the removed and consumed
        ones; None when the filters leave too few (the caller then scores all).
        """
        cat, excluded, filters = request.catalog, request.state.excluded, request.filters
        want = max(request.policy.short_list, request.k)
        skip = _skipped_rows(request, inactive, excluded)
        # The exact scan without filters gives `want` survivors: it leaves the skipped rows out
        # itself. Filters may drop more, and an ANN index finds more of the true best when it
        # searches wider (top-10 recall 0.93 -> 0.98 at 100k), so those ask for a margin.
        margin = 1 if filters is None and not self.models.ann_kind else 4
        rows, values, scanned_all = self._best_rows(request, want * margin, skip)
        if len(added):
            rows = np.r_[rows, cat.base_count + np.arange(len(added))]
            values = np.r_[values, (added @ request.query).astype(np.float32)]
        if len(added) or self.models.ann_kind:  # the scan's rows come sorted already; these do not
            order = np.lexsort((rows, -values))  # best first, ties by row as in top_rows
            rows, values = rows[order], values[order]
        keep = ~sorted_contains(skip, rows) & np.isfinite(values)
        if filters is not None:  # (without filters every row passes)
            keep[keep] = filter_mask(cat, rows[keep], filters)
        rows, values = rows[keep], values[keep]
        reached, end = capped_reach(cat, rows, request.policy, request.k)  # past `want` the rows are not
        if (len(rows) < want or reached < request.k or end > want) and not scanned_all:  # the true order
            return None
        request.pool_scores = values[:max(want, end)]
        request.pool_cut = len(rows) > max(want, end) or not scanned_all
        return rows[:max(want, end)]

    def _pool(self, request: Request, scores: np.ndarray, added: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        """The best candidates that pass the filters (widening until enough are found)."""
        cat, state = request.catalog, request.state
        want = max(request.policy.short_list, request.k)
        extra = []
        if state.liked:  # neighbours of "more like this" items join the pool even if the user vector misses them
            liked_vectors = cat.vectors(np.array(state.liked[-3:], np.int64))
            for v in liked_vectors[liked_vectors.any(1)]:  # a removed added item's zeros: no neighbours (row order)
                near = self.models.scan.scores(v)
                near = np.r_[near, added @ v if len(added) else np.zeros(0)]
                near[~np.isfinite(scores)] = -np.inf
                extra.append(top_rows(near, 20))
        if request.policy.freshness:  # the best new releases join: a bonus cannot lift what the pool lacks
            near = np.full(len(scores), -np.inf, scores.dtype)  # a group in the cut even with none near (§4)
            near[fresh] = scores[fresh]
            extra.append(top_rows(near, FRESH_CANDIDATES))
        size = want * 4
        while True:
            candidates = best = top_rows(scores, size)
            if extra:
                candidates = np.unique(np.concatenate([candidates, *extra]))
                candidates = candidates[np.isfinite(scores[candidates])]
            keep = candidates[filter_mask(cat, candidates, request.filters)]
            keep = keep[np.argsort(-scores[keep], kind="stable")]
            # `want` of the best rows themselves must pass (spec §4): a group's row standing in for them stopped
            # the widening early, and the filters' best rows further down never reached the short list
            found = int(filter_mask(cat, best, request.filters).sum()) if extra else len(keep)
            # the short list is cut after the k-th row the caps keep (the spread's counted); only the caps
            # that drop rows widen the candidates (the spread passes over: walking a catalog of few creators
            # to the end for it cost every newcomer's request time and memory in proportion to the catalog)
            reached, end = capped_reach(cat, keep, request.policy, request.k)
            if request.spread:
                reached = capped_reach(cat, keep, request.policy, request.k, spread=True)[0]
            if (found >= want and reached >= request.k) or size >= np.isfinite(scores).sum():
                cut = max(want + 20 * len(extra), end)  # enough, or nothing more to find
                request.pool_cut = len(keep) > cut or len(best) >= size  # rows that pass may be left out
                if not extra:
                    return keep[:cut]
                # the groups' rows join from below the cut too: they were candidates for that (cutting them
                # left freshness lifting only what the plain best rows already held)
                below = keep[cut:]
                return np.r_[keep[:cut], below[np.isin(below, np.concatenate(extra))]]
            size *= 4


def fresh_rows(cat, request: Request) -> np.ndarray:
    """Rows released in the last 3 x freshness_days (out by now) when Policy.freshness is set: their bonus
    is at least 5% of it. Without them in the pool the bonus lifted nothing: on the quick demo world the
    best 100 by the user vector held almost no new release, and freshness 1 showed 0.1% of them."""
    policy = request.policy
    if not policy.freshness:
        return np.zeros(0, np.int64)
    limit = 3 * policy.freshness_days * 86_400

    def recent(release: np.ndarray, first: int) -> np.ndarray:  # float64 a block at a time, not catalog-long
        age = request.now - release
        return first + np.flatnonzero((release > 0) & (age >= 0) & (age <= limit))

    stored, block = cat.numeric["release_ts"], 1 << 16
    found = [recent(stored[s:s + block].astype(np.float64), s) for s in range(0, cat.base_count, block)]
    found.append(recent(cat.numeric_column("release_ts", np.arange(cat.base_count, len(cat))), cat.base_count))
    return np.concatenate(found).astype(np.int64, copy=False)


def choice_weight(prior: np.ndarray) -> np.float32:
    """What a matched choice adds to the standardised prior: 1 more than its range, so a row matching
    more choices comes before every row matching fewer. A fixed weight was not enough: at 1.5 (1.0
    for languages) 12 of the quick demo world's 33 genres and 6 of its 8 languages put no item in a
    newcomer's top 10, and at 3 a genre of items nobody had played yet still showed none."""
    finite = prior[np.isfinite(prior)]
    return np.float32(1) + (finite.max() - finite.min() if len(finite) else np.float32(0))


def standard_prior(cat, now: float, block: int = 1 << 13) -> np.ndarray:
    """standardize(popularity_prior(...)) of every row as float32, computed a block of rows at a
    time and standardised in place: 12 bytes an item at the peak instead of about 50. The same
    float64 operations as before, so the same values to the last bit."""
    prior = np.zeros(len(cat), np.float64)
    popularity, release = cat.numeric["popularity"], cat.numeric["release_ts"]
    for start in range(0, cat.base_count, block):
        end = min(start + block, cat.base_count)
        prior[start:end] = popularity_prior(popularity[start:end].astype(np.float64),
                                            release[start:end].astype(np.float64), now)
    release_pages(popularity), release_pages(release)  # read again in an hour: their pages need not stay in between
    if cat.added:  # items added on the device: the popularity and release their metadata gives, else 0
        given = [(float(a.meta.get("popularity") or 0), float(a.meta.get("release_ts") or 0)) for a in cat.added]
        prior[cat.base_count:] = popularity_prior(*np.array(given, np.float64).T, now)
    if not np.all(np.isfinite(prior)) or len(prior) < 2:
        return standardize(prior).astype(np.float32)
    prior -= prior.mean()
    prior /= max(math.sqrt(float(prior @ prior) / len(prior)), 1e-9)
    return prior.astype(np.float32)


def _best_of(values: np.ndarray, count: int) -> np.ndarray:
    """The rows of the `count` largest values (in no order)."""
    if count >= len(values):
        return np.arange(len(values))
    return np.argpartition(values, len(values) - count)[len(values) - count:]


def _skipped_rows(request: Request, inactive: np.ndarray, excluded: set[int]) -> np.ndarray:
    """Rows the list never shows (removed items, the user's excluded ones), sorted and unique: built
    once per user state, in the user's cache entry (a long history excludes thousands of rows)."""
    # the entry belongs to this catalog version, so `inactive` cannot change under it
    return request.for_user("skip", lambda: _sorted_union(inactive, excluded))


def _sorted_union(rows: np.ndarray, more: set[int]) -> np.ndarray:
    """np.unique of both, int64; without the general path's cost (np.r_, a sort of the array) when
    `rows` is empty, as it is unless the catalog lost items: a user's first request builds this."""
    if not len(rows):
        return np.array(sorted(more), np.int64)
    return np.unique(np.concatenate([rows.astype(np.int64, copy=False), np.fromiter(more, np.int64, len(more))]))
