"""Nothing personal in a bundle: no user id, no real history, no path of the build machine, in any file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgerec.data import SynthConfig, synth_dataset

pytestmark = pytest.mark.slow

MARK = "Quasimodo-Private-Data-7f3a"


@pytest.fixture(scope="module")
def private_world(tmp_path_factory):
    from edgerec.data.schema import Dataset
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset, save_dataset
    from edgerec.export.bundle_builder import ExportConfig, export_bundle
    from edgerec.models.config import ModelConfig
    from edgerec.models.train import TrainConfig, train_model

    root = tmp_path_factory.mktemp("private")
    base = synth_dataset(SynthConfig(users=200, items=600, events=12_000, seed=11))
    user_ids = [f"zz-person-{i:04d}-xq" for i in range(len(base.user_ids))]
    data = root / MARK / "logs"
    save_dataset(Dataset(base.catalog, base.interactions, user_ids, {"source": str(data)}), data)
    dataset = load_dataset(data)
    ckpt = root / MARK / "ckpt"
    train_model(dataset, leave_last_out(dataset), ModelConfig(dim=16, layers=1, max_len=10, dropout=0.0),
                TrainConfig(epochs=2, batch_size=32, eval_users=0), out=ckpt)
    bundle = root / "bundle"
    export_bundle(ckpt, data, bundle, ExportConfig(formats=("onnx",), parity_users=150, evaluate=False,
                                                   min_top10_agreement=0.7, cold_max_per_creator=2))
    return dataset, data, bundle


def test_no_user_id_or_host_path_in_any_file_of_the_bundle(private_world):
    dataset, data, bundle = private_world
    files = [p for p in bundle.rglob("*") if p.is_file()]
    assert len(files) > 10
    needles = [MARK.encode(), str(data).encode(), str(data.parent).encode(), b"zz-person-"]
    needles += [u.encode() for u in dataset.user_ids]
    for path in files:
        blob = path.read_bytes()
        found = [n.decode() for n in needles if n in blob]
        assert not found, f"{path.relative_to(bundle)} holds {found[:3]}"


def test_reference_histories_are_synthetic(private_world):
    from edgerec.data.split import leave_last_out
    from edgerec.models.scoring import history_rows
    from edgerec.runtime.bundle import Bundle

    dataset, _, bundle = private_world
    opened = Bundle.open(bundle)
    reference = opened.array(opened.manifest.reference["histories"])
    split = leave_last_out(dataset)
    real = history_rows(split.history("test"), split.test_users, reference.shape[1])
    real_rows = {tuple(r) for r in real}
    assert not any(tuple(r) in real_rows for r in reference)
    assert reference.max() <= dataset.n_items and (reference > 0).sum(axis=1).min() >= 3
    assert len({tuple(r) for r in reference}) == len(reference)
    assert np.isin(reference[reference > 0] - 1, np.arange(dataset.n_items)).all()


def test_a_hosts_newcomer_spread_is_written_in_the_bundles_defaults(private_world):
    """ExportConfig.cold_max_per_creator goes in defaults (spec §5); unset, the key is left out (the
    golden bundle: devices then apply 3)."""
    import json

    _, _, bundle = private_world
    assert json.loads((bundle / "manifest.json").read_text())["defaults"]["cold_max_per_creator"] == 2
    golden = Path(__file__).parent.parent / "spec" / "golden" / "bundle" / "manifest.json"
    assert "cold_max_per_creator" not in json.loads(golden.read_text())["defaults"]
