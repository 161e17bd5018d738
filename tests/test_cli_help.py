"""Every command's --help ends with an example, and the example names real commands and options."""

import shlex

import click
import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli


def _commands(group: click.Group = cli, path: tuple[str, ...] = ()):
    yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, path + (name,))
        else:
            yield path + (name,), command


COMMANDS = list(_commands())


def _examples(help_text: str) -> list[str]:
    """The lines after the last 'Example:' line, which must close the help."""
    lines = [line.strip() for line in help_text.rstrip().splitlines()]
    assert "Example:" in lines, "no 'Example:' line"
    tail = lines[len(lines) - lines[::-1].index("Example:"):]
    assert tail and all(tail), "the help does not end with the example"
    return tail


def _resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """Walk `edgerec sub sub ...` down the groups; returns the command and its remaining arguments."""
    assert words[0] == "edgerec", words
    command, rest = cli, words[1:]
    while isinstance(command, click.Group) and rest and rest[0] in command.commands:
        command, rest = command.commands[rest[0]], rest[1:]
    return command, rest


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "edgerec")
def test_help_ends_with_a_runnable_example(path):
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="edgerec")
    assert result.exit_code == 0, result.output
    examples = _examples(result.output)
    for line in examples:
        words = shlex.split(line)
        assert " ".join(words[:len(path) + 1]) == " ".join(("edgerec",) + path), f"{line!r} runs another command"
        command, rest = _resolve(words)
        options = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        unknown = [w.split("=")[0] for w in rest if w.startswith("--") and w.split("=")[0] not in options]
        assert not unknown, f"{line!r}: {unknown} are not options of {command.name}"


def test_the_walk_sees_every_documented_group():
    paths = {" ".join(p) for p, _ in COMMANDS}
    assert {"study coldstart", "study compression", "study content", "study replay", "compress report",
            "content report", "content coldstart", "train", "demo", "history forget"} <= paths


def test_a_help_without_an_example_is_caught():
    with pytest.raises(AssertionError, match="Example"):
        _examples("Usage: edgerec thing\n\nOptions:\n  --help  Show this message and exit.\n")
    with pytest.raises(AssertionError, match="does not end"):
        _examples("Example:\n  edgerec thing\n\nOptions:\n  --help\n")
