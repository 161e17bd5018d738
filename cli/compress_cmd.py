"""`edgerec compress report`: the compression study under its older path (`edgerec study compression`)."""

from __future__ import annotations

import click

from edgerec.cli import study_cmd
from edgerec.cli.output import example


@click.group("compress", epilog=example(
    "edgerec compress report --teacher ckpt/teacher --student ckpt/student --data data/world"))
def compress_group() -> None:
    """Compare compressed variants of a recommender."""


compress_group.add_command(study_cmd.alias(
    study_cmd.compression, "edgerec compress report --teacher ckpt/teacher --student ckpt/student --data data/world"),
    "report")


def register(cli: click.Group) -> None:
    cli.add_command(compress_group)
