"""A training run killed right after a save, as SIGKILL leaves it, for the tests of unfinished checkpoints."""

from __future__ import annotations

import pytest


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the patched point runs."""


def killed_after_first_save(run) -> None:
    """Run `run()` with train's _save_progress killing the process right after its first save."""
    import edgerec.models.train as train_module

    saved = train_module._save_progress

    def save_then_die(*args, **kwargs):
        saved(*args, **kwargs)
        raise Killed

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "_save_progress", save_then_die)
        with pytest.raises(Killed):
            run()


def tiny_run(data_dir):
    """(dataset, split, model config, train config) of a run small enough to train, kill and distill in seconds:
    two epochs, so a run killed after its first save is unfinished."""
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset
    from edgerec.models.config import ModelConfig
    from edgerec.models.train import TrainConfig

    dataset = load_dataset(data_dir)
    return (dataset, leave_last_out(dataset), ModelConfig(dim=8, layers=1, heads=1, max_len=8, dropout=0.0),
            TrainConfig(epochs=2, batch_size=64, eval_users=50, loss="full"))
