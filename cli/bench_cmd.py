"""`edgerec bench`: prove a bundle fits a device before it ships (non-zero exit on a missed budget)."""

from __future__ import annotations

import click
from rich.text import Text

from edgerec.cli.output import FILE_OUT, PLOT_OUT, console, example, plot_written, table, write_json


@click.command("bench", epilog=example(
    "edgerec bench bundle --profile stb-low --items 100000 --json bench.json --plot bench.png"))
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--profile", "profile_name", default="phone-mid", show_default=True,
              help="Device profile (phone-mid, stb-low, tv-high).")
@click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE",
              help="Override a profile field, e.g. --set p99_ms=8 --set threads=2.")
@click.option("--items", type=int, help="Grow the catalog to this many items for the run.")
@click.option("--ann", type=click.Choice(["usearch"]), help="Retrieve through an HNSW index instead of the exact scan.")
@click.option("--requests", default=400, show_default=True)
@click.option("--compare", multiple=True, type=click.Path(exists=True),
              help="Another bundle whose user encoders are timed alongside (e.g. the fp32 export).")
@click.option("--conformance", is_flag=True, help="Also check the device reproduces the bundle's references.")
@click.option("--json", "json_out", type=FILE_OUT)
@click.option("--plot", "plot_out", type=PLOT_OUT, help="PNG with latency plots.")
def bench(bundle, profile_name, overrides, items, ann, requests, compare, conformance, json_out, plot_out) -> None:
    """Latency per stage and end to end, open time, memory and size, against a device profile."""
    from edgerec.device_tests.bench import BenchConfig, run_bench, summary
    from edgerec.device_tests.profiles import get_profile
    from edgerec.errors import ConfigError

    try:
        pairs = dict(o.split("=", 1) for o in overrides)
    except ValueError:
        raise ConfigError("--set takes FIELD=VALUE") from None
    profile = get_profile(profile_name, pairs)
    cfg = BenchConfig(requests=requests, items=items, ann=ann, compare=list(compare))
    with console.status(f"benchmarking under profile {profile.name} ({profile.threads} thread(s))"):
        result = run_bench(bundle, profile, cfg)
    print_bench(result)
    if conformance:
        from edgerec.device_tests.conformance import add_conformance

        report = add_conformance(result, bundle)
        table(report["models"], title="conformance with the bundle's reference outputs (tolerance "
              f"{report.get('tolerance')}: {report.get('tolerance_rule') or report.get('reason')})")
    if plot_out:
        from edgerec.device_tests.plots import plot_bench

        made = plot_bench(result, plot_out)
        plot_written(made)
    write_json(json_out, summary(result))
    if not result["passed"]:
        for failure in result["failures"]:
            console.print(Text.assemble(("budget missed:", "red"), f" {failure}"))
        raise SystemExit(1)
    console.print(f"within every budget of {profile.name}", style="green")


def _pair(name: str, figures: dict | None) -> dict:
    return {name: f"{figures['p50_ms']:.2f}/{figures['p99_ms']:.2f}"} if figures else {}


def _long(figures: dict | None) -> dict:
    return _pair(f"after event, {figures['events']:,}-event history p50/p99", figures) if figures else {}


def print_bench(result: dict) -> None:
    rows = [{"engine": r["backend"], "retrieval": f"{r['ann']} index" if r.get("ann") else f"exact, {r['kernel']}",
             "open ms": r["open_ms"],
             **{k: r["end_to_end"][k] for k in ("p50_ms", "p95_ms", "p99_ms")},
             "after event p50/p99": f"{r['after_event']['p50_ms']:.2f}/{r['after_event']['p99_ms']:.2f}",
             **_pair("asked again p50/p99", r.get("repeated")),
             **_long(r.get("long_history_after_event")),
             "req/s": r["throughput_rps"]} for r in result["runs"]]
    table(rows, title=f"recommend(), {result['items']:,} items, profile {result['profile']['name']}")
    stages = []
    for r in result["runs"]:
        for name, s in r["stages"].items():
            stages.append({"engine": r["backend"], "stage": name, "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"]})
    table(stages, title="per stage")
    table([{k: e[k] for k in ("bundle", "file", "quantization", "bytes", "p50_ms", "p99_ms")} for e in result["encoders"]],
          title="user encoder alone (batch 1)")
    print_retrieval(result["retrieval"])
    console.print(f"peak RSS {result['peak_rss_mb']:.0f} MB (every engine in one process); "
                  f"bundle {result['bundle_bytes']:,} bytes")
    if result.get("figures"):
        kernels = ", ".join(sorted({f"{r['engine']}: {r['kernel']}" for r in result["footprint"]}))
        table(result["figures"], title=f"footprint at {result['items']:,} items, each engine alone in a process "
                                       f"(scan kernel {kernels}); x goal <= 1 meets the goal")
        table([{"section": k, "bytes": v, "share": v / result["bundle_bytes"]} for k, v in result["sections"].items()],
              title="bundle bytes by section")


def print_retrieval(ret: dict) -> None:
    """The scan against faiss and usearch, the ratios and the share of the bandwidth bound."""
    from edgerec.studies.bench import retrieval_tables

    for t in retrieval_tables(ret):
        table(t.rows, title=t.title, columns=t.columns)


def register(cli: click.Group) -> None:
    cli.add_command(bench)
