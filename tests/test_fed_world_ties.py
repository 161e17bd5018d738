"""The federated study's NDCG@10 / HR@10 order tied items by the protocol's (user, item) key."""

import numpy as np

from edgerec.studies.fed_world import Device, ndcg_at_10


def test_tied_scores_do_not_put_the_target_first():
    """Counting only higher scores ranked a tied target first: HR@10 1.0 for a table of equal rows."""
    rng = np.random.default_rng(0)
    devices = [Device(f"d{i}", rng.choice(100, 3, replace=False), np.zeros(3), 0) for i in range(2000)]
    devices = [Device(d.user, d.rows[d.rows != 99], d.times[:2], 99) for d in devices]  # the target never held
    users, table = np.ones((len(devices), 4), np.float32), np.ones((100, 4), np.float32)
    hr = ndcg_at_10(users, table, devices)["HR@10"]
    assert 0.05 < hr < 0.16  # chance: 10 of the ~97 items not held
    table[99] *= 2  # a target that truly scores highest is still first
    assert ndcg_at_10(users, table, devices) == {"NDCG@10": 1.0, "HR@10": 1.0}
