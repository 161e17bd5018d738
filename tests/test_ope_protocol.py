"""What an `experiment ope` run's advice and verdict rest on (issue 16's goal: SNIPS and DR within 5% of the truth).

A user picks --days from the run's own noise floor (`lists_for_goal`, `days_for_goal`), so the floor must come
from the logs alone: it was computed against the simulator's true value, which a real run does not have. And a
record (or its table) that does not say at which exploration temperature, or over how many lists and which users
its seeds ran, cannot be read back as evidence for or against the goal."""

from __future__ import annotations

import pytest

from edgerec.studies import ope
from edgerec.studies.experiments import OPEStudy
from edgerec.studies.simulator import Arm, SimConfig


def _study(tiny_bundle, seeds: int = 1, temperature: float = 5.0) -> OPEStudy:
    return OPEStudy(Arm("a", tiny_bundle), Arm("b", tiny_bundle, {"diversity": 0.3}), tiny_bundle.parent / "data",
                    SimConfig(users=12, days=2, pre_days=0, k=5, seed=0), temperature=temperature, seeds=seeds)


def test_the_noise_floor_does_not_read_the_truth(tiny_bundle, monkeypatch):
    # the simulator's truth scaled 10x: every figure a user reads to choose --days must stay where it was
    log_one = OPEStudy._log_one

    def scaled(self, *args):
        found = log_one(self, *args)
        return found if found is None else (found[0], 10 * found[1], found[2], found[3])

    plain = _study(tiny_bundle).run().record
    monkeypatch.setattr(OPEStudy, "_log_one", scaled)
    record = _study(tiny_bundle).run().record
    assert record["true_value"] == pytest.approx(10 * plain["true_value"])
    assert record["lists_for_goal"] == plain["lists_for_goal"]  # the old floor fell 100x with the truth
    scale = record["estimates"]["DM"]
    assert record["goal_scale"] == {"estimator": "DM", "value": scale}
    for name, se in record["standard_errors"].items():
        assert record["lists_for_goal"][name] == ope.lists_for_goal(se, scale, record["lists"]), name
    rows = {r["estimator"]: r for r in OPEStudy.tables(record)[0].rows}
    plain_rows = {r["estimator"]: r for r in OPEStudy.tables(plain)[0].rows}
    assert all(rows[n]["days_for_goal"] == plain_rows[n]["days_for_goal"] for n in record["estimates"])
    assert "not from the truth" in OPEStudy.tables(record)[0].title


def test_the_record_and_its_tables_name_the_temperature_lists_and_users_of_every_seed(tiny_bundle):
    record = _study(tiny_bundle, seeds=2, temperature=4.0).run().record
    assert record["temperature"] == 4.0
    tables = OPEStudy.tables(record)
    assert "exploration temperature 4" in tables[0].title
    over = tables[-1].title
    lists = sorted({row["lists"] for row in record["seeds"]})
    assert over.startswith("relative error over 2 seeds of " + "/".join(f"{n:,}" for n in lists) + " lists")
    assert "exploration temperature 4" in over and "every seed counted" in over
    # the tiny world's 12 users are drawn by seed: the record says how many the two seeds share
    shared = record["users_shared_across_seeds"]
    assert 0 <= shared <= 1 and "logged_users" not in record
    if shared >= 0.999:
        assert "the same users" in over
    else:
        assert f"{shared:.0%} of the users shared" in over


def test_an_older_record_still_reads_and_says_what_it_lacks(tiny_bundle):
    record = _study(tiny_bundle).run().record
    for key in ("temperature", "goal_scale", "users_shared_across_seeds"):
        record.pop(key, None)  # the old code wrote none of them
    title = OPEStudy.tables(record)[0].title
    assert "temperature not recorded" in title and "against the simulator's truth (an older record)" in title
