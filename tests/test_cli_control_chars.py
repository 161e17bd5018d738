"""Text from bundles, data and apps reaches the terminal as text: a bundle named with ESC sequences cleared
the screen and retitled the terminal when `edgerec inspect` printed it (audit H4)."""

import click
import pytest
from click.testing import CliRunner

from edgerec.cli.main import EdgerecGroup
from edgerec.cli.output import console, printable, table
from edgerec.errors import BundleError

HOSTILE = "ok\x1b]0;pwned\x07\x1b[2J\x9bX\x7f"


def test_printable_shows_every_control_character_but_tab_and_line_break():
    assert printable(HOSTILE) == "ok\ufffd]0;pwned\ufffd\ufffd[2J\ufffdX\ufffd"
    assert printable("a\tb\nc é 日本") == "a\tb\nc é 日本"


def test_tables_and_plain_prints_carry_no_control_character():
    with console.capture() as seen:
        table([{"name": HOSTILE, "items": 3}], title=HOSTILE)
        console.print(HOSTILE)
    out = seen.get()
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "pwned" in out


def test_an_error_message_holding_control_characters_is_printed_as_text():
    @click.group(cls=EdgerecGroup)
    def cli():
        pass

    @cli.command()
    def fail():
        raise BundleError(f"bundle {HOSTILE!s} is damaged")

    result = CliRunner().invoke(cli, ["fail"])
    assert result.exit_code == 1 and "\x1b" not in result.output and "pwned" in result.output


@pytest.mark.parametrize("text", ["[/b] title", "plain"])
def test_markup_like_text_still_prints_as_it_is(text):
    with console.capture() as seen:
        console.print(text)
    assert seen.get().strip() == text
