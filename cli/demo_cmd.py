"""`edgerec demo`: the main job on the embedded default catalog, ending with one report."""

from __future__ import annotations

import click

from edgerec.cli.bench_cmd import print_retrieval
from edgerec.cli.output import console, fmt, table


@click.command("demo")
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--quick", is_flag=True, help="A smaller world and models: the same steps in a few minutes.")
@click.option("--seed", default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Keep the finished steps of an earlier run in --out; run the rest.")
def demo(out, quick, seed, resume) -> None:
    """Synthesize the catalog and run every step: train, distill, quantize, export, run, bench, report."""
    from edgerec.pipeline import DemoConfig, run_demo

    cfg = DemoConfig.make(out, quick=quick, seed=seed)

    def on_step(name: str, index: int, total: int) -> None:
        console.rule(f"[bold]step {index + 1}/{total}: {name}")

    def report(what: str, values: dict) -> None:
        console.print(f"  {what}: " + ", ".join(f"{k}={fmt(v)}" for k, v in values.items()))

    results = run_demo(cfg, report, on_step, resume=resume)
    console.rule("[bold]report")
    print_report(results)
    console.print(f"report: {cfg.out / 'report.json'}; plots: {cfg.out / 'compression.png'}, {cfg.out / 'bench.png'}")


def print_report(r: dict) -> None:
    table(r["baselines"], title="baselines (test, full ranking)",
          columns=["model", "HR@10", "NDCG@10", "MRR@10", "coverage@10", "novelty@10", "diversity@10",
                   "pop_percentile@10", "gini@10"])
    metrics = r["bundle"]["metrics"]
    rows = [{"model": who, **{k: metrics[who][k] for k in ("HR@10", "NDCG@10", "MRR@10", "coverage@10", "parameters")},
             "train_seconds": metrics[who].get("train_seconds")} for who in metrics]
    table(rows, title="teacher vs distilled student (test, full ranking)")
    table(r["compression"], title="compression: bytes on disk, accuracy, encoder latency (1 thread)",
          columns=["variant", "bytes", "HR@10", "NDCG@10", "ndcg_vs_teacher", "top10_agreement_with_teacher",
                   "encoder_p50_ms", "encoder_p99_ms"])
    ranker = r["ranker"]
    for phase in ("validation", "test"):
        g = ranker[phase]
        console.print(f"ranker, {phase}: NDCG@10 {g['NDCG@10 retrieval only']:.4f} (retrieval only) -> "
                      f"{g['NDCG@10 with ranker']:.4f} (re-ranked), {g['users']} users")
    console.print("the ranker ships in the bundle" if ranker["ships"] else
                  "the ranker does not help on validation: the bundle ships without it")
    replay = r["replay"]
    console.print(f"on-device replay: HR@10 {replay['HR@10']:.3f} over {replay['users']} users, "
                  f"recommend() p50 {replay['p50_ms']:.2f} ms, p99 {replay['p99_ms']:.2f} ms")
    if replay.get("example"):
        table(replay["example"]["recommendations"], title=f"what {replay['example']['user']} sees, and why")
    bench = r["bench"]
    table(bench["runs"], title=f"bench: profile {bench['profile']}, {bench['items']:,} items "
                               f"({'within budget' if bench['passed'] else 'budget missed'})",
          columns=["backend", "open_ms", "p50_ms", "p95_ms", "p99_ms", "p99_after_event_ms"])
    print_retrieval(bench["retrieval"])
    table([r["timings"]], title="seconds per step")


def register(cli: click.Group) -> None:
    cli.add_command(demo)
