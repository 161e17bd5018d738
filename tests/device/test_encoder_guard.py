"""Guards of the user encoder's feeding (runtime/encoder.py): left padding to the newest items, which
histories run as one batch or one by one, the id dtype each input declares, and the length fed for
dynamic and fixed history axes; with a recording stand-in for the inference engine."""

import numpy as np
import pytest

from edgerec.runtime.backends import Backend, TfliteBackend
from edgerec.runtime.bundle import ModelEntry, TensorSpec
from edgerec.runtime.encoder import UserEncoder, pad_histories


class Recording(Backend):
    """An engine that returns each history's row sum and length as its 'user vector' (float64, to see the
    cast), and records what it was fed."""

    format = "onnx"

    def __init__(self, name="ids"):
        self.name, self.fed = name, []

    @property
    def input_names(self):
        return [self.name, "other"]

    def run(self, feeds):
        (rows,) = feeds.values()
        self.fed.append((list(feeds), rows.dtype, rows.copy()))
        return [np.stack([rows.sum(1), np.full(len(rows), rows.shape[1])], 1).astype(np.float64), "ignored"]


class RecordingTflite(TfliteBackend, Recording):
    """isinstance TfliteBackend, without an interpreter."""

    def __init__(self):
        Recording.__init__(self)

    input_names = Recording.input_names
    run = Recording.run


def entry(shape=("batch", "length"), dtype="int64", history_length=None):
    inputs = [TensorSpec("ids", dtype, list(shape))] if shape is not None else []
    return ModelEntry("user_encoder", "onnx", "user.onnx", inputs, [], history_length=history_length)


def test_histories_are_cut_to_their_newest_rows_and_left_padded_with_zero():
    out = pad_histories([np.array([1, 2, 3, 4, 5]), [7], [], np.array([8, 9], np.int32)], 3)
    assert out.dtype == np.int64 and out.tolist() == [[3, 4, 5], [0, 0, 7], [0, 0, 0], [0, 8, 9]]
    assert pad_histories([], 4).shape == (0, 4)
    assert pad_histories([[2**40]], 1).tolist() == [[2**40]]


def test_a_dynamic_encoder_takes_the_batch_at_once_padded_to_its_longest_history():
    backend = Recording()
    encoder = UserEncoder(backend, entry(), max_len=4)
    assert (encoder.max_len, encoder.fixed, encoder.one_by_one, encoder.dtype, encoder.input_name) == (
        4, False, False, np.int64, "ids")
    vectors = encoder.encode([np.array([1, 2]), np.array([3, 4, 5, 6, 7, 8]), np.array([], np.int64)])
    assert vectors.dtype == np.float32 and vectors.tolist() == [[3, 4], [26, 4], [0, 4]]
    names, dtype, rows = backend.fed[0]
    assert names == ["ids"] and dtype == np.int64 and rows.tolist() == [[0, 0, 1, 2], [5, 6, 7, 8], [0, 0, 0, 0]]
    encoder.encode([np.array([1, 2])])  # the longest history sets the length, below the cap
    assert backend.fed[-1][2].tolist() == [[1, 2]]
    encoder.encode([np.array([], np.int64)])  # at least one column, even with no history at all
    assert backend.fed[-1][2].tolist() == [[0]]
    assert len(backend.fed) == 3  # one engine call a batch
    assert encoder.encode([]).shape == (0, 2) and backend.fed[-1][2].shape == (0, 1)  # no histories: one column


def test_the_manifests_history_length_overrides_the_runtimes_and_an_int32_input_gets_int32_ids():
    backend = Recording()
    encoder = UserEncoder(backend, entry(dtype="int32", history_length=2), max_len=50)
    assert encoder.max_len == 2 and encoder.dtype == np.int32
    encoder.encode([np.array([1, 2, 3])])
    assert backend.fed[0][1] == np.int32 and backend.fed[0][2].tolist() == [[2, 3]]


def test_a_fixed_history_axis_is_always_padded_to_its_length():
    backend = Recording()
    encoder = UserEncoder(backend, entry(shape=("batch", 5)), max_len=5)
    assert encoder.fixed and not encoder.one_by_one
    encoder.encode([np.array([1])])
    assert backend.fed[0][2].tolist() == [[0, 0, 0, 0, 1]]
    assert not UserEncoder(Recording(), entry(shape=("batch", "5")), 5).fixed  # a name, not a length
    assert not UserEncoder(Recording(), entry(shape=("batch",)), 5).fixed
    assert not UserEncoder(Recording(), entry(shape=None), 5).fixed


def test_a_batch_fixed_at_one_runs_history_by_history():
    backend = Recording()
    encoder = UserEncoder(backend, entry(shape=(1, "length")), max_len=3)
    assert encoder.one_by_one and not encoder.fixed
    vectors = encoder.encode([np.array([1, 2]), np.array([4])])
    assert [f[2].tolist() for f in backend.fed] == [[[1, 2]], [[0, 4]]]
    assert vectors.dtype == np.float32 and vectors.tolist() == [[3, 2], [4, 2]]
    assert not UserEncoder(Recording(), entry(shape=(2, "length")), 3).one_by_one
    assert not UserEncoder(Recording(), entry(shape=None), 3).one_by_one


def test_a_tflite_encoder_is_fixed_one_by_one_and_fed_int32_whatever_its_entry_says():
    backend = RecordingTflite()
    encoder = UserEncoder(backend, entry(shape=("batch", "length"), dtype="int64", history_length=3), max_len=9)
    assert (encoder.fixed, encoder.one_by_one, encoder.dtype, encoder.max_len) == (True, True, np.int32, 3)
    vectors = encoder.encode([np.array([5]), np.array([1, 2, 3, 4])])
    assert [(f[1], f[2].tolist()) for f in backend.fed] == [(np.int32, [[0, 0, 5]]), (np.int32, [[2, 3, 4]])]
    assert vectors.tolist() == [[5, 3], [9, 3]]


@pytest.mark.parametrize("shape", [("batch", "length"), (1, "length")])
def test_encode_rows_takes_padded_rows_as_they_are(shape):
    backend = Recording()
    rows = np.array([[0, 1, 2], [3, 4, 5]], np.int64)
    out = UserEncoder(backend, entry(shape=shape), max_len=3).encode_rows(rows)
    assert out.tolist() == [[3, 3], [12, 3]] and out.dtype == np.float32
