"""The commands of README.md and docs/*.md name real commands and options: doc rot fails here, not in a
newcomer's shell.

Every `edgerec ...` line of their ```bash blocks and every inline `edgerec ...` span is walked
down the click groups (no process is spawned): the command path must exist, every `--flag` must be an
option of that command, options that take a value must get one, and a command must not be given more
positional arguments than it takes. `...` stands for arguments shown elsewhere (only the flags after it
are checked), option values must pass the option's type (choices, numbers). The runtime-only benchmark
(`python -m edgerec.device_tests`) takes the flags shown, and the README's `make` targets exist.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from edgerec.cli.main import cli

README = Path(__file__).resolve().parents[1] / "README.md"
MAKEFILE = README.with_name("Makefile")
# the front page and the topic files it links to: the same checks walk all of them
DOCS = [README, *sorted(README.with_name("docs").glob("*.md"))]
SEPARATORS = {"&&", "||", ";", "|", "do", "then", "done", "fi"}


def bash_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, body) of each ```bash block."""
    blocks, body, start = [], None, 0
    for number, line in enumerate(text.splitlines(), 1):
        if body is None and line.strip().startswith("```bash"):
            body, start = [], number + 1
        elif body is not None and line.strip().startswith("```"):
            blocks.append((start, "\n".join(body)))
            body = None
        elif body is not None:
            body.append(line)
    return blocks


def shell_commands(body: str) -> list[list[str]]:
    """The simple commands of a bash snippet as word lists: continuations joined, comments dropped,
    split at &&, ||, ;, | and the keywords of a for loop."""
    words = shlex.split(body.replace("\\\n", " ").replace(";", " ; "), comments=True, posix=True)
    commands, current = [], []
    for word in words:
        if word in SEPARATORS:
            commands.append(current)
            current = []
        else:
            current.append(word)
    commands.append(current)
    return [c for c in commands if c]


def _lines(body: str) -> list[str]:
    """The block's lines, one command line each (a continued line joined, then blank lines in its place,
    so numbers stay right), with here-document bodies blanked: they are input, not commands."""
    lines, end = [], None
    for line in re.sub(r"\\\n", lambda m: " \0", body).split("\n"):
        parts = line.split("\0")
        if end is not None:
            end = None if line.strip() == end else end
            lines.extend([""] * len(parts))
            continue
        lines.append(" ".join(parts))
        lines.extend([""] * (len(parts) - 1))
        here = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if here:
            end = here.group(1)
            lines[-len(parts)] = lines[-len(parts)][:here.start()]
    return lines


def edgerec_invocations(text: str, name: str = "README.md") -> list[tuple[str, list[str]]]:
    """(where, words after `edgerec`) for every edgerec command the file NAME shows; `where` ends in
    "(inline)" for a span of prose, which may name a command without its arguments."""
    found = []
    for start, body in bash_blocks(text):
        for offset, line in enumerate(_lines(body)):
            for words in shell_commands(line):
                found.extend((f"{name}:{start + offset}", rest) for rest in _after_edgerec(words))
    prose = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    for match in re.finditer(r"`(edgerec\s[^`]+)`", prose):
        line = prose[:match.start()].count("\n") + 1
        for words in shell_commands(match.group(1)):
            found.extend((f"{name}:{line} (inline)", rest) for rest in _after_edgerec(words))
    return found


def _after_edgerec(words: list[str]) -> list[list[str]]:
    """The arguments of the edgerec command in one simple command (env prefixes, torchrun, python -m)."""
    for i, word in enumerate(words):
        if word == "edgerec" and words[i - 1:i] != ["install"]:  # `pip install edgerec` names the package
            return [words[i + 1:]]
        if word == "-m" and i + 1 < len(words) and words[i + 1] == "edgerec.cli.main":
            return [words[i + 2:]]
    return []


def check(args: list[str], fragment: bool = False) -> list[str]:
    """What is wrong with `edgerec ARGS` as the click CLI sees it (empty: nothing). A fragment (prose
    naming a command) may leave out the subcommand, the arguments and an option's value at its end."""
    command, path, rest = cli, ["edgerec"], list(args)
    while isinstance(command, click.Group):
        if not rest or rest[0].startswith("-") or rest[0] == "...":
            if rest and rest[0] in ("-h", "--help", "--version") or rest[:1] == ["..."] or fragment and not rest:
                return []
            return [f"`{' '.join(path)}` needs a subcommand"]
        if rest[0] not in command.commands:
            return [f"`{' '.join(path)}` has no command {rest[0]!r}"]
        command = command.commands[rest[0]]
        path.append(rest.pop(0))
    name = " ".join(path)
    options, params = {}, {}
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in param.opts + param.secondary_opts:
                options[opt] = param.is_flag or param.count or opt in param.secondary_opts
                params[opt] = param
    options.update({"--help": True, "-h": True})
    problems, positionals, elided, i = [], 0, False, 0
    while i < len(rest):
        word = rest[i]
        if word == "...":
            elided = True
        elif word.startswith("-") and len(word) > 1 and not _is_number(word):
            opt, has_value = word.split("=", 1)[0], "=" in word
            if has_value and opt in params:
                problems += _bad_value(name, params[opt], opt, word.split("=", 1)[1])
            if opt not in options:
                problems.append(f"`{name}` has no option {opt}")
                if not has_value and i + 1 < len(rest) and not rest[i + 1].startswith("-"):
                    i += 1  # its value, most likely: not an argument
            elif not options[opt] and not has_value:
                value = rest[i + 1] if i + 1 < len(rest) else None
                if value is None and fragment:
                    pass
                elif value is None or value == "..." or value.split("=")[0] in options:
                    problems.append(f"`{name}` {opt} needs a value")
                else:
                    problems += _bad_value(name, params[opt], opt, value)
                    i += 1
        else:
            positionals += 1
        i += 1
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    takes = float("inf") if any(a.nargs == -1 for a in arguments) else sum(a.nargs for a in arguments)
    if positionals > takes:
        problems.append(f"`{name}` takes {takes} argument(s), the README gives {positionals}: {rest}")
    needs = sum(a.nargs for a in arguments if a.required and a.nargs > 0)
    if not elided and not fragment and positionals < needs:
        problems.append(f"`{name}` needs {needs} argument(s), the README gives {positionals}: {rest}")
    return problems


def _bad_value(name: str, param: click.Option, opt: str, value: str) -> list[str]:
    """A value the option's type refuses (a choice it lacks, a word for a number); paths are not
    looked up, and placeholders (N, DIR, $d) are not values."""
    if isinstance(param.type, (click.Path, click.File)) or re.fullmatch(r"[A-Z][A-Z0-9_]*|.*\$.*", value):
        return []
    try:
        param.type.convert(value, param, None)
    except click.BadParameter as exc:
        return [f"`{name}` {opt} {value!r}: {exc.message}"]
    return []


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def make_targets(text: str) -> set[str]:
    return set(re.findall(r"`make ([\w-]+)", text)) | {
        w for _, body in bash_blocks(text) for line in _lines(body)
        for words in shell_commands(line) if words[:1] == ["make"] for w in words[1:2]}


def _where(path: Path) -> str:
    return str(path.relative_to(README.parent))


def test_the_walk_covers_the_readme_and_every_docs_file():
    """The docs/ files hold most of the commands since the README was split: a walk of README.md alone
    would leave them to rot."""
    assert len(DOCS) > 10, [_where(p) for p in DOCS]
    empty = [_where(p) for p in DOCS if not edgerec_invocations(p.read_text(encoding="utf-8"), _where(p))]
    assert len(empty) < len(DOCS) / 2, f"no edgerec command found in {empty}: the parser broke?"


def test_every_readme_command_names_real_commands_and_options():
    invocations = [found for path in DOCS
                   for found in edgerec_invocations(path.read_text(encoding="utf-8"), _where(path))]
    assert len(invocations) > 100, "the README and docs walk found too few commands: the parser broke"
    problems = [f"{where}: {p}" for where, args in invocations for p in check(args, where.endswith("(inline)"))]
    assert not problems, "\n".join(problems)


def test_every_readme_make_target_exists():
    targets = set().union(*(make_targets(path.read_text(encoding="utf-8")) for path in DOCS))
    defined = set(re.findall(r"^([\w-]+):", MAKEFILE.read_text(encoding="utf-8"), flags=re.M))
    assert {"demo", "test"} <= make_targets(README.read_text(encoding="utf-8"))  # the front page's two commands
    assert targets <= defined, sorted(targets - defined)


@pytest.mark.parametrize("line, message", [
    ("edgerec train --data d --bogus-flag 3", "no option --bogus-flag"),
    ("edgerec data imprt csv x --out y", "no command 'imprt'"),
    ("edgerec inspect bundle extra", "takes 1 argument"),
    ("edgerec record --user u --item i --event play", "needs 1 argument"),
    ("edgerec train --data", "--data needs a value"),
    ("edgerec data", "needs a subcommand"),
    ("edgerec train --data d --arch transformer", "--arch 'transformer'"),
    ("edgerec train --data d --dim wide", "--dim 'wide'"),
])
def test_the_check_catches_rot(line, message):
    text = f"# t\n\n```bash\nFOO=1 {line} \\\n   # trailing comment\n```\n"
    (where, args), = edgerec_invocations(text)
    assert any(message in p for p in check(args)), check(args)
    if "needs" not in message:  # prose may name a command without its arguments
        inline = f"Run `{line}` to see."
        assert any(message in p for p in check(edgerec_invocations(inline)[0][1], fragment=True))


def test_the_parser_reads_shell_forms():
    text = ("```bash\n"
            "edgerec data synth --out w && edgerec evaluate --data w --model popular | tail -3\n"
            "for d in a b; do\n  edgerec train --data w/$d --out ckpt/$d \\\n    --dim 8; done\n"
            "torchrun --nproc_per_node 2 -m edgerec.cli.main train --data w   # DDP\n"
            "python3 - <<'EOF'\nprint(\"Children's edgerec --bogus\")\nEOF\n"
            "edgerec tune ... --margin-z 0\n"
            "pip install edgerec  # the device side\n"
            "```\n")
    found = [args for _, args in edgerec_invocations(text)]
    assert found == [["data", "synth", "--out", "w"], ["evaluate", "--data", "w", "--model", "popular"],
                     ["train", "--data", "w/$d", "--out", "ckpt/$d", "--dim", "8"],
                     ["train", "--data", "w"], ["tune", "...", "--margin-z", "0"]]
    assert all(not check(args) for args in found)
    (where, _), = [f for f in edgerec_invocations(text) if f[1][0] == "tune"]
    assert where == "README.md:10"  # the line of the fenced block it is on


def test_the_device_benchmark_lines_use_its_options(capsys):
    """`python -m edgerec.device_tests BUNDLE ...` (argparse, the runtime-only entry) takes the flags shown."""
    from edgerec.device_tests.__main__ import main

    with pytest.raises(SystemExit):
        main(["--help"])
    options = set(re.findall(r"--[\w-]+", capsys.readouterr().out))
    text = "\n".join(path.read_text(encoding="utf-8") for path in DOCS)
    lines = [words[i + 2:] for _, body in bash_blocks(text) for line in _lines(body)
             for words in shell_commands(line) for i in range(len(words) - 1)
             if words[i:i + 2] == ["-m", "edgerec.device_tests"]]
    assert lines, "the README no longer shows the runtime-only benchmark"
    unknown = [w for args in lines for w in args if w.startswith("--") and w.split("=")[0] not in options]
    assert not unknown, f"not options of python -m edgerec.device_tests: {unknown}"


def test_the_scorer_benchmark_answers_a_bad_bundle_with_words(tmp_path, capsys):
    """`python -m edgerec.device_tests.scorer_bench BUNDLE` (named in the README) printed a traceback for a
    path that is not a bundle, and took `--help` for one."""
    from edgerec.device_tests.scorer_bench import main

    assert main(["--help"]) == 0
    assert "scorer_bench BUNDLE" in capsys.readouterr().out
    assert main([str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "is not a bundle" in err and "Traceback" not in err
    assert main([]) == 2
