"""Shared fixtures: a small synthetic world, generated once per test session."""

from __future__ import annotations

import pytest

from edgerec.data import SynthConfig, synth_dataset, write_synth

SMALL = SynthConfig(users=400, items=1_500, events=30_000, seed=7)


@pytest.fixture(scope="session")
def small_dataset():
    return synth_dataset(SMALL)


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    write_synth(SMALL, out)
    return out


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A real bundle (ONNX + TFLite, int8) from a tiny model trained on a tiny world; built once."""
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset
    from edgerec.export.bundle_builder import ExportConfig, export_bundle
    from edgerec.models.config import ModelConfig
    from edgerec.models.train import TrainConfig, train_model

    root = tmp_path_factory.mktemp("bundle")
    data = root / "data"
    write_synth(SynthConfig(users=300, items=1_000, events=20_000, seed=5), data)
    dataset = load_dataset(data)
    train_model(dataset, leave_last_out(dataset), ModelConfig(dim=16, layers=1, max_len=10, dropout=0.0),
                TrainConfig(epochs=3, batch_size=32, eval_users=0), out=root / "ckpt")
    export_bundle(root / "ckpt", data, root / "bundle", ExportConfig(parity_users=200, evaluate=False,
                                                                     min_top10_agreement=0.8))
    return root / "bundle"
