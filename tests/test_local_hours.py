"""Hours of day in the data set's own local time (`data/local_hours.py`).

The device reads its context hour in its local time (spec §7), the host learned every hour-based signal
(the context prior, the ranker's hour features, the scorer's part of day x modality features) in UTC:
for a log from New York, plays at 20:00 local (01:00 UTC) taught "night" where the device asks "evening".
A log imported with `--time-zone` now learns in that zone's hours; without one, in UTC as before.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from edgerec.data.chunk_checks import ReadOptions
from edgerec.data.loaders import ColumnMap, import_dataset
from edgerec.data.local_hours import dataset_zone, local_hours
from edgerec.data.split import leave_last_out
from edgerec.data.store import load_dataset, save_dataset
from edgerec.errors import ConfigError
from edgerec.export.ranking import context_prior
from edgerec.models.ranker import RankerConfig, RerankScorer, build_training_set, item_table
from edgerec.runtime.scorer import DAY_PARTS, FEATURES, LinearScorer, day_part

NEW_YORK = ZoneInfo("America/New_York")
EVENING = DAY_PARTS.index("evening")


def _hour(t: int, tz) -> float:
    local = datetime.fromtimestamp(t, tz)
    return local.hour + local.minute / 60 + local.second / 3600


# ------------------------------------------------------------------------------ the helper


def test_utc_is_exactly_the_old_arithmetic():
    t = np.array([0, 1, 86_399, 86_400, 1_767_229_215, -3_600], np.int64)
    assert np.array_equal(local_hours(t, "UTC"), (t % 86_400) / 3600.0)
    assert np.array_equal(local_hours(t, None), (t % 86_400) / 3600.0)


def test_new_york_hours_follow_daylight_saving_to_the_second():
    change = int(datetime(2026, 3, 8, 7, tzinfo=timezone.utc).timestamp())  # 02:00 EST -> 03:00 EDT
    back = int(datetime(2026, 11, 1, 6, tzinfo=timezone.utc).timestamp())  # 02:00 EDT -> 01:00 EST
    t = np.array([change - 1, change, back - 1, back, 1_767_229_215 + 86_400], np.int64)
    assert local_hours(t, "America/New_York").tolist() == pytest.approx([_hour(int(x), NEW_YORK) for x in t])
    assert local_hours(t, "America/New_York")[:2].tolist() == pytest.approx([1 + 3599 / 3600, 3.0])


@pytest.mark.parametrize("zone", ["America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "Europe/London"])
def test_any_time_over_decades_matches_the_zone_database(zone):
    t = np.random.default_rng(1).integers(0, 2_200_000_000, 3_000)
    tz = ZoneInfo(zone)
    assert np.allclose(local_hours(t, zone), [_hour(int(x), tz) for x in t])


def test_a_fixed_offset_and_an_empty_or_scalar_input():
    assert local_hours(np.array([0], np.int64), "+08:00").tolist() == [8.0]
    assert local_hours(np.array([0], np.int64), "-05:30").tolist() == [18.5]
    assert local_hours(np.zeros(0, np.int64), "Europe/Paris").shape == (0,)
    assert float(local_hours(1_767_229_215 - 1_767_229_215 % 86_400 + 3600, "America/New_York")) == 20.0
    with pytest.raises(ConfigError, match="unknown time zone"):
        local_hours(np.array([0]), "Mars/Base")


# ------------------------------------------------------------------------------ the data set's zone


START = datetime(2026, 1, 2, 20, 0)  # 20:00 local on each day of the log


def _log(tmp_path, zone: str | None):
    """Five users, each finishing four films at 20:00 `zone` time (written without a zone), one a day."""
    tz = NEW_YORK if zone else timezone.utc
    rows = ["user_id,item_id,event,t"]
    for u in range(5):
        for k in range(4):
            local = (START + timedelta(days=u * 4 + k)).replace(tzinfo=tz)
            rows.append(f"u{u},i{(u + k) % 8},finish,{local.strftime('%Y-%m-%d %H:%M:%S')}")
    path = tmp_path / f"log_{zone is not None}.csv"
    path.write_text("\n".join(rows) + "\n")
    items = tmp_path / "items.csv"
    items.write_text("item_id,modality\n" + "".join(f"i{i},film\n" for i in range(8)))
    options = ReadOptions(time_zone=zone) if zone else ReadOptions()
    return import_dataset("csv", path, columns=ColumnMap(time="t"), items=items, options=options)


def test_the_import_zone_is_the_data_sets_zone_and_survives_the_data_folder(tmp_path):
    data = _log(tmp_path, "America/New_York")
    assert dataset_zone(data) == "America/New_York"
    save_dataset(data, tmp_path / "ny")
    assert dataset_zone(load_dataset(tmp_path / "ny")) == "America/New_York"
    utc = _log(tmp_path, None)
    assert dataset_zone(utc) == "UTC"
    old = dict(data.meta)
    old.pop("time_text")  # a folder written before the zone was kept: UTC
    data.meta = old
    assert dataset_zone(data) == "UTC"


def test_the_context_prior_learns_a_new_york_log_in_new_york_evenings(tmp_path):
    ny = _log(tmp_path, "America/New_York")
    assert set(((ny.interactions.timestamp % 86_400) // 3600).tolist()) == {1}  # 01:00 UTC: "night" in UTC
    prior = context_prior(ny, leave_last_out(ny))
    assert set(prior["day_part"]) == {"evening"}
    utc = _log(tmp_path, None)  # the same wall times in UTC: 20:00 UTC, evening too
    assert set(context_prior(utc, leave_last_out(utc))["day_part"]) == {"evening"}
    shifted = _log(tmp_path, "America/New_York")
    shifted.meta = {k: v for k, v in shifted.meta.items() if k != "time_text"}  # the same instants read as UTC
    assert set(context_prior(shifted, leave_last_out(shifted))["day_part"]) == {"night"}


class FixedScorer:
    """Retrieval stand-in: fixed item vectors, every user the same vector."""

    def __init__(self, n_items: int):
        self.items = np.random.default_rng(0).normal(size=(n_items, 4))

    def user_vectors(self, rows, _prefix):
        return np.ones((len(rows), 4))

    def item_matrix(self):
        return self.items


def test_ranker_and_scorer_examples_carry_the_local_hour(tmp_path):
    data = _log(tmp_path, "America/New_York")
    hours = []

    def featurize(_user, _vectors, candidates, _history, hour, *_rest):
        hours.append(hour)
        return np.zeros((len(candidates), 1), np.float32)

    cfg = RankerConfig(retrieve=8, negatives_per_event=2)
    build_training_set(data, leave_last_out(data), FixedScorer(data.n_items), None, cfg, featurize)
    assert hours and set(hours) == {20.0}


def test_re_ranking_at_evaluation_reads_the_local_hour(tmp_path):
    from edgerec.models.scorer import ScorerRerank

    data = _log(tmp_path, "America/New_York")
    split = leave_last_out(data)
    retrieval = FixedScorer(data.n_items)
    table = item_table(data.catalog, np.ones(data.n_items))
    rerank = RerankScorer(retrieval, None, table, data, split, "val")
    t = int(data.interactions.timestamp[0])
    assert rerank.hour(t) == 20.0
    n = len(FEATURES) + 4
    scorer = ScorerRerank(retrieval, LinearScorer(FEATURES + tuple(f"taste match {i}" for i in range(4)),
                                                  np.zeros(n), np.zeros(n), np.ones(n), 0.0),
                          table, data, split, "val")
    seen = []
    scorer.scorer = type("Spy", (), {"score": lambda _self, feats: seen.append(feats) or np.zeros(len(feats))})()
    top = np.arange(3)
    scorer.rerank(0, np.ones(4), retrieval.items, top, np.zeros(0, np.int64), t, 0)
    film = FEATURES.index("evening x film")
    assert seen[0][:, film].tolist() == [1.0] * 3  # every candidate is a film, the hour 20:00 local
    assert seen[0][:, FEATURES.index("night x film")].tolist() == [0.0] * 3
    assert DAY_PARTS[day_part(20.0)] == "evening"


def test_a_replayed_request_carries_the_data_sets_local_hour():
    """The studies' replays passed only "now": the device took the hour of the host machine's zone."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from edgerec.studies.base import replay_context

    t = datetime(2024, 7, 1, 20, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()
    assert replay_context(t, "America/New_York", device="tv") == {"now": t, "hour": 20.0, "device": "tv"}
    assert replay_context(t, None)["hour"] == 0.0  # 00:00 UTC


def test_the_replay_study_asks_at_the_data_sets_local_hour(small_dataset):
    """The replays passed only "now", so the device took the host machine's hour: the list depended on
    where the study ran."""
    from copy import copy

    import numpy as np

    from edgerec.data.local_hours import local_hours
    from edgerec.data.split import leave_last_out
    from edgerec.studies.replay import replay_lists

    class Device:  # records nothing, answers nothing: what each request was asked with
        asked = []

        def record(self, *args, **kwargs):
            return None

        def recommend(self, user, k, context, policy):
            self.asked.append(context)
            return []

    dataset = copy(small_dataset)
    dataset.meta = dict(small_dataset.meta, time_text={"zone": "America/New_York"})
    split = leave_last_out(dataset)
    list(replay_lists(Device(), dataset, split, np.arange(3)))
    times = [float(t) for t in split.test_times[:3]]
    assert [c["now"] for c in Device.asked] == times
    assert [c["hour"] for c in Device.asked] == local_hours(times, "America/New_York").tolist()
