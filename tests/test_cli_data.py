import json
from datetime import datetime, timezone

from click.testing import CliRunner

from edgerec import __version__
from edgerec.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_version_and_help():
    assert __version__ in run("--version").output
    result = run("--help")
    assert result.exit_code == 0 and "data" in result.output and "evaluate" in result.output


def test_python_dash_m_runs_the_same_command_line():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "edgerec.cli", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"edgerec, version {__version__}"


def test_synth_stats_evaluate(tmp_path):
    out = tmp_path / "world"
    result = run("data", "synth", "--out", out, "--users", 150, "--items", 600, "--events", 8000, "--seed", 1)
    assert result.exit_code == 0, result.output
    assert (out / "interactions.csv").exists() and (out / "items.csv").exists()
    stats_json = tmp_path / "stats.json"
    result = run("data", "stats", out, "--json", stats_json)
    assert result.exit_code == 0 and "density" in result.output
    written = json.loads(stats_json.read_text())
    assert written["items"] == 600 and isinstance(written["first_event"], int)  # epoch seconds in the JSON
    first = datetime.fromtimestamp(written["first_event"], timezone.utc)
    assert f"{first:%Y-%m-%d %H:%M:%S} UTC" in result.output  # a date on screen, not 1,199,664,184
    report = tmp_path / "eval.json"
    result = run("evaluate", "--data", out, "--model", "popular", "--model", "itemknn", "--json", report)
    assert result.exit_code == 0, result.output
    rows = json.loads(report.read_text())["results"]
    assert [r["model"] for r in rows] == ["popular", "itemknn"]
    assert "NDCG@10" in result.output


def test_stats_of_a_log_without_times_show_rows(tmp_path):
    from edgerec.cli.data_cmd import readable

    stats = {"events": 3, "first_event": 0, "last_event": 1_234, "event_mix": {"rate": 3}}
    assert readable(stats, {"time": "file order"}) == {"events": 3, "first_event": "row 0", "last_event": "row 1,234",
                                                       "event_mix": {"rate": 3}}
    assert readable(dict(stats, events=0), {}) == dict(stats, events=0)  # an empty log: nothing to date


def test_import_movielens_and_clear_errors(tmp_path):
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4,10\n1,2,5,11\n2,1,3,12\n")
    (folder / "movies.csv").write_text("movieId,title,genres\n1,A (1999),Drama\n2,B (2001),Comedy\n")
    result = run("data", "import", "ml-latest", folder, "--out", tmp_path / "neutral")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "neutral" / "items.csv").exists()

    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,timestamp\nu1,i1,noon\n")
    result = run("data", "import", "csv", bad, "--out", tmp_path / "x")
    assert result.exit_code != 0
    assert "bad.csv:2:" in result.output and "timestamp" in result.output and "Traceback" not in result.output
    assert str(tmp_path) not in result.output  # the file's name, not the folders above it


def test_import_takes_a_typed_tab_and_a_time_unit(tmp_path):
    log = tmp_path / "log.tsv"
    log.write_text("user_id\titem_id\ttimestamp\nu1\ti1\t1704182400500\nu1\ti2\t1704182400100\n")
    result = run("data", "import", "csv", log, "--out", tmp_path / "out", "--delimiter", "\\t", "--time-unit", "ms")
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "out" / "interactions.csv").read_text().splitlines()[1:]
    assert [r.split(",")[1:3] for r in rows] == [["i2", "1704182400"], ["i1", "1704182400"]]


def refused(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output  # a message, no traceback
    return result.output


def test_an_out_that_would_write_over_the_input_is_refused_before_reading(tmp_path):
    folder = tmp_path / "ow"
    folder.mkdir()
    log, items = folder / "interactions.csv", folder / "items.csv"
    log.write_text("account,track,ts\nalice,t1,100\nalice,t2,90\n")
    items.write_text("item_id,title\nt1,One\nt2,Two\n")
    before = log.read_bytes(), items.read_bytes()
    columns = ["--user-col", "account", "--item-col", "track", "--time-col", "ts"]
    assert "would write over the input file interactions.csv" in refused("data", "import", "csv", log, "--out", folder,
                                                                         *columns)
    other = tmp_path / "log.csv"
    other.write_text("user_id,item_id,timestamp\nu,t1,100\n")
    assert "would write over the input file items.csv" in refused("data", "import", "csv", other, "--out", folder,
                                                                  "--items", items)
    assert (log.read_bytes(), items.read_bytes()) == before and not (folder / "dataset.json").exists()
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "part-0.csv").write_text("user_id,item_id,timestamp\nu,a,100\n")
    for out in (parts, parts / "inside"):
        assert "is inside the folder being imported (parts)" in refused("data", "import", "csv", parts, "--out", out)
    assert sorted(p.name for p in parts.iterdir()) == ["part-0.csv"]
    beside = run("data", "import", "csv", parts / "part-0.csv", "--out", parts)  # a file's own folder is fine
    assert beside.exit_code == 0, beside.output
    assert (parts / "interactions.csv").exists()
