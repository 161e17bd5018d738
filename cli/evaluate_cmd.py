"""`edgerec evaluate`: the full-ranking protocol on baselines (and, later, trained models)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from edgerec.cli.output import FILE_OUT, console, example, progress_bar, table, write_json
from edgerec.errors import DataError

BASELINE_NAMES = ("popular", "trending", "itemknn", "userknn", "content", "hybrid")


@click.command("evaluate", epilog=example(
    "edgerec evaluate --data data/world --model popular --model itemknn --model ckpt/student"))
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--model", "models", required=True, multiple=True,
              help=f"A baseline ({', '.join(BASELINE_NAMES)}) or a checkpoint folder; repeat to compare several.")
@click.option("--k", default=10, show_default=True, type=click.IntRange(1, 10_000),  # the runtime's limit
              help="List length: at most the catalog's size (and 10,000).")
@click.option("--phase", type=click.Choice(["test", "val"]), default="test", show_default=True)
@click.option("--max-users", type=click.IntRange(0),
              help="Score a seeded sample of this many of the phase's users when it has more (0: every user; "
                   "default: 20,000).")
@click.option("--json", "json_out", type=FILE_OUT, help="Write the results as JSON.")
def evaluate(data_dir, models, k, phase, max_users, json_out) -> None:
    """Leave-last-out, full-ranking evaluation; prints one row per model.

    With several models, each after the first gets its NDCG@k change from the first and the paired
    standard error of that change over the phase's users (JSON: "NDCG@k vs first")."""
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset
    from edgerec.models.evaluation import MAX_USERS, Evaluator, sample_rows
    from edgerec.models.metrics import describe_change, ndcg_per_user, paired_change
    from edgerec.models.persist import scorer_for

    with console.status(f"reading {data_dir}"):
        dataset = load_dataset(data_dir)
        split = leave_last_out(dataset)
    if k > split.n_items:  # a longer list holds no more items, and the metrics' pair counts grow with k squared
        raise click.UsageError(f"--k {k:,} is more than the {split.n_items:,} items of the catalog; a list holds at "
                               "most every item: lower --k")
    max_users = MAX_USERS if max_users is None else max_users
    evaluator = Evaluator(split, dataset.catalog, k=k, max_users=max_users)
    everyone = len(split.targets(phase)[0])
    sampled = sample_rows(everyone, max_users)
    scored = everyone if sampled is None else len(sampled)
    rows, refused, first = [], None, None
    for name in models:
        try:
            with console.status(f"preparing {name}"):
                scorer, facts = scorer_for(name, dataset, split, phase)
        except DataError as exc:  # a model this data cannot support does not stop the others (a typo still does)
            if len(models) == 1:
                raise
            rows.append({"model": Path(name).name, "not measured": str(exc)})
            refused = exc
            continue
        began = time.perf_counter()
        with progress_bar(f"ranking {name}") as update:
            ranks, lists = evaluator.ranks_and_lists(scorer, phase, progress=update)
        rows.append(evaluator.summarize(ranks, lists, scorer.name, phase, began) | facts)
        # each later model against the first measured one, user by user: is the difference more than noise?
        gains = ndcg_per_user(ranks, k)
        if first is None:
            first = gains
        else:
            change = paired_change(gains, first)
            rows[-1] |= {f"NDCG@{k} vs first": change,
                         "change (s.e.)": describe_change(change)}
    if refused is not None and all("not measured" in r for r in rows):
        raise refused
    columns = ["model", f"HR@{k}", f"NDCG@{k}", f"MRR@{k}", f"coverage@{k}", f"novelty@{k}", f"diversity@{k}",
               f"pop_percentile@{k}", f"gini@{k}", "change (s.e.)", "parameters", "bytes", "not measured"]
    sample = f", a seeded sample of {scored:,} of {everyone:,} users (--max-users 0: all)" if scored < everyone else ""
    table(rows, title=f"{phase} metrics, full ranking over {split.n_items:,} items, k={k}{sample}",
          columns=[c for c in columns if any(c in r for r in rows)])
    write_json(json_out, {"data": Path(data_dir).name, "k": k, "phase": phase, "results": rows})  # no host paths


def register(cli: click.Group) -> None:
    cli.add_command(evaluate)
