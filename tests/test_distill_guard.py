"""The distillation loss and the teacher's targets: exact values on cases small enough to work by hand."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from edgerec.compress.distill import DistillationLoss, DistillConfig, teacher_targets
from edgerec.errors import ConfigError


def kl(p_logits, q_logits, temperature=1.0):
    """KL(softmax(p / T) || softmax(q / T)), written out."""
    p = [math.exp(x / temperature) for x in p_logits]
    q = [math.exp(x / temperature) for x in q_logits]
    p = [x / sum(p) for x in p]
    q = [x / sum(q) for x in q]
    return sum(a * math.log(a / b) for a, b in zip(p, q))


class Model(nn.Module):
    """A stand-in for a NextItemModel: item vectors, a temperature, and hidden states from a lookup."""

    def __init__(self, vectors, temperature=1.0, max_len=8):
        super().__init__()
        self.vectors = torch.as_tensor(vectors, dtype=torch.float32)
        self.config = SimpleNamespace(temperature=temperature, max_len=max_len)

    def item_vectors(self):
        return self.vectors.clone()

    def hidden(self, ids):
        return self.vectors[ids]  # the hidden state at a position is that position's item vector


def loss_of(teacher_logits, student_logits, mask=None, temperature=1.0, weight=1.0, student_temperature=1.0,
            align=0.0):
    """The loss for one window of len(logits) positions, K = 2 candidates per position, no negatives."""
    length = len(teacher_logits)
    top = torch.tensor([[[1, 2]] * length], dtype=torch.int32)  # (windows=1, L, K)
    t_logits = torch.tensor([teacher_logits], dtype=torch.float16)
    hidden_t = torch.ones(1, length, 3, dtype=torch.float16)
    cfg = DistillConfig(top_k=2, negatives=0, weight=weight, temperature=temperature, align=align)
    loss = DistillationLoss(Model(np.zeros((3, 3))), (hidden_t, top, t_logits), np.ones(2), 1, cfg)
    # student: hidden 1-d, table rows 1 and 2 hold per-position logits through a per-position hidden state
    table = torch.tensor([[0.0], [1.0], [0.0]])
    student = SimpleNamespace(config=SimpleNamespace(temperature=student_temperature))
    s = torch.tensor(student_logits, dtype=torch.float32)  # (L, 2): logit of item 1 and of item 2
    # item 2's vector is 0, so shift each position so that only the difference of the two logits matters
    hidden = (s[:, 0] - s[:, 1]).reshape(1, length, 1)
    mask = torch.ones(1, length, dtype=torch.bool) if mask is None else torch.tensor([mask])
    return loss, float(loss(student, hidden, mask, torch.tensor([0]), table).detach())


def test_kl_term_by_hand():
    # teacher [0, ln 3] -> [1/4, 3/4]; student [0, 0] -> uniform
    _, value = loss_of([[0.0, math.log(3)]], [[0.0, 0.0]])
    assert value == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5), abs=1e-4)
    assert value == pytest.approx(kl([0.0, math.log(3)], [0.0, 0.0]), abs=1e-4)


def test_loss_is_zero_exactly_when_the_student_agrees_and_never_negative():
    _, same = loss_of([[1.0, -1.0]], [[2.0, 0.0]])  # the same difference: the same softmax
    assert same == pytest.approx(0.0, abs=1e-6)
    for student in ([[5.0, 0.0]], [[-3.0, 0.0]], [[0.0, 0.0]]):
        _, value = loss_of([[1.0, -1.0]], student)
        assert value == pytest.approx(kl([1.0, -1.0], student[0]), abs=1e-4) and value > 1e-3


def test_temperature_softens_both_lists_and_rescales_by_its_square():
    _, value = loss_of([[0.0, math.log(3)]], [[0.0, 0.0]], temperature=2.0)
    assert value == pytest.approx(4 * kl([0.0, math.log(3)], [0.0, 0.0], 2.0), abs=1e-4)
    _, weighted = loss_of([[0.0, math.log(3)]], [[0.0, 0.0]], weight=0.5)
    assert weighted == pytest.approx(0.5 * kl([0.0, math.log(3)], [0.0, 0.0]), abs=1e-4)
    # the student's own temperature divides its logits before the comparison
    _, own = loss_of([[0.0, 2.0]], [[0.0, 4.0]], student_temperature=2.0)
    assert own == pytest.approx(0.0, abs=1e-6)


def test_masked_positions_do_not_count_and_the_mean_is_over_positions():
    a, b = kl([0.0, math.log(3)], [0.0, 0.0]), kl([2.0, 0.0], [0.0, 1.0])
    _, both = loss_of([[0.0, math.log(3)], [2.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]])
    assert both == pytest.approx((a + b) / 2, abs=1e-4)
    _, first = loss_of([[0.0, math.log(3)], [2.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]], mask=[True, False])
    assert first == pytest.approx(a, abs=1e-4)


def test_shared_negatives_cover_the_catalog_once():
    """With as many negatives as items, the lists are the whole catalog, each item once."""
    teacher_items = np.array([[0.0], [1.0], [0.5], [-1.0], [2.0]])  # row 0 is padding
    student_items = torch.tensor([[0.0], [0.3], [1.0], [0.2], [-0.5]])
    teacher = Model(teacher_items)
    top = torch.tensor([[[4, 1]]], dtype=torch.int32)  # the teacher's two best for hidden state 1
    t_logits = torch.tensor([[[2.0, 1.0]]], dtype=torch.float16)
    hidden_t = torch.ones(1, 1, 1, dtype=torch.float16)
    cfg = DistillConfig(top_k=2, negatives=4)
    loss = DistillationLoss(teacher, (hidden_t, top, t_logits), np.ones(4), 1, cfg)
    student = SimpleNamespace(config=SimpleNamespace(temperature=1.0))
    value = float(loss(student, torch.ones(1, 1, 1), torch.ones(1, 1, dtype=torch.bool), torch.tensor([0]),
                       student_items))
    expected = kl([1.0, 0.5, -1.0, 2.0], [0.3, 1.0, 0.2, -0.5])  # items 1..4, teacher vs student
    assert value == pytest.approx(expected, abs=1e-4)


def test_more_shared_negatives_than_items_draw_the_whole_catalog():
    """`edgerec distill` (128 shared negatives) crashed in torch.multinomial on any catalog under 128 items."""
    teacher_items = np.array([[0.0], [1.0], [0.5], [-1.0], [2.0]])
    student_items = torch.tensor([[0.0], [0.3], [1.0], [0.2], [-0.5]])
    top = torch.tensor([[[4, 1]]], dtype=torch.int32)
    t_logits = torch.tensor([[[2.0, 1.0]]], dtype=torch.float16)
    loss = DistillationLoss(Model(teacher_items), (torch.ones(1, 1, 1, dtype=torch.float16), top, t_logits),
                            np.ones(4), 1, DistillConfig(top_k=2, negatives=128))
    student = SimpleNamespace(config=SimpleNamespace(temperature=1.0))
    value = float(loss(student, torch.ones(1, 1, 1), torch.ones(1, 1, dtype=torch.bool), torch.tensor([0]),
                       student_items))
    assert value == pytest.approx(kl([1.0, 0.5, -1.0, 2.0], [0.3, 1.0, 0.2, -0.5]), abs=1e-4)


def test_temperature_divides_the_students_logits_too():
    _, value = loss_of([[0.0, math.log(3)]], [[1.0, 0.0]], temperature=2.0)
    assert value == pytest.approx(4 * kl([0.0, math.log(3)], [1.0, 0.0], 2.0), abs=1e-4)


def test_shared_negatives_over_a_larger_catalog_with_both_model_temperatures():
    """30 items, all drawn as negatives: each counted once (no draw twice, the top-K not again), the
    teacher's shared scores divided by its temperature, the student's by its own."""
    n = 30
    rng = np.random.default_rng(5)
    teacher_items = np.vstack([[0.0], rng.normal(size=(n, 1))])
    student_items = torch.as_tensor(np.vstack([[0.0], rng.normal(size=(n, 1))]), dtype=torch.float32)
    own, own_logits = [5, 9], [1.5, -0.25]  # the teacher's stored logits for its top-2 (exact in fp16)
    cfg = DistillConfig(top_k=2, negatives=n)
    loss = DistillationLoss(Model(teacher_items, temperature=0.5), (torch.ones(1, 1, 1, dtype=torch.float16),
                            torch.tensor([[own]], dtype=torch.int32), torch.tensor([[own_logits]], dtype=torch.float16)),
                            np.ones(n), 1, cfg)
    student = SimpleNamespace(config=SimpleNamespace(temperature=2.0))
    value = float(loss(student, torch.ones(1, 1, 1), torch.ones(1, 1, dtype=torch.bool), torch.tensor([0]),
                       student_items))
    rest = [i for i in range(1, n + 1) if i not in own]
    teacher = own_logits + [teacher_items[i, 0] / 0.5 for i in rest]
    pupil = [float(student_items[i, 0]) / 2.0 for i in own + rest]
    assert value == pytest.approx(kl(teacher, pupil), abs=1e-4)


def _values_with_negatives(seed=None, calls=3):
    """The loss of a fixed student over `calls` batches, each drawing 5 of 12 items as shared negatives."""
    rng = np.random.default_rng(0)
    teacher = Model(rng.normal(size=(13, 2)))
    targets = (torch.ones(1, 1, 2, dtype=torch.float16), torch.tensor([[[1, 2]]], dtype=torch.int32),
               torch.tensor([[[1.0, 0.5]]], dtype=torch.float16))
    seeded = {} if seed is None else {"seed": seed}
    loss = DistillationLoss(teacher, targets, np.arange(12), 2, DistillConfig(top_k=2, negatives=5), **seeded)
    student = SimpleNamespace(config=SimpleNamespace(temperature=1.0))
    table = torch.as_tensor(rng.normal(size=(13, 2)), dtype=torch.float32)
    return [float(loss(student, torch.ones(1, 1, 2), torch.ones(1, 1, dtype=torch.bool), torch.tensor([0]), table))
            for _ in range(calls)]


def test_negatives_come_from_the_losss_own_seeded_stream():
    """The draws follow the seed given (default 0), whatever the global torch generator does meanwhile."""
    torch.manual_seed(0)
    first = _values_with_negatives(seed=3)
    torch.manual_seed(1)
    assert _values_with_negatives(seed=3) == first
    assert len(set(first)) > 1  # each batch draws afresh
    assert _values_with_negatives(seed=4) != first
    torch.manual_seed(2)
    default = _values_with_negatives()
    torch.manual_seed(3)
    assert _values_with_negatives(seed=0) == default


def test_the_item_table_defaults_to_the_students_own():
    loss, value = loss_of([[0.0, math.log(3)]], [[0.5, 0.0]])
    table = torch.tensor([[0.0], [1.0], [0.0]])
    student = SimpleNamespace(config=SimpleNamespace(temperature=1.0), item_vectors=lambda: table)
    hidden = torch.tensor([[[0.5]]])
    mask = torch.ones(1, 1, dtype=torch.bool)
    assert float(loss(student, hidden, mask, torch.tensor([0]))) == pytest.approx(value, abs=1e-6)


def test_alignment_adds_the_weighted_projection_error():
    cfg = DistillConfig(top_k=2, negatives=0, align=0.5)
    top = torch.tensor([[[1, 2]]], dtype=torch.int32)
    t_logits = torch.tensor([[[0.0, 0.0]]], dtype=torch.float16)
    hidden_t = torch.tensor([[[1.0, 2.0]]], dtype=torch.float16)
    loss = DistillationLoss(Model(np.zeros((3, 2))), (hidden_t, top, t_logits), np.ones(2), 1, cfg)
    assert isinstance(loss.project, nn.Linear) and loss.project.in_features == 1 and loss.project.out_features == 2
    with torch.no_grad():
        loss.project.weight.copy_(torch.tensor([[1.0], [1.0]]))
        loss.project.bias.zero_()
    student = SimpleNamespace(config=SimpleNamespace(temperature=1.0))
    table = torch.tensor([[0.0], [1.0], [1.0]])  # equal logits: the KL term is 0
    value = float(loss(student, torch.full((1, 1, 1), 3.0), torch.ones(1, 1, dtype=torch.bool),
                       torch.tensor([0]), table).detach())
    assert value == pytest.approx(0.5 * ((3 - 1) ** 2 + (3 - 2) ** 2) / 2, abs=1e-4)
    off = DistillationLoss(Model(np.zeros((3, 2))), (hidden_t, top, t_logits), np.ones(2), 1,
                           DistillConfig(top_k=2, negatives=0))
    assert off.project is None


@pytest.mark.parametrize("bad", [dict(top_k=0), dict(weight=-0.1), dict(temperature=0.0), dict(align=-1.0)])
def test_config_refuses_impossible_settings(bad):
    with pytest.raises(ConfigError, match="^distillation needs top_k >= 1, weight >= 0, temperature > 0, align >= 0$"):
        DistillConfig(**bad).validate()


def test_config_accepts_the_edges():
    cfg = DistillConfig(top_k=1, weight=0.0, temperature=0.01, align=0.0)
    assert cfg.validate() is cfg


def test_teacher_targets_rank_real_items_and_scale_by_temperature():
    # item vectors (row 0 padding scores highest of all, and must never be a candidate)
    vectors = np.array([[9.0, 9.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.6], [-1.0, 0.0]])
    teacher = Model(vectors, temperature=0.5, max_len=4)
    windows = np.array([[1, 2, 3], [3, 4, 1]])  # inputs are all but the last column
    calls = []
    hidden, top, logits = teacher_targets(teacher, windows, top_k=2, batch=1,
                                          progress=lambda done, total: calls.append((done, total)))
    assert hidden.dtype == torch.float16 and top.dtype == torch.int32 and logits.dtype == torch.float16
    assert hidden.shape == (2, 2, 2) and top.shape == logits.shape == (2, 2, 2)
    # position (0, 0) is item 1 = [1, 0]: scores 1, 0, 0.6, -1 -> items 1, 3
    assert top[0, 0].tolist() == [1, 3] and logits[0, 0].tolist() == [2.0, pytest.approx(1.2, abs=1e-3)]
    # position (1, 1) is item 4 = [-1, 0]: scores -1, 0, -0.6, 1 -> items 4, 2
    assert top[1, 1].tolist() == [4, 2] and logits[1, 1].tolist() == [2.0, 0.0]
    assert hidden[1, 0].tolist() == [0.60009765625] * 2  # item 3, rounded to fp16
    assert calls == [(1, 2), (2, 2)]
    again = teacher_targets(teacher, windows, top_k=2)
    assert all(torch.equal(a, b) for a, b in zip((hidden, top, logits), again))


def test_teacher_targets_are_the_same_whatever_the_rows_scored_at_once():
    # the catalog is scored a few positions at a time (memory); every position's targets stay those of
    # one product of all positions of a batch by the whole catalog, as before
    rng = np.random.default_rng(3)
    teacher = Model(rng.normal(size=(41, 6)), temperature=0.7, max_len=5)
    windows = rng.integers(0, 41, size=(7, 6))
    reference = teacher_targets(teacher, windows, top_k=4, batch=3, cells=10 ** 9)  # one product per batch
    for cells in (41, 41 * 4, 41 * 7 - 1):  # 1, 4 and 6 positions at once: not a divisor of 3 x 5
        again = teacher_targets(teacher, windows, top_k=4, batch=3, cells=cells)
        assert all(torch.equal(a, b) for a, b in zip(reference, again))
    items = teacher.item_vectors()
    items[0] = 0.0
    scores = teacher.hidden(torch.as_tensor(windows[:, :-1])) @ items.T
    scores[..., 0] = float("-inf")
    read = torch.as_tensor((windows[:, 1:] > 0) & (windows[:, :-1] > 0))  # the positions train.py's loss reads
    assert 0 < int(read.sum()) < read.numel()
    assert torch.equal(reference[1][read], scores.topk(4, dim=-1).indices.to(torch.int32)[read])
    # positions no loss reads (padding in or out) are not scored against the catalog: they stay zero
    assert not reference[1][~read].any() and not reference[2][~read].any()


def test_teacher_targets_refuse_histories_longer_than_the_teacher():
    teacher = Model(np.eye(3), max_len=2)
    with pytest.raises(ConfigError, match="history length 3 exceeds the teacher's 2; use --max-len <= 2"):
        teacher_targets(teacher, np.ones((1, 4), np.int64), top_k=1)


def test_negatives_are_drawn_by_popularity_to_the_three_quarters():
    counts = np.array([0, 3, 15])
    loss = DistillationLoss(Model(np.zeros((4, 1))), (torch.ones(1, 1, 1), torch.ones(1, 1, 1, dtype=torch.int32),
                                                      torch.zeros(1, 1, 1)), counts, 1, DistillConfig(top_k=1))
    weights = np.array([1.0, 4.0 ** 0.75, 16.0 ** 0.75])  # (count + 1) ** 0.75
    np.testing.assert_allclose(loss.probs.numpy(), weights / weights.sum(), rtol=1e-6)
    assert loss.probs.dtype == torch.float32


def test_distill_model_is_train_model_with_the_distillation_loss_and_records_its_settings(tmp_path):
    """Differential: distill_model against train_model given the same loss by hand, and against
    training without it (the loss must change what is learned)."""
    from dataclasses import asdict

    from edgerec.compress.distill import distill_model
    from edgerec.data import SynthConfig, synth_dataset
    from edgerec.data.split import leave_last_out
    from edgerec.models.config import ModelConfig
    from edgerec.models.train import TrainConfig, item_counts, train_model, training_windows

    dataset = synth_dataset(SynthConfig(users=60, items=120, events=1_500, seed=3))
    split = leave_last_out(dataset)
    train = TrainConfig(epochs=1, batch_size=64, eval_users=0, seed=5)
    teacher = train_model(dataset, split, ModelConfig(dim=16, layers=1, heads=2, max_len=6), train).model
    student = ModelConfig(dim=8, layers=1, heads=1, max_len=6, dropout=0.0)
    kd = DistillConfig(top_k=4, negatives=16, weight=2.0, temperature=2.0, align=0.5)
    calls = []
    content = {"text": np.random.default_rng(2).normal(size=(len(dataset.catalog), 4)).astype(np.float32)}
    torch.manual_seed(1)  # the alignment projection is initialised before training seeds itself
    result = distill_model(dataset, split, teacher, student, train, kd, out=tmp_path / "student",
                           progress=lambda stage, done, total, info: calls.append((stage, done, total, info)),
                           info_extra={"note": "kept"}, content=content)
    windows = training_windows(split.train, student.max_len)
    torch.manual_seed(1)
    by_hand = train_model(dataset, split, student, train, content=content, extra_loss=DistillationLoss(
        teacher, teacher_targets(teacher, windows, kd.top_k), item_counts(split), student.dim, kd, train.seed))
    plain = train_model(dataset, split, student, train, content=content)
    state, same, other = (r.model.state_dict() for r in (result, by_hand, plain))
    assert any("content" in k for k in state) and state.keys() == same.keys()  # the content vectors reach the student
    assert all(torch.equal(state[k], same[k]) for k in state)
    assert not all(torch.equal(state[k], other[k]) for k in state)
    assert result.info["distillation"] == asdict(kd) == {
        "top_k": 4, "negatives": 16, "weight": 2.0, "temperature": 2.0, "align": 0.5}
    assert result.info["teacher_parameters"] == sum(p.numel() for p in teacher.parameters())
    assert result.info["note"] == "kept"
    # the teacher pass reports once (one batch of 256 windows covers them all), with an empty info dict
    assert len(windows) <= 256 and calls[0] == ("teacher", len(windows), len(windows), {})
    assert [c[0] for c in calls].count("teacher") == 1 and {c[0] for c in calls[1:]} >= {"train", "epoch"}
    # without a progress callback: the same student (reporting changes nothing it learns)
    torch.manual_seed(1)
    quiet = distill_model(dataset, split, teacher, student, train, kd, content=content).model.state_dict()
    assert all(torch.equal(state[k], quiet[k]) for k in state)
    assert (tmp_path / "student" / "config.json").exists()  # saved where it was asked to be


def test_distill_model_checks_its_settings_before_any_work(tmp_path):
    from edgerec.compress.distill import distill_model

    with pytest.raises(ConfigError, match="^distillation needs top_k >= 1"):
        distill_model(None, None, None, None, None, DistillConfig(top_k=0), out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_distill_model_refuses_a_teacher_of_another_catalog_and_more_candidates_than_items(tmp_path):
    """They ended in an IndexError inside the teacher and in topk's 'selected index k out of range'."""
    from edgerec.compress.distill import distill_model
    from edgerec.data import SynthConfig, synth_dataset
    from edgerec.errors import ModelError

    dataset = synth_dataset(SynthConfig(users=20, items=50, events=300, seed=3))
    same = SimpleNamespace(item_data=SimpleNamespace(item_ids=list(dataset.catalog.item_ids)))
    other = SimpleNamespace(item_data=SimpleNamespace(item_ids=list(dataset.catalog.item_ids)[::-1]))
    with pytest.raises(ModelError, match="^the teacher was trained on another catalog than this data set"):
        distill_model(dataset, None, other, None, None, DistillConfig(top_k=4), out=tmp_path / "never")
    with pytest.raises(ConfigError, match="^--top-k 51 asks for more teacher candidates than the catalog's 50 items"):
        distill_model(dataset, None, same, None, None, DistillConfig(top_k=51), out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_a_ranker_and_a_compression_report_refuse_models_of_another_catalog(tmp_path, monkeypatch):
    """A ranker's retrieval model and compress report's teacher and student were used on another catalog (the
    same ids in another order): other items were scored, and the metrics reported as real."""
    from edgerec.data import SynthConfig, synth_dataset
    from edgerec.data.store import save_dataset
    from edgerec.errors import ModelError
    from edgerec.models import persist, ranker_recipe
    from edgerec.studies import compression

    dataset = synth_dataset(SynthConfig(users=20, items=50, events=300, seed=3))
    other = SimpleNamespace(item_data=SimpleNamespace(item_ids=list(dataset.catalog.item_ids)[::-1]))
    monkeypatch.setattr(ranker_recipe, "load_model", lambda path: (other, None))
    with pytest.raises(ModelError, match="^the retrieval model ck was trained on another catalog"):
        ranker_recipe.fit_ranker(dataset, None, tmp_path / "ck", tmp_path / "never", None)
    (tmp_path / "rk").mkdir()
    monkeypatch.setattr(persist, "checkpoint_arch", lambda path: "ranker")
    monkeypatch.setattr(persist, "load_ranker", lambda path: (None, {"retrieval": "ck"}))
    monkeypatch.setattr(persist, "load_model", lambda path: (other, None))
    with pytest.raises(ModelError, match="^rk's retrieval model was trained on another catalog"):
        persist.scorer_for(str(tmp_path / "rk"), dataset, None)
    save_dataset(dataset, tmp_path / "data")
    monkeypatch.setattr(compression, "load_model", lambda path: (other, None))
    with pytest.raises(ModelError, match="^the teacher t was trained on another catalog"):
        compression.compression_report(tmp_path / "t", tmp_path / "s", tmp_path / "data")
