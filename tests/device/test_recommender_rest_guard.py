"""Guards of the Recommender facade's functions note 22 left out (runtime/recommender.py): tag,
onboard's and remove_items' refusals, metadata_vector, warm_up, what __init__ wires together (the
engine of the encoder, the drift baseline, the catalog sync) and stats. The golden bundle has no
content encoder, so tag and the content path use the real ContentEncoder's projection and labels
code on a small hand-made table, with a text -> vector map standing in for the model."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from edgerec.errors import ConfigError, UnknownIdError
from edgerec.runtime import Recommender
from edgerec.runtime.content import ContentEncoder, metadata_text
from edgerec.runtime.drift import DriftBaseline, drift_report
from edgerec.runtime.new_items import related_vector

LABELS = ["jazz", "rock", "calm", "tense", "night", "rain"]


def fake_content(dim: int) -> ContentEncoder:
    """A content encoder whose model is a word count: label i's axis holds the count of its name."""
    content = object.__new__(ContentEncoder)
    content.label_names = list(LABELS)
    content.label_vectors = np.eye(len(LABELS), dtype=np.float32)
    content.label_sets = {"genre": ["jazz", "rock"], "mood": ["calm", "tense"]}
    content.projection = np.vstack([np.eye(len(LABELS), dim, dtype=np.float32),
                                    np.full((1, dim), 0.01, np.float32)])  # the last row is the bias
    content.seen = []

    def embed(texts):
        texts = list(texts)
        content.seen.append(texts)
        out = np.array([[t.count(name) + 0.001 * (i + 1) for i, name in enumerate(LABELS)] for t in texts],
                       np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    content.embed = embed
    content.reads_words = lambda text: any(ch.isalnum() for ch in text)
    return content


@pytest.fixture
def fresh(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as opened:
        yield opened


@pytest.fixture
def tagger(fresh):
    fresh.models._content = fake_content(fresh.manifest.dim)
    return fresh


# ------------------------------------------------------------------ tag


def test_tag_labels_a_text_with_the_best_of_each_set_and_the_top_k_tags(tagger):
    labels = tagger.tag("rock rock rock at night, night, calm")
    # the text for the labels, then its sentences for the summary (one here: the text is its own summary)
    assert tagger.content.seen == [["rock rock rock at night, night, calm"] * 2]
    assert labels["summary"] == "rock rock rock at night, night, calm"
    assert labels["genre"] == "rock" and labels["mood"] == "calm"
    assert [name for name, _ in labels["tags"]] == ["rock", "night", "calm", "rain", "tense"]  # k = 5
    vector = tagger.content.embed(["rock rock rock at night, night, calm"])[0]
    assert labels["tags"][0][1] == pytest.approx(float(vector[1]))
    assert [name for name, _ in tagger.tag("jazz jazz in the rain", k=1)["tags"]] == ["jazz"]
    assert len(tagger.tag("jazz", k=6)["tags"]) == 6 == len(tagger.tag("jazz", k=10_000)["tags"])


def test_tag_reads_an_items_title_description_and_tags(tagger):
    tagger.add_items([{"item_id": "new", "title": "Tense Night", "description": "jazz tense",
                       "tags": ["tense", "rain"], "vector": [1.0] + [0.0] * 7}])
    labels = tagger.tag(item_id="new")
    assert tagger.content.seen[-1] == ["Tense Night jazz tense Tags: tense, rain.", "jazz tense"]
    assert labels["summary"] == "jazz tense"  # an item's summary: its description, never its tags
    assert labels["genre"] == "jazz" and labels["mood"] == "tense"
    meta = tagger.catalog.meta(tagger.catalog.row("i07"))
    tagger.tag(item_id="i07")
    assert tagger.content.seen[-1][0] == metadata_text(meta) and meta["title"] in tagger.content.seen[-1][0]


def test_tag_refusals_word_for_word(tagger):
    for call, message in [
        (lambda: tagger.tag(), "tag() needs a text or an item_id"),
        (lambda: tagger.tag(" \n\t"),
         "there is no text to tag (empty, or an item without title, description or tags)"),
        (lambda: tagger.tag(42), "the text to tag must be a string (got int)"),
    ]:
        with pytest.raises(ConfigError) as caught:
            call()
        assert str(caught.value) == message
    with pytest.raises(UnknownIdError):
        tagger.tag(item_id="no-such-item")
    assert tagger.content.seen == []  # nothing was embedded


def test_tag_takes_a_text_of_up_to_a_million_characters(tagger):
    assert tagger.tag("rain " * 200_000)["tags"][0][0] == "rain"  # 1,000,000 characters
    with pytest.raises(ConfigError, match="the text to tag"):
        tagger.tag("rain " * 200_000 + "x")


@pytest.mark.parametrize(("k", "message"), [
    (0, "k must be a positive integer of at most 10000 (got 0)"),
    (-1, "k must be a positive integer of at most 10000 (got -1)"),
    ("3", "k must be an integer (got str '3')"),
    (2.0, "k must be an integer (got float 2.0)"),
    (True, "k must be an integer (got bool True)"),
])
def test_tag_checks_k(tagger, k, message):
    """Was: k=-1 gave every tag but the last (a slice), k=0 none, k='3' a TypeError from numpy."""
    with pytest.raises(ConfigError) as caught:
        tagger.tag("jazz", k=k)
    assert str(caught.value) == message


def test_tag_refuses_a_text_and_an_item_at_once(tagger):
    """Was: the text was tagged and the item id passed over without a word."""
    with pytest.raises(ConfigError) as caught:
        tagger.tag("jazz", item_id="i07")
    assert str(caught.value) == "tag() takes a text or an item_id, not both"


# ------------------------------------------------------------------ metadata_vector


def test_metadata_vector_blends_the_content_encoder_and_related_work(tagger):
    meta = {"title": "calm jazz", "creator": tagger.catalog.meta(3)["creator"], "genre": "jazz"}
    related, level = related_vector(tagger.catalog, meta)
    content = tagger.content.item_vectors(tagger.content.embed(["calm jazz"]))[0]
    vector, source = tagger.metadata_vector(meta)  # both by default
    assert source == f"content encoder + related items ({level})" and level == "creator"
    np.testing.assert_allclose(vector, 0.7 * related / np.linalg.norm(related) + 0.3 * content, rtol=1e-6)
    vector, source = tagger.metadata_vector(meta, use_related=False)
    assert source == "content encoder"
    np.testing.assert_allclose(vector, content, rtol=1e-6)
    vector, source = tagger.metadata_vector(meta, use_content=False)
    assert source == "related items (creator)"
    np.testing.assert_allclose(vector, related, rtol=1e-6)


def test_metadata_vector_without_content_and_without_related_work_is_refused(fresh):
    vector, source = fresh.metadata_vector({"title": "x", "genre": "jazz"})
    assert source == "related items (genre)"
    with pytest.raises(ConfigError, match=r"^item 'x': give a 'vector'"):
        fresh.metadata_vector({"title": "x", "genre": "jazz"}, use_related=False)
    with pytest.raises(ConfigError, match=r"^item 'x': give a 'vector'"):
        fresh.metadata_vector({"title": "x", "genre": "jazz"}, use_content=False, use_related=False)


# ------------------------------------------------------------------ onboard and remove_items


@pytest.mark.parametrize(("choices", "message"), [
    ({"user": 5}, "user must be a string (got int)"),
    ({"genres": None}, "genres must be a list of strings (got NoneType None)"),
    ({"tags": None}, "tags must be a list of strings (got NoneType None)"),
    ({"languages": None}, "languages must be a list of strings (got NoneType None)"),
    ({"items": None}, "items must be a list of strings (got NoneType None)"),
    ({"genres": ["jazz", 5]}, "each of genres must be a string (got int)"),
    ({"tags": [5]}, "each of tags must be a string (got int)"),
    ({"languages": [5]}, "each of languages must be a string (got int)"),
    ({"items": [5]}, "each of items must be a string (got int)"),
    ({"genres": ["polka"]}, "unknown genres ['polka']; this catalog's genres: cooking, gaming, hip-hop, jazz, latin, "
                            "rock, romance, technology, thriller, travel"),
    ({"languages": ["xx"]}, "unknown languages ['xx']; this catalog's languages: en, hi, ja, ko"),
])
def test_onboarding_refusals_name_the_argument(fresh, choices, message):
    user = choices.pop("user", "new")
    with pytest.raises(ConfigError) as caught:
        fresh.onboard(user, **choices)
    assert str(caught.value) == message
    assert fresh.history.preferences("new") == {} and fresh.history.count() == 0


def test_onboarding_sees_items_another_recommender_added(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as one, \
            Recommender.open(golden_bundle, history=tmp_path / "h.db") as two:
        one.add_items([{"item_id": "a1", "genre": "jazz", "vector": [1.0] + [0.0] * 7}])
        two.onboard("new", items=["a1"])
        assert [(e.item, e.event) for e in two.history.events("new")] == [("a1", "more_like_this")]


@pytest.mark.parametrize(("ids", "message"), [
    (None, "item_ids must be a list of strings (got NoneType None)"),
    ("i01", "item_ids must be a list of strings, e.g. ['i01'], not a single string (got 'i01')"),
    ([5], "each of item_ids must be a string (got int)"),
])
def test_remove_items_refusals_name_the_argument(fresh, ids, message):
    with pytest.raises(ConfigError) as caught:
        fresh.remove_items(ids)
    assert str(caught.value) == message


# ------------------------------------------------------------------ what __init__ wires together


def test_the_encoder_runs_on_the_engine_asked_for(golden_bundle):
    for engine, kind in (("tflite", "TfliteBackend"), ("onnx", "OnnxBackend")):
        with Recommender.open(golden_bundle, backend=engine) as rec:
            assert rec.encoder.entry.format == engine and type(rec.encoder.backend).__name__ == kind


def test_stats_judge_drift_against_the_bundles_baseline(fresh):
    for item in ("i03", "i04", "i05"):
        fresh.record("ann", item, "finish")
    fresh.recommend("ann")
    drift = fresh.stats()["drift"]
    baseline = DriftBaseline.from_manifest(fresh.manifest)
    assert baseline is not None and drift == drift_report(fresh.monitor.score_window(), baseline)
    assert drift["available"] is True and drift["baseline"]["k"] == 10 and drift["window"] == 1


def test_each_recommender_sees_what_another_one_on_the_history_added_and_removed(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as one, \
            Recommender.open(golden_bundle, history=tmp_path / "h.db") as two:
        one.add_items([{"item_id": "a1", "genre": "jazz", "vector": [0.0, 1.0] + [0.0] * 6}])
        two.record("ann", "a1")  # refused as unknown unless the other's save was applied
        np.testing.assert_allclose(two.catalog.vectors([two.catalog.row("a1")])[0], [0, 1, 0, 0, 0, 0, 0, 0])
        one.remove_items(["i02"])
        with pytest.raises(UnknownIdError):
            two.record("ann", "i02")


def test_stats_count_what_another_recommender_on_the_history_changed(golden_bundle, tmp_path):
    """Was: stats() read the catalog without looking for other connections' saves, so its item counts
    stayed as they were until some other call of this recommender applied them."""
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as one, \
            Recommender.open(golden_bundle, history=tmp_path / "h.db") as two:
        one.add_items([{"item_id": "a1", "genre": "jazz", "vector": [0.0, 1.0] + [0.0] * 6}])
        one.remove_items(["i02"])
        stats = two.stats()
        assert (stats["items"], stats["added_items"], stats["removed_items"]) == (56, 1, 1)


# ------------------------------------------------------------------ warm_up


def test_warm_up_creates_the_sessions_and_the_index_before_any_request(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as rec:
        assert rec.stats()["kernel"] is None  # nothing scanned yet
        rec.warm_up()
        assert rec.stats()["kernel"] == rec.scan.label and rec.stats()["kernel"]
        assert rec.models._encoder is not None and rec.models._ranker is False  # the bundle has no ranker
        assert rec.models.ann is None and not list(tmp_path.glob("*.usearch"))
    if importlib.util.find_spec("usearch") is None:  # not importorskip: the runtime imports it in the safe order
        pytest.skip("the index is the optional extra edgerec[ann]")
    with Recommender.open(golden_bundle.parent / "ranked", history=tmp_path / "h.db", ann="usearch") as rec:
        rec.warm_up()
        assert rec.ranker and rec.models._ranker is rec.ranker
        assert rec.models.ann is not None and len(list(tmp_path.glob("ann-*.usearch"))) == 1


def test_a_drift_minimum_past_the_window_is_no_usable_baseline():
    """drift_min_window 1000 over the 500-request window: drift was never evaluated, yet reported available."""
    from types import SimpleNamespace

    from edgerec.runtime.drift import WINDOW

    def manifest(minimum):
        return SimpleNamespace(metrics={"monitoring": {"score_baseline": {
            "k": 10, "users": 200, "top1": {"mean": 0.5, "std": 0.1}, "topk": {"mean": 0.4, "std": 0.1}},
            "drift_min_window": minimum}})

    assert DriftBaseline.from_manifest(manifest(WINDOW)) is not None
    assert DriftBaseline.from_manifest(manifest(WINDOW + 1)) is None
    assert drift_report([(5.0, 5.0)] * WINDOW, DriftBaseline.from_manifest(manifest(WINDOW + 1)))["available"] is False


def test_drift_reads_the_raw_user_vector_not_the_engagement_pulled_query(golden_bundle, tmp_path):
    """The rank stage measured drift on the query engagement had pulled towards finished items, so the figure
    changed with Policy(engagement=...) and missed a drift the raw vectors showed."""
    from edgerec.runtime import Policy

    figures = []
    for engagement in (0.0, 0.9):
        with Recommender.open(golden_bundle, history=tmp_path / f"h{engagement}.db") as rec:
            for u in range(3):
                for i in range(6):
                    rec.record(f"u{u}", rec.catalog.item_id(5 * u + i), "finish")
                rec.recommend(f"u{u}", k=5, policy=Policy(engagement=engagement))
            figures.append(rec.monitor.score_window())
    assert figures[0] and figures[0] == figures[1]
