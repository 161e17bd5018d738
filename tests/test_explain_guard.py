"""Guards of the reasons (runtime/explain.py): each kind of reason, its exact words, which history item
it names, and the order of precedence between them, on a hand-made catalog of five items."""

import numpy as np
import pytest

from edgerec.runtime.explain import VERBS, Explainer, Reason, matched_choices, matched_tags


class Catalog:
    """The parts of ItemCatalog the Explainer reads: vectors, two categorical columns and one numeric."""

    def __init__(self, vectors, series=None, episodes=None, modality=None, titles=None):
        self.table = np.asarray(vectors, np.float32)
        self.categorical, self.numeric, self.values = {}, {}, {}
        for name, values in (("series_id", series), ("modality", modality)):
            if values is not None:
                self.categorical[name], self.values[name] = None, np.array(values, dtype=object)
        if episodes is not None:
            self.numeric["episode"] = np.asarray(episodes, np.float64)
        self.titles = titles or [f"Title {i}" for i in range(len(self.table))]
        self.read = []

    def vectors(self, rows):
        return self.table[np.asarray(rows, np.int64)]

    def column(self, name, rows):
        self.read.append(name)
        return self.values[name][np.asarray(rows, np.int64)]

    def numeric_column(self, name, rows):
        return self.numeric[name][np.asarray(rows, np.int64)]

    def label(self, row):
        return f"i{row}", self.titles[row]


AXES = np.eye(5, dtype=np.float32)  # item i points along axis i: each item is closest to itself


def test_a_reason_as_a_dict_and_the_verbs_of_each_modality():
    assert Reason("tags", "matches", None, ["jazz"]).to_dict() == {"kind": "tags", "text": "matches",
                                                                  "item_id": None, "tags": ["jazz"]}
    assert Reason("popular", "popular right now").to_dict()["tags"] == []
    assert VERBS == {"film": "watched", "series_episode": "watched", "short_video": "watched",
                     "music_track": "listened to", "podcast_episode": "listened to"}


def test_matched_tags_follow_the_profile_counts_ties_in_the_items_order_at_most_three():
    profile = {"a": 1, "b": 5, "c": 5, "d": 2, "e": 9}
    assert matched_tags(["a", "b", "x", "c", "d"], profile) == ["b", "c", "d"]
    assert matched_tags(["c", "b"], profile, limit=1) == ["c"]
    assert matched_tags(["x"], profile) == [] and matched_tags([], profile) == []
    assert matched_tags(["a", "e", "b", "d"], profile, limit=4) == ["e", "b", "d", "a"]


def test_matched_choices_count_genre_tags_and_language_once_each_at_most_three():
    meta = {"genre": "jazz", "tags": ["live", "jazz", "piano", "vinyl"], "language": "fr"}
    assert matched_choices(meta, {"genre": ["jazz"]}) == ["jazz"]
    assert matched_choices(meta, {"tag": ["jazz"]}) == ["jazz"]  # the genre among chosen tags, named once
    assert matched_choices(meta, {"tag": ["piano", "live"]}) == ["live", "piano"]  # the item's order
    assert matched_choices(meta, {"language": ["fr", "en"]}) == ["fr"]
    assert matched_choices(meta, {"genre": ["jazz"], "tag": ["live", "piano"], "language": ["fr"]}) == [
        "jazz", "live", "piano"]
    assert matched_choices(meta, {"genre": ["jazz"], "tag": ["live"], "language": ["fr"]}, limit=5) == [
        "jazz", "live", "fr"]
    assert matched_choices(meta, {"genre": ["rock"], "language": ["en"]}) == []
    assert matched_choices({}, {"genre": ["rock"], "tag": ["x"], "language": ["en"]}) == []


def _metas(*rows, **extra):
    return [{"item_id": f"i{r}", **extra.get(f"m{r}", {})} for r in rows]


def test_history_reasons_name_the_closest_history_item_with_the_modalitys_verb():
    catalog = Catalog(AXES, modality=["film", "music_track", "podcast_episode", "game", ""])
    explainer = Explainer(catalog, [0, 1, 2, 3], [], {}, cold_start=False)
    reasons = explainer.explain_all(_metas(0, 1, 2, 3), AXES[[0, 1, 2, 3]])
    assert [r.text for r in reasons] == ['because you watched "Title 0"', 'because you listened to "Title 1"',
                                         'because you listened to "Title 2"', 'because you played "Title 3"']
    assert [(r.kind, r.item_id) for r in reasons] == [("history", "i0"), ("history", "i1"), ("history", "i2"),
                                                      ("history", "i3")]
    assert catalog.read == ["modality"]  # one column read for the whole list
    bare = Explainer(Catalog(AXES, titles=["", "B", "C", "D", "E"]), [0, 1], [], {}, cold_start=False)
    near = np.array([[0.9, 0.1, 0, 0, 0], [0.2, 0.3, 0, 0, 0]], np.float32)
    assert [r.text for r in bare.explain_all(_metas(3, 4), near)] == ['because you played "i0"',
                                                                      'because you played "B"']


def test_the_next_episode_of_the_highest_episode_watched_is_the_series_reason():
    series = ["s", "s", "s", "t", ""]
    episodes = [1, 3, 2, 7, 0]
    catalog = Catalog(AXES, series=series, episodes=episodes)
    explainer = Explainer(catalog, [0, 1, 2, 3, 4], [], {}, cold_start=False)
    # after 1, 3, 2 the next is 4 (row 1 holds episode 3); row 4 has no series and is ignored
    assert explainer.last_episode == {"s": (1, 3), "t": (3, 7)}
    metas = [{"series_id": "s", "episode": 4, "tags": ["x"]}, {"series_id": "s", "episode": 3},
             {"series_id": "t", "episode": 8}, {"series_id": "u", "episode": 1}, {"episode": 1}]
    reasons = explainer.explain_all(metas, AXES)
    assert (reasons[0].kind, reasons[0].text, reasons[0].item_id, reasons[0].tags) == (
        "series", 'next episode after "Title 1"', "i1", [])
    assert (reasons[2].kind, reasons[2].item_id) == ("series", "i3")
    assert [r.kind for r in reasons[1:2] + reasons[3:]] == ["history"] * 3
    ties = Explainer(Catalog(AXES, series=["s", "s", "", "", ""], episodes=[2, 2, 0, 0, 0]), [0, 1], [], {},
                     cold_start=False)
    assert ties.last_episode == {"s": (1, 2)}  # the same episode twice: the newer row
    pilot = Explainer(Catalog(AXES, series=["s", "XXXX", "", "", ""], episodes=[0, 5, 0, 0, 0]), [0, 1], [], {},
                      cold_start=False)
    assert pilot.last_episode == {"s": (0, 0), "XXXX": (1, 5)}  # an episode 0 (a pilot) counts
    reasons = pilot.explain_all([{"series_id": "s"}, {"series_id": "s", "episode": 1}, {"episode": 6},
                                 {"series_id": "", "episode": 6}], AXES[[2, 2, 2, 2]])
    # no episode number reads as 0, not as the pilot's next; an item of no series is never "next episode"
    assert [r.kind for r in reasons] == ["history", "series", "history", "history"]
    no_numbers = Explainer(Catalog(AXES, series=series), [0, 1], [], {}, cold_start=False)
    assert no_numbers.last_episode == {}


def test_more_like_a_liked_item_needs_a_similarity_above_0_6_and_comes_before_history():
    catalog = Catalog(AXES)
    explainer = Explainer(catalog, [0, 1], [2, 3], {"jazz": 2}, cold_start=False)
    vectors = np.array([[0, 0, 0.61, 0, 0], [0, 0, 0.6, 0, 0], [0, 0.5, 0, 0.7, 0]], np.float32)
    reasons = explainer.explain_all([{"tags": ["jazz"]}, {}, {}], vectors)
    assert (reasons[0].kind, reasons[0].text, reasons[0].item_id, reasons[0].tags) == (
        "feedback", 'more like "Title 2"', "i2", ["jazz"])
    assert (reasons[1].kind, reasons[1].item_id) == ("history", "i0")  # 0.6 is not above 0.6
    assert (reasons[2].kind, reasons[2].item_id) == ("feedback", "i3")


def test_without_history_the_reasons_are_tags_then_choices_then_popularity():
    catalog = Catalog(AXES)
    choices = {"language": ["fr"], "genre": ["jazz"]}
    for explainer in (Explainer(catalog, [], [], {"live": 1, "piano": 3}, cold_start=True, choices=choices),
                      Explainer(catalog, [0, 1], [], {"live": 1, "piano": 3}, cold_start=True, choices=choices)):
        reasons = explainer.explain_all([{"tags": ["live", "piano"]}, {"language": "fr", "tags": ["x"]},
                                         {"genre": "rock"}], AXES[:3])
        both = explainer.explain_all([{"language": "fr", "genre": "jazz"}], AXES[:1])[0]
        assert both.text == "matches your choices: jazz, fr"
        assert [r.to_dict() for r in reasons] == [
            {"kind": "tags", "text": "matches your interests: piano, live", "item_id": None,
             "tags": ["piano", "live"]},
            {"kind": "choice", "text": "matches your choices: fr", "item_id": None, "tags": []},
            {"kind": "popular", "text": "popular right now", "item_id": None, "tags": []}]
    assert Explainer(catalog, [], [], {}, cold_start=False).explain_all([{}], AXES[:1])[0].kind == "popular"
    assert Explainer(catalog, [0], [1], {}, cold_start=False).explain_all([], AXES[:0]) == []


@pytest.mark.parametrize("cold", [False, True])
def test_history_reasons_carry_the_matched_tags_and_cold_start_never_names_history(cold):
    explainer = Explainer(Catalog(AXES), [4], [], {"jazz": 1}, cold_start=cold)
    reason = explainer.explain_all([{"tags": ["jazz"]}], AXES[4:5])[0]
    if cold:
        assert (reason.kind, reason.item_id) == ("tags", None)
    else:
        assert (reason.kind, reason.item_id, reason.tags) == ("history", "i4", ["jazz"])
