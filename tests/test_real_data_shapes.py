"""Host commands on odd but legal shapes of real logs (an audit on MovieLens-100K cut down).

Each case once produced a table of figures for something that was never measured: users with
two items each (no test item: every metric 0.0000), users with three each (no training user
with two items: item and user kNN ranked the catalog in id order), and a ratings log (no finish
events and no durations: the fitted click model simulated completion 0 and made-up watch time,
and an A/B test on finishes reported p = 1 and an MDE of 0).
"""

import json

import numpy as np
import pytest

from edgerec.data.loaders import import_dataset
from edgerec.data.split import leave_last_out
from edgerec.errors import ConfigError, DataError


def _ratings(tmp_path, per_user, users=30, items=12, event="rate", durations=False):
    """A MovieLens-like log: `per_user` distinct items rated by each user, an items file with genres."""
    rng = np.random.default_rng(0)
    lines = ["user_id,item_id,timestamp,event,value"]
    for u in range(users):
        for n, i in enumerate(rng.choice(items, per_user, replace=False)):
            lines.append(f"u{u},i{i},{1000 + 10 * n},{event},4")
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    rows = ["item_id,title,genre,duration"] + [
        f"i{i},Film {i},{('drama', 'comedy', 'horror')[i % 3]},{1800 * (i + 1) if durations else ''}"
        for i in range(items)]
    (tmp_path / "items.csv").write_text("\n".join(rows) + "\n")
    return import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.csv")


def test_evaluation_of_a_log_without_test_items_is_refused_not_zero(tmp_path):
    from edgerec.models.baselines import make_baseline
    from edgerec.models.evaluation import Evaluator

    dataset = _ratings(tmp_path, per_user=2)
    split = leave_last_out(dataset)
    evaluator = Evaluator(split, dataset.catalog)
    for phase in ("test", "val"):
        with pytest.raises(DataError, match=f"no user has a {phase} item.*at least three"):
            evaluator.evaluate(make_baseline("popular", dataset, split), phase)


def test_device_replays_of_a_log_without_test_items_are_refused(tmp_path):
    """`study replay` divided by zero users; `report fairness` printed a popularity-bias row of zeros
    for 0 replayed users; `experiment agreement` an offline NDCG of 0 for each arm."""
    from edgerec.data.store import save_dataset
    from edgerec.studies.agreement import AgreementStudy
    from edgerec.studies.fairness import FairnessStudy
    from edgerec.studies.replay import ReplayStudy
    from edgerec.studies.simulator import Arm

    data = save_dataset(_ratings(tmp_path, per_user=2), tmp_path / "data")
    never_opened = tmp_path / "no-bundle-needed"
    for study in (ReplayStudy(never_opened, data, tmp_path / "h.db"), FairnessStudy(never_opened, data, tmp_path / "h.db"),
                  AgreementStudy([Arm(n, never_opened) for n in "abc"], data)):
        with pytest.raises(DataError, match="no user has a test item"):
            study.measure(lambda *a: None)


def test_replaying_another_data_set_says_to_pass_the_bundles_data(tmp_path):
    """`study replay` / `report fairness` with --data not the bundle's: the device's own advice, "add it
    with add_items() first", was the wrong one for a host study; it names the --data to pass instead."""
    from edgerec.errors import UnknownIdError
    from edgerec.studies.replay import replay_lists

    class Device:  # a bundle that knows items i0..i5 only
        def record(self, user, item, event, timestamp=None):
            if int(item[1:]) > 5:
                raise UnknownIdError(f"unknown item {item!r}: add it with add_items() first")

        def recommend(self, *args, **kwargs):
            return []

    dataset = _ratings(tmp_path, per_user=8)
    split = leave_last_out(dataset)
    with pytest.raises(ConfigError, match=r"the data holds item 'i\d+', which the bundle does not know: pass the "
                                          "--data the bundle was built on"):
        list(replay_lists(Device(), dataset, split, np.arange(len(split.test_users))))


def test_content_on_a_one_genre_catalog_does_not_ask_for_the_items_file_it_has(tmp_path):
    from edgerec.models.baselines import make_baseline

    dataset = _ratings(tmp_path, per_user=5)
    dataset.catalog.text["genre"] = ["drama"] * len(dataset.catalog.item_ids)
    with pytest.raises(DataError, match="none, or the same for every item.*tags or genres that differ"):
        make_baseline("content", dataset, leave_last_out(dataset))


@pytest.mark.parametrize("name", ["itemknn", "userknn"])
def test_knn_without_any_co_consumption_is_refused_not_id_order(tmp_path, name):
    from edgerec.models.baselines import make_baseline
    from edgerec.models.evaluation import Evaluator

    dataset = _ratings(tmp_path, per_user=3)  # one training item per user: no two items ever together
    split = leave_last_out(dataset)
    with pytest.raises(DataError, match=f"no training user consumed two distinct items, so {name}"):
        make_baseline(name, dataset, split)
    hybrid = make_baseline("hybrid", dataset, split)  # content and popularity, without the kNN part
    assert [type(s).__name__ for s, _ in hybrid.parts] == ["ContentBased", "_Log"]
    assert 0.0 <= Evaluator(split, dataset.catalog).evaluate(hybrid)["HR@10"] <= 1.0
    # comparing several models, the one this data cannot support is a row that says why, not the end
    from click.testing import CliRunner

    from edgerec.cli.main import cli
    from edgerec.data.store import save_dataset

    save_dataset(dataset, tmp_path / "three")
    args = ["evaluate", "--data", str(tmp_path / "three"), "--json", str(tmp_path / "e.json")]
    result = CliRunner().invoke(cli, [*args, "--model", "popular", "--model", name])
    assert result.exit_code == 0, result.output
    rows = {r["model"]: r for r in json.loads((tmp_path / "e.json").read_text())["results"]}
    assert "HR@10" in rows["popular"] and "no training user consumed two" in rows[name]["not measured"]
    assert CliRunner().invoke(cli, [*args, "--model", name]).exit_code != 0  # alone, it is an error
    assert CliRunner().invoke(cli, [*args, "--model", "popular", "--model", "no-such-model"]).exit_code != 0
    longer = _ratings(tmp_path, per_user=4)  # two training items each: kNN has something to go on
    assert make_baseline(name, longer, leave_last_out(longer)).name == name


def test_a_ratings_log_says_what_its_click_model_cannot_simulate(tmp_path):
    from edgerec.studies.experiments import ABStudy, SimulateStudy, unmeasured_metrics
    from edgerec.studies.online_metrics import METRICS
    from edgerec.studies.reactions import FittedReactions
    from edgerec.studies.simulator import Arm

    ratings = FittedReactions(_ratings(tmp_path, per_user=5))
    assert set(ratings.unmeasured) == {"finishes", "likes", "watch_s"}
    assert unmeasured_metrics(ratings) == ["completion", "watch_min_per_day", "minutes_per_session"]
    (tmp_path / "plays").mkdir()
    plays = FittedReactions(_ratings(tmp_path / "plays", per_user=5, event="finish", durations=True))
    assert plays.unmeasured == () and unmeasured_metrics(plays) == []

    from edgerec.data.store import save_dataset
    data = save_dataset(_ratings(tmp_path, per_user=5), tmp_path / "data")
    arm = Arm("control", tmp_path / "no-bundle-needed")
    for metric in ("finishes", "likes", "watch_s"):
        with pytest.raises(ConfigError, match=f"nothing to simulate {metric} from"):
            ABStudy(arm, arm, data, metric=metric).measure(lambda *a: None)
    zeros = {m: 0.0 for m in METRICS}
    record = {"users": 3, "reactions": "FittedReactions", "unmeasured": ["completion", "watch_min_per_day"],
              "metrics": {"bundle": {"users": 3, "overall": zeros, "days": [{"day": 0, **zeros}]}}}
    overall, per_day = SimulateStudy.tables(record)
    for table in (overall, per_day):
        row = table.rows[0]
        assert row["completion"] == "n/a" and row["watch_min_per_day"] == "n/a" and row["CTR"] == 0.0


def test_simulating_a_log_without_three_events_per_user_is_refused(tmp_path):
    """`experiment simulate` on it: nobody to simulate, an empty log, then a KeyError traceback."""
    from edgerec.studies.reactions import FittedReactions
    from edgerec.studies.simulator import SimConfig, Simulator

    dataset = _ratings(tmp_path, per_user=2)
    with pytest.raises(DataError, match="no user in the log has three or more events"):
        Simulator(dataset, FittedReactions(dataset), SimConfig(users=5, days=1, pre_days=0))
    longer = _ratings(tmp_path, per_user=3)
    assert len(Simulator(longer, FittedReactions(longer), SimConfig(users=5, days=1, pre_days=0)).user_codes) == 5


def test_json_records_are_strict_json_with_undefined_figures_as_null(tmp_path):
    """A/B on a metric whose control mean is 0 has no relative change (NaN): the record said `NaN`,
    which JSON.parse and strict parsers reject. Studies and CLI JSON write null instead."""
    import json

    from edgerec.cli.output import write_json
    from edgerec.studies import stats
    from edgerec.studies.base import StudyResult

    def strict(text):
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))

    comparison = stats.welch(np.zeros(5), np.array([0.0, 1.0, 0.0, 2.0, 1.0]), "likes")
    record = {"tests": {"welch": comparison.to_dict()}, "bands": [float("inf"), 1.5, (float("-inf"),)]}
    assert strict(StudyResult("ab", record).to_json()) == {
        "tests": {"welch": {**comparison.to_dict(), "relative": None}}, "bands": [None, 1.5, [None]]}
    write_json(tmp_path / "out.json", record)
    assert strict((tmp_path / "out.json").read_text())["tests"]["welch"]["relative"] is None


def _diversity_by_slots(lists, item_tags):
    """The definition, slot against slot (what intra_list_diversity computed before it was chunked)."""
    values = []
    for row in lists:
        for a in range(len(row)):
            for c in range(a + 1, len(row)):
                if row[a] < 0 or row[c] < 0:
                    continue
                ta, tc = [t for t in item_tags[row[a]] if t >= 0], [t for t in item_tags[row[c]] if t >= 0]
                if not ta or not tc:  # an untagged item forms no pair
                    continue
                inter = sum(t in tc for t in ta)
                union = len(ta) + len(tc) - inter
                values.append(1.0 - inter / max(union, 1))
    return float(np.mean(values)) if values else 0.0


def test_intra_list_diversity_is_the_definition_in_bounded_memory():
    """`evaluate --k 2000` on MovieLens-100K asked numpy for 899 GiB (every tag slot of every pair of
    places at once) and died with a traceback; k = 100 already needed 2.4 GB."""
    import tracemalloc

    from edgerec.models.metrics import intra_list_diversity

    rng = np.random.default_rng(5)
    tags = rng.integers(-1, 6, (40, 4))  # padded with -1, repeated codes included
    lists = rng.integers(-1, 40, (9, 7))
    expected = _diversity_by_slots(lists, tags)
    for budget in (1, 50, 1 << 24):  # one list at a time, a few, all
        assert intra_list_diversity(lists, tags, budget=budget) == pytest.approx(expected, abs=1e-12)
    big_tags = rng.integers(-1, 19, (1682, 16))
    big_lists = np.stack([rng.permutation(1682)[:1000] for _ in range(4)])
    tracemalloc.start()
    try:
        value = intra_list_diversity(big_lists, big_tags)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0.0 < value < 1.0 and peak < 400e6  # slot against slot: 4 x 1000 x 1000 x 16 x 16 bytes = 1 GB


def test_return_rate_of_a_period_with_no_day_before_is_none_not_zero():
    """`experiment simulate --days 1 --pre-days 0` printed return_rate 0.0000: nobody could return."""
    from edgerec.studies.online_metrics import online_metrics
    from edgerec.studies.simulator import FIELDS, SimLog

    def log(days):
        values = {f: np.ones((3, len(days))) for f in FIELDS}
        return SimLog(["a", "b", "c"], ["x"] * 3, np.array(days), values, {"x": {d: ["i1"] for d in days}})

    one_day = online_metrics(log([0]), {"i1": 0.5})["x"]
    assert one_day["overall"]["return_rate"] is None and one_day["days"][0]["return_rate"] is None
    assert one_day["overall"]["CTR"] == 1.0
    two_days = online_metrics(log([-1, 0, 1]), {"i1": 0.5})["x"]  # a pre-day, then two days: all came back
    assert two_days["overall"]["return_rate"] == 1.0 and [d["return_rate"] for d in two_days["days"]] == [1.0, 1.0]


def test_novelty_reads_the_catalog_once_per_summary_not_once_per_shown_item():
    """The rarest share (what an unknown item counts as) was .get's default, so found again for every shown
    item: shown x catalog work, 51 s of CPU for 50k items shown from a 50k catalog (0.04 s now)."""
    from edgerec.studies.online_metrics import online_metrics
    from edgerec.studies.simulator import FIELDS, SimLog

    class Counted(dict):
        scans = 0

        def values(self):
            Counted.scans += 1
            return super().values()

    shown = {d: ["i1", "i2", "gone"] * 100 for d in (0, 1)}  # "gone": an item the log never held
    log = SimLog(["a", "b"], ["x"] * 2, np.array([0, 1]), {f: np.ones((2, 2)) for f in FIELDS}, {"x": shown})
    popularity = Counted({"i1": 0.5, "i2": 0.25})
    got = online_metrics(log, popularity)["x"]
    assert Counted.scans <= 3  # one per day and one overall, however many items were shown
    assert got["overall"]["novelty"] == pytest.approx((1 + 2 + 2) / 3)  # "gone" counts as the rarest, 0.25


def test_a_transfer_from_a_domain_to_itself_is_refused(tmp_path):
    """`study transfer --by genre --source drama --target drama` on MovieLens-100K reported NDCG@10
    0.91 and HR@10 1.0 (1.9x popularity): the hidden target history was the source history."""
    from edgerec.studies.transfer import fit_transfer

    dataset = _ratings(tmp_path, per_user=6)
    with pytest.raises(ConfigError, match="both 'drama': a transfer needs two domains"):
        fit_transfer(dataset, "drama", "drama", by="genre")
    with pytest.raises(ConfigError, match="no domain 'western'"):  # two names: on to the usual checks
        fit_transfer(dataset, "drama", "western", by="genre")


def test_simulated_figures_a_ratings_log_cannot_give_are_null_in_the_json_too(tmp_path):
    """The tables printed n/a for completion and watch time on a ratings log, but the simulate and A/B
    records held the click model's made-up 0.0 and 30 minutes, which a script would read as figures."""
    from edgerec.studies.online_metrics import online_metrics
    from edgerec.studies.simulator import FIELDS, SimLog

    values = {f: np.ones((2, 1)) for f in FIELDS}
    log = SimLog(["a", "b"], ["x", "x"], np.array([0]), values, {"x": {0: ["i1"]}})
    made_up = online_metrics(log, {"i1": 0.5}, ("completion", "watch_min_per_day"))["x"]
    assert made_up["overall"]["completion"] is None and made_up["days"][0]["watch_min_per_day"] is None
    assert made_up["overall"]["plays_per_day"] == online_metrics(log, {"i1": 0.5})["x"]["overall"]["plays_per_day"]
    assert online_metrics(log, {"i1": 0.5})["x"]["overall"]["completion"] == 1.0
