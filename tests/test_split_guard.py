"""The leave-last-out split and the stable time order against plain-Python definitions, edges included."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgerec.data.schema import CONSUMED_EVENTS, EVENT_CODE, EVENTS, Catalog, Dataset, Interactions
from edgerec.data.split import Sequences, consumed_sequences, leave_last_out


def log_of(events):
    """events: (user, item, time, event name), in file order."""
    user, item, t, ev = zip(*events)
    return Interactions(np.array(user, np.int32), np.array(item, np.int32), np.array(t, np.int64),
                        np.array([EVENT_CODE[e] for e in ev], np.int8), np.ones(len(user), np.float32))


def dataset_of(events, n_users=None, n_items=None):
    n_users = n_users or max(e[0] for e in events) + 1
    n_items = n_items or max(e[1] for e in events) + 1
    return Dataset(Catalog.bare([f"i{i}" for i in range(n_items)]), log_of(events).sorted_by_time(),
                   [f"u{u}" for u in range(n_users)])


# ------------------------------------------------------------------ the stable time order


def test_thousands_of_tied_events_keep_the_file_order():
    """numpy's default sort is stable only below 16 elements; 6,000 ties per user defeat any unstable sort."""
    rng = np.random.default_rng(3)
    n = 12_000
    user = rng.integers(0, 2, n).astype(np.int32)
    time = rng.choice(np.array([100, 200], np.int64), n)  # two timestamps: thousands of ties each
    item = np.arange(n, dtype=np.int32)  # the item is the file position
    log = Interactions(user, item, time, np.zeros(n, np.int8), np.arange(n, dtype=np.float32),
                       rng.integers(0, 3, n).astype(np.int8))
    out = log.sorted_by_time()
    expected = sorted(range(n), key=lambda e: (user[e], time[e]))  # Python's sort is stable
    assert out.item.tolist() == expected
    # every column moved with its event
    assert np.array_equal(out.user, user[expected]) and np.array_equal(out.timestamp, time[expected])
    assert np.array_equal(out.value, log.value[expected]) and np.array_equal(out.device, log.device[expected])


def test_order_is_by_user_first_then_time():
    log = log_of([(1, 0, 1, "play"), (0, 1, 9, "play"), (0, 2, 5, "play"), (1, 3, 0, "play")])
    out = log.sorted_by_time()
    assert out.user.tolist() == [0, 0, 1, 1] and out.item.tolist() == [2, 1, 3, 0]


# ------------------------------------------------------------------ edges of the split


def test_a_user_exactly_at_the_minimum_length_is_evaluated():
    ds = dataset_of([(0, 0, 1, "play"), (0, 1, 2, "play"), (0, 2, 3, "play"),  # exactly 3 items
                     (1, 3, 1, "play"), (1, 4, 2, "play"),  # 2: training only
                     (2, 0, 1, "play"), (2, 1, 2, "play"), (2, 2, 3, "play"), (2, 3, 4, "play")])
    split = leave_last_out(ds)
    assert split.val_users.tolist() == split.test_users.tolist() == [0, 2]
    assert split.val_items.tolist() == [1, 2] and split.test_items.tolist() == [2, 3]
    assert split.train.of(0).tolist() == [0] and split.train.of(1).tolist() == [3, 4]
    assert leave_last_out(ds, min_items=4).test_users.tolist() == [2]
    assert leave_last_out(ds, min_items=2).test_users.tolist() == [0, 1, 2]


def test_no_event_about_a_held_out_item_trains_for_any_user():
    """Not only user 0: an early skip of the test item and a replay of the validation item stay out."""
    events = [(0, 3, 1, "play")]
    for u in (1, 2, 7):
        events += [(u, 5, 0, "skip"), (u, 0, 1, "play"), (u, 2, 2, "skip"), (u, 1, 3, "play"),
                   (u, 2, 4, "play"), (u, 5, 5, "finish"), (u, 2, 6, "play")]
    ds = dataset_of(events, n_users=8, n_items=6)
    split = leave_last_out(ds)
    assert split.test_users.tolist() == [1, 2, 7]
    assert split.val_items.tolist() == [2, 2, 2] and split.test_items.tolist() == [5, 5, 5]
    train = ds.interactions.take(split.train_events)
    assert sorted(zip(train.user.tolist(), train.item.tolist())) == [(0, 3), (1, 0), (1, 1), (2, 0), (2, 1),
                                                                     (7, 0), (7, 1)]


def test_split_records_times_events_and_catalog_size():
    ds = dataset_of([(0, 0, 10, "play"), (0, 5, 15, "skip"), (0, 1, 20, "finish"), (0, 2, 30, "like"),
                     (1, 3, 5, "play")], n_items=7)
    split = leave_last_out(ds)
    assert split.n_items == 7
    assert split.val_times.tolist() == [20] and split.test_times.tolist() == [30]
    assert split.val_events.tolist() == [2] and split.test_events.tolist() == [3]
    assert split.target_events("val").tolist() == [2] and split.target_events("test").tolist() == [3]
    assert [a.tolist() for a in split.targets("val")] == [[0], [1]]
    assert [a.tolist() for a in split.targets("test")] == [[0], [2]]
    assert split.history("val") is split.train
    test_history = split.history("test")
    assert test_history.of(0).tolist() == [0, 1] and test_history.times.tolist() == [10, 20, 5]
    assert test_history.items.dtype == np.int32 and test_history.times.dtype == np.int64
    with pytest.raises(ValueError, match="phase must be 'val' or 'test', not 'train'"):
        split.history("train")


def test_a_log_where_nobody_reaches_the_minimum_trains_on_everything():
    ds = dataset_of([(0, 0, 1, "play"), (0, 1, 2, "skip"), (1, 1, 1, "play")])
    split = leave_last_out(ds)
    assert len(split.test_users) == 0 and split.train_events.tolist() == [True, True, True]
    assert split.train_events.dtype == bool
    assert split.train.of(0).tolist() == [0] and split.train.of(1).tolist() == [1]


def test_users_without_consumption_keep_their_place():
    ds = dataset_of([(0, 0, 1, "play"), (1, 1, 1, "skip"), (2, 2, 1, "skip")])
    seq, index = consumed_sequences(ds.interactions, ds.n_users)
    assert seq.n_users == 3 and seq.lengths().tolist() == [1, 0, 0] and index.tolist() == [0]
    assert seq.items.dtype == np.int32 and seq.times.dtype == np.int64
    assert leave_last_out(ds).train.n_users == 3


def test_an_empty_log_gives_empty_sequences():
    log = Interactions(*(np.zeros(0, t) for t in (np.int32, np.int32, np.int64, np.int8, np.float32)))
    seq, index = consumed_sequences(log, 2)
    assert seq.indptr.tolist() == [0, 0, 0] and len(seq.items) == 0 and len(index) == 0


def test_item_keys_never_collide_across_users():
    # two users x item codes chosen so that user * (n_items - 1) + item would collide
    ds = dataset_of([(0, 3, 1, "play"), (0, 4, 2, "play"), (1, 0, 1, "play"), (1, 0, 2, "play")])
    seq, _ = consumed_sequences(ds.interactions, ds.n_users)
    assert seq.of(0).tolist() == [3, 4] and seq.of(1).tolist() == [0]


def test_last_handles_empty_and_one_item_logs_and_a_subset_of_users():
    empty = Sequences(np.zeros(3, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64))
    out = empty.last(3, pad=7)
    assert out.tolist() == [[7, 7, 7], [7, 7, 7]] and out.dtype == np.int64
    one = Sequences(np.array([0, 0, 1]), np.array([5], np.int32), np.array([1]))
    assert one.last(3, pad=-1).tolist() == [[-1, -1, -1], [-1, -1, 5]]
    assert one.last(2, users=np.array([1])).tolist() == [[0, 5]]
    seq = Sequences(np.array([0, 2, 5]), np.array([1, 2, 3, 4, 5], np.int32), np.zeros(5, np.int64))
    last = seq.last(2, users=[1, 0])
    assert last.tolist() == [[4, 5], [1, 2]] and last.dtype == np.int64
    assert seq.row_of().tolist() == [0, 0, 1, 1, 1]


def test_append_puts_each_item_and_time_at_its_users_end():
    seq = Sequences(np.array([0, 2, 2, 3]), np.array([1, 2, 3], np.int32), np.array([10, 20, 30], np.int64))
    out = seq.append(np.array([0, 1]), np.array([7, 8]), np.array([70, 80]))
    assert out.indptr.tolist() == [0, 3, 4, 5]
    assert out.items.tolist() == [1, 2, 7, 8, 3] and out.times.tolist() == [10, 20, 70, 80, 30]
    assert out.items.dtype == np.int32 and out.times.dtype == np.int64


# ------------------------------------------------------------------ against a plain-Python definition


def reference_split(events, n_users, min_items=3):
    """The module docstring, written out: first consumptions in time order, last two held out."""
    order = sorted(range(len(events)), key=lambda e: (events[e][0], events[e][2]))
    seqs = {u: [] for u in range(n_users)}
    where = {u: [] for u in range(n_users)}
    for position, e in enumerate(order):
        u, i, _, ev = events[e]
        if ev in CONSUMED_EVENTS and i not in seqs[u]:
            seqs[u].append(i)
            where[u].append(position)
    users = [u for u in range(n_users) if len(seqs[u]) >= min_items]
    train_events = []
    for position, e in enumerate(order):
        u, i = events[e][0], events[e][1]
        if u in users:
            train_events.append(position < where[u][-2] and i not in seqs[u][-2:])
        else:
            train_events.append(True)
    train = {u: seqs[u][:-2] if u in users else seqs[u] for u in range(n_users)}
    return users, seqs, train, train_events


events_strategy = st.lists(
    st.tuples(st.integers(0, 24), st.integers(0, 5), st.integers(0, 6), st.sampled_from(EVENTS)),
    min_size=1, max_size=300)


@settings(max_examples=80, deadline=None)
@given(events_strategy, st.integers(2, 4))
def test_split_matches_the_definition(events, min_items):
    """More users than items, few timestamps: key collisions and ties are common."""
    n_users, n_items = max(e[0] for e in events) + 1, 6
    ds = dataset_of(events, n_users, n_items)
    users, seqs, train, train_events = reference_split(events, n_users, min_items)
    split = leave_last_out(ds, min_items)
    assert split.test_users.tolist() == users
    assert split.val_items.tolist() == [seqs[u][-2] for u in users]
    assert split.test_items.tolist() == [seqs[u][-1] for u in users]
    assert [split.train.of(u).tolist() for u in range(n_users)] == [train[u] for u in range(n_users)]
    assert split.train_events.tolist() == train_events
    assert [split.history("test").of(u).tolist() for u in range(n_users)] == [
        seqs[u][:-1] if u in users else seqs[u] for u in range(n_users)]
