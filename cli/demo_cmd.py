"""`edgerec demo`: the main job on the embedded default catalog, ending with one report."""

from __future__ import annotations

import click
from rich.text import Text

from edgerec.cli.output import SEED, console, example, fmt, print_study, table


@click.command("demo", epilog=example("edgerec demo --quick --out runs/demo-quick",
                                     "edgerec demo --data data/ml100k --out runs/ml100k   # your own data"))
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--quick", is_flag=True, help="A smaller world and models: the same steps in a few minutes.")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--data", type=click.Path(file_okay=False), default=None,
              help="Your own data folder (from `edgerec data import`) instead of the synthetic catalog; "
                   "every step but the cross-domain study runs on it.")
@click.option("--resume", is_flag=True, help="Keep the finished steps of an earlier run in --out; run the rest.")
def demo(out, quick, seed, data, resume) -> None:
    """Synthesize the catalog (or read --data) and run every step: train, distill, quantize, export, run,
    bench, report."""
    from edgerec.pipeline import DemoConfig, demo_report, run_demo

    cfg = DemoConfig.make(out, quick=quick, seed=seed, data=data)

    def on_step(name: str, index: int, total: int) -> None:
        console.rule(Text(f"step {index + 1}/{total}: {name}", style="bold"))

    def progress(what: str, values: dict) -> None:
        console.print(f"  {what}" + (f": {fmt(values)}" if values else ""))

    results = run_demo(cfg, progress, on_step, resume=resume)
    console.rule(Text("report", style="bold"))
    for result in demo_report(cfg, results):
        print_study(result)
    table([results["timings"]], title="seconds per step")
    console.print(f"report: {cfg.out / 'report.json'}; plots: {cfg.out / 'compression.png'}, {cfg.out / 'bench.png'}")


def register(cli: click.Group) -> None:
    cli.add_command(demo)
