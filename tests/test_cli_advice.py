"""Every `edgerec ...` command an error message or help text tells people to run exists, with its
options and choices (an export error once said `edgerec train --arch scorer`, an arch train lacks)."""

import re
from pathlib import Path

import click
import tomllib

from edgerec.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
# the package's own folders (pyproject's package-dir), not a virtualenv or build tree beside them
PACKAGE_FOLDERS = sorted(set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                             ["package-dir"].values()))
ADVICE = re.compile(r"`edgerec ([^`]+)`")


def _problems(words: list[str]) -> list[str]:
    cmd, i = cli, 0
    while i < len(words) and isinstance(cmd, click.Group) and words[i] in cmd.commands:
        cmd, i = cmd.commands[words[i]], i + 1
    if cmd is cli and words and words[0] not in ("--help", "-h", "--version"):
        return [f"no command {words[0]!r}"]
    params = {o: p for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    out = []
    for word, value in zip(words[i:], [*words[i + 1:], None]):
        name = word.split("=")[0].rstrip(".,;)")
        if not name.startswith("--") or name == "--help":
            continue
        param = params.get(name)
        if param is None:
            out.append(f"no option {name}")
        elif isinstance(param.type, click.Choice) and value and not value.startswith("-") and value.isidentifier() \
                and value not in param.type.choices:
            out.append(f"{name} has no choice {value!r}")
    return out


def test_the_commands_edgerec_tells_people_to_run_exist():
    found, problems = 0, []
    for path in sorted(p for folder in PACKAGE_FOLDERS for p in (ROOT / folder).rglob("*.py")):
        for match in ADVICE.finditer(path.read_text(encoding="utf-8")):
            found += 1
            problems += [f"{path.relative_to(ROOT)}: {match.group(0)}: {p}" for p in _problems(match.group(1).split())]
    assert found > 50 and not problems, "\n".join(problems)


def test_the_check_catches_a_missing_choice_and_command():
    assert _problems("train --arch scorer --retrieval".split()) == ["--arch has no choice 'scorer'"]
    assert _problems("scorer train --retrieval MODEL".split()) == []
    assert _problems("fly --to moon".split()) == ["no command 'fly'"]
    assert _problems("export --no-such-thing".split()) == ["no option --no-such-thing"]
