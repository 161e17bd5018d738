"""`edgerec demo`: the main job on the embedded default catalog."""

from __future__ import annotations

import click

from edgerec.cli.output import console, fmt, table


@click.command("demo")
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--quick", is_flag=True, help="A smaller world: the same steps in a few minutes.")
@click.option("--seed", default=0, show_default=True)
def demo(out, quick, seed) -> None:
    """Synthesize the catalog and run every step of the pipeline, ending with a report."""
    from edgerec.pipeline import DemoConfig, run_demo

    cfg = DemoConfig.make(out, quick=quick, seed=seed)

    def on_step(name: str, index: int, total: int) -> None:
        console.rule(f"[bold]step {index + 1}/{total}: {name}")

    def report(what: str, values: dict) -> None:
        console.print(f"  {what}: " + ", ".join(f"{k}={fmt(v)}" for k, v in values.items()))

    results = run_demo(cfg, report, on_step)
    console.rule("[bold]report")
    columns = ["model", "HR@10", "NDCG@10", "MRR@10", "coverage@10", "novelty@10", "diversity@10",
               "pop_percentile@10", "gini@10"]
    table(results["baselines"], title="baselines (test, full ranking)", columns=columns)
    table([results["timings"]], title="seconds per step")
    console.print(f"report: {cfg.out / 'report.json'}")


def register(cli: click.Group) -> None:
    cli.add_command(demo)
