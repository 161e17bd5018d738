import numpy as np
import pytest

from edgerec.data import (
    ColumnMap,
    ReadOptions,
    import_dataset,
    load_dataset,
    load_movielens,
    save_dataset,
)
from edgerec.data.schema import EVENT_CODE
from edgerec.errors import DataError


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def ml100k(tmp_path):
    write(tmp_path / "u.data", "1\t10\t5\t881250949\n1\t20\t3\t881250950\n2\t10\t4\t881250940\n2\t30\t1\t881250940\n")
    write(tmp_path / "u.item",
          "10|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
          "20|GoldenEye (1995)|01-Jan-1995||http://x|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n"
          "30|Amélie (2001)|01-Jan-2001||http://x|0|0|0|0|0|1|0|0|0|0|0|0|0|0|1|0|0|0|0\n", "latin-1")
    return tmp_path


def test_movielens_100k(ml100k):
    ds = load_movielens("ml-100k", ml100k)
    assert ds.n_users == 2 and ds.n_items == 3
    assert ds.catalog.text["title"] == ["Toy Story", "GoldenEye", "Amélie"]
    assert ds.catalog.tags[0] == ("animation", "children's", "comedy")
    assert set(ds.interactions.event) == {EVENT_CODE["rate"]}
    # sorted by (user, time); the tie of user 2 keeps the file order (item 10 before 30)
    assert [ds.catalog.item_ids[i] for i in ds.interactions.item] == ["10", "20", "10", "30"]
    assert ds.interactions.value.tolist() == [5, 3, 4, 1]


def test_movielens_1m(tmp_path):
    write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    write(tmp_path / "movies.dat", "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
                                   "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n", "latin-1")
    ds = load_movielens("ml-1m", tmp_path)
    assert ds.n_users == 2 and ds.n_items == 2
    assert ds.catalog.text["genre"] == ["drama", "animation"]
    assert ds.catalog.release_ts[0] == 157766400  # 1975-01-01


def test_movielens_latest_csv(tmp_path):
    write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n")
    write(tmp_path / "movies.csv", 'movieId,title,genres\n1,"Toy Story (1995)",Adventure|Animation\n'
                                   '3,"Grumpier Old Men, The (1995)",Comedy|Romance\n')
    ds = load_movielens("ml-latest", tmp_path)
    assert ds.catalog.text["title"][1] == "Grumpier Old Men, The"
    # time order: movie 3 was rated first
    assert [ds.catalog.item_ids[i] for i in ds.interactions.item] == ["3", "1"]
    assert ds.interactions.value.tolist() == [4.5, 4.0]


def test_generic_csv_with_column_mapping_and_iso_times(tmp_path):
    path = write(tmp_path / "log.csv", "who,what,when\nalice,song1,2024-01-02T10:00:00Z\nbob,song2,2024-01-01\n"
                                       "alice,song2,2024-01-01T09:00:00\n")
    ds = import_dataset("csv", path, columns=ColumnMap(user="who", item="what", time="when"))
    assert ds.user_ids == ["alice", "bob"]
    assert ds.interactions.event.tolist() == [EVENT_CODE["play"]] * 3
    assert [ds.catalog.item_ids[i] for i in ds.interactions.item[:2]] == ["song2", "song1"]


def test_chunked_reading_equals_one_pass(small_data_dir):
    whole = import_dataset("csv", small_data_dir / "interactions.csv")
    chunked = import_dataset("csv", small_data_dir / "interactions.csv", options=ReadOptions(chunk_rows=997))
    for field in ("user", "item", "timestamp", "event", "value", "device"):
        assert np.array_equal(getattr(whole.interactions, field), getattr(chunked.interactions, field))


def test_sampling_by_user_is_deterministic_and_keeps_whole_users(small_data_dir):
    a = load_dataset(small_data_dir, sample_users=0.3, seed=1)
    b = load_dataset(small_data_dir, sample_users=0.3, seed=1)
    full = load_dataset(small_data_dir)
    assert a.user_ids == b.user_ids
    assert 0.15 * full.n_users < a.n_users < 0.45 * full.n_users
    user = a.user_ids[0]
    full_code = full.user_ids.index(user)
    assert (a.interactions.user == 0).sum() == (full.interactions.user == full_code).sum()


def test_parquet_round_trip(tmp_path, small_dataset):
    save_dataset(small_dataset, tmp_path / "pq", fmt="parquet")
    back = load_dataset(tmp_path / "pq")
    assert back.n_items == small_dataset.n_items
    assert np.array_equal(back.interactions.item, small_dataset.interactions.item)
    assert back.catalog.text["title"] == small_dataset.catalog.text["title"]


@pytest.mark.parametrize("content, message, line", [
    ("user_id,item_id\nu1,i1\n", "missing column(s) timestamp", 1),
    ("user_id,item_id,timestamp\nu1,i1,100\nu1,i2,yesterday\n", "must hold a timestamp", 3),
    ("user_id,item_id,timestamp\nu1,i1,100\nu1,i2\n", "expected 3 fields", 3),
    ("user_id,item_id,timestamp,event\nu1,i1,100,watched\n", "unknown event 'watched'", 2),
    ("user_id,item_id,timestamp\n", "header but no rows", 1),
    ("", "file is empty", None),
])
def test_malformed_files_name_the_file_and_line(tmp_path, content, message, line):
    path = write(tmp_path / "bad.csv", content)
    with pytest.raises(DataError) as err:
        import_dataset("csv", path)
    text = str(err.value)
    assert message in text and str(path) in text
    if line is not None:
        assert f"{path}:{line}:" in text


def test_bad_movielens_line_is_located(ml100k):
    with open(ml100k / "u.data", "a") as handle:
        handle.write("3\t10\tfive\t881250949\n")
    with pytest.raises(DataError, match=r"u\.data:5: column 'rating' must hold numbers"):
        load_movielens("ml-100k", ml100k)


def test_unknown_item_and_missing_folder_are_clear(tmp_path, small_data_dir):
    items = write(tmp_path / "items.csv", "item_id,title\ni1,One\n")
    log = write(tmp_path / "log.csv", "user_id,item_id,timestamp\nu,i1,1\nu,i9,2\n")
    with pytest.raises(DataError, match=r"log\.csv:3: item 'i9' is not in the item table"):
        import_dataset("csv", log, items=items)
    with pytest.raises(DataError, match="not a data folder"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DataError, match="duplicate item ids"):
        import_dataset("csv", log, items=write(tmp_path / "dup.csv", "item_id\ni1\ni1\n"))
