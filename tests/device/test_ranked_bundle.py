"""The spec's ranked golden bundle (a ranker and a scorer): what the runtime refuses on open, and how
it reads a ranker's output (spec §4 Ranker). The lists themselves are pinned by test_golden.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime.recommender import Recommender

RANKED = Path(__file__).resolve().parents[2] / "spec" / "golden" / "ranked"
HISTORY = ("i03", "i11", "i19", "i27")


def _edited(tmp_path: Path, edit) -> Path:
    root = Path(shutil.copytree(RANKED, tmp_path / "ranked"))
    manifest = json.loads((root / "manifest.json").read_text())
    edit(next(m for m in manifest["models"] if m["role"] == "ranker"))
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.mark.parametrize("edit", [lambda m: m["extra"].update(features_version=2),
                                  lambda m: m["inputs"][0].update(shape=["candidates", 27])],
                         ids=["features_version", "width"])
def test_a_ranker_of_other_features_is_refused_on_open(tmp_path, edit):
    with pytest.raises(BundleError, match="ranker features version"):
        Recommender.open(_edited(tmp_path, edit), backend="onnx", verify=False)


def test_a_ranker_without_a_declared_version_reads_version_1(tmp_path):
    root = _edited(tmp_path, lambda m: m["extra"].pop("features_version"))
    with Recommender.open(root, backend="onnx", verify=False) as rec, \
            Recommender.open(RANKED, backend="onnx") as ref:
        for one in (rec, ref):
            for item in HISTORY:
                one.record("u", item, "finish")
        assert [r.item_id for r in rec.recommend("u", k=6)] == [r.item_id for r in ref.recommend("u", k=6)]


class _Column:
    """A ranker backend that answers with a (C, 1) column, or with one logit too few."""

    def __init__(self, real, short: bool = False):
        self.real, self.short, self.input_names = real, short, real.input_names

    def run(self, feeds):
        logits = np.asarray(self.real.run(feeds)[0]).reshape(-1, 1)
        return [logits[:-1] if self.short else logits]


def _lists(rec) -> list[list[tuple]]:
    for item in HISTORY:
        rec.record("u", item, "finish")
    return [[(r.item_id, round(r.score, 6)) for r in rec.recommend("u", k=6, context=ctx)]
            for ctx in ({"now": 1.767e9, "hour": 20.5}, {"now": 1.767e9, "hour": 7.0, "device": "tv"})]


def test_a_column_of_logits_reads_as_one_per_candidate():
    with Recommender.open(RANKED, backend="onnx") as ref:
        expected = _lists(ref)
    with Recommender.open(RANKED, backend="onnx") as rec:
        entry, real = rec.models.ranker
        rec.models._ranker = (entry, _Column(real))
        assert _lists(rec) == expected
        assert "ranker_fallback" not in rec.stats()["counters"]


def test_a_wrong_count_of_logits_is_a_counted_ranker_failure():
    with Recommender.open(RANKED, backend="onnx") as plain:
        plain_lists = _lists(plain)  # the ranker's lists
    with Recommender.open(RANKED, backend="onnx") as rec:
        entry, real = rec.models.ranker
        rec.models._ranker = (entry, _Column(real, short=True))
        got = _lists(rec)
        assert rec.stats()["counters"]["ranker_fallback"] == 2
    assert got != plain_lists and all(len(one) == 6 for one in got)  # the retrieval relevance, a full list


def test_explaining_a_newcomers_list_says_why_without_their_name():
    from edgerec.errors import ConfigError
    from edgerec.runtime.explain_scores import explain_list

    with Recommender.open(RANKED, backend="onnx") as rec:
        with pytest.raises(ConfigError, match="not personal yet") as err:
            explain_list(rec, "alice@example.com", k=3)
        assert "alice" not in str(err.value)  # an app may log the text: no user ids in errors
        for item in HISTORY:
            rec.record("bob", item, "finish")
        assert [row["contributions"] for row in explain_list(rec, "bob", k=3)]  # with a history: explained
