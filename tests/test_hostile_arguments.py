"""Host-side studies and generators given impossible arguments: a ConfigError that names the argument,
raised before any data is read, model trained or folder written; never a raw traceback or a run that
only fails (or loops) after minutes of work."""

from __future__ import annotations

import math

import pytest

from edgerec.data import SynthConfig
from edgerec.data.schema import Catalog
from edgerec.errors import ConfigError, DataError
from edgerec.federated.server import ServerConfig
from edgerec.runtime.federated import RoundTask
from edgerec.studies.activity import ActivityConfig
from edgerec.studies.fed_world import WorldConfig
from edgerec.studies.federated import FederatedStudy


def no_progress(*_args) -> None:
    pass


@pytest.mark.parametrize("field", ["visits_sigma", "lists_sigma", "visits_median", "extra_lists_median"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_activity_refuses_nan_and_infinite_rates(field, value):
    with pytest.raises(ConfigError, match="activity needs"):
        ActivityConfig(**{field: value}).validate()  # NaN reached numpy's Poisson draw as "lam is NaN"


@pytest.mark.parametrize("chunk_users", [0, -3])
def test_synth_refuses_chunks_without_users(chunk_users):
    with pytest.raises(ConfigError, match="chunk_users must be at least 1"):  # 0 crashed, -3 wrote no events
        SynthConfig(users=10, items=60, events=100, chunk_users=chunk_users).validate()


@pytest.mark.parametrize("changes, message", [
    (dict(server=ServerConfig(rounds=0)), "rounds >= 1"),
    (dict(server=ServerConfig(clients_per_round=0)), "clients per round"),
    (dict(server=ServerConfig(server_lr=math.nan)), "server lr"),
    (dict(world=WorldConfig(max_devices=0)), "at least 1 device"),
    (dict(task=RoundTask(round=0, space="", clip=0.0)), "clip"),
    (dict(epsilons=(-1.0,)), "every epsilon"),
    (dict(delta=2.0), "delta in \\(0, 1\\)"),
    (dict(dp_population_scale=0), "DP population scale"),
])
def test_federate_checks_every_argument_before_training_or_writing(tmp_path, changes, message):
    study = FederatedStudy(tmp_path / "no-data", tmp_path / "out", **changes)
    with pytest.raises(ConfigError, match=message):  # not "not a data folder": nothing was read yet
        study.measure(no_progress)
    assert not (tmp_path / "out").exists()


def test_content_held_out_split_refuses_empty_sides():
    from edgerec.models.content import held_out_texts

    catalog = Catalog(["a", "b", "c"], text={"title": ["Heat", "Ran", "Up"]})
    with pytest.raises(ConfigError, match="--held-out must be at least 1"):
        held_out_texts(catalog, 2, 0, seed=0)
    with pytest.raises(ConfigError, match="keeps them all"):
        held_out_texts(catalog, 2, 3, seed=0)
    train, held = held_out_texts(catalog, 2, 1, seed=0)
    assert len(train) == 2 and len(held) == 1
    # a catalog of bare ids: `content distill` learnt 200 empty strings and reported a held-out cosine
    with pytest.raises(DataError, match="no title, description or tags"):
        held_out_texts(Catalog.bare(["a", "b", "c"]), 2, 1, seed=0)


def test_content_distillation_without_texts_is_a_config_error():
    import numpy as np

    from edgerec.compress.content_distill import distill_content

    with pytest.raises(ConfigError, match="texts to learn from"):  # was an UnboundLocalError after the epochs
        distill_content(None, [], np.zeros((0, 8), np.float32), ["x"], np.ones((1, 8), np.float32))


@pytest.mark.parametrize("held_out, unseen", [(0, 5), (20, 0), (20, -1)])
def test_content_report_refuses_empty_text_sets(tmp_path, held_out, unseen):
    from edgerec.studies.content import ContentStudy

    study = ContentStudy(tmp_path / "student", tmp_path / "data", held_out=held_out, unseen=unseen)
    with pytest.raises(ConfigError, match="--held-out and --unseen must be at least 1"):  # -1 ran for ever
        study.measure(no_progress)


def test_simulating_a_bundle_on_data_it_was_not_built_on_says_so():
    from pathlib import Path

    from edgerec.data import synth_dataset
    from edgerec.studies.reactions import reactions_for
    from edgerec.studies.simulator import Arm, SimConfig, Simulator

    golden = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"
    dataset = synth_dataset(SynthConfig(users=20, items=1000, events=400, seed=3))
    sim = Simulator(dataset, reactions_for(dataset), SimConfig(users=5, days=1, pre_days=1))
    with pytest.raises(ConfigError, match="which the bundle does not know: pass the --data the bundle was built on"):
        sim.run([Arm("a", golden)], lambda _u: "a")
