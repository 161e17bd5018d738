"""Extractive summaries: the text's own sentences, closest to the whole first, less of the same, in order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgerec.runtime.summary import SUMMARY_CHARS, extractive_summary, sentences


def unit(*values):
    v = np.array(values, np.float64)
    return v / np.linalg.norm(v)


def test_sentences_split_after_their_marks_and_at_line_breaks_without_the_tag_list():
    text = ("A heist goes wrong. Who talked?  Nobody knows!\nThe end\u2026 Then more \u3002"
            "\u6b21\u3002 Tags: crime, heist.")
    assert sentences(text) == ["A heist goes wrong.", "Who talked?", "Nobody knows!", "The end\u2026",
                               "Then more \u3002", "\u6b21\u3002"]
    assert sentences("Dr. No, 3.5 stars") == ["Dr.", "No, 3.5 stars"]  # a plain rule: an abbreviation splits too
    assert sentences("  \n ") == [] and sentences("Heat Tags: a, b.") == ["Heat"]
    assert sentences("Tags: a, b.") == ["Tags: a, b."]  # only a tag list after other text is one (audit G2)
    assert sentences("one line without a mark") == ["one line without a mark"]


WHOLE = unit(1, 1, 0)
# closeness to WHOLE: A 0.970, B 0.960 (nearly A itself: likeness 0.999), C 0.949 (likeness to A 0.844), D 0
VECTORS = [unit(1, 0.6, 0), unit(1, 0.55, 0), unit(0.5, 1, 0), unit(0, 0, 1)]
PARTS = ["Aa.", "Bb.", "Cc.", "Dd."]


def test_the_closest_sentence_comes_first_and_a_repeat_loses_to_something_new():
    # room for two: A, then not its near-copy B (0.960 - 0.5 x 0.999) but C (0.949 - 0.5 x 0.844)
    assert extractive_summary(PARTS, VECTORS, WHOLE, max_chars=7) == "Aa. Cc."
    assert extractive_summary(PARTS, VECTORS, WHOLE, max_chars=14) == "Aa. Bb. Cc."  # then B (0.46) before D (0)
    assert extractive_summary(PARTS, VECTORS, WHOLE, max_chars=15) == "Aa. Bb. Cc. Dd."  # all, in the text's order
    assert extractive_summary(PARTS, VECTORS, unit(0, 0, 1), max_chars=3) == "Dd."
    assert extractive_summary(PARTS, VECTORS, WHOLE, max_chars=6) == "Aa."  # a second sentence needs 4 more


def test_without_the_redundancy_term_the_near_copy_would_win(monkeypatch):
    import edgerec.runtime.summary as summary

    monkeypatch.setattr(summary, "REDUNDANCY", 0.0)
    assert extractive_summary(PARTS, VECTORS, WHOLE, max_chars=7) == "Aa. Bb."


def test_a_first_sentence_longer_than_the_room_is_cut_at_a_word():
    long = "An unusually long opening sentence that goes on and on about its hero."
    assert extractive_summary([long], [unit(1, 0)], unit(1, 0), max_chars=30) == "An unusually long opening\u2026"
    assert extractive_summary(["Abcdefghijklmnopqrstuvwxyz."], [unit(1, 0)], unit(1, 0), max_chars=10) \
        == "Abcdefghi\u2026"  # no space to cut at: inside the word
    assert extractive_summary([], np.zeros((0, 2)), unit(1, 0)) == ""


def test_ties_go_to_the_earlier_sentence():
    parts = ["Xx.", "Yy.", "Zz."]
    same = [unit(1, 0), unit(0, 1), unit(0, 1)]
    assert extractive_summary(parts, same, unit(0, 1), max_chars=3) == "Yy."


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="abc xyz", min_size=1, max_size=80).map(lambda s: s.strip() + "."), min_size=1,
                max_size=8), st.integers(2, 300), st.integers(0, 2**32 - 1))
def test_a_summary_fits_its_room_and_is_made_of_the_texts_sentences(parts, room, seed):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(parts), 4))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    whole = unit(*rng.normal(size=4))
    out = extractive_summary(parts, vectors, whole, max_chars=room)
    assert 0 < len(out) <= room
    if out.endswith("\u2026"):  # the closest sentence, cut
        assert any(p.startswith(out[:-1].rstrip(" ,;:-")) for p in parts)
    else:
        assert in_order(out, parts)


def in_order(out: str, parts: list[str], start: int = 0) -> bool:
    """Whether `out` is some of `parts`, each once, in their order, joined by spaces."""
    return any(out.startswith(parts[j]) and (out == parts[j] or (out[len(parts[j]):].startswith(" ") and
               in_order(out[len(parts[j]) + 1:], parts, j + 1))) for j in range(start, len(parts)))


def test_the_default_room_is_about_two_sentences():
    assert 150 <= SUMMARY_CHARS <= 300


@pytest.mark.parametrize("text", ["", "   "])
def test_nothing_to_split_is_no_sentence(text):
    assert sentences(text) == []


def test_a_cut_drops_the_punctuation_it_ends_on_and_ties_later_on_go_to_the_earlier_sentence():
    one = [unit(1, 0)]
    assert extractive_summary(["Alpha, beta gamma delta."], one, unit(1, 0), max_chars=12) == "Alpha\u2026"
    assert extractive_summary(["FAX, bar tender here."], one, unit(1, 0), max_chars=10) == "FAX\u2026"
    assert extractive_summary(["-Dash; then more words."], one, unit(1, 0), max_chars=8) == "-Dash\u2026"
    # A first (closeness 0.707, the first of three equal), then B and C tie: B, the earlier
    tied = [unit(1, 0, 0), unit(0, 1, 0), unit(0, 1, 0)]
    assert extractive_summary(["Aa.", "Bb.", "Cc."], tied, unit(1, 1, 0), max_chars=7) == "Aa. Bb."


def test_a_huge_text_is_read_up_to_its_first_sentences():
    from edgerec.runtime.summary import MAX_SENTENCES

    text = " ".join(f"Sentence number {i}." for i in range(10_000))
    found = sentences(text)
    assert len(found) == MAX_SENTENCES and found[0] == "Sentence number 0." and found[-1] == \
        f"Sentence number {MAX_SENTENCES - 1}."
