"""Guards of the retrieve stage (runtime/retrieve.py) on the golden bundle: the candidate pool is the best
rows that pass the filters and the seen filter, cut after the k-th row the caps keep, widened until enough
are found; the pool streamed from the scan's top rows is the one scoring every row gives; the groups that
join the pool ("more like this" neighbours, new releases) join from below the cut too."""

from __future__ import annotations

import importlib.util
from collections import Counter

import numpy as np
import pytest

from edgerec.runtime import Recommender
from edgerec.runtime.pipeline import Stage
from edgerec.runtime.policies import Filters, Policy, filter_mask
from edgerec.runtime.retrieve import FRESH_CANDIDATES, RetrieveStage

CONTEXT = {"now": 1763598915.0, "hour": 20.5}


@pytest.fixture
def rec(golden_bundle):
    with Recommender.open(golden_bundle, history=None, backend="onnx") as rec:
        cat = rec.catalog
        for start in range(0, cat.base_count, 4):  # 14 users of 4 plays spread over the catalog
            for j in range(4):
                rec.record(f"u{start}", cat.item_id((start + 7 * j) % cat.base_count), "play",
                           timestamp=CONTEXT["now"] - 1000 + j)
        seen = []
        rec.pipeline.insert_after("retrieve", Stage("probe", lambda r: seen.append(r) or r))
        rec.seen = seen
        yield rec


def retrieved(rec, user, k=3, **how):
    rec.seen.clear()
    rec.recommend(user, k=k, context=CONTEXT, **how)
    return rec.seen[-1]


def stage(rec) -> RetrieveStage:
    return rec.pipeline["retrieve"].run


def best_passing(rec, request) -> np.ndarray:
    """Every row with a finite score that passes the filters, best first, ties by row."""
    rows = np.flatnonzero(np.isfinite(request.scores))
    rows = rows[filter_mask(rec.catalog, rows, request.filters)]
    return rows[np.lexsort((rows, -request.scores[rows]))]


def genres(rec):
    cat = rec.catalog
    return sorted({g for g in cat.column("genre", np.arange(cat.base_count)) if g})


def test_the_pool_is_the_best_passing_rows_cut_at_the_short_list_widening_past_the_first_candidates(rec):
    """short_list 2, k 2: the first candidates are the best 8 rows; a genre filter leaves fewer of them."""
    widened = 0
    for genre in genres(rec):
        for user in ("u0", "u8", "u20"):
            request = retrieved(rec, user, k=2, filters=Filters(genres=[genre]), policy=Policy(short_list=2))
            if request.scores is None:  # streamed: compared with the scored pool below
                continue
            expected = best_passing(rec, request)
            assert request.pool.tolist() == expected[:2].tolist(), (genre, user)
            assert request.pool_scores.tolist() == request.scores[request.pool].tolist()
            top8 = np.argsort(-request.scores, kind="stable")[:8]
            widened += not np.isin(expected[:2], top8).all()
    assert widened >= 3  # the widening was needed, and found the rows further down


def test_the_caps_cut_the_pool_after_the_kth_row_they_keep(rec):
    for user in ("u0", "u12", "u40"):
        for cap, k in ((1, 4), (1, 12), (2, 6)):
            request = retrieved(rec, user, k=k, filters=Filters(modalities=["film", "series_episode"]),
                                policy=Policy(short_list=3, max_per_genre=cap, freshness=0.0))
            if request.scores is None:
                continue
            expected = best_passing(rec, request)
            per_genre, kept, end = {}, 0, len(expected)
            for at, row in enumerate(expected):
                g = rec.catalog.column("genre", np.array([row]))[0]
                per_genre[g] = per_genre.get(g, 0) + 1
                kept += (not g) or per_genre[g] <= cap
                if kept == k:
                    end = at + 1
                    break
            assert request.pool.tolist() == expected[:max(3, end)].tolist(), (user, cap, k)


def test_a_streamed_pool_is_the_pool_scoring_every_row_gives(rec, monkeypatch):
    """_streamed_pool promises _pool's answer from the scan's top rows; checked against forcing every score."""
    cases = [(user, k, filters, policy) for user in ("u0", "u16", "u36", "u52")
             for k, filters, policy in ((3, None, None), (8, None, Policy(short_list=5)),
                                        (4, Filters(exclude_genres=genres(rec)[:3]), Policy(short_list=4)),
                                        (5, Filters(genres=genres(rec)[:2]), Policy(short_list=2)),
                                        (6, None, Policy(short_list=3, max_per_genre=1)),
                                        (30, None, Policy(short_list=2, max_per_creator=2)))]
    streamed = []
    for user, k, filters, policy in cases:
        request = retrieved(rec, user, k=k, filters=filters, policy=policy)
        streamed.append((request.scores is None, request.pool.tolist(), request.pool_scores.tolist()))
    counters = rec.stats()["counters"]
    assert counters.get("retrieve_streamed", 0) == sum(s for s, _, _ in streamed) >= len(cases) // 2
    assert counters.get("retrieve_streamed", 0) + counters.get("retrieve_streamed_too_few", 0) == len(cases)
    monkeypatch.setattr(stage(rec), "_streamable", lambda request: False)
    for (user, k, filters, policy), (_, pool, scores) in zip(cases, streamed):
        request = retrieved(rec, user, k=k, filters=filters, policy=policy)
        assert pool == request.pool.tolist(), (user, k, filters, policy)
        assert scores == request.pool_scores.tolist() and request.pool_scores.dtype == np.float32


def test_only_a_plain_request_streams(rec, monkeypatch):
    cat = rec.catalog

    def streamed(user, **how):
        before = rec.stats()["counters"].get("retrieve_streamed", 0)
        request = retrieved(rec, user, **how)
        return rec.stats()["counters"].get("retrieve_streamed", 0) > before and request.scores is None

    assert streamed("u0")
    assert streamed("u0", k=5, policy=Policy(short_list=5))  # k the short list: the scan's answer holds it
    assert not streamed("u0", policy=Policy(freshness=0.5))
    assert not streamed("u0", policy=Policy(cold_start_items=5))  # 4 plays: a short history
    assert streamed("u0", policy=Policy(cold_start_items=4))
    assert not streamed("newcomer")
    rec.record("u4", cat.item_id(30), "more_like_this", timestamp=CONTEXT["now"] - 10)
    assert not streamed("u4")
    monkeypatch.setattr(type(rec.models.scan), "streams_top_k", property(lambda scan: False))
    assert not streamed("u0")  # a scan that cannot answer a top-k, and no index
    assert not streamed("u0")


def test_the_seen_and_removed_rows_are_never_candidates(rec):
    cat = rec.catalog
    user_rows = [(0 + 7 * j) % cat.base_count for j in range(4)]
    rec.record("u0", cat.item_id(5), "not_interested", timestamp=CONTEXT["now"] - 5)
    rec.record("u0", cat.item_id(6), "skip", timestamp=CONTEXT["now"] - 4)
    rec.remove_items([cat.item_id(9), cat.item_id(10)])
    gone = set(user_rows) | {5, 6, 9, 10}
    for policy in (None, Policy(freshness=1.0)):  # streamed, then scoring every row
        for k in (3, 40):
            request = retrieved(rec, "u0", k=k, policy=policy)
            assert not gone & set(request.pool.tolist())
            cut = max(20, k) + (20 if policy else 0)  # the new releases join as a group of 20
            assert len(request.pool) == min(cut, rec.catalog.base_count - len(gone))
            if request.scores is not None:
                assert np.isneginf(request.scores[sorted(gone)]).all()
                assert np.isfinite(np.delete(request.scores, sorted(gone))).all()


def joined(best, size, groups, cut):
    """_pool's answer by hand: the best `size` rows and the groups, best first, cut; the groups' rows
    below the cut join after it."""
    keep = [r for r in best.tolist() if r in set(best[:size].tolist()) | groups]
    return keep[:cut] + [r for r in keep[cut:] if r in groups]


@pytest.mark.parametrize("count", [1, 2, 4])
def test_more_like_this_neighbours_join_the_pool_from_below_the_cut(rec, count):
    cat = rec.catalog
    plain = retrieved(rec, "u0", policy=Policy(freshness=1.0))  # every score: the items farthest from u0
    liked = np.argsort(np.where(np.isfinite(plain.scores), plain.scores, np.inf))[:count].tolist()
    for row in liked:
        rec.record("u0", cat.item_id(row), "more_like_this", timestamp=CONTEXT["now"] - 20 + row)
    # feedback_weight 0: the likes leave the query where it was, so their neighbours are other rows
    request = retrieved(rec, "u0", k=2, policy=Policy(short_list=2, feedback_weight=0.0))
    groups = set()
    for row in liked[-3:]:  # the newest three "more like this" items
        near = rec.models.scan.scores(cat.vectors(np.array([row]))[0]).astype(np.float64)
        near[~np.isfinite(request.scores)] = -np.inf
        groups |= set(np.lexsort((np.arange(len(near)), -near))[:20].tolist())
    cut = 2 + 20 * len(liked[-3:])
    expected = joined(best_passing(rec, request), 8, groups, cut)
    assert request.pool.tolist() == expected
    assert len(liked) > 1 or len(expected) > cut  # one group: some of it came from below the cut


@pytest.mark.parametrize("user, k", [("u0", 2), ("newcomer", 2), ("newcomer", 40)])  # the newcomer's prior
def test_the_best_new_releases_join_the_pool(rec, user, k):  # ties the items nobody played: kept in row order
    from edgerec.runtime.retrieve import fresh_rows

    release = rec.catalog.numeric_column("release_ts", np.arange(rec.catalog.base_count))
    days = float(np.median(CONTEXT["now"] - release)) / 86_400 / 3  # about half the catalog is new
    request = retrieved(rec, user, k=k, policy=Policy(short_list=2, freshness=0.5, freshness_days=days))
    fresh = set(fresh_rows(rec.catalog, request).tolist())
    best = best_passing(rec, request)
    assert FRESH_CANDIDATES < len(fresh & set(best.tolist())) < len(best)
    ranked_fresh = {r for r in best.tolist() if r in fresh}
    ranked_fresh = set([r for r in best.tolist() if r in ranked_fresh][:FRESH_CANDIDATES])
    expected = joined(best, 4 * max(2, k), ranked_fresh, max(2, k) + 20)
    assert request.pool.tolist() == expected and len(expected) > 22


def unit(v):
    return v / np.linalg.norm(v)


def test_more_like_this_pulls_the_query_by_the_mean_of_the_last_three(rec):
    cat = rec.catalog
    liked = [40, 41, 42, 43]
    for n, row in enumerate(liked):
        rec.record("u0", cat.item_id(row), "more_like_this", timestamp=CONTEXT["now"] - 20 + n)
    policy = Policy(feedback_weight=0.7, engagement=0.0)
    request = retrieved(rec, "u0", policy=policy)
    by_hand = unit(request.vector + cat.vectors(np.array(liked[-3:])).mean(0) * 0.7)
    assert request.query.dtype == np.float32 and not request.cold
    assert request.query.tolist() == pytest.approx(by_hand.tolist(), abs=1e-6)
    rec.onboard("new", items=[cat.item_id(r) for r in liked])  # no history to encode: the likes alone
    newcomer = retrieved(rec, "new", policy=policy)
    assert newcomer.vector is None and not newcomer.cold and newcomer.query.dtype == np.float32
    assert newcomer.query.tolist() == pytest.approx(unit(cat.vectors(np.array(liked[-3:])).mean(0)).tolist(), abs=1e-6)


def test_a_like_pulls_the_query_without_changing_its_length(rec):
    from edgerec.runtime.ranking import engagement_pull

    cat = rec.catalog
    rec.record("u0", cat.item_id(40), "like", timestamp=CONTEXT["now"] - 5)
    request = retrieved(rec, "u0", policy=Policy(engagement=0.8))
    norm = np.linalg.norm(request.vector)
    pull = engagement_pull(request, 0.8)
    assert request.query.dtype == np.float32 and not request.cold
    assert np.linalg.norm(request.query) == pytest.approx(norm, rel=1e-5)
    assert request.query.tolist() == pytest.approx((unit(request.vector + pull * norm) * norm).tolist(), abs=1e-6)
    assert retrieved(rec, "u0", policy=Policy(engagement=0.0)).query.tolist() == request.vector.tolist()


def test_a_short_history_blends_its_scores_with_the_prior_by_its_length(rec):
    from edgerec.runtime.policies import standardize

    cat = rec.catalog
    for n in (1, 2):
        rec.record(f"s{n}", cat.item_id(3 + n), "play", timestamp=CONTEXT["now"] - 100 + n)
        if n == 2:
            rec.record("s2", cat.item_id(20), "play", timestamp=CONTEXT["now"] - 50)
        request = retrieved(rec, f"s{n}", policy=Policy(cold_start_items=4))
        prior, _ = stage(rec).prior(cat, CONTEXT["now"])
        raw = rec.models.scan.scores(request.query).astype(np.float64)
        alpha = n / 4
        by_hand = (alpha * standardize(raw) + (1 - alpha) * prior).astype(np.float32)
        seen = np.isneginf(request.scores)
        assert seen.sum() == n
        assert request.scores[~seen].tolist() == pytest.approx(by_hand[~seen].tolist(), abs=1e-5)
    rec.record("m", cat.item_id(9), "more_like_this", timestamp=CONTEXT["now"] - 5)  # no play: the prior alone
    request = retrieved(rec, "m")
    prior, _ = stage(rec).prior(cat, CONTEXT["now"])
    expected = prior.copy()
    expected[9] = -np.inf  # the liked item itself is not shown again
    assert not request.cold and request.scores.tolist() == expected.tolist()


def test_the_prior_is_kept_per_catalog_version_and_hour(rec):
    from edgerec.runtime.policies import popularity_prior, standardize
    from edgerec.runtime.retrieve import choice_weight, standard_prior

    cat, retrieve = rec.catalog, stage(rec)
    hour = 3600 * (int(CONTEXT["now"]) // 3600)
    prior, weight = retrieve.prior(cat, hour + 5.0)
    pop = cat.numeric_column("popularity", np.arange(len(cat))).astype(np.float64)
    release = cat.numeric_column("release_ts", np.arange(len(cat))).astype(np.float64)
    assert prior.tolist() == standardize(popularity_prior(pop, release, float(hour))).astype(np.float32).tolist()
    assert prior.dtype == np.float32 and not prior.flags.writeable
    assert weight == choice_weight(prior) == np.float32(1) + prior.max() - prior.min()
    assert retrieve.prior(cat, hour + 3599.0)[0] is prior
    assert retrieve.prior(cat, hour + 3600.0)[0] is not prior
    for block in (1, 7, 55, 56):  # computed a block at a time: the same to the last bit
        assert standard_prior(cat, float(hour), block).tolist() == prior.tolist()
    rec.add_items([{"item_id": "hit", "title": "Hit", "vector": cat.vectors([0])[0].tolist(), "popularity": 50,
                    "release_ts": hour - 86_400}, {"item_id": "plain", "title": "Plain", "vector": cat.vectors([1])[0].tolist()}])
    grown = rec.catalog
    again, _ = retrieve.prior(grown, hour + 5.0)
    pop, release = np.r_[pop, 50.0, 0.0], np.r_[release, hour - 86_400, 0.0]
    assert again.tolist() == standardize(popularity_prior(pop, release, float(hour))).astype(np.float32).tolist()


def test_a_choice_weighs_one_more_than_the_priors_finite_range():
    from edgerec.runtime.retrieve import choice_weight

    got = choice_weight(np.array([-1.5, 0.0, 2.0, -np.inf], np.float32))
    assert got == np.float32(4.5) and got.dtype == np.float32
    assert choice_weight(np.array([-np.inf], np.float32)) == 1.0


def test_the_index_answers_like_the_exact_scan_and_a_broken_index_falls_back_to_it(golden_bundle, tmp_path, usearch):
    context = dict(CONTEXT)
    with Recommender.open(golden_bundle, history=None, backend="onnx") as exact, \
            Recommender.open(golden_bundle, history=None, backend="onnx", ann="usearch", cache_dir=tmp_path) as ann:
        for one in (exact, ann):
            for j in range(4):
                one.record("u", one.catalog.item_id(5 + 9 * j), "play", timestamp=context["now"] - 10 + j)
        lists = [[r.item_id for r in one.recommend("u", k=6, context=context)] for one in (exact, ann)]
        assert lists[0] == lists[1]
        assert ann.stats()["counters"]["retrieve_streamed"] == 1
        narrow = Filters(genres=[next(g for g in sorted({r.meta["genre"] for r in ann.recommend("u", k=40,
                                                                                                  context=context)}))])
        for one in (exact, ann):
            lists.append([r.item_id for r in one.recommend("u", k=6, context=context, filters=narrow)])
        assert lists[2] == lists[3]

        class Broken:
            def search(self, query, count):
                raise RuntimeError("the index file is damaged")

        ann.models.ann = Broken()
        ann.record("u", ann.catalog.item_id(1), "play", timestamp=context["now"] - 1)
        exact.record("u", exact.catalog.item_id(1), "play", timestamp=context["now"] - 1)
        assert [r.item_id for r in ann.recommend("u", k=6, context=context)] == \
            [r.item_id for r in exact.recommend("u", k=6, context=context)]
        assert ann.stats()["counters"]["ann_fallback"] >= 1


def test_items_added_on_the_device_stream_with_the_scores_scoring_every_row_gives(rec, monkeypatch):
    cat = rec.catalog
    rec.add_items([{"item_id": f"a{i}", "title": "A", "vector": cat.vectors([i * 7])[0].tolist()} for i in range(4)])
    streamed = [retrieved(rec, user, k=6) for user in ("u0", "u24")]
    assert all(r.scores is None and r.pool_scores.dtype == np.float32 for r in streamed)
    assert any(r >= cat.base_count for one in streamed for r in one.pool.tolist())
    monkeypatch.setattr(stage(rec), "_streamable", lambda request: False)
    for user, one in zip(("u0", "u24"), streamed):
        scored = retrieved(rec, user, k=6)
        assert one.pool.tolist() == scored.pool.tolist()
        assert one.pool_scores.tolist() == scored.pool_scores.tolist()


@pytest.mark.parametrize("short_list", [1, 2, 3])
def test_a_newcomers_pool_keeps_tied_rows_in_row_order_and_is_cut_after_the_kth_row_the_spread_keeps(rec, short_list):
    """The popularity prior ties every item nobody played; the spread (3 a creator) passes rows over
    without widening the candidates, and the pool runs to the k-th row it keeps."""
    from edgerec.runtime.caps import capped_reach

    for k in range(1, 14):
        request = retrieved(rec, "newcomer", k=k, policy=Policy(short_list=short_list))
        assert request.spread and request.policy.max_per_creator == 3
        want = max(short_list, k)
        keep = best_passing(rec, request)[:4 * want]  # the first candidates: enough for the spread
        end = capped_reach(rec.catalog, keep, request.policy, k)[1]
        assert request.pool.tolist() == keep[:max(want, end)].tolist(), (short_list, k)
    assert len(set(request.scores.tolist())) < len(request.scores) - 5  # ties there are
    capped = rec.recommend("newcomer", k=8, context=CONTEXT, policy=Policy(short_list=short_list, max_per_genre=2))
    assert len(capped) == 8 and max(Counter(r.meta["genre"] for r in capped).values()) <= 2


def test_the_groups_rows_never_stand_in_for_better_rows_that_pass_the_filters(rec):
    """Spec §4: the best `4 * want` rows widen until `want` of them pass; the groups (new releases, liked
    items' neighbours) join those. Counting the groups' rows towards `want` stopped the widening early, and a
    filter's best rows below the first candidates never reached the list (25 of 112 such requests here)."""
    cat = rec.catalog
    release = cat.numeric_column("release_ts", np.arange(cat.base_count))
    days = float(np.median(CONTEXT["now"] - release)) / 86_400 / 3
    rec.record("u8", cat.item_id(30), "more_like_this", timestamp=CONTEXT["now"] - 5)
    checked = 0
    for genre in genres(rec):
        for user, policy in (("u4", Policy(short_list=2, freshness=0.5, freshness_days=days)),
                             ("u28", Policy(short_list=2, freshness=0.5, freshness_days=days)),
                             ("u8", Policy(short_list=2, feedback_weight=0.0))):
            rec.seen.clear()
            rec.recommend(user, k=2, context=CONTEXT, filters=Filters(genres=[genre]), policy=policy)
            if not rec.seen:  # nothing of that genre left for this user
                continue
            request = rec.seen[-1]
            best = best_passing(rec, request)[:2].tolist()
            assert set(best) <= set(request.pool.tolist()), (genre, user, best, request.pool.tolist())
            checked += 1
            if user != "u8":  # the whole pool by hand: the candidates widen x4 until 2 of the best rows pass
                assert request.pool.tolist() == fresh_pool_by_hand(rec, request), (genre, user)
    assert checked >= 20


def fresh_pool_by_hand(rec, request, want=2):
    from edgerec.runtime.retrieve import fresh_rows

    scores = request.scores
    ranked = np.flatnonzero(np.isfinite(scores))
    ranked = ranked[np.lexsort((ranked, -scores[ranked]))].tolist()
    passes = dict(zip(ranked, filter_mask(rec.catalog, np.array(ranked), request.filters).tolist()))
    fresh = set(fresh_rows(rec.catalog, request).tolist())
    group = {r for r in ranked if r in fresh}
    group = set([r for r in ranked if r in group][:FRESH_CANDIDATES])
    size = 4 * want
    while sum(passes[r] for r in ranked[:size]) < want and size < len(ranked):
        size *= 4
    candidates = set(ranked[:size]) | group
    keep = [r for r in ranked if r in candidates and passes[r]]
    cut = want + 20
    return keep[:cut] + [r for r in keep[cut:] if r in group]


def query_of(vector, liked=(), loved=(), finished=(), fallback=None, engagement=1.0, feedback_weight=1.0):
    """RetrieveStage._query on stand-ins: rows 0..3 of a 2-d catalog."""
    from types import SimpleNamespace as NS

    table = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [-1.0, 0.0]], np.float32)
    request = NS(vector=None if vector is None else np.asarray(vector, np.float32), fallback=fallback,
                 state=NS(liked=list(liked), loved=list(loved), finished=list(finished)),
                 catalog=NS(vectors=lambda rows: table[rows]),
                 policy=Policy(engagement=engagement, feedback_weight=feedback_weight))
    RetrieveStage(NS(manifest=NS(ranking={})))._query(request)
    return request


def test_the_query_by_hand_for_a_user_vector_of_any_length():
    for vector in ([3.0, 4.0], [0.3, 0.4]):  # norm 5 and 0.5: the pull is in units of the vector's length
        norm = np.linalg.norm(vector)
        got = query_of(vector, loved=[1], finished=[3])
        pull = np.array([0.0, 1.0]) + 0.5 * np.array([-1.0, 0.0])
        pulled = np.asarray(vector) + pull * norm
        assert got.query.dtype == np.float32 and got.cold is False
        assert got.query.tolist() == pytest.approx((pulled / np.linalg.norm(pulled) * norm).tolist(), rel=1e-6)
        liked = query_of(vector, liked=[0, 1, 2, 3], feedback_weight=2.0, engagement=0.0)
        by_hand = np.asarray(vector) + np.array([-0.4 / 3, 1.8 / 3]) * 2.0
        assert liked.query.tolist() == pytest.approx((by_hand / np.linalg.norm(by_hand)).tolist(), rel=1e-6)
    cold = query_of(None, loved=[1], finished=[2])  # likes without a user vector: still a cold start
    assert cold.query is None and cold.cold is True
    fallen = query_of([3.0, 4.0], liked=[0], fallback="the encoder failed", engagement=0.0)
    assert fallen.query.tolist() == [3.0, 4.0]  # a popularity fallback ignores "more like this"
    newcomer = query_of(None, liked=[0, 1], feedback_weight=3.0)
    assert newcomer.cold is False and newcomer.query.tolist() == pytest.approx([2 ** -0.5, 2 ** -0.5])


def test_the_index_scores_what_it_found_and_the_new_releases_and_added_items_exactly(golden_bundle, tmp_path):
    """A request that scores every row (new releases, "more like this", a short history) with an index: the
    index's candidates and the new releases get the exact score; on a catalog the index answers whole, the
    same scores as without it."""
    if importlib.util.find_spec("usearch") is None:  # not importorskip: the runtime imports it in the safe order
        pytest.skip("the index is the optional extra edgerec[ann]; without it the scan runs")
    cat_now = CONTEXT["now"]
    with Recommender.open(golden_bundle, history=None, backend="onnx") as exact, \
            Recommender.open(golden_bundle, history=None, backend="onnx", ann="usearch", cache_dir=tmp_path) as ann:
        seen = {}
        for name, one in (("exact", exact), ("ann", ann)):
            one.add_items([{"item_id": "fresh", "title": "F", "vector": one.catalog.vectors([3])[0].tolist(),
                            "release_ts": cat_now - 86_400, "popularity": 3}])
            for j in range(4):
                one.record("u", one.catalog.item_id(5 + 9 * j), "play", timestamp=cat_now - 10 + j)
            one.record("s", one.catalog.item_id(7), "play", timestamp=cat_now - 10)
            one.pipeline.insert_after("retrieve", Stage("probe", lambda r, name=name: seen.setdefault(name, []).append(r)
                                                        or r))
            one.recommend("u", k=5, context=CONTEXT, policy=Policy(freshness=0.5, freshness_days=300.0))
            one.record("u", one.catalog.item_id(30), "more_like_this", timestamp=cat_now - 1)
            one.recommend("u", k=5, context=CONTEXT)
            one.recommend("s", k=5, context=CONTEXT)  # one play: blended with the prior
        base = ann.catalog.base_count
        for n, (plain, indexed) in enumerate(zip(seen["exact"], seen["ann"])):
            assert indexed.scores.dtype == np.float32 == plain.scores.dtype
            shown = np.isfinite(indexed.scores)
            assert shown.tolist() == np.isfinite(plain.scores).tolist() and shown[base]  # the added item too
            if n < 2:  # a full history: the exact score of every row the index found, the added item's dot
                by_hand = np.r_[ann.models.scan.exact(np.arange(base), indexed.query),
                                ann.catalog.added_matrix() @ indexed.query].astype(np.float32)
                assert indexed.scores[shown].tolist() == by_hand[shown].tolist()
        assert len(seen["ann"]) == 3 and "ann_fallback" not in ann.stats()["counters"]


def test_a_history_as_long_as_cold_start_items_is_scored_by_the_user_vector_alone(rec):
    request = retrieved(rec, "u0", policy=Policy(cold_start_items=4, freshness=0.5))  # u0: 4 plays
    raw = rec.models.scan.scores(request.query)
    shown = np.isfinite(request.scores)
    assert request.scores.dtype == np.float32 and shown.sum() == rec.catalog.base_count - 4
    assert request.scores[shown].tolist() == raw[shown].tolist()


class _Rows:
    """A stand-in catalog for the prior: stored popularity and release columns, items added with metadata."""

    def __init__(self, popularity, release, added=()):
        self.numeric = {"popularity": np.array(popularity, np.float32), "release_ts": np.array(release, np.float64)}
        self.base_count = len(popularity)
        self.added = [type("Added", (), {"meta": meta})() for meta in added]

    def __len__(self):
        return self.base_count + len(self.added)


def test_the_standard_prior_of_a_degenerate_catalog_is_zero_not_nan():
    """One row, or rows all alike: every prior is 0 (no spread to divide by); an added item whose metadata
    gives no popularity or release counts as 0 of both."""
    from edgerec.runtime.policies import popularity_prior, standardize
    from edgerec.runtime.retrieve import standard_prior

    now = 1_700_000_000.0
    assert standard_prior(_Rows([5.0], [0.0]), now).tolist() == [0.0]
    assert standard_prior(_Rows([], [], [{"popularity": 9}]), now).tolist() == [0.0]
    early = 10 * 86_400.0  # soon after the epoch a release time of 1 s would still earn a freshness bonus
    assert standard_prior(_Rows([2.0, 2.0], [0.0, 0.0], [{"popularity": 2}]), early).tolist() == [0.0] * 3
    alike = standard_prior(_Rows([3.0, 3.0, 3.0], [0.0, 0.0, 0.0]), now)
    assert alike.tolist() == [0.0, 0.0, 0.0] and alike.dtype == np.float32
    added = [{"popularity": 40, "release_ts": now - 86_400}, {"popularity": None}, {}]
    got = standard_prior(_Rows([1.0, 7.0], [now - 5 * 86_400, 0.0], added), now, block=1)
    pop, release = np.array([1.0, 7.0, 40.0, 0.0, 0.0]), np.array([now - 5 * 86_400, 0.0, now - 86_400, 0.0, 0.0])
    assert got.tolist() == standardize(popularity_prior(pop, release, now)).astype(np.float32).tolist()
    assert got.dtype == np.float32 and abs(float(np.mean(got))) < 1e-6 and abs(float(np.std(got)) - 1) < 1e-6


def test_a_non_finite_popularity_leaves_the_finite_rows_standardised_among_themselves():
    from edgerec.runtime.policies import popularity_prior, standardize
    from edgerec.runtime.retrieve import standard_prior

    now = 1_700_000_000.0
    pop, release = [1.0, np.inf, 4.0, 9.0], [0.0, 0.0, now - 86_400, 0.0]
    got = standard_prior(_Rows(pop, release), now)
    expected = standardize(popularity_prior(np.array(pop), np.array(release), now))
    assert got.dtype == np.float32 and np.isposinf(got[1]) and got[[0, 2, 3]].tolist() == expected[[0, 2, 3]].astype(np.float32).tolist()
    assert not np.isfinite(expected[1])


def test_the_new_releases_of_items_added_on_the_device_come_from_their_metadata(rec):
    from types import SimpleNamespace

    from edgerec.runtime.retrieve import fresh_rows

    cat = rec.catalog
    now, days = CONTEXT["now"], 2.0
    limit = 3 * days * 86_400
    vector = cat.vectors([0])[0].tolist()
    ages = {"edge": limit, "inside": 60.0, "now": 0.0, "past": limit + 1, "future": -60.0}
    rec.add_items([{"item_id": name, "title": name, "vector": vector, "release_ts": now - age}
                   for name, age in ages.items()] + [{"item_id": "unknown", "title": "?", "vector": vector},
                                                     {"item_id": "epoch", "title": "1970", "vector": vector, "release_ts": 1}])
    grown = rec.catalog
    got = fresh_rows(grown, SimpleNamespace(now=now, policy=Policy(freshness=1.0, freshness_days=days)))
    release = grown.numeric_column("release_ts", np.arange(grown.base_count)).astype(np.float64)
    age = now - release
    base = np.flatnonzero((release > 0) & (age >= 0) & (age <= limit))
    assert got.dtype == np.int64
    assert got.tolist() == base.tolist() + [grown.base_count + i for i in (0, 1, 2)]  # edge, inside, now
    wide = fresh_rows(grown, SimpleNamespace(now=now, policy=Policy(freshness=1.0, freshness_days=400.0)))
    stored = np.flatnonzero((release > 0) & (age >= 0) & (age <= 3 * 400.0 * 86_400))
    assert len(stored) >= 5 and wide.tolist() == stored.tolist() + [grown.base_count + i for i in range(4)]  # not the future one
    early = fresh_rows(grown, SimpleNamespace(now=86_400.0, policy=Policy(freshness=1.0, freshness_days=days)))
    assert early.tolist() == [grown.base_count + 6]  # released 1 s after the epoch; 0 is an unknown release


def steered_by_hand(rec, genres=(), tags=(), languages=()):
    """The prior plus one choice weight per matched profile: the genre column against genres and tags,
    item tags against tags, the language column against languages; and the rows matching any."""
    from edgerec.runtime.ranking import rows_with_tags

    cat = rec.catalog
    prior, weight = stage(rec).prior(cat, CONTEXT["now"])
    out, tiers = prior.copy(), np.zeros(len(cat), bool)
    for matched in (cat.matches("genre", None, [*genres, *tags]), rows_with_tags(cat, list(tags)),
                    cat.matches("language", None, list(languages))):
        out[matched] += weight
        tiers |= matched
    return out, tiers


@pytest.mark.parametrize("kinds", [("tag",), ("language",), ("genre",), ("genre", "tag", "language")])
def test_a_short_historys_prior_is_steered_by_each_kind_of_onboarding_choice(rec, kinds):
    """One play of cold_start_items 4: a quarter the user vector, three quarters the prior steered by the
    choices alone (a user who chose only tags, or only languages, has no genre choices at all)."""
    from edgerec.runtime.policies import column_values, standardize

    cat = rec.catalog
    tags, genres = sorted({t for row in range(cat.base_count) for t in cat.tags(row)}), sorted(column_values(cat, "genre"))
    named = next(t for t in tags if t in genres and t != genres[-1])  # a chosen tag matches the genre column too
    picks = {"genre": genres[-1:], "tag": [tags[0], named],
             "language": sorted(column_values(cat, "language"))[-1:]}
    chosen = {kind: picks[kind] for kind in kinds}
    rec.onboard("chooser", **{f"{kind}s": values for kind, values in chosen.items()})
    rec.record("chooser", cat.item_id(11), "play", timestamp=CONTEXT["now"] - 100)
    request = retrieved(rec, "chooser", policy=Policy(cold_start_items=4))
    steered, _ = steered_by_hand(rec, chosen.get("genre", ()), chosen.get("tag", ()), chosen.get("language", ()))
    plain, _ = stage(rec).prior(cat, CONTEXT["now"])
    assert not np.array_equal(steered, plain)  # the choices match some rows
    raw = rec.models.scan.scores(request.query).astype(np.float64)
    by_hand = (0.25 * standardize(raw) + 0.75 * steered).astype(np.float32)
    assert np.isneginf(request.scores[11]) and np.isfinite(np.delete(request.scores, 11)).all()
    assert np.delete(request.scores, 11).tolist() == pytest.approx(np.delete(by_hand, 11).tolist(), abs=1e-5)


def test_a_newcomers_tiers_mark_the_rows_matching_any_profile(rec):
    """A genre and a language chosen: a row matching only the genre keeps its tier as one matching only
    the language does (the spread keeps a chosen row before one matching nothing)."""
    from edgerec.runtime.policies import column_values

    cat = rec.catalog
    genre, language = sorted(column_values(cat, "genre"))[0], sorted(column_values(cat, "language"))[-1]
    rec.onboard("newcomer", genres=[genre], languages=[language])
    request = retrieved(rec, "newcomer")
    steered, tiers = steered_by_hand(rec, [genre], (), [language])
    only_genre = cat.matches("genre", None, [genre]) & ~cat.matches("language", None, [language])
    assert only_genre.any() and (tiers & ~only_genre).any()
    assert request.cold and request.tiers.dtype == np.int8
    assert request.tiers.astype(bool).tolist() == tiers.tolist()
    assert request.scores.tolist() == steered.tolist()


def test_the_best_rows_are_kept_per_query_and_count_and_shared_read_only(rec, monkeypatch):
    """A repeated request of an unchanged state does not search again; another count (k) searches anew and
    gets its own answer; at most KEPT_SEARCHES answers are kept per state, and no stage may change them."""
    from edgerec.runtime.retrieve import KEPT_SEARCHES

    retrieve, scan = stage(rec), rec.models.scan
    asked = []
    real = type(scan).top
    monkeypatch.setattr(type(scan), "top", lambda self, query, count, skip: asked.append(count) or real(
        self, query, count, skip))
    first = retrieved(rec, "u8", k=3)
    assert retrieved(rec, "u8", k=3).pool.tolist() == first.pool.tolist() and asked == [20]  # short list 20
    monkeypatch.setattr(retrieve, "_streamable", lambda request: False)
    scored = {k: retrieved(rec, "u8", k=k, policy=Policy(short_list=k)) for k in (3, 30)}
    monkeypatch.undo()
    asked.clear()
    monkeypatch.setattr(type(scan), "top", lambda self, query, count, skip: asked.append(count) or real(
        self, query, count, skip))
    before = dict(rec.stats()["counters"])
    for k in (3, 30):
        streamed = retrieved(rec, "u8", k=k, policy=Policy(short_list=k))
        assert streamed.scores is None and streamed.pool.tolist() == scored[k].pool.tolist()
    assert asked == [3, 30]
    counters = rec.stats()["counters"]
    assert counters["retrieve_streamed"] == before["retrieve_streamed"] + 2
    assert counters.get("retrieve_streamed_too_few", 0) == before.get("retrieve_streamed_too_few", 0)
    request = rec.seen[-1]
    kept = request.entry.derived["best rows"]
    for count in range(1, 2 * KEPT_SEARCHES):
        rows, values, _ = retrieve._best_rows(request, count, np.zeros(0, np.int64))
        assert len(kept) <= KEPT_SEARCHES and len(rows) == count
        assert not rows.flags.writeable and not values.flags.writeable


def test_an_index_is_asked_for_as_many_more_rows_as_the_state_skips(rec):
    """The index cannot leave rows out: it is asked for `count` plus the skipped rows, its rows get the
    exact scan's scores, and its answer never claims every row was scored."""

    class Index:
        def __init__(self):
            self.asked = []

        def search(self, query, count):
            self.asked.append(count)
            scores = rec.models.scan.scores(query)
            return np.lexsort((np.arange(len(scores)), -scores))[:count].astype(np.int64)

    index = Index()
    rec.models.ann_kind, rec.models.ann = "stand-in", index
    request = retrieved(rec, "u12", k=3)
    assert index.asked == [4 * 20 + 4]  # want 20, the ANN margin 4, u12's 4 plays skipped
    skip = np.array(sorted(request.state.excluded), np.int64)
    rows, values, scanned_all = stage(rec)._search(request, 10, skip)
    assert index.asked[-1] == 10 + 4 and len(rows) == 14 and scanned_all is False
    assert values.dtype == np.float32 and values.tolist() == rec.models.scan.exact(rows, request.query).tolist()


def test_an_index_answer_the_filters_leave_too_short_is_scored_again_exactly(rec, monkeypatch):
    """An index that finds only its best 10 rows, a short history (every row needs a score, and the
    index scores only what it found): a pool shorter than the short list is scored again by the exact
    scan and counted (ann_too_few), giving the pool the exact scan gives; a pool exactly as long is kept.
    (The prior's best rows, scored beside the index's answer, are taken out here: on this small catalog
    they are every row.)"""
    from edgerec.runtime import retrieve

    monkeypatch.setattr(retrieve, "_best_of", lambda values, count: np.zeros(0, np.int64))

    class Weak:
        def search(self, query, count):
            scores = rec.models.scan.scores(query)
            return np.lexsort((np.arange(len(scores)), -scores))[:10].astype(np.int64)

    def pool(user, **how):
        before = rec.stats()["counters"].get("ann_too_few", 0)
        request = retrieved(rec, user, policy=Policy(cold_start_items=5, short_list=how.pop("short_list")), **how)
        return request.pool.tolist(), rec.stats()["counters"].get("ann_too_few", 0) - before

    def exactly(user, **how):
        rec.models.ann_kind, rec.models.ann = None, None
        try:
            return pool(user, **how)[0]
        finally:
            rec.models.ann_kind, rec.models.ann = "stand-in", Weak()

    rec.models.ann_kind, rec.models.ann = "stand-in", Weak()
    found, retried = pool("u20", short_list=3, k=3)
    assert retried == 0 and len(found) >= 3
    request = rec.seen[-1]
    answered = int(np.isfinite(request.scores).sum())  # the index's 10 rows less the user's plays among them
    assert answered < 10 and found == best_passing(rec, request)[:3].tolist()
    found, retried = pool("u20", short_list=answered, k=answered)  # exactly enough: kept
    assert retried == 0 and found == best_passing(rec, rec.seen[-1]).tolist() and len(found) == answered
    for size in (answered + 1, 20):
        found, retried = pool("u20", short_list=size, k=3)
        assert retried == 1 and found == exactly("u20", short_list=size, k=3) and len(found) >= size
    cat, shown = rec.catalog, np.flatnonzero(np.isfinite(request.scores))
    rare = next(g for g in genres(rec) if cat.matches("genre", shown, [g]).sum() < 3 <= cat.matches("genre", None, [g]).sum())
    found, retried = pool("u20", short_list=3, k=3, filters=Filters(genres=[rare]))
    assert retried == 1 and found == exactly("u20", short_list=3, k=3, filters=Filters(genres=[rare]))
    assert len(found) == 3 and set(cat.column("genre", np.array(found))) == {rare}


def test_a_request_the_filters_leave_nothing_is_done_after_retrieve(rec):
    """Nothing to rank: the request ends at retrieve (the probe after it never runs) with an empty list."""
    cat = rec.catalog
    lone = next(g for g in genres(rec) if cat.matches("genre", None, [g]).sum() == 1)
    row = int(np.flatnonzero(cat.matches("genre", None, [lone]))[0])
    assert retrieved(rec, "u16", filters=Filters(genres=[lone])).done is False
    rec.record("u16", cat.item_id(row), "play", timestamp=CONTEXT["now"] - 1)  # the seen filter drops it
    rec.seen.clear()
    assert rec.recommend("u16", k=3, context=CONTEXT, filters=Filters(genres=[lone])) == []
    assert rec.seen == []
    assert retrieved(rec, "u16").done is False


def test_with_an_index_a_short_history_still_reaches_the_priors_best_rows(rec, monkeypatch):
    """A short history blends the user vector with the prior; with an index that did not find the prior's most
    popular rows, they had no score and never reached the pool (only the index's answer did)."""
    from edgerec.runtime import retrieve
    from edgerec.runtime.policies import standardize

    class Index:  # answers with the last rows of the catalog, whatever the query: far from the prior's best
        def search(self, query, count):
            return np.arange(rec.catalog.base_count - count, rec.catalog.base_count)

    monkeypatch.setattr(retrieve, "INDEX_CANDIDATES", 8)
    monkeypatch.setattr(rec.models, "ann_index", lambda: Index())
    rec.models.ann_kind = "usearch"
    rec.record("newcomer", rec.catalog.item_id(3), "play", timestamp=CONTEXT["now"] - 5)
    policy = Policy(short_list=2, cold_start_items=3)
    request = retrieved(rec, "newcomer", policy=policy)
    base = rec.catalog.base_count
    prior = stage(rec).prior(rec.catalog, CONTEXT["now"])[0]
    best = np.argsort(-prior, kind="stable")[:8]
    scored = np.union1d(np.arange(base - 8 - 1, base), best)  # the index was asked for one more (the play)
    raw = np.full(base, -np.inf, np.float32)
    raw[scored] = rec.models.scan.exact(scored, request.query)
    by_hand = ((1 / 3) * standardize(raw) + (2 / 3) * prior).astype(np.float32)
    assert np.isfinite(request.scores[best]).all()
    np.testing.assert_allclose(request.scores, by_hand, rtol=1e-6)
    assert set(np.flatnonzero(np.isfinite(request.scores))) == set(scored.tolist())
    assert "ann_fallback" not in rec.stats()["counters"]
