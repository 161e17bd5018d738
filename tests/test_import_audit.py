"""An outside auditor's pass over `edgerec data import`: numbers that fit the file but not the column they are
stored in, error lines after quoted fields that span lines, and item tables whose descriptions run over
several lines. Whatever an import accepts must read back from the folder it wrote."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgerec.data import ColumnMap, ReadOptions, import_dataset, load_dataset, save_dataset
from edgerec.errors import DataError

LOG = "user_id,item_id,timestamp\nu1,a,100\nu1,b,200\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_a_value_the_import_accepts_reads_back_from_the_folder(tmp_path_factory, value):
    """1e300 is a finite float64 but an infinity in the float32 column: it was imported, written as `inf`,
    and the folder could no longer be read."""
    folder = tmp_path_factory.mktemp("value")
    path = folder / "log.csv"
    path.write_text(f"user_id,item_id,timestamp,value\nu1,a,100,{value!r}\n")
    try:
        dataset = import_dataset("csv", path)
    except DataError as exc:
        assert abs(value) > float(np.finfo(np.float32).max)
        assert "log.csv:2: column 'value'" in str(exc) and "too large" in str(exc)
        return
    save_dataset(dataset, folder / "out")
    again = load_dataset(folder / "out")
    assert again.interactions.value.tolist() == pytest.approx([round(float(np.float32(value)), 4)], rel=1e-6)


@pytest.mark.parametrize("cell", ["1e39", "-1e39", "1e300"])
def test_a_duration_too_large_for_its_column_is_named_at_its_line(tmp_path, cell):
    (tmp_path / "log.csv").write_text(LOG)
    (tmp_path / "items.csv").write_text(f"item_id,duration\na,10\nb,{cell}\n")
    with pytest.raises(DataError, match=r"items.csv:3: column 'duration' holds .*too large"):
        import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.csv")


@pytest.mark.parametrize("cell", ["3000000000", "-3000000000", "3e9", "1e20"])
def test_an_episode_number_too_large_for_its_column_is_refused_not_wrapped(tmp_path, cell):
    """3000000000 was stored as episode -2147483648, silently."""
    (tmp_path / "log.csv").write_text(LOG)
    (tmp_path / "items.csv").write_text(f"item_id,episode\na,1\nb,{cell}\n")
    with pytest.raises(DataError, match=r"items.csv:3: column 'episode' holds .* -2147483648 to 2147483647"):
        import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.csv")


# item ids, quoted as they may hold line breaks; a last row whose id is too long for the device follows them
ids = st.lists(st.sampled_from(["a", "b c", "two\nlines", "three\nshort\nlines", 'say ""hi""\nthere']),
               min_size=1, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=ids, crlf=st.booleans(), chunk_rows=st.sampled_from([1, 2, 200_000]), skip=st.booleans())
def test_an_error_after_quoted_fields_that_span_lines_names_the_true_line(tmp_path_factory, items, crlf,
                                                                           chunk_rows, skip):
    """Rows were counted, not lines: after a quoted field over two lines every error named a line too early."""
    end = "\r\n" if crlf else "\n"
    # the fields over several lines sit in a column nothing reads (ids with line breaks are refused)
    rows = [f'u1,i{n},{100 + n},"{item}"' for n, item in enumerate(items)]
    if skip:  # a short row, left out with --skip-bad-rows, keeps the chunk's line list in play
        rows.insert(0, "u1,only two")
    text = "".join(f"{row}\n" for row in ["user_id,item_id,timestamp,note", *rows, "u2," + "z" * 300 + ",1,x"]
                   ).replace("\n", end)
    path = tmp_path_factory.mktemp("lines") / "log.csv"
    path.write_bytes(text.encode())
    bad_line = text.count(end, 0, text.index("u2,z")) + 1
    with pytest.raises(DataError, match=rf"log.csv:{bad_line}: column 'item_id' holds an id of 300 characters"):
        import_dataset("csv", path, options=ReadOptions(chunk_rows=chunk_rows, skip_bad_rows=skip))


@pytest.mark.parametrize("description", ["First paragraph.\nStars: Ann, Bob, Cy.",
                                         "Line one\nline two\nWith Ann, Bob, Cy"])
def test_a_description_over_several_lines_with_commas_imports(tmp_path, description):
    """A quoted description whose second line held as many commas as the row was refused as an open quote
    swallowing rows; a swallowed row sits between the field's first and last line, never at its end."""
    (tmp_path / "log.csv").write_text(LOG)
    quoted = description.replace('"', '""')
    (tmp_path / "items.csv").write_text(f'item_id,title,description\na,Alpha,"{quoted}"\nb,Beta,plain\n')
    dataset = import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.csv")
    assert dataset.catalog.text["description"] == [description, "plain"]
    save_dataset(dataset, tmp_path / "out")
    assert load_dataset(tmp_path / "out").catalog.text["description"] == [description, "plain"]


@pytest.mark.parametrize("text", ['u1,"i1\nu2,i2,200\nu3,"i3",300\n', 'u1,i1,100\nu2,i2,"late\nu3,i3,300\n'])
def test_an_open_quote_that_swallows_one_row_is_still_named(tmp_path, text):
    """One whole row between the field's first and last line, or a quote open to the end of the file."""
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\n" + text)
    with pytest.raises(DataError, match=r"log.csv:[23]: a quoted field runs over several lines and holds whole rows"):
        import_dataset("csv", path)


@pytest.mark.parametrize("blank", [" ", "   ", "\t", "\u00a0"])
@pytest.mark.parametrize("column", ["user_id", "item_id"])
def test_an_id_of_only_spaces_is_a_missing_id_not_one_user_for_all_blank_rows(tmp_path, blank, column):
    """Every row whose user was blank became one user '   ' (and one item, for blank item ids), silently."""
    rows = [("u1", "a", 1), ("u2", "b", 2), ("u3", "c", 3)]
    rows[1] = (blank, "b", 2) if column == "user_id" else ("u2", blank, 2)
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    with pytest.raises(DataError, match=rf"log.csv:3: column '{column}' is empty"):
        import_dataset("csv", path)
    kept = import_dataset("csv", path, options=ReadOptions(skip_bad_rows=True))
    assert len(kept.interactions) == 2 and kept.meta["skipped_rows"]["no user or item id"]["first_lines"] == [3]


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "iso-8859-15"])
def test_utf8_text_read_with_a_one_byte_encoding_is_refused_not_garbled(tmp_path, encoding):
    """--encoding serves the log and --items alike: following the hint for a Latin-1 item table turned the UTF-8
    log's 'Jürgen' into 'JÃ¼rgen', silently."""
    path = tmp_path / "log.csv"
    path.write_bytes("user_id,item_id,timestamp\nu1,a,1\nJürgen,b,2\n".encode())
    with pytest.raises(DataError, match=rf"log.csv:3: .*UTF-8, read as {encoding} \('ü' became 'Ã.'\)") as err:
        import_dataset("csv", path, options=ReadOptions(encoding=encoding))
    assert "rgen" not in str(err.value)  # the id is not shown (tests/test_data_boundary_audit.py)
    path.write_bytes("user_id,item_id,timestamp\nJürgen,b,2\n".encode("latin-1"))  # Latin-1 indeed: read as such
    assert import_dataset("csv", path, options=ReadOptions(encoding=encoding)).user_ids == ["Jürgen"]


def test_the_item_table_may_have_its_own_encoding(tmp_path):
    from click.testing import CliRunner

    from edgerec.cli.main import cli

    (tmp_path / "log.csv").write_bytes("user_id,item_id,timestamp\nJürgen,a,1\nJürgen,b,2\n".encode())
    (tmp_path / "items.csv").write_bytes("item_id,title\na,Café\nb,Naïve\n".encode("latin-1"))
    result = CliRunner().invoke(cli, ["data", "import", "csv", str(tmp_path / "log.csv"), "--items",
                                      str(tmp_path / "items.csv"), "--items-encoding", "latin-1", "--out",
                                      str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    dataset = load_dataset(tmp_path / "out")
    assert dataset.user_ids == ["Jürgen"] and dataset.catalog.text["title"] == ["Café", "Naïve"]


def test_an_items_encoding_without_an_item_table_is_refused(tmp_path):
    from edgerec.errors import ConfigError

    (tmp_path / "log.csv").write_text(LOG)
    with pytest.raises(ConfigError, match="--items-encoding .* with --items"):
        import_dataset("csv", tmp_path / "log.csv", items_encoding="latin-1")


def test_modalities_are_read_in_any_case_and_an_unknown_one_is_named(tmp_path):
    """'FILM' was kept as written, a modality the device does not know (no film verb, context or domain for it),
    and so was 'movie', silently."""
    (tmp_path / "log.csv").write_text(LOG)
    items = tmp_path / "items.csv"
    items.write_text("item_id,modality\na, Film \nb,\n")
    dataset = import_dataset("csv", tmp_path / "log.csv", items=items)
    assert dataset.catalog.text["modality"] == ["film", ""]
    items.write_text("item_id,modality\na,film\nb,movie\n")
    with pytest.raises(DataError, match=r"items.csv:3: unknown modality 'movie'; expected one of film, series_episode"):
        import_dataset("csv", tmp_path / "log.csv", items=items)


@pytest.mark.parametrize(("name", "flag"), [("Event", ", or pass --event-col Event"),
                                            ("VALUE", ", or pass --value-col VALUE"), ("Device", "$")])
def test_an_optional_log_column_named_in_another_case_is_not_silently_ignored(tmp_path, name, flag):
    """A log whose header said 'Event' imported every skip and like as a play of value 1, silently."""
    path = tmp_path / "log.csv"
    path.write_text(f"user_id,item_id,timestamp,{name}\nu1,a,1,skip\n")
    with pytest.raises(DataError, match=rf"log.csv: column '{name}' is edgerec's '{name.lower()}' in another case: "
                                        rf"rename it{flag}"):
        import_dataset("csv", path)
    if name != "Device":  # the flag reads it
        role = name.lower()
        columns = ColumnMap(**{role: name})
        path.write_text(f"user_id,item_id,timestamp,{name}\nu1,a,1,{'skip' if role == 'event' else '0.5'}\n")
        log = import_dataset("csv", path, columns=columns).interactions
        assert (log.event.tolist(), log.value.tolist()) == (([2], [1.0]) if role == "event" else ([0], [0.5]))


@pytest.mark.parametrize("name", ["Title", "GENRE", "Duration", "Tags"])
def test_an_item_column_named_in_another_case_is_not_silently_ignored(tmp_path, name):
    """An item table with 'Title' and 'Genre' imported items without titles or genres, silently."""
    (tmp_path / "log.csv").write_text(LOG)
    (tmp_path / "items.csv").write_text(f"item_id,{name}\na,1\nb,2\n")
    with pytest.raises(DataError, match=rf"items.csv: column '{name}' is edgerec's '{name.lower()}' in another case: "
                                        "rename it"):
        import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.csv")


def test_comma_separated_tags_split_with_tag_sep_and_reach_the_folder_as_tags(tmp_path):
    from click.testing import CliRunner

    from edgerec.cli.main import cli

    (tmp_path / "log.csv").write_text(LOG)
    (tmp_path / "items.csv").write_text('item_id,tags\na,"rock, pop, rock"\nb,jazz\n')
    args = ["data", "import", "csv", str(tmp_path / "log.csv"), "--items", str(tmp_path / "items.csv")]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "whole")], catch_exceptions=False)
    assert result.exit_code == 0 and "import again with --tag-sep ','" in result.output
    assert load_dataset(tmp_path / "whole").catalog.tags == [("rock, pop, rock",), ("jazz",)]
    result = CliRunner().invoke(cli, [*args, "--tag-sep", ",", "--out", str(tmp_path / "split")],
                                catch_exceptions=False)
    assert result.exit_code == 0 and "--tag-sep" not in result.output
    assert load_dataset(tmp_path / "split").catalog.tags == [("rock", "pop"), ("jazz",)]


def test_tags_separated_by_bars_give_no_comma_warning(tmp_path):
    (tmp_path / "log.csv").write_text(LOG)
    items = tmp_path / "items.csv"
    items.write_text('item_id,tags\na,"rock, indie|pop"\nb,"folk, acoustic"\n')
    dataset = import_dataset("csv", tmp_path / "log.csv", items=items)
    assert dataset.catalog.tags == [("rock, indie", "pop"), ("folk, acoustic",)]
    assert "warnings" not in dataset.meta


def test_a_tag_holding_the_folders_bar_is_refused_at_its_line(tmp_path):
    """With --tag-sep ',' a tag 'a|b' would come back from the folder and the bundle as two tags."""
    (tmp_path / "log.csv").write_text(LOG)
    items = tmp_path / "items.csv"
    items.write_text('item_id,tags\na,rock\nb,"drum|bass, pop"\n')
    with pytest.raises(DataError, match=r"items.csv:3: the tag 'drum\|bass' holds '\|'"):
        import_dataset("csv", tmp_path / "log.csv", items=items, options=ReadOptions(tag_separator=","))


@pytest.mark.parametrize("separator", ["", '"', "\n", 3])
def test_a_tag_separator_that_cannot_split_cells_is_refused(separator):
    from edgerec.errors import ConfigError

    with pytest.raises(ConfigError, match="tag separator"):
        ReadOptions(tag_separator=separator)
