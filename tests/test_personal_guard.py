"""The personal vector as it is kept and read back (its mutation run asked for these;
tools/mutation-scores.md): float16 little-endian hex under its space, split over entries of at most
MAX_ID characters (a 64-d vector did not fit one), anything damaged read as zeros, and the stage."""

from __future__ import annotations

import numpy as np
import pytest

from edgerec.runtime.history import HistoryStore
from edgerec.runtime.personal import KIND, PersonalStage, load_personal, save_personal, use_personal
from edgerec.runtime.request import Request
from edgerec.runtime.vocab import MAX_ID

SPACE = "0123456789abcdef01234567"


@pytest.fixture
def store(tmp_path):
    s = HistoryStore(tmp_path / "h.db")
    yield s
    s.close()


@pytest.mark.parametrize("dim", [1, 16, 56, 57, 58, 64, 128, 1024])
def test_a_vector_of_any_bundle_width_is_kept_and_read_back(store, dim):
    vector = np.random.default_rng(dim).normal(0, 1, dim).astype(np.float32)
    save_personal(store, "ana", SPACE, vector)
    entries = store.preferences("ana")[KIND]
    assert all(len(e) <= MAX_ID for e in entries) and len(entries) == -(-4 * dim // (MAX_ID - 30))
    back = load_personal(store, "ana", SPACE, dim)
    assert back.dtype == np.float32 and np.array_equal(back, vector.astype(np.float16).astype(np.float32))
    assert not np.any(load_personal(store, "ana", "f" * 24, dim))  # another space: nothing
    assert not np.any(load_personal(store, "ana", SPACE, dim + 1))  # another width: nothing


def test_the_stored_text_is_float16_little_endian_hex_under_its_space(store):
    save_personal(store, "ana", SPACE, np.array([1.0, -2.0], np.float32))
    assert store.preferences("ana")[KIND] == [f"{SPACE}:0000:003c00c0"]
    save_personal(store, "ana", "f" * 24, np.array([0.5], np.float32))  # replaces the vector of any space
    assert store.preferences("ana")[KIND] == [f"{'f' * 24}:0000:0038"]


def test_a_vector_kept_before_it_was_split_is_still_read(store):
    store.set_preferences("ana", KIND, [f"{SPACE}:003c00c0", f"{'a' * 24}:0040"])
    assert load_personal(store, "ana", SPACE, 2).tolist() == [1.0, -2.0]


def test_entries_are_joined_in_their_order_not_as_stored(store):
    store.set_preferences("ana", KIND, [f"{SPACE}:0001:00c0", f"{SPACE}:0000:003c", f"{'a' * 24}:0000:0040"])
    assert load_personal(store, "ana", SPACE, 2).tolist() == [1.0, -2.0]


@pytest.mark.parametrize("entries", [[f"{SPACE}:0000:abc"], [f"{SPACE}:0000:zz00"], [f"{SPACE}:0000:007c0000"],
                                     [f"{SPACE}:0000:007e003c"], [f"{SPACE}:0000:003c"]])
def test_a_damaged_odd_infinite_or_short_entry_reads_as_zeros(store, entries):
    store.set_preferences("ana", KIND, entries)
    out = load_personal(store, "ana", SPACE, 2)
    assert out.dtype == np.float32 and out.tolist() == [0.0, 0.0]


def _request(vector):
    request = Request("ana", 5, 1.7e9, 12.0, -1, None, None, None)
    request.vector = vector
    return request


def test_the_stage_adds_the_vector_as_a_new_array(store):
    stage = PersonalStage(store, SPACE)
    encoded = np.array([0.25, 0.5], np.float32)
    assert not stage.applies(_request(None)) and stage.applies(_request(encoded))
    request = stage(_request(encoded))
    assert request.vector is encoded  # no vector yet: the encoder's output as it was
    save_personal(store, "ana", SPACE, np.array([1.0, -2.0], np.float32))
    request = stage(_request(encoded))
    assert request.vector.tolist() == [1.25, -1.5] and request.vector.dtype == np.float32
    assert encoded.tolist() == [0.25, 0.5]  # the cached encoder output is untouched


class FakeRec:
    def __init__(self, store):
        from edgerec.runtime.pipeline import Pipeline, Stage

        self.history = store
        self.manifest = type("M", (), {"embedding_space": SPACE})()
        self.pipeline = Pipeline([Stage("encode", lambda r: r), Stage("retrieve", lambda r: r)])


def test_use_personal_runs_the_stage_after_encode_once_and_optional(store):
    rec = FakeRec(store)
    use_personal(rec)
    use_personal(rec)
    assert rec.pipeline.names == ["encode", "personal", "retrieve"]
    stage = rec.pipeline["personal"]
    assert stage.required is False and stage.applies(_request(None)) is False
    save_personal(store, "ana", SPACE, np.array([1.0], np.float32))
    assert stage.run(_request(np.array([2.0], np.float32))).vector.tolist() == [3.0]
