"""FORMAT netflix: the Netflix Prize's ratings in per-film blocks and its film titles, in the Kaggle copy's
layout and the original's, built here as small replicas (no download)."""

from __future__ import annotations

import bz2
import gzip
from datetime import datetime, timezone

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgerec.cli.main import cli
from edgerec.data import ReadOptions, import_dataset
from edgerec.data.loaders import ColumnMap
from edgerec.data.schema import EVENTS
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError, DataError

BLOCKS_1 = "1:\n1488844,3,2005-09-06\n822109,5,2005-05-13\n2:\n1488844,4,2005-09-06\n30878,1,2004-12-01\n"
BLOCKS_2 = "3:\n822109,2,2005-05-12\n30878,4,2004-12-01\n"
TITLES = "1,2003,Dinosaur Planet\n2,NULL,Isle of Man TT 2004 Review\n3,1997,Character, the Sequel\n"


def kaggle(folder, titles=TITLES, first=BLOCKS_1, second=BLOCKS_2):
    folder.mkdir(exist_ok=True)
    (folder / "combined_data_1.txt").write_text(first)
    (folder / "combined_data_2.txt").write_text(second)
    if titles is not None:
        (folder / "movie_titles.csv").write_bytes(titles.encode("latin-1"))
    return folder


def rows(dataset):
    log = dataset.interactions
    return [(dataset.user_ids[u], dataset.catalog.item_ids[i], int(t), EVENTS[e], float(v))
            for u, i, t, e, v in zip(log.user, log.item, log.timestamp, log.event, log.value)]


DAY = {"2004-12-01": 1101859200, "2005-05-12": 1115856000, "2005-05-13": 1115942400, "2005-09-06": 1125964800}


def test_the_kaggle_folder_imports_ratings_by_day_with_titles(tmp_path):
    dataset = import_dataset("netflix", kaggle(tmp_path / "nf"))
    got = sorted(rows(dataset), key=lambda r: r[0])  # by user; each user's events in time order
    assert got == [("1488844", "1", DAY["2005-09-06"], "rate", 3.0), ("1488844", "2", DAY["2005-09-06"], "rate", 4.0),
                   ("30878", "2", DAY["2004-12-01"], "rate", 1.0), ("30878", "3", DAY["2004-12-01"], "rate", 4.0),
                   ("822109", "3", DAY["2005-05-12"], "rate", 2.0), ("822109", "1", DAY["2005-05-13"], "rate", 5.0)]
    catalog = dataset.catalog
    assert catalog.item_ids == ["1", "2", "3"]
    assert catalog.text["title"] == ["Dinosaur Planet", "Isle of Man TT 2004 Review", "Character, the Sequel"]
    assert catalog.text["description"][2] == "Character, the Sequel. A film."
    assert catalog.release_ts.tolist() == [1041379200, 0, 852076800]  # 2003, NULL, 1997
    assert dataset.meta["format"] == "netflix" and dataset.meta["source"] == "nf"
    assert "warnings" not in dataset.meta


def test_the_original_training_set_folder_and_latin_1_titles(tmp_path):
    folder = tmp_path / "download"
    (folder / "training_set").mkdir(parents=True)
    (folder / "training_set" / "mv_0000001.txt").write_text("1:\n7,4,2005-01-02\n")
    (folder / "training_set" / "mv_0000002.txt").write_text("2:\n7,5,2005-01-01\n")
    (folder / "movie_titles.txt").write_bytes("1,1999,Amélie\n2,2000,Jalla! Jalla!\n".encode("latin-1"))
    for path in (folder, folder / "training_set"):  # the download's folder, or its training_set folder
        dataset = import_dataset("netflix", path)
        assert [r[1] for r in rows(dataset)] == ["2", "1"]
        assert dataset.catalog.text["title"][0] == "Amélie"


def test_one_ratings_file_without_titles_says_so(tmp_path):
    path = kaggle(tmp_path / "nf", titles=None) / "combined_data_2.txt"
    dataset = import_dataset("netflix", path)
    assert dataset.catalog.item_ids == ["3"] and len(dataset.interactions) == 2
    assert "no movie_titles.csv beside the ratings" in dataset.meta["warnings"][0]


def test_compressed_ratings_files_read_as_plain_ones(tmp_path):
    folder = kaggle(tmp_path / "nf")
    plain = rows(import_dataset("netflix", folder))
    (folder / "combined_data_1.txt").write_bytes(gzip.compress(BLOCKS_1.encode()))
    (folder / "combined_data_2.txt").write_bytes(bz2.compress(BLOCKS_2.encode()))
    assert rows(import_dataset("netflix", folder)) == plain


@pytest.mark.parametrize("first, message", [
    ("1488844,3,2005-09-06\n", "combined_data_1.txt:1: a row before the first film line"),
    ("1:\n1488844,3\n", "combined_data_1.txt:2: film 1's ratings: not 3 fields; expected CustomerID,Rating,Date, "
                        "found 2 fields \\(or pass --skip-bad-rows"),
    ("1:\n1488844,6,2005-09-06\n", "combined_data_1.txt:2: .*rating"),
    ("1:\n1488844,3,2005-13-06\n", "combined_data_1.txt:2: column 'date'"),
    ("1:\n2:\n", "combined_data_1.txt: holds film lines but no ratings"),
    ("just text\n", "combined_data_1.txt:1: a row before the first film line"),
    ("9:\n1488844,3,2005-09-06\n", "item '9' is not in the item table"),
    ("1:\n7,3,20050906\n", "combined_data_1.txt:2: film 1's ratings: date not YYYY-MM-DD; found '20050906'"),
    ("1:\n7,3,2005-09-06\n8,4,2001", "combined_data_1.txt:3: film 1's ratings: date not YYYY-MM-DD; found '2001' "
                                     r"\(a line cut short\?\)"),
    ("1:\n7,3.5,2005-09-06\n", "combined_data_1.txt:2: film 1's ratings: stars '3.5', where a rating is a whole"),
    ("1:\n7,2005-09-06\n", "combined_data_1.txt:2: rows of CustomerID,Date are the Prize's qualifying set"),
    ("1:\n7,3,2005-09-06\n2a:\n8,4,2005-09-06\n", "combined_data_1.txt:3: a line ending in ':' that is no film line"),
])
def test_broken_ratings_are_named_by_file_and_line(tmp_path, first, message):
    with pytest.raises(DataError, match=message):
        import_dataset("netflix", kaggle(tmp_path / "nf", first=first))


@pytest.mark.parametrize("titles, message", [
    ("1,2003\n", "movie_titles.csv:1: expected MovieID,YearOfRelease,Title"),
    ("1,2003,A\n2,2003,B\n1,2004,C\n", "movie_titles.csv:3: film 1 is listed twice \\(first at line 1\\)"),
    ("1,03,A\n", "movie_titles.csv:1: the year of film 1 is '03'"),
    ("", "movie_titles.csv: holds no film"),
])
def test_broken_titles_are_named_by_line(tmp_path, titles, message):
    with pytest.raises(DataError, match=message):
        import_dataset("netflix", kaggle(tmp_path / "nf", titles=titles))


def test_a_folder_without_ratings_names_what_it_looks_for(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no Netflix Prize ratings"):
        import_dataset("netflix", tmp_path / "empty")


def test_skip_bad_rows_counts_short_rows_by_file_and_line(tmp_path):
    folder = kaggle(tmp_path / "nf", first="1:\n1488844,3,2005-09-06\n1488844,3\n2:\n30878,1,2004-12-01\n")
    dataset = import_dataset("netflix", folder, options=ReadOptions(skip_bad_rows=True))
    assert len(dataset.interactions) == 4
    assert dataset.meta["skipped_rows"] == {"not 3 fields": {"rows": 1, "first_lines": ["combined_data_1.txt:3"]}}


@pytest.mark.parametrize("kwargs, message", [
    (dict(options=ReadOptions(time_unit="ms")), "--time-unit is for FORMAT csv"),
    (dict(columns=ColumnMap(time=None)), "--no-time is for FORMAT csv"),
    (dict(items="movie_titles.csv"), "--items is for FORMAT csv"),
])
def test_options_of_other_formats_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        import_dataset("netflix", kaggle(tmp_path / "nf"), **kwargs)


def test_the_cli_imports_a_sample_of_customers(tmp_path):
    result = CliRunner().invoke(cli, ["data", "import", "netflix", str(kaggle(tmp_path / "nf")),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert rows(load_dataset(tmp_path / "out")) == rows(import_dataset("netflix", tmp_path / "nf"))
    assert str(tmp_path) not in result.output  # no host path


ratings = st.lists(st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 5), st.integers(0, 3)),
                   min_size=1, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ratings)
def test_blocks_import_as_the_same_log_as_a_csv_of_their_rows(tmp_path_factory, drawn):
    """Films in blocks, rows in any order within them: the same events as a CSV holding the rows, each
    customer's in time order."""
    folder = tmp_path_factory.mktemp("nf")
    by_film: dict[int, list] = {}
    for film, user, stars, day in drawn:
        if all(u != user for u, _, _ in by_film.get(film, [])):  # the Prize holds one rating a customer and film
            by_film.setdefault(film, []).append((user, stars, day))
    blocks, csv = [], ["user,item,rating,date"]
    for film, film_rows in by_film.items():  # films in the order first drawn, not sorted
        blocks.append(f"{film}:")
        for user, stars, day in film_rows:
            blocks.append(f"u{user},{stars},2005-01-0{day + 1}")
            csv.append(f"u{user},{film},{stars},2005-01-0{day + 1}")
    (folder / "combined_data_1.txt").write_text("\n".join(blocks) + "\n")
    (folder / "log.csv").write_text("\n".join(csv) + "\n")
    netflix = import_dataset("netflix", folder / "combined_data_1.txt")
    plain = import_dataset("csv", folder / "log.csv", columns=ColumnMap(
        user="user", item="item", time="date", value="rating", default_event="rate"))
    # the same events; a customer's ratings of one day in the hash's order (the CSV keeps the file's)
    assert sorted(rows(netflix)) == sorted(rows(plain))
    got = rows(netflix)
    assert all(a[0] != b[0] or a[2] <= b[2] for a, b in zip(got, got[1:]))  # in time order per customer


def test_one_ratings_file_finds_the_titles_beside_it(tmp_path):
    path = kaggle(tmp_path / "nf") / "combined_data_2.txt"
    dataset = import_dataset("netflix", path)
    assert dataset.catalog.text["title"][dataset.catalog.index["3"]] == "Character, the Sequel"
    assert "warnings" not in dataset.meta


def test_copies_and_repeats_are_not_read_twice(tmp_path):
    folder = kaggle(tmp_path / "nf")
    (folder / "combined_data_1 (1).txt").write_text(BLOCKS_1)  # a browser's second download: not a ratings file
    assert len(import_dataset("netflix", folder).interactions) == 6
    (folder / "combined_data_3.txt").write_text(BLOCKS_1)  # the same films again under a ratings file's name
    with pytest.raises(DataError, match=r"combined_data_3.txt:1: film 1's ratings begin again here \(first at "
                                        r"combined_data_1.txt:1\)"):
        import_dataset("netflix", folder)
    with pytest.raises(DataError, match="combined_data_1.txt:3: a customer rates film 1 a second time "
                                        r"\(first at line 2\)"):
        import_dataset("netflix", kaggle(tmp_path / "twice", first="1:\n7,3,2005-09-06\n7,4,2005-09-07\n"))


def test_a_film_line_with_spaces_and_zeros_reads_as_its_film(tmp_path):
    dataset = import_dataset("netflix", kaggle(tmp_path / "nf", first="1:\n7,3,2005-09-06\n 02 :\n8,4,2005-09-06\n"))
    assert sorted(r[:2] for r in rows(dataset)) == [("30878", "3"), ("7", "1"), ("8", "2"), ("822109", "3")]


def test_a_bad_film_line_is_refused_even_with_skip_bad_rows(tmp_path):
    folder = kaggle(tmp_path / "nf", first="1:\n7,3,2005-09-06\n2 x:\n8,4,2005-09-06\n")
    with pytest.raises(DataError, match="a line ending in ':' that is no film line"):
        import_dataset("netflix", folder, options=ReadOptions(skip_bad_rows=True))


@pytest.mark.parametrize("name, message", [("qualifying.txt", "is one of the Prize's test sets"),
                                           ("probe.txt", "is one of the Prize's test sets"),
                                           ("movie_titles.csv", "is the titles file")])
def test_the_prizes_other_files_are_named(tmp_path, name, message):
    folder = kaggle(tmp_path / "nf")
    (folder / name).write_text("1:\n7,2005-09-06\n")
    with pytest.raises(DataError, match=message):
        import_dataset("netflix", folder / name)


def test_compressed_files_keep_their_names(tmp_path):
    folder = tmp_path / "gz"
    folder.mkdir()
    (folder / "combined_data_1.txt.gz").write_bytes(gzip.compress(BLOCKS_1.encode()))
    (folder / "combined_data_2.txt.bz2").write_bytes(bz2.compress(BLOCKS_2.encode()))
    (folder / "movie_titles.csv.gz").write_bytes(gzip.compress(TITLES.encode("latin-1")))
    dataset = import_dataset("netflix", folder)
    assert rows(dataset) == rows(import_dataset("netflix", kaggle(tmp_path / "plain")))
    assert dataset.catalog.text["title"][0] == "Dinosaur Planet"


@pytest.mark.parametrize("kwargs, flag", [
    (dict(columns=ColumnMap(user="customer")), "--user-col"), (dict(columns=ColumnMap(value="stars")), "--value-col"),
    (dict(columns=ColumnMap(default_event="play")), "--default-event"),
    (dict(options=ReadOptions(delimiter=";")), "--delimiter"), (dict(options=ReadOptions(encoding="latin-1")),
                                                                 "--encoding"),
    (dict(options=ReadOptions(header=("a", "b"))), "--columns"),
    (dict(columns=ColumnMap(item="film")), "--item-col"), (dict(columns=ColumnMap(event="kind")), "--event-col"),
    (dict(columns=ColumnMap(time="when")), "--time-col"), (dict(options=ReadOptions(quoted=False)), "--no-quoting"),
    (dict(options=ReadOptions(tag_separator=",")), "--tag-sep"),
])
def test_options_it_would_ignore_are_refused(tmp_path, kwargs, flag):
    with pytest.raises(ConfigError, match=f"netflix is read with its own columns; {flag} is for FORMAT csv"):
        import_dataset("netflix", kaggle(tmp_path / "nf"), **kwargs)


def test_titles_of_another_download_are_named(tmp_path):
    folder = kaggle(tmp_path / "nf", titles="90,2003,Other\n91,2004,Another\n")
    with pytest.raises(DataError, match="no item of the log's first rows is: are movie_titles.csv and the ratings "
                                        "from the same download"):
        import_dataset("netflix", folder)


def test_a_customers_ratings_of_one_day_are_not_in_film_order(tmp_path):
    """The files list a day's ratings film by film: kept in that order, every customer's test film was the
    highest MovieID they rated on their last day."""
    blocks = "".join(f"{film}:\n" + "".join(f"{c},3,2005-09-06\n" for c in range(100, 160)) for film in range(1, 6))
    folder = kaggle(tmp_path / "nf", titles=None, first=blocks, second="6:\n1,3,2005-09-06\n")
    dataset = import_dataset("netflix", folder)
    log = dataset.interactions
    last = {dataset.user_ids[u]: dataset.catalog.item_ids[i] for u, i in zip(log.user, log.item)}
    assert len({last[str(c)] for c in range(100, 160)}) == 5  # every film is somebody's last
    assert rows(import_dataset("netflix", folder)) == rows(dataset)  # the same order on every import
    sample = import_dataset("netflix", folder, options=ReadOptions(sample_users=0.5, seed=1))
    kept = set(sample.user_ids)
    assert rows(sample) == [r for r in rows(dataset) if r[0] in kept]  # a sample keeps the full import's order
    assert "hash of customer and film" in dataset.meta["ties"]
    assert sample.meta["sample"] == {"users": 0.5, "seed": 1} and "sample" not in dataset.meta


def test_small_chunks_read_the_same_log_and_name_later_lines(tmp_path):
    folder = kaggle(tmp_path / "nf")
    whole = rows(import_dataset("netflix", folder))
    for size in (1, 2, 3):
        assert rows(import_dataset("netflix", folder, options=ReadOptions(chunk_rows=size))) == whole
    folder = kaggle(tmp_path / "untitled", titles="1,2003,Dinosaur Planet\n3,1997,Character\n")  # no film 2
    for size in (1, 3, 1000):  # film 2's first rating is row 2 of a chunk of 3 or more, after film 2's line
        with pytest.raises(DataError) as err:
            import_dataset("netflix", folder, options=ReadOptions(chunk_rows=size))
        assert str(err.value) == ("combined_data_1.txt:5: item '2' is not in the item table; add it there or drop "
                                  "the event")


def test_the_catalog_holds_films_without_genres_or_tags(tmp_path):
    catalog = import_dataset("netflix", kaggle(tmp_path / "nf")).catalog
    assert catalog.text["modality"] == ["film"] * 3 and catalog.text["genre"] == [""] * 3
    assert catalog.tags == [(), (), ()] and catalog.release_ts.dtype == np.int64


@pytest.mark.parametrize("year, ok", [("1800", True), ("2100", True), ("1799", False), ("2101", False),
                                      ("null", True), ("", True)])
def test_title_years_from_1800_to_2100_or_null(tmp_path, year, ok):
    folder = kaggle(tmp_path / "nf", titles=f"1,{year},A\n2,2000,B\n3,2001,C\n")
    if ok:
        assert import_dataset("netflix", folder).catalog.release_ts[0] == (
            int(datetime(int(year), 1, 1, tzinfo=timezone.utc).timestamp()) if year.isdigit() else 0)
    else:
        with pytest.raises(DataError, match=f"movie_titles.csv:1: the year of film 1 is '{year}'"):
            import_dataset("netflix", folder)


def test_titles_in_cp1252_blank_lines_and_control_characters(tmp_path):
    folder = kaggle(tmp_path / "nf", titles=None)
    (folder / "movie_titles.csv").write_bytes(b"1,2003,Don\x92t Look\n\n2,2004,Caf\xe9\n3,2005,Up\n")
    assert import_dataset("netflix", folder).catalog.text["title"] == ["Don\u2019t Look", "Caf\u00e9", "Up"]
    (folder / "movie_titles.csv").write_bytes(b"1,2003,A\n2,2004,B\x07ell\n3,2005,Up\n")
    dataset = import_dataset("netflix", folder)  # repaired, not refused: the release is not the user's to edit
    assert dataset.catalog.text["title"] == ["A", "B ell", "Up"]
    assert any("the first: movie_titles.csv:2: the title holds the control character U+0007" in w
               for w in dataset.meta["warnings"])


def test_a_film_line_with_trailing_spaces_and_crlf(tmp_path):
    folder = kaggle(tmp_path / "nf", first="1:  \r\n7,3,2005-09-06\r\n2:\t\r\n8,4,2005-09-06\r\n")
    assert sorted(r[:2] for r in rows(import_dataset("netflix", folder)))[:2] == [("30878", "3"), ("7", "1")]


def test_ratings_that_are_not_text_or_a_cut_stream_name_their_file(tmp_path):
    folder = kaggle(tmp_path / "nf", first="1:\n7,3,2005-09-06\n")
    (folder / "combined_data_2.txt").write_bytes(b"3:\n8,4,2005-09-06\n9,\xff,2005-09-06\n")
    with pytest.raises(DataError, match=r"^combined_data_2.txt:3: not valid utf-8 text"):
        import_dataset("netflix", folder)
    for cut, line in ((30, 2), (12, 1)):  # two lines read before the cut; none (the line is then 1)
        (folder / "combined_data_2.txt").write_bytes(gzip.compress(b"3:\n8,4,2005-09-06\n" * 50)[:cut])
        with pytest.raises(DataError) as err:
            import_dataset("netflix", folder)
        assert str(err.value).startswith(f"combined_data_2.txt:{line}: cannot be read past this line (")


def test_one_file_without_titles_says_where_to_put_them(tmp_path):
    path = kaggle(tmp_path / "nf", titles=None) / "combined_data_2.txt"
    assert import_dataset("netflix", path).meta["warnings"] == [
        "no movie_titles.csv beside the ratings: the films have ids but no titles (put the file in the ratings' "
        "folder and import the folder)"]


def test_blank_lines_inside_a_block_and_skips_that_leave_no_rating(tmp_path):
    folder = kaggle(tmp_path / "nf", first="1:\n7,3,2005-09-06\n\n8,4,2005-09-07\n")
    assert {r[:2] for r in rows(import_dataset("netflix", folder))} >= {("7", "1"), ("8", "1")}
    path = kaggle(tmp_path / "none", first="1:\n2:\n") / "combined_data_1.txt"
    with pytest.raises(DataError, match="combined_data_1.txt: holds film lines but no ratings"):
        import_dataset("netflix", path, options=ReadOptions(skip_bad_rows=True))
    path = kaggle(tmp_path / "one", first="1:\n7,3,2005-09-06\n7,3\n") / "combined_data_1.txt"
    skipped = import_dataset("netflix", path, options=ReadOptions(skip_bad_rows=True)).meta["skipped_rows"]
    assert skipped == {"not 3 fields": {"rows": 1, "first_lines": [3]}}  # one file: plain line numbers


def test_one_original_file_finds_the_titles_one_folder_up(tmp_path):
    folder = tmp_path / "download"
    (folder / "training_set").mkdir(parents=True)
    (folder / "training_set" / "mv_0000001.txt").write_text("1:\n7,4,2005-01-02\n")
    (folder / "movie_titles.txt").write_text("1,2001,Am\u00e9lie\u2019s Day\n", encoding="utf-8")
    dataset = import_dataset("netflix", folder / "training_set" / "mv_0000001.txt")
    assert dataset.catalog.text["title"] == ["Am\u00e9lie\u2019s Day"]  # UTF-8 titles read as they are


def test_a_ratings_file_changed_while_it_is_read_is_refused(tmp_path):
    from edgerec.data.netflix import netflix_chunks

    folder = kaggle(tmp_path / "nf")
    chunks = netflix_chunks([folder / "combined_data_1.txt"], chunk_rows=1)
    next(chunks)
    with open(folder / "combined_data_1.txt", "a") as handle:  # a download still being written
        handle.write("3:\n9,5,2005-09-06\n")
    with pytest.raises(DataError, match="combined_data_1.txt: file changed while it was read"):
        list(chunks)
