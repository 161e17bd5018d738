"""Guard tests of runtime/scorer.py (mutation testing, note 17 of tools/mutation-scores.md): a whole row of
scorer features worked out by hand on a four-item catalog (each column where the spec puts it, every
context cell), the history side (its last 50 rows, last 5 likes) and when a kept side is trusted, the
tag codes' layout and bound, and the linear model's score, contributions, grouping, reasons and words
computed by hand, with its refusals' whole messages."""

from __future__ import annotations

import numpy as np
import pytest

from edgerec.runtime import scorer as scorer_module
from edgerec.runtime.features import ItemTable, history_side, item_features
from edgerec.runtime.scorer import (
    FEATURES,
    TASTE,
    Featurizer,
    LinearScorer,
    ScorerSide,
    TagCodes,
    day_part,
    group_of,
    scorer_names,
)

VECTORS = np.array([[1, 0], [0, 1], [1, 1], [2, -1]], np.float32)
TAGS = {0: ("rock", "pop"), 1: ("rock",), 2: ("jazz", "rock"), 3: ()}
NOW = 1_700_000_000


def _table() -> ItemTable:
    return ItemTable(modality=np.array([0, 2, -1, 4]), duration=np.array([60.0, 600.0, 0.0, 3600.0], np.float32),
                     popularity=np.array([3.0, 0.0, 9.0, 1.0], np.float32),
                     release_ts=np.array([NOW - 86_400, 0, NOW - 10 * 86_400, NOW], np.int64),
                     language=np.array([1, 1, 2, -1]), creator=np.array([4, 5, 4, -1]),
                     series=np.array([-1, 3, 3, -1]), episode=np.array([0, 1, 2, 0]))


def _featurizer(tags=TAGS) -> Featurizer:
    return Featurizer(_table(), np.array([5, 5, 7, -1]), TagCodes(lambda row: tags[row], len(tags)),
                      lambda rows: VECTORS[rows])


def test_the_feature_names_and_the_day_parts():
    assert len(FEATURES) == 51 and FEATURES[:3] == ("retrieval score", "popularity", "age")
    assert FEATURES[10:13] == ("like similarity", "phone x film", "phone x series_episode")
    assert FEATURES[31] == "night x film" and FEATURES[-1] == "evening x podcast_episode"
    assert scorer_names(2) == FEATURES + ("taste match 0", "taste match 1") and scorer_names(0) == FEATURES
    assert [group_of(n) for n in ("taste match 0", "taste match 12", "taste matches", "popularity")] == \
        [TASTE, TASTE, "taste matches", "popularity"]
    assert [day_part(h) for h in (0, 5.99, 6, 11.5, 12, 17.99, 18, 23.99, 24, 30, -1)] == \
        [0, 0, 1, 1, 2, 2, 3, 3, 0, 1, 3]


def _expected(device: int, hour_part: int, with_history=True) -> np.ndarray:
    """The rows of candidates 1, 2, 3 for user (1, 2), history rows 0, 1 and a like of row 0, by hand."""
    out = np.zeros((3, 53))
    out[:, 0] = [2, 3, 0]  # v . u
    out[:, 51:] = [[0, 2], [1, 2], [2, -2]]  # u[i] * v[i]
    table, history = _table(), np.array([0, 1]) if with_history else np.zeros(0, np.int64)
    block = item_features(table, np.array([1, 2, 3]), history, NOW, history_side(table, history))
    out[:, [3, 1, 2, 4, 5, 6, 7]] = block  # length, popularity, age, language, creator, series, next episode
    if with_history:
        out[:, 8] = [2 / (2 * 1), (0 + 2) / (2 * 2), 0]  # rock twice in the history, jazz never
        out[:, 9] = [1, 0, 0]  # genre 5 is the whole history
        out[:, 10] = [0, 1, 2]  # v . v_0, the liked row
    for position, modality in ((0, 2), (2, 4)):  # candidate 2's modality is unknown: no cell
        if 0 <= device < 4:
            out[position, 11 + 5 * device + modality] = 1
        out[position, 31 + 5 * hour_part + modality] = 1
    return out


@pytest.mark.parametrize(("device", "hour", "part"), [(1, 7.0, 1), (0, 0.0, 0), (3, 23.5, 3), (-1, 12.0, 2),
                                                      (4, 18.0, 3)])
def test_a_row_of_features_by_hand(device, hour, part):
    featurize, candidates = _featurizer(), np.array([1, 2, 3])
    got = featurize(np.array([1, 2], np.float32), VECTORS[candidates], candidates, np.array([0, 1]), hour, device,
                    NOW, np.array([0]))
    assert got.dtype == np.float64 and got.shape == (3, 53)
    np.testing.assert_allclose(got, _expected(device, part), rtol=0, atol=1e-7)


def test_a_row_without_history_or_likes():
    featurize, candidates = _featurizer(), np.array([1, 2, 3])
    got = featurize(np.array([1, 2], np.float32), VECTORS[candidates], candidates, np.zeros(0, np.int64), 7.0, 1,
                    NOW, np.zeros(0, np.int64))
    np.testing.assert_allclose(got, _expected(1, 1, with_history=False), rtol=0, atol=1e-7)
    side = featurize.side(np.array([3]), np.array([1]))  # a history without tags: no tag profile
    assert side.tag_profile is None and side.recent == 1
    got = featurize(np.array([1, 2], np.float32), VECTORS[candidates], candidates, np.array([3]), 7.0, 1, NOW,
                    np.array([1]), side)
    assert got[:, 8].tolist() == [0, 0, 0] and got[:, 10].tolist() == [1, 1, -1]  # v . v_1


def test_the_side_reads_the_last_50_rows_and_5_likes():
    featurize = _featurizer()
    history = np.array([2] * 10 + [0] * 50)  # the oldest 10 (genre 7) fall out of the recent 50
    liked = np.array([3, 3, 0, 1, 2, 1, 0])
    side = featurize.side(history, liked)
    assert side.recent == 50 and side.genres.share(np.array([5, 7])).tolist() == [1.0, 0.0]
    assert side.liked.tolist() == VECTORS[[0, 1, 2, 1, 0]].tolist()
    assert side.tag_profile.tolist() == [50, 50, 0]  # rock, pop (row 0 only), then the 0 read by code -1
    assert side.tag_codes() is featurize.tags and isinstance(side, ScorerSide)
    np.testing.assert_allclose(side.items.language.share(np.array([1, 2])), [50 / 60, 10 / 60], rtol=1e-6)  # all 60
    assert featurize.side(np.zeros(0, np.int64), np.zeros(0, np.int64)).liked is None
    empty = featurize.side([], [])  # plain lists (a float64 array when empty) are read as rows
    assert (empty.recent, empty.liked, empty.tag_profile, empty.genres.size) == (0, None, None, 0)
    floats = featurize.side([0, 1], np.array([2.0]))  # liked rows given as floats are read as rows
    assert floats.genres.share(np.array([5])).tolist() == [1.0] and floats.liked.tolist() == [[1.0, 1.0]]
    assert floats.tag_profile.tolist() == [2, 1, 0]


def test_a_kept_side_is_trusted_unless_other_tag_codes_numbered_it():
    featurize, candidates, user = _featurizer(), np.array([1, 2, 3]), np.array([1, 2], np.float32)
    other_side = featurize.side(np.array([2, 2]), np.array([3]))  # another history, the same codes
    got = featurize(user, VECTORS[candidates], candidates, np.array([0, 1]), 7.0, 1, NOW, np.array([0]), other_side)
    assert got[:, 9].tolist() == [0, 1, 0] and got[:, 10].tolist() == [-1, 1, 5]  # the kept side's genre and like
    kept_items = item_features(_table(), candidates, np.array([0, 1]), NOW, history_side(_table(), np.array([2, 2])))
    assert got[:, [3, 1, 2, 4, 5, 6, 7]].tolist() == kept_items.tolist()  # and its item side (language 2, creator 4)
    assert got[:, 4].tolist() == [0, 1, 0] and got[:, 5].tolist() == [0, 1, 0]
    stale = _featurizer().side(np.array([2, 2]), np.array([3]))  # numbered by other TagCodes: recomputed
    got = featurize(user, VECTORS[candidates], candidates, np.array([0, 1]), 7.0, 1, NOW, np.array([0]), stale)
    np.testing.assert_allclose(got, _expected(1, 1), rtol=0, atol=1e-7)
    plain = ScorerSide(other_side.items, 2, other_side.genres, other_side.tag_profile, None)  # no codes kept: trusted
    got = featurize(user, VECTORS[candidates], candidates, np.array([0, 1]), 7.0, 1, NOW, np.array([0]), plain)
    assert got[:, 9].tolist() == [0, 1, 0] and got[:, 10].tolist() == [0, 0, 0]


def test_tag_codes_lay_out_rows_as_count_then_codes():
    assert TagCodes(TAGS.get, 4).matrix(np.array([3])).tolist() == [[0]]  # no tags yet: a count and no codes
    asked = []
    codes = TagCodes(lambda row: asked.append(row) or TAGS[row], 4)
    assert codes.matrix(np.array([3, 1])).tolist() == [[0, -1], [1, 0]]
    # the width grows with the longest row decoded so far; rows decoded before keep their codes
    assert codes.matrix(np.array([0, 2, 3, 1])).tolist() == [[2, 0, 1], [2, 2, 0], [0, -1, -1], [1, 0, -1]]
    assert codes.vocab == {"rock": 0, "pop": 1, "jazz": 2} and asked == [1, 3, 0, 2]
    assert codes.matrix(np.array([1, 1])).tolist() == [[1, 0, -1], [1, 0, -1]] and asked == [1, 3, 0, 2]
    assert codes.matrix(np.zeros(0, np.int64)).shape == (0, 3)


def test_tag_codes_are_forgotten_past_their_bound(monkeypatch):
    monkeypatch.setattr(scorer_module, "TAG_ROWS_KEPT", 2)
    asked = []
    codes = TagCodes(lambda row: asked.append(row) or TAGS[row], 4)
    codes.matrix(np.array([0, 1]))
    assert asked == [0, 1]
    assert codes.matrix(np.array([1, 2])).tolist() == [[1, 0, -1], [2, 2, 0]]  # 3 rows > 2: start over
    assert asked == [0, 1, 1, 2]
    assert codes.matrix(np.array([0])).tolist() == [[2, 0, 1]] and asked == [0, 1, 1, 2, 0]  # 3 > 2 again
    codes.matrix(np.array([0]))
    assert asked == [0, 1, 1, 2, 0]  # kept
    codes.matrix(np.array([3]))  # 2 rows held + 1: exactly at the bound, kept
    assert asked == [0, 1, 1, 2, 0, 3] and codes.matrix(np.array([0, 3])).tolist() == [[2, 0, 1], [0, -1, -1]]
    assert asked == [0, 1, 1, 2, 0, 3]


SCORER = LinearScorer(("popularity", "phone x film", TASTE + " 0", TASTE + " 1"), [2.0, -1.0, 0.5, 0.25],
                      [1.0, 0.5, 0.0, 0.0], [0.5, 2.0, 1.0, 0.5], 0.25)


def test_scores_and_contributions_by_hand():
    feats = np.array([[2.0, 0.0, 1.0, 2.0], [1.0, 1.0, -2.0, 0.0]])
    # (2-1)*2/0.5 = 4, (0-0.5)*-1/2 = 0.25, 1*0.5 = 0.5, 2*0.25/0.5 = 1; (1-1)*4 = 0, (1-0.5)*-0.5, -2*0.5, 0
    expected = np.array([[4.0, 0.25, 0.5, 1.0, 0.25], [0.0, -0.25, -1.0, 0.0, 0.25]])
    np.testing.assert_allclose(SCORER.contributions(feats), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(SCORER.score(feats), [6.0, -1.0], rtol=0, atol=1e-12)
    assert SCORER.grouped(expected[0]) == {"popularity": 4.0, "phone x film": 0.25, TASTE: 1.5, "intercept": 0.25}
    assert SCORER.top_reasons(expected[0]) == [("popularity", 4.0), (TASTE, 1.5)]
    assert SCORER.top_reasons(expected[0], 3) == [("popularity", 4.0), (TASTE, 1.5), ("phone x film", 0.25)]
    assert SCORER.top_reasons(expected[0], 1) == [("popularity", 4.0)]
    assert SCORER.top_reasons(expected[1], 4) == []  # nothing above 0 (the intercept is not a reason)
    assert SCORER.top_reasons(np.array([0.0, 0.0, 0.0, 0.0, 5.0])) == []


def test_a_feature_equal_for_every_candidate_is_no_reason():
    """A user who liked nothing has 'like similarity' 0 on every candidate: below its mean, it read 'unlike what
    you liked (+0.31)' on each item (audit); it lifts all alike and explains no item's place."""
    candidates = np.array([[2.0, 0.0, 1.0, 2.0], [1.5, 0.0, -1.0, 0.0], [0.5, 0.0, 0.0, 1.0]])
    same = SCORER.same_for_all(candidates)
    assert same == frozenset({"phone x film"})  # the taste dimensions vary together: one group, kept
    terms = SCORER.contributions(candidates)[0]
    assert SCORER.top_reasons(terms, 3) == [("popularity", 4.0), (TASTE, 1.5), ("phone x film", 0.25)]
    assert SCORER.top_reasons(terms, 3, same) == [("popularity", 4.0), (TASTE, 1.5)]
    assert SCORER.words(candidates[0], terms, 3, same) == "popular (+4.00), matches your taste (+1.50)"
    assert SCORER.same_for_all(candidates[:1]) == frozenset()  # one candidate: nothing to compare with
    flat_taste = candidates.copy()
    flat_taste[:, 2:] = [1.0, 2.0]
    assert SCORER.same_for_all(flat_taste) == frozenset({"phone x film", TASTE})
    flat_taste[:, 2] = [0.0, 1.0, 2.0]  # one taste dimension moves: the group tells items apart
    assert SCORER.same_for_all(flat_taste) == frozenset({"phone x film"})
    assert SCORER.same_for_all(candidates[:2]) == frozenset({"phone x film"})  # two candidates compare


def test_reasons_in_words():
    feats = np.array([2.0, 0.0, 1.0, 2.0])
    assert SCORER.words(feats, np.array([4.0, 0.25, 0.5, 1.0, 0.25]), 3) == \
        "popular (+4.00), matches your taste (+1.50), fits better than phone x film (+0.25)"
    assert SCORER.words(np.array([0.5, 1.0, 0.0, 0.0]), np.array([0.005, 0.5, 0.0, 0.0, 0.0])) == \
        "suits phone / film (+0.50), niche (+0.01)"
    assert SCORER.words(feats, np.array([4.0, 0.25, 0.5, 1.0, 0.25])) == "popular (+4.00), matches your taste (+1.50)"
    assert SCORER.words(np.array([1.0, 0.5, 0, 0]), np.array([0.0, 0.0, 0.0, -1.0, 3.0])) == \
        "ranked by the interpretable scorer"  # a feature at its mean reads as below it; nothing positive


def test_the_arrays_round_trip():
    arrays = SCORER.arrays()
    assert arrays["intercept"].tolist() == [0.25] and arrays["intercept"].dtype == np.float64
    assert arrays["weights"].tolist() == [2.0, -1.0, 0.5, 0.25] and arrays["scale"].tolist() == [0.5, 2.0, 1.0, 0.5]
    again = LinearScorer.from_arrays(list(SCORER.names), {**arrays, "intercept": np.array([[0.75]])})
    assert again.names == SCORER.names and again.intercept == 0.75 and type(again.intercept) is float
    with pytest.raises(ValueError, match=r"^scorer intercept must be one value \(got shape \(1, 2\)\)$"):
        LinearScorer.from_arrays(list(SCORER.names), {**arrays, "intercept": np.array([[0.75, 9.0]])})  # 9 was ignored
    assert again.mean.tolist() == [1.0, 0.5, 0.0, 0.0]
    one = LinearScorer(("a",), np.array([[3]], np.int32), [1], [2])  # any shape of one value per feature
    assert one.weights.dtype == np.float64 and one.intercept == 0.0 and one.score(np.array([[5.0]])).tolist() == [6.0]


@pytest.mark.parametrize(("change", "message"), [
    ({"weights": [1.0]}, "scorer weights must hold 2 finite values (got 1)"),
    ({"mean": [1.0, 2.0, 3.0]}, "scorer mean must hold 2 finite values (got 3)"),
    ({"scale": [1.0, np.inf]}, "scorer scale must hold 2 finite values (got a NaN or infinite value)"),
    ({"mean": [np.nan, 0.0]}, "scorer mean must hold 2 finite values (got a NaN or infinite value)"),
    ({"scale": [1.0, 0.0]}, "scorer scales must be positive and its intercept finite"),
    ({"scale": [-1.0, 1.0]}, "scorer scales must be positive and its intercept finite"),
    ({"intercept": np.nan}, "scorer scales must be positive and its intercept finite"),
    ({"intercept": -np.inf}, "scorer scales must be positive and its intercept finite"),
])
def test_unusable_arrays_are_refused_whole(change, message):
    fields = {"names": ("a", "b"), "weights": [1.0, 1.0], "mean": [0.0, 0.0], "scale": [1.0, 1.0], "intercept": 0.0}
    with pytest.raises(ValueError) as caught:
        LinearScorer(**{**fields, **change})
    assert str(caught.value) == message


def test_arrays_whose_quotient_overflows_are_refused():
    """Finite, positive arrays can still overflow: weights / scale = inf made every score NaN, so the
    scorer ranked by nothing and no one was told (found by mutation testing, note 17)."""
    message = "scorer weights / scale and intercept - sum(mean * weights / scale) must be finite float64 values"
    with pytest.raises(ValueError) as caught:  # the quotient
        LinearScorer(("a", "b"), [1e6, 1.0], [0.0, 0.0], [1e-305, 1.0])
    assert str(caught.value) == message
    with pytest.raises(ValueError, match=r"^scorer means must be at most 1e\+09 in size \(found 1e\+303\)"):
        LinearScorer(("a", "b"), [1e6, 1e6], [1e303, -1e303], [1.0, 1.0])  # the folded intercept: the mean's bound
    edge = LinearScorer(("a",), [1e6], [1.0], [1.0], -1e6)  # the largest weight and intercept: kept
    assert edge.score(np.array([[1.0]])).tolist() == [-1e6]


@pytest.mark.parametrize("weights, intercept", [([1e300, 1.0], 0.0), ([1.0, -2e6], 0.0), ([1.0, 1.0], 1e300)])
def test_weights_no_linear_model_has_are_refused(weights, intercept):
    """1e300 weights were kept: the scores overflowed to 0.0 and a reason read "+42665640434179248822...". """
    with pytest.raises(ValueError, match=r"^scorer weights and intercept must be at most 1e\+06 in size"):
        LinearScorer(("a", "b"), weights, [0.0, 0.0], [1.0, 1.0], intercept)


def test_a_bundle_whose_scorer_overflows_is_refused_when_it_opens(tmp_path):
    import json
    import shutil
    from pathlib import Path

    from edgerec.errors import BundleError
    from edgerec.runtime import Recommender
    from edgerec.runtime.bundle import Manifest, embedding_space_id, sha256_file

    root = Path(shutil.copytree(Path(__file__).parents[1] / "spec" / "golden" / "ranked", tmp_path / "ranked"))
    data = json.loads((root / "manifest.json").read_text())
    scale = data["ranking"]["scorer"]["arrays"]["scale"]
    np.save(root / scale, np.full(len(data["ranking"]["scorer"]["features"]), 1e-310))  # positive, finite
    data["files"][scale].update(bytes=(root / scale).stat().st_size, sha256=sha256_file(root / scale))
    m = Manifest.from_dict(data)
    data["embedding_space"] = embedding_space_id(m.files, m.models, m.items)
    (root / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError) as caught:
        Recommender.open(root, history=str(tmp_path / "h.db"))
    assert str(caught.value) == ("the bundle's scorer arrays are unusable (scorer weights / scale and intercept - "
                                 "sum(mean * weights / scale) must be finite float64 values); re-export the bundle")


def test_a_film_has_modality_code_0_and_gets_its_cells():
    featurize, candidates = _featurizer(), np.array([0])
    got = featurize(np.array([1, 2], np.float32), VECTORS[candidates], candidates, np.zeros(0, np.int64), 13.0, 2,
                    NOW, np.zeros(0, np.int64))
    assert np.flatnonzero(got[0, 11:51]).tolist() == [10, 30]  # tablet x film, afternoon x film
    assert got[0, 0] == 1 and got[0, 51:].tolist() == [1, 0]


def test_the_list_reasons_leave_out_a_term_every_candidate_shares():
    """stages.scorer_reasons over a request: 'like similarity' 0 for every candidate (nothing liked) sits below
    its mean and, with a negative weight, added +0.50 to each item: it read 'unlike what you liked'."""
    from types import SimpleNamespace

    from edgerec.runtime.explain import Reason
    from edgerec.runtime.stages import scorer_reasons

    scorer = LinearScorer(("popularity", "like similarity"), [1.0, -1.0], [0.0, 0.5], [1.0, 1.0], 0.0)
    request = SimpleNamespace(scorer=scorer, scorer_features=np.array([[1.0, 0.0], [2.0, 0.0], [0.5, 0.0]]),
                              order=np.array([1, 0]))
    reasons = scorer_reasons(request, [{}, {}], [Reason("history", "because you watched A", "a")] * 2)
    assert [r.text for r in reasons] == ["popular (+2.00); because you watched A",
                                         "popular (+1.00); because you watched A"]
    request.scorer_features[0, 1] = 1.0  # one candidate is like something liked: the term tells items apart
    reasons = scorer_reasons(request, [{}, {}], [Reason("history", "because you watched A", "a")] * 2)
    assert reasons[0].text == "popular (+2.00), unlike what you liked (+0.50); because you watched A"


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p.pop("weights"), "has no 'weights'"),  # was: KeyError
    (lambda p: p["weights"].__setitem__(0, float("nan")), r"\(scorer weights must hold 2 finite values \(got a NaN"),
    (lambda p: p.update(mean=[0.0]), r"scorer mean must hold 2 finite values \(got 1\)"),
    (lambda p: p.update(features=7), "not a usable scorer"),  # was: TypeError
])
def test_a_damaged_scorer_file_is_a_model_error_naming_what_is_wrong(tmp_path, change, message):
    import json

    from edgerec.errors import ModelError
    from edgerec.models.scorer import SCORER_FILE, SCORER_VERSION, load_scorer

    payload = {"version": SCORER_VERSION, "features": ["a", "b"], "weights": [1.0, 1.0], "mean": [0.0, 0.0],
               "scale": [1.0, 1.0], "intercept": 0.0}
    change(payload)
    (tmp_path / "scorer").mkdir()
    (tmp_path / "scorer" / SCORER_FILE).write_text(json.dumps(payload))
    with pytest.raises(ModelError, match=message) as caught:
        load_scorer(tmp_path / "scorer")
    assert str(caught.value).endswith("train the scorer again with `edgerec scorer train`") or "train it again" in str(caught.value)
