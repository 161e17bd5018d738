"""The world of the federated simulation: a data set split by time, bundle v1, and simulated devices.

Events before the cut (the `early_share` of events by time) are what the
host had: bundle v1 is trained and exported on them. Each user with at least
`min_items` items consumed after the cut becomes one device, holding only
those later events (in its own in-memory history store, ledger included);
its newest item is the test target, nobody trains on it. The centralized
upper bound is a model trained on all events but every user's last two
items (leave-last-out), the privacy-violating retraining a host would do
with every history in hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgerec.data.schema import Dataset
from edgerec.data.split import consumed_sequences
from edgerec.errors import ConfigError, DataError
from edgerec.models.config import ModelConfig
from edgerec.models.evaluation import rank_of
from edgerec.models.train import TrainConfig
from edgerec.runtime.history import KEEP_EVERYTHING, HistoryStore
from edgerec.runtime.item_table import StoredTable
from edgerec.studies.base import epoch_lines


@dataclass
class WorldConfig:
    early_share: float = 0.7  # events (by time) that train bundle v1
    min_items: int = 3  # later items a user needs to be a device
    max_devices: int = 400
    model: ModelConfig = field(default_factory=lambda: ModelConfig(dim=32, layers=1, heads=1, max_len=30))
    # v1 and the upper bound train as `edgerec train` does (a budget that follows the data, early
    # stopping), capped in time: a fixed few epochs left them far from converged on real logs
    train: TrainConfig = field(default_factory=lambda: TrainConfig(eval_users=500, max_minutes=10.0))
    seed: int = 0


@dataclass
class Device:
    user: str  # a name inside the simulation only
    rows: np.ndarray  # the items the device holds (bundle rows), oldest first; the target is not among them
    times: np.ndarray
    target: int


def split_by_time(dataset: Dataset, early_share: float) -> tuple[Dataset, int]:
    """The events before the time that leaves `early_share` of them earlier, and that time."""
    if not 0 < early_share < 1:
        raise ConfigError(f"early share must be between 0 and 1 (got {early_share})")
    log = dataset.interactions
    cut = int(np.quantile(log.timestamp, early_share))
    before = np.flatnonzero(log.timestamp < cut)
    if not len(before):  # every event at the cut: nothing for v1, which "no training windows" would blame on users
        raise DataError(f"no event is earlier than the time that should leave {early_share:.0%} of them earlier: "
                        f"the log has {len(np.unique(log.timestamp))} distinct timestamp(s) and federate splits it "
                        "by time; import the log with its real event times")
    early = Dataset(dataset.catalog, log.take(before), dataset.user_ids,
                    {**dataset.meta, "federated_cut": cut})
    return early, cut


def make_devices(dataset: Dataset, cut: int, cfg: WorldConfig) -> list[Device]:
    """One device per user with enough items after `cut` (at most max_devices, drawn with the seed)."""
    log = dataset.interactions
    later = log.take(np.flatnonzero(log.timestamp >= cut))
    seq, _ = consumed_sequences(later, dataset.n_users)
    users = np.flatnonzero(seq.lengths() >= cfg.min_items)
    if len(users) > cfg.max_devices:
        users = np.sort(np.random.default_rng(cfg.seed).choice(users, cfg.max_devices, replace=False))
    if not len(users):
        raise ConfigError(f"no user has {cfg.min_items} items after the cut; lower early_share or min_items")
    out = []
    for u in users:
        items, times = seq.of(u), seq.times[seq.indptr[u]:seq.indptr[u + 1]]
        out.append(Device(f"device-{u}", items[:-1].astype(np.int64), times[:-1], int(items[-1])))
    return out


def device_store(device: Device, item_ids: list[str]) -> HistoryStore:
    """A fresh in-memory history holding the device's events (and, later, its ledger and personal vector)."""
    store = HistoryStore(":memory:", retention=KEEP_EVERYTHING)
    for row, ts in zip(device.rows, device.times):
        store.record(device.user, item_ids[row], "play", ts=float(ts))
    return store


def shipped(table: np.ndarray, dtype: str = "int8") -> np.ndarray:
    """The table as a bundle would ship it (quantized, read back as float)."""
    return StoredTable.quantize(table, dtype).dequantize()


def ndcg_at_10(users: np.ndarray, table: np.ndarray, devices: list[Device]) -> dict:
    """Full-ranking NDCG@10 and HR@10 of each device's target, its own items excluded."""
    ranks = np.empty(len(devices), np.int64)
    for start in range(0, len(devices), 256):
        batch = devices[start:start + 256]
        scores = users[start:start + 256] @ table.T
        for i, device in enumerate(batch):
            scores[i, device.rows] = -np.inf
        # ties by the protocol's (user, item) key: counting only higher scores put a tied target first
        ranks[start:start + len(batch)] = rank_of(scores, np.array([d.target for d in batch], np.int64),
                                                  np.arange(start, start + len(batch)))
    hit = ranks < 10
    return {"NDCG@10": float(np.mean(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0))), "HR@10": float(hit.mean())}


def training_summary(folder: Path) -> dict:
    """How the model in `folder`/model trained (from its checkpoint): epochs, why it stopped, advice."""
    info = json.loads((folder / "model" / "config.json").read_text()).get("info", {})
    keys = ("epochs_run", "best_epoch", "val_NDCG@10", "stopped_by", "still_improving", "advice", "train_seconds")
    return {key: info.get(key) for key in keys}


def train_and_export(dataset: Dataset, data_dir: Path, out: Path, cfg: WorldConfig, progress,
                     who: str = "model") -> Path:
    """Train `cfg.model` on `dataset` (leave-last-out) and export an ONNX bundle to out / 'bundle'."""
    from edgerec.data.split import leave_last_out
    from edgerec.export.bundle_builder import ExportConfig, export_bundle
    from edgerec.models.train import train_model

    train_model(dataset, leave_last_out(dataset), cfg.model, cfg.train, out=out / "model",
                progress=epoch_lines(progress, who))
    export_bundle(out / "model", data_dir, out / "bundle",
                  ExportConfig(formats=("onnx",), evaluate=False, parity_users=200, reference_users=16),
                  progress=lambda message: progress(message, {}))
    return out / "bundle"
