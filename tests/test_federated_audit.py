"""The federated server attacked with what a broken or hostile device could upload: an update over the
clip bound (FedAvg too, not only DP-FedAvg), another round's update, an update built in-process with
what the wire format would refuse, and more DP rounds than the published epsilon accounts for."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edgerec.errors import ConfigError, PrivacyBudgetError
from edgerec.federated.accounting import DPPlan
from edgerec.federated.server import FederatedServer, ServerConfig
from edgerec.runtime.fed_format import ClientUpdate, decode_update, encode_update
from edgerec.runtime.federated import RoundTask

SPACE = "cd" * 12


def server(clip=0.2, dp=None, rounds=4) -> FederatedServer:
    return FederatedServer(np.eye(6, 4, dtype=np.float32), SPACE, 10,
                           ServerConfig(rounds=rounds, clients_per_round=5, step_search=()),
                           RoundTask(round=0, space=SPACE, clip=clip, upload_rows=1), dp)  # DP uploads: 1 row


def sent(rows, delta, weight=1.0, round_=0, encoding="fp16") -> ClientUpdate:
    """An update as the server gets it: through the upload bytes."""
    update = ClientUpdate(round_, SPACE, np.asarray(rows, np.int64), np.asarray(delta, np.float32), weight)
    return decode_update(encode_update(update, encoding))


def test_fedavg_clips_every_upload_so_one_device_cannot_poison_or_steer_a_row():
    # values within float32 and the int8 format, whose square overflows: the row turned NaN
    huge = sent([1], np.full((1, 4), 3e37), weight=50.0, encoding="int8")
    s = server()
    s.aggregate([huge])
    assert np.all(np.isfinite(s.table)) and np.allclose(np.linalg.norm(s.table, axis=1)[:4], 1.0)
    # one example and an unclipped change outweighed 50 examples within the clip: the row was the attacker's
    s = server()
    s.aggregate([sent([2], [[0, 0.1, 0, 0]], weight=50.0), sent([2], [[0, 0, 0, 1000.0]], weight=1.0)])
    assert abs(s.table[2, 3]) < 0.05 and s.table[2, 1] > 0.6  # the honest device's direction


def test_an_update_of_another_round_is_refused_and_moves_nothing():
    s = server()
    with pytest.raises(ConfigError, match=r"^an update of round 1 came in round 0; it is refused \(a stale or "
                                          r"replayed upload\)"):
        s.aggregate([sent([1], [[0.1, 0, 0, 0]]), sent([2], [[0.1, 0, 0, 0]], round_=1)])
    assert np.array_equal(s.table, np.eye(6, 4)) and s.log == []
    s.aggregate([sent([1], [[0.1, 0, 0, 0]])])
    with pytest.raises(ConfigError, match="round 0 came in round 1"):  # last round's upload, sent again
        s.aggregate([sent([1], [[0.1, 0, 0, 0]])])
    assert s.aggregate([sent([1], [[0.1, 0, 0, 0]], round_=1)])["devices"] == 1


@pytest.mark.parametrize("rows, delta, weight", [
    ([-1], [[0.1, 0, 0, 0]], 1.0),  # numpy would move the last row
    ([2, 2], [[0.1, 0, 0, 0], [0.1, 0, 0, 0]], 1.0),  # one row twice
    ([3, 2], [[0.1, 0, 0, 0], [0.1, 0, 0, 0]], 1.0),
    ([2], [[np.nan, 0, 0, 0]], 1.0),
    ([2], [[0.1, 0, 0, 0]], np.nan),  # FedAvg divided by a NaN total weight: the whole table NaN
    ([2], [[0.1, 0, 0, 0]], -1.0),
    ([2, 3], [[0.1, 0, 0, 0]], 1.0),  # fewer change rows than ids
    ([2], [["a", "b", "c", "d"]], 1.0),
])
def test_an_update_built_in_process_is_held_to_what_the_upload_format_allows(rows, delta, weight):
    s = server()
    bad = ClientUpdate(0, SPACE, np.asarray(rows, np.int64), np.asarray(delta), weight)
    with pytest.raises(ConfigError, match=r"^an update needs unique ascending row ids of the table, one finite "
                                          r"change row each and a finite weight >= 0; it is refused"):
        s.aggregate([bad])
    assert np.array_equal(s.table, np.eye(6, 4)) and s.log == []


def test_a_dp_run_refuses_rounds_its_published_epsilon_does_not_cover():
    """The manifest's epsilon is computed for the plan's rounds: a further round would spend more."""
    s = server(clip=1.0, dp=DPPlan(4.0, 1e-6, 0.5, 2, 1.0), rounds=2)
    for r in range(2):
        s.aggregate([replace(sent([1], [[0.1, 0, 0, 0]]), round=r)])
    table = s.table.copy()
    with pytest.raises(PrivacyBudgetError, match=r"^the DP plan covers 2 rounds and they are done; a further "
                                                 r"round would spend more than the epsilon it publishes"):
        s.aggregate([])
    assert np.array_equal(s.table, table) and len(s.log) == 2


def test_a_broken_upload_is_dropped_with_its_reason_and_the_round_goes_on():
    """Flower's server decoded every reply in one go: one device's garbage stopped the whole run."""
    s = server()

    def upload(round_=0, space=SPACE, rows=(1,)):
        delta = np.full((len(rows), 4), 0.1, np.float32)
        return encode_update(ClientUpdate(round_, space, np.asarray(rows, np.int64), delta, 1.0), "fp16")
    good = upload()
    kept, refused = s.uploads([good, b"ERFU junk", good[:-1], upload(space="ef" * 12), upload(round_=3),
                               upload(rows=(9,))])
    assert len(kept) == 1 and np.array_equal(kept[0].rows, [1])
    assert refused == [
        "an update has at least 32 bytes (got 9); it was cut short",
        "an update of 1 rows of dim 4 has 44 bytes, not 43; it is damaged",
        "an update does not fit this run's table (space, width or rows); it is refused",
        "an update of round 3 came in round 0; it is refused (a stale or replayed upload)",
        "an update does not fit this run's table (space, width or rows); it is refused",
    ]
    assert s.aggregate(kept)["devices"] == 1 and s.table[1, 0] > 0


def test_an_upload_sent_twice_in_a_round_counts_once():
    """A re-sent upload was admitted again: its device added 2C to a DP sum whose noise covers C."""
    s = server()
    payload = encode_update(ClientUpdate(0, SPACE, np.array([1], np.int64), np.full((1, 4), 0.1, np.float32), 1.0))
    kept, refused = s.uploads([payload, payload])
    assert len(kept) == 1 and refused == ["an update came twice in one round; the copy is refused (each device "
                                          "counts once)"]
    assert len(s.uploads([payload])[0]) == 0  # a later call in the same round too
    s.aggregate(kept)
    assert len(s.uploads([encode_update(ClientUpdate(1, SPACE, np.array([1], np.int64),
                                                     np.full((1, 4), 0.1, np.float32), 1.0))])[0]) == 1
