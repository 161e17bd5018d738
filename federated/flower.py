"""The same device and server code under Flower's simulation engine (`pip install 'edgerec[federated]'`).

Flower carries the messages; edgerec does the work. The ServerApp is the
FederatedServer (sampling, FedAvg or DP-FedAvg, the table); each round it
sends the sampled nodes the round's task and table and gets back the bytes of
fed_format.py. The ClientApp is the device: it opens the bundle with the
runtime, keeps its node's events in its own history store (and ledger), and
answers with `take_part`. Flower's simulation engine runs the ClientApps over
Ray, so the same rounds spread over the cores (or machines) Ray has.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgerec.errors import BundleError
from edgerec.federated.server import FederatedServer
from edgerec.runtime.federated import Consent, RoundTask, take_part
from edgerec.runtime.privacy_ledger import PrivacyLedger

NODE_WAIT_S = 120.0  # how long the server waits for the simulation's nodes to register
TASK_FIELDS = ("round", "space", "lr", "steps", "negatives", "temperature", "clip", "max_examples", "encoding",
               "upload_rows")


@dataclass
class FlowerDevices:
    """What the simulated nodes hold: the bundle path and each node's events as (item id, time)."""

    bundle: str
    histories: list[list[tuple[str, float]]]
    consent: Consent = field(default_factory=lambda: Consent(opted_in=True, without_dp=True))


def task_record(task: RoundTask) -> dict:
    """A round's task as the values of a Flower ConfigRecord (no None: epsilon -1 means none)."""
    values = {k: v for k, v in asdict(task).items() if k in TASK_FIELDS}
    values["epsilon"] = -1.0 if task.epsilon is None else float(task.epsilon)
    return values


def task_from_record(values) -> RoundTask:
    epsilon = float(values["epsilon"])
    return RoundTask(**{k: values[k] for k in TASK_FIELDS}, epsilon=None if epsilon < 0 else epsilon).check()


def node_reply(result) -> dict:
    """What a node sends back: the upload's bytes, empty when it declined. Not why it declined ("too little
    history" tells the server about the history) nor its round's time (which grows with the history)."""
    return {"payload": result.payload or b""}


class _Device:
    """One node's device, opened on first use inside the process that runs it."""

    def __init__(self, devices: FlowerDevices, index: int):
        from edgerec.runtime.history import KEEP_EVERYTHING, HistoryStore
        from edgerec.runtime.recommender import Recommender

        self.rec = Recommender.open(devices.bundle, backend="onnx")
        self.user = f"node-{index}"
        self.history = HistoryStore(":memory:", retention=KEEP_EVERYTHING)  # the log's own (old) times
        self.ledger = PrivacyLedger(self.history, simulation=True)  # a simulated device: its ledger in memory
        for item, ts in devices.histories[index]:
            self.history.record(self.user, item, "play", ts=ts)


def client_app(devices: FlowerDevices):
    """A Flower ClientApp whose `train` is one device round (take_part)."""
    from flwr.app import ConfigRecord, Message, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()
    opened: dict[int, _Device] = {}  # per process: the nodes this worker has served

    @app.train()
    def train(msg, context):
        index = int(context.node_config["partition-id"])
        if index not in opened:
            opened[index] = _Device(devices, index)
        device = opened[index]
        task = task_from_record(msg.content["task"])
        table = msg.content["table"].to_numpy_ndarrays()[0]
        result = take_part(device.rec, device.user, task, history=device.history, table=table,
                           consent=devices.consent, ledger=device.ledger)
        return Message(RecordDict({"update": ConfigRecord(node_reply(result))}), reply_to=msg)

    return app


def server_app(server: FederatedServer, log: list):
    """A Flower ServerApp running `server`'s rounds over the nodes Flower gives it; appends to `log`."""
    from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
    from flwr.serverapp import ServerApp

    app = ServerApp()

    @app.main()
    def main(grid, context):
        waited = time.monotonic()
        while len(nodes := sorted(grid.get_node_ids())) < server.population:  # the engine registers nodes
            if time.monotonic() - waited > NODE_WAIT_S:
                raise TimeoutError(f"Flower registered {len(nodes)} of {server.population} nodes in {NODE_WAIT_S} s")
            time.sleep(0.2)
        for r in range(server.cfg.rounds):
            task = server.task(r)
            content = {"task": ConfigRecord(task_record(task)),
                       "table": ArrayRecord(numpy_ndarrays=[np.asarray(server.table, np.float32)])}
            messages = [Message(RecordDict(content), dst_node_id=nodes[i], message_type="train")
                        for i in server.sample() if i < len(nodes)]
            replies = list({m.metadata.src_node_id: m for m in grid.send_and_receive(messages)}.values())  # one a node
            payloads = [m.content["update"]["payload"] for m in replies if m.has_content()]
            updates, refused = server.uploads([p for p in payloads if p])  # a broken upload is dropped
            log.append({**server.aggregate(updates), "replies": len(replies), "refused": refused,
                        "bytes": [len(p) for p in payloads if p]})

    return app


def run_flower(server: FederatedServer, devices: FlowerDevices, cpus: int = 1) -> list[dict]:
    """Run `server`'s rounds with Flower's simulation engine (Ray); returns each round's log entry."""
    if not Path(devices.bundle).is_dir():  # before Flower starts: a bare FileNotFoundError gave the host path
        raise BundleError(f"no bundle folder {Path(devices.bundle).name!r} (FlowerDevices.bundle); pass the folder "
                          "of an exported bundle")
    from flwr.simulation import run_simulation

    log: list[dict] = []
    run_simulation(server_app(server, log), client_app(devices), num_supernodes=len(devices.histories),
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                   "init_args": {"num_cpus": cpus, "include_dashboard": False}})
    return log
