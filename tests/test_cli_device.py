"""The device-side commands: record, recommend, history show/export/forget."""

import json

from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.runtime import Bundle
from edgerec.runtime.catalog import ItemCatalog


def test_record_recommend_and_history(tiny_bundle, tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "h.db")
    catalog = ItemCatalog(Bundle.open(tiny_bundle))
    items = [catalog.item_id(i) for i in (3, 4, 5)]
    for item in items:
        result = runner.invoke(cli, ["record", str(tiny_bundle), "--user", "ann", "--item", item, "--event", "finish",
                                     "--history", db])
        assert result.exit_code == 0, result.output
    out = tmp_path / "recs.json"
    result = runner.invoke(cli, ["recommend", str(tiny_bundle), "--user", "ann", "--k", "5", "--history", db,
                                 "--device", "tv", "--json", str(out)])
    assert result.exit_code == 0, result.output
    recs = json.loads(out.read_text())
    assert len(recs) == 5 and not {r["item_id"] for r in recs} & set(items)
    result = runner.invoke(cli, ["history", "show", "ann", "--history", db])
    assert result.exit_code == 0 and items[0] in result.output
    dump = tmp_path / "ann.json"
    assert runner.invoke(cli, ["history", "export", "ann", "--history", db, "--out", str(dump)]).exit_code == 0
    assert [e["item"] for e in json.loads(dump.read_text())["events"]] == items
    result = runner.invoke(cli, ["history", "forget", "ann", "--history", db, "--yes"])
    assert result.exit_code == 0 and "3 events removed" in result.output
    result = runner.invoke(cli, ["record", str(tiny_bundle), "--user", "ann", "--item", "nope", "--history", db])
    assert result.exit_code != 0 and "unknown item 'nope'" in result.output
