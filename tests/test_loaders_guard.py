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
                                             ("id,title,genres", "movieId")])
def test_an_ml_latest_movies_file_without_a_column_names_it(tmp_path, header, missing):
    """A KeyError before: movies.csv was read by column name without asking whether the column was there."""
    write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    write(tmp_path / "movies.csv", f"{header}\n1,Toy Story (1995)\n")
    text = refused(load_movielens, "ml-latest", tmp_path)
    assert text.startswith(f"movies.csv:1: missing column(s) {missing}; ml-latest reads movies.csv with the header "
                           "line GroupLens ships (movieId,title,genres)"), text
    assert "FORMAT csv" in text


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
    assert text.startswith("log.csv: every row was left out (3: no user or item id, time not readable): are the "
                           "columns named right (--user-col, --item-col, --time-col, --columns)"), text
    assert "--sample" not in text
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
