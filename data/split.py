"""Per-user sequences and the leave-last-out split used by every evaluation.

A user's sequence is the items they consumed (any event but a skip), in time
order, each item once (its first consumption). The last item is the test
target, the one before it the validation target; users with fewer than three
items are kept for training only. Nothing of a user's validation or test item
reaches the training events, not even a skip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgerec.data.schema import Dataset, Interactions
from edgerec.errors import DataError


@dataclass
class Sequences:
    """Ragged per-user item sequences in CSR form: user u owns items[indptr[u]:indptr[u+1]]."""

    indptr: np.ndarray  # int64 (n_users + 1,)
    items: np.ndarray  # int32
    times: np.ndarray  # int64

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def of(self, user: int) -> np.ndarray:
        return self.items[self.indptr[user]:self.indptr[user + 1]]

    def row_of(self) -> np.ndarray:
        """The user of every entry of `items`."""
        return np.repeat(np.arange(self.n_users, dtype=np.int32), self.lengths())

    def newest(self, n: int) -> Sequences:
        """Each user's newest `n` items (all of them when fewer), in order: a history as a device that
        has seen only the user's last `n` events holds it."""
        lengths = self.lengths()
        kept = np.minimum(lengths, n)
        place = np.arange(len(self.items)) - np.repeat(self.indptr[:-1], lengths)  # index within the row
        keep = place >= np.repeat(lengths - kept, lengths)
        return Sequences(np.r_[0, np.cumsum(kept)].astype(np.int64), self.items[keep], self.times[keep])

    def last(self, n: int, users: np.ndarray | None = None, pad: int = 0) -> np.ndarray:
        """The last `n` items of each user, left-padded with `pad` (int64, shape (users, n))."""
        users = np.arange(self.n_users) if users is None else np.asarray(users)
        if len(self.items) == 0:
            return np.full((len(users), n), pad, np.int64)
        ends = self.indptr[users + 1]
        lens = np.minimum(ends - self.indptr[users], n)
        offsets = np.arange(n)[None, :] - (n - lens)[:, None]  # negative: padding
        index = ends[:, None] - lens[:, None] + offsets
        out = np.where(offsets >= 0, self.items[np.clip(index, 0, len(self.items) - 1)], pad)
        return out.astype(np.int64)

    def append(self, users: np.ndarray, items: np.ndarray, times: np.ndarray) -> Sequences:
        """A copy with one more item at the end of each listed user's sequence."""
        extra = np.zeros(self.n_users, np.int64)
        extra[users] = 1
        lengths = self.lengths() + extra
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        out_items = np.empty(indptr[-1], np.int32)
        out_times = np.empty(indptr[-1], np.int64)
        # old entries shift right by the number of extras before their user
        shift = np.concatenate([[0], np.cumsum(extra)])[:-1]
        pos = np.arange(len(self.items)) + shift[self.row_of()]
        out_items[pos], out_times[pos] = self.items, self.times
        out_items[indptr[users + 1] - 1], out_times[indptr[users + 1] - 1] = items, times
        return Sequences(indptr, out_items, out_times)


def consumed_sequences(log: Interactions, n_users: int) -> tuple[Sequences, np.ndarray]:
    """Sequences of first consumptions, and for each entry the index of its event in `log`.

    `log` must be sorted by (user, time) (as every loader returns it).
    """
    idx = np.flatnonzero(log.consumed_mask())
    n_items = int(log.item.max()) + 1 if len(log) else 1
    key = log.user[idx].astype(np.int64) * n_items + log.item[idx]
    _, first = np.unique(key, return_index=True)
    event_index = idx[np.sort(first)]
    users = log.user[event_index]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=n_users))])
    return Sequences(indptr, log.item[event_index].astype(np.int32), log.timestamp[event_index]), event_index


@dataclass
class Split:
    """Leave-last-out split of a data set."""

    train: Sequences  # histories for validation (all but the last two items)
    val_users: np.ndarray
    val_items: np.ndarray
    val_times: np.ndarray
    test_users: np.ndarray  # same users as val_users
    test_items: np.ndarray
    test_times: np.ndarray
    train_events: np.ndarray  # bool mask over the data set's events usable for training
    n_items: int
    val_events: np.ndarray = None  # index into the data set's events of each validation consumption
    test_events: np.ndarray = None

    def history(self, phase: str) -> Sequences:
        """Model input for a phase: train items for 'val', train + validation item for 'test'."""
        if phase == "val":
            return self.train
        if phase == "test":
            return self.train.append(self.val_users, self.val_items, self.val_times)
        raise ValueError(f"phase must be 'val' or 'test', not {phase!r}")

    def targets(self, phase: str) -> tuple[np.ndarray, np.ndarray]:
        return (self.val_users, self.val_items) if phase == "val" else (self.test_users, self.test_items)

    def target_events(self, phase: str) -> np.ndarray:
        """Index of each target's event in the log (for its context: time, device)."""
        return self.val_events if phase == "val" else self.test_events


def require_targets(split: Split, phase: str = "test") -> None:
    """Refuse a split whose `phase` holds out no item: every metric over it would be 0 of 0 users."""
    if len(split.targets(phase)[0]) == 0:
        raise DataError(f"no user has a {phase} item: leave-last-out holds out a user's last two "
                        "consumed items, so it needs users with at least three distinct consumed items "
                        "(one to learn from, one to validate, one to test) and this log has none; "
                        "use a log with longer histories")


def leave_last_out(dataset: Dataset, min_items: int = 3) -> Split:
    log = dataset.interactions
    seq, event_index = consumed_sequences(log, dataset.n_users)
    lengths = seq.lengths()
    users = np.flatnonzero(lengths >= min_items).astype(np.int32)
    ends = seq.indptr[users + 1]
    test_pos, val_pos = ends - 1, ends - 2

    keep = np.ones(len(seq.items), bool)
    keep[test_pos] = keep[val_pos] = False
    rows = seq.row_of()[keep]
    train = Sequences(
        np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=seq.n_users))]),
        seq.items[keep], seq.times[keep],
    )
    # training events: before the validation consumption, and never about a held-out item
    cut = np.full(dataset.n_users, np.iinfo(np.int64).max)
    cut[users] = event_index[val_pos]
    events = np.arange(len(log))
    train_events = events < cut[log.user]
    held = np.zeros(len(log), bool)
    if len(users):
        held_key = np.concatenate([users, users]).astype(np.int64) * dataset.n_items + np.concatenate(
            [seq.items[val_pos], seq.items[test_pos]])
        held = np.isin(log.user.astype(np.int64) * dataset.n_items + log.item, held_key)
    return Split(
        train=train,
        val_users=users, val_items=seq.items[val_pos], val_times=seq.times[val_pos],
        test_users=users, test_items=seq.items[test_pos], test_times=seq.times[test_pos],
        train_events=train_events & ~held,
        n_items=dataset.n_items,
        val_events=event_index[val_pos],
        test_events=event_index[test_pos],
    )
