"""Cross-lingual retrieval: does a Spanish film description find its English original?

Films of the synthetic world's vocabulary (genre, mood, two themes; distinct combinations, many
sharing a genre or mood, so near misses exist) are written in English and Spanish
(data/translations.py). Each Spanish text ranks every English one by cosine in an encoder's space;
top-1 accuracy, recall@5 and MRR say how often the translation comes first. Encoders: hashed words
(the default shared-space anchor: English and Spanish share almost no words) and the packaged
multilingual encoder (`use-multilingual`), the packaged English teacher (`all-minilm-l6-v2`) for
contrast, and any sentence-encoder folders given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgerec.data import vocab
from edgerec.data.translations import FILM_GENRES, film_description
from edgerec.errors import ConfigError
from edgerec.studies.base import Progress, Study, Table


def film_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """n distinct films as (English texts, Spanish texts), row i the same film."""
    rng = np.random.default_rng(seed)
    seen, english, spanish = set(), [], []
    for _ in range(50 * n):
        genre = FILM_GENRES[rng.integers(len(FILM_GENRES))]
        mood = vocab.GENRE_MOODS[genre][rng.integers(len(vocab.GENRE_MOODS[genre]))]
        t1, t2 = rng.choice(vocab.GENRE_THEMES[genre], 2, replace=False)
        if (genre, mood, t1, t2) in seen:
            continue
        seen.add((genre, mood, t1, t2))
        english.append(film_description(genre, mood, t1, t2, "en"))
        spanish.append(film_description(genre, mood, t1, t2, "es"))
        if len(english) == n:
            return english, spanish
    raise ConfigError(f"the vocabulary has fewer than {n} distinct films; lower --films")


RECALL_AT = 5  # the cut-off of the recall the study reports


def retrieval(queries: np.ndarray, documents: np.ndarray) -> dict:
    """Query i's relevant document is document i: top-1, recall@5 and MRR over all documents."""
    scores = queries @ documents.T
    true = scores[np.arange(len(scores)), np.arange(len(scores))]
    rank = (scores > true[:, None]).sum(1)  # ties count for the query
    return {"top1": round(float(np.mean(rank == 0)), 4), "recall@5": round(float(np.mean(rank < RECALL_AT)), 4),
            "MRR": round(float(np.mean(1.0 / (rank + 1))), 4),
            "pair_cosine": round(float(true.mean()), 4), "other_cosine": round(float(scores.mean()), 4)}


def encoder_for(name: str):
    """A text -> vectors function for 'hashed-words', 'use-multilingual', 'all-minilm-l6-v2' (the packaged
    English teacher) or a sentence-encoder folder."""
    from edgerec.models.multilingual import PACKAGED, MultilingualTeacher
    from edgerec.models.transfer import hashed_text_vectors

    if name == "hashed-words":
        return hashed_text_vectors
    if name == PACKAGED:
        return MultilingualTeacher().encode
    from edgerec.models.content import ContentTeacher

    return ContentTeacher(None if name == ENGLISH else Path(name)).encode


ENGLISH = "all-minilm-l6-v2"  # the packaged English teacher, for contrast


@dataclass
class CrossLingualStudy(Study):
    """Spanish -> English retrieval of the same film, per encoder."""

    name = "crosslingual"

    encoders: list[str] = field(default_factory=lambda: ["hashed-words", "use-multilingual"])
    films: int = 200
    seed: int = 0

    def measure(self, progress: Progress) -> dict:
        if self.films <= RECALL_AT:  # every query would find its original among the first 5 by construction
            raise ConfigError(f"--films must be more than {RECALL_AT} (got {self.films}): among {RECALL_AT} films "
                              f"or fewer, recall@{RECALL_AT} is 1 whatever the encoder")
        english, spanish = film_pairs(self.films, self.seed)
        rows = []
        for name in self.encoders:
            progress(f"encoding {2 * len(english)} texts with {Path(name).name or name}", {})
            encode = encoder_for(name)
            rows.append({"encoder": Path(name).name or name, **retrieval(encode(spanish), encode(english))})
        return {"films": len(english), "queries": "es", "documents": "en", "example": [spanish[0], english[0]],
                "encoders": rows}

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        return [Table(f"Spanish description -> its English original among {record['films']} films",
                      record["encoders"])]
