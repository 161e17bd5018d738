"""Guards of models/schedule.py (mutation note 40): the plan's exact numbers at the edges, the learning rate at
each step, the time cap's arithmetic, the verdict's window and texts, and the trainer following them
(patience over a plateau that then improves, a run past the old 20-epoch cap, a diverging loss)."""

import math

import pytest

from edgerec.data import SynthConfig, synth_dataset
from edgerec.data.split import leave_last_out
from edgerec.errors import ModelError
from edgerec.models.config import ModelConfig
from edgerec.models.schedule import Budget, Outcome, fit_to_time, outcome, plan_budget
from edgerec.models.train import TrainConfig, train_model

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest.py


# ---------------------------------------------------------------- the plan


@pytest.mark.parametrize("steps_per_epoch,plan", [
    (23, Budget(23, 131, 90, 14, 0.1)),  # ceil(3000 / 23) epochs; patience ceil(131 / 10)
    (5_000, Budget(5_000, 20, 3_000, 5, 0.1)),  # large data: the 20-epoch floor, the lowest patience
    (1, Budget(1, 400, 12, 15, 0.1)),  # tiny data: the 400-epoch ceiling, the highest patience
    (0, Budget(1, 400, 12, 15, 0.1)),  # no batch at all counts as one
    (-5, Budget(1, 400, 12, 15, 0.1)),
])
def test_the_plan_that_follows_the_data(steps_per_epoch, plan):
    assert plan_budget(steps_per_epoch) == plan


@pytest.mark.parametrize("caps,plan", [
    ({"steps": 1}, Budget(23, 1, 1, 5, 0.1)),  # one step still means one whole epoch, warmup of one step
    ({"steps": 100}, Budget(23, 5, 3, 5, 0.1)),  # ceil(100 / 23) whole epochs
    ({"epochs": 3}, Budget(23, 3, 2, 5, 0.1)),
    ({"epochs": 1_000}, Budget(23, 1_000, 690, 15, 0.1)),  # a user's cap is not held to the 400 ceiling
    ({"epochs": 2, "steps": 1_000}, Budget(23, 2, 1, 5, 0.1)),  # the smaller cap wins
    ({"epochs": 50, "steps": 100}, Budget(23, 5, 3, 5, 0.1)),
    ({"patience": 4}, Budget(23, 131, 90, 4, 0.1)),
    ({"warmup": 0.5, "final_lr": 0.0}, Budget(23, 131, 1_506, 14, 0.0)),
])
def test_caps_the_user_sets(caps, plan):
    assert plan_budget(23, **caps) == plan


def test_a_step_cap_alone_is_held_to_a_hundred_times_the_epoch_ceiling():
    assert plan_budget(1, steps=10**7).epochs == 40_000
    assert plan_budget(1, steps=10).warmup_steps == 1  # 3% of 10 steps rounds to none: one step all the same


def test_the_learning_rate_rises_then_follows_the_cosine_to_the_final_fraction():
    budget = Budget(steps_per_epoch=10, epochs=100, warmup_steps=100, patience=5, final_lr=0.1)
    assert [budget.lr_factor(s) for s in (0, 49, 99)] == pytest.approx([0.01, 0.5, 1.0])
    # after the warmup: 0.1 + 0.9 * (1 + cos(pi * (step - 100) / 900)) / 2
    for step in (100, 325, 550, 775, 999):
        expected = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - 100) / 900))
        assert budget.lr_factor(step) == pytest.approx(expected, abs=1e-12)
    assert budget.lr_factor(550) == pytest.approx(0.55)
    for past in (1_000, 1_900, 10_000):  # past the end (a resumed run's last step) it stays at the floor
        assert budget.lr_factor(past) == pytest.approx(0.1)


def test_a_schedule_that_is_all_warmup_ends_at_its_peak_then_drops_to_the_floor():
    budget = Budget(steps_per_epoch=1, epochs=10, warmup_steps=9, patience=5, final_lr=0.1)
    assert budget.lr_factor(8) == pytest.approx(1.0) and budget.lr_factor(9) == pytest.approx(1.0)
    assert budget.lr_factor(10) == pytest.approx(0.1)


# ---------------------------------------------------------------- the time cap


def test_the_time_cap_fits_whole_epochs_at_the_measured_pace():
    budget = plan_budget(10, steps=1_000)  # 100 epochs, 30 warmup steps
    assert fit_to_time(budget, 1, 1.0, 1.0) == Budget(10, 60, 18, 10, 0.1)  # 1 s an epoch: 60 in a minute; patience kept
    assert fit_to_time(budget, 4, 8.0, 2.0).epochs == 60  # 2 s an epoch, two minutes
    assert fit_to_time(budget, 1, 2.0, 0.75) == Budget(10, 22, 6, 10, 0.1)  # 22.5 epochs fit: 22; 30 * 22 // 100
    assert isinstance(fit_to_time(budget, 1, 2.0, 0.75).warmup_steps, int)
    assert fit_to_time(budget, 1, 0.5, 0.001).epochs == 2  # under a second an epoch, a cap already passed


def test_the_time_cap_keeps_at_least_one_warmup_step_and_the_next_epoch():
    budget = plan_budget(10, steps=100)  # 10 epochs, 3 warmup steps
    assert fit_to_time(budget, 1, 20.0, 1.0) == Budget(10, 3, 1, 5, 0.1)  # 3 * 3 // 10 = 0: one step
    assert fit_to_time(budget, 5, 600.0, 1.0) == Budget(10, 6, 1, 5, 0.1)
    assert fit_to_time(budget, 2, 12.0, 0.0).epochs == 3  # a zero cap: the next epoch, no more


def test_the_time_cap_leaves_a_plan_that_fits_or_cannot_be_measured():
    budget = plan_budget(10, steps=1_000)
    assert fit_to_time(budget, 1, 0.6, 1.0) == budget  # exactly 100 epochs fit
    assert fit_to_time(budget, 0, 30.0, 1.0) == budget  # no epoch done: no pace yet
    assert fit_to_time(budget, 3, 0.0, 1.0) == budget  # no time measured: no pace either
    assert fit_to_time(budget, 3, 300.0, None) == budget


def test_the_time_cap_never_extends_a_run_that_has_done_its_epochs():
    """The budget only shrinks: after its last epoch a run was given one more when the pace was slow
    (and none when exactly its epochs fit)."""
    budget = plan_budget(10, steps=1_000)  # 100 epochs
    assert fit_to_time(budget, 100, 60.0, 1.0) == budget  # exactly 100 fit
    assert fit_to_time(budget, 100, 120.0, 1.0) == budget  # 50 fit: it was Budget(10, 101, ...)
    assert fit_to_time(budget, 120, 120.0, 1.0) == budget


# ---------------------------------------------------------------- the verdict


PATIENT = plan_budget(23)  # patience 14: "rising" when the best came within the last 5 evaluations
SHORT = plan_budget(23, steps=100)  # patience 5: within the last 2


def test_a_run_ended_by_patience_is_never_still_improving():
    assert outcome("patience", [0.1, 0.2, 0.3], SHORT, {}) == Outcome("patience", False, "")
    assert outcome("budget", [], SHORT, {}) == Outcome("budget", False, "")


@pytest.mark.parametrize("history,budget,rising", [
    ([0.1, 0.2, 0.3, 0.4, 0.2], SHORT, True),  # best one evaluation ago
    ([0.1, 0.2, 0.3, 0.4, 0.2, 0.2], SHORT, False),  # two ago: out of the window of 2
    ([0.5, 0.5, 0.5], SHORT, False),  # a plateau: its best is its first value
    ([0.4, 0.5, 0.5], SHORT, True),
    ([0.1, 0.6, 0.2, 0.2, 0.2, 0.2], PATIENT, True),  # patience 14: a window of 5
    ([0.1, 0.6, 0.2, 0.2, 0.2, 0.2, 0.2], PATIENT, False),
    ([0.1, 0.6, 0.2, 0.2, 0.2, 0.2], plan_budget(23, patience=15), True),  # 15 / 3: a window of 5, not 4
])
def test_still_rising_means_the_best_came_within_the_last_third_of_the_patience(history, budget, rising):
    ended = outcome("budget", history, budget, {"epochs": None})
    assert ended.still_improving is rising
    if not rising:
        assert ended == Outcome("budget", False, "")


def test_the_advice_names_the_cap_that_ended_the_run():
    rising = [0.1, 0.2, 0.3]
    assert outcome("time", rising, SHORT, {"max_minutes": 2.5, "epochs": 9}) == Outcome("time", True, (
        "validation NDCG@10 was still rising when the time cap (2.5 min) ran out: raise --max-minutes, or continue "
        "this run with --resume"))
    assert outcome("budget", rising, plan_budget(23, epochs=7), {"epochs": 7}) == Outcome("budget", True, (
        "validation NDCG@10 was still rising at the --epochs cap (7): raise --epochs, or leave it out so the step "
        "budget decides"))
    assert outcome("budget", rising, PATIENT, {"epochs": None}) == Outcome("budget", True, (
        "validation NDCG@10 was still rising at the end of the step budget (3,013 steps): train longer, e.g. "
        "--steps 6026"))
    assert outcome("budget", rising, PATIENT, {}).advice.endswith("--steps 6026")


# ---------------------------------------------------------------- the trainer follows the plan


@pytest.fixture(scope="module")
def tiny():
    dataset = synth_dataset(SynthConfig(users=60, items=200, events=2_000, seed=11))  # one batch per epoch
    return dataset, leave_last_out(dataset)


TINY_MODEL = ModelConfig(dim=8, layers=1, heads=1, max_len=8, dropout=0.0)


def scripted(monkeypatch, values):
    """The trainer's validation NDCG@10 read from `values`, one per evaluation (the training itself is real)."""
    import edgerec.models.train as training

    calls = []

    class Scripted:
        def __init__(self, *_args, **_kwargs):
            pass

        def evaluate(self, scorer, phase="test", progress=None, rows=None):
            if getattr(scorer, "name", None) == "popular":  # the reference scored once at the end
                return {"NDCG@10": 0.0}
            calls.append(phase)
            return {"NDCG@10": values[len(calls) - 1]}

    monkeypatch.setattr(training, "Evaluator", Scripted)
    return calls


def test_patience_counts_a_plateau_and_a_later_rise_starts_it_again(tiny, monkeypatch):
    dataset, split = tiny
    values = [0.1, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3, 0.3, 0.9, 0.9]  # a tie is no improvement
    calls = scripted(monkeypatch, values)
    info = train_model(dataset, split, TINY_MODEL, TrainConfig(eval_users=0, patience=3, batch_size=128)).info
    assert calls == ["val"] * 8  # three evaluations without a new best after the 0.3 of the 5th: stop
    assert (info["epochs_run"], info["best_epoch"], info["val_NDCG@10"]) == (8, 5, 0.3)
    assert info["stopped_by"] == "patience" and not info["still_improving"] and info["advice"] == ""
    assert info["budget"]["epochs"] == 400 and info["budget"]["planned_epochs"] == 400  # one batch an epoch


def test_a_run_still_rising_at_the_old_twenty_epochs_goes_on(tiny, monkeypatch):
    dataset, split = tiny
    values = [0.01 * e for e in range(1, 31)] + [0.1] * 100  # rising for 30 epochs, then worse
    scripted(monkeypatch, values)
    info = train_model(dataset, split, TINY_MODEL, TrainConfig(eval_users=0, batch_size=128)).info
    assert info["budget"]["patience"] == 15
    assert (info["epochs_run"], info["best_epoch"]) == (45, 30) and info["stopped_by"] == "patience"
    assert info["val_NDCG@10"] == pytest.approx(0.30)


def test_a_run_capped_while_rising_reports_it_with_the_caps_advice(tiny, monkeypatch):
    dataset, split = tiny
    scripted(monkeypatch, [0.1, 0.2, 0.3, 0.4])
    info = train_model(dataset, split, TINY_MODEL, TrainConfig(eval_users=0, epochs=4, batch_size=128)).info
    assert (info["epochs_run"], info["best_epoch"], info["stopped_by"]) == (4, 4, "budget")
    assert info["still_improving"] and "--epochs cap (4)" in info["advice"]


def test_a_diverging_loss_stops_the_run_at_once_with_what_to_do(tiny):
    dataset, split = tiny
    with pytest.raises(ModelError) as caught:
        train_model(dataset, split, TINY_MODEL, TrainConfig(eval_users=0, epochs=30, batch_size=16, lr=1e30))
    text = str(caught.value)
    assert text.startswith("the training loss became ") and "lower --lr (now 1e+30)" in text
    assert "NaN scores" not in text
