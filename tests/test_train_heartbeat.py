"""Long training stretches (an epoch, the teacher's scoring before distillation) say something now and then."""

import pytest

from edgerec.cli.train_cmd import TrainProgress
from edgerec.compress.distill import DistillConfig, distill_model
from edgerec.data import SynthConfig, synth_dataset
from edgerec.data.split import leave_last_out
from edgerec.models.config import ModelConfig
from edgerec.models.train import Heartbeat, TrainConfig, train_model
from edgerec.studies.base import epoch_lines

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest.py


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_heartbeat_comes_once_the_interval_has_passed_since_the_last_line():
    clock, lines = Clock(), []
    beat = Heartbeat(lines.append, every=60.0, clock=clock)
    beat("train", 0, 1000, {"epoch": 1, "loss": 9.0})  # the first event starts the count
    clock.now = 59.0
    beat("train", 20, 1000, {"epoch": 1, "loss": 8.5})
    assert lines == []
    clock.now = 61.0
    beat("train", 40, 1000, {"epoch": 1, "loss": 8.25})
    assert lines == ["epoch 1: step 40 of 1,000, loss 8.2500"]
    clock.now = 100.0
    beat("train", 60, 1000, {"epoch": 1, "loss": 8.0})  # 39 s after the heartbeat: quiet
    clock.now = 130.0
    beat("epoch", 1, 10, {"epoch": 1})  # an epoch line is a line: the count starts again
    clock.now = 180.0
    beat("train", 80, 1000, {"epoch": 2, "loss": 7.0})
    assert len(lines) == 1
    clock.now = 2000.0
    beat("teacher", 512, 22616, {})
    assert lines[-1] == "teacher scoring: 512 of 22,616 training windows"


@pytest.fixture(scope="module")
def small():
    dataset = synth_dataset(SynthConfig(users=150, items=500, events=6_000, seed=11))  # 278 windows: 2 batches of teacher scoring
    return dataset, leave_last_out(dataset)


def test_training_and_the_teachers_scoring_feed_the_heartbeat_of_the_demo_and_the_cli(small, capsys):
    dataset, split = small
    config = ModelConfig(dim=8, layers=1, heads=1, max_len=8, dropout=0.0)
    said = []
    teacher = train_model(dataset, split, config, TrainConfig(epochs=1, batch_size=8, eval_users=0),
                          progress=epoch_lines(lambda what, values: said.append(what), "teacher", every=0.0)).model
    assert any(line.startswith("teacher epoch 1: step ") for line in said), said
    printed = TrainProgress(every=0.0)
    distill_model(dataset, split, teacher, config, TrainConfig(epochs=1, batch_size=8, eval_users=0),
                  DistillConfig(top_k=4), progress=printed)
    out = capsys.readouterr().out
    assert "teacher scoring: " in out and "epoch 1: step " in out, out


def test_a_schedule_fitted_to_the_time_cap_is_said_once_when_it_shrinks(capsys):
    from edgerec.models.train import schedule_note

    assert schedule_note({"epochs_planned": 40}, None) is None  # the first line: nothing to compare
    assert schedule_note({"epochs_planned": 40}, 40) is None
    assert schedule_note({}, 40) is None
    assert schedule_note({"epochs_planned": 12}, 40) == (
        "the schedule now ends at epoch 12 (it was 40) so that it anneals within the time cap (--max-minutes)")
    said = []
    on = epoch_lines(lambda what, values: said.append(what), "teacher", every=1e9)
    printed = TrainProgress(every=1e9)
    for planned in (40, 40, 12, 12):
        record = {"epoch": 1, "loss": 1.0, "val_NDCG@10": 0.1, "seconds": 1.0, "epochs_planned": planned}
        on("epoch", 1, planned, record)
        printed("epoch", 1, planned, record)
    assert [line for line in said if "schedule" in line] == [
        "teacher: the schedule now ends at epoch 12 (it was 40) so that it anneals within the time cap "
        "(--max-minutes)"]
    assert capsys.readouterr().out.count("the schedule now ends at epoch 12 (it was 40)") == 1


def test_a_time_capped_run_records_the_epochs_it_planned(small):
    dataset, split = small
    config = ModelConfig(dim=8, layers=1, heads=1, max_len=8, dropout=0.0)
    records = []
    train_model(dataset, split, config, TrainConfig(epochs=3, batch_size=8, eval_users=0),
                progress=lambda kind, done, total, record: records.append(record) if kind == "epoch" else None)
    assert [r["epochs_planned"] for r in records] == [3, 3, 3]
