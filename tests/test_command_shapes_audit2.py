"""Host commands on odd but legal shapes of real logs, second round (an audit on MovieLens-100K cut
down and tiny synthetic worlds): the study, domain, scorer, history and catalog commands.

Each case once failed on a shape a data folder may legally hold: items with blank titles could not
be added on the device (so `study coldstart` stopped on MovieLens items without titles), and a
cold-start study whose held-out items no user reached after three events printed HR@10 0.0000 over
zero pairs.
"""

import json

import pytest
from test_real_data_shapes import _ratings

from edgerec.data.store import save_dataset
from edgerec.errors import ConfigError


def test_an_added_item_with_a_blank_title_is_shown_by_its_id(rec):
    """A data folder's blank title means unknown (as a missing one): the device names the item by its id."""
    rec.add_items([{"item_id": "new-1", "title": "", "vector": [0.5] * rec.manifest.dim}])
    assert rec.catalog.title(rec.catalog.row("new-1")) == "new-1"


def _short_histories(tmp_path):
    """Every user consumed 3 items, so no held-out item comes after a third event."""
    save_dataset(_ratings(tmp_path, per_user=3, items=6), tmp_path / "data")
    return tmp_path / "data"


def test_a_cold_start_study_without_any_pair_to_rank_is_refused_not_zero(tmp_path):
    from edgerec.studies.coldstart import cold_start_check

    data = _short_histories(tmp_path)
    with pytest.raises(ConfigError, match="no user consumed any of the 2 held-out items"):
        cold_start_check(data, [tmp_path / "student"], tmp_path / "out", held_items=2, epochs=1)


@pytest.mark.parametrize("films", [0, 1, 5])
def test_crosslingual_retrieval_among_five_films_or_fewer_is_refused_not_perfect(films):
    """Among one film every encoder scored top-1 = recall@5 = MRR = 1; among five, recall@5 = 1."""
    from edgerec.studies.crosslingual import CrossLingualStudy

    with pytest.raises(ConfigError, match="--films must be more than 5"):
        CrossLingualStudy(["hashed-words"], films=films).run()


def test_a_bridge_from_a_domain_into_itself_is_refused(tmp_path):
    """`domains bridge` of two drama bundles (MovieLens split by genre) fit drama users' vectors to
    their own drama vectors and shipped it as a transfer."""
    from edgerec.export.space import fit_bundle_bridge

    with pytest.raises(ConfigError, match="both the 'drama' domain: a bridge maps one domain into another"):
        fit_bundle_bridge(None, None, tmp_path, by="genre", source_domain="drama", target_domain="drama")


def test_a_bundle_of_two_domains_bridged_to_itself_maps_into_its_other_domain(tiny_bundle, tmp_path):
    """The audio+video bundle bridged to itself took the first domain of each: audio -> audio."""
    from click.testing import CliRunner

    from edgerec.cli.main import cli
    from edgerec.runtime.bundle import Bundle
    from edgerec.runtime.space import SharedSpace

    data, runner = tiny_bundle.parent / "data", CliRunner()
    space = tmp_path / "space"
    assert runner.invoke(cli, ["domains", "space", str(tiny_bundle), "--data", str(data), "--id", "m",
                               "--out", str(space)]).exit_code == 0
    result = runner.invoke(cli, ["domains", "bridge", str(space), str(space), "--data", str(data), "--method",
                                 "direct", "--out", str(tmp_path / "bridged")])
    assert result.exit_code == 0, result.output
    assert "bridge audio -> video fit on" in " ".join(result.output.split())
    (bridge,) = SharedSpace.of(Bundle.open(tmp_path / "bridged")).bridges
    assert bridge.prior.max() > 0  # fit to video consumption (audio users' video items)


def _item_file(path, dim, prefix=b"", encoding="utf-8"):
    body = json.dumps([{"item_id": "n1", "title": "Caf\u00e9", "vector": [0.1] * dim}], ensure_ascii=False)
    path.write_bytes(prefix + body.encode(encoding))
    return path


def test_add_items_reads_a_byte_order_mark_and_names_a_file_that_is_not_utf8(tiny_bundle, tmp_path):
    """A UTF-8 file with a BOM was refused as invalid JSON; a Latin-1 one ended in a UnicodeDecodeError
    traceback."""
    from click.testing import CliRunner

    from edgerec.cli.main import cli
    from edgerec.runtime.bundle import Bundle

    dim, runner = Bundle.open(tiny_bundle).manifest.dim, CliRunner()
    history = str(tmp_path / "h.db")
    bom = _item_file(tmp_path / "bom.json", dim, prefix=b"\xef\xbb\xbf")
    result = runner.invoke(cli, ["add-items", str(tiny_bundle), "--items", str(bom), "--history", history])
    assert result.exit_code == 0 and "added 1 item: n1" in result.output, result.output
    latin = _item_file(tmp_path / "latin.json", dim, encoding="latin-1")
    result = runner.invoke(cli, ["add-items", str(tiny_bundle), "--items", str(latin), "--history", history])
    assert result.exit_code == 1 and not isinstance(result.exception, UnicodeDecodeError)
    assert "--items is not UTF-8" in result.output and "save the file as UTF-8" in result.output
    result = runner.invoke(cli, ["remove-items", str(tiny_bundle), "n1", "n1", "--history", history])
    assert result.exit_code == 0 and "removed 1 item\n" in result.output, result.output  # was "removed 2"


def test_a_missing_history_is_named_without_its_folder(tmp_path):
    """`history export USER --history /home/USER/typo.db` printed the whole host path in the error."""
    from click.testing import CliRunner

    from edgerec.cli.main import cli

    missing = tmp_path / "alice-home" / "typo.db"
    result = CliRunner().invoke(cli, ["history", "export", "ann", "--history", str(missing), "--out",
                                      str(tmp_path / "o.json")])
    assert result.exit_code == 1 and "no history database 'typo.db'" in result.output
    assert "alice-home" not in result.output and not missing.exists()


def test_compression_ndcg_share_of_a_teacher_that_never_hit_is_not_measured():
    """On MovieLens cut to users with 2-3 ratings the teacher's NDCG@10 was 0, and every variant's
    ndcg_vs_teacher printed 0.0000 (a share of nothing)."""
    from edgerec.studies.compression import add_teacher_ratios

    rows = [{"variant": "teacher", "model": "teacher", "encoder_bytes": 200, "NDCG@10": 0.0},
            {"variant": "int8", "model": "student", "encoder_bytes": 50, "NDCG@10": 0.0}]
    add_teacher_ratios(rows)
    assert [r["ndcg_vs_teacher"] for r in rows] == [None, None]
    assert [r["bytes_vs_teacher_encoder"] for r in rows] == [1.0, 0.25]
    rows[0]["NDCG@10"], rows[1]["NDCG@10"] = 0.2, 0.1
    add_teacher_ratios(rows)
    assert rows[1]["ndcg_vs_teacher"] == pytest.approx(0.5)


def test_add_items_refuses_an_empty_list_and_shortens_a_long_one(tiny_bundle, tmp_path):
    """An empty list printed "added 0 items: " and opened the history for nothing; a long one printed every id."""
    from click.testing import CliRunner

    from edgerec.cli.main import cli
    from edgerec.runtime.bundle import Bundle

    dim, runner, history = Bundle.open(tiny_bundle).manifest.dim, CliRunner(), tmp_path / "h.db"
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    result = runner.invoke(cli, ["add-items", str(tiny_bundle), "--items", str(empty), "--history", str(history)])
    assert result.exit_code == 1 and "--items holds an empty list: nothing to add" in result.output
    assert not history.exists()
    many = tmp_path / "many.json"
    many.write_text(json.dumps([{"item_id": f"n{i}", "vector": [0.1] * dim} for i in range(12)]))
    result = runner.invoke(cli, ["add-items", str(tiny_bundle), "--items", str(many), "--history", str(history)])
    assert result.exit_code == 0, result.output
    assert "added 12 items: n0, n1, n2, n3, n4, n5, n6, n7, n8, n9 and 2 more" in " ".join(result.output.split())
