"""Guards of compress/budget.py and export/size_check.py (mutation note 39): the estimate's exact bytes and what
they are made of, which students fit (the boundary, the measured ones, largest first), the floor a budget must
reach, and how the students that fit are trained and the best kept. Fakes stand for the models and the trainer
where only the choice is under test; the estimate, the floor and the measurement run on real models."""

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from edgerec.compress import budget
from edgerec.compress.budget import (
    distill_to_budget,
    estimate_bytes,
    estimate_config,
    fitting_configs,
    fresh_model,
    graph_margin,
    jittered,
)
from edgerec.compress.distill import DistillConfig
from edgerec.data import SynthConfig, synth_dataset
from edgerec.data.split import leave_last_out
from edgerec.errors import ConfigError
from edgerec.export.size_check import verify_bytes
from edgerec.models.config import ModelConfig
from edgerec.models.train import TrainConfig
from edgerec.runtime.bundle import BundleWriter
from edgerec.runtime.item_table import StoredTable

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest.py


def _world(items: int):
    dataset = synth_dataset(SynthConfig(users=150, items=items, events=6_000, seed=11))
    return dataset, leave_last_out(dataset)


@pytest.fixture(scope="module")
def world():
    return _world(500)


def _cfg(dim=16, layers=1, max_len=8, **more) -> ModelConfig:
    return ModelConfig(dim=dim, layers=layers, heads=1, max_len=max_len, **more)


# ---------------------------------------------------------------- the estimate, on real fresh models


def test_the_estimate_of_one_student_by_hand(world):
    # encoder: graph 6,144 + one layer's 4,096 + the attention mask 4 x 8 x 8 = 256
    #   item input table 501 x 16 int8 + 5 bytes a row (scale, zero point) + 96 for the tensor = 10,617
    #   positions 8 x 16, added so float: 512 + 96 = 608
    #   the block: qkv 48x16, out 16x16, ff 64x16 and 16x64 int8 (12 x 16^2 = 3,072) + 5 bytes a channel of
    #   their larger side (5 x 192 = 960) + biases and norms in float (4 x 208 = 832) + 12 tensors x 96 = 6,016
    #   the final norm 2 x (4 x 16 + 96) = 320
    # table: 500 x 16 int8 + 16 float scales + the two .npy files' 128-byte headers = 8,320
    assert estimate_config(_cfg(16, 1), *world) == {"encoder": 28_057, "table": 8_320, "total": 36_377}


def test_a_layer_costs_its_graph_and_its_block(world):
    one, two = (estimate_config(_cfg(16, n), *world) for n in (1, 2))
    assert two["encoder"] - one["encoder"] == 4_096 + 6_016 and two["table"] == one["table"]


@pytest.mark.parametrize("dim", [8, 16])
def test_every_item_costs_two_dims_and_five_bytes(world, dim):
    small, large = estimate_config(_cfg(dim), *world), estimate_config(_cfg(dim), *_world(600))
    assert large["encoder"] - small["encoder"] == 100 * (dim + 5)  # an int8 input row, its scale and zero point
    assert large["table"] - small["table"] == 100 * dim  # an int8 table row
    assert large["total"] - small["total"] == 100 * (2 * dim + 5)


@pytest.mark.parametrize("dim,max_len", [(32, 32), (16, 16), (8, 501)])
def test_positions_are_the_only_float_matrix_whatever_the_history_length(world, dim, max_len):
    # a history as long as the width (dim x dim weights) or as the table (501 rows) once counted those as float
    shorter, longer = (estimate_config(_cfg(dim, 2, n), *world) for n in (max_len - 1, max_len))
    assert longer["total"] - shorter["total"] == 4 * dim + 4 * (max_len ** 2 - (max_len - 1) ** 2)


def test_shipped_bytes_do_not_shrink_with_own_rows_or_hash_buckets(world):
    plain = estimate_config(_cfg(16), *world)
    assert estimate_config(_cfg(16, own_rows=50, hash_buckets=64), *world) == plain


def test_the_table_estimate_is_the_bundles_table_files(world, tmp_path):
    model = fresh_model(_cfg(16), *world)
    assert model.training is False
    with torch.no_grad():
        stored = StoredTable.quantize(model.item_vectors()[1:].numpy(), "int8")
    writer = BundleWriter(tmp_path / "b", "b")
    entry = stored.manifest_entry(writer)
    files = (writer.root / entry["file"]).stat().st_size + (writer.root / entry["scales"]).stat().st_size
    assert estimate_bytes(model)["table"] == files == 8_320


def test_jitter_moves_every_weight_a_little_and_the_same_way_each_time(world):
    def fresh():  # the same initial weights each time: the test compares the jitter, not the initialisation
        torch.manual_seed(0)
        return fresh_model(_cfg(16), *world)

    plain, moved = fresh(), fresh()
    assert jittered(moved) is moved
    again = jittered(fresh())
    for (name, before), after, twin in zip(plain.named_parameters(), moved.parameters(), again.parameters()):
        step = (after - before).detach()
        assert 1e-4 < float(step.std()) < 1e-2 and float(step.abs().max()) < 1e-2, name
        assert torch.equal(after, twin), name
    biases = [p for n, p in moved.named_parameters() if n.endswith("bias")]
    assert len({tuple(p.detach().flatten()[:4].tolist()) for p in biases}) == len(biases)  # no two alike


# ---------------------------------------------------------------- which students fit (fake models, exact sizes)


class Stub:
    def __init__(self, config):
        self.config, self.jittered = config, False


def sized(monkeypatch, sizes: dict, *, real: dict | None = None):
    """fresh_model, estimate_bytes and jittered replaced: a student's estimate is sizes[(dim, layers)].
    Returns the configs built and a `measure` giving real[(dim, layers)] (and the models it was given)."""
    built, measured = [], []

    def fresh(config, dataset, split):
        built.append(config)
        return Stub(config)

    def estimate(model):
        total = sizes[(model.config.dim, model.config.layers)]
        return {"encoder": total - 100, "table": 100, "total": total}

    def jitter(model):
        model.jittered = True
        return model

    def measure(model):
        measured.append(model)
        total = real[(model.config.dim, model.config.layers)]
        return {"encoder": total - 50, "table": 50, "total": total}

    monkeypatch.setattr(budget, "fresh_model", fresh)
    monkeypatch.setattr(budget, "estimate_bytes", estimate)
    monkeypatch.setattr(budget, "jittered", jitter)
    return built, measure, measured


def _shapes(fits):
    return [(c.dim, c.layers, e["total"]) for c, e in fits]


WORLD = (SimpleNamespace(n_items=1_234), None)
SIZES = {(8, 1): 8_500, (8, 2): 9_000, (16, 1): 16_500, (16, 2): 17_000, (32, 1): 32_500, (32, 2): 33_000}


def test_the_largest_students_that_fit_come_first(monkeypatch):
    built, _, _ = sized(monkeypatch, SIZES)
    base = ModelConfig(heads=4, max_len=12, dropout=0.3)
    fits = fitting_configs(base, *WORLD, 17_000, widths=(8, 16, 32), layers=(1, 2), keep=3)
    assert _shapes(fits) == [(16, 2, 17_000), (16, 1, 16_500), (8, 2, 9_000)]  # 17,000 is within 17,000
    assert [(c.dim, c.layers) for c in built] == [(8, 1), (8, 2), (16, 1), (16, 2), (32, 1), (32, 2)]
    assert all((c.heads, c.max_len, c.dropout) == (4, 12, 0.3) for c in built)  # the rest of the base kept
    assert _shapes(fitting_configs(base, *WORLD, 16_999, widths=(8, 16, 32), layers=(1, 2), keep=2)) == [
        (16, 1, 16_500), (8, 2, 9_000)]
    assert len(fitting_configs(base, *WORLD, 10**9, widths=(8, 16, 32), layers=(1, 2), keep=10)) == 6
    assert "measured" not in fits[0][1]


def test_heads_divide_each_width(monkeypatch):
    built, _, _ = sized(monkeypatch, {(d, n): 1 for d in budget.WIDTHS for n in budget.LAYERS})
    fitting_configs(ModelConfig(heads=3, max_len=8), *WORLD, 10)
    assert [(c.dim, c.layers, c.heads) for c in built] == [
        (d, n, 3 if d % 3 == 0 else 1) for d in (8, 16, 24, 32, 48, 64, 96, 128, 192, 256) for n in (1, 2)]


def test_students_under_or_over_by_at_most_the_graph_margin_are_exported_and_their_real_bytes_decide(monkeypatch):
    """Every student that may fit is exported, the ones the estimate fits too: ranked by estimates beside
    exported bytes, a student of 39 KB was kept over one of 52 KB that fit 60 KB (estimates overshoot)."""
    limit = 20_000
    sizes = {(8, 1): 10_000, (8, 2): 12_000,
             (16, 1): limit,  # fits by its estimate: exported, smaller for real
             (16, 2): limit + 1,  # just over: exported, and over for real
             (32, 1): limit + graph_margin(_cfg(32, 1)),  # at the margin: exported, and under for real
             (32, 2): limit + graph_margin(_cfg(32, 2)) + 1,  # past the margin: not exported
             (64, 1): limit + graph_margin(_cfg(64, 1)) + 1, (64, 2): 90_000}
    real = {(8, 1): 9_000, (8, 2): 11_000, (16, 1): 18_000, (16, 2): limit + 1, (32, 1): 19_000}
    built, measure, measured = sized(monkeypatch, sizes, real=real)
    fits = fitting_configs(ModelConfig(heads=1, max_len=8), *WORLD, limit, widths=(8, 16, 32, 64), layers=(1, 2),
                           keep=3, measure=measure)
    assert [(m.config.dim, m.config.layers, m.jittered) for m in measured] == [
        (8, 1, True), (8, 2, True), (16, 1, True), (16, 2, True), (32, 1, True)]
    assert _shapes(fits) == [(32, 1, 19_000), (16, 1, 18_000), (8, 2, 11_000)]
    assert fits[0][1] == {"encoder": 18_950, "table": 50, "total": 19_000, "measured": True}
    assert graph_margin(_cfg(32, 1)) == 10_240 + 256 and graph_margin(_cfg(32, 2)) == 14_336 + 256  # + 4 L^2
    assert graph_margin(_cfg(32, 1, max_len=200)) == 10_240 + 160_000  # the masks: measured, not guessed


def test_a_budget_nothing_fits_names_the_smallest_students_bytes(monkeypatch):
    sized(monkeypatch, SIZES)
    with pytest.raises(ConfigError) as caught:
        fitting_configs(ModelConfig(heads=2), *WORLD, 8_499, widths=(16, 8, 32), layers=(1, 2))
    assert str(caught.value) == (
        "no student fits 8,499 bytes: the smallest (dim 8, 1 layer) needs about 8,500, of which 25,914 are 21 bytes "
        "for each of the 1,234 items (the encoder's input row and the item table's row; --own-rows and "
        "--hash-buckets do not shrink them) and the rest the graph and its layer; that is the floor for this "
        "catalog: raise --max-bytes to at least 8,500")
    assert fitting_configs(ModelConfig(heads=2), *WORLD, 8_500, widths=(16, 8, 32), layers=(1, 2))[0][0].dim == 8


def test_with_a_measure_the_floor_is_what_the_smallest_student_exports_to(monkeypatch):
    sizes = {(8, 1): 30_000, (8, 2): 40_000}
    _, measure, measured = sized(monkeypatch, sizes, real={(8, 1): 27_000, (8, 2): 36_000})
    with pytest.raises(ConfigError) as caught:  # far under every estimate: the smallest is exported to name it
        fitting_configs(ModelConfig(heads=1), *WORLD, 1_000, widths=(8,), layers=(2, 1), measure=measure)
    text = str(caught.value)
    assert text.startswith("no student fits 1,000 bytes: the smallest (dim 8, 1 layer) exports to 27,000, of which ")
    assert text.endswith("the rest the graph and its layer; that is the floor for this catalog: raise --max-bytes "
                         "to at least 27,000")
    assert [(m.config.layers, m.jittered) for m in measured] == [(1, True)]
    measured.clear()
    with pytest.raises(ConfigError, match="exports to 27,000, .* at least 27,000$"):  # measured once, not twice
        fitting_configs(ModelConfig(heads=1), *WORLD, 26_999, widths=(8,), layers=(1, 2), measure=measure)
    assert [m.config.layers for m in measured] == [1, 2]
    fits = fitting_configs(ModelConfig(heads=1), *WORLD, 27_000, widths=(8,), layers=(1, 2), measure=measure)
    assert _shapes(fits) == [(8, 1, 27_000)] and fits[0][1]["measured"]


def test_a_smallest_student_far_under_its_estimate_is_measured_when_nothing_else_fits(monkeypatch):
    # past the graph margin the loop does not export it; with nothing else fitting, it is exported all the same
    _, measure, measured = sized(monkeypatch, {(8, 1): 50_000, (8, 2): 60_000}, real={(8, 1): 20_000})
    fits = fitting_configs(ModelConfig(heads=4), *WORLD, 20_000, widths=(8,), layers=(1, 2), measure=measure)
    assert [(c.dim, c.layers, c.heads) for c, _ in fits] == [(8, 1, 4)]
    assert fits[0][1] == {"encoder": 19_950, "table": 50, "total": 20_000, "measured": True}
    with pytest.raises(ConfigError, match="exports to 20,000, .* at least 20,000$"):
        fitting_configs(ModelConfig(heads=4), *WORLD, 19_999, widths=(8,), layers=(1, 2), measure=measure)
    assert [(m.config.layers, m.jittered) for m in measured] == [(1, True), (1, True)]


def test_a_real_floor_is_the_least_budget_that_fits(world):
    dataset, split = world
    exported = {}

    def measure(model):  # a fresh jittered student exports to the same bytes every time: once is enough
        key = (model.config.dim, model.config.layers)
        if key not in exported:
            exported[key] = verify_bytes(model, split)
        return exported[key]

    base = ModelConfig(heads=1, max_len=8)
    with pytest.raises(ConfigError) as caught:
        fitting_configs(base, dataset, split, 1_000, widths=(8,), layers=(1,), measure=measure)
    floor = int(str(caught.value).rpartition(" ")[2].replace(",", ""))
    assert floor == exported[(8, 1)]["total"] < estimate_config(_cfg(8), *world)["total"]
    (cfg, estimate), = fitting_configs(base, dataset, split, floor, widths=(8,), layers=(1,), measure=measure)
    assert (cfg.dim, cfg.layers, estimate["total"], estimate["measured"]) == (8, 1, floor, True)
    with pytest.raises(ConfigError, match=f"at least {floor:,}$"):
        fitting_configs(base, dataset, split, floor - 1, widths=(8,), layers=(1,), measure=measure)


# ---------------------------------------------------------------- training the students that fit (fake trainer)


CANDIDATES = [
    (_cfg(32, 1), {"encoder": 29_000, "table": 1_000, "total": 30_000, "measured": True}),
    (_cfg(16, 2), {"encoder": 24_000, "table": 1_000, "total": 25_000}),
    (_cfg(16, 1), {"encoder": 19_000, "table": 1_000, "total": 20_000}),
]


def trainer(monkeypatch, ndcg: dict):
    """fitting_configs, distill_model, Evaluator, ModelScorer and save_checkpoint replaced by recorders."""
    calls = {"fits": [], "distill": [], "evaluate": [], "saved": []}

    def fits(base, dataset, split, max_bytes, keep=3, measure=None, widths=None, layers=None):
        calls["fits"].append((base, max_bytes, keep, measure))
        calls.setdefault("shapes", []).append((list(widths or []), list(layers or [])))
        return CANDIDATES[:keep]

    def distill(dataset, split, teacher, cfg, train, kd):
        calls["distill"].append((teacher, (cfg.dim, cfg.layers), train, kd))
        model = SimpleNamespace(key=(cfg.dim, cfg.layers), state_dict=lambda: {"w": (cfg.dim, cfg.layers)})
        return SimpleNamespace(model=model, items=f"items {cfg.dim}x{cfg.layers}",
                               info={"stopped_by": f"patience {cfg.dim}", "epochs_run": cfg.dim})

    class Evaluator:
        def __init__(self, split, catalog, k=10):
            self.k = k

        def evaluate(self, scorer, phase="test"):
            calls["evaluate"].append((self.k, phase, scorer.key))
            return {"NDCG@10": ndcg[scorer.key], "HR@10": 1.0}

    monkeypatch.setattr(budget, "fitting_configs", fits)
    monkeypatch.setattr(budget, "distill_model", distill)
    monkeypatch.setattr(budget, "Evaluator", Evaluator)
    monkeypatch.setattr(budget, "ModelScorer", lambda model: model)
    monkeypatch.setattr(budget, "save_checkpoint", lambda *args: calls["saved"].append(args))
    return calls


DATA = SimpleNamespace(catalog=None)


def test_each_student_gets_its_share_of_the_time_and_the_best_on_validation_is_kept(monkeypatch, tmp_path):
    calls = trainer(monkeypatch, {(32, 1): 0.20, (16, 2): 0.25, (16, 1): 0.25})  # a tie: the first is kept
    said, measure, kd, train = [], object(), DistillConfig(top_k=8), TrainConfig(steps=40, max_minutes=6.0)
    result = distill_to_budget(DATA, "split", "teacher", _cfg(), train, kd, np.int64(25_000), out=tmp_path,
                               keep=3, progress=said.append, measure=measure)
    assert calls["fits"] == [(_cfg(), 25_000, 3, measure)]
    assert said == ["student dim 32, 1 layer(s): exported 30,000 bytes", "student dim 16, 2 layer(s): about 25,000 bytes",
                    "student dim 16, 1 layer(s): about 20,000 bytes"]
    assert [(t, key, tr.max_minutes, tr.steps, k) for t, key, tr, k in calls["distill"]] == [
        ("teacher", (32, 1), 2.0, 40, kd), ("teacher", (16, 2), 2.0, 40, kd), ("teacher", (16, 1), 2.0, 40, kd)]
    assert calls["evaluate"] == [(10, "val", (32, 1)), (10, "val", (16, 2)), (10, "val", (16, 1))]
    curve = [{"dim": 32, "layers": 1, "estimated_bytes": 30_000, "bytes_from": "export", "val_NDCG@10": 0.20,
              "stopped_by": "patience 32"},
             {"dim": 16, "layers": 2, "estimated_bytes": 25_000, "bytes_from": "estimate", "val_NDCG@10": 0.25,
              "stopped_by": "patience 16"},
             {"dim": 16, "layers": 1, "estimated_bytes": 20_000, "bytes_from": "estimate", "val_NDCG@10": 0.25,
              "stopped_by": "patience 16"}]
    assert result.curve == curve
    assert (result.config, result.estimate, result.model.key) == (CANDIDATES[1][0], CANDIDATES[1][1], (16, 2))
    info = {"stopped_by": "patience 16", "epochs_run": 16, "max_bytes": 25_000, "estimated_bytes": CANDIDATES[1][1],
            "size_curve": curve}
    assert result.info == info and type(result.info["max_bytes"]) is int
    assert calls["saved"] == [(tmp_path, {"w": (16, 2)}, CANDIDATES[1][0], "items 16x2", info)]


def test_without_a_time_cap_or_a_folder_nothing_is_split_or_saved(monkeypatch):
    calls = trainer(monkeypatch, {(32, 1): 0.3, (16, 2): 0.1})
    result = distill_to_budget(DATA, "split", "teacher", _cfg(), TrainConfig(), DistillConfig(), 10**6, keep=2)
    assert [tr.max_minutes for _, _, tr, _ in calls["distill"]] == [None, None]
    assert result.model.key == (32, 1) and calls["saved"] == [] and calls["fits"][0][2:] == (2, None)


def test_no_candidate_to_train_is_refused_before_any_work(monkeypatch):
    calls = trainer(monkeypatch, {})
    with pytest.raises(ConfigError) as caught:
        distill_to_budget(DATA, "split", "teacher", _cfg(), TrainConfig(), DistillConfig(), 10**6, keep=0)
    assert str(caught.value) == "--candidates must be at least 1 student to train (got 0)"
    assert calls["fits"] == [] and calls["distill"] == []


# ---------------------------------------------------------------- what the bundle holds (a real export)


def test_the_measured_bytes_are_the_bundles_files(tmp_path):
    from edgerec.data import write_synth
    from edgerec.data.store import load_dataset
    from edgerec.export.bundle_builder import ExportConfig, export_bundle
    from edgerec.models.checkpoint import load_model
    from edgerec.models.train import train_model

    write_synth(SynthConfig(users=60, items=200, events=2_000, seed=11), tmp_path / "data")
    dataset = load_dataset(tmp_path / "data")
    split = leave_last_out(dataset)
    train_model(dataset, split, _cfg(8, dropout=0.0), TrainConfig(epochs=1, eval_users=0), out=tmp_path / "ckpt")
    export_bundle(tmp_path / "ckpt", tmp_path / "data", tmp_path / "bundle",
                  ExportConfig(formats=("onnx",), parity_users=20, reference_users=8, evaluate=False, hubness=False,
                               priors=False, min_top10_agreement=0.0))
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "bundle").rglob("*") if p.is_file()}
    measured = verify_bytes(load_model(tmp_path / "ckpt")[0].eval(), split)
    assert measured == {"encoder": sizes["user_encoder.onnx"], "table": sizes["embeddings.npy"] + sizes["scales.npy"],
                        "total": sizes["user_encoder.onnx"] + sizes["embeddings.npy"] + sizes["scales.npy"]}
    assert measured["table"] == 200 * 8 + 4 * 8 + 2 * 128


# ---------------------------------------------------------------- found by the mutation run of note 42


def test_jitter_neither_reads_nor_moves_the_global_random_state(world):
    """The jitter has its own generator: the same moves whatever torch's global state, which it leaves
    as it found it (a caller's seeded run is not shifted by measuring a student)."""
    torch.manual_seed(0)
    first = fresh_model(_cfg(16), *world)
    second = copy.deepcopy(first)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    jittered(first)
    assert torch.equal(torch.get_rng_state(), state)
    torch.rand(7)  # another global state
    jittered(second)
    for (name, a), b in zip(first.named_parameters(), second.parameters()):
        assert torch.equal(a, b), name


def test_a_fresh_model_has_the_configs_item_rows(world):
    """fresh_model builds the model `config` describes: own rows and hashed buckets as it says."""
    assert fresh_model(_cfg(16, own_rows=5, hash_buckets=7), *world).item_data.n_id_rows == 5 + 1 + 7
    assert fresh_model(_cfg(16), *world).item_data.n_id_rows == 500 + 1  # one row each, and padding


def test_a_floor_of_two_layers_says_layers(monkeypatch):
    sized(monkeypatch, {(8, 2): 9_000})
    with pytest.raises(ConfigError) as caught:
        fitting_configs(ModelConfig(heads=2), *WORLD, 100, widths=(8,), layers=(2,))
    text = str(caught.value)
    assert text.startswith("no student fits 100 bytes: the smallest (dim 8, 2 layers) needs about 9,000, of which ")
    assert "and the rest the graph and its layers; that is the floor" in text


def test_three_students_by_default_as_the_cli_says(monkeypatch):
    sized(monkeypatch, SIZES)
    assert len(fitting_configs(ModelConfig(heads=1), *WORLD, 10**9, widths=(8, 16, 32), layers=(1, 2))) == 3
    calls = trainer(monkeypatch, {(32, 1): 0.3, (16, 2): 0.1, (16, 1): 0.2})
    distill_to_budget(DATA, "split", "teacher", _cfg(), TrainConfig(), DistillConfig(), 10**6)
    assert calls["fits"][0][2] == 3 and len(calls["distill"]) == 3


def test_a_two_tower_is_sized_once_per_width(monkeypatch):
    """A two-tower has no layers: each width was trained twice, once labelled with 2 layers it does not have."""
    built, _, _ = sized(monkeypatch, {(d, n): 1_000 for d in (8, 16) for n in (1, 2)})
    fitting_configs(ModelConfig(arch="two-tower", heads=1, max_len=8), *WORLD, 50_000, widths=(8, 16), layers=(1, 2))
    assert [(c.dim, c.layers) for c in built] == [(8, 1), (16, 1)]


def test_students_are_no_wider_and_no_deeper_than_a_trained_teacher(monkeypatch):
    """A budget far above the teacher chose a 'student' of dim 256 and 2 layers for a dim-16, 1-layer teacher
    (41 times its bytes); a user's own teacher states no width and leaves every candidate in."""
    calls = trainer(monkeypatch, {(32, 1): 0.3, (16, 2): 0.1, (16, 1): 0.2})
    teacher = SimpleNamespace(config=SimpleNamespace(dim=16, layers=1))
    said = []
    distill_to_budget(DATA, "split", teacher, _cfg(), TrainConfig(), DistillConfig(), 10**12, progress=said.append)
    assert calls["shapes"][-1] == ([8, 16], [1])
    assert any("at most the teacher's width (16)" in line for line in said)
    distill_to_budget(DATA, "split", "own teacher", _cfg(), TrainConfig(), DistillConfig(), 10**12)
    assert calls["shapes"][-1] == (list(budget.WIDTHS), list(budget.LAYERS))
