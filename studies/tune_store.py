"""The study folder of `edgerec tune`: who may use it, what it was tuned with, and which models it keeps.

A folder holds one study (`study.db`, Optuna's SQLite storage) and the models of its trials:
- `best/`: the trained model with the best validation score of its own (what the checkpoint alone scores:
  for a hybrid trial its sequential part without item-kNN), an ordinary checkpoint;
- `winner/`: the model of the best trial when that is another trial's (a hybrid's sequential part, most
  often): what its test score is read from;
- `candidates/N`: trial N's model until the study holds the trial as complete (`settle_best` moves it in).

One process at a time runs a study (a lock on `study.lock`), so a trial still "running" in the storage
when the study opens belongs to a dead process and is failed. A folder whose study or models this tuner did
not write, or a study resumed with other settings, is refused: its scores would not compare.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import sqlite3
from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError
from edgerec.models.checkpoint import weights_save_id
from edgerec.models.items import FIELDS
from edgerec.runtime.atomic import claim, sync_folder

CANDIDATES = "candidates"  # trials' models until the study holds them complete (settle_best)
SLOTS = ("winner", "best")  # the winner first: it may copy the model `best` is about to let go
SQLITE_MAGIC = b"SQLite format 3\x00"
NOT_A_STUDY = "study.db in --out is not an edgerec tuning study; use another --out"
# the options a resumed study must keep (its trials were scored with them), as the command line names them
SETUP_FLAGS = {"space": "--space", "strategies": "--strategies", "eval_users": "--eval-users", "model": "--model",
               "max_ndcg_loss": "--max-ndcg-loss", "margin_z": "--margin-z", "expected_bound": "--expected-bound",
               "seed": "--seed", "steps": "--steps", "train": "training settings",
               "items": "item metadata in --data (tags, genres, creators, release dates)"}
# the catalog columns trials read besides ids: the model's item features (use_features), tags and genres
# (diversity@10), release dates (the freshness lever); Dataset.fingerprint() leaves metadata out by design
ITEM_TEXT_READ = FIELDS


def lock_folder(out: Path):
    """Hold the study folder for this process (released when the returned claim is let go or the process ends)."""
    held = claim(out, "study.lock")
    if held is None:
        raise ConfigError("another edgerec tune is running on this --out; wait for it to finish, or use another --out")
    return held


def check_study_file(path: Path, study_name: str) -> None:
    """`path` is absent, empty, or an Optuna SQLite storage holding no study or this one: never take over
    another program's database, nor read a damaged one through a page of driver traceback."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb") as handle:
        if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise ConfigError(NOT_A_STUDY)
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
            names = ({row[0] for row in db.execute("select study_name from studies")}
                     if {"studies", "trials", "version_info"} <= tables else None)
        finally:
            db.close()
    except sqlite3.DatabaseError:
        raise ConfigError(NOT_A_STUDY) from None
    if not tables:
        return  # created, then killed before Optuna made its tables
    if names is None or (names and study_name not in names):
        raise ConfigError(NOT_A_STUDY)


def open_study(optuna, study_name: str, out: Path, seed: int):
    """Create or reopen the study; a resumed study's sampler is seeded past its earlier trials."""
    from sqlalchemy.exc import DatabaseError

    try:
        study = optuna.create_study(
            study_name=study_name, storage=f"sqlite:///{out / 'study.db'}", load_if_exists=True,
            direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=3))
    except DatabaseError:  # damaged past what check_study_file reads
        raise ConfigError(NOT_A_STUDY) from None
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials), n_startup_trials=5)
    if study.user_attrs.get("id") is None:  # names the models this study saves (checked on resume)
        study.set_user_attr("id", secrets.token_hex(8))
    return study


def check_same_target(study, cfg, data: str) -> None:
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
    elif known != data:
        raise ConfigError("this study folder tunes on another data set (its trials were scored on other events); "
                          "use another --out for this data, or --data of the study")


def check_same_setup(study, setup: dict) -> None:
    """The search space and the scoring options stay those the study's trials were drawn and scored with
    (a changed space crashes Optuna's sampler mid-run; another model or bound makes old values meaningless)."""
    setup = json.loads(json.dumps(setup))  # tuples as lists: the form the storage gives back
    known = study.user_attrs.get("setup")
    if known is None:  # a new study (or one from before the check)
        study.set_user_attr("setup", setup)
        return
    changed = [SETUP_FLAGS.get(name, name) for name in sorted(set(known) | set(setup))
               if name in known and known.get(name) != setup.get(name)]
    if changed:
        raise ConfigError(f"this study folder was tuned with other {', '.join(changed)}; resume it with the "
                          "options it was started with, or use another --out")
    if set(setup) - set(known):  # a study from before these were kept: held to them from now on
        study.set_user_attr("setup", {**setup, **known})


def items_fingerprint(catalog) -> str:
    """A digest of the item metadata trials read (ITEM_TEXT_READ, tags, release dates), in catalog order."""
    digest = hashlib.sha256()
    columns = [catalog.text[name] for name in ITEM_TEXT_READ] + [["\x1f".join(t) for t in catalog.tags]]
    for column in columns:
        digest.update(len(column).to_bytes(8, "little"))
        digest.update("\x00".join(column).encode("utf-8", "surrogatepass"))
    digest.update(np.ascontiguousarray(catalog.release_ts, np.int64).tobytes())
    return digest.hexdigest()[:24]


def check_unowned(out: Path) -> None:
    """Before a study exists: model folders in `out` are someone else's (settle_best would delete them)."""
    found = [name for name in (*SLOTS, CANDIDATES) if (out / name).exists()]
    if found:
        raise ConfigError(f"--out already holds {', '.join(f'{n}/' for n in found)} without a tuning study "
                          "(study.db); use another --out, or move those folders away")


def check_owned(study, out: Path) -> None:
    """The model folders in `out` are this study's: saved by a trial of it, named after one."""
    numbers = {str(t.number) for t in study.get_trials(deepcopy=False)}
    study_id = study.user_attrs.get("id")
    for name in SLOTS:
        folder = out / name
        tune = _tune_info(folder) if folder.exists() else {}
        if tune is None or tune.get("study", study_id) != study_id:
            raise ConfigError(f"{name}/ in --out is not a model of this tuning study; use another --out, "
                              f"or move {name}/ away")
    foreign = [f.name for f in (out / CANDIDATES).iterdir()] if (out / CANDIDATES).is_dir() else []
    if (out / CANDIDATES).exists() and (not (out / CANDIDATES).is_dir() or set(foreign) - numbers):
        raise ConfigError(f"{CANDIDATES}/ in --out holds folders this tuning study did not write; use another --out, "
                          f"or move {CANDIDATES}/ away")


def fail_stale(optuna, study) -> list[int]:
    """Fail the trials left running by a killed process (this process holds the folder's lock)."""
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    storage = study._storage  # Optuna offers no public way to end another process's trial
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in running:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
    return [t.number for t in running]


def settings(trial) -> dict:
    """What a trial ran with: the settings it drew and those --space fixed (one value: never drawn)."""
    return {**trial.user_attrs.get("fixed", {}), **trial.params}


def model_value(trial) -> float | None:
    """The validation score of the model a trial trained, on its own (None: it trained none, item-kNN)."""
    own = trial.user_attrs.get("model_value")
    if own is not None or trial.value is None:
        return own
    # a trial from before model_value was kept: its sequential models scored alone
    return trial.value if settings(trial).get("strategy", "sasrec") in ("sasrec", "two-tower") else None


def model_id(folder: Path) -> str:
    """The checkpoint's save id (new for every save), or the hash of its weights for one saved before ids."""
    weights = folder / "model.safetensors"
    return weights_save_id(weights) or hashlib.sha256(weights.read_bytes()).hexdigest()


def baseline_trial(study, baseline: dict, waiting: bool = False):
    """The first finished trial (with `waiting`: or one still queued) that ran the untuned settings."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    for trial in study.get_trials(deepcopy=False):
        if trial.state in states:
            ran = settings(trial)
            if all(ran.get(name, value) == value for name, value in baseline.items()):
                return trial
        elif waiting and trial.state == optuna.trial.TrialState.WAITING:
            if trial.system_attrs.get("fixed_params") == baseline:
                return trial
    return None


def settle_best(study, out: Path) -> None:
    """Make `best` the model of the complete trial whose model scores best alone, and `winner` the best
    trial's model when that is another one. A trial's model is saved under candidates/N and moved in only
    once the study holds the trial as complete: a trial killed after its save never replaces the model of
    a finished one, and what a killed move left (candidates/N, best.old) is finished here."""
    import optuna

    for name in SLOTS:
        _recover(out / name)
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    models = [t for t in done if model_value(t) is not None]
    best = max(models, key=model_value).number if models else None  # the first of equals: the one saved
    top = max(done, key=lambda t: t.value).number if done else None
    winner = top if top in {t.number for t in models} and top != best else None
    for name, number in zip(SLOTS, (winner, best)):
        _place(out, name, number)
    running = {str(t.number) for t in trials if t.state == optuna.trial.TrialState.RUNNING}
    candidates = out / CANDIDATES
    for folder in candidates.iterdir() if candidates.is_dir() else ():
        if folder.name not in running:  # a finished trial's model that lost, or was moved in meanwhile
            shutil.rmtree(folder, ignore_errors=True)


def _recover(folder: Path) -> None:
    """Finish what a killed `_place` left: a model renamed away with nothing moved in is put back."""
    old, new = folder.with_name(folder.name + ".old"), folder.with_name(folder.name + ".new")
    if not (folder / "config.json").exists() and (old / "config.json").exists():
        shutil.rmtree(folder, ignore_errors=True)
        old.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(new, ignore_errors=True)


def _place(out: Path, name: str, number: int | None) -> None:
    """Put trial `number`'s model at out/name (None: no model belongs there), from its candidate folder or,
    copied, from the other slot that holds it."""
    folder = out / name
    if saved_trial(folder) == number and (number is not None or not folder.exists()):
        return
    source = None
    if number is not None:
        source = out / CANDIDATES / str(number)
        if not (source / "config.json").exists():
            source = next((out / o for o in SLOTS if o != name and saved_trial(out / o) == number), None)
            if source is None:
                return  # its model is gone (saved before a crash that lost it): keep what is there
            new = folder.with_name(name + ".new")
            shutil.copytree(source, new)
            source = new
    old = folder.with_name(name + ".old")
    if folder.exists():
        folder.rename(old)
    if source is not None:
        source.rename(folder)
    sync_folder(out)
    shutil.rmtree(old, ignore_errors=True)


def _tune_info(folder: Path) -> dict | None:
    """The `tune` record a tuned model's checkpoint carries (None: none, or not a tuned model)."""
    try:
        tune = json.loads((folder / "config.json").read_text())["info"]["tune"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return tune if isinstance(tune, dict) and isinstance(tune.get("trial"), int) else None


def saved_trial(folder: Path) -> int | None:
    """The trial whose model a checkpoint folder holds (None: none, or not a tuned model)."""
    tune = _tune_info(folder)
    return None if tune is None else tune["trial"]
