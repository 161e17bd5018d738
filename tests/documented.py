"""The commands docs/data.md gives for public logs, run on the tests' replicas: the command block that
imports a file of that name, with the replica's path and an output folder put in.

Importable from test files (pytest puts tests/ on sys.path, see pyproject.toml)."""

import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from edgerec.cli.main import cli

DOCS = Path(__file__).resolve().parents[1] / "docs"


def run_documented(name: str, replica: Path, out: Path, page: str = "data.md"):
    """Run the page's `edgerec data import FORMAT NAME ...` block on `replica`, writing to `out`."""
    text = (DOCS / page).read_text()
    block = re.search(rf"```bash\n(edgerec data import \S+ {re.escape(name)}.+?)\n```", text, re.S).group(1)
    args = shlex.split(block.replace("\\\n", " "))[1:]
    args[args.index("--out") + 1] = str(out)
    args[args.index(name)] = str(replica)
    return CliRunner().invoke(cli, args)
