"""Guards of data/loaders.py (mutation note 36): how a user's own log and MovieLens folders come in.

Tiny files written to tmp_path, exact results: event order with tied times (a stable sort: ties keep the file
order, across chunks too), ids kept as written ("007", "7", "07" are three), duplicate rows kept, and each bad
input stopped with an EdgerecError naming the file (never its host path), the line and the fix."""

from __future__ import annotations

import pytest

from edgerec.data import ColumnMap, ReadOptions, import_dataset, load_movielens
from edgerec.data.schema import DEVICE_CODE, EVENT_CODE
from edgerec.errors import DataError

LOG = "user_id,item_id,timestamp\n"
U_ITEM_FLAGS = "|0" * 19


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def items_of(dataset) -> list[str]:
    return [dataset.catalog.item_ids[i] for i in dataset.interactions.item]


def users_of(dataset) -> list[str]:
    return [dataset.user_ids[u] for u in dataset.interactions.user]


def refused(call, *args, **kwargs) -> str:
    """The message of the DataError `call` raises; it names files by their base name only."""
    with pytest.raises(DataError) as err:
        call(*args, **kwargs)
    text = str(err.value)
    assert "/" not in text.split(":")[0] and "tmp" not in text.lower().replace("timestamp", ""), text
    return text


# ------------------------------------------------------------------ defects found by this guard's audit


@pytest.mark.parametrize("header, missing", [("movieId,title", "genres"), ("movieId,genres", "title"),
                                             ("id,title,genres", "movieId"), ("id,name,genres", "movieId, title")])
def test_an_ml_latest_movies_file_without_a_column_names_it(tmp_path, header, missing):
    """A KeyError before: movies.csv was read by column name without asking whether the column was there."""
    write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    write(tmp_path / "movies.csv", f"{header}\n1,Toy Story (1995)\n")
    assert refused(load_movielens, "ml-latest", tmp_path) == (
        f"movies.csv:1: missing column(s) {missing}; ml-latest reads movies.csv with the header line GroupLens "
        "ships (movieId,title,genres): restore it, or import a file of your own layout with FORMAT csv and "
        "--user-col/--item-col/--time-col")


def test_an_ml_latest_ratings_file_without_a_column_names_it_without_pointing_at_ignored_options(tmp_path):
    """--user-col and friends do nothing for a MovieLens format; the error pointed at them."""
    write(tmp_path / "ratings.csv", "userId,movieId,timestamp\n1,1,964982703\n")
    write(tmp_path / "movies.csv", "movieId,title,genres\n1,Toy Story (1995),Comedy\n")
    text = refused(load_movielens, "ml-latest", tmp_path)
    assert text.startswith("ratings.csv:1: missing column(s) rating; ml-latest reads ratings.csv with the header "
                           "line GroupLens ships (userId,movieId,rating,timestamp)"), text


@pytest.mark.parametrize("fmt", ["ml-100k", "ml-1m", "ml-latest"])
def test_skip_bad_rows_reaches_the_movielens_ratings(tmp_path, fmt):
    """The option was dropped for MovieLens folders while their errors said to pass it."""
    good, no_user, no_time = ("1", "10", "5", "881250949"), ("", "10", "4", "881250950"), ("2", "10", "3", "")
    if fmt == "ml-100k":
        write(tmp_path / "u.item", "10|Toy Story (1995)|01-Jan-1995||http://x" + U_ITEM_FLAGS + "\n")
        write(tmp_path / "u.data", "".join("\t".join(r) + "\n" for r in (good, no_user, no_time)))
        first = 1
    elif fmt == "ml-1m":
        write(tmp_path / "movies.dat", "10::Toy Story (1995)::Animation\n")
        write(tmp_path / "ratings.dat", "".join("::".join(r) + "\n" for r in (good, no_user, no_time)))
        first = 1
    else:
        write(tmp_path / "movies.csv", "movieId,title,genres\n10,Toy Story (1995),Animation\n")
        write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n"
              + "".join(",".join(r) + "\n" for r in (good, no_user, no_time)))
        first = 2
    with pytest.raises(DataError, match=rf":{first + 1}: column '\w+' is empty; every row needs a user "
                                        r"\(or pass --skip-bad-rows"):
        import_dataset(fmt, tmp_path)
    dataset = import_dataset(fmt, tmp_path, options=ReadOptions(skip_bad_rows=True))
    assert dataset.user_ids == ["1"] and dataset.interactions.value.tolist() == [5.0]
    assert dataset.meta["skipped_rows"] == {"no user or item id": {"rows": 1, "first_lines": [first + 1]},
                                            "time not readable": {"rows": 1, "first_lines": [first + 2]}}
    assert dataset.meta["format"] == fmt


@pytest.mark.parametrize("chunk_rows", [1, 200_000])
def test_a_log_whose_every_row_is_skipped_says_so_not_that_the_sample_kept_no_user(tmp_path, chunk_rows):
    path = write(tmp_path / "log.csv", LOG + "u1,,1\nu2,i1,yesterday\n,i2,3\n")
    text = refused(import_dataset, "csv", path, options=ReadOptions(skip_bad_rows=True, chunk_rows=chunk_rows))
    assert text == ("log.csv: every row was left out (3: no user or item id, time not readable): are the columns "
                    "named right (--user-col, --item-col, --time-col, --columns) and is --time-unit the file's?")
    # a sample that keeps no user still says so
    one = write(tmp_path / "one.csv", LOG + "u1,i1,1\n")
    assert "one.csv: no events left (the sample kept no user); raise --sample" == refused(
        import_dataset, "csv", one, options=ReadOptions(sample_users=1e-9, skip_bad_rows=True))


def test_device_names_the_device_does_not_know_are_counted_in_a_warning(tmp_path):
    """Unknown names are read as no device (docs/formats.md); a log of 'mobile' and 'desktop' lost its whole
    device column without a word."""
    path = write(tmp_path / "log.csv", "user_id,item_id,timestamp,device\nu,a,1,mobile\nu,b,2, Phone\nu,c,3,\n"
                                       "u,d,4,desktop\nu,e,5,Mobile \nu,f,6,TV\nu,g,7,car\nu,h,8,watch\n")
    dataset = import_dataset("csv", path)
    assert dataset.interactions.device.tolist() == [-1, DEVICE_CODE["phone"], -1, -1, -1, DEVICE_CODE["tv"], -1, -1]
    assert dataset.meta["warnings"] == [
        "5 rows name a device edgerec does not know ('mobile', 'car', 'desktop', ...): their events have no "
        "device; name devices phone, tv, tablet, web (in any case) to keep them"]
    known = write(tmp_path / "known.csv", "user_id,item_id,timestamp,device\nu,a,1,web\nu,b,2,\nu,c,3,TABLET\n")
    assert "warnings" not in import_dataset("csv", known).meta


# ------------------------------------------------------------------ order: stable, across chunks and users


TIES = LOG + "u,a,5\nv,x,1\nu,b,5\nu,c,4\nv,y,1\nu,d,5\nv,z,0\nu,e,4.5\nu,f,5\n"


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 4, 200_000])
def test_tied_times_keep_the_file_order_within_and_across_chunks(tmp_path, chunk_rows):
    dataset = import_dataset("csv", write(tmp_path / "ties.csv", TIES), options=ReadOptions(chunk_rows=chunk_rows))
    assert dataset.user_ids == ["u", "v"]  # codes in order of first appearance
    assert users_of(dataset) == ["u"] * 6 + ["v"] * 3
    assert items_of(dataset) == ["c", "e", "a", "b", "d", "f", "z", "x", "y"]
    assert dataset.interactions.timestamp.tolist() == [4, 4, 5, 5, 5, 5, 0, 1, 1]
    assert dataset.catalog.item_ids == ["a", "x", "b", "c", "y", "d", "z", "e", "f"]


def test_ids_are_text_kept_exactly_and_duplicate_rows_stay_two_events(tmp_path):
    path = write(tmp_path / "ids.csv", LOG + "007,7,3\n7,007,2\n007,07,1\n 7,7,1\n007,7,3\n007,7.0,3\n")
    dataset = import_dataset("csv", path)
    assert dataset.user_ids == ["007", "7", " 7"]
    assert dataset.catalog.item_ids == ["7", "007", "07", "7.0"]
    assert list(zip(users_of(dataset), items_of(dataset))) == [
        ("007", "07"), ("007", "7"), ("007", "7"), ("007", "7.0"), ("7", "007"), (" 7", "7")]
    assert len(dataset.interactions) == 6


def test_event_value_and_device_columns_are_read_per_row(tmp_path):
    path = write(tmp_path / "log.csv", "user_id,item_id,timestamp,event,value,device\n"
                                       "u,a,1, Skip ,0.25,tv\nu,b,2,LIKE,-1.5,\nu,c,3,finish,3,web\n")
    log = import_dataset("csv", path).interactions
    assert log.event.tolist() == [EVENT_CODE["skip"], EVENT_CODE["like"], EVENT_CODE["finish"]]
    assert log.value.tolist() == [0.25, -1.5, 3.0] and log.value.dtype.name == "float32"
    assert log.device.tolist() == [DEVICE_CODE["tv"], -1, DEVICE_CODE["web"]]
    # without the optional columns: the default event, value 1, no device
    bare = import_dataset("csv", write(tmp_path / "bare.csv", LOG + "u,a,1\n"),
                          columns=ColumnMap(default_event="like")).interactions
    assert bare.event.tolist() == [EVENT_CODE["like"]] and bare.value.tolist() == [1.0]
    assert bare.device.tolist() == [-1] and bare.device.dtype.name == "int8"


# ------------------------------------------------------------------ MovieLens folders, exactly


@pytest.fixture
def zoned(monkeypatch):
    """A host whose local time zone is not UTC: release times must still be UTC midnights."""
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def ml100k(folder, items: str, ratings: str = "1\t10\t5\t881250949\n"):
    write(folder / "u.item", items, "latin-1")
    write(folder / "u.data", ratings)
    return folder


def u_item(item, title, date="01-Jan-1995", genres=()):
    flags = ["1" if g in genres else "0" for g in ("unknown", "Action", "Adventure", "Animation", "Children's",
                                                   "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
                                                   "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
                                                   "Sci-Fi", "Thriller", "War", "Western")]
    return f"{item}|{title}|{date}||http://x|" + "|".join(flags) + "\n"


def test_movielens_100k_catalog_columns_exactly(tmp_path, zoned):
    folder = ml100k(tmp_path, u_item(10, "Toy Story (1995)", genres=("Animation", "Comedy"))
                    + u_item(20, "No Year", date="15-Mar-1996")
                    + u_item(30, "Undated", date="")
                    + u_item(40, "Zero Year (0000)", date="01-Jan-1990", genres=("Drama",)),
                    "1\t10\t5\t881250949\n")
    dataset = load_movielens("ml-100k", folder)
    catalog = dataset.catalog
    assert catalog.item_ids == ["10", "20", "30", "40"]
    assert catalog.text["title"] == ["Toy Story", "No Year", "Undated", "Zero Year"]
    assert catalog.text["description"] == ["Toy Story. An animation / comedy film.", "No Year. A film.",
                                           "Undated. A film.", "Zero Year. A drama film."]
    assert catalog.text["genre"] == ["animation", "", "", "drama"]
    assert catalog.text["modality"] == ["film"] * 4
    assert catalog.tags == [("animation", "comedy"), (), (), ("drama",)]
    # the title's year, else the date column, as UTC midnight; a year 0000 or no date: unknown (0)
    assert catalog.release_ts.tolist() == [788918400, 826848000, 0, 0] and catalog.release_ts.dtype.name == "int64"
    assert dataset.meta == {"source": tmp_path.name, "format": "ml-100k"}
    assert dataset.interactions.event.tolist() == [EVENT_CODE["rate"]]


def test_movielens_1m_and_latest_catalogs_exactly(tmp_path, zoned):
    one = tmp_path / "one"
    one.mkdir()
    write(one / "movies.dat", "1::Alpha (1975)::Drama|Comedy\n2::Beta::Horror\n3::Gamma (0000)::\n", "latin-1")
    write(one / "ratings.dat", "1::1::5::978300760\n")
    catalog = load_movielens("ml-1m", one).catalog
    assert catalog.text["title"] == ["Alpha", "Beta", "Gamma"]
    assert catalog.tags == [("drama", "comedy"), ("horror",), ()]
    assert catalog.text["genre"] == ["drama", "horror", ""]
    assert catalog.release_ts.tolist() == [157766400, 0, 0]  # no year and no date column: unknown
    latest = tmp_path / "latest"
    latest.mkdir()
    write(latest / "movies.csv", "movieId,title,genres\n1,Alpha (1975),Adventure|Animation\n"
                                 "2,Beta,(no genres listed)\n3,\"Gamma, The (2001)\",Sci-Fi|(no genres listed)\n")
    write(latest / "ratings.csv", "userId,movieId,rating,timestamp,event,device\n1,1,0.5,964982703,skip,tv\n")
    dataset = load_movielens("ml-latest", latest)
    assert dataset.catalog.tags == [("adventure", "animation"), (), ("sci-fi",)]
    assert dataset.catalog.text["title"] == ["Alpha", "Beta", "Gamma, The"]
    assert dataset.catalog.text["description"][1] == "Beta. A film."
    # a rating is a rate event, whatever other columns a copy carries
    log = dataset.interactions
    assert log.event.tolist() == [EVENT_CODE["rate"]] and log.device.tolist() == [-1]
    assert log.value.tolist() == [0.5]
    assert dataset.meta == {"source": "latest", "format": "ml-latest"}


@pytest.mark.parametrize("fmt", ["ml-1m", "ml-latest"])
def test_a_movielens_genre_the_device_refuses_is_cut_and_named_at_its_line(tmp_path, fmt):
    long = "G" * 300
    if fmt == "ml-1m":
        write(tmp_path / "movies.dat", f"1::Alpha (1975)::Drama\n2::Beta (1980)::Drama|{long}\n")
        write(tmp_path / "ratings.dat", "1::1::5::978300760\n")
        name, line = "movies.dat", 2
    else:
        write(tmp_path / "movies.csv", f"movieId,title,genres\n1,Alpha (1975),Drama\n2,Beta (1980),Drama|{long}\n")
        write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
        name, line = "movies.csv", 3
    dataset = load_movielens(fmt, tmp_path)  # a release's genre is repaired (cut), not refused, and said
    assert dataset.catalog.tags[1] == ("drama", "g" * 255 + "…")
    assert dataset.meta["warnings"][-1].endswith(
        f"the first: {name}:{line}: a genre is 300 characters long; the device takes at most 256 (an unclosed "
        "quote can swallow lines)")


@pytest.mark.parametrize("fmt, needed", [("ml-100k", "u.data and u.item"), ("ml-1m", "ratings.dat and movies.dat"),
                                         ("ml-latest", "ratings.csv and movies.csv")])
def test_a_movielens_path_that_is_no_folder_of_it_says_what_it_needs(tmp_path, fmt, needed):
    archive = write(tmp_path / "download.zip", "PK")
    assert refused(load_movielens, fmt, archive) == (
        f"download.zip: {fmt} reads a folder holding {needed}; unzip the download and pass its folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = needed.replace(" and ", " or ")
    assert refused(load_movielens, fmt, empty) == f"empty: no {missing} here; {fmt} needs {needed}"
    other = ml100k(tmp_path / "k", u_item(10, "T (1995)")) if (tmp_path / "k").mkdir() is None else None
    if fmt != "ml-100k":
        assert refused(load_movielens, fmt, other) == (
            f"k: no {missing} here; {fmt} needs {needed}; the folder holds ml-100k files: pass FORMAT ml-100k")
    half = tmp_path / "half"
    half.mkdir()
    write(half / needed.split(" and ")[0], "x")
    assert refused(load_movielens, fmt, half) == f"half: no {needed.split(' and ')[1]} here; {fmt} needs {needed}"


def test_an_unknown_movielens_format_is_named(tmp_path):
    with pytest.raises(DataError) as err:
        load_movielens("ml-25m", tmp_path)
    assert str(err.value) == "unknown MovieLens format 'ml-25m'; use ml-100k, ml-1m or ml-latest"


def test_a_u_item_genre_flag_error_says_how_to_correct_it(tmp_path):
    folder = ml100k(tmp_path, u_item(10, "T (1995)").replace("|0|0\n", "|0|2\n"))
    assert refused(load_movielens, "ml-100k", folder) == (
        "u.item:1: the genre flag of 'Western' is '2'; u.item flags each genre with 0 or 1: correct that line")


def test_a_quote_in_u_data_is_text_not_the_start_of_a_field(tmp_path):
    folder = ml100k(tmp_path, u_item(10, "T (1995)"), '1\t10\t"5\t881250949\n2\t10\t4"\t881250950\n')
    assert refused(load_movielens, "ml-100k", folder) == (
        "u.data:1: column 'rating' must hold numbers, found '\"5'; every row of this format needs a rating from "
        "0.5 to 5: correct or delete that line")


def movielens_folders(tmp_path, users=40):
    """The same ratings as ml-100k, ml-1m and ml-latest folders."""
    rows = [(str(u), "10", str(1 + u % 5), str(881250949 + u)) for u in range(1, users + 1)]
    folders = {}
    for fmt in ("ml-100k", "ml-1m", "ml-latest"):
        folder = tmp_path / fmt
        folder.mkdir()
        if fmt == "ml-100k":
            ml100k(folder, u_item(10, "T (1995)"), "".join("\t".join(r) + "\n" for r in rows))
        elif fmt == "ml-1m":
            write(folder / "movies.dat", "10::T (1995)::Drama\n")
            write(folder / "ratings.dat", "".join("::".join(r) + "\n" for r in rows))
        else:
            write(folder / "movies.csv", "movieId,title,genres\n10,T (1995),Drama\n")
            write(folder / "ratings.csv", "userId,movieId,rating,timestamp\n" + "".join(",".join(r) + "\n" for r in rows))
        folders[fmt] = folder
    log = write(tmp_path / "log.csv", LOG + "".join(f"{u},{i},{t}\n" for u, i, _, t in rows))
    return folders, log


def test_movielens_folders_sample_users_as_any_log_does(tmp_path):
    folders, log = movielens_folders(tmp_path)
    for seed in (0, 3):
        options = ReadOptions(sample_users=0.5, seed=seed)
        expected = import_dataset("csv", log, options=options).user_ids
        assert 8 < len(expected) < 32
        for fmt, folder in folders.items():
            assert load_movielens(fmt, folder, options).user_ids == expected, fmt
    assert (import_dataset("csv", log, options=ReadOptions(sample_users=0.5, seed=0)).user_ids
            != import_dataset("csv", log, options=ReadOptions(sample_users=0.5, seed=3)).user_ids)


def test_movielens_folders_take_the_time_unit_and_chunking(tmp_path):
    folders, _ = movielens_folders(tmp_path, users=3)
    for fmt, folder in folders.items():
        dataset = load_movielens(fmt, folder, ReadOptions(time_unit="ms", chunk_rows=1))
        assert dataset.interactions.timestamp.tolist() == [881250, 881250, 881250], fmt
        assert dataset.meta["warnings"][0].startswith("every time falls before 1973 read as epoch milliseconds")
        assert dataset.interactions.value.tolist() == [2.0, 3.0, 4.0]


@pytest.mark.parametrize("rating", ["0.4", "5.5", "9"])
def test_an_ml_latest_rating_outside_half_a_star_to_five_is_refused(tmp_path, rating):
    folders, _ = movielens_folders(tmp_path, users=2)
    ratings = folders["ml-latest"] / "ratings.csv"
    ratings.write_text(ratings.read_text() + f"7,10,{rating},881250999\n")
    assert refused(load_movielens, "ml-latest", folders["ml-latest"]) == (
        f"ratings.csv:4: column 'rating' holds '{rating}', outside 0.5 to 5 (the range of this format)")


def test_a_movielens_item_file_with_a_mark_and_latin1_bytes_names_the_line_of_the_first_bad_byte(tmp_path):
    items = b"\xef\xbb\xbf" + u_item(10, "A (1995)").encode() + u_item(20, "Am\xe9lie (2001)").encode("latin-1") \
        + u_item(30, "C (1995)").encode() + u_item(40, "D (1995)").encode()
    folder = ml100k(tmp_path, items)
    assert refused(load_movielens, "ml-100k", folder) == (
        "u.item:2: the file starts with a UTF-8 byte order mark but is not all UTF-8 (a title from another source "
        "pasted in?): save it as UTF-8 throughout")


def test_samples_of_other_seeds_are_independent_and_each_keeps_about_its_fraction(tmp_path):
    """CRC-32 of 'seed:user' is linear: seeds 0 and 9 kept the very same users, 0 and 1 nine tenths of the same
    half. Expected overlap of two independent half samples of 2,000 users: 500 (sd 22)."""
    from edgerec.data.loaders import keep_user

    users = [str(u) for u in range(2000)]
    halves = [frozenset(u for u in users if keep_user(u, 0.5, seed)) for seed in range(10)]
    assert all(930 < len(h) < 1070 for h in halves)
    assert len(set(halves)) == 10
    assert all(420 < len(a & b) < 580 for i, a in enumerate(halves) for b in halves[i + 1:])
    tenths = [frozenset(u for u in users if keep_user(u, 0.1, seed)) for seed in (0, 1)]
    assert all(160 < len(t) < 240 for t in tenths) and 5 < len(tenths[0] & tenths[1]) < 40
    assert keep_user("x", None, 0) and keep_user("x", 1.0, 5)
    log = write(tmp_path / "log.csv", LOG + "".join(f"{u},i,{n}\n" for n, u in enumerate(users[:400])))
    kept = import_dataset("csv", log, options=ReadOptions(sample_users=0.5, seed=9, chunk_rows=7)).user_ids
    assert kept == [u for u in users[:400] if u in halves[9]]


# ------------------------------------------------------------------ user logs: keys, skipping, warnings, item tables


def test_joined_keys_that_collide_are_named_with_both_values(tmp_path):
    path = write(tmp_path / "log.csv", "user_id,artist,track,timestamp\nu,Foo - Bar,Baz,1\nu,Foo,Bar - Baz,2\n")
    assert refused(import_dataset, "csv", path, columns=ColumnMap(item="artist+track")) == (
        "log.csv:3: columns artist + track make the same item key 'Foo - Bar - Baz' from other values ('Foo - Bar' "
        "| 'Baz' before, 'Foo' | 'Bar - Baz' here): two items would merge into one; rename one of them in the "
        "file, or key the items by an id column")


def test_skipping_bad_rows_reads_times_in_the_files_unit_and_keeps_time_zero(tmp_path):
    path = write(tmp_path / "ms.csv", LOG + "u,a,1704182400999\nu,b,0\nu,c,soon\nu,d,1704182400123\n")
    dataset = import_dataset("csv", path, options=ReadOptions(time_unit="ms", skip_bad_rows=True))
    assert items_of(dataset) == ["b", "d", "a"]
    assert dataset.interactions.timestamp.tolist() == [0, 1704182400, 1704182400]
    assert dataset.meta["skipped_rows"] == {"time not readable": {"rows": 1, "first_lines": [4]}}


@pytest.mark.parametrize("times, warned", [("19000101,19000102", True), ("21001230,21001231", True),
                                           ("19000100,19000102", False), ("21001231,21001232", False)])
def test_the_date_warning_holds_from_1900_to_2100_inclusive(tmp_path, times, warned):
    rows = "".join(f"u,i{n},{t}\n" for n, t in enumerate(times.split(",")))
    meta = import_dataset("csv", write(tmp_path / "d.csv", LOG + rows)).meta
    assert ("warnings" in meta and meta["warnings"][0].startswith("every time reads as a date written as a number, "
                                                                  f"yyyymmdd ({times.split(',')[0]} is ")) == warned


def test_an_unknown_modality_says_how_to_fix_it(tmp_path):
    log = write(tmp_path / "log.csv", LOG + "u,a,1\n")
    items = write(tmp_path / "items.csv", "item_id,modality\na,Movie\n")
    assert refused(import_dataset, "csv", log, items=items) == (
        "items.csv:2: unknown modality 'Movie'; expected one of film, series_episode, short_video, music_track, "
        "podcast_episode: rename the file's modalities to these, or leave the cell empty when unknown")


@pytest.mark.parametrize("cells, warned", [(["a, b", "c, d", "e"], True), (["a, b", "c", "e"], True),
                                           (["a, b", "c", "e", "f", "g"], True),
                                           (["a, b", "c", "e", "f", "g", "h"], False),
                                           (["x", "a, b", "c, d", "e"], True)])
def test_the_comma_tags_warning_needs_a_fifth_of_the_items_and_shows_a_comma_tag(tmp_path, cells, warned):
    log = write(tmp_path / "log.csv", LOG + "u,i0,1\n")
    items = write(tmp_path / "items.csv", "item_id,tags\n" + "".join(f'i{n},"{c}"\n' for n, c in enumerate(cells)))
    warnings = import_dataset("csv", log, items=items).meta.get("warnings", [])
    listed = sum("," in c for c in cells)
    expected = [f"{listed} of {len(cells)} items' tags hold a comma and were each read as one tag (such as 'a, b'); "
                "if commas separate the tags, import again with --tag-sep ','"]
    assert warnings == (expected if warned else [])


def test_an_item_table_takes_the_logs_delimiter_for_every_column(tmp_path):
    log = write(tmp_path / "log.csv", "user_id;item_id;timestamp\nu;a;1\n")
    items = write(tmp_path / "items.csv", "item_id;title;duration\na;Alpha, the film;90.5\n")
    catalog = import_dataset("csv", log, items=items, options=ReadOptions(delimiter=";")).catalog
    assert catalog.text["title"] == ["Alpha, the film"] and catalog.duration.tolist() == [90.5]


@pytest.mark.parametrize("cell, message", [
    ("long", "column 'duration' must hold numbers, found 'long'; write the duration in seconds, or leave the cell "
             "empty when unknown"),
    ("-3", "column 'duration' holds '-3', below 0 (seconds, never negative)"),
])
def test_a_bad_duration_says_what_to_write(tmp_path, cell, message):
    log = write(tmp_path / "log.csv", LOG + "u,a,1\n")
    items = write(tmp_path / "items.csv", f"item_id,duration\na,60\nb,{cell}\n")
    assert refused(import_dataset, "csv", log, items=items) == f"items.csv:3: {message}"


@pytest.mark.parametrize("release, warned", [("20200131,19991231", True), ("21001231,21001231", True),
                                             ("20200131,1580428800", False), ("0,0", False)])
def test_release_dates_written_as_numbers_warn_showing_the_first(tmp_path, release, warned):
    log = write(tmp_path / "log.csv", LOG + "u,a,1\n")
    first, second = release.split(",")
    items = write(tmp_path / "items.csv", f"item_id,release_ts\na,{first}\nb,{second}\n")
    warnings = import_dataset("csv", log, items=items).meta.get("warnings", [])
    assert warnings == ([f"every release_ts reads as a date written as a number, yyyymmdd ({first}), which epoch "
                         "seconds put in 1970: freshness and release filters read them wrong; write the dates as "
                         "ISO-8601 (2020-01-31) or epoch seconds"] if warned else [])


# ------------------------------------------------------------------ options and ids: each refusal exactly


@pytest.mark.parametrize("kwargs, message", [
    (dict(user=""), "the user column's name is empty (''); pass the file's column name with --user-col"),
    (dict(item=" "), "the item column's name is empty (' '); pass the file's column name with --item-col"),
    (dict(time=3), "the time column's name is empty (3); pass the file's column name with --time-col"),
    (dict(value=""), "the value column's name is empty (''); pass the file's column name with --value-col or "
                     "leave the option out (the column is optional)"),
    (dict(device=""), "the device column's name is empty (''); pass the file's column name or leave the option "
                      "out (the column is optional)"),
    (dict(item="ts", device="ts"), "column 'ts' is named for both the item and the device; each needs its own "
                                   "column (--user-col, --item-col, --time-col, --event-col, --value-col)"),
    (dict(event="e", value="v", device="e"), "column 'e' is named for both the event and the device; each needs "
                                             "its own column (--user-col, --item-col, --time-col, --event-col, "
                                             "--value-col)"),
])
def test_a_column_map_that_cannot_read_a_file_says_which_option(kwargs, message):
    from edgerec.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        ColumnMap(**kwargs)
    assert str(err.value) == message


def test_optional_columns_left_out_are_not_checked():
    ColumnMap(event=None, value=None, device=None)
    ColumnMap(event=None, value=None, device=None, user="a", item="b", time="c")


@pytest.mark.parametrize("kwargs, message", [
    (dict(delimiter='a"'), "the delimiter must be one or more characters other than quotes and line breaks (got "
                           "'a\"'); for tab-separated files pass a tab"),
    (dict(delimiter="\r"), "the delimiter must be one or more characters other than quotes and line breaks (got "
                           "'\\r'); for tab-separated files pass a tab"),
    (dict(delimiter=9), "the delimiter must be one or more characters other than quotes and line breaks (got 9); "
                        "for tab-separated files pass a tab"),
    (dict(chunk_rows=True), "chunk_rows must be a whole number of rows >= 1 (got True)"),
    (dict(chunk_rows=2.0), "chunk_rows must be a whole number of rows >= 1 (got 2.0)"),
    (dict(chunk_rows=-1), "chunk_rows must be a whole number of rows >= 1 (got -1)"),
    (dict(encoding="utf-9"), "unknown text encoding 'utf-9'; use a Python codec name such as utf-8, latin-1, "
                             "cp1252 or utf-16"),
    (dict(encoding=None), "unknown text encoding None; use a Python codec name such as utf-8, latin-1, cp1252 or "
                          "utf-16"),
    (dict(tag_separator="\n"), "the tag separator must be one or more characters other than quotes and line "
                               "breaks (got '\\n'); for comma-separated tags pass ','"),
    (dict(tag_separator=""), "the tag separator must be one or more characters other than quotes and line "
                             "breaks (got ''); for comma-separated tags pass ','"),
    (dict(header=()), "--columns names no column in place 1 (); name every column of the file in order, "
                      "comma-separated (e.g. user,time,item)"),
    (dict(header=("a", "b", " ")), "--columns names no column in place 3 ('a', 'b', ' '); name every column of "
                                   "the file in order, comma-separated (e.g. user,time,item)"),
    (dict(header=("a", None)), "--columns names no column in place 2 ('a', None); name every column of the file "
                               "in order, comma-separated (e.g. user,time,item)"),
    (dict(time_unit="hour"), "unknown time unit 'hour'; use s, ms, us or ns, or steps of s, min, h or d with an "
                             "optional count before them (10min for times counted in 10-minute slots)"),
    (dict(time_unit="10ms"), "unknown time unit '10ms'; use s, ms, us or ns, or steps of s, min, h or d with an "
                             "optional count before them (10min for times counted in 10-minute slots)"),
    (dict(time_unit="12345678min"), "unknown time unit '12345678min'; use s, ms, us or ns, or steps of s, min, h "
                                    "or d with an optional count before them (10min for times counted in 10-minute "
                                    "slots)"),
    (dict(sample_users=1.5), "the user sample must be a fraction in (0, 1] (got 1.5)"),
    (dict(sample_users=-0.1), "the user sample must be a fraction in (0, 1] (got -0.1)"),
])
def test_read_options_that_cannot_work_say_what_to_pass(kwargs, message):
    from edgerec.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        ReadOptions(**kwargs)
    assert str(err.value) == message


def test_read_options_at_their_limits_are_taken():
    ReadOptions(delimiter="::", chunk_rows=1, sample_users=1.0, header=("a",), tag_separator=";")
    ReadOptions(delimiter="X", tag_separator="X", encoding="UTF_8", time_unit="ns", sample_users=1e-9)


@pytest.mark.parametrize("name, roles", [("artist+track", ["artist", "track"]), (" a + b ", ["a", "b"])])
def test_an_item_key_of_several_columns_names_each(name, roles):
    from edgerec.data.loaders import key_parts

    assert key_parts(name, set()) == roles
    assert key_parts(name, {name}) == [name]  # a column of that very name
    assert key_parts("track", set()) == ["track"]


@pytest.mark.parametrize("name", ["a+", "+a", "a+a", "a+ +b"])
def test_an_item_key_naming_a_column_twice_or_none_is_refused(name):
    from edgerec.data.loaders import key_parts
    from edgerec.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        key_parts(name, set())
    assert str(err.value) == ("an item key of several columns names each once, joined by '+' (e.g. artist+track); "
                              f"got {name!r}")


@pytest.mark.parametrize("column, flag", [("Event", ", or pass --event-col Event"), ("VALUE", ", or pass --value-col VALUE"),
                                          ("Device", "")])
def test_an_optional_column_in_another_case_is_named_with_its_fix(tmp_path, column, flag):
    path = write(tmp_path / "log.csv", f"user_id,item_id,timestamp,{column}\nu,a,1,x\n")
    assert refused(import_dataset, "csv", path) == (
        f"log.csv: column '{column}' is edgerec's '{column.lower()}' in another case: rename it{flag}")
    # a column of the right name beside it is read, the other one ignored
    cell = {"event": "skip", "value": "0.5", "device": "tv"}[column.lower()]
    both = write(tmp_path / "both.csv", f"user_id,item_id,timestamp,{column},{column.lower()}\nu,a,1,x,{cell}\n")
    log = import_dataset("csv", both).interactions
    assert (log.event.tolist(), log.value.tolist(), log.device.tolist()) == (
        [EVENT_CODE["skip" if column == "Event" else "play"]], [0.5 if column == "VALUE" else 1.0],
        [DEVICE_CODE["tv"] if column == "Device" else -1])


@pytest.mark.parametrize("cell, message", [
    ("", "column 'user_id' is empty; every row needs a user (or pass --skip-bad-rows to leave such rows out)"),
    ("  ", "column 'user_id' is empty (only spaces); every row needs a user (or pass --skip-bad-rows to leave "
           "such rows out)"),
    ("u" * 257, "column 'user_id' holds an id of 257 characters; the device takes at most 256 (an unclosed quote "
                "can swallow lines): shorten or hash such ids"),
    ("a\x00", "column 'user_id' holds a NUL character; ids must be plain text"),
])
def test_a_user_id_the_device_cannot_take_is_named_at_its_line(tmp_path, cell, message):
    path = write(tmp_path / "log.csv", LOG + "ok,a,1\n" + "u" * 256 + f",a,2\n{cell},a,3\nlast,a,4\n")
    assert refused(import_dataset, "csv", path, options=ReadOptions(chunk_rows=2)) == f"log.csv:4: {message}"


def test_an_empty_item_id_points_at_keys_of_several_columns(tmp_path):
    path = write(tmp_path / "log.csv", LOG + "u,a,1\nu,,2\n")
    assert refused(import_dataset, "csv", path) == (
        "log.csv:3: column 'item_id' is empty; a log whose items lack an id in some rows can key them by several "
        "columns (--item-col artist+track) or leave those rows out (--skip-bad-rows)")
    keyed = write(tmp_path / "keyed.csv", "user_id,artist,track,timestamp\nu,A,B,1\nu,A,,2\n")
    assert refused(import_dataset, "csv", keyed, columns=ColumnMap(item="artist+track")) == (
        "keyed.csv:3: column 'artist+track' is empty; every row needs artist and track (or pass --skip-bad-rows to "
        "leave such rows out)")


def test_an_unknown_event_is_named_with_the_events_edgerec_knows(tmp_path):
    path = write(tmp_path / "log.csv", "user_id,item_id,timestamp,event\nu,a,1,PLAY\nu,b,2,buy\n")
    assert refused(import_dataset, "csv", path) == (
        "log.csv:3: unknown event 'buy'; expected one of play, finish, skip, like, rate: rename the file's events to "
        "these, or map them with --event-map (e.g. 'listen=play,unlike=drop'; every event but a skip counts as "
        "consuming the item)")


def test_an_item_missing_from_the_item_table_is_named_at_its_line(tmp_path):
    items = write(tmp_path / "items.csv", "item_id\n007\n")
    log = write(tmp_path / "log.csv", LOG + "u,007,1\nu,7,2\n")
    assert refused(import_dataset, "csv", log, items=items) == (
        "log.csv:3: item '7' is not in the item table; add it there or drop the event")
    dataset = import_dataset("csv", write(tmp_path / "ok.csv", LOG + "u,007,1\n"), items=items)
    assert dataset.catalog.item_ids == ["007"] and items_of(dataset) == ["007"]


def test_format_and_option_mistakes_of_an_import_are_named(tmp_path):
    from edgerec.errors import ConfigError

    log = write(tmp_path / "log.csv", LOG + "u,a,1\n")
    with pytest.raises(DataError) as err:
        import_dataset("tsv", log)
    assert str(err.value) == "unknown format 'tsv'; use one of csv, parquet, jsonl, ml-100k, ml-1m, ml-latest, netflix, mpd, 30music"
    with pytest.raises(ConfigError) as err:
        import_dataset("csv", log, items_encoding="latin-1")
    assert str(err.value) == "--items-encoding describes the --items file; pass it with --items"
    with pytest.raises(ConfigError) as err:
        import_dataset("ml-100k", tmp_path, items=log)
    assert str(err.value) == "ml-100k reads its items from the MovieLens folder; --items is for FORMAT csv, parquet or jsonl"
    dataset = import_dataset("csv", log)
    assert dataset.meta == {"source": "log.csv", "format": "csv"}


def test_an_item_table_in_its_own_encoding_and_the_log_in_utf8(tmp_path):
    log = write(tmp_path / "log.csv", LOG + "Jürgen,a,1\n")
    items = write(tmp_path / "items.csv", "item_id,title\na,Amélie\n", "latin-1")
    dataset = import_dataset("csv", log, items=items, items_encoding="latin-1")
    assert dataset.user_ids == ["Jürgen"] and dataset.catalog.text["title"] == ["Amélie"]


# ------------------------------------------------------------------ the import's warnings, exactly


def test_a_seconds_log_read_in_a_finer_unit_is_warned_about_exactly(tmp_path):
    path = write(tmp_path / "log.csv", LOG + "u,a,1704182400\nu,b,1704182460\n")
    for unit, name in (("ms", "milliseconds"), ("us", "microseconds"), ("ns", "nanoseconds")):
        meta = import_dataset("csv", path, options=ReadOptions(time_unit=unit)).meta
        assert meta["warnings"] == [f"every time falls before 1973 read as epoch {name} (--time-unit {unit}): if the "
                                    "file holds seconds, import it again without --time-unit; if its times count "
                                    "from the log's own start (Diginetica's timeframe), order and gaps hold, but "
                                    "dates and time of day mean nothing"]
    # in milliseconds the log reaches 1973 (EARLY_1973 = 100,000,000 s): no warning
    late = write(tmp_path / "late.csv", LOG + "u,a,99999999000\nu,b,100000000000\n")
    assert "warnings" not in import_dataset("csv", late, options=ReadOptions(time_unit="ms")).meta
    early = write(tmp_path / "early.csv", LOG + "u,a,99999999000\nu,b,99999999999\n")
    assert "warnings" in import_dataset("csv", early, options=ReadOptions(time_unit="ms")).meta
    # ISO-8601 times carry their own unit
    iso = write(tmp_path / "iso.csv", LOG + "u,a,2020-01-02T00:00:00Z\n")
    assert "warnings" not in import_dataset("csv", iso, options=ReadOptions(time_unit="ms")).meta


def test_events_after_today_are_counted_in_a_warning(tmp_path, zoned):
    """Dated in UTC on a host in New York (3000-01-01 00:00 UTC is 31 Dec 2999 there)."""
    import time

    soon = int(time.time()) + 3 * 86_400
    path = write(tmp_path / "log.csv", LOG + f"u,a,1704182400\nu,b,{soon}\nv,c,32503680000\nv,d,{int(time.time())}\n")
    assert import_dataset("csv", path).meta["warnings"] == [
        "2 events are dated after today (the latest on 3000-01-01): check the time unit (--time-unit) or the log's "
        "clock; splits and recency read them as they are"]
    # a day of slack for clocks: an event an hour ahead is not flagged
    near = write(tmp_path / "near.csv", LOG + f"u,a,{int(time.time()) + 3600}\n")
    assert "warnings" not in import_dataset("csv", near).meta


def test_a_date_written_as_a_number_is_shown_with_its_reading(tmp_path):
    path = write(tmp_path / "log.csv", LOG + "u,a,20191231\nu,b,20200101\n")
    assert import_dataset("csv", path).meta["warnings"] == [
        "every time reads as a date written as a number, yyyymmdd (20191231 is 2019-12-31), which epoch seconds put "
        "in 1970, days seconds or minutes apart: events keep their order, but recency, gaps and time of day are "
        "wrong; write the dates as ISO-8601 (2020-01-31) or epoch seconds"]
    # read in another unit it is no date
    assert import_dataset("csv", path, options=ReadOptions(time_unit="ms")).meta["warnings"][0].startswith(
        "every time falls before 1973")


def test_three_unknown_device_names_are_all_shown_without_an_ellipsis(tmp_path):
    path = write(tmp_path / "log.csv", "user_id,item_id,timestamp,device\nu,a,1,car\nu,b,2,watch\nu,c,3,car\n"
                                       "u,d,4,fridge\n")
    assert import_dataset("csv", path).meta["warnings"] == [
        "4 rows name a device edgerec does not know ('car', 'fridge', 'watch'): their events have no device; "
        "name devices phone, tv, tablet, web (in any case) to keep them"]


def test_a_time_before_1970_is_a_row_left_out_when_skipping(tmp_path):
    path = write(tmp_path / "log.csv", LOG + "u,a,5\nu,b,-5\nu,c,-0.5\n")
    dataset = import_dataset("csv", path, options=ReadOptions(skip_bad_rows=True))
    assert items_of(dataset) == ["a"] and dataset.interactions.timestamp.tolist() == [5]
    assert dataset.meta["skipped_rows"] == {"time not readable": {"rows": 2, "first_lines": [3, 4]}}


def test_a_negative_episode_says_why_it_is_refused(tmp_path):
    log = write(tmp_path / "log.csv", LOG + "u,a,1\n")
    items = write(tmp_path / "items.csv", "item_id,episode\na,1\nb,-1\n")
    assert refused(import_dataset, "csv", log, items=items) == (
        "items.csv:3: column 'episode' holds '-1', outside 0 to 2,147,483,647 (episode numbers count from 1, 0 or "
        "empty for none; a device refuses a bundle holding a negative one)")


def test_a_float_id_column_past_its_digits_says_how_to_store_ids(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"user_id": ["a", "b"], "item_id": pa.array([1.0, 2.0**24], pa.float32()),
                             "timestamp": [1, 2]}), path)
    assert refused(import_dataset, "parquet", path) == (
        "log.parquet:2: column 'item_id' is stored as float32 and holds NaN, an infinity or an id from 16,777,216 up, "
        "too large for it to keep every digit (different ids may have merged); store the ids as integers or text "
        "(pandas: drop the rows without one, then .astype('int64'))")


def test_an_empty_id_in_an_item_table_gets_no_log_advice(tmp_path):
    log = write(tmp_path / "log.csv", LOG + "u,a,1\n")
    items = write(tmp_path / "items.csv", "item_id,title\na,A\n,B\n")
    assert refused(import_dataset, "csv", log, items=items) == "items.csv:3: column 'item_id' is empty"
    folder = ml100k(tmp_path, u_item(10, "T (1995)") + u_item(" ", "U (1995)"))
    assert refused(load_movielens, "ml-100k", folder) == "u.item:2: column 'item' is empty (only spaces)"


def test_event_and_device_codes_are_int8_read_or_defaulted(tmp_path):
    for header, row in (("", ""), (",event,device", ",skip,tv")):
        log = import_dataset("csv", write(tmp_path / "log.csv", f"user_id,item_id,timestamp{header}\nu,a,1{row}\n"))
        assert log.interactions.event.dtype.name == "int8" and log.interactions.device.dtype.name == "int8"
        assert log.interactions.value.dtype.name == "float32" and log.interactions.timestamp.dtype.name == "int64"


def test_a_movielens_title_with_a_bidi_override_is_warned_about(tmp_path):
    folder = ml100k(tmp_path, u_item(10, "T (1995)"))
    write(folder / "u.item", u_item(10, "Evil \u202eeman (1995)"))  # UTF-8
    warnings = import_dataset("ml-100k", folder).meta["warnings"]
    assert warnings[0].startswith("1 items' titles or tags hold bidirectional override characters")


def test_optional_columns_of_a_log_with_another_delimiter_are_read(tmp_path):
    path = write(tmp_path / "log.csv", "user_id;item_id;timestamp;event;value;device\nu;a;1;like;0.5;tv\n")
    log = import_dataset("csv", path, options=ReadOptions(delimiter=";")).interactions
    assert (log.event.tolist(), log.value.tolist(), log.device.tolist()) == (
        [EVENT_CODE["like"]], [0.5], [DEVICE_CODE["tv"]])


def test_a_parquet_timestamp_column_named_as_ids_is_refused_exactly(tmp_path):
    import datetime as dt

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    stamps = pa.array([dt.datetime(2020, 1, 31), dt.datetime(2020, 2, 1)], pa.timestamp("ms"))
    pq.write_table(pa.table({"user_id": ["u", "u"], "item_id": stamps, "timestamp": [1, 2]}), tmp_path / "log.parquet")
    assert refused(import_dataset, "parquet", tmp_path / "log.parquet", options=ReadOptions(chunk_rows=1)) == (
        "log.parquet:1: column 'item_id' is a Parquet date or timestamp column, but holds ids here (read as text its "
        "dates would become counts of milliseconds since 1970): check which column the options name; if it does "
        "hold dates as names, store it as text (pandas: .astype(str))")


def test_an_item_id_of_spaces_is_named_as_such(tmp_path):
    path = write(tmp_path / "log.csv", LOG + "u,a,1\nu,  ,2\n")
    assert refused(import_dataset, "csv", path) == (
        "log.csv:3: column 'item_id' is empty (only spaces); a log whose items lack an id in some rows can key them by "
        "several columns (--item-col artist+track) or leave those rows out (--skip-bad-rows)")


def test_a_sample_reads_on_past_a_chunk_that_keeps_no_user(tmp_path):
    from edgerec.data.loaders import keep_user

    users = [str(u) for u in range(60)]
    dropped = [u for u in users if not keep_user(u, 0.5, 0)]
    log = write(tmp_path / "log.csv", LOG + "".join(f"{u},i,{n}\n" for n, u in enumerate(dropped[:3] + users)))
    kept = import_dataset("csv", log, options=ReadOptions(sample_users=0.5, chunk_rows=1)).user_ids
    assert kept == [u for u in users if keep_user(u, 0.5, 0)] and len(kept) > 20


def test_warnings_of_the_log_and_of_the_item_table_are_both_kept_with_the_source(tmp_path):
    log = write(tmp_path / "log.csv", "user_id,item_id,timestamp,device\nu,a,1,car\n")
    items = write(tmp_path / "items.csv", 'item_id,tags\na,"rock, pop"\n')
    meta = import_dataset("csv", log, items=items).meta
    assert meta == {"source": "log.csv", "format": "csv", "warnings": [
        "1 row names a device edgerec does not know ('car'): their events have no device; name devices phone, tv, "
        "tablet, web (in any case) to keep them",
        "1 of 1 items' tags hold a comma and were each read as one tag (such as 'rock, pop'); if commas separate "
        "the tags, import again with --tag-sep ','"]}


def test_the_device_warning_comes_after_the_warning_about_times(tmp_path):
    path = write(tmp_path / "log.csv", "user_id,item_id,timestamp,device\nu,a,1704182400,car\nu,b,1704182460,tv\n")
    warnings = import_dataset("csv", path, options=ReadOptions(time_unit="ms")).meta["warnings"]
    assert [w.split(" (")[0] for w in warnings] == ["every time falls before 1973 read as epoch milliseconds",
                                                    "1 row names a device edgerec does not know"]


@pytest.mark.parametrize("unit, words, latest", [("min", "minutes", "2008-04-24"), ("h", "hours", "4268-09-26"),
                                                 ("10min", "10-minute steps", "2353-02-14")])
def test_a_date_written_as_a_number_read_in_steps_is_named_as_a_date(tmp_path, unit, words, latest):
    path = write(tmp_path / "log.csv", LOG + "u,a,20140101\nu,b,20140102\nv,a,20150312\n")
    assert import_dataset("csv", path, options=ReadOptions(time_unit=unit)).meta["warnings"] == [
        f"every time reads as a date written as a number, yyyymmdd (20140101 is 2014-01-01), which --time-unit "
        f"{unit} reads as {words} since 1970 (the latest on {latest}): events keep their order, but recency, gaps "
        "and time of day are wrong; write the dates as ISO-8601 (2020-01-31) or epoch seconds"]
    # plain minute counts that are no dates (a 13th month) are not named so
    other = write(tmp_path / "other.csv", LOG + "u,a,20141301\nu,b,20141302\n")
    assert "warnings" not in import_dataset("csv", other, options=ReadOptions(time_unit="min")).meta
