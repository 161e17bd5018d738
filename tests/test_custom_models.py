"""Users' own models in bundles, the ANN index, and the pipeline on MovieLens-format data."""

import json
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data.store import load_dataset
from edgerec.device_tests import check_conformance
from edgerec.errors import ExportError
from edgerec.export.formats import export_onnx
from edgerec.export.own_encoder import EncoderSpec
from edgerec.export.own_torch import bundle_torch_module
from edgerec.runtime import Filters, Policy, Recommender


class MeanOfItems(torch.nn.Module):
    """A user's encoder: the mean vector of the history's items (0 = padding)."""

    def __init__(self, vectors: np.ndarray):
        super().__init__()
        table = np.vstack([np.zeros((1, vectors.shape[1]), np.float32), vectors])
        self.table = torch.nn.Embedding.from_pretrained(torch.as_tensor(table), padding_idx=0)

    def forward(self, ids):
        mask = (ids > 0).unsqueeze(-1).to(torch.float32)
        pooled = (self.table(ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return pooled / torch.sqrt((pooled * pooled).sum(-1, keepdim=True) + 1e-12)


SPEC = {"input": {"name": "ids", "dtype": "int64", "history_length": 12}, "output": {"name": "user_vector"}, "dim": 16}


@pytest.fixture(scope="module")
def user_model(tiny_bundle):
    data = tiny_bundle.parent / "data"
    n = load_dataset(data).n_items
    vectors = np.random.default_rng(0).normal(size=(n, 16)).astype(np.float32)
    return data, vectors, MeanOfItems(vectors).eval()


def test_pytorch_module_with_a_spec_becomes_a_bundle(user_model, tmp_path):
    data, vectors, module = user_model
    bundle_torch_module(module, EncoderSpec.load(SPEC), vectors, data, tmp_path / "b")
    rec = Recommender.open(tmp_path / "b")
    rec.record("u", rec.catalog.item_id(10), "finish")
    results = rec.recommend("u", k=5)
    assert len(results) == 5
    assert check_conformance(str(tmp_path / "b"))["passed"]
    # the hub penalty works on a user's model too: hubness measured with their encoder
    from edgerec.data.split import leave_last_out
    from edgerec.export.own_encoder import FileEncoder
    from edgerec.models.hubness import model_hubness

    split = leave_last_out(load_dataset(data))
    table = rec.catalog.vectors(np.arange(len(rec.catalog)))
    expected = model_hubness(FileEncoder(tmp_path / "b" / "user_encoder.onnx", "onnx", EncoderSpec.load(SPEC)),
                             split.train, table)
    assert np.allclose(rec.catalog.hubness(np.arange(len(rec.catalog))), expected, atol=1e-3)
    assert [r.item_id for r in rec.recommend("u", k=5, policy=Policy(hub_penalty=1.0))] != \
        [r.item_id for r in rec.recommend("u", k=5, policy=Policy())]


def test_onnx_file_with_a_spec_via_the_cli(user_model, tmp_path):
    data, vectors, module = user_model
    onnx_path = export_onnx(module, {"ids": torch.ones(2, 12, dtype=torch.int64)}, {"ids": {0: "b", 1: "h"}},
                            ["user_vector"], tmp_path / "mine.onnx", max_sizes={"h": 12})
    np.save(tmp_path / "vectors.npy", vectors)
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    result = CliRunner().invoke(cli, ["export", "--encoder", str(onnx_path), "--spec", str(tmp_path / "spec.json"),
                                      "--item-vectors", str(tmp_path / "vectors.npy"), "--data", str(data),
                                      "--out", str(tmp_path / "bundle")])
    assert result.exit_code == 0, result.output
    assert "user-supplied" in (tmp_path / "bundle" / "manifest.json").read_text()
    bad = dict(SPEC, dim=8)
    with pytest.raises(ExportError, match="returns shape"):
        bundle_torch_module(module, EncoderSpec.load(bad), vectors[:, :8], data, tmp_path / "bad")


def test_ann_index_agrees_with_the_exact_scan(tiny_bundle, tmp_path):
    exact = Recommender.open(tiny_bundle)
    ann = Recommender.open(tiny_bundle, ann="usearch", cache_dir=tmp_path)
    overlap = []
    for u in range(20):
        for rec in (exact, ann):
            for i in range(4):
                rec.record(f"u{u}", rec.catalog.item_id(u * 40 + i), "finish")
        a = {r.item_id for r in exact.recommend(f"u{u}", k=10)}
        b = {r.item_id for r in ann.recommend(f"u{u}", k=10)}
        overlap.append(len(a & b) / 10)
    assert np.mean(overlap) > 0.8
    # requests that score every row take the index's candidates too: a short history, a like, filters
    for rec in (exact, ann):
        rec.record("short", rec.catalog.item_id(7), "finish")
        rec.record("fan", rec.catalog.item_id(9), "like")
    for user, filters in (("short", None), ("fan", None), ("u3", Filters(languages=["es"]))):
        a = {r.item_id for r in exact.recommend(user, k=10, filters=filters)}
        b = {r.item_id for r in ann.recommend(user, k=10, filters=filters)}
        assert len(b) == 10 and len(a & b) >= 7, user
    for rec in (exact, ann):  # a newcomer whose only event is "more like this": the index's rows, no warning
        rec.record("newfan", rec.catalog.item_id(11), "more_like_this")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert len(rec.recommend("newfan", k=10)) == 10
    counters = ann.stats()["counters"]
    assert counters.get("ann_too_few", 0) >= 1  # the Spanish filter outran the index's candidates
    assert list(tmp_path.glob("ann-*.usearch")) and "ann_fallback" not in counters


def test_pipeline_on_movielens_format_data(tiny_bundle, tmp_path):
    """Write the tiny world as MovieLens 1M files, import them, train, distill and evaluate."""
    dataset = load_dataset(tiny_bundle.parent / "data")
    folder = tmp_path / "ml"
    folder.mkdir()
    log = dataset.interactions
    rated = set()  # a MovieLens release rates each (user, movie) once: the world's replays are left out
    with open(folder / "ratings.dat", "w") as f:
        for u, i, t, v in zip(log.user, log.item, log.timestamp, log.value):
            if (u, i) not in rated:
                rated.add((u, i))
                f.write(f"{u + 1}::{i + 1}::{1 + int(v * 4)}::{t}\n")
    with open(folder / "movies.dat", "w", encoding="latin-1") as f:
        for i, (title, genre) in enumerate(zip(dataset.catalog.text["title"], dataset.catalog.text["genre"])):
            f.write(f"{i + 1}::{title} (2001)::{genre.title()}|Drama\n")
    runner = CliRunner()
    steps = [
        ["data", "import", "ml-1m", str(folder), "--out", str(tmp_path / "data")],
        ["train", "--data", str(tmp_path / "data"), "--dim", "16", "--layers", "1", "--max-len", "10",
         "--epochs", "2", "--out", str(tmp_path / "teacher")],
        ["distill", "--teacher", str(tmp_path / "teacher"), "--data", str(tmp_path / "data"), "--dim", "8",
         "--layers", "1", "--heads", "1", "--max-len", "10", "--epochs", "2", "--out", str(tmp_path / "student")],
        ["evaluate", "--data", str(tmp_path / "data"), "--model", "itemknn", "--model", str(tmp_path / "student"),
         "--json", str(tmp_path / "eval.json")],
    ]
    for args in steps:
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args[0], result.output[-2000:])
    rows = json.loads((tmp_path / "eval.json").read_text())["results"]
    assert rows[1]["parameters"] > 0 and 0 <= rows[1]["NDCG@10"] <= 1
