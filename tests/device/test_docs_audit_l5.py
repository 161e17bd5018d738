"""What a newcomer following the docs met (audit L5): a corrected title for a bundle item as docs/runtime.md
shows it, KEEP_EVERYTHING importable from edgerec.runtime, and a checkpoint folder opened as a bundle told
what to do. Device suite: the standard library and the runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime import KEEP_EVERYTHING, Recommender, Retention


def test_a_corrected_title_with_the_rows_own_vector_keeps_the_items_place(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, history=tmp_path / "h.db", backend="onnx") as rec:
        item = rec.catalog.item_id(2)
        before = rec.catalog.vectors(np.array([rec.catalog.row(item)]))[0]
        rec.update_items([{"item_id": item, "title": "Corrected", "vector": before}])  # docs/runtime.md's recipe
        row = rec.catalog.row(item)
        assert rec.catalog.title(row) == "Corrected"
        assert np.allclose(rec.catalog.vectors(np.array([row]))[0], before / np.linalg.norm(before), atol=1e-6)


def test_keep_everything_is_part_of_the_runtimes_api():
    assert isinstance(KEEP_EVERYTHING, Retention) and KEEP_EVERYTHING.max_age_days > 10_000 * 365


def test_a_training_checkpoint_opened_as_a_bundle_is_told_how_to_make_one(tmp_path):
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(json.dumps({"model": {}}))
    with pytest.raises(BundleError, match=r"^ckpt has no manifest.json; it is a training checkpoint: make a bundle "
                                          r"of it with `edgerec export --model \.\.\.`$"):
        Recommender.open(checkpoint)
    (checkpoint / "config.json").unlink()
    with pytest.raises(BundleError, match="it is not a bundle or it is incomplete"):
        Recommender.open(checkpoint)
