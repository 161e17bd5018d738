"""The newcomer study (`edgerec study newcomers`): onboarding choices through the device's own code."""

import json

import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.errors import ConfigError
from edgerec.runtime import Recommender
from edgerec.studies.newcomers import VARIANTS, NewcomerStudy


@pytest.fixture(scope="module")
def record(tiny_bundle):
    return NewcomerStudy(tiny_bundle, tiny_bundle.parent / "data", users=20).run().record


def test_every_choice_is_measured_and_shows(record, tiny_bundle):
    with Recommender.open(tiny_bundle) as rec:
        for column, shown in record["visibility"].items():
            values = {str(v) for v in rec.catalog.column(column, range(rec.catalog.base_count)) if v}
            assert set(shown) == values
            for value, count in shown.items():
                assert count >= min(5, int(rec.catalog.matches(column, None, [value]).sum())), (column, value)


def test_first_lists_cover_every_variant_and_choices_change_them(record):
    assert record["users"] == 20 and set(record["first_lists"]) == set(VARIANTS)
    assert all(0 <= value <= 1 for value in record["first_lists"].values())
    assert record["first_lists"]["choices"] != record["first_lists"]["popular"]  # the choices were applied
    assert record["first_lists"]["2 items"] != record["first_lists"]["popular"]  # so were the items


def test_the_cli_prints_the_tables_and_writes_the_record(tiny_bundle, tmp_path):
    out = tmp_path / "new.json"
    result = CliRunner().invoke(cli, ["study", "newcomers", str(tiny_bundle), "--data",
                                      str(tiny_bundle.parent / "data"), "--users", "5", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "choices with none shown" in result.output and "2 plays + choices" in result.output
    assert json.loads(out.read_text())["users"] == 5


def test_data_the_bundle_does_not_know_is_refused(tiny_bundle, tmp_path):
    from edgerec.data.store import load_dataset, save_dataset

    dataset = load_dataset(tiny_bundle.parent / "data")
    dataset.catalog.item_ids = [f"other-{item}" for item in dataset.catalog.item_ids]
    save_dataset(dataset, tmp_path / "other")
    with pytest.raises(ConfigError, match="does not match the bundle"):
        NewcomerStudy(tiny_bundle, tmp_path / "other", users=5).run()
