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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgerec.data.schema import Dataset
from edgerec.data.split import Split
from edgerec.errors import ConfigError, EdgerecError
from edgerec.models.baselines import Hybrid, ItemKNN
from edgerec.models.checkpoint import load_model, require_same_catalog, save_checkpoint
from edgerec.models.config import ModelConfig
from edgerec.models.evaluation import Evaluator, train_popularity
from edgerec.models.hubness import model_hubness
from edgerec.models.metrics import describe_change, ndcg_per_user, paired_change
from edgerec.models.policy_scorer import PolicyScorer, request_times
from edgerec.models.scoring import ModelScorer
from edgerec.models.train import TrainConfig, train_model
from edgerec.runtime.atomic import write_file
from edgerec.runtime.policies import Policy
from edgerec.studies.base import Progress, Study, Table, pyplot, save_figure
from edgerec.studies.policy_bound import (
    HitCurve,
    consistency_margin,
    objective_reading,
    paired_margin,
    policy_value,
)
from edgerec.studies.tune_store import (
    CANDIDATES,
    baseline_trial,
    check_owned,
    check_same_setup,
    check_same_target,
    check_study_file,
    check_unowned,
    fail_stale,
    items_fingerprint,
    lock_folder,
    model_id,
    model_value,
    open_study,
    saved_trial,
    settings,
    settle_best,
)

STRATEGIES = ("sasrec", "two-tower", "hybrid", "itemknn")
# A call's time budget is shared by at least this many trials (unless --trial-minutes says otherwise): on a
# small data set one full step budget can take longer than the whole call, leaving a single trial.
TRIALS_PER_BUDGET = 5
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


LIMITS = {name: (lambda v: v >= 1, "of at least 1") for name in ("dim", "layers", "heads", "max_len", "negatives",
                                                                 "neighbors")}
LIMITS.update(dropout=(lambda v: 0 <= v < 1, "from 0 to below 1"), lr=(lambda v: v > 0, "above 0"),
              knn_weight=(lambda v: 0 < v < math.inf, "above 0 and finite"),
              decay=(lambda v: 0 < v <= 1, "above 0 up to 1"))


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
        _check_built(self.space, self.target)
        if self.target == "model" and set(self.strategies) - {"itemknn"}:
            _check_heads({**MODEL_SPACE, **self.space})
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
        # out of range a value is not refused by the trial but changes meaning (heads=0 became 32 heads)
        within, what = LIMITS.get(name, (None, None))
        if isinstance(spec, list) and all(isinstance(v, str) for v in spec):
            within, what = spec.__contains__, "among " + ", ".join(spec)
        if within is not None and not all(within(v) for v in values):
            bad = next(v for v in values if not within(v))
            raise ConfigError(f"--space {name}: {bad!r} is out of range; give values {what}")


def _check_built(overrides: dict, target: str) -> None:
    """Each --space value (a range: both ends) passes the checks of what a trial builds from it (Policy,
    TrainConfig, ModelConfig), before the study is opened: refused only inside the first trial, it left a
    failed trial and a stored space the corrected command could not resume."""
    for name, values in overrides.items():
        for value in _ends(values):
            try:
                if target == "policy":
                    Policy(**{name: value})
                elif name in ("lr", "negatives"):
                    TrainConfig(**{name: value}).validate()
                elif name in ("layers", "max_len", "dropout"):
                    ModelConfig(**{name: value}).validate()
            except ConfigError as err:
                raise ConfigError(f"--space {name}: {value!r} is out of range; {err}") from None


def _check_heads(space: dict) -> None:
    """Every heads value divides every width: a trial once took gcd(dim, heads) heads without a word and
    reported the heads asked for."""
    dims, heads = _every(space["dim"]), _every(space["heads"])
    for dim in dims:
        for head in heads:
            if dim % head:
                raise ConfigError(f"--space heads: {head} heads do not divide dim {dim} (the width is split into "
                                  f"heads); give --space heads values that divide every dim searched "
                                  f"({', '.join(map(str, dims))}), or other --space dim values")
            try:
                ModelConfig(dim=dim, heads=head).validate()
            except ConfigError as err:
                raise ConfigError(f"--space dim: {dim!r} is out of range; {err}") from None


def _ends(values) -> list:
    """The values a setting takes at its limits: a list's values, a (low, high, kind) range's two ends."""
    return list(values[:2]) if isinstance(values, tuple) else list(values)


def _every(values) -> list:
    """Every value of a list or of a whole-number range (low, high, kind)."""
    return list(range(int(values[0]), int(values[1]) + 1)) if isinstance(values, tuple) else list(values)


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
        if len(spec) > 1:
            return trial.suggest_categorical(name, spec)
        # fixed by --space: never drawn, so not in trial.params; kept beside them for the report
        trial.set_user_attr("fixed", {**trial.user_attrs.get("fixed", {}), name: spec[0]})
        return spec[0]
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
        self.base_model, self.model_id = None, None
        if base_model:
            self.base_model = load_model(base_model)[0]
            require_same_catalog(self.base_model, dataset, "the --model checkpoint")
            self.model_id = model_id(base_model)
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
        # heads as drawn: validate() made every heads value divide every dim, so the report names the model's
        model_cfg = ModelConfig(arch="two-tower" if strategy == "two-tower" else "sasrec", dim=int(p["dim"]),
                                layers=int(p["layers"]), heads=int(p["heads"]), max_len=int(p["max_len"]),
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
        own = None  # the saved checkpoint's own score, when the trial's scorer is more than it
        if strategy == "hybrid":
            weight = _suggest(trial, "knn_weight", cfg.space.get("knn_weight", HYBRID_SPACE["knn_weight"]))
            own = objective_reading(self.validate(scorer), cfg.objective)
            scorer = Hybrid([(scorer, 1.0), (self.knn(), float(weight))], name="hybrid")
        metrics = self.validate(scorer)
        trial.set_user_attr("stopped_by", result.info["stopped_by"])
        trial.set_user_attr("epochs_run", result.info["epochs_run"])
        return self._finish(trial, metrics, result, own)

    def _finish(self, trial, metrics: dict, result, own: float | None = None) -> float:
        value = objective_reading(metrics, self.cfg.objective)
        trial.set_user_attr("val", {k: v for k, v in metrics.items() if "@" in k})
        if result is None:
            return value
        own = value if own is None else own
        trial.set_user_attr("model_value", own)
        best_model, best_value = self._best_so_far(trial)
        # kept if it may become `best` (its model alone) or the winner (whose test score needs its model)
        if own > best_model or value > best_value:
            info = {**result.info, "tune": {"trial": trial.number, "study": trial.study.user_attrs.get("id"),
                                            "params": settings(trial), "val": trial.user_attrs["val"],
                                            "model_value": own}}
            # beside `best`, until the study has recorded this trial as complete (settle_best moves it in)
            save_checkpoint(self.out / CANDIDATES / str(trial.number), result.model.state_dict(),
                            result.model.config, result.items, info)
        return value

    def _best_so_far(self, trial) -> tuple[float, float]:
        """The best own value of an earlier complete trial's model, and the best value of any earlier trial."""
        best_model = best_value = -math.inf
        for t in _done(trial.study):
            if t.number != trial.number and t.value is not None:
                best_value = max(best_value, t.value)
                own = model_value(t)
                best_model = best_model if own is None else max(best_model, own)
        return best_model, best_value

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
    held = lock_folder(out)  # one process per study: what it finds "running" at the start is a dead one's
    try:
        return _run(optuna, dataset, split, cfg, out, Path(model) if model else None, progress)
    finally:
        held.release()


def _run(optuna, dataset: Dataset, split: Split, cfg: TuneConfig, out: Path, model: Path | None,
         progress: Progress | None) -> dict:
    say = progress or (lambda _m, _v: None)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    check_study_file(out / "study.db", cfg.study_name)
    if not (out / "study.db").exists():
        check_unowned(out)
    search = _Search(dataset, split, cfg, out, say, model)
    study = open_study(optuna, cfg.study_name, out, cfg.seed)
    check_same_target(study, cfg, dataset.fingerprint())
    check_same_setup(study, _setup(cfg, search.model_id, items_fingerprint(dataset.catalog)))
    check_owned(study, out)
    fail_stale(optuna, study)
    new = not study.trials
    baseline = untuned_policy(cfg) if cfg.target == "policy" else default_params(cfg)
    # trial 0 is what a user gets without tuning: every other is measured against it (again if it was killed)
    if baseline_trial(study, baseline, waiting=True) is None:
        study.enqueue_trial(baseline)
    for probe in policy_probes(cfg) if new and cfg.target == "policy" else ():
        study.enqueue_trial(probe)
    objective = search.model_trial if cfg.target == "model" else search.policy_trial
    finished = len(_done(study, pruned=True))  # a pruned trial counts: it was judged
    remaining = None if cfg.trials is None else max(cfg.trials - finished, 0)

    def on_trial(study_, trial) -> None:
        settle_best(study_, out)
        # a pruned trial's value is its last epoch's NDCG@10, not the objective
        value = f"{trial.value:.4f}" if trial.state == optuna.trial.TrialState.COMPLETE else "pruned"
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


def _setup(cfg: TuneConfig, model: str | None, items: str) -> dict:
    """What the study's trials were drawn and scored with (check_same_setup keeps a resumed study to it).
    The seed draws the validation users (--eval-users) and seeds each trial's training and the policy's
    bootstrap; `items` fingerprints the item metadata the trials read. Time limits (--minutes,
    --trial-minutes) are left out: a resumed call may have more or less time, as the machine's load does."""
    setup = {"space": cfg.space, "eval_users": cfg.eval_users, "seed": cfg.seed, "items": items}
    if cfg.target == "model":
        # what each trial trains for besides the settings it draws (a step budget changes what it measures)
        train = {k: v for k, v in asdict(cfg.train).items()
                 if k not in ("steps", "lr", "loss", "negatives", "eval_users", "seed", "max_minutes")}
        return {**setup, "strategies": list(cfg.strategies), "steps": cfg.train.steps, "train": train}
    return {**setup, "model": model, "max_ndcg_loss": cfg.max_ndcg_loss, "margin_z": cfg.margin_z,
            "expected_bound": cfg.expected_bound}


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

    # a pruned trial's value is its last epoch's NDCG@10 (what the pruner read), not the objective; a queued
    # trial (a probe that --trials or the time left out) never ran: counted apart, not listed as a trial
    waiting = optuna.trial.TrialState.WAITING
    trials = [{"number": t.number, "state": t.state.name.lower(),
               "value": t.value if t.state == optuna.trial.TrialState.COMPLETE else None,
               "seconds": round(t.duration.total_seconds(), 1) if t.duration else None,
               "params": t.params, **{k: v for k, v in t.user_attrs.items() if k != "val"},
               "val": t.user_attrs.get("val", {})} for t in study.trials if t.state != waiting]
    best = _best_or_none(study)
    record = {"target": cfg.target, "objective": cfg.objective, "study": "study.db",  # in the study folder: no host paths in reports
              "trials": trials, "completed": len(_done(study)),
              "pruned": sum(t["state"] == "pruned" for t in trials),
              "queued": sum(t.state == waiting for t in study.trials)}
    if best is None:
        record["best"] = None
        return record
    record["best"] = {"number": best.number, "value": best.value, "params": settings(best),
                      "val": best.user_attrs.get("val", {})}
    record["importance"] = _importance(optuna, study)
    if cfg.target == "model":
        per = {}
        for t in _done(study):
            name = _strategy(t, cfg)
            if name not in per or t.value > per[name]["value"]:
                per[name] = {"strategy": name, "value": t.value, "trial": t.number}
        record["strategies"] = sorted(per.values(), key=lambda r: -r["value"])
        record["winner"] = record["strategies"][0]["strategy"]
        record["test"] = _test_model(search, best, out, _strategy(best, cfg))
        record.update(_checkpoints(study, out, best))
    else:
        weights = {**UNTUNED, **settings(best)}
        write_file(out / "policy.json", json.dumps(weights, indent=2))
        record["policy"] = weights
        untuned = baseline_trial(study, untuned_policy(cfg))
        record["untuned_val"] = untuned.user_attrs.get("val", {}) if untuned else {}
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


def _strategy(trial, cfg: TuneConfig) -> str:
    return settings(trial).get("strategy", cfg.strategies[0])  # a study from before single ones were kept


def _test_model(search: _Search, best, out: Path, strategy: str) -> dict:
    """The test split, read once: the best trial (re-built from its saved model, or item-kNN)."""
    params = settings(best)
    if strategy == "itemknn":
        return _test_of(search, _Named(search.knn(params["neighbors"], params["decay"]), "itemknn"))
    # never another trial's model under the best one's name
    folder = next((out / name for name in ("winner", "best") if saved_trial(out / name) == best.number), None)
    if folder is None:
        return {}
    model = load_model(folder)[0]
    scorer = ModelScorer(model, "model")
    if strategy == "hybrid":
        scorer = Hybrid([(scorer, 1.0), (search.knn(), float(params["knn_weight"]))], name="hybrid")
    return _test_of(search, scorer)


def _checkpoints(study, out: Path, best) -> dict:
    """Which model `best/` holds (the best trained model by its own validation score, which need not be the
    best trial's) and `winner/` (the best trial's model when `best/` holds another); names in the study folder."""
    record: dict = {"checkpoint": None, "checkpoint_of": None,
                    "winner_model": "winner" if saved_trial(out / "winner") == best.number else None}
    number = saved_trial(out / "best")
    if number is not None:
        trial = study.trials[number]
        record["checkpoint"] = "best"
        record["checkpoint_of"] = {"trial": number, "strategy": settings(trial).get("strategy"),
                                   "value": model_value(trial)}
    return record


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
        queued = f", {record['queued']} queued for a later call" if record.get("queued") else ""
        out = [Table(f"{len(rows)} trials ({record['completed']} completed, {record['pruned']} pruned{queued}); "
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
    done = [t for t in record["trials"] if t["state"] == "complete" and t["value"] is not None]
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
