"""The federated server's bookkeeping, checked one rule at a time: its configuration's bounds, the DP plan
it must match, the task each round hands devices, the updates it refuses, and the helpers it averages
and thresholds with. (test_federated.py covers what the rounds learn.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.federated.accounting import DPPlan
from edgerec.federated.server import FederatedServer, ServerConfig, above_noise, fedavg
from edgerec.runtime.fed_format import ClientUpdate
from edgerec.runtime.federated import RoundTask

SPACE = "cd" * 12


def update(rows, delta, weight=1.0, space=SPACE):
    return ClientUpdate(0, space, np.asarray(rows, np.int64), np.asarray(delta, np.float32), weight)


def server(rounds=4, clients=5, population=10, dp=None, clip=1.0, table=None, upload_rows=1, **cfg) -> FederatedServer:
    table = np.eye(6, 4, dtype=np.float32) if table is None else table  # a DP round's uploads: `upload_rows` rows
    return FederatedServer(table, SPACE, population, ServerConfig(rounds=rounds, clients_per_round=clients, **cfg),
                           RoundTask(round=0, space=SPACE, clip=clip, upload_rows=upload_rows), dp)


@pytest.mark.parametrize("field, value, ok", [
    ("clients_per_round", 1, True), ("clients_per_round", 0, False), ("clients_per_round", 11, False),
    ("rounds", 1, True), ("rounds", 0, False),
    ("server_lr", 1e-9, True), ("server_lr", 0.0, False), ("server_lr", math.inf, False),
    ("weight_cap", 1e-9, True), ("weight_cap", 0.0, False),
    ("step_search", (0.5, 2.0), True), ("step_search", (0.0, 1.0), False), ("step_search", (1.0, math.inf), False),
    ("eval_devices", 1, True), ("eval_devices", 0, False),
])
def test_the_server_configuration_holds_its_bounds_exactly(field, value, ok):
    cfg = ServerConfig(**{"rounds": 2, "clients_per_round": 5, field: value})
    if ok:
        assert cfg.check(population=10) is cfg
    else:
        with pytest.raises(ConfigError, match="a federated run needs"):
            cfg.check(population=10)


def test_a_dp_plan_that_is_not_the_runs_is_refused():
    """The plan's epsilon holds only for the rounds, sampling rate and clip it was computed for."""
    fits = DPPlan(4.0, 1e-6, 0.5, 4, 1.0)
    assert server(dp=fits).noise_multiplier > 0
    for plan in (DPPlan(4.0, 1e-6, 0.5, 5, 1.0), DPPlan(4.0, 1e-6, 0.4, 4, 1.0), DPPlan(4.0, 1e-6, 0.5, 4, 2.0)):
        with pytest.raises(ConfigError, match="rounds, sampling rate and the task's clip"):
            server(dp=plan)
    assert server().noise_multiplier == 0.0 and server().noise_std == 0.0


def test_each_round_hands_devices_its_number_the_space_and_its_share_of_epsilon():
    blank = FederatedServer(np.eye(6, 4, dtype=np.float32), SPACE, 10, ServerConfig(rounds=4, clients_per_round=5),
                            RoundTask(round=0, space=""))  # the study's template names no space
    plain = blank.task(3)
    assert (plain.round, plain.space, plain.epsilon) == (3, SPACE, None)
    private = server(dp=DPPlan(4.0, 1e-6, 0.5, 4, 1.0)).task(2)
    assert (private.round, private.space) == (2, SPACE)
    assert private.epsilon == pytest.approx(1.0)  # 4 over 4 rounds: what each device's ledger is charged


@pytest.mark.parametrize("bad", [
    update([0], np.ones((1, 4)), space="ef" * 12),  # another embedding space
    update([0], np.ones((1, 5))),  # another width
    update([6], np.ones((1, 4))),  # a row past the table's end (6 rows: 0..5)
])
def test_an_update_that_does_not_fit_the_table_is_refused_and_moves_nothing(bad):
    s = server()
    with pytest.raises(ConfigError, match="does not fit this run's table"):
        s.aggregate([update([1], np.ones((1, 4))), bad])
    assert np.array_equal(s.table, np.eye(6, 4)) and s.log == []
    assert s.aggregate([update([5], np.full((1, 4), 0.1))])["rows_changed"] == 1  # the last row is a row


def test_the_round_log_and_the_step_search_see_what_the_round_did():
    s = server(server_lr=2.0)
    seen = []

    def evaluate(rows, delta, steps):
        seen.append((rows.tolist(), np.asarray(delta).copy(), steps))
        return np.zeros(len(steps))
    push = [update([1, 3], [[0.2, 0, 0, 0], [0, 0.4, 0, 0]], weight=2), update([3], [[0, 0.1, 0, 0]], weight=2)]
    entry = s.aggregate(push, evaluate)
    assert entry == {"devices": 2, "rows_changed": 2, "server_lr": 1.0}  # ties: the first candidate
    rows, delta, steps = seen[0]
    assert rows == [1, 3] and steps == [1.0, 2.0, 4.0]
    assert np.allclose(delta, [[0.1, 0, 0, 0], [0, 0.25, 0, 0]])  # the averaged change of those rows


def test_dp_rounds_log_the_devices_that_came_and_judge_the_sum_against_the_rounds_so_far():
    s = server(dp=DPPlan(4.0, 1e-6, 0.5, 4, 1.0), server_lr=1.0)
    assert s.aggregate([update([2], [[0, 0.1, 0, 0]]) for _ in range(5)])["devices"] == 5
    s = server(dp=DPPlan(4.0, 1e-6, 0.5, 4, 1.0), server_lr=1.0)
    one_round = 2.0 * s.noise_std * np.sqrt(4)  # the threshold after one round: 2 x a row's noise
    delta = np.zeros((6, 4), np.float32)
    delta[1, 0] = 1.2 * one_round  # clears one round's threshold, not two rounds' (sqrt(2) x)
    delta[4, 0] = 0.9 * one_round
    assert s._accumulated(delta, devices=3) == {"devices": 3, "rows_changed": 1, "server_lr": 1.0}
    assert s.table[1, 0] > s.start[1, 0] and np.array_equal(s.table[4], s.start[4])  # along the sum
    s._accumulated(np.zeros_like(delta), devices=3)  # round 2: the same sum no longer clears sqrt(2) x
    assert np.array_equal(s.table, s.start)


def test_fedavg_of_nothing_or_of_weightless_updates_moves_nothing():
    for updates in ([], [update([1], np.ones((1, 4)), weight=0.0)]):
        mean, rows = fedavg(updates, (6, 4), weight_cap=50)
        assert not mean.any() and rows.dtype == np.int64 and rows.tolist() == []


def test_rows_clear_the_noise_only_above_the_threshold_and_without_noise_any_change_counts():
    delta = np.zeros((4, 4), np.float32)
    delta[1] = 1.0  # norm 2
    delta[2] = 0.5  # norm 1: exactly the threshold below, which it must exceed
    assert above_noise(delta, noise_std=0.5, threshold=1.0).tolist() == [1]  # > 1 x 0.5 x sqrt(4)
    assert above_noise(delta, noise_std=0.0, threshold=2.0).tolist() == [1, 2]  # no noise: every moved row
    delta[3, 2] = -1e-6
    assert above_noise(delta, noise_std=0.0, threshold=2.0).tolist() == [1, 2, 3]


def test_dp_noise_and_sampling_come_from_os_entropy_unless_a_simulation_seeds_them():
    """The noise came from the run's seed (0 by default): whoever knew it redrew the noise, subtracted it
    from the published table and read one device's update off exactly (audit L4). A simulation that must
    repeat its figures asks for seeded noise; its table is then not private."""
    def noisy_sum(seed, **cfg):
        s = server(dp=DPPlan(4.0, 1e-6, 0.5, 4, 1.0), server_lr=1.0, seed=seed, **cfg)
        sampled = s.sample()
        s.aggregate([update([2], [[0, 0.5, 0, 0]])])
        return s.noisy_sum.copy(), sampled

    assert not np.array_equal(noisy_sum(0)[0], noisy_sum(0)[0])  # the same seed: other noise
    samples = {tuple(noisy_sum(0)[1]) for _ in range(8)}  # 10 devices at q = 0.5: 8 equal draws ~ 2^-70
    assert len(samples) > 1
    seeded = [noisy_sum(0, seeded_noise=True) for _ in range(2)]
    assert np.array_equal(seeded[0][0], seeded[1][0]) and np.array_equal(seeded[0][1], seeded[1][1])
    assert not np.array_equal(seeded[0][0], noisy_sum(1, seeded_noise=True)[0])
    fedavg = [server(seed=0).sample() for _ in range(2)]  # no DP: nothing to hide, the seed decides
    assert np.array_equal(*fedavg)


def test_a_dp_round_admits_only_uploads_of_its_row_count_within_the_upload_limit():
    """A DP upload's row count told the server how many items its device consumed: the round now fixes it,
    and an upload of another count is refused (a device that sent its own count would reveal it)."""
    s = server(dp=DPPlan(4.0, 1e-6, 0.5, 4, 1.0), upload_rows=2)
    with pytest.raises(ConfigError) as caught:
        s.aggregate([update([2], [[0, 0.1, 0, 0]])])
    assert str(caught.value) == "an update of a DP round holds 2 rows (the task's upload_rows), not 1; it is refused"
    assert s.aggregate([update([2, 4], [[0, 0.1, 0, 0], [0, 0, 0, 0.1]])])["devices"] == 1
    assert server(dp=DPPlan(4.0, 1e-6, 0.5, 4, 1.0), upload_rows=500).upload_rows == 6  # the whole table
    assert server(upload_rows=1).aggregate([update([1, 2], np.ones((2, 4)) * 0.1)])["devices"] == 1  # FedAvg: any
    wide = np.eye(100, 512, dtype=np.float32)  # 100 rows of 512: 32 + 100 * 516 = 51,632 bytes as int8
    server(dp=DPPlan(4.0, 1e-6, 0.5, 4, 1.0), table=wide, upload_rows=100)
    with pytest.raises(ConfigError) as caught:  # as float16: 32 + 100 * 1028 bytes
        FederatedServer(wide, SPACE, 10, ServerConfig(rounds=4, clients_per_round=5),
                        RoundTask(round=0, space=SPACE, clip=1.0, upload_rows=100, encoding="fp16"),
                        DPPlan(4.0, 1e-6, 0.5, 4, 1.0))
    assert str(caught.value) == ("a DP round's uploads of 100 rows of width 512 (fp16) would take 102,832 bytes, "
                                 "over the 65,536-byte upload limit; lower RoundTask.upload_rows or use int8")
