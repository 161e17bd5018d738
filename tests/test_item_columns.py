"""Item tables named the user's way (`data import --items F --item-columns ... --items-delimiter ...`): the
id column defaults to the log's item column, fields map to any column, columns left unread are named, and
every mistake in the mapping is refused with what to write instead."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data import ReadOptions, import_dataset
from edgerec.data.item_import import ItemColumns, parse_item_columns, read_item_table
from edgerec.data.loaders import ColumnMap
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError, DataError

RATINGS = "userId,movieId,rating,timestamp\n" + "".join(
    f"{u},{m},{1 + (u + m) % 5},{1_600_000_000 + 100 * u + m}\n" for u in range(6) for m in range(1, 6))
MOVIES = ("movieId,name,genres,lang,year\n"
          "1,Alien,Horror|Sci-Fi,en,1979\n2,Amélie,Comedy|Romance,fr,2001\n3,Heat,Action|Crime,en,1995\n"
          "4,Ran,Drama|War,ja,1985\n5,Up,Animation,en,2009\n")
LOG = ColumnMap(user="userId", item="movieId", time="timestamp", value="rating")


@pytest.fixture
def files(tmp_path):
    (tmp_path / "ratings.csv").write_text(RATINGS)
    (tmp_path / "movies.csv").write_text(MOVIES)
    return tmp_path


def test_the_log_item_column_is_the_item_tables_id_and_unread_columns_are_named(files):
    dataset = import_dataset("csv", files / "ratings.csv", columns=LOG, items=files / "movies.csv")
    assert dataset.catalog.item_ids == ["1", "2", "3", "4", "5"]
    assert set(dataset.catalog.text["title"]) == {""}  # 'name' is no field of its own: read only when mapped
    (warning,) = [w for w in dataset.meta["warnings"] if "not read" in w]
    assert warning.startswith("the item table's column(s) 'name', 'genres', 'lang', 'year' were not read")
    assert "--item-columns FIELD=COLUMN" in warning and str(files) not in warning


def test_mapped_columns_fill_their_fields(files):
    dataset = import_dataset("csv", files / "ratings.csv", columns=LOG, items=files / "movies.csv",
                             item_columns={"title": "name", "tags": "genres", "language": "lang"})
    cat = dataset.catalog
    assert cat.text["title"] == ["Alien", "Amélie", "Heat", "Ran", "Up"]
    assert cat.text["language"] == ["en", "fr", "en", "ja", "en"]
    assert cat.tags[0] == ("Horror", "Sci-Fi") and cat.tags[4] == ("Animation",)
    (warning,) = [w for w in dataset.meta["warnings"] if "not read" in w]
    assert "'year'" in warning and "'name'" not in warning and "'genres'" not in warning


def test_a_mapped_id_column_wins_over_the_logs_name(tmp_path):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\nu,a,1\nu,b,2\n")
    (tmp_path / "items.csv").write_text("sku,item_id,title\na,zz,First\nb,yy,Second\n")
    dataset = import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.csv",
                             item_columns={"item_id": "sku"})
    assert dataset.catalog.item_ids == ["a", "b"] and dataset.catalog.text["title"] == ["First", "Second"]
    assert any("'item_id' were not read" in w for w in dataset.meta["warnings"])  # the other item_id column


def test_an_item_key_of_two_columns_joins_like_the_log_and_its_parts_stay_readable(tmp_path):
    (tmp_path / "plays.csv").write_text("user,artist,track,ts\nu,Nina,Sinnerman,1\nu,Nina,Feeling Good,2\n")
    (tmp_path / "tracks.csv").write_text("artist,track,lang\nNina,Sinnerman,en\nNina,Feeling Good,en\n")
    dataset = import_dataset("csv", tmp_path / "plays.csv", items=tmp_path / "tracks.csv",
                             columns=ColumnMap(user="user", item="artist+track", time="ts"),
                             item_columns={"creator": "artist", "language": "lang"})
    assert dataset.catalog.item_ids == ["Nina - Sinnerman", "Nina - Feeling Good"]
    assert dataset.catalog.text["creator"] == ["Nina", "Nina"]
    assert not [w for w in dataset.meta.get("warnings", []) if "not read" in w]


def test_an_item_table_in_its_own_delimiter(tmp_path):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\nu,a,1\nu,b,2\n")
    (tmp_path / "items.tsv").write_text("item_id\ttitle\na\tTitle, with a comma\nb\tOther\n")
    dataset = import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.tsv", items_delimiter="\t")
    assert dataset.catalog.text["title"] == ["Title, with a comma", "Other"]
    with pytest.raises(DataError, match="missing column"):  # read with the log's comma, the header is one column
        import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.tsv")


@pytest.mark.parametrize("names, message", [
    ({"titel": "name"}, "--item-columns names 'titel', which is no item field; the fields are item_id, title"),
    ({"title": "name", "description": "name"}, "reads column 'name' as both 'title' and 'description'"),
    ({"title": " "}, "gives 'title' an empty column name"),
])
def test_mapping_mistakes_are_refused_before_reading(files, names, message):
    with pytest.raises(ConfigError, match=message):
        import_dataset("csv", files / "ratings.csv", columns=LOG, items=files / "movies.csv", item_columns=names)


def test_a_mapped_column_the_file_lacks_is_named_with_the_files_columns(files):
    with pytest.raises(DataError) as err:
        import_dataset("csv", files / "ratings.csv", columns=LOG, items=files / "movies.csv",
                       item_columns={"title": "Title"})
    assert str(err.value) == ("movies.csv:1: --item-columns names column(s) 'Title', which the item table lacks; "
                              "it has movieId, name, genres, lang, year")


def test_no_id_column_names_both_choices(tmp_path):
    (tmp_path / "log.csv").write_text("user,track,ts\nu,a,1\n")
    (tmp_path / "items.csv").write_text("id,title\na,A\n")
    with pytest.raises(DataError) as err:
        import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.csv",
                       columns=ColumnMap(user="user", item="track", time="ts"))
    assert "missing column(s) item_id or the log's --item-col 'track'; the file has id, title" in str(err.value)
    assert "--item-columns item_id=COLUMN" in str(err.value)


def test_a_field_in_another_case_is_refused_with_the_mapping_that_reads_it(files):
    (files / "movies.csv").write_text("movieId,Title\n1,Alien\n2,B\n3,C\n4,D\n5,E\n")
    with pytest.raises(DataError, match="'Title' is edgerec's 'title' in another case: rename it, or map it with "
                                        "--item-columns title=Title"):
        import_dataset("csv", files / "ratings.csv", columns=LOG, items=files / "movies.csv")
    dataset = import_dataset("csv", files / "ratings.csv", columns=LOG, items=files / "movies.csv",
                             item_columns={"title": "Title"})
    assert dataset.catalog.text["title"][0] == "Alien"


def test_the_item_options_need_an_item_table_and_a_csv_format(files):
    with pytest.raises(ConfigError, match="--item-columns and --items-delimiter describe the --items file"):
        import_dataset("csv", files / "ratings.csv", columns=LOG, item_columns={"title": "name"},
                       items_delimiter="\t")
    with pytest.raises(ConfigError, match="ml-1m reads its items from the MovieLens folder; --item-columns is for"):
        import_dataset("ml-1m", files, item_columns={"title": "name"})


@pytest.mark.parametrize("text, message", [
    ("title", "write FIELD=COLUMN pairs"), ("title=a=b", "write FIELD=COLUMN pairs"), (" , ", "write FIELD=COLUMN"),
    ("title=a,title=b", r"names 'title' twice \('a' and 'b'\)"),
])
def test_the_option_text_is_parsed_strictly(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_item_columns(text)


def test_the_option_text_is_trimmed():
    assert parse_item_columns(" item_id = movieId ,tags=genres,") == {"item_id": "movieId", "tags": "genres"}


def test_numbers_read_from_mapped_columns_name_the_files_column_in_errors(tmp_path):
    (tmp_path / "items.csv").write_text("item_id,length\na,90\nb,long\n")
    with pytest.raises(DataError, match=r"items.csv:3: column 'length' must hold numbers, found 'long'"):
        read_item_table(tmp_path / "items.csv", columns=ItemColumns({"duration": "length"}))
    (tmp_path / "items.csv").write_text("item_id,length\na,90\nb,\n")
    catalog, unread = read_item_table(tmp_path / "items.csv", columns=ItemColumns({"duration": "length"}))
    assert catalog.duration.tolist() == [90.0, 0.0] and unread == []


def test_the_command_line_reads_a_movielens_latest_style_table(files):
    out = files / "out"
    result = CliRunner().invoke(cli, [
        "data", "import", "csv", str(files / "ratings.csv"), "--items", str(files / "movies.csv"), "--out", str(out),
        "--user-col", "userId", "--item-col", "movieId", "--value-col", "rating",
        "--item-columns", "title=name,tags=genres,language=lang"])
    assert result.exit_code == 0, result.output
    assert "'year' were not read" in " ".join(result.output.split())
    catalog = load_dataset(out).catalog
    assert catalog.text["title"][1] == "Amélie" and catalog.tags[1] == ("Comedy", "Romance")


def test_a_parquet_item_table_with_list_typed_genres(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    (tmp_path / "log.csv").write_text("user_id,track_id,timestamp\nu,t1,1\nu,t2,2\n")
    pq.write_table(pa.table({"track_id": ["t1", "t2"], "name": ["One", "Two"],
                             "genres": [["rock", "indie", None], []], "lang": ["en", None]}), tmp_path / "tracks.parquet")
    dataset = import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "tracks.parquet",
                             columns=ColumnMap(item="track_id"),
                             item_columns={"title": "name", "tags": "genres", "language": "lang"})
    cat = dataset.catalog
    assert cat.tags == [("rock", "indie"), ()] and cat.text["language"] == ["en", ""]
    assert cat.text["title"] == ["One", "Two"]


def test_list_tags_are_never_split_by_the_separator(tmp_path):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\nu,a,1\n")
    (tmp_path / "items.jsonl").write_text('{"item_id": "a", "tags": ["Drum, Bass", "Jazz"]}\n')
    dataset = import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.jsonl",
                             options=ReadOptions(tag_separator=","))
    assert dataset.catalog.tags == [("Drum, Bass", "Jazz")]


def test_the_neutral_reader_takes_the_options(tmp_path):
    from edgerec.data.item_import import read_catalog

    (tmp_path / "items.tsv").write_text("item_id\ttitle\na\tA, with a comma\n")
    assert read_catalog(tmp_path / "items.tsv", ReadOptions(delimiter="\t")).text["title"] == ["A, with a comma"]


def test_unread_columns_are_never_read_so_their_mistakes_do_not_matter(tmp_path):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\nu,a,1\n")
    (tmp_path / "items.csv").write_text("item_id,title,x,x\na,A,1,2\n")  # a column named twice, unread
    dataset = import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.csv")
    assert dataset.catalog.text["title"] == ["A"]


def test_the_unread_warning_names_eight_columns_and_counts_the_rest():
    from edgerec.data.item_import import unread_columns_warning
    from edgerec.data.schema import ITEM_COLUMNS

    columns = [f"c{i}" for i in range(10)]
    (warning,) = unread_columns_warning(["item_id", *columns], ["item_id"])
    assert warning == ("the item table's column(s) 'c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7' and 2 more were not "
                       f"read: edgerec reads {', '.join(ITEM_COLUMNS)}; map a column to one with --item-columns "
                       "FIELD=COLUMN (e.g. tags=genres, language=lang)")
    (eight,) = unread_columns_warning(columns[:8], [])
    assert "'c7' were not read" in eight
    assert unread_columns_warning(["item_id"], ["item_id"]) == []


def test_mapping_messages_in_full(files):
    with pytest.raises(ConfigError) as err:
        parse_item_columns("title")
    assert str(err.value) == ("--item-columns 'title': write FIELD=COLUMN pairs joined by commas, e.g. "
                              "'item_id=movieId,tags=genres'")
    with pytest.raises(ConfigError) as err:
        ItemColumns(["title"])
    assert str(err.value) == "item columns are a mapping of field to column, not list"
    with pytest.raises(ConfigError) as err:
        ItemColumns({"title": "name", "creator": "name"})
    assert str(err.value) == ("--item-columns reads column 'name' as both 'title' and 'creator'; each field needs its "
                              "own column")
    with pytest.raises(DataError) as err:
        import_dataset("csv", files / "ratings.csv", columns=LOG, items=files / "movies.csv",
                       item_columns={"title": "Title", "creator": "Artist"})
    assert "names column(s) 'Title', 'Artist', which" in str(err.value)


def test_without_an_id_column_the_message_names_what_exists(tmp_path):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\nu,a,1\n")
    (tmp_path / "items.csv").write_text("id,title\na,A\n")
    with pytest.raises(DataError) as err:
        import_dataset("csv", tmp_path / "log.csv", items=tmp_path / "items.csv")
    assert str(err.value) == ("items.csv:1: missing column(s) item_id; the file has id, title. Name the item table's id "
                              "column with --item-columns item_id=COLUMN (or rename it; an item table's id column must "
                              "be item_id or the log's item column)")


def test_a_joined_log_key_needs_every_part_in_the_item_table(tmp_path):
    (tmp_path / "plays.csv").write_text("user,artist,track,ts\nu,Nina,Sinnerman,1\n")
    (tmp_path / "tracks.csv").write_text("artist,title\nNina,Sinnerman\n")
    with pytest.raises(DataError, match="missing column\\(s\\) item_id or the log's --item-col 'artist\\+track'"):
        import_dataset("csv", tmp_path / "plays.csv", items=tmp_path / "tracks.csv",
                       columns=ColumnMap(user="user", item="artist+track", time="ts"))
    (tmp_path / "tracks.csv").write_text("by,name\nNina,Sinnerman\n")
    dataset = import_dataset("csv", tmp_path / "plays.csv", items=tmp_path / "tracks.csv",
                             columns=ColumnMap(user="user", item="artist+track", time="ts"),
                             item_columns={"item_id": "by+name", "title": "name"})
    assert dataset.catalog.item_ids == ["Nina - Sinnerman"] and dataset.catalog.text["title"] == ["Sinnerman"]


def test_an_overlong_id_is_named_at_its_own_line(tmp_path):
    from edgerec.runtime.vocab import MAX_ID

    (tmp_path / "log.csv").write_text(f"user_id,item_id,timestamp\nu,{'a' * MAX_ID},1\nu,{'b' * (MAX_ID + 1)},2\n")
    with pytest.raises(DataError, match=f"log.csv:3: column 'item_id' holds an id of {MAX_ID + 1:,} characters"):
        import_dataset("csv", tmp_path / "log.csv")


def test_a_row_without_a_key_part_is_left_out_and_the_next_rows_still_read(tmp_path):
    from edgerec.data import ReadOptions

    (tmp_path / "plays.csv").write_text("user,artist,track,ts\nu,Nina,,1\nu,Nina,Sinnerman,2\nu,Nina,Feeling Good,3\n")
    dataset = import_dataset("csv", tmp_path / "plays.csv", options=ReadOptions(skip_bad_rows=True),
                             columns=ColumnMap(user="user", item="artist+track", time="ts"))
    assert dataset.catalog.item_ids == ["Nina - Sinnerman", "Nina - Feeling Good"]
    assert dataset.meta["skipped_rows"] == {"no user or item id": {"rows": 1, "first_lines": [2]}}


HEADERLESS = ("1::Alien (1979)::Horror|Sci-Fi\n2::Amélie (2001)::Comedy|Romance\n3::Heat (1995)::\n"
              "4::Ran (1985)::Drama\n5::Up (2009)::Animation\n")


def test_an_item_table_without_a_header_line_reads_by_the_names_given(files):
    """MovieTweetings' movies.dat: `id::title (year)::genres`, no header line."""
    (files / "movies.dat").write_text(HEADERLESS)
    result = CliRunner().invoke(cli, ["data", "import", "csv", str(files / "ratings.csv"), "--out", str(files / "o"),
                                      "--user-col", "userId", "--item-col", "movieId", "--value-col", "rating",
                                      "--items", str(files / "movies.dat"), "--items-delimiter", "::",
                                      "--items-header", "movie,title,tags", "--item-columns", "item_id=movie"])
    assert result.exit_code == 0, result.output
    catalog = load_dataset(files / "o").catalog
    assert catalog.item_ids == ["1", "2", "3", "4", "5"]
    assert catalog.text["title"][:3] == ["Alien (1979)", "Amélie (2001)", "Heat (1995)"]
    assert [tuple(t.lower() for t in tags) for tags in catalog.tags[:3]] == [("horror", "sci-fi"),
                                                                           ("comedy", "romance"), ()]


def test_items_header_on_a_table_that_has_one_names_the_option(files):
    (files / "movies.dat").write_text("movie::title::tags\n" + HEADERLESS)
    with pytest.raises(DataError) as err:
        import_dataset("csv", files / "ratings.csv", columns=LOG, items=files / "movies.dat",
                       options=ReadOptions(delimiter=","), items_delimiter="::", items_header=("movieId", "title", "tags"))
    assert str(err.value) == ("movies.dat:1: the first line is a header line (text where the rows below hold numbers "
                              "or times, or the names --items-header gives), but --items-header says the file has none: "
                              "leave --items-header out and map the columns by the header's names (--item-columns)")


@pytest.mark.parametrize("kwargs, message", [
    (dict(items_header=("movieId", " ", "tags")), "--items-header names no column in place 2 ('movieId', ' ', "
                                                  "'tags'); name every column of the file in order, comma-separated "
                                                  "(e.g. item_id,title,tags)"),
    (dict(items_header=("movieId",), items=None, items_delimiter=None),
     "--items-header describes the --items file; pass it with --items"),
])
def test_items_header_mistakes_say_what_to_write(files, kwargs, message):
    (files / "movies.dat").write_text(HEADERLESS)
    kwargs = {"items": files / "movies.dat", "items_delimiter": "::", **kwargs}
    with pytest.raises(ConfigError) as err:
        import_dataset("csv", files / "ratings.csv", columns=LOG, **kwargs)
    assert str(err.value) == message


def test_a_movielens_folder_refuses_items_header(files):
    with pytest.raises(ConfigError, match="ml-1m reads its items from the MovieLens folder; --items-header is for"):
        import_dataset("ml-1m", files, items_header=("a",))


def test_a_table_whose_ids_match_none_of_the_log_asks_which_column_holds_them(files):
    """Music4All: the log's --item-col song, and the table's 'song' column holds titles (its ids are in 'id')."""
    (files / "log.tsv").write_text("user\tsong\ttimestamp\nu1\tEFJdED5jSFpFkIM3\t1550671469\n")
    (files / "id_information.tsv").write_text("id\tartist\tsong\nEFJdED5jSFpFkIM3\tAnn\tHoppipolla\n")
    common = dict(columns=ColumnMap(user="user", item="song"), options=ReadOptions(delimiter="\t"),
                  items=files / "id_information.tsv")
    with pytest.raises(DataError) as err:
        import_dataset("csv", files / "log.tsv", **common)
    assert str(err.value) == ("log.tsv:2: item 'EFJdED5jSFpFkIM3' is not in the item table; no item of the log's "
                              "first rows is: are the table's ids read from the right column? Name it with "
                              "--item-columns item_id=COLUMN (by default the table's item_id column, else the log's "
                              "--item-col)")
    dataset = import_dataset("csv", files / "log.tsv", item_columns={"item_id": "id", "title": "song"}, **common)
    assert dataset.catalog.text["title"] == ["Hoppipolla"]
    (files / "log.tsv").write_text("user\tsong\ttimestamp\nu1\tHoppipolla\t1550671469\nu1\tother\t1550671470\n")
    with pytest.raises(DataError, match="log.tsv:3: item 'other' is not in the item table; add it there or drop"):
        import_dataset("csv", files / "log.tsv", **common)  # some ids match: one item is missing


def test_items_header_on_a_text_id_table_with_a_header_line_is_refused(files):
    """IMDb-style ids are text, so the header line ('movie_id::movie_title::genres') looked like one more item."""
    (files / "log.csv").write_text("user,movie,timestamp\nu1,tt0068646,1600000000\n")
    (files / "movies.dat").write_text("movie_id::movie_title::genres\ntt0068646::The Godfather (1972)::Crime\n")
    with pytest.raises(DataError, match="movies.dat:1: the first line is a header line"):
        import_dataset("csv", files / "log.csv", columns=ColumnMap(user="user", item="movie"),
                       items=files / "movies.dat", items_delimiter="::", items_header=("movie", "title", "tags"))
    (files / "movies.dat").write_text("tt0068646::The Godfather (1972)::Crime\n")  # a headerless one still reads
    dataset = import_dataset("csv", files / "log.csv", columns=ColumnMap(user="user", item="movie"),
                             items=files / "movies.dat", items_delimiter="::", items_header=("movie", "title", "tags"))
    assert dataset.catalog.item_ids == ["tt0068646"]


@pytest.mark.parametrize("names, table, message", [
    (("movie", "title"), "1::Alien::Horror\n", "movies.dat:1: expected 2 fields (movie, title), found 3; "
                                               "--items-header must name every column of the file, in order"),
    (("movie", "title", "title"), "1::Alien::Horror\n", "--items-header names 'title' twice; each column of the "
                                                        "file needs its own name"),
])
def test_items_header_of_the_wrong_names_says_so(files, names, table, message):
    (files / "movies.dat").write_text(table)
    (files / "log.csv").write_text("user,movie,timestamp\nu1,1,1600000000\n")
    with pytest.raises((DataError, ConfigError)) as err:
        import_dataset("csv", files / "log.csv", columns=ColumnMap(user="user", item="movie"),
                       items=files / "movies.dat", items_delimiter="::", items_header=names)
    assert str(err.value).startswith(message)


def test_items_header_on_a_json_lines_or_parquet_table_is_refused(files):
    (files / "log.csv").write_text("user,movie,timestamp\nu1,1,1600000000\n")
    (files / "movies.jsonl").write_text('{"movie": "1", "title": "Alien"}\n')
    with pytest.raises(ConfigError, match="--items-header names the columns of a text table without a header line"):
        import_dataset("csv", files / "log.csv", columns=ColumnMap(user="user", item="movie"),
                       items=files / "movies.jsonl", items_header=("movie", "title"))


def test_language_codes_are_read_in_one_casing_and_regional_variants_are_named(tmp_path):
    """' EN', 'en' and 'En' were three filter values on the device (a filter on 'en' missed 3 of 4 English
    items); codes of one language by region ('en', 'en-US') are named in a warning."""
    from edgerec.data.item_import import language_code

    (tmp_path / "items.csv").write_text("item_id,language\n1,en\n2, EN\n3,En\n4,en_us\n5,ZH-HANT\n6,English\n7,\n")
    catalog, warnings = read_item_table(tmp_path / "items.csv", ReadOptions(), ItemColumns())
    assert catalog.text["language"] == ["en", "en", "en", "en-US", "zh-Hant", "English", ""]
    (regional,) = [w for w in warnings if "several codes" in w]
    assert "(en, en-US)" in regional and "zh" not in regional
    assert language_code("pt_br") == "pt-BR" and language_code("sr-latn-rs") == "sr-Latn-RS"
    assert language_code("français") == "français" and language_code(" de ") == "de"
