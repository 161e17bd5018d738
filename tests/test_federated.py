"""The server's part of federated learning: FedAvg, DP-FedAvg noise and clipping, accounting, the new bundle."""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgerec.errors import ConfigError, DataError
from edgerec.federated.accounting import DPPlan, noise_for, spent_epsilon
from edgerec.federated.publish import publish_bundle
from edgerec.federated.server import FederatedServer, ServerConfig, dp_fedavg, fedavg
from edgerec.federated.table_bound import TableFit, fit_table, held_out_loss
from edgerec.runtime import Recommender
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.fed_format import ClientUpdate, decode_update
from edgerec.runtime.federated import Consent, Personal, RoundTask, take_part, user_vectors
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.privacy_ledger import PrivacyLedger

GOLDEN = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"
SPACE = "ab" * 12


def update(rows, delta, weight=1.0):
    return ClientUpdate(0, SPACE, np.asarray(rows, np.int64), np.asarray(delta, np.float32), weight)


def test_dp_noise_has_the_scale_the_accountant_was_promised():
    """Per coordinate, sigma * C / K: not sigma, not sigma * C, not divided by the devices that came."""
    sigma, clip, k = 1.3, 0.5, 50
    noise = dp_fedavg([], (4000, 16), clip, sigma, k, np.random.default_rng(0))
    assert noise.std() == pytest.approx(sigma * clip / k, rel=0.02)
    assert abs(noise.mean()) < 3 * sigma * clip / k / np.sqrt(noise.size)
    plan = DPPlan(4.0, 1e-6, 0.25, 10, clip)
    server = FederatedServer(np.eye(4, 16, dtype=np.float32), SPACE, 200, ServerConfig(rounds=10, clients_per_round=50),
                             RoundTask(round=0, space=SPACE, clip=clip), plan)
    assert server.noise_std == pytest.approx(server.noise_multiplier * clip / 50)


def test_dp_fedavg_clips_every_update_again_and_weighs_devices_equally():
    big = update([0, 2], np.full((2, 4), 5.0), weight=400)  # a device that skipped its own clip
    small = update([1], np.full((1, 4), 0.01), weight=1)
    got = dp_fedavg([big, small], (3, 4), 0.5, 0.0, 2, np.random.default_rng(0))
    assert np.linalg.norm(got[[0, 2]] * 2) == pytest.approx(0.5, rel=1e-6)  # clipped to C, then / K
    assert np.allclose(got[1], 0.005)  # the small one is untouched, not outweighed


def test_fedavg_weighs_by_examples_up_to_the_cap():
    a, b = update([3], [[1.0, 0.0]], weight=1), update([3, 4], [[0.0, 1.0], [1.0, 1.0]], weight=3)
    mean, rows = fedavg([a, b], (5, 2), weight_cap=50)
    assert np.allclose(mean[3], [0.25, 0.75]) and np.allclose(mean[4], [0.75, 0.75]) and rows.tolist() == [3, 4]
    capped, _ = fedavg([a, b], (5, 2), weight_cap=1)
    assert np.allclose(capped[3], [0.5, 0.5])


def test_the_table_bound_learns_where_users_went_and_refuses_what_does_not_fit():
    """Groups of users who went on to an item that v1 ranks low for them: fitted on those steps, the table
    ranks those items far higher, and the softmax loss falls."""
    rng = np.random.default_rng(0)
    table = rng.normal(size=(60, 8)).astype(np.float32)
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    centres = rng.normal(size=(6, 8)).astype(np.float32)
    group = np.arange(400) % 6
    users = centres[group] + 0.3 * rng.normal(size=(400, 8)).astype(np.float32)
    users /= np.linalg.norm(users, axis=1, keepdims=True)
    targets = np.argsort(centres @ table.T, axis=1)[:, 5][group]  # a group's sixth-worst item, for all of it

    def ranks_and_loss(t):
        logits = users @ t.T / 0.1
        rank = (logits > logits[np.arange(len(users)), targets][:, None]).sum(1)
        logits -= logits.max(1, keepdims=True)
        loss = -(logits[np.arange(len(users)), targets] - np.log(np.exp(logits).sum(1)))
        return rank.mean(), loss.mean()

    fitted = fit_table(users, targets, table, 0.1, TableFit(epochs=1, min_steps=300, batch=64, lr=0.01))
    (rank0, loss0), (rank1, loss1) = ranks_and_loss(table), ranks_and_loss(fitted)
    assert rank1 < 0.1 * rank0 and loss1 < loss0 - 1.0
    # one full-batch step is Adam's first: each weight moves by lr * g / (|g| + 1e-8) against the gradient
    # g of the mean softmax loss at the given temperature
    step = fit_table(users, targets, table, 0.1, TableFit(epochs=1, min_steps=1, batch=len(users), lr=1e-3))
    logits = users @ table.T / 0.1
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    prob[np.arange(len(users)), targets] -= 1.0
    grad = prob.T @ (users / 0.1) / len(users)
    assert np.allclose(step, table - 1e-3 * grad / (np.abs(grad) + 1e-8), atol=1e-6)
    assert np.array_equal(fit_table(users, targets, table, 0.1, TableFit(min_steps=20)),
                          fit_table(users, targets, table, 0.1, TableFit(min_steps=20)))  # seeded
    # held-out steps pick the epoch: kept when the fit generalises to them, v1's table when it only overfits
    fit = TableFit(epochs=1, min_steps=200, batch=64, lr=0.01)
    chosen = fit_table(users[:300], targets[:300], table, 0.1, fit, held_out=(users[300:], targets[300:]))
    assert held_out_loss(users[300:], targets[300:], chosen, 0.1) < held_out_loss(users[300:], targets[300:], table, 0.1)
    liked = np.argmax(users @ table.T, axis=1)  # v1 already ranks each user's next item first
    noise = np.random.default_rng(1).integers(0, 60, 300)
    overfit = fit_table(users[:300], noise, table, 0.1, fit)
    assert held_out_loss(users[300:], liked[300:], overfit, 0.1) > held_out_loss(users[300:], liked[300:], table, 0.1)
    assert np.array_equal(fit_table(users[:300], noise, table, 0.1, fit, held_out=(users[300:], liked[300:])), table)
    poisoned = users.copy()
    poisoned[3, 2] = np.nan
    for bad in [dict(targets=targets[:-1]), dict(targets=np.full(400, 60)), dict(users=users[:, :4]),
                dict(temperature=0.0), dict(users=poisoned)]:
        args = dict(users=users, targets=targets, table=table, temperature=0.1) | bad
        with pytest.raises(ConfigError):
            fit_table(**args)
    with pytest.raises(ConfigError):
        TableFit(lr=0).check()


def test_epsilon_grows_with_rounds_and_falls_with_noise():
    by_rounds = [spent_epsilon(1.0, 0.05, r, 1e-6) for r in (1, 5, 20, 100)]
    assert all(a < b for a, b in zip(by_rounds, by_rounds[1:]))
    by_noise = [spent_epsilon(s, 0.05, 20, 1e-6) for s in (0.7, 1.0, 2.0)]
    assert all(a > b for a, b in zip(by_noise, by_noise[1:]))
    assert spent_epsilon(1.0, 0.05, 20, 1e-6, "pld") == pytest.approx(by_rounds[2], rel=0.25)  # two accountants
    assert spent_epsilon(0.0, 0.05, 20, 1e-6) == float("inf")


def test_the_noise_for_a_target_spends_that_epsilon():
    sigmas = []
    for eps in (1.0, 4.0, 8.0):
        sigma = noise_for(eps, 1e-6, 0.1, 20)
        assert eps * 0.97 <= spent_epsilon(sigma, 0.1, 20, 1e-6) <= eps * 1.0001
        sigmas.append(sigma)
    assert sigmas[0] > sigmas[1] > sigmas[2] > 0
    with pytest.raises(ConfigError):
        noise_for(4.0, 1e-6, 1.5, 20)


def devices_going_to(rec, target: int, n: int = 6):
    """In-memory devices whose histories all end in `target` after other items."""
    stores = []
    recent = time.time() - 3_600  # explicit times retention keeps (reads drop what it would remove)
    for d in range(n):
        store = HistoryStore(":memory:")
        for i, row in enumerate([(d * 7 + j) % 50 + 1 for j in range(4)] + [target]):
            if row != target or i == 4:
                store.record(f"u{d}", rec.catalog.item_id(row), "play", ts=recent + i)
        stores.append(store)
    return stores


def test_fedavg_rounds_teach_the_table_what_devices_did():
    """Devices that all went on to one item: after a few rounds that item ranks higher for them."""
    with Recommender.open(GOLDEN, backend="onnx") as rec:
        target = 55
        stores = devices_going_to(rec, target)
        histories = [[rec.catalog.row(i) for _, i, _, _ in s.events_after(f"u{d}", 0, 100)] for d, s in enumerate(stores)]
        users = np.concatenate([user_vectors(rec, h, np.array([len(h) - 1])) for h in histories])
        space = rec.manifest.embedding_space
        server = FederatedServer(rec.catalog.stored.dequantize(), space, len(stores),
                                 ServerConfig(rounds=5, clients_per_round=len(stores), server_lr=5.0),
                                 RoundTask(round=0, space=space, lr=0.01, clip=1.0))

        def rank(table):
            scores = users @ table.T
            return np.mean([(s > s[target]).sum() for s in scores])

        before = rank(server.table)
        for r in range(5):
            task = server.task(r)
            sent = [take_part(rec, f"u{d}", task, history=s, table=server.table, personal=Personal(enabled=False),
                              consent=Consent(opted_in=True, without_dp=True), ledger=PrivacyLedger(s, simulation=True)).payload
                    for d, s in enumerate(stores)]
            server.aggregate([decode_update(p) for p in sent])
        assert rank(server.table) < before - 1
        assert np.allclose(np.linalg.norm(server.table, axis=1), 1.0, atol=1e-5)
        with pytest.raises(ConfigError, match="does not fit"):
            server.aggregate([update([0], np.ones((1, rec.manifest.dim)))])  # another space


def test_the_step_search_keeps_the_step_the_evaluation_cohort_prefers():
    table = np.eye(6, 4, dtype=np.float32)
    push = [update([0, 1], np.full((2, 4), 0.1))]

    def run(prefer, rounds=3, dp=None, **cfg):
        server = FederatedServer(table, SPACE, 10, ServerConfig(rounds=rounds, clients_per_round=5, server_lr=4.0,
                                                                **cfg),
                                 RoundTask(round=0, space=SPACE, clip=1.0, upload_rows=2), dp)  # DP: 2-row uploads
        asked = []

        def evaluate(rows, delta, steps):
            asked.append((rows.tolist(), steps))
            return None if prefer is None else np.abs(np.asarray(steps) - prefer)
        for r in range(rounds):  # the server takes each round's own updates only
            server.aggregate([replace(u, round=r) for u in push], evaluate)
        return server, asked

    server, asked = run(prefer=1e9)  # larger is better: the step doubles every round
    assert [e["server_lr"] for e in server.log] == [8.0, 16.0, 32.0]
    assert asked[0] == ([0, 1], [2.0, 4.0, 8.0])  # the rows the round moves, at half, the same and twice the step
    moved = FederatedServer(table, SPACE, 10, ServerConfig(rounds=1, clients_per_round=5, server_lr=8.0),
                            RoundTask(round=0, space=SPACE, clip=1.0))
    moved.aggregate(push)
    first, _ = run(prefer=1e9, rounds=1)
    assert np.array_equal(first.table, moved.table)  # the chosen step is the one applied
    assert [e["server_lr"] for e in run(prefer=0.0)[0].log] == [2.0, 1.0, 0.5]
    assert [e["server_lr"] for e in run(prefer=None)[0].log] == [4.0] * 3  # nobody answered: unchanged
    fixed, asked = run(prefer=1e9, step_search=())
    assert [e["server_lr"] for e in fixed.log] == [4.0] * 3 and asked == []
    plan = DPPlan(4.0, 1e-6, 0.5, 3, 1.0)
    private, asked = run(prefer=1e9, dp=plan)  # DP: a step chosen on answers without noise is not private
    assert asked == [] and {e["server_lr"] for e in private.log} == {4.0}
    with pytest.raises(ConfigError, match="step-search"):
        ServerConfig(step_search=(0.0, 1.0)).check(10)
    server = FederatedServer(table, SPACE, 10, ServerConfig(rounds=1, clients_per_round=5),
                             RoundTask(round=0, space=SPACE, clip=1.0))
    for answer in ([1.0, np.nan, 2.0], [1.0, 2.0]):  # a garbled verdict moves nothing
        with pytest.raises(ConfigError, match="one finite loss per candidate"):
            server.aggregate(push, lambda rows, delta, steps, a=answer: np.array(a))
    assert np.array_equal(server.table, table)


def test_a_device_scores_candidate_steps_on_its_newest_item():
    from edgerec.runtime.federated import moved_rows, step_losses

    with Recommender.open(GOLDEN, backend="onnx") as rec:
        target = 55
        store = devices_going_to(rec, target, n=1)[0]
        consumed = [rec.catalog.row(i) for _, i, _, _ in store.events_after("u0", 0, 100)]
        user = user_vectors(rec, consumed, np.array([len(consumed) - 1]))[0]
        table, rows = rec.catalog.stored.dequantize(), np.array([target])
        toward = (user / np.linalg.norm(user))[None, :]
        ledger = PrivacyLedger(store, simulation=True)  # simulated devices keep their histories in memory
        kw = dict(history=store, consent=Consent(opted_in=True, without_dp=True), ledger=ledger)
        closer = step_losses(rec, "u0", table, rows, toward, [0.0, 0.5, 5.0], **kw)
        assert closer[0] >= closer[1] >= closer[2] and closer[0] > closer[2]  # the newest item ranks higher
        away = step_losses(rec, "u0", table, rows, -toward, [0.0, 0.5, 5.0], **kw)
        assert away[2] > away[0]
        scores = table @ user
        rank = int(np.sum(scores > scores[target]))
        assert closer[0] == pytest.approx(1 - 1 / np.log2(rank + 2))  # step 0: the table as it is
        assert np.allclose(np.linalg.norm(moved_rows(table[rows], toward, 5.0), axis=1), 1.0)
        assert step_losses(rec, "u0", table, rows, toward, [1.0], history=store, ledger=ledger) is None  # no DP
        assert step_losses(rec, "nobody", table, rows, toward, [1.0], **(kw | {"history": store})) is None
        good = dict(user="u0", table=table, rows=rows, delta=toward, steps=[1.0])
        for bad in [dict(table=None), dict(table=table[:5]), dict(table=np.full_like(table, np.nan)),
                    dict(rows=np.array([len(table)])), dict(rows=np.array([-1])), dict(rows=np.array([3, 3]),
                    delta=np.vstack([toward, toward])), dict(rows=np.array([2.5])), dict(delta=toward[:, :3]),
                    dict(delta=toward * np.nan), dict(steps=[np.nan]), dict(steps=[-1.0]), dict(steps="1"),
                    dict(steps=["a"]), dict(user=5)]:
            with pytest.raises(ConfigError):
                step_losses(rec, **(good | bad), **kw)
        with pytest.raises(ConfigError):  # "yes" is truthy: only True or False decides
            step_losses(rec, **good, history=store, consent=Consent(opted_in=True, without_dp="yes"), ledger=ledger)


def test_the_new_bundle_has_a_new_space_opens_as_an_update_and_drops_the_old_index(tmp_path):
    pytest.importorskip("onnxruntime")
    if importlib.util.find_spec("usearch") is None:  # not importorskip: the runtime imports it in the safe order
        pytest.skip("needs usearch")
    source = Bundle.open(GOLDEN)
    table = source.manifest.items  # the golden table with one row turned around
    with Recommender.open(GOLDEN, backend="onnx") as rec:
        vectors = rec.catalog.stored.dequantize()
    vectors[7] = -vectors[7]
    record = {"rounds": 3, "dp": DPPlan(4.0, 1e-6, 0.5, 3, 1.0).describe(1.6)}  # every key the spec lists
    manifest = publish_bundle(source, vectors, tmp_path / "new", record)
    assert manifest.embedding_space != source.manifest.embedding_space
    assert manifest.metrics["federated"] == {"parent_space": source.manifest.embedding_space, **record}
    opened = Bundle.open(tmp_path / "new")
    assert opened.manifest.items.count == table.count
    cache = tmp_path / "cache"
    cache.mkdir()
    stale = cache / f"ann-{source.manifest.embedding_space}-56.usearch"
    stale.write_bytes(b"an index of the old space")
    other = cache / "ann-0123456789abcdef01234567-56.usearch"  # another bundle's: kept
    other.write_bytes(b"x")
    with Recommender.open(tmp_path / "new", fallback=GOLDEN, backend="onnx", ann="usearch", cache_dir=cache) as rec:
        assert rec.update.accepted
        got = rec.catalog.stored.dequantize()
        assert np.allclose(got, vectors, atol=0.02) and got[7] @ vectors[7] > 0.99
        rec.models.ann_index()
    assert not stale.exists() and other.exists()
    assert list(cache.glob(f"ann-{manifest.embedding_space}-*.usearch"))
    json.dumps(manifest.to_dict())
    with pytest.raises(ConfigError, match="finite"):
        publish_bundle(source, vectors[:5], tmp_path / "bad", record)


@pytest.mark.slow
def test_the_simulation_reports_every_arm_and_publishes_bundles(tmp_path, small_data_dir):
    from edgerec.models.config import ModelConfig
    from edgerec.models.train import TrainConfig
    from edgerec.studies.fed_world import WorldConfig
    from edgerec.studies.federated import FederatedStudy

    world = WorldConfig(max_devices=60, model=ModelConfig(dim=8, layers=1, heads=1, max_len=10, dropout=0.0),
                        train=TrainConfig(epochs=1, batch_size=64, eval_users=100))
    study = FederatedStudy(small_data_dir, tmp_path / "fed", world, ServerConfig(rounds=2, clients_per_round=20),
                           RoundTask(round=0, space=""), epsilons=(4.0,), central=False)
    result = study.run()
    record = json.loads(result.to_json())
    arms = {a["arm"]: a for a in record["arms"]}
    assert set(arms) == {"v1 (no update)", "centralized, item table only", "FedAvg", "DP-FedAvg eps 4", "personal only"}
    assert arms["centralized, item table only"]["NDCG@10"] > arms["v1 (no update)"]["NDCG@10"]
    assert all(len(arms[a]["per_round"]) == 3 for a in ("FedAvg", "DP-FedAvg eps 4", "personal only"))
    assert arms["DP-FedAvg eps 4"]["epsilon"] == pytest.approx(4.0, rel=0.03)
    assert len(arms["FedAvg"]["server_lr"]) == 2 and set(arms["DP-FedAvg eps 4"]["server_lr"]) == {10.0}
    assert 0 < record["runs"]["FedAvg"]["bytes"]["max"] <= 64 * 1024
    assert record["device_500_events"]["median_ms"] > 0
    assert [b["accepted_as_update"] for b in record["bundles"]] == [True, True]
    assert result.tables and result.write_plot(tmp_path / "fed.png") in (None, tmp_path / "fed.png")
    # more devices asked for per round than there are: the title says how many took part (it said the ask)
    asked = FederatedStudy.result(dict(record, server=dict(record["server"], clients_per_round=10_000)))
    assert f"~{record['devices']} devices per round" in asked.tables[0].title
    assert arms["FedAvg"]["NDCG@10 with personal vectors"] != arms["FedAvg"]["NDCG@10"]  # devices learnt them
    # how v1 trained is in the report: a share of a gain needs a bound that was trained to the end
    assert record["training"]["v1 (no update)"]["epochs_run"] == 1
    assert record["training"]["v1 (no update)"]["stopped_by"] == "budget"
    (trained,) = result.tables[1].rows
    assert float(trained.pop("minutes")) < 10
    assert trained == {"model": "v1 (no update)", "epochs": 1, "best epoch": 1, "stopped by": "budget",
                       "still improving": "yes"}

    # devices told to leave their personal vectors out learn none: serving with them changes nothing
    shutil.copytree(tmp_path / "fed", tmp_path / "shared")
    shared = FederatedStudy(small_data_dir, tmp_path / "shared", world, ServerConfig(rounds=2, clients_per_round=20),
                            RoundTask(round=0, space=""), epsilons=(), central=False, reuse=True, personal=False,
                            personal_arm=False, table_bound=False).run().record
    fedavg_shared = {a["arm"]: a for a in shared["arms"]}["FedAvg"]
    assert fedavg_shared["NDCG@10 with personal vectors"] == fedavg_shared["NDCG@10"]

    # the projection: every device stands for 3 users; v1 is the one the run above left, and the
    # FedAvg bundle it published is replaced, not a reason to stop
    shutil.copytree(tmp_path / "fed", tmp_path / "projected")
    projected = FederatedStudy(small_data_dir, tmp_path / "projected", world, ServerConfig(rounds=2, clients_per_round=20),
                               RoundTask(round=0, space=""), epsilons=(4.0,), central=False, reuse=True,
                               dp_population_scale=3, personal_arm=False, table_bound=False).run().record
    assert [a["arm"] for a in projected["arms"]] == ["v1 (no update)", "FedAvg", "DP-FedAvg eps 4, population x3"]
    scaled = {a["arm"]: a for a in projected["arms"]}["DP-FedAvg eps 4, population x3"]
    assert scaled["population"] == 3 * record["devices"] and scaled["clients_per_round"] == 60
    assert scaled["noise_multiplier"] == pytest.approx(arms["DP-FedAvg eps 4"]["noise_multiplier"])
    assert [b["arm"] for b in projected["bundles"]] == ["FedAvg"]  # no bundle claims the projected epsilon
    republished = json.loads((tmp_path / "projected" / "bundle-fedavg" / "manifest.json").read_text())
    assert republished["embedding_space"] == projected["bundles"][0]["embedding_space"]

    # noise drawn from the seed (figures that repeat) is no privacy: no DP bundle is published then
    shutil.copytree(tmp_path / "fed", tmp_path / "seeded")
    seeded = FederatedStudy(small_data_dir, tmp_path / "seeded", world,
                            ServerConfig(rounds=2, clients_per_round=20, seeded_noise=True), RoundTask(round=0, space=""),
                            epsilons=(4.0,), central=False, reuse=True, personal_arm=False, table_bound=False).run().record
    assert [b["arm"] for b in seeded["bundles"]] == ["FedAvg"] and seeded["server"]["seeded_noise"] is True


def dp_server(rounds: int, accumulate: bool, rows: int = 400, dim: int = 16) -> FederatedServer:
    table = np.random.default_rng(3).normal(size=(rows, dim)).astype(np.float32)
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    plan = DPPlan(4.0, 1e-6, 0.5, rounds, 0.5)
    return FederatedServer(table, SPACE, 20, ServerConfig(rounds=rounds, clients_per_round=10, server_lr=1.0,
                                                          dp_accumulate=accumulate),
                           RoundTask(round=0, space=SPACE, clip=0.5, upload_rows=1), plan)  # 1-row uploads


def test_accumulated_dp_leaves_rows_nobody_moved_where_they_were():
    """The running noisy sum is judged against the noise of all rounds so far (sqrt(r) times one
    round's): judged against one round's, pure noise would move every row after a few rounds."""
    server = dp_server(16, accumulate=True)
    for _ in range(16):
        assert server.aggregate([])["rows_changed"] == 0
    assert np.array_equal(server.table, server.start)
    assert np.linalg.norm(server.noisy_sum, axis=1).mean() > 3 * server.noise_std * np.sqrt(16)


def test_accumulated_dp_finds_a_row_no_single_round_shows():
    """A row a few devices move the same way every round, by less than one round's noise."""
    found = {}
    for accumulate in (True, False):
        server = dp_server(16, accumulate)
        # 20 devices, each within the clip, move row 7 together by 0.4 of one round's threshold
        summed = 0.4 * 2.0 * server.noise_std * np.sqrt(16) * server.cfg.clients_per_round
        push = [update([7], np.full((1, 16), summed / 20 / 4.0)) for _ in range(20)]
        assert push[0].norm < server.template.clip
        changed = [server.aggregate([replace(u, round=r) for u in push])["rows_changed"] for r in range(16)]
        moved = server.table[7] @ server.start[7] < 1 - 1e-6
        found[accumulate] = (sum(changed), moved)
    assert found[True][1] and found[True][0] >= 8  # from some round on, row 7 is in every table
    assert found[False] == (0, False)


def test_federate_cli_passes_the_devices_local_work_and_refuses_none(monkeypatch, tmp_path):
    """--local-steps / --local-lr reach every device's RoundTask; zero steps is a one-line error."""
    from click.testing import CliRunner

    from edgerec.cli import study_cmd
    from edgerec.cli.main import cli
    from edgerec.studies import federated as federated_study

    seen = {}

    class Captured:
        def __init__(self, data_dir, out, world, server, task, *args, **kwargs):
            seen["task"], seen["server"], seen["kwargs"] = task, server, kwargs

    monkeypatch.setattr(federated_study, "FederatedStudy", Captured)
    monkeypatch.setattr(study_cmd, "_run", lambda study, *a: seen.update(outputs=a))
    base = ["federate", "--data", str(tmp_path), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, [*base, "--local-steps", "4", "--local-lr", "0.004", "--server-lr", "7"])
    assert result.exit_code == 0, result.output
    # the record and plot land in --out, not in whatever folder the command ran from
    assert seen["outputs"] == (tmp_path / "out" / "federated.json", tmp_path / "out" / "federated.png")
    assert (seen["task"].steps, seen["task"].lr, seen["server"].server_lr) == (4, 0.004, 7.0)
    assert seen["kwargs"]["personal"] is True
    assert CliRunner().invoke(cli, [*base, "--no-personal"]).exit_code == 0 and seen["kwargs"]["personal"] is False
    for bad in (["--local-steps", "0"], ["--local-lr", "inf"], ["--local-lr", "nan"], ["--clip", "-1"]):
        result = CliRunner().invoke(cli, [*base, *bad])
        assert result.exit_code != 0 and "Traceback" not in result.output, bad
        assert result.output.splitlines()[-1].startswith("Error: RoundTask."), (bad, result.output)


def test_a_dp_arm_over_the_devices_daily_budget_is_warned_about_before_training(tmp_path):
    from edgerec.studies.fed_world import WorldConfig
    from edgerec.studies.federated import FederatedStudy

    def warned(epsilons, rounds):
        return FederatedStudy(tmp_path / "data", tmp_path / "out", WorldConfig(), ServerConfig(rounds=rounds),
                              RoundTask(round=0, space=""), epsilons=epsilons).budget_warnings()

    assert warned((1.0, 4.0, 8.0), 20) == [] and warned((2.0,), 2) == []  # 1 a round fits a day's budget of 1
    assert warned((1.0, 4.0, 8.0), 2) == [
        "DP-FedAvg at epsilon 4 over 2 rounds charges each device 2 a round, over a device's daily privacy budget "
        "of 1: every device will decline and the arm will stay at v1; plan at least 4 rounds (--rounds) or a "
        "smaller --epsilon",
        "DP-FedAvg at epsilon 8 over 2 rounds charges each device 4 a round, over a device's daily privacy budget "
        "of 1: every device will decline and the arm will stay at v1; plan at least 8 rounds (--rounds) or a "
        "smaller --epsilon"]
    assert len(warned((2.5,), 2)) == 1 and "plan at least 3 rounds" in warned((2.5,), 2)[0]
    said = []
    study = FederatedStudy(tmp_path / "no-data", tmp_path / "out", WorldConfig(), ServerConfig(rounds=2),
                           RoundTask(round=0, space=""), epsilons=(4.0,))
    with pytest.raises(DataError):  # the warning comes before the data is even read
        study.measure(lambda message, values: said.append(message))
    assert said == [f"warning: {study.budget_warnings()[0]}"]


def test_reuse_takes_an_earlier_v1_only_when_it_was_trained_on_the_same_data_and_settings(tmp_path, monkeypatch):
    """--reuse took the v1 of a run on another data set (200 items, while the report said 150)."""
    from types import SimpleNamespace

    from edgerec.data import SynthConfig, synth_dataset
    from edgerec.studies import federated as fed
    from edgerec.studies.fed_world import WorldConfig

    trained = []

    def fake_train(dataset, data_dir, folder, world, progress, who):
        trained.append(dataset.n_items)
        (folder / "bundle").mkdir(parents=True)  # the export refuses a folder that holds a bundle: gone first
        (folder / "bundle" / "manifest.json").write_text("{}")
        return folder / "bundle"

    monkeypatch.setattr(fed, "train_and_export", fake_train)
    said = []
    study = SimpleNamespace(reuse=True, world=WorldConfig())
    a = synth_dataset(SynthConfig(users=20, items=60, events=300, seed=1))
    b = synth_dataset(SynthConfig(users=20, items=50, events=300, seed=2))
    for dataset in (a, a, b, b):
        fed.FederatedStudy._trained(study, dataset, tmp_path, tmp_path / "v1", "v1", lambda m, _: said.append(m))
    assert trained == [60, 50]  # trained, reused, trained again for other data, reused
    assert "not reusing v1/bundle: it was trained on other data or settings" in said
    study.world = WorldConfig(seed=9)  # other settings: trained again
    fed.FederatedStudy._trained(study, b, tmp_path, tmp_path / "v1", "v1", lambda m, _: None)
    assert trained == [60, 50, 50]


def test_dp_arms_the_accountant_cannot_run_are_refused_before_any_training(tmp_path):
    """epsilon 1000 failed after every earlier arm had trained, epsilon 0.0001 after all of them (its spending
    accounted as 0, which the bundle's record refuses), and --seed -1 in numpy after --out was written."""
    from click.testing import CliRunner

    from edgerec.cli.main import cli
    from edgerec.studies.fed_world import WorldConfig
    from edgerec.studies.federated import FederatedStudy

    for epsilon in (1000.0, 1e-4):
        study = FederatedStudy(tmp_path / "no-data", tmp_path / "out", WorldConfig(), ServerConfig(rounds=2),
                               RoundTask(round=0, space=""), epsilons=(epsilon,))
        with pytest.raises(ConfigError):
            study.measure(lambda *_: None)
        assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(cli, ["federate", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                                      "--seed", "-1"])
    assert result.exit_code == 2 and "--seed" in result.output and not (tmp_path / "o").exists()
