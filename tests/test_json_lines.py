"""JSON Lines logs and catalogs (`data import jsonl`): replicas of Amazon reviews' 2018 and 2023 layouts
(gzip, nested category lists, optional keys, times in ms), every value read as a CSV cell would hold it,
and each malformed line refused at its number or left out with --skip-bad-rows."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from click.testing import CliRunner
from documented import run_documented
from hypothesis import given, settings
from hypothesis import strategies as st

from edgerec.cli.main import cli
from edgerec.data import ReadOptions, import_dataset
from edgerec.data.json_lines import ListCell, cell
from edgerec.data.loaders import ColumnMap
from edgerec.data.schema import EVENT_CODE, EVENTS
from edgerec.data.store import load_dataset
from edgerec.data.tables import read_chunks, read_header
from edgerec.errors import ConfigError, DataError

AMAZON_2018 = ColumnMap(user="reviewerID", item="asin", time="unixReviewTime", value="overall", default_event="rate")


def _write(path, rows, compress=False):
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _review(user, asin, t, stars, **extra):
    return {"overall": stars, "verified": True, "reviewTime": "09 13, 2009", "reviewerID": user, "asin": asin,
            "reviewerName": "A Name", "reviewText": 'A "great" album', "unixReviewTime": t, **extra}


@pytest.fixture
def amazon(tmp_path):
    reviews = [_review("A1", "B01", 1_252_800_000, 5.0, vote="2"), _review("A1", "B02", 1_252_800_000, 3.0),
               _review("A2", "B01", 1_252_900_000, 4.0, style={"Format:": " Audio CD"}),
               _review("A2", "B03", 1_252_900_100, 1.0), _review("A1", "B03", 1_252_800_500, 2.0)]
    meta = [{"asin": "B01", "title": "Blue", "category": [["CDs & Vinyl", "Jazz"], "Cool Jazz"],
             "description": ["First part.", "Second."], "brand": "Miles", "price": "$9.99"},
            {"asin": "B02", "title": "Kind of Green", "category": ["CDs & Vinyl", "Jazz"], "brand": "Miles"},
            {"asin": "B03", "title": "Nevermind", "category": [], "description": [], "brand": None}]
    return (_write(tmp_path / "Digital_Music.json.gz", reviews, compress=True),
            _write(tmp_path / "meta_Digital_Music.jsonl", meta))


def test_amazon_2018_reviews_and_metadata_import_as_ratings_with_tags(amazon):
    reviews, meta = amazon
    dataset = import_dataset("jsonl", reviews, columns=AMAZON_2018, items=meta,
                             item_columns={"tags": "category", "creator": "brand"})
    log, cat = dataset.interactions, dataset.catalog
    assert set(log.event.tolist()) == {EVENT_CODE["rate"]}
    user_a1 = log.user == dataset.user_ids.index("A1")
    assert [cat.item_ids[i] for i in log.item[user_a1]] == ["B01", "B02", "B03"]  # tied times keep file order
    assert log.value[user_a1].tolist() == [5.0, 3.0, 2.0]
    assert cat.tags[0] == ("CDs & Vinyl", "Jazz", "Cool Jazz") and cat.tags[2] == ()
    assert cat.text["description"] == ["First part. Second.", "", ""]
    assert cat.text["creator"] == ["Miles", "Miles", ""]
    assert any("'price' were not read" in w for w in dataset.meta["warnings"])


def test_amazon_2023_layout_with_times_in_milliseconds(tmp_path):
    rows = [{"rating": 5.0, "title": "Nice", "text": "ok", "images": [], "asin": "B0X", "parent_asin": "B0P",
             "user_id": "AGX", "timestamp": 1588687728923, "helpful_vote": 0, "verified_purchase": True},
            {"rating": 2.0, "title": "Meh", "text": "", "images": [{"small_image_url": "u"}], "asin": "B0Y",
             "parent_asin": "B0Q", "user_id": "AGX", "timestamp": 1588687729000, "helpful_vote": 3,
             "verified_purchase": False}]
    path = _write(tmp_path / "Music.jsonl", rows)
    dataset = import_dataset("jsonl", path, options=ReadOptions(time_unit="ms"), columns=ColumnMap(
        user="user_id", item="parent_asin", time="timestamp", value="rating", default_event="rate"))
    assert dataset.catalog.item_ids == ["B0P", "B0Q"]
    assert dataset.interactions.timestamp.tolist() == [1588687728, 1588687729]  # the object in 'images' is not read


def test_values_read_as_the_text_a_csv_cell_would_hold():
    path = None
    assert cell(4.0 and "4", "k", path, 1) == "4"
    assert json.loads('{"a": 4.0}', parse_float=lambda s: s)["a"] == "4.0"  # what _number then trims
    from edgerec.data.json_lines import _parse

    parsed = _parse('{"id": 12345678901234567890, "r": 4.0, "x": 1e3, "f": 0.1, "n": null, "b": true, "nan": NaN}')
    assert {k: cell(v, k, path, 1) for k, v in parsed.items()} == {
        "id": "12345678901234567890", "r": "4", "x": "1e3", "f": "0.1", "n": "", "b": "true", "nan": ""}
    listed = cell(["a", ["b", None, 3]], "tags", path, 1)
    assert isinstance(listed, ListCell) and listed == "a|b|3" and listed.items == ("a", "b", "3")


def test_header_is_every_key_of_the_first_objects_in_order(tmp_path):
    path = _write(tmp_path / "log.ndjson", [{"user_id": "u", "item_id": "a", "timestamp": 1},
                                            {"user_id": "u", "item_id": "b", "timestamp": 2, "value": 0.5}])
    assert read_header(path) == ["user_id", "item_id", "timestamp", "value"]
    (chunk,) = read_chunks(path, ["item_id", "value"])
    assert chunk.columns == {"item_id": ["a", "b"], "value": ["", "0.5"]}
    assert [chunk.line_of(i) for i in range(2)] == [1, 2]


def test_blank_lines_crlf_and_a_byte_order_mark_are_read(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"user_id": "u", "item_id": "a", "timestamp": 1}\r\n\r\n'
                     b'{"user_id": "u", "item_id": "b", "timestamp": 2}\r\n')
    (chunk,) = read_chunks(path, ["item_id"])
    assert chunk.columns["item_id"] == ["a", "b"] and chunk.line_of(1) == 3


def test_a_line_that_is_not_an_object_is_refused_at_its_number_or_counted(tmp_path):
    rows = [{"user_id": "u", "item_id": "a", "timestamp": 1}, '{"user_id": "u", "item_id": ', "[1, 2]",
            {"user_id": "u", "item_id": "b", "timestamp": 2}]
    path = _write(tmp_path / "log.jsonl", rows)
    with pytest.raises(DataError) as err:
        import_dataset("jsonl", path)
    assert str(err.value).startswith("log.jsonl:2: the line is not JSON (")
    assert "--skip-bad-rows" in str(err.value)
    dataset = import_dataset("jsonl", path, options=ReadOptions(skip_bad_rows=True))
    assert dataset.catalog.item_ids == ["a", "b"]
    assert dataset.meta["skipped_rows"] == {"not a JSON object": {"rows": 2, "first_lines": [2, 3]}}


def test_an_object_value_and_a_list_of_ids_are_refused_by_field(tmp_path):
    path = _write(tmp_path / "log.jsonl", [{"user_id": "u", "item_id": {"id": 1}, "timestamp": 1}])
    with pytest.raises(DataError, match=r"log.jsonl:1: field 'item_id' holds an object \(with keys id\); edgerec reads text"):
        import_dataset("jsonl", path)
    path = _write(tmp_path / "log.jsonl", [{"user_id": "u", "item_id": ["a", "b"], "timestamp": 1}])
    with pytest.raises(DataError, match=r"log.jsonl:1: column 'item_id' holds a list where one id"):
        import_dataset("jsonl", path)


def test_a_missing_time_names_skip_bad_rows_and_is_left_out_with_it(tmp_path):
    path = _write(tmp_path / "log.jsonl", [{"user_id": "u", "item_id": "a", "timestamp": 1},
                                          {"user_id": "u", "item_id": "b", "timestamp": None},
                                          {"user_id": "u", "item_id": "c"}])
    with pytest.raises(DataError, match="--skip-bad-rows"):
        import_dataset("jsonl", path)
    dataset = import_dataset("jsonl", path, options=ReadOptions(skip_bad_rows=True))
    assert len(dataset.interactions.user) == 1


def test_format_and_option_mistakes_are_named(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,timestamp\nu,a,1\n")
    with pytest.raises(ConfigError, match="FORMAT jsonl reads files named .jsonl, .ndjson, .json"):
        import_dataset("jsonl", log)
    path = _write(tmp_path / "log.jsonl", [{"user_id": "u", "item_id": "a", "timestamp": 1}])
    with pytest.raises(ConfigError, match="a JSON Lines file names its fields itself"):
        import_dataset("jsonl", path, options=ReadOptions(header=("user_id", "item_id", "timestamp")))
    empty = _write(tmp_path / "none.jsonl", ["", "  "])
    with pytest.raises(DataError, match="holds no JSON object; expected one object per line"):
        import_dataset("jsonl", empty)
    (tmp_path / "csv.jsonl").write_text("user_id,item_id,timestamp\nu,a,1\n")
    with pytest.raises(DataError, match=r"holds no JSON object \(line 1 is not JSON \(Expecting value at character "
                                        r"1\)\); expected one object per line, each with its fields: is it a CSV"):
        import_dataset("jsonl", tmp_path / "csv.jsonl")


def test_lists_nested_as_deep_as_json_reads_flatten_and_deeper_ones_are_named(tmp_path):
    def line(depth):
        return '{"user_id": "u", "item_id": "a", "timestamp": 1, "tags": ' + "[" * depth + '"x", "y"' + \
            "]" * depth + "}"

    (chunk,) = read_chunks(_write(tmp_path / "deep.jsonl", [line(900)]), ["tags"])
    assert chunk.columns["tags"][0].items == ("x", "y")
    with pytest.raises(DataError, match=r"line 1 is JSON nested too deep\); expected one object per line, each "
                                        r"with its fields$"):
        list(read_chunks(_write(tmp_path / "deeper.jsonl", [line(100_000)]), ["tags"]))
    path = _write(tmp_path / "mixed.jsonl", [line(1), line(100_000), line(2)])
    with pytest.raises(DataError, match=r"mixed.jsonl:2: the line is JSON nested too deep"):
        list(read_chunks(path, ["tags"]))


def test_default_event_is_checked_and_never_overrides_an_event_column(tmp_path):
    with pytest.raises(ConfigError, match="the default event is one of"):
        ColumnMap(default_event="watch")
    rows = [{"user_id": "u", "item_id": "a", "timestamp": 1, "event": "like"},
            {"user_id": "u", "item_id": "b", "timestamp": 2, "event": ""},
            {"user_id": "u", "item_id": "c", "timestamp": 3},
            {"user_id": "u", "item_id": "d", "timestamp": 4, "event": None}]
    path = _write(tmp_path / "log.jsonl", rows)
    dataset = import_dataset("jsonl", path, columns=ColumnMap(default_event="skip"))
    assert [EVENTS[c] for c in dataset.interactions.event] == ["like", "skip", "skip", "skip"]
    assert dataset.meta["default_event"] == {"event": "skip", "rows": 3}
    with pytest.raises(DataError) as err:  # without it, a row without an event is refused, never a silent play
        import_dataset("jsonl", path)
    assert str(err.value) == ("log.jsonl:2: no event on this row: its 'event' field is empty or missing while other "
                              "rows have one; name the event of such rows with --default-event (e.g. play), or fill "
                              "them in")


def test_the_command_line_offers_every_log_event_as_default():
    from edgerec.cli.data_cmd import import_

    option = next(p for p in import_.params if p.name == "default_event")
    assert sorted(option.type.choices) == sorted(EVENTS)


def test_the_command_line_imports_a_gzipped_review_log(amazon, tmp_path):
    reviews, meta = amazon
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [
        "data", "import", "jsonl", str(reviews), "--items", str(meta), "--out", str(out),
        "--user-col", "reviewerID", "--item-col", "asin", "--time-col", "unixReviewTime", "--value-col", "overall",
        "--default-event", "rate", "--item-columns", "tags=category"])
    assert result.exit_code == 0, result.output
    dataset = load_dataset(out)
    assert len(dataset.interactions.user) == 5 and dataset.catalog.tags[1] == ("CDs & Vinyl", "Jazz")


_ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"),
                             exclude_characters="\ufeff"), min_size=1, max_size=6)  # a byte order mark: refused


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(_ids, _ids, st.integers(0, 2_000_000_000), st.floats(0, 5, allow_nan=False)),
                min_size=1, max_size=25))
def test_a_log_reads_the_same_from_json_lines_as_from_csv(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("same")
    jsonl = _write(folder / "log.jsonl", [{"user_id": u, "item_id": i, "timestamp": t, "value": v}
                                          for u, i, t, v in rows])
    csv_path = folder / "log.csv"
    import csv

    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "timestamp", "value"])
        writer.writerows([u, i, t, repr(v)] for u, i, t, v in rows)
    a, b = import_dataset("jsonl", jsonl), import_dataset("csv", csv_path)
    assert a.user_ids == b.user_ids and a.catalog.item_ids == b.catalog.item_ids
    for field in ("user", "item", "timestamp", "event", "value"):
        assert np.array_equal(getattr(a.interactions, field), getattr(b.interactions, field)), field


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 50])
def test_chunks_of_any_size_hold_the_same_rows_and_lines(tmp_path, chunk_rows):
    rows = [{"user_id": "u", "item_id": f"i{n}", "timestamp": n} for n in range(5)]
    path = _write(tmp_path / "log.jsonl", [rows[0], "", *rows[1:]])
    chunks = list(read_chunks(path, ["item_id"], chunk_rows=chunk_rows))
    assert [len(c) for c in chunks] == [min(chunk_rows, 5 - start) for start in range(0, 5, chunk_rows)]
    assert [v for c in chunks for v in c.columns["item_id"]] == [f"i{n}" for n in range(5)]
    assert [c.line_of(i) for c in chunks for i in range(len(c))] == [1, 3, 4, 5, 6]


def test_a_key_first_seen_after_a_thousand_objects_is_a_column(tmp_path):
    from edgerec.data.json_lines import HEADER_LINES

    rows = [{"user_id": "u", "item_id": "a", "timestamp": 1}] * (HEADER_LINES + 200)
    path = _write(tmp_path / "log.jsonl", [*rows, {"late": 1, "user_id": "u"}, {"later": 2}])
    assert read_header(path) == ["user_id", "item_id", "timestamp", "late", "later"]
    chunks = list(read_chunks(path, ["later", "item_id"], chunk_rows=500))
    assert [v for c in chunks for v in c.columns["later"]] == [""] * (HEADER_LINES + 201) + ["2"]
    with pytest.raises(DataError, match=r"^log.jsonl:1: missing column\(s\) latest; "):
        list(read_chunks(path, ["latest"]))


def test_an_event_field_that_appears_late_is_not_read_as_plays(tmp_path):
    """It was left out (every row a play, its skips too); now its rows without one are refused by line."""
    rows = [{"user_id": f"u{i % 7}", "item_id": f"i{i % 40}", "timestamp": i} for i in range(1_100)]
    rows += [{"user_id": "u1", "item_id": "i3", "timestamp": 2_000, "event": "skip"}]
    with pytest.raises(DataError) as err:
        import_dataset("jsonl", _write(tmp_path / "log.jsonl", rows))
    assert str(err.value) == ("log.jsonl:1: no event on this row: its 'event' field is empty or missing while other "
                              "rows have one; name the event of such rows with --default-event (e.g. play), or fill "
                              "them in")


def test_an_item_field_that_appears_late_is_imported(tmp_path):
    from edgerec.data.item_import import read_item_table

    items = [{"item_id": f"i{i}", "title": f"Film {i}"} for i in range(1_100)]
    items[-1]["description"] = "A late description."
    path = _write(tmp_path / "items.jsonl", items)
    catalog, _ = read_item_table(path)
    assert catalog.text["description"][-1] == "A late description." and catalog.text["description"][0] == ""


def test_a_file_without_an_object_in_its_first_lines_is_refused_there(tmp_path):
    from edgerec.data.json_lines import HEADER_LINES

    lines = ["user_id,item_id,timestamp"] + ["u,a,1"] * HEADER_LINES + [json.dumps({"user_id": "u"})]
    with pytest.raises(DataError, match=r"^log.jsonl: file holds no JSON object \(line 1 is not JSON"):
        read_header(_write(tmp_path / "log.jsonl", lines))


def test_the_read_looks_for_keys_only_until_it_has_the_wanted_ones(tmp_path):
    from edgerec.data.json_lines import json_header
    from edgerec.data.tables import _open_text

    path = _write(tmp_path / "log.jsonl", [{"user_id": "u", "item_id": "a"}, {"timestamp": 1}, {"late": 2}])
    opener = lambda: _open_text(path, "utf-8")  # noqa: E731
    assert json_header(path, opener) == ["user_id", "item_id", "timestamp", "late"]
    assert json_header(path, opener, lambda keys: "timestamp" in keys) == ["user_id", "item_id", "timestamp"]


def test_cells_of_every_json_kind():
    from edgerec.data.json_lines import _parse

    parsed = _parse('{"t": true, "f": false, "big": ' + "9" * 5000 + "}")
    assert cell(parsed["t"], "t", None, 1) == "true" and cell(parsed["f"], "f", None, 1) == "false"
    assert cell(parsed["big"], "big", None, 1) == "9" * 5000  # past int's 4,300-digit limit: kept as text
    with pytest.raises(DataError) as err:
        cell({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}, "k", "x.jsonl", 7)
    assert str(err.value) == ("x.jsonl:7: field 'k' holds an object (with keys a, b, c, d, e, ...); edgerec reads "
                              "text, numbers and lists: flatten it first (pandas: json_normalize) or leave the field "
                              "out")
    with pytest.raises(DataError) as err:
        cell({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}, "k", "x.jsonl", 7)
    assert "(with keys a, b, c, d, e);" in str(err.value)
    with pytest.raises(DataError) as err:
        cell(["ok", {"x": 1}], "tags", "x.jsonl", 8)
    assert str(err.value).startswith("x.jsonl:8: field 'tags' holds an object (with keys x)")
    with pytest.raises(DataError) as err:
        cell(object(), "k", "x.jsonl", 9)
    assert str(err.value) == "x.jsonl:9: field 'k' holds a value edgerec cannot read (object)"


def test_a_line_of_another_json_kind_is_named(tmp_path):
    path = _write(tmp_path / "log.jsonl", [{"user_id": "u", "item_id": "a", "timestamp": 1}, "[1, 2]"])
    with pytest.raises(DataError) as err:
        list(read_chunks(path, ["item_id"]))
    assert str(err.value) == ("log.jsonl:2: the line is a JSON list, not an object; each line of a JSON Lines file "
                              "holds one object (--skip-bad-rows leaves such lines out)")
    for read in (read_header, lambda p: list(read_chunks(p))):
        with pytest.raises(DataError, match=r"^empty.jsonl: file holds no JSON object \(line 1 is a JSON str, not "
                                            r"an object\); expected one object per line, each with its fields$"):
            read(_write(tmp_path / "empty.jsonl", ['"just text"']))


def test_the_list_id_refusal_in_full(tmp_path):
    path = _write(tmp_path / "log.jsonl", [{"user_id": ["a", "b"], "item_id": "x", "timestamp": 1}])
    with pytest.raises(DataError) as err:
        import_dataset("jsonl", path)
    assert str(err.value) == ("log.jsonl:1: column 'user_id' holds a list where one id belongs; check which field "
                              "the options name")  # never the ids: a user's may be an e-mail address


def test_a_missing_field_is_named_at_line_1_of_its_file(tmp_path):
    path = _write(tmp_path / "log.jsonl", [{"user_id": "u", "item": "a", "timestamp": 1}])
    with pytest.raises(DataError) as err:
        import_dataset("jsonl", path)
    assert str(err.value).startswith("log.jsonl:1: missing column(s) item_id; the file has user_id, item, timestamp")


# ---------------------------------------------------------------- a file that is one JSON array


def _array_read(text: str, block: int, skipped=None) -> list[tuple[int, dict]]:
    import io

    from edgerec.data.json_lines import _array_objects

    return list(_array_objects(io.StringIO(text), "log.json", skipped, block))


def _object_lines(text: str) -> list[int]:
    """The line of each top-level element's first character, found independently of the reader."""
    out, depth, in_string, escaped, line = [], 0, False, False, 1
    for char in text:
        if in_string:
            escaped, in_string = (not escaped and char == "\\"), (escaped or char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth == 2:
                out.append(line)
        elif char in "]}":
            depth -= 1
        if char == "\n":
            line += 1
    return out


objects = st.dictionaries(st.text(max_size=5), st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                                                          st.lists(st.text(max_size=3), max_size=3)), max_size=4)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(objects, max_size=8), indent=st.sampled_from([None, 0, 1, 2]), block=st.integers(1, 40))
def test_an_array_file_reads_its_objects_at_their_lines_in_blocks_of_any_size(rows, indent, block):
    text = json.dumps(rows, indent=indent, ensure_ascii=False) + "\n"
    read = _array_read(text, block)
    assert [obj for _, obj in read] == [json.loads(json.dumps(r), parse_int=str, parse_float=str) for r in rows]
    assert [line for line, _ in read] == _object_lines(text)


def test_spotify_style_array_imports_as_the_same_log_as_json_lines(tmp_path):
    plays = [{"ts": f"2023-04-1{i}T15:56:00Z", "username": f"user{i % 2}", "ms_played": 1000 * i,
              "master_metadata_track_name": f"Track {i % 3}", "skipped": None} for i in range(6)]
    (tmp_path / "endsong_0.json").write_text(json.dumps(plays, indent=1))
    _write(tmp_path / "plays.jsonl", plays)
    columns = ColumnMap(user="username", item="master_metadata_track_name", time="ts")
    array = import_dataset("jsonl", tmp_path / "endsong_0.json", columns=columns)
    lines = import_dataset("jsonl", tmp_path / "plays.jsonl", columns=columns)
    assert array.catalog.item_ids == lines.catalog.item_ids
    assert np.array_equal(array.interactions.item, lines.interactions.item)
    assert np.array_equal(array.interactions.timestamp, lines.interactions.timestamp)
    assert read_header(tmp_path / "endsong_0.json") == list(plays[0])


@pytest.mark.parametrize("text, message", [
    ('[{"a": 1},\n {"a": 2}', "log.json:2: the JSON array is not closed: the file ends inside it (is it cut short?)"),
    ('[{"a": 1},\n {"a": 2', "log.json:2: the JSON array is not closed: the file ends inside it (is it cut short?)"),
    ('[{"a": t', "log.json:1: the JSON array is not closed: the file ends inside it (is it cut short?)"),  # 'true' cut
    ('[{"a": x}', "log.json:1: the array is not JSON here (Expecting value)"),
    ('[{"a": 1,\n  "b": tru}]', "log.json:2: the array is not JSON here (Expecting value)"),  # its line, not the object's
    ('[{"a": 1,\n  "b": tru\n}]', "log.json:2: the array is not JSON here (Expecting value)"),
    ('[{"a": 1},\n {"a": 2},\n {"b": tru}]', "log.json:3: the array is not JSON here (Expecting value)"),
    ('[{"a": 1},\n {"b": tru},\n' + '{"c": 2},\n' * 10 + "]",  # far from the block's end: judged at once
     "log.json:2: the array is not JSON here (Expecting value)"),
    ('{"a": 1}', "log.json:1: expected '[' to open the array, found '{'"),
    ('[{"a": ' + "[" * 100_000 + "]" * 100_000 + "}]", "log.json:1: an element of the array is JSON nested too deep"),
    ('[{"a": 1},\n {"a": "cut', "log.json:2: the JSON array is not closed: the file ends inside it (is it cut "
                                "short?)"),
    ('[{"a": 1}]\n[{"a": 2}]', "log.json:2: text after the JSON array's closing ']'; the file must hold one array"),
    ('[{"a": 1}\n {"a": 2}]', "log.json:2: expected ',' or ']' after an element of the array, found '{'"),
    ('[{"a": 1},\n\n {"a": tru}]', "log.json:3: the array is not JSON here (Expecting value)"),
    ('[{"a": 1},\n [1, 2]]', "log.json:2: the element is a JSON list, not an object; each element of a JSON array "
                             "file is one object (--skip-bad-rows leaves such elements out)"),
])
def test_a_broken_array_is_named_at_its_line(text, message):
    for block in (3, 1 << 20):
        with pytest.raises(DataError) as err:
            _array_read(text, block)
        assert str(err.value) == message


def test_an_element_that_is_no_object_is_counted_with_skip_bad_rows():
    from edgerec.data.tables import Skipped

    skipped = Skipped()
    read = _array_read('[{"a": 1},\n 7,\n {"a": 2}]', 4, skipped)
    assert read == [(1, {"a": "1"}), (3, {"a": "2"})]
    assert skipped.summary() == {"not a JSON object": {"rows": 1, "first_lines": [2]}}


def test_the_documented_spotify_command_imports_an_extended_streaming_history(tmp_path):
    """docs/data.md's command, run on a replica: one pretty-printed array, null reason_end on some plays,
    podcast episodes without a track."""

    def play(ts, user, artist, track, reason):
        return {"ts": ts, "username": user, "platform": "Android OS 9", "ms_played": 120_000, "conn_country": "DE",
                "master_metadata_track_name": track, "master_metadata_album_artist_name": artist,
                "spotify_track_uri": None if track is None else f"spotify:track:{track}", "episode_name": None,
                "reason_start": "trackdone", "reason_end": reason, "shuffle": False, "skipped": None}

    plays = [play("2023-04-10T15:56:00Z", "anna", "Sigur Rós", "Hoppípolla", "trackdone"),
             play("2023-04-10T16:01:00Z", "anna", "Björk", "Jóga", "fwdbtn"),
             play("2023-04-10T16:02:00Z", "anna", None, None, "endplay"),  # a podcast episode
             play("2023-04-10T16:40:00Z", "anna", "Björk", "Jóga", None),
             play("2023-04-11T08:00:00Z", "ben", "Sigur Rós", "Hoppípolla", "unexpected-exit-while-paused"),
             play("2023-04-11T08:05:00Z", "ben", "Björk", "Army of Me", "trackerror")]
    (tmp_path / "endsong_0.json").write_text(json.dumps(plays, indent=1, ensure_ascii=False), encoding="utf-8")
    result = run_documented("endsong_0.json", tmp_path / "endsong_0.json", tmp_path / "spotify")
    assert result.exit_code == 0, result.output
    dataset = load_dataset(tmp_path / "spotify")
    log = dataset.interactions
    assert [EVENTS[e] for e in log.event] == ["finish", "skip", "play", "play"]  # trackerror dropped
    assert [dataset.catalog.item_ids[i] for i in log.item] == ["Sigur Rós - Hoppípolla", "Björk - Jóga",
                                                               "Björk - Jóga", "Sigur Rós - Hoppípolla"]
    assert dataset.meta["default_event"] == {"event": "play", "rows": 1}
    assert dataset.meta["skipped_rows"]["no user or item id"]["first_lines"] == [32]  # "[", then 15 lines each


def test_an_array_file_is_read_a_block_at_a_time():
    """Never whole: every read asks for one block (a read() without a size held the file at once)."""
    import io

    from edgerec.data.json_lines import _array_objects, _starts_an_array

    class Reads(io.StringIO):
        sizes: list

        def read(self, size=-1):
            self.sizes.append(size)
            return super().read(size)

    text = json.dumps([{"a": i} for i in range(50)])
    handle = Reads(text)
    handle.sizes = []
    assert len(list(_array_objects(handle, "log.json", None, 16))) == 50
    assert set(handle.sizes) == {16}
    opened = Reads(" \n" * 50 + text)
    opened.sizes = []
    assert _starts_an_array(lambda: opened)
    assert opened.sizes == [4096]


@pytest.mark.parametrize("block", range(1, 12))
def test_a_number_element_cut_by_a_block_is_read_whole(block):
    from edgerec.data.tables import Skipped

    skipped = Skipped()
    assert _array_read('[123456789, {"a": 1.50, "b": 4.0, "c": NaN}]', block, skipped) == [
        (1, {"a": "1.50", "b": "4", "c": None})]  # numbers as written, as a JSON Lines cell holds them; NaN is null
    assert skipped.summary() == {"not a JSON object": {"rows": 1, "first_lines": [1]}}


def test_the_header_pass_gives_up_after_a_thousand_values_before_any_object(tmp_path):
    from edgerec.data.json_lines import HEADER_LINES

    late = ["7"] * (HEADER_LINES - 1) + [json.dumps({"user_id": "u"})]
    assert read_header(_write(tmp_path / "late.jsonl", late)) == ["user_id"]
    too_late = ["7"] * HEADER_LINES + [json.dumps({"user_id": "u"})]
    with pytest.raises(DataError, match=r"^too_late.jsonl: file holds no JSON object \(line 1 is a JSON str"):
        read_header(_write(tmp_path / "too_late.jsonl", too_late))
    # an object first: the values that are no object after it are only noted, and a key after them is read
    mixed = [json.dumps({"user_id": "u"})] + ["7"] * (HEADER_LINES + 5) + [json.dumps({"late": 1})]
    assert read_header(_write(tmp_path / "mixed.jsonl", mixed)) == ["user_id", "late"]


def test_a_broken_array_is_named_by_the_header_pass_too(tmp_path):
    path = tmp_path / "log.json"
    path.write_text('[{"a": 1}\n {"b": 2}]')
    with pytest.raises(DataError) as err:
        read_header(path)
    assert str(err.value) == "log.json:2: expected ',' or ']' after an element of the array, found '{'"


@pytest.mark.parametrize("lead", ["\u00a0", "X"])
def test_only_json_whitespace_may_come_before_an_arrays_bracket(tmp_path, lead):
    path = tmp_path / "log.json"
    path.write_text(lead + '[{"a": 1}]', encoding="utf-8")
    with pytest.raises(DataError, match=r"^log.json: file holds no JSON object \(line 1 is not JSON"):
        read_header(path)


def test_a_pretty_printed_object_is_named_as_one_document(tmp_path):
    """Spotify's Million Playlist slices: one object over many lines, its events nested in lists."""
    path = tmp_path / "mpd.slice.0-999.json"
    path.write_text(json.dumps({"info": {"slice": "0-999"}, "playlists": [
        {"pid": 0, "tracks": [{"pos": 0, "track_uri": "spotify:track:1"}]}]}, indent=4))
    with pytest.raises(DataError) as err:
        import_dataset("jsonl", path)
    assert str(err.value).startswith("mpd.slice.0-999.json:1: the file is one JSON object over many lines")
    assert str(err.value).endswith("(a Million Playlist Dataset slice imports as it is with FORMAT mpd)")
    path.write_text(json.dumps({"info": {"slice": "0-999"}}))  # compact: one line, one object without fields
    with pytest.raises(DataError) as err:
        import_dataset("jsonl", path)
    assert "one JSON object over many lines" not in str(err.value)
    other = tmp_path / "export.json"  # another pretty-printed object is not pointed at FORMAT mpd
    other.write_text(json.dumps({"a": 1, "b": [1, 2]}, indent=4))
    with pytest.raises(DataError) as err:
        import_dataset("jsonl", other)
    assert "one JSON object over many lines" in str(err.value) and "FORMAT mpd" not in str(err.value)


def test_half_a_character_from_a_json_escape_is_refused_by_its_line_not_a_crash(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"user_id": "u", "item_id": "a", "timestamp": 1}\n{"user_id": "u\\ud83d", "item_id": "b", '
                   '"timestamp": 2}\n')
    with pytest.raises(DataError) as err:
        import_dataset("jsonl", log)
    assert str(err.value) == ("log.jsonl:2: column 'user_id' holds half of a character (U+D83D, a JSON \\u escape "
                              "without its pair), which no text file can store; ids must be plain text")
    fine = tmp_path / "fine.jsonl"
    fine.write_text('{"user_id": "u", "item_id": "a", "timestamp": 1}\n')
    items = tmp_path / "items.jsonl"
    items.write_text('{"item_id": "a", "title": "smile \\ud83d"}\n')
    with pytest.raises(DataError) as err:
        import_dataset("jsonl", fine, items=items)
    assert str(err.value) == ("items.jsonl:1: column 'title' holds half of a character (U+D83D, a JSON \\u escape "
                              "without its pair), which no text file can store: remove it")
    items.write_text('{"item_id": "a", "title": "smile \\ud83d\\ude00"}\n')  # the whole pair is one character
    assert import_dataset("jsonl", fine, items=items).catalog.text["title"] == ["smile 😀"]
