"""`python -m edgerec.cli` runs the same command line as the edgerec script (where scripts are not on PATH)."""

from edgerec.cli.main import cli

cli(prog_name="edgerec")
