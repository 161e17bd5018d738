"""The `edgerec` command: a click group; each command parses, calls the library, prints.

Heavy libraries are imported inside commands, so `edgerec --help` and the
device-side commands start fast and work without the host tools installed.
"""

from __future__ import annotations

import os
import re

import click

from edgerec import __version__
from edgerec.cli.output import example, printable
from edgerec.errors import EdgerecError


class EdgerecGroup(click.Group):
    """Turns library and file-system errors into a one-line message and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EdgerecError as exc:
            raise click.ClickException(printable(str(exc))) from None
        except ImportError as exc:
            raise click.ClickException(
                f"{exc}. This command needs the host tools: pip install 'edgerec[tools]'"
            ) from None
        except OSError as exc:  # an output path that cannot be written, a full disk: the system's words
            where = f" ({_shown_name(exc.filename)})" if exc.filename else ""  # not its folders
            raise click.ClickException(f"{exc.strerror or exc}{where}; check the path, its permissions and the "
                                       "free space") from None


def _shown_name(filename) -> str:
    """A file's name without its folders; a hidden temporary of runtime.atomic (".alice.json.8513.b4b36295.tmp")
    is named by the file it was to become, the one the user gave."""
    name = os.path.basename(str(filename)) or str(filename)
    temporary = re.fullmatch(r"\.(.+)\.\d+\.[0-9a-f]{8}\.[a-z]+", name)
    return temporary.group(1) if temporary else name


@click.group(cls=EdgerecGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=example("edgerec demo --quick --out runs/demo-quick",
                            "edgerec recommend runs/demo-quick/bundle --user alice"))
@click.version_option(__version__, prog_name="edgerec")
def cli() -> None:
    """edgerec: shrink recommenders and content models for devices, and rank on the device."""


def _register() -> None:
    from edgerec.cli import (
        bench_cmd,
        bundle_cmd,
        compress_cmd,
        content_cmd,
        data_cmd,
        demo_cmd,
        device_cmd,
        domain_cmd,
        evaluate_cmd,
        experiment_cmd,
        federate_cmd,
        ranking_cmd,
        study_cmd,
        train_cmd,
        tune_cmd,
    )

    for module in (data_cmd, train_cmd, evaluate_cmd, compress_cmd, content_cmd, bundle_cmd, device_cmd, bench_cmd,
                   demo_cmd, study_cmd, experiment_cmd, tune_cmd, ranking_cmd, federate_cmd, domain_cmd):
        module.register(cli)


_register()

if __name__ == "__main__":  # pragma: no cover
    cli()
