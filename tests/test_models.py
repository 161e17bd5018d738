"""Recommender models: masking, training, checkpoints, resume, warm start, distillation, DDP."""

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from edgerec.compress.distill import DistillationLoss, DistillConfig, teacher_targets
from edgerec.data import SynthConfig, synth_dataset
from edgerec.data.split import leave_last_out
from edgerec.errors import ConfigError, ModelError
from edgerec.models.checkpoint import load_model
from edgerec.models.config import ModelConfig
from edgerec.models.items import build_item_data
from edgerec.models.recommenders import build_model
from edgerec.models.train import TrainConfig, item_counts, train_model, training_windows

TINY = SynthConfig(users=150, items=500, events=6_000, seed=11)
FAST = TrainConfig(epochs=2, batch_size=32, eval_users=0, seed=0)


@pytest.fixture(scope="module")
def tiny():
    dataset = synth_dataset(TINY)
    return dataset, leave_last_out(dataset)


def tiny_model(tiny, arch="sasrec", **kw):
    dataset, split = tiny
    cfg = ModelConfig(arch=arch, dim=16, layers=1, heads=2, max_len=8, dropout=0.0, **kw)
    torch.manual_seed(0)
    return build_model(cfg, build_item_data(dataset.catalog, item_counts(split),
                                            own_rows=kw.get("own_rows"), hash_buckets=kw.get("hash_buckets", 0)))


@pytest.mark.parametrize("arch", ["sasrec", "two-tower"])
def test_shapes_and_padding_never_changes_the_output(tiny, arch):
    model = tiny_model(tiny, arch).eval()
    history = torch.tensor([[5, 9, 3]])
    padded = torch.tensor([[0, 0, 0, 0, 0, 5, 9, 3]])
    with torch.no_grad():
        short, long = model.user_vector(history), model.user_vector(padded)
        assert short.shape == (1, 16)
        assert torch.allclose(short, long, atol=1e-5)
        assert torch.allclose(short.norm(dim=-1), torch.ones(1), atol=1e-5)
        deployed = model.deploy()(padded)
    assert torch.allclose(deployed, long, atol=1e-5)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_user_vectors_skip_work_without_changing_the_newest_state(tiny, layers):
    """user_vector and deployed encoders run the last block for the newest position only."""
    model = tiny_model(tiny).eval()
    model.encoder = type(model.encoder)(16, layers, 2, 8)
    model.eval()
    ids = torch.tensor([[0, 0, 0, 5, 9, 3, 7, 1], [4, 8, 15, 16, 23, 42, 7, 9], [0] * 7 + [6]])
    with torch.no_grad():
        every_position = model.hidden(ids)[:, -1]
        newest = model.encoder(model.items(ids), ids > 0, newest_only=True)
        assert newest.shape == (3, 1, 16)
        assert torch.allclose(model.user_vector(ids), every_position, atol=1e-5)
        assert torch.allclose(model.deploy()(ids), every_position, atol=1e-5)


@pytest.mark.parametrize("arch", ["sasrec", "two-tower"])
def test_future_items_never_leak_into_earlier_positions(tiny, arch):
    model = tiny_model(tiny, arch).eval()
    a = torch.tensor([[4, 8, 15, 16, 23, 42, 7, 9]])
    b = a.clone()
    b[0, 5:] = torch.tensor([99, 98, 97])
    with torch.no_grad():
        ha, hb = model.hidden(a), model.hidden(b)
    assert torch.allclose(ha[0, :5], hb[0, :5], atol=1e-5)
    assert not torch.allclose(ha[0, 5:], hb[0, 5:], atol=1e-3)


def test_windows_cover_every_transition_once(tiny):
    _, split = tiny
    windows = training_windows(split.train, 8)
    targets = ((windows[:, 1:] > 0) & (windows[:, :-1] > 0)).sum()
    assert targets == sum(max(n - 1, 0) for n in split.train.lengths())


def test_training_improves_and_checkpoint_round_trips(tiny, tmp_path):
    dataset, split = tiny
    cfg = ModelConfig(dim=16, layers=1, max_len=8, dropout=0.0)
    result = train_model(dataset, split, cfg, TrainConfig(epochs=3, batch_size=32, eval_users=0), out=tmp_path)
    losses = [h["loss"] for h in result.info["history"]]
    assert losses[-1] < losses[0]
    model, ckpt = load_model(tmp_path)
    assert ckpt.info["best_epoch"] >= 1 and "val_NDCG@10" in ckpt.info
    ids = torch.tensor([[0, 0, 0, 0, 1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.allclose(model.user_vector(ids), result.model.user_vector(ids), atol=1e-6)
    assert not any(p.suffix == ".pt" or p.suffix == ".pkl" for p in tmp_path.iterdir())
    json.loads((tmp_path / "config.json").read_text())  # plain JSON, no pickle


def test_same_seed_same_model(tiny):
    dataset, split = tiny
    cfg = ModelConfig(dim=16, layers=1, max_len=8)
    a = train_model(dataset, split, cfg, FAST).model
    b = train_model(dataset, split, cfg, FAST).model
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), ka


def test_resume_continues_where_it_stopped(tiny, tmp_path):
    dataset, split = tiny
    cfg = ModelConfig(dim=16, layers=1, max_len=8)
    full = train_model(dataset, split, cfg, TrainConfig(epochs=3, batch_size=32, eval_users=0, patience=9))
    # interrupted (Ctrl-C) on the first batch of its second epoch, after the first was saved
    def interrupt(kind, done, total, values):
        if kind == "train" and values["epoch"] == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train_model(dataset, split, cfg, TrainConfig(epochs=3, batch_size=32, eval_users=0, patience=9),
                    out=tmp_path, progress=interrupt)
    resumed = train_model(dataset, split, cfg, TrainConfig(epochs=3, batch_size=32, eval_users=0, patience=9),
                          out=tmp_path, resume=True)
    assert resumed.info["epochs_run"] == 3
    assert [round(h["loss"], 5) for h in resumed.info["history"]] == [round(h["loss"], 5) for h in full.info["history"]]


def test_warm_start_keeps_old_items_and_learns_new_ones(tmp_path):
    old_data = synth_dataset(TINY)
    old = train_model(old_data, leave_last_out(old_data), ModelConfig(dim=16, layers=1, max_len=8), FAST).model
    new_data = synth_dataset(SynthConfig(users=150, items=550, events=6_000, seed=12))
    new_split = leave_last_out(new_data)
    warm = train_model(new_data, new_split, ModelConfig(dim=16, layers=1, max_len=8),
                       TrainConfig(epochs=1, batch_size=32, eval_users=0), init=old)
    assert warm.model.item_data.n_items == 550
    # an item both catalogs share keeps its id row, and starts from the old weights
    shared = old_data.catalog.item_ids[10]
    new_row = new_data.catalog.item_ids.index(shared) + 1
    assert warm.items.id_rows[new_row] == old.item_data.id_rows[11]
    assert warm.items.vocab["creator"][: len(old.item_data.vocab["creator"])] == old.item_data.vocab["creator"]


def test_distillation_loss_decreases(tiny):
    dataset, split = tiny
    teacher = train_model(dataset, split, ModelConfig(dim=32, layers=2, max_len=8), FAST).model
    student_cfg = ModelConfig(dim=8, layers=1, heads=1, max_len=8, own_rows=100, hash_buckets=20)
    windows = training_windows(split.train, 8)
    targets = teacher_targets(teacher, windows, top_k=8)
    hidden, top, logits = targets
    assert hidden.shape == (len(windows), 8, 32) and top.shape == logits.shape == (len(windows), 8, 8)
    kd = DistillationLoss(teacher, targets, item_counts(split), 8, DistillConfig(top_k=8, negatives=32))
    student = build_model(student_cfg, build_item_data(dataset.catalog, item_counts(split), own_rows=100,
                                                       hash_buckets=20))
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    batch = torch.arange(min(64, len(windows)))
    w = torch.as_tensor(windows[batch.numpy()])
    losses = []
    for _ in range(30):
        hidden_s = student.hidden(w[:, :-1])
        loss = kd(student, hidden_s, (w[:, 1:] > 0) & (w[:, :-1] > 0), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    # a KL divergence: never below zero (a loss without that floor would also "decrease"; the exact
    # values are checked in test_distill_guard.py)
    assert min(losses) >= 0 and losses[-1] < 0.7 * losses[0]
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in teacher.parameters()) / 5


def test_damaged_checkpoints_are_reported(tmp_path):
    with pytest.raises(ModelError, match="not an edgerec checkpoint"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{nope")
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(ModelError, match="not JSON"):
        load_model(tmp_path)


def test_ddp_with_two_processes(tmp_path, small_data_dir):
    """torchrun launches two gloo processes; they finish with one checkpoint the same as both ranks'."""
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "edgerec.cli.main", "train", "--data", str(small_data_dir), "--out", str(out),
           "--dim", "16", "--layers", "1", "--max-len", "8", "--epochs", "2", "--eval-users", "0"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    model, ckpt = load_model(out)
    assert ckpt.info["processes"] == 2 and ckpt.info["epochs_run"] == 2
    assert np.isfinite(ckpt.info["val_NDCG@10"])


@pytest.mark.parametrize("values", [dict(heads=0), dict(layers=-1), dict(hash_buckets=-3), dict(own_rows=-1),
                                    dict(dropout=2.0), dict(dropout=float("nan")), dict(temperature=0.0)])
def test_impossible_model_settings_are_config_errors(values):
    with pytest.raises(ConfigError):
        ModelConfig(**values).validate()


@pytest.mark.parametrize("values", [dict(lr=float("nan")), dict(lr=-1.0), dict(weight_decay=float("inf")),
                                    dict(negatives=0), dict(eval_users=-1), dict(max_minutes=-1.0),
                                    dict(max_minutes=float("nan"))])
def test_impossible_training_settings_are_config_errors(values):
    with pytest.raises(ConfigError):
        TrainConfig(**values).validate()


def test_resume_without_an_interrupted_run_says_so(tiny, tmp_path):
    dataset, split = tiny
    with pytest.raises(ModelError, match="holds no interrupted run to resume"):
        train_model(dataset, split, ModelConfig(dim=16, layers=1, max_len=8), FAST, out=tmp_path, resume=True)


def _tag_sum_in_every_slot(embedder, index):
    """The item vector as summed before tag slots past the longest list were dropped (all MAX_TAGS slots)."""
    vec = embedder.ids(embedder.id_rows[index])
    codes = embedder.field_codes[index]
    for j, table in enumerate(embedder.fields):
        vec = vec + table(codes[..., j])
    tags = embedder.tag_codes[index]
    count = (tags > 0).sum(-1, keepdim=True).clamp(min=1).to(vec.dtype)
    return (vec + embedder.tags(tags).sum(-2) / count) * (index > 0).unsqueeze(-1).to(vec.dtype)


@pytest.mark.parametrize("tagged", [True, False])
def test_item_vectors_are_the_same_without_the_empty_tag_slots(tiny, tagged):
    """A bare listening log has no tags and a tagged catalog rarely fills the 8 slots: the vectors (the
    whole table, and a batch of histories with padding) are those of the sum over every slot."""
    dataset, split = tiny
    catalog = copy.copy(dataset.catalog)  # the fixture is shared
    if not tagged:
        catalog.tags = [() for _ in catalog.tags]
    items = build_item_data(catalog, item_counts(split))
    longest = int((items.tag_codes > 0).sum(1).max())
    assert (longest > 0) == tagged and longest < items.tag_codes.shape[1]
    model = build_model(ModelConfig(dim=8, layers=1, heads=1, max_len=6), items)
    embedder = model.items
    rows = torch.arange(embedder.n_rows)
    with torch.no_grad():
        assert torch.equal(embedder.table(), _tag_sum_in_every_slot(embedder, rows))
        batch = torch.as_tensor(split.train.last(6, np.arange(5)) + 1)
        batch[0] = 0  # a history of padding only
        assert torch.equal(embedder(batch), _tag_sum_in_every_slot(embedder, batch))
        assert embedder(batch[:0]).shape == (0, 6, 8)
