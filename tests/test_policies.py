"""Policies, exactly: small hand-checked cases for each function, and what each event and feedback
button does to the next list of a hand-made bundle whose scores can be worked out on paper."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgerec.errors import ConfigError
from edgerec.runtime import Filters, Policy, Recommender
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.catalog import ItemCatalog
from edgerec.runtime.history import EVENTS
from edgerec.runtime.list_order import mmr, policy_order
from edgerec.runtime.policies import (
    check_filters,
    feedback_adjustment,
    filter_mask,
    freshness_boost,
    popularity_boost,
    popularity_prior,
    standardize,
)

DAY = 86_400.0
NOW = 1_749_996_000.0  # on the hour: the cold-start prior is taken at the start of the hour (spec §3)

# ------------------------------------------------------------------ standardize


def test_standardize_exact_values():
    root = math.sqrt(1.5)  # [1, 2, 3]: mean 2, population deviation sqrt(2/3)
    np.testing.assert_allclose(standardize(np.array([1.0, 2.0, 3.0])), [-root, 0.0, root], rtol=1e-12)
    np.testing.assert_array_equal(standardize(np.array([1.0, 3.0])), [-1.0, 1.0])  # two scores are enough
    np.testing.assert_array_equal(standardize(np.array([3.0, -np.inf, 1.0])), [1.0, -np.inf, -1.0])
    np.testing.assert_array_equal(standardize(np.array([7.0])), [0.0])
    np.testing.assert_array_equal(standardize(np.array([7.0, -np.inf])), [0.0, -np.inf])
    np.testing.assert_array_equal(standardize(np.array([-np.inf, -np.inf])), [-np.inf, -np.inf])
    np.testing.assert_array_equal(standardize(np.array([2.0, 2.0, 2.0])), [0.0, 0.0, 0.0])
    assert standardize(np.zeros(0)).shape == (0,)


def test_standardize_floors_the_deviation_at_1e_9():
    np.testing.assert_allclose(standardize(np.array([0.0, 1e-6])), [-1.0, 1.0], rtol=1e-9)  # above the floor
    np.testing.assert_allclose(standardize(np.array([0.0, 1e-12])), [-5e-4, 5e-4], rtol=1e-9)  # below it


def test_standardize_ignores_minus_inf_in_the_mean_and_deviation():
    out = standardize(np.array([10.0, -np.inf, 20.0, -np.inf, 30.0]))
    np.testing.assert_allclose(out[[0, 2, 4]], [-math.sqrt(1.5), 0.0, math.sqrt(1.5)], rtol=1e-12)
    assert np.all(out[[1, 3]] == -np.inf)


# ------------------------------------------------------------------ popularity prior


def test_popularity_prior_exact_values():
    now = 100 * DAY
    popularity = np.array([0.0, math.e - 1, 99.0, 99.0, 99.0, 99.0])
    release = np.array([0.0, 0.0, now, now - 30 * DAY, now + 5 * DAY, now - 60 * DAY])
    expected = [0.0, 1.0, 2 * math.log(100), math.log(100) * (1 + math.exp(-1)),
                math.log(100),  # not released yet: no bonus (unplayable; in a replay, its popularity is the future's)
                math.log(100) * (1 + math.exp(-2))]
    np.testing.assert_allclose(popularity_prior(popularity, release, now), expected, rtol=1e-12)


def test_popularity_prior_unknown_release_gets_no_bonus_and_trend_days_sets_the_decay():
    # release_ts 0 means unknown: no bonus, even when "now" is only a day after the epoch
    np.testing.assert_allclose(popularity_prior(np.array([99.0]), np.array([0.0]), DAY), [math.log(100)], rtol=1e-12)
    np.testing.assert_allclose(popularity_prior(np.array([99.0]), np.array([1.0]), 1.0 + 10 * DAY, trend_days=10),
                               [math.log(100) * (1 + math.exp(-1))], rtol=1e-12)


# ------------------------------------------------------------------ feedback adjustment


def line(values):
    """Candidates on a line: vector [v] each, so the similarity to the group vector [1] is v itself."""
    return np.asarray(values, np.float64)[:, None]


def test_feedback_adjustment_raises_liked_neighbours_and_lowers_disliked_twice_as_hard():
    # nine at 0 and one at 3: standardized -1/3 (x9) and 3, so only the last is "near" (3 - 1 = 2 deviations)
    vectors = line([0] * 9 + [3])
    group = np.array([[1.0]])
    none = np.zeros((0, 1))
    expected = np.r_[np.zeros(9), 2.0]
    np.testing.assert_allclose(feedback_adjustment(vectors, group, none, Policy()), expected, atol=1e-12)
    np.testing.assert_allclose(feedback_adjustment(vectors, none, group, Policy()), -2 * expected, atol=1e-12)
    np.testing.assert_allclose(feedback_adjustment(vectors, group, group, Policy()), -expected, atol=1e-12)
    np.testing.assert_allclose(feedback_adjustment(vectors, group, none, Policy(feedback_weight=0.25)),
                               0.25 * expected, atol=1e-12)
    np.testing.assert_array_equal(feedback_adjustment(vectors, none, none, Policy()), np.zeros(10))


def test_feedback_adjustment_counts_deviations_above_one_and_caps_at_three():
    # 25 at 0 and one at 1: the last is sqrt(25) = 5 deviations out, 4 above one, capped at 3
    np.testing.assert_allclose(feedback_adjustment(line([0] * 25 + [1]), np.array([[1.0]]), np.zeros((0, 1)),
                                                   Policy()), np.r_[np.zeros(25), 3.0], atol=1e-12)
    # [0, 0, 1, 2, 2]: mean 1, deviation sqrt(0.8); the twos are 1.118 deviations out, 0.118 above one
    z = 1 / math.sqrt(0.8)
    np.testing.assert_allclose(feedback_adjustment(line([0, 0, 1, 2, 2]), np.array([[1.0]]), np.zeros((0, 1)),
                                                   Policy()), [0, 0, 0, z - 1, z - 1], atol=1e-12)


def test_feedback_adjustment_takes_the_nearest_item_of_the_group():
    vectors = np.array([[1.0, 0.0]] + [[0.0, 0.0]] * 7 + [[0.0, 1.0]])
    liked = np.array([[1.0, 0.0], [0.0, 1.0]])  # each of the two ends is next to one liked item
    out = feedback_adjustment(vectors, liked, np.zeros((0, 2)), Policy())
    # max similarities [1, 0 x7, 1]: mean 2/9, the ends sqrt(3.5) deviations out
    np.testing.assert_allclose(out, np.r_[math.sqrt(3.5) - 1, np.zeros(7), math.sqrt(3.5) - 1], atol=1e-12)


def test_feedback_adjustment_with_one_candidate_is_zero():
    np.testing.assert_array_equal(feedback_adjustment(line([5.0]), np.array([[1.0]]), np.array([[1.0]]), Policy()),
                                  [0.0])


# ------------------------------------------------------------------ mmr


def unit(degrees):
    return np.array([math.cos(math.radians(degrees)), math.sin(math.radians(degrees))])


def test_mmr_without_reranking_is_the_stable_best_first_order():
    scores = np.array([1.0, 3.0, -np.inf, 3.0, 2.0])
    np.testing.assert_array_equal(mmr(scores, np.eye(5), 10, 0.0), [1, 3, 4, 0])
    np.testing.assert_array_equal(mmr(scores, np.eye(5), 2, 0.0), [1, 3])
    assert mmr(scores, np.eye(5), 2, 0.0).dtype == np.int64
    for weight in (0.0, 0.5):  # nothing to show is an empty list of positions, still usable as an index
        empty = mmr(np.full(3, -np.inf), np.eye(3), 2, weight)
        assert empty.tolist() == [] and empty.dtype == np.int64
    # no re-ranking asked: scores of any size keep their order (nothing is standardized on the way)
    np.testing.assert_array_equal(mmr(np.array([1e308, -1e308, 5e307]), np.eye(3), 3, 0.0), [0, 2, 1])


def test_mmr_counts_similarity_in_units_of_its_spread_over_the_items_left():
    # relevance (standardized [1, 0, -1]) = [1.2247, 0, -1.2247]; after item 0, the two left have
    # max_sim [s, 0], standardized [+1, -1] whatever s > 0 is: item 1 stays second while
    # (1 - w) 1.2247 > 2 w, i.e. w < 0.3798, at any similarity (a fixed 3 x s scale made the
    # switch depend on how close the space packs its items, and hardly moved real lists)
    scores = np.array([1.0, 0.0, -1.0])
    for s in (0.05, 0.35, 0.9):
        vectors = np.array([[1.0, 0.0], [s, math.sqrt(1 - s * s)], [0.0, 1.0]])
        for weight, second in ((0.37, 1), (0.39, 2)):
            np.testing.assert_array_equal(mmr(scores, vectors, 3, weight), [0, second, 3 - second],
                                          err_msg=f"s={s} w={weight}")
    duplicate = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(mmr(scores, duplicate, 3, 0.0), [0, 1, 2])
    np.testing.assert_array_equal(mmr(scores, duplicate, 3, 0.5), [0, 2, 1])
    np.testing.assert_array_equal(mmr(scores, duplicate, 2, 0.5), [0, 2])
    # pure novelty: relevance only breaks the first pick; then the least similar item comes next
    np.testing.assert_array_equal(mmr(np.array([3.0, 2.0, 1.0]), np.array([unit(0), unit(10), unit(80)]), 3, 1.0),
                                  [0, 2, 1])


def test_mmr_novelty_uses_the_most_similar_chosen_item():
    # after 0 and 1 are chosen, item 2 (near 1) must lose to item 3 (far from both) although 2 is more relevant
    vectors = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, math.cos(0.1), math.sin(0.1)], [0, 0, 1.0]])
    scores = np.array([4.0, 3.0, 2.0, 1.0])
    # (relevance gap 0.894 x (1 - w) against a similarity gap of 2 deviations x w: item 3 wins from w = 0.31)
    assert mmr(scores, vectors, 4, 0.4).tolist() == [0, 1, 3, 2]
    assert mmr(scores, vectors, 4, 0.25).tolist() == [0, 1, 2, 3]


def test_mmr_caps_per_creator_and_genre():
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    vectors = np.eye(5)
    creators = np.array(["a", "a", "b", "a", "b"], dtype=object)
    np.testing.assert_array_equal(mmr(scores, vectors, 5, 0.0, creators=creators, max_per_creator=1), [0, 2])
    np.testing.assert_array_equal(mmr(scores, vectors, 5, 0.0, creators=creators, max_per_creator=2), [0, 1, 2, 4])
    np.testing.assert_array_equal(mmr(scores, vectors, 3, 0.0, creators=creators, max_per_creator=2), [0, 1, 2])
    genres = np.array(["x", "y", "x", "x", "y"], dtype=object)
    np.testing.assert_array_equal(mmr(scores, vectors, 5, 0.0, genres=genres, max_per_genre=1), [0, 1])
    np.testing.assert_array_equal(mmr(scores, vectors, 5, 0.0, genres=genres, max_per_genre=2), [0, 1, 2, 4])
    # items without a creator or genre are never capped
    blank = np.array(["", "", "", "", ""], dtype=object)
    np.testing.assert_array_equal(mmr(scores, vectors, 5, 0.0, creators=blank, genres=blank, max_per_creator=1,
                                      max_per_genre=1), [0, 1, 2, 3, 4])
    # both caps at once: 1 and 3 fall to the creator cap, 2 to the genre cap; 4 is the first "y" counted
    np.testing.assert_array_equal(mmr(scores, vectors, 5, 0.0, creators=creators, genres=genres, max_per_creator=1,
                                      max_per_genre=1), [0, 4])
    # a cap needs its column: without creators nothing is capped
    np.testing.assert_array_equal(mmr(scores, vectors, 5, 0.0, max_per_creator=1), [0, 1, 2, 3, 4])


def test_mmr_with_caps_and_no_diversity_keeps_relevance_order():
    scores = np.array([1.0, 5.0, -np.inf, 3.0])
    creators = np.array(["a", "b", "c", "d"], dtype=object)
    np.testing.assert_array_equal(mmr(scores, np.eye(4), 4, 0.0, creators=creators, max_per_creator=1), [1, 3, 0])


@settings(max_examples=40, deadline=None)
@given(arrays(np.int64, st.integers(50, 400), elements=st.integers(-500, 500)), st.integers(1, 60),
       st.integers(0, 10**6))
def test_mmr_picks_distinct_finite_items_and_caps_hold_for_large_lists(scores, k, seed):
    scores = scores / 100.0  # steps of 0.01: no two scores so close that standardizing merges them
    rng = np.random.default_rng(seed)
    scores[rng.random(len(scores)) < 0.2] = -np.inf
    vectors = rng.normal(size=(len(scores), 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    creators = rng.choice(np.array(["a", "b", "c", "d", "e"], dtype=object), len(scores))
    picked = mmr(scores, vectors, k, 0.4, creators=creators, max_per_creator=3)
    finite = int(np.isfinite(scores).sum())
    room = sum(min(3, count) for count in np.unique(creators[np.isfinite(scores)], return_counts=True)[1])
    assert len(set(picked.tolist())) == len(picked) == min(k, room)
    assert np.all(np.isfinite(scores[picked]))
    assert max(np.unique(creators[picked], return_counts=True)[1], default=0) <= 3
    if finite:
        assert picked[0] == int(np.argmax(np.where(np.isfinite(scores), scores, -np.inf)))


# ------------------------------------------------------------------ filter mask

GENRES = ["horror", "family", "animation", "kids", "pets", "cooking", "diy", "science", "travel", "documentary",
          "classical", "ambient", "pop", "folk", "dance", "sports", "thriller", "crime", "drama", "news"]
# what kids may see: the product's list, written out here so a genre dropped from it (or added) is noticed
KIDS_SAFE = {"family", "animation", "kids", "pets", "cooking", "diy", "science", "travel", "documentary",
             "classical", "ambient", "pop", "folk", "dance", "sports"}


@pytest.fixture
def catalog(handmade_bundle):
    n = len(GENRES)
    rng = np.random.default_rng(0)
    root = handmade_bundle(rng.normal(size=(n, 3)),
                           genre=GENRES,
                           language=["en", "es", "fr", "en"] * (n // 4),
                           modality=["film", "podcast_episode"] * (n // 2),
                           duration=[100.0 * (r + 1) for r in range(n)])
    return ItemCatalog(Bundle.open(root))


def rows_where(mask):
    return np.flatnonzero(mask).tolist()


def test_filter_mask_each_filter_exactly(catalog):
    n = len(GENRES)
    rows = np.arange(n)
    assert rows_where(filter_mask(catalog, rows, None)) == list(range(n))
    assert rows_where(filter_mask(catalog, rows, Filters())) == list(range(n))
    assert rows_where(filter_mask(catalog, rows, Filters(languages=["es"]))) == list(range(1, n, 4))
    assert rows_where(filter_mask(catalog, rows, Filters(languages=["en", "fr"]))) == [
        r for r in range(n) if r % 4 in (0, 2, 3)]
    assert rows_where(filter_mask(catalog, rows, Filters(modalities=["podcast_episode"]))) == list(range(1, n, 2))
    assert rows_where(filter_mask(catalog, rows, Filters(genres=["family", "news"]))) == [1, 19]
    assert rows_where(filter_mask(catalog, rows, Filters(exclude_genres=["family", "news"]))) == [
        r for r in range(n) if r not in (1, 19)]
    assert rows_where(filter_mask(catalog, rows, Filters(kids_safe=True))) == [
        r for r, g in enumerate(GENRES) if g in KIDS_SAFE]
    assert rows_where(filter_mask(catalog, rows, Filters(max_duration_s=300))) == [0, 1, 2]  # 300 s itself passes
    with pytest.raises(ConfigError, match="max_duration_s must be a finite number above 0"):
        filter_mask(catalog, rows, Filters(max_duration_s=0))  # nothing could pass: refused, not an empty list
    assert rows_where(filter_mask(catalog, rows, Filters(exclude_items=["i3", "i5", "no-such-item"]))) == [
        r for r in range(n) if r not in (3, 5)]


def test_filter_mask_combines_filters_and_follows_the_given_rows(catalog):
    rows = np.array([19, 4, 1, 16, 5])
    got = filter_mask(catalog, rows, Filters(kids_safe=True, languages=["en"], exclude_items=["i4"]))
    # 19 news (not safe), 4 pets en (excluded), 1 family es, 16 thriller, 5 cooking es
    assert got.tolist() == [False, False, False, False, False]
    got = filter_mask(catalog, rows, Filters(kids_safe=True, modalities=["podcast_episode"]))
    assert got.tolist() == [False, False, True, False, True]
    # genres read at the rows given, in their order (a permutation of the catalog's first rows too)
    assert filter_mask(catalog, rows, Filters(genres=["family", "news"])).tolist() == [True, False, True, False, False]
    assert filter_mask(catalog, rows, Filters(exclude_genres=["family", "news"])).tolist() == [
        False, True, False, True, True]
    first = np.array([1, 0, 3, 2])
    assert filter_mask(catalog, first, Filters(genres=["family"])).tolist() == [True, False, False, False]
    assert filter_mask(catalog, first, Filters(exclude_genres=["family"])).tolist() == [False, True, True, True]
    assert filter_mask(catalog, np.zeros(0, np.int64), Filters(languages=["en"])).tolist() == []


@pytest.mark.parametrize("extra,expected", [
    ({"modalities": ["film"]}, []),  # Spanish items are all podcasts here
    ({"genres": ["family", "pets", "news"]}, [1]),
    ({"exclude_genres": ["family"]}, [5, 9, 13, 17]),
    ({"kids_safe": True}, [1, 5, 9, 13]),  # family, cooking, science, pop; 17 is thriller
    ({"max_duration_s": 600}, [1, 5]),
    ({"exclude_items": ["i9", "i4"]}, [1, 5, 13, 17]),
])
def test_each_filter_narrows_what_the_others_left(catalog, extra, expected):
    rows = np.arange(len(GENRES))
    assert rows_where(filter_mask(catalog, rows, Filters(languages=["es"]))) == [1, 5, 9, 13, 17]
    assert rows_where(filter_mask(catalog, rows, Filters(languages=["es"], **extra))) == expected


def test_a_filter_that_could_only_empty_the_list_by_mistake_is_refused(catalog, handmade_bundle, tmp_path):
    """A genre in the wrong case, a column no item fills, a modality edgerec does not name: each is
    an error that says what to write, not an empty list; a well-formed value no item has yet is fine."""
    check_filters(catalog, Filters(languages=["de"], genres=["family"], modalities=["music_track"]))  # empty, truly
    with pytest.raises(ConfigError, match="'Family' -> 'family'"):
        check_filters(catalog, Filters(genres=["Family"]))
    with pytest.raises(ConfigError, match="'NEWS' -> 'news'"):
        check_filters(catalog, Filters(exclude_genres=["NEWS"]))  # else dramas would pass it, silently
    with pytest.raises(ConfigError, match="'EN' -> 'en'"):
        check_filters(catalog, Filters(languages=["EN"]))
    with pytest.raises(ConfigError, match="unknown modalities.*'podcast'"):
        check_filters(catalog, Filters(modalities=["podcast"]))
    bare = handmade_bundle(np.eye(4, dtype=np.float32), language=[""] * 4, genre=[""] * 4, duration=[0.0] * 4)
    with Recommender.open(bare, history=tmp_path / "h.db") as rec:
        rec.record("u", "i0", "finish")
        assert len(rec.recommend("u", k=3)) == 3
        for filters, message in ((Filters(languages=["en"]), "has no languages"),
                                 (Filters(kids_safe=True), "has no genres"),
                                 (Filters(max_duration_s=600), "carry no duration")):
            with pytest.raises(ConfigError, match=message):
                rec.recommend("u", k=3, filters=filters)


def test_an_item_of_unknown_duration_does_not_pass_a_duration_limit(handmade_bundle):
    cat = ItemCatalog(Bundle.open(handmade_bundle(np.eye(4, dtype=np.float32), duration=[100.0, 0.0, 900.0, 50.0])))
    assert rows_where(filter_mask(cat, np.arange(4), Filters(max_duration_s=600))) == [0, 3]


# ------------------------------------------------------------------ through the recommender


def ids_of(results):
    return [r.item_id for r in results]


def request(rec, user, **kw):
    return rec.recommend(user, k=kw.pop("k", 100), context={"now": NOW}, policy=kw.pop("policy", Policy()), **kw)


@pytest.fixture(params=["fp32", "int8"])
def fan_world(request, handmade_bundle):
    """Twelve items on the unit circle, 30 degrees apart; equal popularity, no release dates."""
    vectors = np.array([unit(30 * r) for r in range(12)])
    with Recommender.open(handmade_bundle(vectors, table=request.param), history=None) as rec:
        yield rec


@pytest.mark.parametrize("event", EVENTS)
def test_every_event_removes_exactly_its_item_from_later_lists(fan_world, event):
    rec = fan_world
    for r in (0, 1, 11):  # a history long enough for the plain (non cold-start) path
        rec.record("u", f"i{r}", "finish")
    rec.record("u", "i6", event)
    got = ids_of(request(rec, "u"))
    assert sorted(got) == sorted(f"i{r}" for r in range(12) if r not in (0, 1, 11, 6))
    # and for a newcomer, the event alone removes the item as well
    rec.record("new", "i6", event)
    assert sorted(ids_of(request(rec, "new"))) == sorted(f"i{r}" for r in range(12) if r != 6)


@pytest.mark.parametrize("event", ["play", "finish", "like"])
def test_consumption_events_make_the_taste(fan_world, event):
    rec = fan_world
    rec.record("u", "i0", event)
    got = ids_of(request(rec, "u", k=4))
    assert got[:2] in (["i1", "i11"], ["i11", "i1"]) and got[2:] in (["i2", "i10"], ["i10", "i2"])


def test_skips_and_dislikes_are_not_taste(fan_world):
    rec = fan_world
    rec.record("skipper", "i0", "skip")
    got = request(rec, "skipper")
    assert ids_of(got) == [f"i{r}" for r in range(1, 12)]  # still a newcomer: equal popularity, row order
    assert all(r.reason.kind == "popular" for r in got)
    rec.record("hater", "i0", "not_interested")
    got = request(rec, "hater")
    # only i1 and i11 (cos 30 = 0.87, 1.43 deviations above the pool's mean similarity to i0) are near
    # enough to be pushed down; everything else keeps its place
    assert ids_of(got)[:9] == [f"i{r}" for r in range(2, 11)] and set(ids_of(got)[9:]) == {"i1", "i11"}
    assert all(r.reason.kind == "popular" for r in got)


def test_more_like_this_lifts_the_items_near_it(fan_world):
    rec = fan_world
    rec.record("u", "i3", "more_like_this")
    got = request(rec, "u")
    # no history: the list is the (flat) popular one, with the two near neighbours of i3 lifted to the top
    assert set(ids_of(got)[:2]) == {"i2", "i4"}
    assert ids_of(got)[2:] == ["i0", "i1"] + [f"i{r}" for r in range(5, 12)]
    assert [r.reason.kind for r in got[:2]] == ["feedback", "feedback"] and got[0].reason.item_id == "i3"


def neighbour_world():
    """A history along x; two clusters as relevant as each other, one along y (t, n1, n2), one along z
    (c, m1, m2); filler items less relevant. Rows: h0-h2 = 0-2, t=3, n1=4, n2=5, c=6, m1=7, m2=8, fillers 9-14."""
    def norm(v):
        v = np.asarray(v, np.float64)
        return v / np.linalg.norm(v)

    rows = [norm([1, 0, 0]), norm([1, 0.05, 0]), norm([1, -0.05, 0]),
            norm([0.9, 0.44, 0]), norm([0.9, 0.42, 0.04]), norm([0.9, 0.42, -0.04]),
            norm([0.9, 0, 0.44]), norm([0.9, 0.04, 0.42]), norm([0.9, -0.04, 0.42])]
    rows += [norm([0.5, -0.6, -0.6]), norm([0.4, -0.8, 0.2]), norm([0.3, 0.2, -0.9]),
             norm([0.2, -0.9, -0.3]), norm([0.1, 0.5, -0.8]), norm([0.0, -0.7, 0.7])]
    return np.array(rows)


def test_not_interested_pushes_down_the_items_near_it_and_no_others(handmade_bundle):
    vectors = neighbour_world()
    with Recommender.open(handmade_bundle(vectors), history=None) as rec:
        for user in ("treated", "control", "plain"):
            for r in range(3):
                rec.record(user, f"i{r}", "finish")
        rec.record("treated", "i3", "not_interested")  # the y cluster's head
        rec.record("control", "i6", "not_interested")  # the z cluster's head: same relevance, far from i3
        policy = Policy(language_boost=0.0)  # every item is in the user's language: leave that bonus out
        plain = {r.item_id: r.score for r in request(rec, "plain", policy=policy)}
        treated = {r.item_id: r.score for r in request(rec, "treated", policy=policy)}
        control = {r.item_id: r.score for r in request(rec, "control", policy=policy)}

    def order(scores):
        return sorted(scores, key=lambda item: -scores[item])

    y_cluster, z_cluster = {"i3", "i4", "i5"}, {"i6", "i7", "i8"}
    assert set(order(plain)[:6]) == y_cluster | z_cluster and order(plain)[:2] == ["i4", "i5"]
    # each dislike sends its own neighbours below the other cluster, and leaves the other cluster alone
    assert set(order(treated)[:3]) == z_cluster and order(treated)[3:5] == ["i4", "i5"]
    assert set(order(control)[:3]) == y_cluster and order(control)[3:5] == ["i7", "i8"]
    for scores, hit, spared in ((treated, ("i4", "i5"), ("i6", "i7", "i8")), (control, ("i7", "i8"), ("i4", "i5"))):
        # exact: the user's standardized relevance, minus 2 * (closeness in deviations - 1) for near items
        user = vectors[:3].mean(0)
        pool = [f"i{r}" for r in range(3, 15) if f"i{r}" in scores]
        rows = [int(i[1:]) for i in pool]
        relevance = standardize(vectors[rows] @ user)
        disliked = 3 if scores is treated else 6
        closeness = standardize(vectors[rows] @ vectors[disliked])
        expected = relevance - 2 * np.clip(closeness - 1, 0, 3)
        np.testing.assert_allclose([scores[i] for i in pool], expected, rtol=1e-5, atol=1e-5)
        for item in hit:
            assert expected[pool.index(item)] < relevance[pool.index(item)] - 0.4
        for item in spared:
            assert expected[pool.index(item)] == relevance[pool.index(item)]


def test_newcomers_get_the_popular_list_in_prior_order(handmade_bundle):
    popularity = [100, 50, 50, 20, 0, 9, 100, 100]
    release = [0, NOW, NOW - 30 * DAY, NOW + 10 * DAY, 0, NOW - 300 * DAY, NOW - 60 * DAY, 0]
    # prior = log(1 + popularity) * (1 + exp(-age / 30 days)), no bonus without a release date or before it:
    # 1: 2 ln 51 = 7.86; 2: ln 51 (1 + e^-1) = 5.38; 6: ln 101 (1 + e^-2) = 5.24;
    # 0 and 7: ln 101 = 4.62 (a tie: lower row first); 3 (out in 10 days): ln 21 = 3.04; 5: ln 10 (1 + e^-10) = 2.30; 4: 0
    rng = np.random.default_rng(1)
    with Recommender.open(handmade_bundle(rng.normal(size=(8, 4)), popularity=popularity, release_ts=release),
                          history=None) as rec:
        got = request(rec, "newcomer")
        assert ids_of(got) == ["i1", "i2", "i6", "i0", "i7", "i3", "i5", "i4"]
        assert all(r.reason.kind == "popular" for r in got)
        prior = np.array([math.log(101), 2 * math.log(51), math.log(51) * (1 + math.exp(-1)), math.log(21), 0.0,
                          math.log(10) * (1 + math.exp(-10)), math.log(101) * (1 + math.exp(-2)), math.log(101)])
        expected = (prior - prior.mean()) / prior.std()
        np.testing.assert_allclose([r.score for r in got], expected[[1, 2, 6, 0, 7, 3, 5, 4]], rtol=1e-5)
        # what they skip leaves the list; the rest keeps its order
        rec.record("newcomer", "i3", "skip")
        assert ids_of(request(rec, "newcomer")) == ["i1", "i2", "i6", "i0", "i7", "i5", "i4"]


def test_language_boost_lifts_the_users_two_usual_languages_by_exactly_its_weight(handmade_bundle):
    # history: three Spanish, two French, one German item along x; candidates come in pairs with the
    # same vector (so the same relevance), one item of each pair in a language the user has or has not
    history = [unit(0)] * 6
    angles = (20, 40, 60)
    vectors = np.array(history + [unit(a) for a in angles for _ in range(2)])
    languages = ["es", "es", "es", "fr", "fr", "de"] + ["es", "en", "fr", "en", "de", "en"]
    with Recommender.open(handmade_bundle(vectors, language=languages), history=None) as rec:
        for r in range(6):
            rec.record("u", f"i{r}", "finish")
        plain = {r.item_id: r.score for r in request(rec, "u", policy=Policy(language_boost=0.0))}
        boosted = {r.item_id: r.score for r in request(rec, "u", policy=Policy(language_boost=0.7))}
    for es_or_fr, en in (("i6", "i7"), ("i8", "i9")):
        assert plain[es_or_fr] == pytest.approx(plain[en], abs=1e-9)
        assert boosted[es_or_fr] - boosted[en] == pytest.approx(0.7, abs=1e-9)
        assert boosted[en] == pytest.approx(plain[en], abs=1e-9)
    # German is the user's third language: the boost reaches the two usual ones only
    assert boosted["i10"] == pytest.approx(plain["i10"], abs=1e-9)
    assert boosted["i10"] == pytest.approx(boosted["i11"], abs=1e-9)


def test_policy_order_reads_the_pool_rows_creators_and_genres_for_the_caps(handmade_bundle):
    """The caps count the creators and genres of the pool's rows (not the catalog's first rows)."""
    creators = ["c0", "c0", "c1", "c1", "c2", "c2"]
    genres = ["g0", "g1", "g0", "g1", "g0", "g1"]
    cat = ItemCatalog(Bundle.open(handmade_bundle(np.eye(6), creator=creators, genre=genres)))
    pool = np.array([5, 4, 3, 2, 1, 0])  # the short list holds the rows in reverse
    relevance = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])  # best first along the pool
    vectors = np.eye(6)
    assert policy_order(relevance, vectors, 4, Policy(), cat, pool).tolist() == [0, 1, 2, 3]
    # rows 5, 4 share creator c2: one of them; then rows 3 (c1) and 1 (c0)
    assert policy_order(relevance, vectors, 4, Policy(max_per_creator=1), cat, pool).tolist() == [0, 2, 4]
    # genres along the pool: g1, g0, g1, g0, g1, g0
    assert policy_order(relevance, vectors, 4, Policy(max_per_genre=1), cat, pool).tolist() == [0, 1]
    assert policy_order(relevance, vectors, 5, Policy(max_per_creator=2, max_per_genre=2), cat, pool).tolist() == [
        0, 1, 2, 3]
    # diversity goes to MMR with the same weight
    for weight in (0.3, 0.9):
        got = policy_order(relevance, vectors, 3, Policy(diversity=weight), cat, pool)
        np.testing.assert_array_equal(got, mmr(relevance, vectors, 3, weight))


# ------------------------------------------------------------------ freshness and popularity boosts


def test_freshness_boost_exact_values():
    release = np.array([NOW, NOW - 30 * DAY, NOW + 5 * DAY, 0.0, NOW - 10 * DAY])  # future: none yet; 0: unknown
    np.testing.assert_allclose(freshness_boost(release, NOW, Policy(freshness=2.0)),
                               [2.0, 2 * math.exp(-1), 0.0, 0.0, 2 * math.exp(-1 / 3)], rtol=1e-12, atol=0)
    np.testing.assert_allclose(freshness_boost(release, NOW, Policy(freshness=0.5, freshness_days=10.0)),
                               [0.5, 0.5 * math.exp(-3), 0.0, 0.0, 0.5 * math.exp(-1)], rtol=1e-12, atol=0)
    off = freshness_boost(release, NOW, Policy(freshness=0.0, freshness_days=10.0))
    assert off.tolist() == [0.0] * 5 and off.dtype == np.float64
    # any positive time is a release date, even the first seconds of the epoch; only 0 means unknown
    early = np.array([0.5, 1.0, 0.0])
    np.testing.assert_allclose(freshness_boost(early, 1.0 + 30 * DAY, Policy(freshness=1.0)),
                               [math.exp(-(30 * DAY + 0.5) / (30 * DAY)), math.exp(-1), 0.0], rtol=1e-12, atol=0)


def test_popularity_boost_is_the_weighted_standardised_log_popularity():
    counts = np.array([0, math.e - 1, math.e**2 - 1])  # log1p: 0, 1, 2 -> standardised -sqrt(1.5), 0, sqrt(1.5)
    np.testing.assert_allclose(popularity_boost(counts, Policy(popularity=0.5)),
                               [-0.5 * math.sqrt(1.5), 0.0, 0.5 * math.sqrt(1.5)], rtol=1e-12, atol=1e-15)
    ints = np.array([0, 9, 99], np.int32)  # log1p in float64: ln 1, ln 10, ln 100 are evenly spaced too
    np.testing.assert_allclose(popularity_boost(ints, Policy(popularity=2.0)),
                               [-2 * math.sqrt(1.5), 0.0, 2 * math.sqrt(1.5)], rtol=1e-12, atol=1e-15)
    off = popularity_boost(ints, Policy(popularity=0.0))
    assert off.tolist() == [0.0] * 3 and off.dtype == np.float64
    np.testing.assert_allclose(popularity_boost(ints, Policy(popularity=-0.5)),  # below 0: the long tail first
                               [0.5 * math.sqrt(1.5), 0.0, -0.5 * math.sqrt(1.5)], rtol=1e-12, atol=1e-15)
    # float32 counts (a narrow bundle column) are boosted in float64 like any other
    narrow = popularity_boost(np.array([0, 9, 99], np.float32), Policy(popularity=2.0))
    assert narrow.dtype == np.float64
    np.testing.assert_allclose(narrow, [-2 * math.sqrt(1.5), 0.0, 2 * math.sqrt(1.5)], rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------ Policy and Filters checks

BIG = 2**31  # checks.integer's default upper bound
# field, accepted values (the edges of its range), refused value, the whole message for it
POLICY_FIELDS = [
    ("diversity", [0.0, 1.0], 1.01, "Policy.diversity must be a finite number from 0 up to 1 (got 1.01)"),
    ("diversity", [0.0], -0.01, "Policy.diversity must be a finite number from 0 up to 1 (got -0.01)"),
    ("max_per_creator", [None, 1, BIG], 0, f"Policy.max_per_creator must be a positive integer of at most {BIG} (got 0)"),
    ("max_per_creator", [1], BIG + 1, f"Policy.max_per_creator must be a positive integer of at most {BIG} (got {BIG + 1})"),
    ("max_per_genre", [None, 1, BIG], 0, f"Policy.max_per_genre must be a positive integer of at most {BIG} (got 0)"),
    ("max_per_genre", [1], 2.0, "Policy.max_per_genre must be an integer (got float 2.0)"),
    ("freshness", [0.0, 100.0], 100.5, "Policy.freshness must be a finite number from 0 up to 100 (got 100.5)"),
    ("freshness", [0.0], -0.5, "Policy.freshness must be a finite number from 0 up to 100 (got -0.5)"),
    ("freshness_days", [1e-9, 36_500.0], 0.0, "Policy.freshness_days must be a finite number above 0 up to 36500 (got 0.0)"),
    ("freshness_days", [1.0], 36_501.0, "Policy.freshness_days must be a finite number above 0 up to 36500 (got 36501.0)"),
    ("popularity", [-100.0, 0.0, 100.0], math.nan, "Policy.popularity must be a finite number from -100 up to 100 (got nan)"),
    ("popularity", [-1.0], 100.5, "Policy.popularity must be a finite number from -100 up to 100 (got 100.5)"),
    ("language_boost", [-100.0, 100.0], -100.5, "Policy.language_boost must be a finite number from -100 up to 100 (got -100.5)"),
    ("language_boost", [0.0], 100.5, "Policy.language_boost must be a finite number from -100 up to 100 (got 100.5)"),
    ("feedback_weight", [0.0, 100.0], -1.0, "Policy.feedback_weight must be a finite number from 0 up to 100 (got -1.0)"),
    ("feedback_weight", [1.0], 101.0, "Policy.feedback_weight must be a finite number from 0 up to 100 (got 101.0)"),
    ("cold_start_items", [0, 10_000], 10_001, "Policy.cold_start_items must be an integer from 0 to 10000 (got 10001)"),
    ("cold_start_items", [3], -1, "Policy.cold_start_items must be an integer from 0 to 10000 (got -1)"),
    ("short_list", [1, 100_000], 0, "Policy.short_list must be a positive integer of at most 100000 (got 0)"),
    ("short_list", [100], 100_001, "Policy.short_list must be a positive integer of at most 100000 (got 100001)"),
    ("use_ranker", [True, False], 1, "Policy.use_ranker must be True or False (got int 1)"),
    ("use_scorer", [None, True, False], 0, "Policy.use_scorer must be True or False (got int 0)"),
    ("context_weight", [None, 0.0, 100.0], 100.5, "Policy.context_weight must be a finite number from 0 up to 100 (got 100.5)"),
    ("context_weight", [None], -0.5, "Policy.context_weight must be a finite number from 0 up to 100 (got -0.5)"),
    ("engagement", [None, 0.0, 10.0], 10.5, "Policy.engagement must be a finite number from 0 up to 10 (got 10.5)"),
    ("engagement", [None], -0.5, "Policy.engagement must be a finite number from 0 up to 10 (got -0.5)"),
    ("fairness", [0.0, 100.0], 100.5, "Policy.fairness must be a finite number from 0 up to 100 (got 100.5)"),
    ("fairness", [0.0], -0.5, "Policy.fairness must be a finite number from 0 up to 100 (got -0.5)"),
    ("fairness_method", ["exposure", "cap"], "gini", "Policy.fairness_method must be one of exposure, cap (got 'gini')"),
    ("extra", [{}, {"a": 1}], None, "Policy.extra must be a dict, e.g. dict(...) (got NoneType None)"),
    ("diversity", [0.5], math.nan, "Policy.diversity must be a finite number from 0 up to 1 (got nan)"),
]


@pytest.mark.parametrize("name, accepted, refused, message", POLICY_FIELDS)
def test_policy_fields_accept_their_range_and_name_what_is_wrong(name, accepted, refused, message):
    for value in accepted:
        policy = Policy(**{name: value})
        assert getattr(policy, name) == value and policy.check() is policy
    with pytest.raises(ConfigError) as err:
        Policy(**{name: refused})
    assert str(err.value) == message
    policy = Policy()  # check() refuses a field set after construction too
    setattr(policy, name, refused)
    with pytest.raises(ConfigError) as err:
        policy.check()
    assert str(err.value) == message


FILTER_FIELDS = [
    ("languages", "en", "Filters.languages must be a list of strings, e.g. ['en'], not a single string (got 'en')"),
    ("modalities", "film", "Filters.modalities must be a list of strings, e.g. ['film'], not a single string (got 'film')"),
    ("genres", "drama", "Filters.genres must be a list of strings, e.g. ['drama'], not a single string (got 'drama')"),
    ("exclude_genres", "news", "Filters.exclude_genres must be a list of strings, e.g. ['news'], not a single string "
                               "(got 'news')"),
    ("exclude_items", "i3", "Filters.exclude_items must be a list of strings, e.g. ['i3'], not a single string (got 'i3')"),
    ("exclude_items", [""], "each of Filters.exclude_items must not be empty"),
    ("kids_safe", 1, "Filters.kids_safe must be True or False (got int 1)"),
    ("kids_safe", None, "Filters.kids_safe must be True or False (got NoneType None)"),
    ("max_duration_s", 0.0, "Filters.max_duration_s must be a finite number above 0 to inf (got 0.0)"),
    ("max_duration_s", math.inf, "Filters.max_duration_s must be a finite number above 0 to inf (got inf)"),
    ("max_duration_s", "60", "Filters.max_duration_s must be a number (got str '60')"),
]


@pytest.mark.parametrize("name, refused, message", FILTER_FIELDS)
def test_filter_fields_name_what_is_wrong(name, refused, message):
    with pytest.raises(ConfigError) as err:
        Filters(**{name: refused})
    assert str(err.value) == message
    filters = Filters()
    setattr(filters, name, refused)
    with pytest.raises(ConfigError) as err:
        filters.check()
    assert str(err.value) == message


def test_filters_keep_lists_as_lists_of_strings():
    filters = Filters(languages=("en", "fr"), modalities={"film"}, genres=iter(["drama"]), exclude_genres=("news",),
                      exclude_items=("i1",), kids_safe=True, max_duration_s=1e-6)
    assert (filters.languages, filters.modalities, filters.genres) == (["en", "fr"], ["film"], ["drama"])
    assert (filters.exclude_genres, filters.exclude_items) == (["news"], ["i1"])
    assert filters.kids_safe is True and filters.max_duration_s == 1e-6 and filters.check() is filters
    assert Filters(max_duration_s=None).max_duration_s is None and Filters().kids_safe is False


@pytest.mark.parametrize(("change", "message"), [
    (lambda rec: setattr(rec.policy, "feedback_weight", float("nan")), "Policy.feedback_weight"),  # an empty list
    (lambda rec: setattr(rec.policy, "diversity", 5.0), "Policy.diversity"),  # served as given
    (lambda rec: setattr(rec.policy, "keep_top", -3), "Policy.keep_top"),  # ignored
    (lambda rec: setattr(rec, "policy", {"diversity": 0.3}), "^Recommender.policy must be a Policy, e.g."),  # AttributeError
])
def test_the_recommenders_own_policy_is_checked_as_a_requests_is(rec, change, message):
    """rec.policy is documented as the app's to replace or change; it was used unchecked."""
    change(rec)
    with pytest.raises(ConfigError, match=message):
        rec.recommend("u1", k=5)
    rec.policy = Policy()
    assert len(rec.recommend("u1", k=5)) == 5
