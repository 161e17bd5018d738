"""The study interface, the on-device replay study, and the ranker recipe behind `edgerec train --arch ranker`."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data.split import leave_last_out
from edgerec.data.store import load_dataset
from edgerec.errors import ModelError
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.vocab import LOG_EVENTS, LOG_TO_DEVICE
from edgerec.studies.base import Study, Table
from edgerec.studies.replay import REPLAYED_EVENTS, ReplayStudy


def test_a_result_is_rebuilt_from_its_json_record(tmp_path, tiny_bundle):
    result = ReplayStudy(tiny_bundle, tiny_bundle.parent / "data", tmp_path / "h.db", users=5).run()
    assert result.study == "replay" and result.plot is None and result.write_plot(tmp_path / "x.png") is None
    saved = json.loads(result.write_json(tmp_path / "replay.json").read_text())
    assert saved == json.loads(result.to_json()) and saved["users"] == 5
    again = ReplayStudy.result(saved)
    assert [(t.title, t.rows) for t in again.tables] == [(t.title, t.rows) for t in result.tables]
    # the example is a made-up user who played the three most popular items, never a replayed history
    from edgerec.runtime import Recommender

    with Recommender.open(tiny_bundle) as rec:
        rows = np.arange(rec.catalog.base_count)
        popular = np.argsort(-rec.catalog.numeric_column("popularity", rows), kind="stable")[:3]
        titles = {rec.catalog.meta(int(r))["title"] for r in popular}
        assert saved["example"]["played"] == [rec.catalog.item_id(int(r)) for r in popular]
    shown = saved["example"]["recommendations"]
    assert shown and not {r["item"] for r in shown} & set(saved["example"]["played"])
    named = [r["why"] for r in shown if r["why"].startswith("because")]
    assert named and all(any(t in why for t in titles) for why in named)


def test_a_study_must_define_its_measurement():
    class Unfinished(Study):
        name = "unfinished"

    with pytest.raises(TypeError, match="measure"):
        Unfinished()

    class Counting(Study):
        name = "counting"
        draws = True

        def measure(self, progress):
            progress("counted", {"n": 3})
            return {"n": 3}

        @classmethod
        def tables(cls, record):
            return [Table("count", [record])]

        @classmethod
        def draw(cls, record, path):
            path.write_text(str(record["n"]))
            return path

    said = []
    result = Counting().run(lambda message, values: said.append((message, values)))
    assert said == [("counted", {"n": 3})] and result.tables[0].rows == [{"n": 3}]
    assert result.plot is not None


def _replayed(tmp_path, tiny_bundle, data_dir, users):
    db = tmp_path / "device.db"
    record = ReplayStudy(tiny_bundle, data_dir, db, users=users, seed=3).run().record
    return record, HistoryStore(db)


def test_replay_records_what_the_device_would_have_seen(tmp_path, tiny_bundle):
    data_dir = tiny_bundle.parent / "data"
    record, store = _replayed(tmp_path, tiny_bundle, data_dir, users=12)
    assert record["users"] == 12 and 0 <= record["HR@10"] <= 1 and record["p99_ms"] >= record["p50_ms"] > 0
    dataset = load_dataset(data_dir)
    split = leave_last_out(dataset)
    log = dataset.interactions
    profiles = store.profiles()
    assert len(profiles) == 12
    for name in profiles[:4]:
        user = dataset.user_ids.index(name)
        train = np.flatnonzero((log.user == user) & split.train_events)[-REPLAYED_EVENTS:]
        expected = [LOG_TO_DEVICE[LOG_EVENTS[log.event[e]]] for e in train] + [  # the validation item, as logged
            LOG_TO_DEVICE[LOG_EVENTS[log.event[split.val_events[list(split.val_users).index(user)]]]]]
        assert [e.event for e in store.events(name)] == expected


def test_replay_maps_host_only_ratings_to_device_events(tmp_path, tiny_bundle):
    """A log with ratings (MovieLens) replays: a `rate` becomes the device event the vocabulary says."""
    data_dir = tmp_path / "rated"
    shutil.copytree(tiny_bundle.parent / "data", data_dir)
    log_file = data_dir / "interactions.csv"
    log_file.write_text(log_file.read_text().replace(",like,", ",rate,"))
    assert ",rate," in log_file.read_text()
    _, store = _replayed(tmp_path, tiny_bundle, data_dir, users=20)
    events = {e.event for name in store.profiles() for e in store.events(name)}
    assert "rate" not in events and LOG_TO_DEVICE["rate"] in events


def test_train_ranker_command_runs_the_library_recipe(tmp_path, tiny_bundle):
    """`edgerec train --arch ranker` only parses and prints; the recipe (models/ranker_recipe.py) trains and saves."""
    from edgerec.models.persist import load_ranker

    out = tmp_path / "ranker"
    result = CliRunner().invoke(cli, ["train", "--data", str(tiny_bundle.parent / "data"), "--arch", "ranker",
                                      "--retrieval", str(tiny_bundle.parent / "ckpt"), "--out", str(out),
                                      "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert "does re-ranking help" in result.output
    _, info = load_ranker(out)
    gain = info["validation"]
    assert info["ships"] == (gain["NDCG@10 with ranker"] > gain["NDCG@10 retrieval only"])
    assert len(info["history"]) == 1 and info["groups"] > 0


def test_a_context_the_ranker_never_saw_leaves_its_scores_as_they_were():
    """A log without device types (MovieLens) trains the ranker with the device columns all 0; an app
    that then says "tv" must get the scores of an unknown device, not ones scrambled by a column the
    training never moved (it used to enter the net scaled 1,000-fold)."""
    import torch

    from edgerec.models.ranker import RankerConfig, RankerExamples, train_ranker
    from edgerec.runtime.features import DEVICES, feature_count

    dim, rng = 8, np.random.default_rng(0)
    width = feature_count(dim)
    groups = rng.normal(size=(300, 5, width)).astype(np.float32)
    device_cols = slice(dim + 3, dim + 3 + len(DEVICES))  # after the vector product, the cosine and the hour
    groups[:, :, device_cols] = 0.0
    examples = RankerExamples(groups, np.ones(300, np.float32), np.ones(300, np.float32), np.zeros((0, width), np.float32))
    model, _ = train_ranker(examples, RankerConfig(epochs=1, batch_size=64))
    plain = torch.as_tensor(groups[:20, 0])
    on_tv = plain.clone()
    on_tv[:, dim + 3 + DEVICES.index("tv")] = 1.0
    with torch.no_grad():
        assert torch.equal(model(on_tv), model(plain))
        varied = plain.clone()
        varied[:, 0] += 1.0  # a column training did see still moves the scores
        assert not torch.equal(model(varied), model(plain))


def _ranker_with_a_near_constant_hour():
    from edgerec.models.ranker import RankerConfig, RankerExamples, train_ranker
    from edgerec.runtime.features import feature_count

    dim, rng = 8, np.random.default_rng(1)
    width = feature_count(dim)
    groups = rng.normal(size=(300, 5, width)).astype(np.float32)
    hour = dim + 1  # the hour's sine, after the vector product and the cosine
    groups[:, :, hour] = 0.5 + rng.normal(scale=1e-5, size=(300, 5))  # a log of a few seconds: one hour
    examples = RankerExamples(groups, np.ones(300, np.float32), np.ones(300, np.float32), np.zeros((0, width), np.float32))
    model, _ = train_ranker(examples, RankerConfig(epochs=1, batch_size=64))
    return model, groups, hour


def test_a_feature_value_beyond_the_training_range_reads_as_the_nearest_value_training_saw():
    """A near-constant column (the hour of a log a few seconds long) is scaled by up to 1,000; an hour the
    training never had then reached the net at hundreds of standard deviations (logits of ~6e5 measured,
    which int8 rounding scrambled). Scaled features are clamped to the training range."""
    import torch

    model, groups, hour = _ranker_with_a_near_constant_hour()
    plain = torch.as_tensor(groups[:20, 0])
    late, edge = plain.clone(), plain.clone()
    late[:, hour] = 0.9
    edge[:, hour] = float(groups[:, :, hour].max())
    with torch.no_grad():
        assert torch.allclose(model(late), model(edge))
        assert model(late).abs().max() < 100
        inside = plain.clone()
        inside[:, hour] = float(np.median(groups[:, :, hour]))  # within the range the hour still counts
        assert not torch.equal(model(inside), model(edge))


def test_a_ranker_saved_before_the_clamp_loads_and_scores_unclamped(tmp_path):
    import torch

    from edgerec.models.persist import load_ranker, save_ranker

    model, groups, hour = _ranker_with_a_near_constant_hour()
    save_ranker(tmp_path / "r", model, tmp_path, {})
    state_file = tmp_path / "r" / "model.safetensors"
    from safetensors.torch import load_file, save_file

    from edgerec.models.checkpoint import weights_save_id

    state = {k: v for k, v in load_file(str(state_file)).items() if k not in ("low", "high")}
    same_save = {"save": weights_save_id(state_file)}  # the checkpoint's own save id: only the clamp is missing
    save_file(state, str(state_file), metadata=same_save)
    old, _ = load_ranker(tmp_path / "r")
    assert float(old.high.min()) >= 1e29 and float(old.low.max()) <= -1e29
    x = torch.as_tensor(groups[:5, 0])
    with torch.no_grad():
        assert torch.allclose(old(x), model(x))  # inside the training range both agree
    del state["scale"]
    save_file(state, str(state_file), metadata=same_save)
    with pytest.raises(ModelError, match="without scale"):
        load_ranker(tmp_path / "r")
