"""`edgerec compress report`: sizes, accuracy and latency of the teacher, the student and every variant."""

from __future__ import annotations

import click

from edgerec.cli.output import console, table, write_json


@click.group("compress")
def compress_group() -> None:
    """Compare compressed variants of a recommender."""


@compress_group.command("report")
@click.option("--teacher", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--student", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default="compression.json", show_default=True)
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False), default="compression.png", show_default=True)
def report(teacher, student, data_dir, json_out, plot_out) -> None:
    """Export every variant for real, run it with its engine, and tabulate bytes, NDCG@10 and latency."""
    from edgerec.export.report import compression_report, plot_pareto

    result = compression_report(teacher, student, data_dir, progress=lambda m: console.print(f"  {m}"))
    print_report(result)
    write_json(json_out, result)
    if plot_out and plot_pareto(result, plot_out):
        console.print(f"[dim]wrote {plot_out}[/dim]")


def print_report(result: dict) -> None:
    columns = ["variant", "bytes", "encoder_bytes", "table_bytes", "HR@10", "NDCG@10", "ndcg_vs_teacher",
               "top10_agreement_with_teacher", "encoder_p50_ms", "encoder_p99_ms", "parameters"]
    table(result["variants"], title=f"compression report ({result['users']:,} test users, full ranking)",
          columns=columns)


def register(cli: click.Group) -> None:
    cli.add_command(compress_group)
