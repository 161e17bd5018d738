"""Shared fixtures: a small synthetic world, generated once per test session."""

from __future__ import annotations

import pytest

from edgerec.data import SynthConfig, synth_dataset, write_synth

SMALL = SynthConfig(users=400, items=1_500, events=30_000, seed=7)


@pytest.fixture(scope="session")
def small_dataset():
    return synth_dataset(SMALL)


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    write_synth(SMALL, out)
    return out
