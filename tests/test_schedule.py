"""The training budget follows the data: step budget, warmup + cosine, patience, and the 'still rising' verdict."""

import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data import SynthConfig, synth_dataset, write_synth
from edgerec.data.split import leave_last_out
from edgerec.models.config import ModelConfig
from edgerec.models.schedule import MIN_EPOCHS, MIN_STEPS, fit_to_time, outcome, plan_budget
from edgerec.models.train import TrainConfig, train_model

OLD_EPOCH_CAP = 20  # the fixed default this budget replaced


pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest.py


def test_small_data_gets_a_step_budget_and_large_data_at_least_the_old_epochs():
    small = plan_budget(23)  # a MovieLens-100k-sized log: 23 batches per epoch
    assert small.total_steps >= MIN_STEPS and small.epochs == -(-MIN_STEPS // 23)
    large = plan_budget(5_000)
    assert large.epochs == MIN_EPOCHS and large.total_steps == MIN_EPOCHS * 5_000
    assert small.patience > large.patience  # more evaluations: more patience for noise


def test_caps_the_user_sets_win_and_patience_can_be_set():
    assert plan_budget(23, epochs=3).epochs == 3
    assert plan_budget(23, steps=100).epochs == 5  # whole epochs: ceil(100 / 23)
    assert plan_budget(23, epochs=2, steps=1000).epochs == 2
    assert plan_budget(23, patience=4).patience == 4


def test_warmup_then_cosine_to_the_final_fraction():
    budget = plan_budget(10, steps=1000, warmup=0.1, final_lr=0.1)
    factors = [budget.lr_factor(s) for s in range(budget.total_steps)]
    assert factors[0] == pytest.approx(1 / 100)
    assert factors[99] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[100:], factors[101:]))  # decays after warmup
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)


def test_the_verdict_names_the_cap_and_what_to_do():
    budget = plan_budget(10, steps=100)
    rising = [0.1, 0.2, 0.3, 0.4]
    assert not outcome("patience", rising, budget, {}).still_improving
    ended = outcome("budget", rising, budget, {"epochs": None})
    assert ended.still_improving and "--steps 200" in ended.advice
    timed = outcome("time", rising, budget, {"max_minutes": 5})
    assert timed.still_improving and "--max-minutes" in timed.advice
    assert timed.advice.startswith("validation NDCG@10 was still rising")
    once = outcome("time", [0.1405], budget, {"max_minutes": 3})  # one epoch: no trend to claim
    assert once.still_improving and once.advice.startswith("the time cap (3 min) ran out after one validation, too "
                                                           "few to tell whether it was still improving")
    flat = outcome("budget", [0.4, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3], budget, {"epochs": None})
    assert not flat.still_improving and flat.advice == ""


@pytest.fixture(scope="module")
def tiny():
    dataset = synth_dataset(SynthConfig(users=60, items=200, events=2_000, seed=11))  # one batch per epoch
    return dataset, leave_last_out(dataset)


def test_a_run_the_old_epoch_cap_cut_off_now_goes_on_to_a_better_model(tiny):
    dataset, split = tiny
    cfg = ModelConfig(dim=16, layers=1, max_len=8, dropout=0.0)
    result = train_model(dataset, split, cfg, TrainConfig(eval_users=0, batch_size=128))
    info = result.info
    history = [h["val_NDCG@10"] for h in info["history"]]
    assert info["budget"]["epochs"] > OLD_EPOCH_CAP and info["stopped_by"] == "patience"
    assert info["epochs_run"] > OLD_EPOCH_CAP
    assert history[OLD_EPOCH_CAP - 1] < info["val_NDCG@10"]  # still rising where the old default stopped
    assert info["best_epoch"] > OLD_EPOCH_CAP


def test_a_run_ending_at_its_cap_while_rising_says_so_on_screen(tmp_path):
    data = tmp_path / "data"
    write_synth(SynthConfig(users=60, items=200, events=2_000, seed=11), data)
    out = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(tmp_path / "ckpt"), "--dim", "16",
                                   "--layers", "1", "--max-len", "8", "--dropout", "0", "--steps", "8",
                                   "--eval-users", "0"])
    assert out.exit_code == 0, out.output
    assert "still rising at the end of the step budget" in out.output
    assert "--steps 16" in out.output


def test_a_time_cap_shrinks_the_schedule_to_what_fits_and_never_grows_it():
    budget = plan_budget(10, steps=1000)  # 100 epochs planned
    fitted = fit_to_time(budget, epochs_done=4, seconds=8.0, max_minutes=1.0)  # 2 s an epoch: 30 fit
    assert fitted.epochs == 30 and fitted.lr_factor(fitted.total_steps - 1) == pytest.approx(0.1, abs=1e-3)
    assert fitted.warmup_steps == budget.warmup_steps * 30 // 100
    assert fit_to_time(budget, 4, 0.4, 1.0) == budget  # a fast run keeps its plan
    assert fit_to_time(budget, 4, 8.0, None) == budget  # no cap, no change
    assert fit_to_time(budget, 4, 400.0, 1.0).epochs == 5  # over time already: at least the next epoch


class _Clock:
    """A clock that moves 0.1 s each time it is read: the run's pace, whatever the machine's load."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 0.1
        return self.now


def test_a_run_cut_by_its_time_cap_still_anneals_its_learning_rate(tiny, monkeypatch):
    import edgerec.models.train as training

    dataset, split = tiny
    cfg = ModelConfig(dim=16, layers=1, max_len=8, dropout=0.0)
    monkeypatch.setattr(training, "time", _Clock())  # a few reads an epoch: a 3 s cap holds several epochs
    info = train_model(dataset, split, cfg, TrainConfig(eval_users=0, steps=100_000, max_minutes=0.05,
                                                        patience=10_000)).info
    assert info["stopped_by"] == "time" and info["budget"]["epochs"] < info["budget"]["planned_epochs"]
    # cut in the middle of a 100,000-step cosine the rate would still be near its peak
    assert info["budget"]["last_lr_factor"] < 0.5


def test_an_epoch_longer_than_the_time_cap_is_cut_inside_the_epoch(tiny, monkeypatch):
    import edgerec.models.train as training

    dataset, split = tiny
    cfg = ModelConfig(dim=16, layers=1, max_len=8, dropout=0.0)
    monkeypatch.setattr(training, "time", _Clock())  # a read a batch: a 0.6 s cap ends the first epoch early
    info = train_model(dataset, split, cfg, TrainConfig(eval_users=0, batch_size=4, max_minutes=0.01,
                                                        patience=10_000)).info
    assert info["stopped_by"] == "time" and info["epochs_run"] == 1
    done, batches = info["history"][0]["steps_of_epoch"]
    assert 1 <= done < batches / 2  # ended near the cap, not at the epoch's last batch
    assert info["val_NDCG@10"] >= 0  # the cut epoch was still evaluated and kept


def test_a_model_no_better_than_popularity_is_flagged_with_what_to_do(tiny):
    from edgerec.models.baselines import Popular
    from edgerec.models.evaluation import Evaluator

    dataset, split = tiny
    cfg = ModelConfig(dim=16, layers=1, max_len=8, dropout=0.0)
    info = train_model(dataset, split, cfg, TrainConfig(eval_users=0, epochs=1, lr=1e-9)).info  # untrained
    popular = Evaluator(split, dataset.catalog, k=10).evaluate(Popular(split, dataset), "val")["NDCG@10"]
    assert info["val_NDCG@10_popular"] == popular > info["val_NDCG@10"]
    assert info["warning"] == (f"validation NDCG@10 {info['val_NDCG@10']:.4f} is not above plain popularity's "
                               f"{popular:.4f} on the same users; it has not learnt the data yet: train it longer "
                               "(--max-minutes, or --resume), or ship the popularity list instead")


def test_the_popularity_warning_says_what_fits_why_the_run_ended():
    from edgerec.models.train import below_popularity

    assert below_popularity(0.2, 0.1, "patience") == "" and below_popularity(0.2, None, "budget") == ""
    assert below_popularity(0.1, 0.1, "budget").endswith("; it has not learnt the data yet: train it longer "
                                                         "(--max-minutes, or --resume), or ship the popularity list "
                                                         "instead")
    assert below_popularity(-1.0, 0.1, "patience") == (
        "validation NDCG@10 0.0000 is not above plain popularity's 0.1000 on the same users; it stopped improving "
        "below it: try other settings (edgerec tune) or a log with longer histories, or ship the popularity list "
        "instead")


def test_a_model_above_popularity_carries_no_warning(tiny):
    dataset, split = tiny
    cfg = ModelConfig(dim=16, layers=1, max_len=8, dropout=0.0)
    info = train_model(dataset, split, cfg, TrainConfig(eval_users=0, batch_size=128)).info
    assert info["val_NDCG@10"] > info["val_NDCG@10_popular"] and info["warning"] == ""


def test_the_popularity_warning_is_said_on_screen(tmp_path):
    data = tmp_path / "data"
    write_synth(SynthConfig(users=60, items=200, events=2_000, seed=11), data)
    out = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(tmp_path / "ckpt"), "--dim", "16",
                                   "--layers", "1", "--max-len", "8", "--epochs", "1", "--lr", "1e-9",
                                   "--eval-users", "0"])
    assert out.exit_code == 0, out.output
    assert "val_NDCG@10_popular" in out.output and "is not above plain popularity's" in out.output
