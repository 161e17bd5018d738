"""The ranker's files are checked on the pools the device ranks, the way the device runs them.

On a 12-item catalog `edgerec export --ranker` reported max |diff| 6,387: the export was right (the float
file matched PyTorch to 4e-7 of its scores), the logits were ~6e5 (an hour of day the log never had,
scaled 1,000-fold), parity pools held seen items, every pool of <= 10 items agreed on its "top 10", and
the TFLite ranker was made for 12 candidates while the manifest and the device said 100, so it failed on
every request on the device."""

import copy

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import edgerec.export.ranker_export as ranker_export
import edgerec.models.persist as persist
from edgerec.cli.main import cli
from edgerec.data.loaders import import_dataset
from edgerec.data.store import save_dataset
from edgerec.errors import ExportError
from edgerec.export.bundle_builder import ExportConfig, export_bundle
from edgerec.runtime import Recommender


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """12 items, 30 users with 8 each: a test pool is the 5 items a user has not seen, under the short list of 100."""
    root = tmp_path_factory.mktemp("rk")
    rng = np.random.default_rng(0)
    lines = ["user_id,item_id,timestamp,event"]
    for u in range(30):
        lines += [f"u{u},i{i},{1_000_000 + 3_600 * (7 * u + n)},finish" for n, i in enumerate(rng.choice(12, 8, False))]
    (root / "log.csv").write_text("\n".join(lines) + "\n")
    (root / "items.csv").write_text("item_id,title,genre\n" + "".join(f"i{i},Film {i},g{i % 3}\n" for i in range(12)))
    save_dataset(import_dataset("csv", root / "log.csv", items=root / "items.csv"), root / "data")
    runner = CliRunner()
    for args in (["--steps", "60", "--dim", "8", "--layers", "1", "--heads", "1", "--max-len", "10", "--out",
                  str(root / "ckpt")],  # the ranker refuses --steps, which it never read
                 ["--arch", "ranker", "--retrieval", str(root / "ckpt"), "--out", str(root / "ranker")]):
        result = runner.invoke(cli, ["train", "--data", str(root / "data"), *args])
        assert result.exit_code == 0, result.output
    return root


def _export(root, out, **cfg):
    return export_bundle(root / "ckpt", root / "data", out, ExportConfig(evaluate=False, hubness=False, **cfg),
                         ranker=root / "ranker")


def test_tflite_ranker_of_a_small_catalog_runs_on_the_device(small, tmp_path):
    manifest = _export(small, tmp_path / "b")
    for entry in (m for m in manifest.models if m.role == "ranker"):
        assert entry.parity["pool_sizes"] == [5, 5]  # the 5 unseen items (7 of 12 before the test item)
        assert entry.parity["export_diff_of_spread"] < 1e-3 and entry.parity["order_agreement"] >= 0.9
    for backend in ("onnx", "tflite"):
        rec = Recommender.open(tmp_path / "b", backend=backend)
        for item in ("i1", "i2", "i3"):
            rec.record("u", item, "finish")
        assert len(rec.recommend("u", k=5)) == 5
        assert "ranker_fallback" not in rec.stats()["counters"], backend


def test_a_broken_ranker_export_is_refused(small, tmp_path, monkeypatch):
    real = ranker_export.export_onnx

    def broken(module, *args, **kwargs):  # a file of other weights than the module's
        module = copy.deepcopy(module)
        with torch.no_grad():
            module.head.weight.mul_(-1.0)
        return real(module, *args, **kwargs)

    monkeypatch.setattr(ranker_export, "export_onnx", broken)
    with pytest.raises(ExportError, match="differ from the PyTorch module it was exported from"):
        _export(small, tmp_path / "b", formats=("onnx",))


def test_an_fp16_ranker_that_overflows_is_refused(small, tmp_path, monkeypatch):
    real = persist.load_ranker

    def loud(path):  # logits beyond float16's 65,504, as a ranker asked at an hour its log never had gives
        ranker, info = real(path)
        with torch.no_grad():
            ranker.head.weight.mul_(1e6)
            ranker.head.bias.add_(1e6)
        return ranker, info

    monkeypatch.setattr(persist, "load_ranker", loud)
    with pytest.raises(ExportError, match="returns NaN or infinite scores"):
        _export(small, tmp_path / "b", formats=("onnx",), quantize="fp16")
