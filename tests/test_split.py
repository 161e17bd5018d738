import numpy as np

from edgerec.data.schema import EVENT_CODE, Catalog, Dataset, Interactions
from edgerec.data.split import consumed_sequences, leave_last_out


def make(events, n_items=6):
    """events: (user, item, time, event name)."""
    user, item, t, ev = zip(*events)
    log = Interactions(np.array(user, np.int32), np.array(item, np.int32), np.array(t, np.int64),
                       np.array([EVENT_CODE[e] for e in ev], np.int8), np.ones(len(user), np.float32))
    n_users = max(user) + 1
    return Dataset(Catalog.bare([f"i{i}" for i in range(n_items)]), log.sorted_by_time(),
                   [f"u{u}" for u in range(n_users)])


def test_ties_keep_file_order_and_skips_are_not_consumption():
    ds = make([(0, 3, 5, "play"), (0, 1, 5, "play"), (0, 2, 4, "skip"), (0, 2, 6, "finish"), (0, 1, 7, "play")])
    seq, _ = consumed_sequences(ds.interactions, ds.n_users)
    # item 3 and 1 share time 5: file order wins; the skip of 2 at t=4 is not a consumption;
    # the replay of 1 at t=7 counts once
    assert seq.of(0).tolist() == [3, 1, 2]


def test_leave_last_out_holds_out_last_two_and_never_leaks():
    ds = make([
        (0, 0, 1, "play"), (0, 5, 2, "skip"), (0, 1, 3, "play"), (0, 2, 4, "finish"), (0, 5, 5, "play"),
        (1, 4, 1, "play"), (1, 3, 2, "play"),  # too short: training only
    ])
    split = leave_last_out(ds)
    assert split.val_users.tolist() == [0] and split.val_items.tolist() == [2]
    assert split.test_items.tolist() == [5]
    assert split.train.of(0).tolist() == [0, 1]
    assert split.train.of(1).tolist() == [4, 3]
    train_log = ds.interactions.take(split.train_events)
    # neither held-out item of user 0 reaches training events, not even the early skip of item 5
    assert not np.any((train_log.user == 0) & np.isin(train_log.item, [2, 5]))
    assert split.history("test").of(0).tolist() == [0, 1, 2]


def test_no_test_item_reaches_training_on_synthetic_data(small_dataset):
    split = leave_last_out(small_dataset)
    log = small_dataset.interactions.take(split.train_events)
    train_pairs = set(zip(log.user.tolist(), log.item.tolist()))
    for u, i, v in zip(split.test_users, split.test_items, split.val_items):
        assert (u, i) not in train_pairs and (u, v) not in train_pairs
        assert i not in split.train.of(u) and v not in split.train.of(u)
    assert len(split.test_users) > 0.9 * small_dataset.n_users


def test_last_pads_on_the_left():
    ds = make([(0, 1, 1, "play"), (0, 2, 2, "play"), (1, 3, 1, "play")])
    seq, _ = consumed_sequences(ds.interactions, ds.n_users)
    assert seq.last(3, pad=0).tolist() == [[0, 1, 2], [0, 0, 3]]
    assert seq.last(1).tolist() == [[2], [3]]
