"""Nothing personal in a bundle: no user id, no real history, no path of the build machine, in any file
(inflated string columns included), nor in the packed bundle, nor in the reports that leave the device."""

from __future__ import annotations

import json
import tarfile
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
    base = synth_dataset(SynthConfig(users=80, items=200, events=3_000, seed=11))
    user_ids = [f"zz-person-{i:04d}-xq" for i in range(len(base.user_ids))]
    data = root / MARK / "logs"
    save_dataset(Dataset(base.catalog, base.interactions, user_ids, {"source": str(data)}), data)
    dataset = load_dataset(data)
    ckpt = root / MARK / "ckpt"
    train_model(dataset, leave_last_out(dataset), ModelConfig(dim=16, layers=1, max_len=10, dropout=0.0),
                TrainConfig(epochs=1, batch_size=32, eval_users=0), out=ckpt)
    bundle = root / "bundle"
    export_bundle(ckpt, data, bundle, ExportConfig(formats=("onnx",), parity_users=60, evaluate=False,
                                                   min_top10_agreement=0.7, cold_max_per_creator=2))
    return dataset, data, bundle


def _needles(dataset, data) -> list[bytes]:
    needles = [MARK.encode(), str(data).encode(), str(data.parent).encode(), str(data.parent.parent).encode(),
               b"zz-person-"]
    return needles + [u.encode() for u in dataset.user_ids]


def _assert_clean(blobs: dict, needles: list[bytes]) -> None:
    for where, blob in blobs.items():
        found = [n.decode() for n in needles if n in blob]
        assert not found, f"{where} holds {found[:3]}"


def _inflated_columns(bundle: Path) -> dict:
    """Every block-compressed string column of the bundle, inflated: a byte scan of the files cannot see
    inside them."""
    from edgerec.runtime.text_blocks import inflate

    columns, stack = [], [json.loads((bundle / "manifest.json").read_text())]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            columns += [value] if value.get("codec") == "zlib" else []
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    out = {}
    for column in columns:
        blob, starts = (bundle / column["blob"]).read_bytes(), np.load(bundle / column["blocks"])
        words = (bundle / column["dictionary"]).read_bytes() if column.get("dictionary") else b""
        out[f"{column['blob']} (inflated)"] = b"".join(inflate(blob[a:b], words) for a, b in zip(starts[:-1], starts[1:]))
    return out


def test_no_user_id_or_host_path_in_any_file_of_the_bundle(private_world):
    dataset, data, bundle = private_world
    files = {str(p.relative_to(bundle)): p.read_bytes() for p in bundle.rglob("*") if p.is_file()}
    assert len(files) > 10
    inflated = _inflated_columns(bundle)
    assert any(title.encode() in b"".join(inflated.values()) for title in dataset.catalog.text["title"][:5])
    _assert_clean(files | inflated, _needles(dataset, data))


@pytest.fixture(scope="module")
def private_reports(private_world):
    """What leaves the host or the device besides the bundle: the packed bundle, a study's report, and the
    device's private reports after a user with a marked id played items (history under the marked folder)."""
    from edgerec.runtime import Recommender
    from edgerec.runtime.pack import pack
    from edgerec.runtime.reporter import PrivateReporter
    from edgerec.studies.replay import ReplayStudy

    dataset, data, bundle = private_world
    root = data.parent
    packed = pack(bundle, root.parent / "bundle.edgerec")
    study = ReplayStudy(bundle, data, root / "replay.db", users=20).run().write_json(root.parent / "replay.json")
    with Recommender.open(bundle, history=root / "device" / "history.db") as rec:
        user = dataset.user_ids[0]
        for item in dataset.catalog.item_ids[:5]:
            rec.record(user, item, "play")
        assert rec.recommend(user, k=5)
        reporter = PrivateReporter(rec)
        reports = [reporter.items_consumed(0.2), reporter.category_shares(0.2), *reporter.health(0.2),
                   reporter.experiment("ranker-v2", "control", {"plays": 5}, {"plays": 20}, epsilon=0.2)]
    device = root.parent / "device_reports.json"
    device.write_text(json.dumps(reports))
    return packed, study, device


def test_nothing_personal_in_the_packed_bundle_or_the_reports(private_world, private_reports):
    dataset, data, _ = private_world
    packed, study, device = private_reports
    with tarfile.open(packed) as tar:
        headers = {f"{packed.name} member {m.name}": f"{m.name} {m.uname} {m.gname} {m.pax_headers}".encode()
                   for m in tar.getmembers()}
    blobs = {packed.name: packed.read_bytes(), study.name: study.read_bytes(), device.name: device.read_bytes()}
    assert json.loads(study.read_text())["users"] == 20 and len(json.loads(device.read_text())) == 5
    _assert_clean(blobs | headers, _needles(dataset, data))


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
