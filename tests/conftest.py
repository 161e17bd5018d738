"""Shared fixtures: a small synthetic world, generated once per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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


def build_tiny_world(root: Path) -> None:
    """root/data (a tiny synthetic world), root/ckpt (a tiny model trained on it), root/bundle (its export)."""
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset
    from edgerec.export.bundle_builder import ExportConfig, export_bundle
    from edgerec.models.config import ModelConfig
    from edgerec.models.train import TrainConfig, train_model

    data = root / "data"
    write_synth(SynthConfig(users=300, items=1_000, events=20_000, seed=5), data)
    dataset = load_dataset(data)
    train_model(dataset, leave_last_out(dataset), ModelConfig(dim=16, layers=1, max_len=10, dropout=0.0),
                TrainConfig(epochs=3, batch_size=32, eval_users=0), out=root / "ckpt")
    export_bundle(root / "ckpt", data, root / "bundle", ExportConfig(parity_users=200, evaluate=False,
                                                                     min_top10_agreement=0.8))


def cached_tiny_world(cache: Path) -> Path:
    """The tiny world under `cache`, built on first use (tools/mutate.py warms it from the clean code)."""
    world = cache / "tiny_world"
    if not (world / "complete").exists():
        scratch = cache / f"tiny_world.{os.getpid()}.tmp"
        shutil.rmtree(scratch, ignore_errors=True)
        build_tiny_world(scratch)
        (scratch / "complete").touch()
        shutil.rmtree(world, ignore_errors=True)
        scratch.rename(world)
    return world


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A real bundle (ONNX + TFLite, int8) from a tiny model trained on a tiny world; built once.

    With EDGEREC_TEST_CACHE naming a folder (mutation runs set it: tools/mutate.py), the world is
    built there once and each session works on its own copy, so a mutant pays seconds, not a
    training run. The cached bundle comes from the clean code: mutants in the export and bundle
    writer code are then caught by the tests that build their own outputs (content bundles,
    custom models, the pipeline), not through this fixture.
    """
    root = tmp_path_factory.mktemp("bundle")
    cache = os.environ.get("EDGEREC_TEST_CACHE")
    if cache:
        shutil.copytree(cached_tiny_world(Path(cache)), root, dirs_exist_ok=True)
    else:
        build_tiny_world(root)
    return root / "bundle"


def pytest_collection_modifyitems(config, items):
    """In mutation runs (EDGEREC_TEST_CACHE set), tests without shared fixtures go first.

    Each mutant runs its tests with -x: a cheap unit test that kills it saves building the
    session and module fixtures (a trained model, a benchmark run) that later tests need.
    """
    if not os.environ.get("EDGEREC_TEST_CACHE"):
        return

    def shared(item) -> bool:
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        return any(d and d[-1].scope != "function" for d in defs.values())

    items.sort(key=shared)  # stable: the file order holds within each group


# ------------------------------------------------------------------ hand-made bundles


@pytest.fixture
def handmade_bundle(tmp_path_factory):
    """write_handmade_bundle into a fresh folder: handmade_bundle(vectors, **columns) -> path."""
    from handmade import write_handmade_bundle

    return lambda vectors, **kw: write_handmade_bundle(tmp_path_factory.mktemp("handmade") / "bundle", vectors, **kw)


@pytest.fixture
def rec(tiny_bundle, tmp_path):
    """The tiny bundle opened with a fresh, empty history."""
    from edgerec.runtime import Recommender

    with Recommender.open(tiny_bundle, history=tmp_path / "history.db") as r:
        yield r


@pytest.fixture
def torch_one_thread():
    """Training tests on a shared, busy machine: one torch thread avoids oversubscribing the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


FIXED_NOW = 1_790_000_000.0  # the fixed request time of tests that record events at explicit times near it


@pytest.fixture
def fixed_history_clock(monkeypatch):
    """Every history store of the test reads its clock as FIXED_NOW plus a day, so events recorded
    near FIXED_NOW stay inside the default retention whatever the wall clock says (retention
    applies at every read: from late 2028 those events would otherwise be two years old)."""
    from edgerec.runtime.history import HistoryStore

    opened = HistoryStore.__init__

    def init(self, *args, **kwargs):
        opened(self, *args, **kwargs)
        self.clock = lambda: FIXED_NOW + 86_400

    monkeypatch.setattr(HistoryStore, "__init__", init)
