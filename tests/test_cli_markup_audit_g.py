"""The device commands print ids, titles, reasons and file names as they are: text holding "[/b]" is not
rich markup (it crashed them with a MarkupError traceback, after `record` had stored the event); and
`onboard` counts the choices it stores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.cli.output import console
from edgerec.runtime.history import HistoryStore

GOLDEN = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"


def test_record_and_history_show_print_a_user_id_that_looks_like_markup(tmp_path):
    """On a new history the crash also deleted the event just stored (the file was removed as failed)."""
    runner, db = CliRunner(), str(tmp_path / "h.db")
    result = runner.invoke(cli, ["record", str(GOLDEN), "--user", "x[/b]", "--item", "i01", "--history", db])
    assert result.exit_code == 0, result.output
    assert "recorded play of i01 for x[/b] (event 1)" in result.output
    assert HistoryStore(db).count("x[/b]") == 1
    shown = runner.invoke(cli, ["history", "show", "x[/b]", "--history", db])
    assert shown.exit_code == 0 and "x[/b]: 1 events" in shown.output
    forgot = runner.invoke(cli, ["history", "forget", "x[/b]", "--history", db, "--yes"])
    assert forgot.exit_code == 0 and "forgot x[/b]: 1 events" in forgot.output


def test_recommend_prints_a_rejected_update_and_titles_holding_closing_tags(tmp_path):
    update = Path(shutil.copytree(GOLDEN, tmp_path / "upd"))
    manifest = json.loads((update / "manifest.json").read_text())
    manifest["name"], manifest["dim"] = "v2[/red]", "[/yellow]"
    (update / "manifest.json").write_text(json.dumps(manifest))
    runner, db = CliRunner(), str(tmp_path / "h[/dim].db")
    items = tmp_path / "new.json"
    items.write_text(json.dumps([{"item_id": "n[/i]", "title": "Night [/b] Heist", "genre": "jazz",
                                  "vector": [1.0] * manifest_dim()}]))
    added = runner.invoke(cli, ["add-items", str(GOLDEN), "--items", str(items), "--history", db])
    assert added.exit_code == 0 and "added 1 item: n[/i]" in added.output, added.output
    result = runner.invoke(cli, ["recommend", str(update), "--user", "u[/u]", "--history", db, "--fallback",
                                 str(GOLDEN), "--k", "100"])
    assert result.exit_code == 0, result.output
    assert "update upd rejected: manifest.json: dim must be an integer" in result.output
    assert "(got '[/yellow]')" in result.output and "for u[/u]" in result.output
    assert "Night [/b] Heist" in result.output and "n[/i]" in result.output


def manifest_dim() -> int:
    return json.loads((GOLDEN / "manifest.json").read_text())["dim"]


def test_onboard_counts_distinct_choices_as_stored(tmp_path):
    db = str(tmp_path / "h.db")
    result = CliRunner().invoke(cli, ["onboard", str(GOLDEN), "--user", "bob", "--genre", "jazz", "--genre", "jazz",
                                      "--tag", "heist", "--tag", "heist", "--tag", "space", "--history", db])
    assert result.exit_code == 0, result.output
    assert "onboarded bob: 1 genres, 2 tags, 0 languages, 0 items" in result.output


def test_every_command_prints_text_as_text_not_markup():
    """The console has markup off (styles go as style=): a label, path or warning holding "[/b]" anywhere
    in the CLI printed through rich raised a MarkupError after the work was done."""
    @click.command("markup-echo")
    def echo():
        console.print("a title with a closing tag [/b] and [bold]no style[/bold]")

    cli.add_command(echo)
    try:
        result = CliRunner().invoke(cli, ["markup-echo"])
    finally:
        cli.commands.pop("markup-echo")
    assert result.exit_code == 0, result.output
    assert "a title with a closing tag [/b] and [bold]no style[/bold]" in result.output
