"""Import audit G5: mapped item columns checked by the field they fill, control characters in ids, release
years among dates and among epoch seconds, and errors that quoted a user id (an e-mail address)."""

from __future__ import annotations

import csv

import pytest

from edgerec.data import ColumnMap, import_dataset, load_dataset, save_dataset
from edgerec.data.film_items import year_ts
from edgerec.errors import DataError

EMAIL = "john.roe@corp.com"


def _write(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _items(tmp_path, header, rows, **kw):
    """Import a log naming movies m0.. with an item table keyed by movieId."""
    log = _write(tmp_path / "log.csv", ("user_id", "movieId", "timestamp"),
                 [("u1", f"m{i}", 1_700_000_000 + i) for i in range(len(rows))])
    items = _write(tmp_path / "items.csv", ("movieId", *header), [(f"m{i}", *row) for i, row in enumerate(rows)])
    return import_dataset("csv", log, columns=ColumnMap(item="movieId"), items=items, **kw)


# ------------------------------------------------------------- 1. mapped columns checked by their field

def test_a_mapped_description_may_hold_line_breaks_and_its_folder_loads(tmp_path):
    dataset = _items(tmp_path, ("name", "desc"), [("A", "line one\nline two"), ("B", "x")],
                     item_columns={"title": "name", "description": "desc"})
    assert dataset.catalog.text["description"][0] == "line one\nline two"
    save_dataset(dataset, tmp_path / "out")
    assert load_dataset(tmp_path / "out").catalog.text["description"][0] == "line one\nline two"


def test_a_mapped_tag_past_the_device_limit_is_refused_naming_the_file_column(tmp_path):
    with pytest.raises(DataError, match=r"items.csv:2: a tag of column 'genres' \(read as tags\) is 300 characters"):
        _items(tmp_path, ("genres",), [("t" * 300,), ("ok",)], item_columns={"tags": "genres"})


def test_a_title_read_from_a_description_column_is_one_line(tmp_path):
    with pytest.raises(DataError, match=r"items.csv:2: column 'description' \(read as title\) holds a line break"):
        _items(tmp_path, ("description",), [("Two\nlines",), ("B",)], item_columns={"title": "description"})


# ------------------------------------------------------------- 2. control characters in ids

@pytest.mark.parametrize("bad", ["Song\nTitle", "cr\rx", "tab\there", "a\u2028b", "a\x85b", "a\x1bb"])
def test_an_item_id_with_a_line_break_or_control_character_is_refused_at_its_line(tmp_path, bad):
    log = _write(tmp_path / "log.csv", ("user_id", "item_id", "timestamp"), [("u1", "ok", 1), ("u1", bad, 2)])
    with pytest.raises(DataError, match=r"^log.csv:3: column 'item_id' holds (a line break|the control character) "
                                        rf"\(U\+{ord(next(c for c in bad if not c.isalnum())):04X}\) in an id") as err:
        import_dataset("csv", log)
    assert bad not in str(err.value)


def test_a_user_id_with_a_tab_is_refused_without_quoting_it(tmp_path):
    log = _write(tmp_path / "log.csv", ("user_id", "item_id", "timestamp"), [(f"{EMAIL}\t", "i1", 1)])
    with pytest.raises(DataError, match=r"^log.csv:2: column 'user_id' holds the control character") as err:
        import_dataset("csv", log)
    assert "john" not in str(err.value)


def test_item_ids_with_bidi_overrides_are_kept_with_a_warning(tmp_path):
    log = _write(tmp_path / "log.csv", ("user_id", "item_id", "timestamp"), [("u1", "\u202eevil", 1), ("u1", "ok", 2)])
    dataset = import_dataset("csv", log)
    assert "\u202eevil" in dataset.catalog.item_ids
    assert any(w.startswith("1 item id holds bidirectional override") for w in dataset.meta["warnings"])
    plain = _write(tmp_path / "plain.csv", ("user_id", "item_id", "timestamp"), [("u1", "a", 1), ("u1", "b", 2)])
    assert "warnings" not in import_dataset("csv", plain).meta


# ------------------------------------------------------------- 3. release years, cell by cell

def test_release_years_among_full_dates_are_each_a_year(tmp_path):
    dataset = _items(tmp_path, ("release_ts",), [("1995",), ("2001",), ("2003-05-01",), ("",)])
    assert dataset.catalog.release_ts.tolist() == [year_ts(1995), year_ts(2001), 1051747200, 0]


def test_release_years_among_epoch_seconds_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"items.csv:3: column 'release_ts' holds '1995', a year or 1995 seconds "
                                        r"after 1970, among epoch seconds \(such as '1051747200' on line 2\): write "
                                        "every release one way"):
        _items(tmp_path, ("release_ts",), [("1051747200",), ("1995",), ("",)])


def test_epoch_seconds_with_small_values_outside_the_years_are_read_as_seconds(tmp_path):
    dataset = _items(tmp_path, ("release_ts",), [("100",), ("1051747200",), ("-5",)])
    assert dataset.catalog.release_ts.tolist() == [100, 1051747200, -5]


# ------------------------------------------------------------- 4. errors never quote a user id

def test_a_byte_order_mark_in_a_user_id_is_named_without_the_id(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"user_id": "jane@corp.com", "item_id": "i1", "timestamp": 1700000000}\n'
                    f'{{"user_id": "\\ufeff{EMAIL}", "item_id": "i2", "timestamp": 1700000001}}\n')
    with pytest.raises(DataError, match=r"^log.jsonl:2: column 'user_id' holds a byte order mark") as err:
        import_dataset("jsonl", path)
    assert "john" not in str(err.value) and "@" not in str(err.value)


def test_a_user_id_read_as_the_time_is_described_not_quoted(tmp_path):
    log = _write(tmp_path / "swap.csv", ("account", "track", "ts"), [(EMAIL, "t1", "1700000000")])
    with pytest.raises(DataError, match="swap.csv:2: column 'account' must hold a timestamp .*, found text of 17 "
                                        "characters holding '@'") as err:
        import_dataset("csv", log, columns=ColumnMap(user="track", item="ts", time="account"))
    assert "john" not in str(err.value)
    typo = _write(tmp_path / "typo.csv", ("user_id", "item_id", "timestamp"), [("u1", "i1", "2020-13-45")])
    with pytest.raises(DataError, match="found '2020-13-45'"):  # a time with a typo is still shown
        import_dataset("csv", typo)
