"""Device-side fixes of audit G2: content-encoder labels that do not fit together are refused, a prose
sentence starting with "Tags: " stays in a summary, and onboarding takes only genres an active item has."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgerec.errors import BundleError, ConfigError
from edgerec.runtime import Filters, Recommender
from edgerec.runtime.content import metadata_text
from edgerec.runtime.summary import sentences

TEXT_BUNDLE = Path(__file__).resolve().parents[2] / "spec" / "golden" / "text"


def _labels_edited(tmp_path, edit) -> Path:
    """A copy of the golden content bundle whose manifest labels `edit` changes (the manifest has no checksum)."""
    out = Path(shutil.copytree(TEXT_BUNDLE, tmp_path / "text"))
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["models"]:
        if entry["role"] == "content_encoder":
            edit(entry["extra"]["labels"])
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


@pytest.mark.parametrize(("edit", "message"), [
    (lambda labels: labels["names"].pop(), r"labels.vectors has shape \(59, 16\), not one row of 16 .* 58 labels"),
    (lambda labels: labels["names"].append("zzz"), r"labels.vectors has shape \(59, 16\), not one row of 16 .* 60 labels.names"),
    (lambda labels: labels["sets"].update(mood=["not-a-name"]), "the label set 'mood' holds 'not-a-name', which is not"),
    (lambda labels: labels["sets"].update(mood=[]), "the label set 'mood' is empty"),
])
def test_labels_that_do_not_fit_together_are_a_bundle_error_not_a_crash(tmp_path, edit, message):
    """A name too few crashed `content tag` with an IndexError; a name too many, a set naming a label that is
    none and an empty set were served silently (the set gave no label)."""
    pytest.importorskip("tokenizers")
    bundle = _labels_edited(tmp_path, edit)
    with Recommender.open(bundle, history=tmp_path / "h.db", backend="onnx") as rec:
        with pytest.raises(BundleError, match="content encoder labels do not fit together: " + message):
            rec.tag(text="a tense heist thriller", k=100)
        assert rec.recommend("ann", k=3)  # the bundle still serves; only the content encoder is refused


def test_the_golden_labels_fit_and_still_tag(tmp_path):
    pytest.importorskip("tokenizers")
    with Recommender.open(TEXT_BUNDLE, history=tmp_path / "h.db", backend="onnx") as rec:
        out = rec.tag(text="a tense heist thriller", k=100)
    assert {"genre", "mood"} <= set(out) and len(out["tags"]) == 59


@pytest.mark.parametrize(("text", "expected"), [
    ("Tags: the story of a forger of price tags.", ["Tags: the story of a forger of price tags."]),
    ("Tags: a graffiti documentary. Street artists in Berlin.", ["Tags: a graffiti documentary.",
                                                                 "Street artists in Berlin."]),
    ("Tags: Graffiti in Berlin", ["Tags: Graffiti in Berlin"]),  # an item's title (its summary's prose)
    ("A heist film. Tags: heist, crime.", ["A heist film."]),  # the trailing tag list: still left out
    (metadata_text({"title": "Heat", "description": "A heist in LA.", "tags": ["crime", "Dr. Who"]}),
     ["Heat A heist in LA."]),
    (metadata_text({"title": "Heat", "tags": ["crime"]}), ["Heat"]),
    ("One. Tags: in prose. Two. Tags: a, b.", ["One.", "Tags: in prose.", "Two."]),  # only the last, at the end
])
def test_only_the_trailing_tag_list_is_left_out_of_a_summary(text, expected):
    """Every sentence starting with "Tags: " was dropped: such a text's summary was empty."""
    assert sentences(text) == expected


def test_onboarding_refuses_a_genre_whose_items_were_all_removed(golden_bundle, tmp_path):
    """Its only item retired, "cooking" was accepted and steered nothing."""
    with Recommender.open(golden_bundle, history=tmp_path / "h.db") as rec:
        cooking = [rec.catalog.item_id(r) for r in range(rec.catalog.base_count)
                   if rec.catalog.meta(r)["genre"] == "cooking"]
        rec.onboard("before", genres=["cooking"])  # while it has an item
        rec.remove_items(cooking)
        with pytest.raises(ConfigError, match=r"unknown genres \['cooking'\]"):
            rec.onboard("newbie", genres=["cooking"])
        assert rec.export_history("newbie")["preferences"] == {}
        # a filter naming it is well-formed: the list is empty, as for a value no item has yet
        assert rec.recommend("newbie", k=5, filters=Filters(genres=["cooking"])) == []
        rec.add_items([{"item_id": "pasta", "title": "Pasta", "genre": "cooking", "vector": [1.0] * rec.manifest.dim}])
        rec.onboard("newbie", genres=["cooking"])  # an added item holds it again
        assert rec.export_history("newbie")["preferences"] == {"genre": ["cooking"]}
        rec.remove_items(["pasta"])  # a removed added item holds nothing
        with pytest.raises(ConfigError, match="unknown genres"):
            rec.onboard("third", genres=["cooking"])
