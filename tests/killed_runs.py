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
