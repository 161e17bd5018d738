"""The federated simulation (`edgerec federate`): does a bundle improve from what devices learn?

In one process and deterministic for a seed, but for the DP arms' noise and device samples, which come from
the OS's entropy unless ServerConfig.seeded_noise (fed_world.py builds the world):
bundle v1 from the early events, devices holding only their later events,
then R rounds of about K sampled devices, each running the device's own code
path (runtime/federated.py: its encoder, its history store, its ledger) and
uploading bytes that the server decodes and aggregates. Arms: v1 without
updates, the centralized retraining upper bound, FedAvg, DP-FedAvg at each
epsilon, the personal vectors alone (the table stays v1), and the item table
trained centrally with the encoder frozen (federated/table_bound.py: what the
loop's part of the model could reach at best). Reported:
NDCG@10 after every round, the share of the centralized gain each arm
recovers, bytes uploaded and device milliseconds per round, and the device
time of one round for a 500-event history. The FedAvg and the DP tables are
published as new bundles and opened as updates of v1.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError
from edgerec.federated.accounting import DPPlan
from edgerec.federated.publish import publish_bundle
from edgerec.federated.server import FederatedServer, ServerConfig
from edgerec.federated.table_bound import TableFit, fit_table
from edgerec.runtime.atomic import write_file
from edgerec.runtime.fed_format import decode_update
from edgerec.runtime.federated import (
    Consent,
    Personal,
    RoundTask,
    example_positions,
    step_losses,
    take_part,
    user_vectors,
)
from edgerec.runtime.personal import load_personal
from edgerec.runtime.privacy_ledger import DAY, Budget, PrivacyLedger
from edgerec.studies.base import Progress, Study, Table, pyplot, save_figure
from edgerec.studies.devices import open_device
from edgerec.studies.fed_world import (
    WorldConfig,
    device_store,
    make_devices,
    ndcg_at_10,
    shipped,
    split_by_time,
    train_and_export,
    training_summary,
)


def _read_stamp(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None

@dataclass
class FederatedStudy(Study):
    name = "federated"
    draws = True

    data_dir: Path
    out: Path
    world: WorldConfig = field(default_factory=WorldConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    task: RoundTask = field(default_factory=lambda: RoundTask(round=0, space=""))
    epsilons: tuple[float, ...] = (1.0, 4.0, 8.0)
    delta: float = 1e-6
    central: bool = True  # train the centralized upper bound (a second training run)
    table_bound: bool = True  # train the item table alone centrally (encoder frozen): the loop's own ceiling
    table_fit: TableFit = field(default_factory=TableFit)
    personal_arm: bool = True  # the arm where only personal vectors move (a full run of device rounds)
    # devices learn a personal vector in the table's rounds too and train rows against it; off, they
    # train rows against the shared user vectors alone (what an app serving without them sees)
    personal: bool = True
    publish: bool = True  # write the FedAvg and DP bundles and open them as updates of v1
    reuse: bool = False  # take v1 and the upper bound from `out` when an earlier run of this world left them
    # DP arms only: every device stands for this many users with its history, sampled independently
    # (a population this many times larger at the same sampling rate, so the same noise multiplier on
    # that many more devices per round): a projection of what DP-FedAvg gives at that scale
    dp_population_scale: int = 1

    def measure(self, progress: Progress) -> dict:
        from edgerec.data.store import load_dataset, save_dataset

        out = Path(self.out)
        self._check_arguments()
        for warning in self.budget_warnings():
            progress(f"warning: {warning}", {})
        dataset = load_dataset(self.data_dir)
        early, cut = split_by_time(dataset, self.world.early_share)
        save_dataset(early, out / "data-early")
        v1_path = self._trained(early, out / "data-early", out / "v1", "bundle v1 on the early events", progress)
        devices = make_devices(dataset, cut, self.world)
        item_ids = list(dataset.catalog.item_ids)
        rec = open_device(v1_path, backend="onnx")
        space, table0 = rec.manifest.embedding_space, rec.catalog.stored.dequantize()
        users = self._eval_vectors(rec, devices)
        record = {"devices": len(devices), "items": len(item_ids), "cut": cut,
                  "early_events": len(early.interactions), "events": len(dataset.interactions),
                  "server": asdict(self.server), "task": {k: v for k, v in asdict(self.task).items()
                                                          if k not in ("round", "space", "epsilon")},
                  "delta": self.delta, "arms": []}
        v1 = ndcg_at_10(users, table0, devices)
        record["arms"].append({"arm": "v1 (no update)", **v1, "per_round": [v1["NDCG@10"]]})
        record["training"] = {"v1 (no update)": training_summary(out / "v1")}
        if self.central:
            central_path = self._trained(dataset, Path(self.data_dir), out / "central",
                                         "the centralized upper bound on all events", progress)
            with open_device(central_path, backend="onnx") as central:
                metrics = ndcg_at_10(self._eval_vectors(central, devices), central.catalog.stored.dequantize(),
                                     devices)
            record["arms"].append({"arm": "centralized retraining", **metrics, "per_round": [metrics["NDCG@10"]]})
            record["training"]["centralized retraining"] = training_summary(out / "central")
        if self.table_bound:
            progress("training the item table alone on all devices' events (encoder frozen)", {})
            metrics = ndcg_at_10(users, shipped(self._table_only(rec, devices, table0)), devices)
            record["arms"].append({"arm": "centralized, item table only", **metrics, "per_round": [metrics["NDCG@10"]]})
        scaled = f", population x{self.dp_population_scale}" if self.dp_population_scale > 1 else ""
        arms = [("FedAvg", None), *((f"DP-FedAvg eps {e:g}{scaled}", e) for e in self.epsilons),
                *([("personal only", "none")] if self.personal_arm else [])]
        for label, eps in arms:
            with one_thread():  # a device computes on one core; BLAS threads only fight on a shared host
                run = self._run(rec, devices, item_ids, table0, users, eps, cut, progress, label)
            record["arms"].append(run.pop("arm_record"))
            projected = self.dp_population_scale > 1  # its epsilon is that of users who are not there
            private = not (projected or self.server.seeded_noise)  # seeded noise: anyone with the seed removes it
            if self.publish and (eps is None or (eps == max(self.epsilons, default=None) and private)):
                record.setdefault("bundles", []).append(self._publish(rec, v1_path, run, label, out))
            record.setdefault("runs", {})[label] = {k: run[k] for k in ("bytes", "ms", "declined")}
        with one_thread():
            record["device_500_events"] = self._device_500(rec, item_ids, space)
        rec.close()
        _recovered(record)
        return record

    # ------------------------------------------------------------------ parts

    def _check_arguments(self) -> None:
        """Every argument checked before v1 is trained or --out written: a typo costs no run (and no
        --out that the next run would refuse as not empty)."""
        if self.dp_population_scale < 1:
            raise ConfigError(f"the DP population scale is a whole number >= 1 (got {self.dp_population_scale})")
        if self.world.max_devices < 1:
            raise ConfigError(f"a federated run needs at least 1 device (got --devices {self.world.max_devices})")
        self.server.check(population=self.world.max_devices)  # checked again against the devices made
        self.task.check()
        self.world.train.validate()
        if not all(0 < e < math.inf for e in self.epsilons) or not 0 < self.delta < 1:
            raise ConfigError(f"every epsilon must be finite and > 0 and delta in (0, 1) (got epsilons "
                              f"{list(self.epsilons)}, delta {self.delta})")
        # each DP arm's noise and spent epsilon, on the most devices the run may make: 1000 failed after every
        # earlier arm had trained, and 0.0001 after all of them, with its spending accounted as 0
        devices = self.world.max_devices * self.dp_population_scale
        q = min(self.server.clients_per_round * self.dp_population_scale, devices) / devices
        for eps in self.epsilons:
            plan = DPPlan(float(eps), self.delta, q, self.server.rounds, self.task.clip)
            if not plan.describe(plan.noise_multiplier())["epsilon"] > 0:
                raise ConfigError(f"epsilon {eps:g} is too small for the accountant to tell from 0 over "
                                  f"{self.server.rounds} rounds: choose a larger --epsilon")

    def budget_warnings(self) -> list[str]:
        """A DP arm whose epsilon per round is over a device's daily privacy budget is declined by every
        device (a round a simulated day) and can only end at v1: said before hours of training, not after."""
        daily = Budget().per_day
        over = [e for e in self.epsilons if e / self.server.rounds > daily + 1e-12]
        return [f"DP-FedAvg at epsilon {e:g} over {self.server.rounds} rounds charges each device {e / self.server.rounds:g} "
                f"a round, over a device's daily privacy budget of {daily:g}: every device will decline and the arm "
                f"will stay at v1; plan at least {math.ceil(e / daily)} rounds (--rounds) or a smaller --epsilon"
                for e in over]

    def _trained(self, dataset, data_dir: Path, folder: Path, what: str, progress) -> Path:
        """The bundle trained on `dataset` in `folder`: trained now, or the one an earlier run left."""
        stamp = folder / "trained-on.json"  # what it was trained on: reused only for the same data and settings
        made_of = {"data": dataset.fingerprint(), "world": repr(replace(self.world, max_devices=0, min_items=0))}
        if self.reuse and (folder / "bundle" / "manifest.json").is_file():
            if _read_stamp(stamp) == made_of:
                progress(f"reusing {what} from {folder.name}/bundle", {})
                return folder / "bundle"
            progress(f"not reusing {folder.name}/bundle: it was trained on other data or settings", {})
            for stale in ("bundle", "model"):  # else the export refused the folder it had just said it replaces
                shutil.rmtree(folder / stale, ignore_errors=True)
            stamp.unlink(missing_ok=True)
        progress(f"training {what}", {"events": len(dataset.interactions)})
        bundle = train_and_export(dataset, data_dir, folder, self.world, progress, who=folder.name)
        write_file(stamp, json.dumps(made_of))
        return bundle

    def _table_only(self, rec, devices, table0) -> np.ndarray:
        """v1's table trained on every device's next-item steps (those a round would use) at once; the
        steps of a tenth of the devices are held out to pick the epoch (never their test items)."""
        users, targets = [], []
        for device in devices:
            consumed = [int(r) for r in device.rows]
            positions = example_positions(len(consumed), self.task.max_examples)
            users.append(user_vectors(rec, consumed, positions))
            targets.append(np.asarray(consumed, np.int64)[positions])
        n_held = len(devices) // 10 or min(1, len(devices) - 1)
        held = np.zeros(len(devices), bool)
        held[np.random.default_rng(self.world.seed).choice(len(devices), n_held, replace=False)] = True

        def joined(parts: list[np.ndarray], side: bool) -> np.ndarray:
            return np.concatenate([part for part, h in zip(parts, held) if h == side])

        validation = (joined(users, True), joined(targets, True)) if n_held else None
        return fit_table(joined(users, False), joined(targets, False), table0, self.world.model.temperature,
                         self.table_fit, validation)

    @staticmethod
    def _eval_vectors(rec, devices) -> np.ndarray:
        """Each device's user vector from its whole history (what it would be served with)."""
        return np.concatenate([user_vectors(rec, list(d.rows) + [d.target], np.array([len(d.rows)]))
                               for d in devices])

    def _run(self, rec, devices, item_ids, table0, users, eps, cut, progress, label) -> dict:
        dp = None
        cfg = replace(self.server, clients_per_round=min(self.server.clients_per_round, len(devices)))
        q = cfg.clients_per_round / len(devices)
        scale = self.dp_population_scale if isinstance(eps, (int, float)) else 1
        cfg = replace(cfg, clients_per_round=cfg.clients_per_round * scale)
        if isinstance(eps, (int, float)):
            dp = DPPlan(float(eps), self.delta, q, cfg.rounds, self.task.clip)
        task = replace(self.task, temperature=self.world.model.temperature)  # the softmax v1 was trained with
        server = FederatedServer(table0, rec.manifest.embedding_space, len(devices) * scale, cfg, task, dp)
        cohorts = np.random.default_rng([self.server.seed, 2])  # the step search's evaluation cohorts
        stores: dict[int, object] = {}
        consent = Consent(opted_in=True, without_dp=True)
        # a device standing for many users takes part in almost every round, where each of those users
        # would take part once or twice: its one personal vector would drift far from theirs
        personal = Personal(enabled=scale == 1 and (self.personal or eps == "none"))
        per_round, sizes, times, declined = [ndcg_at_10(users, shipped(table0), devices)["NDCG@10"]], [], [], 0
        space = rec.manifest.embedding_space

        def offsets() -> np.ndarray:  # the devices' personal vectors (zeros for those never sampled)
            return np.stack([load_personal(stores[i], devices[i].user, space, users.shape[1]) if i in stores
                             else np.zeros(users.shape[1], np.float32) for i in range(len(devices))])
        for r in range(self.server.rounds):
            task = server.task(r)
            updates = []
            copies = np.bincount(server.sample() % len(devices), minlength=len(devices))  # users -> devices
            for i in np.flatnonzero(copies):
                if i not in stores:
                    stores[i] = device_store(devices[i], item_ids)
                store = stores[i]
                result = take_part(rec, devices[i].user, task, history=store, table=server.table, consent=consent,
                                   personal=personal, now=float(cut + (r + 1) * DAY), ledger=simulated(store))
                if result.payload is None:
                    declined += 1
                    continue
                updates += [decode_update(result.payload)] * int(copies[i])  # the server sees the bytes only
                sizes.append(len(result.payload))
                times.append(result.ms)
            if eps != "none":
                trainers = set(np.flatnonzero(copies).tolist())
                server.aggregate(updates, self._evaluator(rec, devices, item_ids, stores, trainers, server, consent,
                                                          cohorts, now=float(cut + (r + 1) * DAY))
                                 if eps is None else None)
            queries = users + offsets() if eps == "none" else users
            per_round.append(ndcg_at_10(queries, shipped(server.table), devices)["NDCG@10"])
            progress(f"{label}: round {r + 1}/{self.server.rounds}", {"devices": len(updates),
                                                                       "NDCG@10": per_round[-1]})
        final = ndcg_at_10(users, shipped(server.table), devices)
        arm = {"arm": label, **final, "per_round": per_round, "server_lr": [e["server_lr"] for e in server.log]}
        if dp is not None:
            arm.update(epsilon=dp.describe(server.noise_multiplier)["epsilon"], noise_multiplier=server.noise_multiplier,
                       population=server.population, clients_per_round=cfg.clients_per_round)
        with_personal = ndcg_at_10(users + offsets(), shipped(server.table), devices)
        if eps == "none":
            arm.update(with_personal)
        else:
            arm["NDCG@10 with personal vectors"] = with_personal["NDCG@10"]
        for store in stores.values():
            store.close()
        return {"arm_record": arm, "table": server.table, "dp": dp, "noise": server.noise_multiplier,
                "clients_per_round": cfg.clients_per_round,
                "bytes": _summary(sizes), "ms": _summary(times), "declined": declined}

    @staticmethod
    def _evaluator(rec, devices, item_ids, stores, trainers, server, consent, cohorts, now):
        """FedAvg's step search: an evaluation cohort of up to `eval_devices` devices not training in the
        round, each reporting its loss on its newest item for every candidate step (step_losses)."""
        def evaluate(rows, delta, steps):
            idle = np.array([i for i in range(len(devices)) if i not in trainers], np.int64)
            drawn = cohorts.choice(idle, min(len(idle), server.cfg.eval_devices), replace=False)
            total, answered = np.zeros(len(steps)), 0
            for i in (int(i) for i in np.sort(drawn)):
                if i not in stores:
                    stores[i] = device_store(devices[i], item_ids)
                losses = step_losses(rec, devices[i].user, server.table, rows, delta, steps,
                                     history=stores[i], consent=consent, now=now, ledger=simulated(stores[i]))
                if losses is not None:
                    total, answered = total + losses, answered + 1
            return total if answered else None
        return evaluate

    def _publish(self, rec, v1_path, run, label, out) -> dict:

        folder = out / ("bundle-" + label.lower().replace(" ", "-").replace("(", "").replace(")", ""))
        if self.reuse and (folder / "manifest.json").is_file():  # this arm's bundle from the earlier run
            shutil.rmtree(folder)
        info = {"rounds": self.server.rounds, "clients_per_round": run["clients_per_round"],
                "server_lr": self.server.server_lr, "arm": label}
        if run["dp"] is not None:
            info["dp"] = run["dp"].describe(run["noise"])
        manifest = publish_bundle(rec.bundle, run.pop("table"), folder, info)
        with open_device(folder, fallback=v1_path, backend="onnx") as updated:
            accepted = updated.update.accepted
        return {"arm": label, "bundle": folder.name, "embedding_space": manifest.embedding_space,
                "parent_space": rec.manifest.embedding_space, "accepted_as_update": accepted,
                **({"epsilon": info["dp"]["epsilon"], "delta": info["dp"]["delta"]} if "dp" in info else {})}

    def _device_500(self, rec, item_ids, space) -> dict:
        """Device time of one round for a history of 500 events (median of 5; wall and CPU time)."""
        from edgerec.studies.fed_world import Device

        rng = np.random.default_rng(self.world.seed)
        rows = rng.choice(len(item_ids), min(500, len(item_ids) - 1), replace=False)
        device = Device("device-500", rows[:-1], np.arange(len(rows) - 1, dtype=np.int64), int(rows[-1]))
        store = device_store(device, item_ids)
        task = replace(self.task, round=0, space=space, epsilon=0.01, max_examples=500)
        times, cpu = [], []
        for r in range(5):
            began = time.process_time()
            times.append(take_part(rec, device.user, replace(task, round=r), history=store,  # the run's own mode:
                                   ledger=simulated(store), personal=Personal(enabled=self.personal),
                                   consent=Consent(opted_in=True)).ms)
            cpu.append((time.process_time() - began) * 1e3)  # what the round costs, whatever else runs
        store.close()
        return {"events": len(device.rows), "median_ms": float(np.median(times)), "max_ms": float(np.max(times)),
                "median_cpu_ms": float(np.median(cpu))}

    # ------------------------------------------------------------------ report

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        runs = record.get("runs", {})
        rows = []
        for arm in record["arms"]:
            run = runs.get(arm["arm"], {})
            rows.append({"arm": arm["arm"], "NDCG@10": arm["NDCG@10"], "HR@10": arm["HR@10"],
                         "share of central gain": arm.get("recovered"), "epsilon": arm.get("epsilon"),
                         "noise multiplier": arm.get("noise_multiplier"),
                         "upload bytes (mean)": run.get("bytes", {}).get("mean"),
                         "device ms (mean)": run.get("ms", {}).get("mean"),
                         # a DP round over a device's daily budget is declined by every device: the arm's
                         # NDCG@10 is then v1's, which only these two columns tell apart from a result
                         "uploads": run.get("bytes", {}).get("n"), "declined": run.get("declined")})
        dev = record["device_500_events"]
        rounds = Table(f"Federated rounds ({record['devices']} devices, {record['server']['rounds']} rounds, "
                       f"~{min(record['server']['clients_per_round'], record['devices'])} devices per round, "
                       f"DP delta {record['delta']:g}; "
                       f"one round of a {dev['events']}-event device: {dev['median_ms']:.0f} ms, "
                       f"{dev.get('median_cpu_ms', float('nan')):.0f} ms of CPU)", rows)
        return [rounds, *cls._training_tables(record)]

    @staticmethod
    def _training_tables(record: dict) -> list[Table]:
        """How v1 and the upper bound trained: a share of the gain means little against a bound that
        stopped at its time cap while still improving, so the table says so and what to do."""
        training = record.get("training", {})
        if not training:
            return []
        rows = [{"model": arm, "epochs": info["epochs_run"], "best epoch": info["best_epoch"],
                 "stopped by": info["stopped_by"], "still improving": "yes" if info["still_improving"] else "no",
                 "minutes": None if info["train_seconds"] is None else f"{info['train_seconds'] / 60:.1f}"}
                for arm, info in training.items()]
        return [Table("How v1 and the upper bound trained (a bound still improving at its cap is too low: "
                      "raise --train-minutes)", rows)]

    @classmethod
    def draw(cls, record: dict, path: Path) -> Path | None:
        plt = pyplot()
        if plt is None:
            return None
        fig, ax = plt.subplots(figsize=(6.5, 4))
        rounds = record["server"]["rounds"]
        for arm in record["arms"]:
            curve = arm["per_round"]
            if len(curve) == 1:
                ax.axhline(curve[0], linestyle="--", linewidth=1, label=arm["arm"])
            else:
                ax.plot(range(len(curve)), curve, marker=".", label=arm["arm"])
        ax.set_xlabel("round")
        ax.set_ylabel("NDCG@10 (each device's last item)")
        ax.set_xlim(0, rounds)
        ax.legend(fontsize=7)
        return save_figure(fig, path, dpi=100)


def one_thread():
    """At most one BLAS thread inside (threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(1)


def simulated(store) -> PrivacyLedger:
    """A simulated device's ledger: in memory, its days the simulation's (runtime/privacy_ledger.py)."""
    return PrivacyLedger(store, simulation=True)


def _summary(values: list[float]) -> dict:
    if not values:
        return {"mean": None, "max": None, "n": 0}
    return {"mean": float(np.mean(values)), "max": float(np.max(values)), "n": len(values)}


def _recovered(record: dict) -> None:
    """Each arm's share of the NDCG@10 gain centralized retraining gets over v1."""
    arms = {a["arm"]: a for a in record["arms"]}
    central = arms.get("centralized retraining")
    base = arms["v1 (no update)"]["NDCG@10"]
    if central is None or central["NDCG@10"] <= base:
        return
    for arm in record["arms"]:
        arm["recovered"] = (arm["NDCG@10"] - base) / (central["NDCG@10"] - base)
