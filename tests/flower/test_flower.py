"""The federated rounds under Flower's simulation engine (Ray): the same device and server code, real messages.

Runs where `edgerec[federated]` is installed (`make test-flower` builds that venv; `make test` runs it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

flwr = pytest.importorskip("flwr", reason="Flower is the optional extra edgerec[federated] (make test-flower)")

from edgerec.federated.flower import FlowerDevices, run_flower, task_from_record, task_record  # noqa: E402
from edgerec.federated.server import FederatedServer, ServerConfig  # noqa: E402
from edgerec.runtime import Recommender  # noqa: E402
from edgerec.runtime.federated import RoundTask, user_vectors  # noqa: E402

GOLDEN = Path(__file__).resolve().parents[2] / "spec" / "golden" / "bundle"
TARGET = 55


def test_a_task_survives_the_config_record():
    task = RoundTask(round=3, space="ab" * 12, epsilon=0.25, encoding="fp16")
    assert task_from_record(task_record(task)) == task
    assert task_from_record(task_record(RoundTask(round=0, space="ab" * 12))).epsilon is None


def test_flower_rounds_teach_the_table_what_the_nodes_did():
    with Recommender.open(GOLDEN, backend="onnx") as rec:
        rows = [[(d * 7 + j) % 50 + 1 for j in range(4)] + [TARGET] for d in range(6)]
        histories = [[(rec.catalog.item_id(r), 100.0 + i) for i, r in enumerate(h)] for h in rows]
        users = np.concatenate([user_vectors(rec, h, np.array([len(h) - 1])) for h in rows])
        space = rec.manifest.embedding_space
        table = rec.catalog.stored.dequantize()
    server = FederatedServer(table, space, len(rows), ServerConfig(rounds=3, clients_per_round=6, server_lr=5.0),
                             RoundTask(round=0, space=space, lr=0.01, clip=1.0))

    def rank(t):
        scores = users @ t.T
        return np.mean([(s > s[TARGET]).sum() for s in scores])

    before = rank(server.table)
    log = run_flower(server, FlowerDevices(str(GOLDEN), histories))
    assert len(log) == 3 and all(entry["replies"] == 6 for entry in log)
    assert all(0 < b <= 64 * 1024 for entry in log for b in entry["bytes"])
    assert rank(server.table) < before - 1
