"""Vectors of items added with metadata only (runtime/new_items.py), by hand on a small catalog:
which related items decide at each level, the popularity cut, the tag cut, the blend's weights."""

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime.new_items import RELATED_WEIGHT, metadata_vector, related_vector


class Tags:
    """The tag column's two questions new_items asks: which rows carry one of some tags, and rows' tags."""

    def __init__(self, texts):
        self.rows = [tuple(t for t in text.split("|") if t) for text in texts]

    def rows_with(self, tags):
        return np.array([bool(set(row) & set(tags)) for row in self.rows])

    def tags_many(self, rows):
        return [self.rows[r] for r in rows]


class Catalog:
    """What new_items reads of an ItemCatalog: base rows, categorical columns, tags, popularity, vectors."""

    def __init__(self, vectors, popularity, tags, **columns):
        self.base_count = len(vectors)
        self._vectors = np.asarray(vectors, np.float32)
        self.numeric = {"popularity": np.asarray(popularity, np.float32)}
        self.tag_column = Tags(tags)
        self.categorical = {}
        for name in ("series_id", "creator", "genre"):
            values = columns.get(name, [""] * self.base_count)
            vocab = sorted({v for v in values if v})
            self.categorical[name] = (np.array([vocab.index(v) if v else len(vocab) for v in values]), vocab)

    def vectors(self, rows):
        return self._vectors[np.asarray(rows)]


class Content:
    """A content encoder that records the text it read and places it at a fixed vector."""

    def __init__(self, vector):
        self.vector, self.texts = np.asarray(vector, np.float32), []

    def embed(self, texts):
        self.texts += texts
        return np.ones((len(texts), 3))

    def item_vectors(self, embedded):
        return np.stack([self.vector for _ in embedded])

    def reads_words(self, text):  # every text reads a word here: these tests are about the blend
        return True


def small():
    vectors = np.eye(6, 4, dtype=np.float32) * np.array([[1], [2], [3], [4], [5], [6]], np.float32)
    return Catalog(vectors, popularity=[5, 1, 9, 2, 7, 3], tags=["a|b", "b", "c", "a", "", "c|a"],
                   series_id=["s1", "s1", "", "", "s2", ""], creator=["ann", "bob", "bob", "", "ann", "cid"],
                   genre=["jazz", "jazz", "rock", "jazz", "rock", "rock"])


@pytest.mark.parametrize("meta, rows, level", [
    ({"series_id": "s1", "creator": "bob", "genre": "rock"}, [0, 1], "series"),
    ({"series_id": "s9", "creator": "bob", "genre": "rock"}, [1, 2], "creator"),  # an unknown series: next level
    ({"series_id": "", "creator": "cid"}, [5], "creator"),
    ({"creator": None, "genre": "jazz"}, [0, 1, 3], "genre"),
    ({"genre": "jazz", "tags": ["a"]}, [0, 3], "genre"),  # genre and tags: the rows sharing the most tags
    ({"genre": "jazz", "tags": ["a", "b"]}, [0], "genre"),
    ({"genre": "rock", "tags": ["zz"]}, [2, 4, 5], "genre"),  # no row shares a tag: the genre alone
    ({"genre": "rock", "tags": []}, [2, 4, 5], "genre"),
])
def test_related_items_by_level(meta, rows, level):
    cat = small()
    vector, got = related_vector(cat, meta)
    assert got == level
    assert np.array_equal(vector, cat.vectors(rows).mean(0))


def test_nothing_related():
    cat = small()
    assert related_vector(cat, {"genre": "pop", "creator": "zed"}) == (None, "")
    assert related_vector(cat, {}) == (None, "")
    # a value of the vocabulary that no base row holds any more (added rows are not base rows)
    cat.categorical["genre"] = (np.array([2, 2, 2, 2, 2, 2]), ["jazz", "rock"])
    assert related_vector(cat, {"genre": "jazz"}) == (None, "")


def test_the_200_most_popular_decide_ties_by_row_order():
    n = 260
    vectors = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    popularity = np.where(np.arange(n) < 250, 1.0, 2.0)  # the last ten first, then rows 0..189
    cat = Catalog(vectors, popularity, ["x"] * n, genre=["jazz"] * n)
    vector, level = related_vector(cat, {"genre": "jazz"})
    assert level == "genre"
    assert np.array_equal(vector, vectors[list(range(250, 260)) + list(range(190))].mean(0))


def test_tags_are_compared_on_every_row_of_a_genre():
    """Spec §7 has no cap: the rows sharing most tags count wherever they lie (only the first 5,000 did)."""
    n = 5003
    vectors = np.zeros((n, 2), np.float32)
    vectors[:, 0] = np.arange(n)
    tags = ["x"] * n
    tags[10], tags[5000], tags[5001] = "hit", "hit", "hit|x"
    cat = Catalog(vectors, np.ones(n), tags, genre=["jazz"] * n)
    vector, _ = related_vector(cat, {"genre": "jazz", "tags": ["hit"]})
    assert vector.tolist() == [float(np.mean([10, 5000, 5001])), 0.0]  # all three share the tag
    vector, _ = related_vector(cat, {"genre": "jazz", "tags": ["hit", "x"]})
    assert vector.tolist() == [5001.0, 0.0]  # the only row with both, past the old cut
    tags[5001] = "x"
    vector, _ = related_vector(Catalog(vectors, np.ones(n), tags, genre=["jazz"] * n), {"genre": "jazz", "tags": ["hit", "x"]})
    assert vector.tolist() == [float(np.arange(200).mean()), 0.0]  # every row shares one tag: popularity decides


def test_the_blend_of_related_work_and_content():
    cat, content = small(), Content([0.0, 0.0, 0.0, 2.0])
    meta = {"title": "New one", "description": "d", "tags": ["a"], "series_id": "s1"}
    vector, source = metadata_vector(cat, content, meta)
    related = cat.vectors([0, 1]).mean(0)
    assert source == "content encoder + related items (series)"
    assert np.allclose(vector, RELATED_WEIGHT * related / np.linalg.norm(related) + (1 - RELATED_WEIGHT) * content.vector)
    assert np.allclose(vector, [0.7 * 0.5 / np.sqrt(1.25), 0.7 * 1 / np.sqrt(1.25), 0, 0.6], atol=1e-6)
    assert content.texts == ["New one d Tags: a."]
    vector, source = metadata_vector(cat, content, {"creator": "bob"})
    assert source == "content encoder + related items (creator)"
    assert np.allclose(vector, [0, 0.7 * 2 / np.sqrt(13), 0.7 * 3 / np.sqrt(13), 0.6], atol=1e-6)


def test_each_source_alone():
    cat, content = small(), Content([0.0, 0.0, 0.0, 2.0])
    vector, source = metadata_vector(cat, content, {"genre": "jazz"})  # a genre is too weak to blend in
    assert source == "content encoder" and vector.tolist() == [0, 0, 0, 2.0]
    vector, source = metadata_vector(cat, None, {"series_id": "s1"})
    assert source == "related items (series)" and vector.tolist() == [0.5, 1.0, 0, 0]
    vector, source = metadata_vector(cat, None, {"genre": "jazz"})
    assert source == "related items (genre)" and np.allclose(vector, [1 / 3, 2 / 3, 0, 4 / 3])
    vector, source = metadata_vector(cat, content, {"series_id": "s1"}, use_content=False)
    assert source == "related items (series)" and vector.tolist() == [0.5, 1.0, 0, 0]
    vector, source = metadata_vector(cat, content, {"series_id": "s1"}, use_related=False)
    assert source == "content encoder" and vector.tolist() == [0, 0, 0, 2.0]
    assert len(content.texts) == 2  # use_content=False never asked the encoder


def test_a_zero_related_vector_blends_without_dividing_by_zero():
    cat = Catalog(np.zeros((2, 2)), [1, 2], ["", ""], series_id=["s", "s"])
    vector, _ = metadata_vector(cat, Content([1.0, 1.0]), {"series_id": "s"})
    assert vector.tolist() == pytest.approx([0.3, 0.3])


def test_an_item_nothing_places_is_refused_by_title():
    with pytest.raises(ConfigError) as refused:
        metadata_vector(small(), None, {"title": "Lost", "genre": "pop"})
    assert str(refused.value) == ("item 'Lost': give a 'vector', or metadata the catalog knows (a known creator, "
                                  "series or genre) so a vector can be derived")
    with pytest.raises(ConfigError, match=r"^item 'A long title \(x{42}\.\.\.: give"):  # cut at 60 characters
        metadata_vector(small(), None, {"title": "A long title (" + "x" * 900 + ")", "genre": "pop"})
    with pytest.raises(ConfigError, match="^item None: give"):
        metadata_vector(small(), Content([1.0]), {"series_id": "s1"}, use_content=False, use_related=False)


def test_a_short_related_vector_is_scaled_up_to_unit_length_before_the_blend():
    cat = Catalog([[0.3, 0.4], [0.3, 0.4]], [1, 2], ["", ""], creator=["ann", "ann"])
    vector, _ = metadata_vector(cat, Content([0.0, 0.0]), {"creator": "ann"})
    assert vector.tolist() == pytest.approx([0.7 * 0.6, 0.7 * 0.8])


def test_an_untitled_item_gets_the_same_vector_from_metadata_vector_as_from_add_items():
    """Was: metadata_vector() embedded the empty text, add_items() the id (spec §7b: the id is the title)."""
    import pathlib

    pytest.importorskip("tokenizers")
    from edgerec.runtime.recommender import Recommender

    text = pathlib.Path(__file__).resolve().parents[2] / "spec" / "golden" / "text"
    with Recommender.open(text, backend="onnx") as rec:
        meta = {"item_id": "m0", "genre": "golden-new", "description": "A late show."}
        given, source = rec.metadata_vector(meta)
        rec.add_items([meta])
        stored = rec.catalog.vectors(np.array([rec.catalog.row("m0")]))[0]
        untitled = rec.metadata_vector({"genre": "golden-new", "description": "A late show."})[0]
    assert source == "content encoder" and np.allclose(given / np.linalg.norm(given), stored, atol=1e-6)
    assert not np.allclose(untitled / np.linalg.norm(untitled), stored, atol=1e-3)  # without an id: its text alone
