"""The teacher scores a training window when a batch first needs it: a time-capped distillation pays only
for the windows it reaches, and the targets are those of scoring every window ahead."""

import numpy as np
import torch
from test_distill_guard import Model

from edgerec.compress.distill import (
    DistillationLoss,
    DistillConfig,
    TeacherTargets,
    teacher_targets,
)


class Counting(Model):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.windows_seen = 0

    def hidden(self, ids):
        self.windows_seen += len(ids)
        return super().hidden(ids)


def world(seed=5):
    rng = np.random.default_rng(seed)
    teacher = Counting(rng.normal(size=(31, 4)), temperature=0.8, max_len=6)
    windows = rng.integers(1, 31, size=(12, 7))
    windows[:, :3] *= rng.integers(0, 2, size=(12, 3))  # left padding of some windows, as training windows have
    return teacher, windows


def test_only_the_windows_asked_are_scored_and_each_once():
    teacher, windows = world()
    lazy = TeacherTargets(teacher, windows, top_k=3)
    assert teacher.windows_seen == 0  # nothing is scored ahead
    lazy.ensure(torch.tensor([4, 1, 4]))
    assert teacher.windows_seen == 2 and lazy.done.nonzero().ravel().tolist() == [1, 4]
    lazy.ensure(torch.tensor([1, 4, 7]))
    assert teacher.windows_seen == 3  # 1 and 4 were kept
    untouched = [w for w in range(12) if w not in (1, 4, 7)]
    assert not lazy.top[untouched].any() and not lazy.hidden[untouched].any()


def test_windows_scored_in_any_batches_equal_those_scored_ahead():
    teacher, windows = world()
    ahead = teacher_targets(teacher, windows, top_k=3, batch=5)
    lazy = TeacherTargets(teacher, windows, top_k=3, cells=31 * 2)  # two positions per product, too
    for batch in ([9, 0, 3], [11, 2, 5, 7], [1], [4, 6, 8, 10, 0]):
        lazy.ensure(torch.tensor(batch))
    assert lazy.done.all()
    for a, b in zip(ahead, (lazy.hidden, lazy.top, lazy.logits)):
        assert torch.equal(a, b)
    read = torch.as_tensor((windows[:, 1:] > 0) & (windows[:, :-1] > 0))
    assert 0 < int(read.sum()) < read.numel() and not ahead[1][~read].any()  # padding positions stay zero


def test_the_loss_scores_its_batch_before_reading_the_targets():
    teacher, windows = world()
    config = DistillConfig(top_k=3, negatives=4)
    lazy = DistillationLoss(teacher, TeacherTargets(teacher, windows, 3), np.ones(30), 4, config, seed=1)
    ahead = DistillationLoss(teacher, teacher_targets(teacher, windows, 3), np.ones(30), 4, config, seed=1)
    batch = torch.tensor([2, 8])
    inputs, targets = torch.as_tensor(windows[:, :-1])[batch], torch.as_tensor(windows[:, 1:])[batch]
    mask = (targets > 0) & (inputs > 0)
    student = Model(np.random.default_rng(0).normal(size=(31, 4)))
    hidden = student.hidden(inputs)
    got, want = lazy(student, hidden, mask, batch), ahead(student, hidden, mask, batch)
    assert torch.equal(got, want) and lazy.lazy.done.nonzero().ravel().tolist() == [2, 8]


def test_positions_are_scored_as_many_at_once_as_the_cells_allow():
    teacher, windows = world()  # 31 items
    assert TeacherTargets(teacher, windows, 3, cells=31 * 5 + 30).at_once == 5
    assert TeacherTargets(teacher, windows, 3, cells=30).at_once == 1  # at least one, whatever the catalog


def test_each_product_scores_at_most_at_once_positions_and_no_position_twice():
    teacher, windows = world()
    lazy = TeacherTargets(teacher, windows, 3, cells=31 * 4)
    rows_per_product = []

    class Recording:
        def __init__(self, table):
            self.table = table

        def __rmatmul__(self, h):
            rows_per_product.append(len(h))
            return h @ self.table

    class Items:
        T = Recording(lazy.items.T)

    lazy.items = Items()
    lazy.ensure(torch.arange(12))
    read = int(((windows[:, 1:] > 0) & (windows[:, :-1] > 0)).sum())
    assert sum(rows_per_product) == read and max(rows_per_product) == 4
    assert len(rows_per_product) == -(-read // 4)
