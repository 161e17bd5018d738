"""Host-side fixes of audit G2: trending measures ages from a robust "now", and a content bundle ships
only label sets of two names or more, without names that read no word, saying what it left out."""

from __future__ import annotations

import logging
import types
from dataclasses import replace

import numpy as np
import pytest

from edgerec.data.schema import Dataset
from edgerec.data.split import leave_last_out
from edgerec.errors import DataError
from edgerec.models.baselines import DAY, Popular

YEAR_2100 = 4_102_444_800


@pytest.fixture(scope="module")
def split(small_dataset):
    return leave_last_out(small_dataset)


def test_trending_survives_a_few_events_dated_decades_ahead(small_dataset, split, caplog):
    """Ages were measured from the latest event: 4 plays dated 2100 made every real play 75 years old
    (weight 0) and trending ranked the catalog by those 4 items alone, silently."""
    clean = Popular(split, small_dataset, half_life_days=14.0)
    log = small_dataset.interactions
    training = np.flatnonzero(split.train_events & log.consumed_mask())
    misdated = training[[0, len(training) // 3, len(training) // 2, -1]]
    times = log.timestamp.copy()
    times[misdated] = YEAR_2100 + np.arange(4)
    slipped = Dataset(small_dataset.catalog, replace(log, timestamp=times), small_dataset.user_ids)
    with caplog.at_level(logging.WARNING, logger="edgerec.models"):
        trending = Popular(split, slipped, half_life_days=14.0)
    assert trending.late_events == 4 and clean.late_events == 0
    assert "trending: 4 training event(s) are dated far after the rest of the log" in caplog.text
    top_clean, top = np.argsort(-clean.scores, kind="stable")[:10], np.argsort(-trending.scores, kind="stable")[:10]
    assert len(set(top_clean) & set(top)) >= 8
    # the misdated events count as the newest (weight 1), every other weight is as in the clean log
    extra = np.bincount(log.item[misdated], minlength=split.n_items)
    reference = log.timestamp[training].max()
    was = np.bincount(log.item[misdated], np.power(0.5, (reference - log.timestamp[misdated]) / (14 * DAY)),
                      minlength=split.n_items)
    np.testing.assert_allclose(trending.scores, clean.scores - was + extra, rtol=1e-5, atol=1e-6)


def test_a_clean_log_keeps_its_latest_event_as_now_and_warns_nothing(small_dataset, split, caplog):
    with caplog.at_level(logging.WARNING, logger="edgerec.models"):
        trending = Popular(split, small_dataset, half_life_days=14.0)
    log = small_dataset.interactions
    mask = split.train_events & log.consumed_mask()
    t = log.timestamp[mask]
    expected = np.bincount(log.item[mask], np.power(0.5, (t.max() - t) / (14 * DAY)), minlength=split.n_items)
    np.testing.assert_allclose(trending.scores, expected, rtol=1e-6)
    assert trending.late_events == 0 and not caplog.records


def _catalog(genres, moods, tags):
    return types.SimpleNamespace(text={"genre": genres, "mood": moods}, tags=tags)


def test_content_labels_need_a_set_of_two_values_before_any_work():
    from edgerec.export.bundle_builder import content_labels

    with pytest.raises(DataError, match="needs labels to tag with: a genre, mood or tag that takes at least two"):
        content_labels(_catalog(["jazz", "jazz"], ["calm", "calm"], [["live"], ["live"]]))
    sets = content_labels(_catalog(["jazz", "rock"], ["calm", "calm"], [["live"], []]))
    assert sets == {"genre": ["jazz", "rock"], "mood": ["calm"], "tag": ["live"]}  # usable_labels drops the rest


@pytest.fixture
def word_tokenizer():
    """A word-level tokenizer with [CLS] ... [SEP] and [UNK]: an emoji alone reads no word."""
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "jazz", "rock", "calm", "tense",
                                         "live", "heist"])}
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer.post_processor = tokenizers.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return tokenizer


def test_sets_of_one_name_and_names_without_a_word_are_left_out_and_said(word_tokenizer):
    """Every item "calm": every text's mood was "calm". An emoji-only tag was returned as a tag of
    unrelated texts (its vector is the encoder's [CLS] [UNK] [SEP] output)."""
    from edgerec.export.content import usable_labels

    sets, notes = usable_labels(word_tokenizer, {"genre": ["jazz", "rock"], "mood": ["calm"],
                                                 "tag": ["live", "\U0001f525\U0001f525", "heist"],
                                                 "era": ["tense", "\u2728"]})
    assert sets == {"genre": ["jazz", "rock"], "tag": ["live", "heist"]}
    assert notes == [
        "left out 2 label name(s) that read no word to the tokenizer (symbols or emoji alone): '\u2728', "
        "'\U0001f525\U0001f525'",
        "left out the mood labels: the catalog has only 'calm', and a set of fewer than two would give every "
        "text the same mood",
        "left out the era labels: the catalog has only 'tense', and a set of fewer than two would give every "
        "text the same era"]
    with pytest.raises(DataError, match="no label set has two names that read as words"):
        usable_labels(word_tokenizer, {"mood": ["calm"], "tag": ["\U0001f525"]})


def test_the_export_prints_what_it_left_out_and_ships_the_rest(word_tokenizer, monkeypatch):
    import edgerec.compress.content_distill as distill
    import edgerec.export.content as export_content
    import edgerec.models.content as model_content
    from edgerec.export import bundle_builder

    shipped = {}
    monkeypatch.setattr(distill, "load_student", lambda folder: (None, None))
    monkeypatch.setattr(model_content, "load_tokenizer", lambda folder, length: word_tokenizer)
    monkeypatch.setattr(model_content, "item_texts", lambda catalog: [])
    monkeypatch.setattr(bundle_builder, "train_popularity", lambda split: np.ones(3))
    monkeypatch.setattr(export_content, "add_content_to_bundle",
                        lambda *args: shipped.update(sets=args[7]))
    said = []
    catalog = _catalog(["jazz", "rock", "jazz"], ["calm"] * 3, [["live", "\U0001f525"], ["heist"], []])
    bundle_builder._add_content(None, "student", types.SimpleNamespace(catalog=catalog), None, np.zeros((3, 2)),
                                bundle_builder.ExportConfig(formats=("onnx",)), said.append)
    assert shipped["sets"] == {"genre": ["jazz", "rock"], "tag": ["live", "heist"]}
    assert len(said) == 2 and said[0].startswith("left out 1 label name(s) that read no word")
    assert said[1].startswith("left out the mood labels: the catalog has only 'calm'")
