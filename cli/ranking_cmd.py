"""Responsible ranking from the command line: `edgerec scorer train`, `edgerec explain`, `edgerec report fairness`."""

from __future__ import annotations

from pathlib import Path

import click

from edgerec.cli.device_cmd import HISTORY, refuse_missing_history
from edgerec.cli.output import (
    FILE_OUT,
    PLOT_OUT,
    SEED,
    console,
    example,
    key_values,
    plot_written,
    table,
    write_json,
)
from edgerec.cli.study_cmd import DIR, _run


@click.group("scorer", epilog=example(
    "edgerec scorer train --data data/world --retrieval ckpt/student --ranker ckpt/ranker --out ckpt/scorer"))
def scorer_group() -> None:
    """The interpretable scorer: a linear model whose scores split into per-feature contributions."""


@scorer_group.command("train", epilog=example(
    "edgerec scorer train --data data/world --retrieval ckpt/student --out ckpt/scorer",
    "edgerec scorer train --data data/world --retrieval ckpt/student --ranker ckpt/ranker --test --out ckpt/scorer"))
@click.option("--data", "data_dir", required=True, type=DIR)
@click.option("--retrieval", required=True, type=DIR, help="The recommender whose short list the scorer re-ranks.")
@click.option("--ranker", type=DIR, help="A deep ranker for the same model, to compare NDCG@10 with.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--events-per-user", default=20, show_default=True, type=click.IntRange(min=1),
              help="Newest training events per user.")
@click.option("--test", is_flag=True, help="Also measure on the test split.")
def train_scorer(data_dir, retrieval, ranker, out, events_per_user, test) -> None:
    """Fit the scorer on logged events and compare it with the retrieval order (and the deep ranker)."""
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset
    from edgerec.models.ranker import RankerConfig
    from edgerec.models.scorer import fit_scorer

    dataset = load_dataset(data_dir)
    info = fit_scorer(dataset, leave_last_out(dataset), retrieval, out, RankerConfig(events_per_user=events_per_user),
                      ranker=ranker, phases=("val", "test") if test else ("val",),
                      progress=lambda m: console.print(f"  {m}"))
    for phase in ("validation", "test"):
        if phase in info:
            key_values(info[phase], title=f"{phase}: NDCG@10 by ranking stage")
    console.print(f"scorer: {out}")


@click.command("explain", epilog=example(
    "edgerec explain bundle --user alice --history alice.db",
    "edgerec explain bundle --user alice --history alice.db --device tv --plot alice.png"))
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--user", required=True)
@HISTORY
@click.option("--k", default=10, show_default=True, type=click.IntRange(1, 10_000))  # the runtime's limit
@click.option("--device", help="Context: the device type (phone, tv, tablet, web).")
@click.option("--hour", type=float, help="Context: the hour of day (default: now).")
@click.option("--top", default=4, show_default=True, type=click.IntRange(1), help="Contributions shown per item.")
@click.option("--plot", type=PLOT_OUT, help="Write a PNG of each item's contributions.")
@click.option("--json", "json_out", type=FILE_OUT)
def explain(bundle, user, history_path, access, k, device, hour, top, plot, json_out) -> None:
    """The user's list with each item's score split into per-feature contributions (the bundle's scorer)."""
    from edgerec.runtime import Recommender
    from edgerec.runtime.explain_scores import explain_list
    from edgerec.studies.explain import plot_contributions

    refuse_missing_history(history_path)  # it explains a user's history: a mistyped name would make a new file
    context = {k: v for k, v in (("device", device), ("hour", hour)) if v is not None}
    with Recommender.open(bundle, history=history_path, **access) as rec:
        items = explain_list(rec, user, k, context or None)
    rows = []
    for i, item in enumerate(items):
        ranked = sorted(item["contributions"].items(), key=lambda kv: -abs(kv[1]))[:top]
        rows.append({"#": i + 1, "item": item["item_id"], "title": item["title"], "score": item["score"],
                     "contributions": ", ".join(f"{n} {v:+.2f}" for n, v in ranked), "why": item["why"]})
    table(rows, title=f"for {user}: scorer score = sum of contributions")
    write_json(json_out, items)
    if plot:
        made = plot_contributions(items, plot)
        plot_written(made)


@click.group("report", epilog=example("edgerec report fairness bundle --data data/world --json fairness.json"))
def report_group() -> None:
    """Reports on a bundle's lists."""


@report_group.command("fairness", epilog=example(
    "edgerec report fairness bundle --data data/world --users 200 --json fairness.json --plot fairness.png",
    "edgerec report fairness bundle --data data/world --users 1000 --weights 0.5,1,1.5"))
@click.argument("bundle", type=DIR)
@click.option("--data", "data_dir", required=True, type=DIR, help="The data the bundle was exported from.")
@click.option("--history", "history_path", type=FILE_OUT,
              help="Device history database to replay users into (default: a temporary one).")
@click.option("--users", default=200, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--weights", default="0.25,0.5,1,2", show_default=True, callback=lambda _c, _p, v: _weights(v),
              help="Fairness weights to trade off, comma-separated (each >= 0).")
@click.option("--json", "json_out", type=FILE_OUT)
@click.option("--plot", "plot_out", type=PLOT_OUT)
def fairness(bundle, data_dir, history_path, users, seed, weights, json_out, plot_out) -> None:
    """Exposure by provider, language, modality and popularity; popularity bias; accuracy by segment;
    the fair re-ranking weight's trade-off against a per-provider cap."""
    import tempfile

    from edgerec.studies.fairness import FairnessStudy

    with tempfile.TemporaryDirectory(prefix="edgerec-fairness-") as scratch:
        history = history_path or Path(scratch) / "history.db"
        _run(FairnessStudy(bundle, data_dir, history, users, seed, weights), json_out, plot_out)


def _weights(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or not all(0 <= v <= 100 for v in values):  # NaN fails the range too
        raise click.BadParameter(f"expected comma-separated weights from 0 to 100, e.g. 0.5,1,2 (got {text!r})")
    return values


def register(cli: click.Group) -> None:
    cli.add_command(scorer_group)
    cli.add_command(explain)
    cli.add_command(report_group)
