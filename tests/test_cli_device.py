"""The device-side commands: record, recommend, history show/export/forget."""

import json
import os
import re

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
    assert "no events of this user" not in result.output
    # a mistyped --history: a new, empty file; the newcomer's list comes with a note naming the file only
    result = runner.invoke(cli, ["recommend", str(tiny_bundle), "--user", "ann", "--history", str(tmp_path / "hh.db")])
    assert result.exit_code == 0 and "no events of this user in 'hh.db': a newcomer's list" in result.output
    assert str(tmp_path) not in result.output
    result = runner.invoke(cli, ["history", "show", "ann", "--history", db])
    assert result.exit_code == 0 and items[0] in result.output
    assert re.search(r"20\d\d-\d\d-\d\d \d\d:\d\d:\d\d", result.output)  # a date, not 1,796,285,835.2
    dump = tmp_path / "ann.json"
    assert runner.invoke(cli, ["history", "export", "ann", "--history", db, "--out", str(dump)]).exit_code == 0
    assert [e["item"] for e in json.loads(dump.read_text())["events"]] == items
    assert os.name != "posix" or dump.stat().st_mode & 0o777 == 0o600  # a user's own data: owner only
    result = runner.invoke(cli, ["history", "forget", "ann", "--history", db, "--yes"])
    assert result.exit_code == 0 and "3 events removed" in result.output
    result = runner.invoke(cli, ["record", str(tiny_bundle), "--user", "ann", "--item", "nope", "--history", db])
    assert result.exit_code != 0 and "unknown item 'nope'" in result.output


def test_recommend_takes_a_tuned_policy_file_and_refuses_a_bad_one(tiny_bundle, tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "h.db")
    catalog = ItemCatalog(Bundle.open(tiny_bundle))
    for row in (3, 4, 5):
        runner.invoke(cli, ["record", str(tiny_bundle), "--user", "ann", "--item", catalog.item_id(row),
                            "--event", "finish", "--history", db])

    def listed(*extra):
        out = tmp_path / "recs.json"
        result = runner.invoke(cli, ["recommend", str(tiny_bundle), "--user", "ann", "--k", "8", "--history", db,
                                     "--json", str(out), *extra])
        assert result.exit_code == 0, result.output
        return [r["item_id"] for r in json.loads(out.read_text())]

    untuned, tuned = tmp_path / "untuned.json", tmp_path / "policy.json"
    untuned.write_text(json.dumps({"diversity": 0.0}))
    tuned.write_text(json.dumps({"diversity": 0.0, "hub_penalty": 2.0}))
    plain, penalised = listed("--policy", str(untuned)), listed("--policy", str(tuned))
    assert penalised != plain
    assert listed("--policy", str(tuned), "--diversity", "0.0") == penalised  # --diversity overrides the file's
    for bad, message in (({"hub_penalty": 2.0, "bogus": 1}, "unknown policy settings bogus"),
                         ([1, 2], "JSON object"), ("{not json", "not a readable JSON file")):
        tuned.write_text(bad if isinstance(bad, str) else json.dumps(bad))
        result = runner.invoke(cli, ["recommend", str(tiny_bundle), "--user", "ann", "--history", db,
                                     "--policy", str(tuned)])
        assert result.exit_code != 0 and message in result.output, result.output
