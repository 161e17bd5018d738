"""`edgerec tune`: an Optuna search over model and training settings, strategies, or the runtime's policy weights.

Trial 0 is `edgerec train`'s defaults (the untuned policy for `policy`), so
the report always shows what tuning gained over not tuning. TPE proposes
settings, a median pruner stops trials whose validation
NDCG@10 after an epoch falls below the running median, and the study lives
in SQLite, so a run that was interrupted resumes where it stopped (run the
same command again). Trials read the validation split only; the test split
is scored once, for the best trial, at the end. The best model is saved as
an ordinary checkpoint; the best policy as JSON for `Policy.from_dict(weights)`.

Targets:
- `model`: width, layers, heads, dropout, learning rate, history length,
  loss and negatives, feature switches; with several `strategies` the same
  search compares sequential (sasrec), two-tower, item-kNN and the hybrid of
  a sequential model with item-kNN, and reports which wins.
- `policy`: diversity (MMR), freshness, popularity blend, hub penalty of the
  device's policies stage over a trained model's short lists, the short list's
  length, and how many first places keep the model's order; the objective is a
  beyond-accuracy metric under a bound on the NDCG@10 loss.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgerec.data.schema import Dataset
from edgerec.data.split import Split
from edgerec.errors import ConfigError, EdgerecError
from edgerec.models.baselines import Hybrid, ItemKNN
from edgerec.models.checkpoint import load_model, save_checkpoint
from edgerec.models.config import ModelConfig
from edgerec.models.evaluation import Evaluator, train_popularity
from edgerec.models.hubness import model_hubness
from edgerec.models.metrics import describe_change, ndcg_per_user, paired_change
from edgerec.models.policy_scorer import PolicyScorer, request_times
from edgerec.models.scoring import ModelScorer
from edgerec.models.train import TrainConfig, train_model
from edgerec.runtime.atomic import sync_folder, write_file
from edgerec.runtime.policies import Policy
from edgerec.studies.base import Progress, Study, Table, pyplot, save_figure
from edgerec.studies.policy_bound import (
    HitCurve,
    consistency_margin,
    objective_reading,
    paired_margin,
    policy_value,
)

STRATEGIES = ("sasrec", "two-tower", "hybrid", "itemknn")
# A call's time budget is shared by at least this many trials (unless --trial-minutes says otherwise): on a
# small data set one full step budget can take longer than the whole call, leaving a single trial.
TRIALS_PER_BUDGET = 5
CANDIDATES = "candidates"  # trials' models until the study holds them complete (settle_best)
# name -> a list (categorical choices) or (low, high, kind) with kind "int", "float", "log" or "intlog"
# (whole numbers drawn on a log scale)
MODEL_SPACE: dict = {
    "dim": [32, 64, 128],
    "layers": (1, 3, "int"),
    "heads": [1, 2, 4],
    "dropout": (0.0, 0.5, "float"),
    "lr": (3e-4, 1e-2, "log"),
    "max_len": [20, 50, 100, 200],
    "loss": ["sampled", "full"],
    "negatives": [256, 1024, 4096],
    "use_features": [True, False],
}
HYBRID_SPACE: dict = {"knn_weight": (0.05, 2.0, "log")}
KNN_SPACE: dict = {"neighbors": [20, 50, 100, 200], "decay": (0.5, 1.0, "float")}
POLICY_SPACE: dict = {
    "diversity": (0.0, 0.7, "float"),
    "freshness": (0.0, 1.0, "float"),
    "freshness_days": (3.0, 365.0, "log"),
    "popularity": (-1.0, 1.0, "float"),  # below 0 the policy lifts the long tail (novelty, coverage)
    "hub_penalty": (0.0, 1.0, "float"),  # items close to everyone give way (coverage)
    # how many of the scan's best rows the levers above work on: with a longer list the popularity
    # blend and the hub penalty can bring up items from further down (the device's cost grows with it)
    "short_list": (50, 1000, "intlog"),
    # the first places keep the model's order and the levers above fill the rest: most hits sit at the
    # top, so spreading only the lower places buys coverage for less NDCG@10 (9: only the 10th place)
    "keep_top": (0, 9, "int"),
}


@dataclass
class TuneConfig:
    target: str = "model"  # model | policy
    minutes: float = 30.0  # wall-clock budget of this call
    trials: int | None = None  # total finished (complete or pruned) trials (None: until the time runs out)
    strategies: tuple[str, ...] = ("sasrec",)
    space: dict = field(default_factory=dict)  # overrides of the search space, same forms as MODEL_SPACE
    train: TrainConfig = field(default_factory=TrainConfig)  # what every trial starts from
    trial_minutes: float | None = None  # cap of one trial (default: minutes / TRIALS_PER_BUDGET)
    objective: str = "NDCG@10"  # model: a validation metric; policy: the beyond-accuracy metric to raise
    max_ndcg_loss: float = 0.01  # policy: NDCG@10 may fall at most this fraction below the untuned policy
    margin_z: float | None = None  # policy: standard errors the bound holds by (None: MARGIN_Z, one-sided 95%)
    expected_bound: bool = True  # policy: the rank-expected NDCG@10 (HitCurve) keeps to the bound, the measured checks it
    eval_users: int = 0  # validation users per trial (0 = all)
    seed: int = 0
    study_name: str = "edgerec-tune"

    def validate(self) -> TuneConfig:
        if self.target not in ("model", "policy"):
            raise ConfigError(f"--target must be model or policy, not {self.target!r}")
        unknown = set(self.strategies) - set(STRATEGIES)
        if unknown or not self.strategies:
            raise ConfigError(f"unknown strategies {sorted(unknown)}; choose from {', '.join(STRATEGIES)}")
        if not 0 <= self.minutes < math.inf:
            raise ConfigError(f"--minutes must be a finite time >= 0 (got {self.minutes})")
        if self.minutes == 0 and self.trials is None:
            raise ConfigError("give a time budget (--minutes > 0) or a number of trials (--trials)")
        if (self.trials is not None and self.trials < 1) or self.eval_users < 0:
            raise ConfigError(f"--trials must be at least 1 and --eval-users at least 0 (0 = all) "
                              f"(got {self.trials}, {self.eval_users})")
        if self.trial_minutes is not None and not 0 < self.trial_minutes < math.inf:
            raise ConfigError(f"--trial-minutes must be a finite time > 0 (got {self.trial_minutes})")
        if self.margin_z is not None and not 0 <= self.margin_z < math.inf:
            raise ConfigError(f"--margin-z is a number of standard errors >= 0 (got {self.margin_z})")
        if not 0 <= self.max_ndcg_loss <= 1:
            raise ConfigError(f"--max-ndcg-loss is a fraction from 0 to 1 (got {self.max_ndcg_loss})")
        self.train.validate()
        _check_space(self.space, POLICY_SPACE if self.target == "policy" else
                     {**MODEL_SPACE, **HYBRID_SPACE, **KNN_SPACE})
        return self


def _check_space(overrides: dict, space: dict) -> None:
    """Each --space override names a setting of this search and gives values of its kind."""
    for name, values in overrides.items():
        if name not in space:
            raise ConfigError(f"--space {name}: no such setting here; use one of {', '.join(space)}")
        spec = space[name]
        kinds = ({type(v) for v in spec} if isinstance(spec, list) else {int} if spec[2] in ("int", "intlog")
                 else {int, float})
        if float in kinds:
            kinds.add(int)  # 1 is a float setting too
        if isinstance(values, tuple) and len(values) == 3 and values[2] in ("int", "float", "log", "intlog"):
            values = values[:2]  # a (low, high, kind) range
        wrong = [v for v in values if type(v) not in kinds]
        if wrong or not values:
            names = " or ".join(sorted(k.__name__ for k in kinds))
            raise ConfigError(f"--space {name} takes {names} values, not {wrong[0] if wrong else 'nothing'!r}")


def parse_space(specs: list[str]) -> dict:
    """NAME=V1,V2,... options -> {name: [typed values]} (one value fixes a setting)."""
    out = {}
    for spec in specs:
        name, _, values = spec.partition("=")
        if not name or not values:
            raise ConfigError(f"--space takes NAME=V1,V2,..., not {spec!r}")
        out[name] = [_typed(v) for v in values.split(",")]
    return out


def _typed(text: str):
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def _suggest(trial, name: str, spec):
    if isinstance(spec, list):
        return spec[0] if len(spec) == 1 else trial.suggest_categorical(name, spec)
    low, high, kind = spec
    if kind in ("int", "intlog"):
        return trial.suggest_int(name, int(low), int(high), log=kind == "intlog")
    return trial.suggest_float(name, float(low), float(high), log=kind == "log")


def _pick(trial, space: dict, overrides: dict) -> dict:
    return {name: _suggest(trial, name, overrides.get(name, spec)) for name, spec in space.items()}


class _Search:
    """One objective over validation; keeps what the final report needs (the best model, the evaluator)."""

    def __init__(self, dataset: Dataset, split: Split, cfg: TuneConfig, out: Path, progress: Progress,
                 base_model: Path | None):
        self.dataset, self.split, self.cfg, self.out, self.progress = dataset, split, cfg, out, progress
        self.evaluator = Evaluator(split, dataset.catalog, k=10)
        rows = None
        if cfg.eval_users and cfg.eval_users < len(split.val_users):
            rows = np.sort(np.random.default_rng(cfg.seed).choice(len(split.val_users), cfg.eval_users, False))
        self.rows = rows
        self.began = time.perf_counter()
        self._knn: dict = {}
        self.base_model = load_model(base_model)[0] if base_model else None
        self.base_gains: np.ndarray | None = None  # the untuned policy's NDCG@10 per validation user
        self.hubness: np.ndarray | None = None
        self.hit_curve: HitCurve | None = None
        self.base_value = 0.5  # the untuned policy's objective on validation (set with base_gains)

    def remaining_minutes(self) -> float:
        return self.cfg.minutes - (time.perf_counter() - self.began) / 60

    def validate(self, scorer) -> dict:
        return self.evaluator.evaluate(scorer, "val", rows=self.rows)

    def knn(self, neighbors: int = 100, decay: float = 0.8) -> ItemKNN:
        key = (neighbors, round(decay, 4))
        if key not in self._knn:
            self._knn[key] = ItemKNN(self.split, neighbors=neighbors, decay=decay)
        return self._knn[key]

    # ------------------------------------------------------------- model target
    def model_trial(self, trial) -> float:
        import optuna

        cfg = self.cfg
        strategy = _suggest(trial, "strategy", list(cfg.strategies))
        if strategy == "itemknn":
            params = _pick(trial, KNN_SPACE, cfg.space)
            metrics = self.validate(_Named(self.knn(params["neighbors"], params["decay"]), "itemknn"))
            return self._finish(trial, metrics, None)
        p = _pick(trial, MODEL_SPACE, cfg.space)
        heads = math.gcd(int(p["dim"]), int(p["heads"]))  # heads must divide the width
        model_cfg = ModelConfig(arch="two-tower" if strategy == "two-tower" else "sasrec", dim=int(p["dim"]),
                                layers=int(p["layers"]), heads=heads, max_len=int(p["max_len"]),
                                dropout=float(p["dropout"]), use_features=bool(p["use_features"]))
        left = self.remaining_minutes()
        cap = min(cfg.trial_minutes or max(cfg.minutes / TRIALS_PER_BUDGET, 0.05), max(left, 0.05))
        train_cfg = TrainConfig(**{**asdict(cfg.train), "lr": float(p["lr"]), "loss": p["loss"],
                                   "negatives": int(p["negatives"]), "eval_users": cfg.eval_users,
                                   "seed": cfg.seed, "max_minutes": cap})

        def report(kind: str, done: int, _total: int, record: dict) -> None:
            if kind != "epoch":
                return
            trial.report(record["val_NDCG@10"], done)
            if trial.should_prune():
                raise optuna.TrialPruned()

        result = train_model(self.dataset, self.split, model_cfg, train_cfg, progress=report)
        scorer = ModelScorer(result.model, strategy)
        if strategy == "hybrid":
            weight = _suggest(trial, "knn_weight", cfg.space.get("knn_weight", HYBRID_SPACE["knn_weight"]))
            scorer = Hybrid([(scorer, 1.0), (self.knn(), float(weight))], name="hybrid")
        metrics = self.validate(scorer)
        trial.set_user_attr("stopped_by", result.info["stopped_by"])
        trial.set_user_attr("epochs_run", result.info["epochs_run"])
        return self._finish(trial, metrics, result)

    def _finish(self, trial, metrics: dict, result) -> float:
        value = objective_reading(metrics, self.cfg.objective)
        trial.set_user_attr("val", {k: v for k, v in metrics.items() if "@" in k})
        if result is not None and value > self._best_model_value(trial):
            info = {**result.info, "tune": {"trial": trial.number, "params": trial.params,
                                            "val": trial.user_attrs["val"]}}
            # beside `best`, until the study has recorded this trial as complete (settle_best moves it in)
            save_checkpoint(self.out / CANDIDATES / str(trial.number), result.model.state_dict(),
                            result.model.config, result.items, info)
        return value

    def _best_model_value(self, trial) -> float:
        """The best validation value of an earlier finished trial that saved a model."""
        import optuna

        best = -math.inf
        for t in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            if t.number != trial.number and t.params.get("strategy") != "itemknn" and t.value is not None:
                best = max(best, t.value)
        return best

    # ------------------------------------------------------------ policy target
    def policy_scorer(self, weights: dict, phase: str, plain_ranks: dict | None = None) -> PolicyScorer:
        users, _ = self.split.targets(phase)
        times = self.split.val_times if phase == "val" else self.split.test_times
        scorer = ModelScorer(self.base_model, "model")
        if weights.get("hub_penalty") and self.hubness is None:  # what the exporter writes, measured once
            self.hubness = model_hubness(scorer, self.split.train, scorer.item_matrix())
        return PolicyScorer(scorer, self.dataset.catalog.release_ts, train_popularity(self.split),
                            request_times(self.dataset.n_users, users, times), Policy(**weights), name="policy",
                            hubness=self.hubness, plain_ranks=plain_ranks)

    def policy_trial(self, trial) -> float:
        weights = _pick(trial, POLICY_SPACE, self.cfg.space)
        listed: dict = {}
        metrics, gains = self.validate_gains(self.policy_scorer(weights, "val", listed))
        trial.set_user_attr("val", {k: v for k, v in metrics.items() if "@" in k})
        if self.base_gains is None:
            ranks, lists = self.evaluator.ranks_and_lists(self.policy_scorer(UNTUNED, "val"), "val", rows=self.rows)
            self.base_gains = ndcg_per_user(ranks, self.evaluator.k)
            self.base_value = objective_reading(self.evaluator.summarize(ranks, lists, "untuned", "val"),
                                                self.cfg.objective)
            # the untuned list is the model's order; bootstrapped for the expected reading's own error
            self.hit_curve = HitCurve.of(ranks, self.split.n_items, seed=self.cfg.seed)
        base, z, k = float(self.base_gains.mean()), self.cfg.margin_z, self.evaluator.k
        if not self.cfg.expected_bound:
            margin = paired_margin(gains, self.base_gains, z)
            trial.set_user_attr("ndcg_margin", margin)
            return policy_value(metrics, self.cfg.objective, base, self.cfg.max_ndcg_loss, margin,
                                scale=self.base_value)
        expected, expected_margin = self.hit_curve.change(listed, k, z)
        margin = consistency_margin(gains, self.base_gains, self.hit_curve.per_user(listed, k), z)
        trial.set_user_attr("ndcg_margin", margin)
        trial.set_user_attr("expected_ndcg_change", expected)
        trial.set_user_attr("expected_margin", expected_margin)
        return policy_value(metrics, self.cfg.objective, base, self.cfg.max_ndcg_loss, margin, expected,
                            expected_margin, self.base_value)

    def validate_gains(self, scorer) -> tuple[dict, np.ndarray]:
        """Validation metrics and each user's NDCG@10 gain (for the paired comparison with the untuned policy)."""
        ranks, lists = self.evaluator.ranks_and_lists(scorer, "val", rows=self.rows)
        return self.evaluator.summarize(ranks, lists, scorer.name, "val"), ndcg_per_user(ranks, self.evaluator.k)


UNTUNED = {"diversity": 0.0, "freshness": 0.0, "freshness_days": 30.0, "popularity": 0.0, "hub_penalty": 0.0,
           "short_list": Policy().with_defaults().short_list, "keep_top": 0}


@dataclass
class _Named:
    inner: object
    name: str

    def score(self, users, history):
        return self.inner.score(users, history)


def run_tune(dataset: Dataset, split: Split, cfg: TuneConfig, out: str | Path, *, model: str | Path | None = None,
             progress: Progress | None = None) -> dict:
    """Run (or resume) the study in `out/study.db`; return the report record."""
    import optuna

    cfg.validate()
    if cfg.target == "policy" and model is None:
        raise ConfigError("--target policy tunes the runtime's policy over a trained model: give --model CKPT")
    if cfg.objective not in _metric_names():
        raise ConfigError(f"unknown objective {cfg.objective!r}; choose one of {', '.join(_metric_names())}")
    if cfg.objective.startswith("diversity@") and not any(dataset.catalog.tags) and not any(
            dataset.catalog.text["genre"]):
        raise ConfigError("diversity is measured from the items' tags and genres and these items have none; "
                          "import an item table with tags (--items) or tune another objective")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _m, _v: None)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = _Search(dataset, split, cfg, out, say, Path(model) if model else None)
    study = _open_study(optuna, cfg, out)
    _check_same_target(study, cfg, dataset.fingerprint())
    if not study.trials:  # trial 0 is what a user gets without tuning: every other is measured against it
        study.enqueue_trial(untuned_policy(cfg) if cfg.target == "policy" else default_params(cfg))
        for probe in policy_probes(cfg) if cfg.target == "policy" else ():
            study.enqueue_trial(probe)
    objective = search.model_trial if cfg.target == "model" else search.policy_trial
    finished = len(_done(study, pruned=True))  # a pruned trial counts: it was judged
    remaining = None if cfg.trials is None else max(cfg.trials - finished, 0)

    def on_trial(study_, trial) -> None:
        settle_best(study_, out)
        value = "pruned" if trial.value is None else f"{trial.value:.4f}"
        best = _best_or_none(study_)
        say(f"trial {trial.number}: {value} ({trial.state.name.lower()}, {trial.duration.total_seconds():.0f}s)"
            + (f"; best {best.value:.4f} (trial {best.number})" if best else ""), trial.params)

    settle_best(study, out)  # a run killed after a trial finished, before its model was moved in
    if remaining != 0:
        quiet, logger = _QuietOwnErrors(), logging.getLogger("optuna.study._optimize")
        logger.addFilter(quiet)
        try:
            study.optimize(objective, n_trials=remaining, timeout=max(cfg.minutes * 60, 1.0),
                           callbacks=[on_trial], catch=())
        finally:
            logger.removeFilter(quiet)
    return report(study, search, cfg, out)


class _QuietOwnErrors(logging.Filter):
    """Optuna logs a trial that raised with its traceback, then raises again; an EdgerecError (data the
    trials cannot use, say) then reaches the command line, which prints it as one line, so its records go."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        trial = record.getMessage().split(" failed with ", 1)[0]  # "Trial 3" in both of a failure's records
        if record.exc_info and isinstance(record.exc_info[1], EdgerecError):
            self.failed.add(trial)
        return trial not in self.failed


def default_params(cfg: TuneConfig) -> dict:
    """`edgerec train`'s defaults as trial settings, leaving out those the search space excludes."""
    model, train = ModelConfig(), TrainConfig()
    defaults = {"strategy": "sasrec", "dim": model.dim, "layers": model.layers, "heads": model.heads,
                "dropout": model.dropout, "lr": train.lr, "max_len": model.max_len, "loss": train.loss,
                "negatives": train.negatives, "use_features": model.use_features}
    space = {**MODEL_SPACE, **cfg.space, "strategy": list(cfg.strategies)}
    return {name: value for name, value in defaults.items() if _within(value, space[name])}


def untuned_policy(cfg: TuneConfig) -> dict:
    """The untuned policy as trial settings, leaving out those the search space excludes (a space of
    long-tail weights only, say: the first trial then draws those as any other does)."""
    space = {**POLICY_SPACE, **cfg.space}
    return {name: value for name, value in UNTUNED.items() if _within(value, space[name])}


# One lever at a time below a kept head, the rest untuned: where the cheap trades sit (MovieLens-100K: hub
# penalty 0.2 below 7 kept places, coverage@10 +9.5% at an expected NDCG@10 -0.7%). A TPE draw sets all seven
# settings at once, so its first trials change every lever a little and lose accuracy everywhere; these give
# it points inside the bound to learn from.
PROBES = ({"hub_penalty": 0.2}, {"popularity": -0.3}, {"diversity": 0.2}, {"freshness": 0.2})
PROBE_HEADS = (5, 8)


def policy_probes(cfg: TuneConfig) -> list[dict]:
    """The probe trials the search starts with after the untuned one, within the search space (a probe
    of a lever that --space fixes, or at a head it excludes, is left out)."""
    space = {**POLICY_SPACE, **cfg.space}
    probes = []
    for lever in PROBES:
        for head in PROBE_HEADS:
            trial = {**UNTUNED, **lever, "keep_top": head}
            if all(_within(v, space[name]) for name, v in trial.items()):
                probes.append({name: v for name, v in trial.items()
                               if not (isinstance(space[name], list) and len(space[name]) == 1)})
    return probes


def _within(value, spec) -> bool:
    if isinstance(spec, list):
        return value in spec
    low, high, _kind = spec
    return low <= value <= high


def settle_best(study, out: Path) -> None:
    """Make `best` the model of the best complete trial that trained one. A trial's model is saved under
    candidates/N and moved in only once the study holds the trial as complete: a trial killed after its
    save (still "running" in the study) never replaces the model of a finished one, and what a killed
    move left (candidates/N, best.old) is finished here."""
    import optuna

    best, old, candidates = out / "best", out / "best.old", out / CANDIDATES
    if not (best / "config.json").exists() and (old / "config.json").exists():
        shutil.rmtree(best, ignore_errors=True)
        old.rename(best)  # killed between the two renames below, with nothing to move in
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
            and t.params.get("strategy") != "itemknn"]
    winner = max(done, key=lambda t: t.value).number if done else None  # the first of equals: the one saved
    if winner is not None and _saved_trial(best) != winner and (candidates / str(winner) / "config.json").exists():
        shutil.rmtree(old, ignore_errors=True)
        if best.exists():
            best.rename(old)
        (candidates / str(winner)).rename(best)
        sync_folder(out)
    shutil.rmtree(old, ignore_errors=True)
    running = {str(t.number) for t in trials if t.state == optuna.trial.TrialState.RUNNING}
    for folder in candidates.iterdir() if candidates.is_dir() else ():
        if folder.name not in running:  # a finished trial's model that lost, or was moved in meanwhile
            shutil.rmtree(folder, ignore_errors=True)


def _saved_trial(folder: Path) -> int | None:
    """The trial whose model a checkpoint folder holds (None: none, or not a tuned model)."""
    try:
        return json.loads((folder / "config.json").read_text())["info"]["tune"]["trial"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _open_study(optuna, cfg: TuneConfig, out: Path):
    """Create or reopen the study; a resumed study's sampler is seeded past its earlier trials."""
    study = optuna.create_study(
        study_name=cfg.study_name, storage=f"sqlite:///{out / 'study.db'}", load_if_exists=True,
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=3))
    study.sampler = optuna.samplers.TPESampler(seed=cfg.seed + len(study.trials), n_startup_trials=5)
    return study


def _check_same_target(study, cfg: TuneConfig, data: str) -> None:
    """A study folder holds one target on one data set (`data`, its fingerprint): resuming it with another
    would mix incomparable values (a model of other data kept its score and won)."""
    stored = study.user_attrs.get("target")
    if stored is None:
        study.set_user_attr("target", cfg.target)
        study.set_user_attr("objective", cfg.objective)
    elif stored != cfg.target or study.user_attrs.get("objective") != cfg.objective:
        raise ConfigError(f"this study folder tunes {stored} for {study.user_attrs.get('objective')}; "
                          "use another --out for a different target or objective")
    known = study.user_attrs.get("data")
    if known is None:  # a new study (or one from before the check): the data it is tuned on from now
        study.set_user_attr("data", data)
    elif known is not None and known != data:
        raise ConfigError("this study folder tunes on another data set (its trials were scored on other events); "
                          "use another --out for this data, or --data of the study")


def _metric_names() -> tuple[str, ...]:
    return ("NDCG@10", "HR@10", "MRR@10", "coverage@10", "novelty@10", "diversity@10")


def _done(study, pruned: bool = False) -> list:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE,) + ((optuna.trial.TrialState.PRUNED,) if pruned else ())
    return study.get_trials(deepcopy=False, states=states)


def _best_or_none(study):
    done = _done(study)
    return max(done, key=lambda t: t.value) if done else None


def report(study, search: _Search, cfg: TuneConfig, out: Path) -> dict:
    """Trials, best settings, per-strategy winners, parameter importance, and the one test score."""
    import optuna

    trials = [{"number": t.number, "state": t.state.name.lower(), "value": t.value,
               "seconds": round(t.duration.total_seconds(), 1) if t.duration else None,
               "params": t.params, **{k: v for k, v in t.user_attrs.items() if k != "val"},
               "val": t.user_attrs.get("val", {})} for t in study.trials]
    best = _best_or_none(study)
    record = {"target": cfg.target, "objective": cfg.objective, "study": "study.db",  # in the study folder: no host paths in reports
              "trials": trials, "completed": len(_done(study)),
              "pruned": sum(t["state"] == "pruned" for t in trials)}
    if best is None:
        record["best"] = None
        return record
    record["best"] = {"number": best.number, "value": best.value, "params": best.params,
                      "val": best.user_attrs.get("val", {})}
    record["importance"] = _importance(optuna, study)
    if cfg.target == "model":
        per = {}
        for t in _done(study):
            name = t.params.get("strategy", cfg.strategies[0])
            if name not in per or t.value > per[name]["value"]:
                per[name] = {"strategy": name, "value": t.value, "trial": t.number}
        record["strategies"] = sorted(per.values(), key=lambda r: -r["value"])
        record["winner"] = record["strategies"][0]["strategy"]
        record["test"] = _test_model(search, best, out)
        record["checkpoint"] = "best" if (out / "best" / "config.json").exists() else None  # in the study folder
    else:
        weights = {**UNTUNED, **best.params}
        write_file(out / "policy.json", json.dumps(weights, indent=2))
        record["policy"] = weights
        record["untuned_val"] = study.trials[0].user_attrs.get("val", {}) if study.trials else {}
        (tuned, tuned_gains), (untuned, base_gains) = (_test_gains(search, search.policy_scorer(w, "test"))
                                                       for w in (weights, UNTUNED))
        record["test"] = {"tuned": tuned, "untuned": untuned}
        record["test_ndcg_change"] = paired_change(tuned_gains, base_gains)
    return record


def _importance(optuna, study) -> dict:
    """fANOVA importance of the settings the finished trials varied; one that kept a single value was never
    measured (fANOVA gives it 0, which reads as "does not matter")."""
    values: dict = {}
    for trial in _done(study):
        for name, value in trial.params.items():
            values.setdefault(name, set()).add(json.dumps(value, default=str))
    varied = [name for name, seen in values.items() if len(seen) > 1]
    if not varied:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study, params=varied))
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}  # too few finished trials that share these settings


def _test_gains(search: _Search, scorer) -> tuple[dict, np.ndarray]:
    """The test split's metrics and each test user's NDCG@10."""
    ranks, lists = search.evaluator.ranks_and_lists(scorer, "test")
    metrics = search.evaluator.summarize(ranks, lists, scorer.name, "test")
    return {k: v for k, v in metrics.items() if "@" in k}, ndcg_per_user(ranks, search.evaluator.k)


def _test_of(search: _Search, scorer) -> dict:
    metrics = search.evaluator.evaluate(scorer, "test")
    return {k: v for k, v in metrics.items() if "@" in k}


def _test_model(search: _Search, best, out: Path) -> dict:
    """The test split, read once: the best trial (re-built from its saved model, or item-kNN)."""
    params = best.params
    if params.get("strategy") == "itemknn":
        return _test_of(search, _Named(search.knn(params["neighbors"], params["decay"]), "itemknn"))
    if _saved_trial(out / "best") != best.number:  # never another trial's model under the best one's name
        return {}
    model = load_model(out / "best")[0]
    scorer = ModelScorer(model, "model")
    if params.get("strategy") == "hybrid":
        scorer = Hybrid([(scorer, 1.0), (search.knn(), float(params["knn_weight"]))], name="hybrid")
    return _test_of(search, scorer)


TRIAL_COLUMNS = ["number", "state", "value", "seconds", "epochs_run", "stopped_by", "params"]


@dataclass
class TuneStudy(Study):
    """Search settings on validation; report best settings, trials, importance and the one test score."""

    name = "tune"
    draws = True
    dataset: Dataset
    split: Split
    config: TuneConfig
    out: Path
    model: Path | None = None

    def measure(self, progress: Progress) -> dict:
        return run_tune(self.dataset, self.split, self.config, self.out, model=self.model, progress=progress)

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        rows = [{**t, "params": json.dumps(t["params"], default=str)} for t in record["trials"]]
        out = [Table(f"{len(rows)} trials ({record['completed']} completed, {record['pruned']} pruned); "
                     f"objective: validation {record['objective']}", rows, TRIAL_COLUMNS)]
        best = record.get("best")
        if best:
            out.append(Table(f"best: trial {best['number']}, validation {record['objective']} {best['value']:.4f}",
                             [{"setting": k, "value": v} for k, v in best["params"].items()]))
        if record.get("strategies"):
            out.append(Table(f"strategies compared (winner: {record['winner']})", record["strategies"]))
        if record.get("importance"):
            out.append(Table("parameter importance (fANOVA)",
                             [{"setting": k, "importance": v} for k, v in record["importance"].items()]))
        if record.get("test"):
            test = record["test"]
            rows = [{"policy": k, **v} for k, v in test.items()] if record["target"] == "policy" else [test]
            title = "test split, scored once at the end"
            change = record.get("test_ndcg_change")
            if change:
                title += f" (NDCG@10 against the untuned policy: {describe_change(change)}, paired)"
            out.append(Table(title, rows))
        return out

    @classmethod
    def draw(cls, record: dict, path: Path) -> Path | None:
        return plot_tune(record, path)


def plot_tune(record: dict, path: str | Path) -> Path | None:
    """Optimization history (each trial and the best so far) and parameter importance, side by side."""
    plt = pyplot()
    if plt is None:
        return None
    done = [t for t in record["trials"] if t["value"] is not None]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    if done:
        xs = [t["number"] for t in done]
        ys = [t["value"] for t in done]
        left.scatter(xs, ys, s=18, label="trial")
        left.step(xs, np.maximum.accumulate(ys), where="post", color="C3", label="best so far")
        left.legend()
    left.set_xlabel("trial")
    left.set_ylabel(f"validation {record['objective']}")
    left.set_title("optimization history")
    importance = record.get("importance") or {}
    names = list(importance)[::-1]
    right.barh(names, [importance[n] for n in names])
    right.set_title("parameter importance")
    return save_figure(fig, path)


__all__ = ["HitCurve", "MODEL_SPACE", "POLICY_SPACE", "STRATEGIES", "TuneConfig", "TuneStudy", "parse_space", "policy_value",
           "run_tune"]
