"""Short extractive summaries: the sentences of a text that stand for the whole of it.

The bundle's content encoder is a sentence encoder, not a text generator, so a summary is made of
the text's own sentences (nothing is invented): the one closest to the whole text's vector first,
then, while the summary has room, the next closest that says something the chosen ones do not
(maximal marginal relevance), shown in the text's order. A first sentence longer than the room is
cut at a word, with an ellipsis.
"""

from __future__ import annotations

import re

import numpy as np

SUMMARY_CHARS = 200  # about two sentences: what fits under a title on a TV card
REDUNDANCY = 0.5  # weight of a sentence's likeness to those already chosen (0: closeness to the whole only)
MAX_SENTENCES = 64  # read at most: each is one encoder run, and a summary of 200 characters needs few
# the tag list metadata_text appends after a title or description ("... Tags: a, b."): labels, not prose.
# Only that trailing part: a sentence of prose that starts with "Tags: " was dropped from the summary.
_TAG_LIST = re.compile(r"(?<=\s)Tags: (?:(?!\sTags: )[^\n])*\.\s*$")  # the last one, to the text's end
# after . ! ? and an ellipsis when a space follows; after the CJK marks (no space between sentences there)
# (a line break alone: the pieces are stripped anyway, and "\s*\n\s*" took quadratic time on long blank runs)
_BOUNDARY = re.compile(r"(?<=[.!?\u2026])\s+|(?<=[\u3002\uff01\uff1f])\s*|\n")


def sentences(text: str) -> list[str]:
    """The text's first MAX_SENTENCES sentences (split after . ! ? and their CJK forms, and at line breaks),
    without its tag list; empty pieces dropped."""
    found = (part.strip() for part in _BOUNDARY.split(_TAG_LIST.sub("", text, count=1)))
    return [part for part in found if part][:MAX_SENTENCES]


def extractive_summary(parts: list[str], vectors: np.ndarray, whole: np.ndarray,
                       max_chars: int = SUMMARY_CHARS) -> str:
    """At most `max_chars` characters of `parts` (sentences, with their unit `vectors`) that stand
    for `whole` (the text's unit vector); "" when there are no sentences."""
    if not parts:
        return ""
    vectors = np.asarray(vectors, np.float64).reshape(len(parts), -1)
    closeness = vectors @ np.asarray(whole, np.float64)
    first = int(np.argmax(closeness))
    if len(parts[first]) > max_chars:
        return _cut(parts[first], max_chars)
    chosen, used = [first], len(parts[first])
    while True:
        likeness = (vectors @ vectors[chosen].T).max(1)
        score = closeness - REDUNDANCY * likeness
        fits = [i for i in range(len(parts)) if i not in chosen and used + 1 + len(parts[i]) <= max_chars]
        if not fits:
            break
        best = max(fits, key=lambda i: (score[i], -i))  # ties: the earlier sentence
        chosen.append(best)
        used += 1 + len(parts[best])
    return " ".join(parts[i] for i in sorted(chosen))


def _cut(sentence: str, max_chars: int) -> str:
    """The sentence cut to `max_chars` characters at a word boundary (inside a word when it has none),
    with an ellipsis."""
    head = sentence[:max_chars - 1]
    at_word = head.rsplit(None, 1)[0] if " " in head.strip() else head
    return at_word.rstrip(" ,;:-") + "\u2026"


__all__ = ["SUMMARY_CHARS", "extractive_summary", "sentences"]
