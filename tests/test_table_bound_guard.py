"""Guards of the central table fit (federated/table_bound.py), the reference the federated study
compares FedAvg with: its loss, its Adam step, the epoch it keeps, and what it refuses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import logsumexp

from edgerec.errors import ConfigError
from edgerec.federated.table_bound import TableFit, fit_table, held_out_loss


def world(n: int = 40, items: int = 12, d: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    users = rng.normal(size=(n, d)).astype(np.float32)
    table = rng.normal(size=(items, d)).astype(np.float32)
    return users, rng.integers(0, items, n), table


def test_the_held_out_loss_is_the_mean_softmax_loss_over_every_row():
    users, targets, table = world(n=600, items=30, d=6)
    logits = users.astype(np.float64) / 0.5 @ table.T.astype(np.float64)
    want = np.mean(logsumexp(logits, axis=1) - logits[np.arange(600), targets])
    assert held_out_loss(users, targets, table, 0.5) == pytest.approx(want, rel=1e-5)
    one = logits[:1]
    assert held_out_loss(users[:1], targets[:1], table, 0.5) == pytest.approx(
        logsumexp(one) - one[0, targets[0]], rel=1e-5)
    assert held_out_loss(np.zeros((3, 6)), [0, 1, 2], table, 0.5) == pytest.approx(math.log(30), rel=1e-6)


def test_adams_epsilon_is_added_to_the_root_of_the_mean_squared_gradient():
    """Two items, every user on item 0; item 1 at a logit of ln(1e-8) below it has a mean gradient
    of about 1e-8, the size of Adam's epsilon: its first step is lr * g / (|g| + 1e-8), half of lr."""
    users = np.tile([[1.0, 0.0]], (4, 1)).astype(np.float32)
    table = np.array([[0.0, 0.0], [math.log(1e-8), 0.0]], np.float32)
    step = fit_table(users, np.zeros(4, np.int64), table, 1.0, TableFit(epochs=1, min_steps=1, batch=4, lr=0.01))
    g = 1e-8 / (1 + 1e-8)  # the mean over the 4 users, not their sum
    assert step[1, 0] == pytest.approx(table[1, 0] - 0.01 * g / (g + 1e-8), abs=1e-5)  # about lr / 2
    assert step[1, 1] == 0 and np.array_equal(step[0], table[0])  # no gradient (item 0's is below float32)


def steps_of(users, targets, table, batch, lr, upto):
    """The table after each step 0..upto of one trajectory (a longer fit starts with the same steps)."""
    return [table] + [fit_table(users, targets, table, 0.2, TableFit(epochs=1, min_steps=j, batch=batch, lr=lr))
                      for j in range(1, upto + 1)]


def test_the_held_out_steps_keep_the_best_table_read_after_each_epoch_and_at_the_end():
    users, noise, table = world()
    held_users, held_targets = users + 0.01, noise  # its own steps, nearly: at this lr Adam overshoots
    tables = steps_of(users, noise, table, 40, 0.5, 12)
    losses = [held_out_loss(held_users, held_targets, t, 0.2) for t in tables]
    best = int(np.argmin(losses))
    assert 0 < best < 12 and losses[best] < losses[12]  # a minimum inside: not the last table, not v1's
    got = fit_table(users, noise, table, 0.2, TableFit(epochs=1, min_steps=12, batch=40, lr=0.5),
                    held_out=(held_users, held_targets))
    assert np.array_equal(got, tables[best])
    # two steps an epoch and an odd count: read at 2, 4, ... and at the last step, never between
    tables = steps_of(users, noise, table, 20, 0.01, 7)
    losses = [held_out_loss(users, noise, t, 0.2) for t in tables]
    assert losses == sorted(losses, reverse=True)  # on its own steps, every step helps: the last is best
    got = fit_table(users, noise, table, 0.2, TableFit(epochs=1, min_steps=7, batch=20, lr=0.01),
                    held_out=(users, noise))
    assert np.array_equal(got, tables[7])


def test_held_out_steps_that_tell_no_table_apart_keep_v1s():
    users, targets, table = world()
    got = fit_table(users, targets, table, 0.2, TableFit(epochs=1, min_steps=5, batch=40, lr=0.05),
                    held_out=(np.zeros((6, 4)), np.arange(6)))  # zero users: every table has loss log(items)
    assert np.array_equal(got, table)


def test_the_fit_is_float32_whatever_it_is_given_and_leaves_the_callers_table_alone():
    users, targets, table = world()
    fit = TableFit(epochs=2, min_steps=3, batch=16, lr=0.05)
    want = fit_table(users, targets, table, 0.2, fit)
    before = table.copy()
    got = fit_table(users.astype(np.float64), targets.astype(np.int32), table.astype(np.float64), 0.2, fit)
    assert got.dtype == np.float32 and np.array_equal(got, want)
    assert np.array_equal(table, before) and not np.array_equal(want, table)
    assert np.array_equal(fit_table(users, targets, table, 0.2, TableFit(epochs=1, min_steps=3, batch=1, lr=0.05)),
                          steps_of(users, targets, table, 1, 0.05, 3)[3])  # a batch of one is a batch


USERS, TARGETS, TABLE = world()
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("bad, message", [
    (dict(users=USERS[:, :3]), r"a table fit's steps need users \(n, d\), n targets, a table \(items, d\) and a "
                               r"finite temperature > 0 \(got \(40, 3\), \(40,\), \(12, 4\), 0.2\)"),
    (dict(users=USERS[0]), "users"), (dict(table=TABLE[0]), "a table"), (dict(targets=TARGETS[:-1]), "n targets"),
    (dict(targets=TARGETS[:, None]), "n targets"), (dict(users=USERS[:0], targets=TARGETS[:0]), "users"),
    (dict(temperature=0.0), "temperature"), (dict(temperature=INF), "temperature"),
    (dict(temperature=NAN), "temperature"), (dict(temperature=True), "temperature"),
    (dict(temperature="0.2"), "temperature"),
    (dict(users=np.where(np.arange(4) == 2, NAN, USERS)), r"a table fit's steps need finite user vectors and table "
                                                          r"rows \(found NaN or infinity\)"),
    (dict(table=np.where(np.arange(4) == 1, INF, TABLE)), r"\(found NaN or infinity\)"),
    (dict(targets=np.full(40, 12)), r"a table fit's steps need targets that are rows of the 12-row table"),
    (dict(targets=np.full(40, -1)), "rows of the 12-row table"),
    (dict(targets=TARGETS + 0.7), r"rows of the 12-row table \(got float64\)"),  # not rounded without a word
    (dict(targets=TARGETS > 5), r"\(got bool\)"),
])
def test_a_table_fit_refuses_steps_that_are_not_steps(bad, message):
    with pytest.raises(ConfigError, match=message):
        fit_table(**(dict(users=USERS, targets=TARGETS, table=TABLE, temperature=0.2) | bad))


@pytest.mark.parametrize("held_out, message", [
    ((USERS[:0], TARGETS[:0]), "held-out steps need users"),  # none: every epoch would tie with v1
    ((USERS[:, :2], TARGETS), "held-out steps need users"), ((USERS * NAN, TARGETS), "held-out steps need finite"),
    ((USERS, TARGETS + 12), "held-out steps need targets that are rows"), ((USERS, TARGETS[:3]), "n targets"),
])
def test_held_out_steps_that_are_not_steps_are_refused(held_out, message):
    with pytest.raises(ConfigError, match=message):
        fit_table(USERS, TARGETS, TABLE, 0.2, TableFit(min_steps=5), held_out=held_out)


@pytest.mark.parametrize("field, value", [
    ("epochs", 0), ("epochs", 1.5), ("epochs", True), ("min_steps", 0), ("min_steps", 2.0), ("batch", 0),
    ("batch", "64"), ("seed", -1), ("seed", 0.5), ("lr", 0.0), ("lr", -1e-3), ("lr", INF), ("lr", NAN),
    ("lr", True), ("lr", "0.01"),
])
def test_a_table_fit_setting_out_of_bounds_is_refused(field, value):
    fit = TableFit(**{field: value})
    with pytest.raises(ConfigError, match=r"a table fit needs whole epochs, min_steps and batch >= 1, a seed >= 0 "
                                          r"and a finite lr > 0 \(got TableFit\("):
        fit.check()
    with pytest.raises(ConfigError):
        fit_table(USERS, TARGETS, TABLE, 0.2, fit)


def test_the_least_settings_are_accepted():
    fit = TableFit(epochs=1, min_steps=1, batch=1, lr=1e-9, seed=0)
    assert fit.check() is fit
    assert TableFit(epochs=np.int64(2), batch=np.int32(8)).check().batch == 8
