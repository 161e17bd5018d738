"""`edgerec tune`: search model settings, strategies or policy weights on validation; print and save the report."""

from __future__ import annotations

from pathlib import Path

import click

from edgerec.cli.output import (
    SEED,
    FiniteRange,
    console,
    example,
    fmt,
    plot_written,
    print_study,
    write_json,
)


@click.command("tune", epilog=example(
    "edgerec tune --data data/ml100k --out runs/tune --minutes 30",
    "edgerec tune --data data/ml100k --out runs/arch --strategies sasrec,two-tower,hybrid,itemknn --minutes 20",
    "edgerec tune --data data/ml100k --out runs/policy --target policy --model runs/tune/best "
    "--objective coverage@10 --minutes 5"))
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Study folder: study.db (resumable; one run at a time), best/ (the best trained model by its own score), "
                   "winner/ (the best trial's model when another), tune.json, tune.png.")
@click.option("--target", type=click.Choice(["model", "policy"]), default="model", show_default=True,
              help="model: width, layers, heads, dropout, lr, history, loss, negatives, features. "
                   "policy: the runtime's diversity, freshness and popularity blend over --model.")
@click.option("--minutes", default=30.0, show_default=True, type=FiniteRange(min=0, min_open=True), help="Time budget of this call.")
@click.option("--trials", type=click.IntRange(min=1), help="Total trials the study should reach (a resumed study counts its old ones).")
@click.option("--strategies", default="sasrec", show_default=True,
              help="Comma-separated strategies to compare: sasrec, two-tower, hybrid (sasrec + item-kNN), itemknn.")
@click.option("--space", "space_specs", multiple=True, metavar="NAME=V1,V2",
              help="Restrict a setting to these values, e.g. --space dim=32,64 --space loss=full.")
@click.option("--model", "model_ckpt", type=click.Path(exists=True, file_okay=False),
              help="For --target policy: the trained checkpoint whose short lists the policy re-orders.")
@click.option("--objective", help="Validation metric to maximise (default: NDCG@10; policy: coverage@10).")
@click.option("--max-ndcg-loss", default=0.01, show_default=True, type=FiniteRange(0, 1),
              help="Policy: largest fraction of NDCG@10 the tuned policy may lose against the untuned one.")
@click.option("--margin-z", type=FiniteRange(min=0),
              help="Policy: standard errors the bound holds by on validation (default 1.645, one-sided 95%; "
                   "0: point estimates): of the expected NDCG@10 over bootstrap curves, and of the measured "
                   "change below the expected one (without --expected-bound: of the measured change).")
@click.option("--expected-bound/--no-expected-bound", default=True, show_default=True,
              help="Policy: the NDCG@10 expected from the listed items' ranks in the model's own order "
                   "keeps to the bound and the measured change checks it (see docs/training.md); off: the measured "
                   "change alone keeps to the bound.")
@click.option("--trial-minutes", type=FiniteRange(min=0, min_open=True),
              help="Cap of one trial; its schedule shrinks to fit (default: a fifth of --minutes).")
@click.option("--steps", type=click.IntRange(min=1), help="Step budget of each trial (default: from the data size).")
@click.option("--eval-users", default=0, show_default=True, help="Validation users per trial (0 = all).")
@click.option("--seed", default=0, show_default=True, type=SEED)
def tune(data_dir, out, target, minutes, trials, strategies, space_specs, model_ckpt, objective, max_ndcg_loss,
         margin_z, expected_bound, trial_minutes, steps, eval_users, seed) -> None:
    """Tune on the validation split with Optuna (TPE + median pruning); the test split is scored once at the end.

    Interrupted? Run the same command again: the study resumes from out/study.db.
    """
    from edgerec.cli.train_cmd import _load
    from edgerec.models.train import TrainConfig
    from edgerec.studies.tune import TuneConfig, TuneStudy, parse_space

    if target == "model":  # the policy's options would be ignored without a word
        source = click.get_current_context().get_parameter_source
        given = [flag for name, flag in (("model_ckpt", "--model"), ("max_ndcg_loss", "--max-ndcg-loss"),
                                         ("margin_z", "--margin-z"), ("expected_bound", "--expected-bound"))
                 if source(name) is not click.core.ParameterSource.DEFAULT]
        if given:
            raise click.UsageError(f"{', '.join(given)} tune a policy: pass --target policy with them, or leave "
                                   "them out")

    cfg = TuneConfig(target=target, minutes=minutes, trials=trials,
                     strategies=tuple(s.strip() for s in strategies.split(",") if s.strip()),
                     space=parse_space(list(space_specs)), train=TrainConfig(steps=steps),
                     trial_minutes=trial_minutes,
                     objective=objective or ("coverage@10" if target == "policy" else "NDCG@10"),
                     max_ndcg_loss=max_ndcg_loss, margin_z=margin_z, expected_bound=expected_bound,
                     eval_users=eval_users, seed=seed).validate()
    dataset, split = _load(data_dir)  # after the checks: a typo costs no data loading

    def progress(message: str, values: dict) -> None:
        console.print(f"  {message}" + (f": {fmt(values)}" if values else ""))

    console.print(f"tuning {target} for validation {cfg.objective}: {minutes:g} min budget, study in {out}")
    result = TuneStudy(dataset, split, cfg, out, Path(model_ckpt) if model_ckpt else None).run(progress)
    print_study(result)
    write_json(out / "tune.json", result.record)
    made = result.write_plot(out / "tune.png")
    plot_written(made)
    if target == "model" and result.record.get("best"):
        _say_models(result.record, out)
    if target == "policy" and result.record.get("best"):
        console.print(f"best policy: {out / 'policy.json'} (on the device: Policy.from_dict(weights), or edgerec recommend --policy)")


def _say_models(record: dict, out: Path) -> None:
    """What best/ (and winner/) hold: best/ is the best trained model by its own score, which is not the
    winner when item-kNN or a hybrid (a sequential model plus item-kNN, not one checkpoint) wins."""
    best, winner, held = record["best"], record.get("winner"), record.get("checkpoint_of")
    if winner not in ("itemknn", "hybrid") and held and held["trial"] == best["number"]:
        console.print(f"best model: {out / 'best'} (a normal checkpoint: export, distill, bundle)")
        return
    where = record.get("winner_model") or (held and held["trial"] == best["number"] and "best")
    if winner == "itemknn":
        console.print(f"winner: trial {best['number']}, item-kNN (no trained model)")
    elif winner == "hybrid":
        console.print(f"winner: trial {best['number']}, a hybrid: the sequential model"
                      + (f" in {out / where}" if where else "") + " plus item-kNN at knn_weight "
                      f"{fmt(best['params'].get('knn_weight'))} (item-kNN is not part of a checkpoint)")
    else:
        console.print(f"winner: trial {best['number']}, {winner}" + (f", its model in {out / where}" if where else ""))
    if held:
        value = "n/a" if held["value"] is None else f"{held['value']:.4f}"
        console.print(f"best model: {out / 'best'} (trial {held['trial']}, {held['strategy'] or 'sequential'} "
                      f"alone, validation {record['objective']} {value}; a normal checkpoint)")
    else:
        console.print("no trained model was kept: no trial that trains one completed")


def register(cli: click.Group) -> None:
    cli.add_command(tune)
