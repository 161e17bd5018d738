"""Guards of the bundle a federated run publishes (federated/publish.py): it is the parent with a new
table, carries the accounted (epsilon, delta), and never a host path, a non-JSON value or a stale file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from dp_accounting import dp_event, rdp

from edgerec.errors import BundleError, ConfigError
from edgerec.federated.accounting import DPPlan
from edgerec.federated.publish import publish_bundle
from edgerec.runtime.bundle import Bundle, Manifest, embedding_space_id, sha256_file
from edgerec.runtime.item_table import StoredTable

GOLDEN = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"


def shipped(bundle: Bundle) -> np.ndarray:
    return StoredTable.read(bundle, bundle.manifest.items.embeddings).dequantize()


def strict_manifest(root: Path) -> dict:
    """The manifest as a strict JSON parser (a device's) reads it: NaN or Infinity would fail here."""
    def refuse(word):
        raise ValueError(f"not JSON: {word}")
    return json.loads((root / "manifest.json").read_text(), parse_constant=refuse)


def record(**extra) -> dict:
    return {"rounds": 3, "clients_per_round": 20, "server_lr": 4.0, "arm": "DP-FedAvg eps 4",
            "dp": DPPlan(4.0, 1e-6, 0.5, 3, 1.0).describe(1.6)} | extra


def test_the_unchanged_table_publishes_the_parent_again(tmp_path):
    """Every part the table does not decide is the parent's; the parts it decides (reference top-k,
    drift baseline, the space id, which is of the content) come out as the parent's when the table is."""
    source = Bundle.open(GOLDEN)
    m = source.manifest
    got = publish_bundle(source, shipped(source), tmp_path / "again", record())
    opened = Bundle.open(tmp_path / "again")
    assert got.embedding_space == m.embedding_space == opened.manifest.embedding_space
    assert np.array_equal(shipped(opened), shipped(source))
    assert sorted(got.files) == sorted(m.files)  # the same files under the same names, none added
    for name in m.files:
        if name != m.reference["top_k"]:
            assert got.files[name] == m.files[name], name
    top_k = opened.array(got.reference["top_k"], mmap=False)
    assert top_k.dtype == np.int64 and np.array_equal(top_k, source.array(m.reference["top_k"], mmap=False))
    kept = {k: v for k, v in m.metrics.items() if k != "monitoring"}
    assert {k: v for k, v in got.metrics.items() if k not in ("federated", "monitoring")} == kept and kept
    assert got.ranking == m.ranking and got.space == m.space and got.ranking and got.space  # not dropped
    assert (got.format_version, got.defaults, got.budgets, got.data_version, got.models, got.dim) == (
        m.format_version, m.defaults, m.budgets, m.data_version, m.models, m.dim)
    assert got.name == "again" and opened.manifest.to_dict() == got.to_dict()


def test_a_new_table_gets_its_own_top_k_with_each_users_history_left_out(tmp_path):
    source = Bundle.open(GOLDEN)
    m = source.manifest
    table = shipped(source)[::-1].copy()  # every item gets another's vector
    got = publish_bundle(source, table, tmp_path / "new", record())
    opened = Bundle.open(tmp_path / "new")
    stored = shipped(opened)
    assert got.embedding_space != m.embedding_space == got.metrics["federated"]["parent_space"]
    assert np.allclose(stored, table, atol=np.abs(table).max() / 127)
    users = source.array(m.reference["user_vectors"], mmap=False)
    histories = source.array(m.reference["histories"], mmap=False)
    k = int(m.reference["k"])
    scores = users @ stored.T
    for row, history in zip(scores, histories):
        row[history[history > 0] - 1] = -np.inf  # rows are item index + 1, 0 pads
    want = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    assert np.array_equal(opened.array(got.reference["top_k"], mmap=False), want)
    assert not np.array_equal(want, source.array(m.reference["top_k"], mmap=False))
    # the drift baseline: best score and mean of the 10 best, over the reference users, on the new table
    best = -np.sort(-scores, axis=1)[:, :10]
    assert got.metrics["monitoring"] == {
        "score_baseline": {"k": 10, "users": len(users), "top1": {"mean": pytest.approx(best[:, 0].mean()),
                                                                 "std": pytest.approx(best[:, 0].std())},
                           "topk": {"mean": pytest.approx(best.mean(1).mean()), "std": pytest.approx(best.mean(1).std())}},
        "drift_threshold": 1.0, "drift_min_window": 50}


def test_the_history_left_out_is_its_items_not_the_padding(tmp_path):
    """Histories are item rows + 1, left-padded with 0: item 0 (row 1) is an item a user saw, and the
    padding is no item (were it one, -1 would be the last item)."""
    source = Bundle.open(GOLDEN)
    m = source.manifest
    users = source.array(m.reference["user_vectors"], mmap=False)
    histories = source.array(m.reference["histories"], mmap=False)
    saw_first = int(np.flatnonzero((histories == 1).any(1))[0])
    padded = int(np.flatnonzero((histories == 0).any(1) & ~(histories == 1).any(1))[0])
    table = shipped(source)
    table[0], table[-1] = 10 * users[saw_first], 10 * users[padded]  # each is that user's best by far
    got = publish_bundle(source, table, tmp_path / "new", record())
    top_k = Bundle.open(tmp_path / "new").array(got.reference["top_k"], mmap=False)
    assert 0 not in top_k[saw_first] and top_k[padded][0] == len(table) - 1


def test_the_record_carries_the_accounted_epsilon_and_delta_and_the_parent(tmp_path):
    source = Bundle.open(GOLDEN)
    got = publish_bundle(source, shipped(source), tmp_path / "dp", record())
    federated = strict_manifest(tmp_path / "dp")["metrics"]["federated"]
    assert federated == got.metrics["federated"] == {"parent_space": source.manifest.embedding_space, **record()}
    oracle = rdp.RdpAccountant()
    oracle.compose(dp_event.PoissonSampledDpEvent(0.5, dp_event.GaussianDpEvent(1.6)), 3)
    assert federated["dp"]["epsilon"] == oracle.get_epsilon(1e-6) and federated["dp"]["delta"] == 1e-6
    loose = record(dp=DPPlan(4.0, 1e-6, 0.5, 3, 1.0).describe(8.0))  # much noise: an epsilon below 1 is one
    assert 0 < loose["dp"]["epsilon"] < 1
    publish_bundle(source, shipped(source), tmp_path / "loose", loose)
    plain = publish_bundle(source, shipped(source), tmp_path / "plain", {"rounds": 2})  # FedAvg: no dp
    assert plain.metrics["federated"] == {"parent_space": source.manifest.embedding_space, "rounds": 2}


def test_no_host_path_reaches_the_manifest(tmp_path):
    source = Bundle.open(GOLDEN)
    publish_bundle(source, shipped(source), tmp_path / "deep" / "bundle-x", record())
    text = (tmp_path / "deep" / "bundle-x" / "manifest.json").read_text()
    assert str(tmp_path) not in text and str(GOLDEN.parent) not in text
    assert strict_manifest(tmp_path / "deep" / "bundle-x")["name"] == "bundle-x"
    publish_bundle(source, shipped(source), tmp_path / "named", record(), name="v2")
    assert Bundle.open(tmp_path / "named").manifest.name == "v2"


@pytest.mark.parametrize("bad, message", [
    ([("rounds", 3)], r"the run record must be a dict \(got list\)"),
    ({"parent_space": "ab" * 12}, "^the run record must not set parent_space: it is the source bundle's space$"),
    ({"rounds": np.int64(3)}, r"^metrics.federated.rounds is a int64; a record holds JSON values only \(text, numbers, "
                              r"lists, dicts\)$"),
    ({"note": {1: "x"}}, r"metrics.federated.note has a key that is not text \(int\)"),
    ({"loss": float("nan")}, r"metrics.federated.loss is nan; a manifest holds finite numbers only"),
    ({"per_round": [1.0, float("inf")]}, r"metrics.federated.per_round\[1\] is inf"),
    ({"data": "/home/alice/world"}, r"^metrics.federated.data looks like a host path; a published bundle names no "
                                    r"folder of the machine that made it$"),
    ({"data": ["~/world"]}, r"metrics.federated.data\[0\] looks like a host path"),
    ({"data": "C:\\Users\\alice"}, "host path"), ({"data": "c:/Users/alice"}, "host path"),
    ({"table": object()}, "is a object"),
    ({"dp": {"epsilon": 4.0, "delta": 1e-6}}, r"metrics.federated.dp lacks target_epsilon, noise_multiplier, "
                                              r"clip, sampling_rate, accountant; record the plan as DPPlan.describe"),
    ({"dp": "eps 4"}, "dp lacks epsilon, target_epsilon"), ({"dp": list(record()["dp"])}, "dp lacks epsilon, target"),
    ({"dp": record()["dp"] | {"epsilon": 0.0}}, r"needs the spent epsilon > 0 and 0 < delta < 1 \(got 0.0, 1e-06\)"),
    ({"dp": record()["dp"] | {"epsilon": -1}}, r"\(got -1, 1e-06\)"),
    ({"dp": record()["dp"] | {"epsilon": True}}, "spent epsilon > 0"),
    ({"dp": record()["dp"] | {"epsilon": "4"}}, "spent epsilon > 0"),
    ({"dp": record()["dp"] | {"epsilon": float("inf")}}, "dp.epsilon is inf"),
    ({"dp": record()["dp"] | {"delta": 0.0}}, r"\(got \S+, 0.0\)"), ({"dp": record()["dp"] | {"delta": 1}}, "delta < 1"),
    ({"dp": record()["dp"] | {"delta": None}}, "delta < 1"),
])
def test_a_record_a_manifest_cannot_carry_is_refused_before_anything_is_written(tmp_path, bad, message):
    source = Bundle.open(GOLDEN)
    with pytest.raises(ConfigError, match=message) as caught:
        publish_bundle(source, shipped(source), tmp_path / "out", bad)
    assert "alice" not in str(caught.value) and not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["", "a/b", "..\\b", 7])
def test_a_name_that_is_not_a_folder_name_is_refused(tmp_path, name):
    source = Bundle.open(GOLDEN)
    with pytest.raises(ConfigError, match="^the bundle's name must be a folder name, not a path or nothing$"):
        publish_bundle(source, shipped(source), tmp_path / "out", record(), name=name)
    assert not (tmp_path / "out").exists()


def test_a_table_that_does_not_fit_is_refused_before_anything_is_written(tmp_path):
    source = Bundle.open(GOLDEN)
    table = shipped(source)
    for bad in (table[:-1], table[:, :-1], np.where(np.arange(table.shape[1]) == 3, np.nan, table)):
        with pytest.raises(ConfigError, match=r"the federated table must be finite and 56 x \d+"):
            publish_bundle(source, bad, tmp_path / "out", record())
        assert not (tmp_path / "out").exists()
    publish_bundle(source, table.astype(np.float64), tmp_path / "wide", record())  # any float dtype


def edited_copy(tmp_path: Path, change) -> Path:
    """The golden bundle copied and changed by `change(root, manifest dict)`, made consistent again."""
    root = tmp_path / "source"
    shutil.copytree(GOLDEN, root)
    data = json.loads((root / "manifest.json").read_text())
    change(root, data)
    for name, entry in data["files"].items():
        entry.update(bytes=(root / name).stat().st_size, sha256=sha256_file(root / name))
    m = Manifest.from_dict(data)
    data["embedding_space"] = embedding_space_id(m.files, m.models, m.items)
    (root / "manifest.json").write_text(json.dumps(data))
    return root


def test_the_old_tables_top_k_is_not_carried_under_another_name(tmp_path):
    def rename(root, data):
        (root / "reference/top_k.npy").rename(root / "reference/top_k_v1.npy")
        data["files"]["reference/top_k_v1.npy"] = data["files"].pop("reference/top_k.npy")
        data["reference"]["top_k"] = "reference/top_k_v1.npy"

    source = Bundle.open(edited_copy(tmp_path, rename))
    got = publish_bundle(source, shipped(source)[::-1].copy(), tmp_path / "new", record())
    assert "reference/top_k_v1.npy" not in got.files and not (tmp_path / "new" / "reference/top_k_v1.npy").exists()
    assert got.reference["top_k"] in got.files


def test_the_table_keeps_the_parents_precision_and_the_bundle_its_format(tmp_path):
    from edgerec.export.convert import convert_bundle

    def half(root, data):
        table = shipped(Bundle.open(GOLDEN))
        np.save(root / "items/embeddings.npy", table.astype(np.float16))
        (root / "items/scales.npy").unlink()
        del data["files"]["items/scales.npy"]
        data["items"]["embeddings"] = {"file": "items/embeddings.npy", "dtype": "float16"}

    source = Bundle.open(edited_copy(tmp_path, half))
    got = publish_bundle(source, shipped(source), tmp_path / "half", record())
    assert got.items.embeddings.dtype == "float16" and "items/scales.npy" not in got.files
    assert np.array_equal(shipped(Bundle.open(tmp_path / "half")), shipped(source))
    old = Bundle.open(convert_bundle(GOLDEN, tmp_path / "v2", format_version=2))
    got = publish_bundle(old, shipped(old), tmp_path / "v2-new", record())
    assert got.format_version == 2 == Bundle.open(tmp_path / "v2-new").manifest.format_version
    with pytest.raises(BundleError, match="exists and is not empty"):
        publish_bundle(old, shipped(old), tmp_path / "v2-new", record())


def test_without_reference_histories_the_old_tables_baseline_is_not_kept(tmp_path):
    def forget(root, data):
        for key in ("histories", "user_vectors", "top_k"):  # the schema wants all three or none
            data["reference"].pop(key)

    source = Bundle.open(edited_copy(tmp_path, forget))
    got = publish_bundle(source, shipped(source)[::-1].copy(), tmp_path / "new", record())
    assert "monitoring" not in got.metrics and "monitoring" in source.manifest.metrics
    assert Bundle.open(tmp_path / "new").manifest.reference == got.reference == source.manifest.reference
