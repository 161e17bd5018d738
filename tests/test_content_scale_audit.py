"""Content vectors far outside their column's scale (data/tables.py read_vectors), found by an audit: one
finite value of 1e30 in `edgerec train --content audio=audio.npy` trained until the loss overflowed,
and the error blamed the learning rate. Such a value is now refused when the file is read, naming its
row and column; genuine embeddings of every usual scale still read."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from edgerec.data.tables import read_vectors
from edgerec.errors import DataError
from edgerec.models.train import _diverged


def refused(array, what="--content audio") -> str:
    with pytest.raises(DataError) as err:
        read_vectors(array, what)
    return str(err.value)


def test_a_huge_content_value_is_refused_naming_its_row_and_column_not_the_folder(tmp_path):
    audio = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    audio[17, 3] = 1e30
    np.save(tmp_path / "audio.npy", audio)
    with pytest.raises(DataError) as err:
        read_vectors(tmp_path / "audio.npy", "--content audio")
    message = str(err.value)
    assert message.startswith("audio.npy: --content audio: row 17, column 3 holds 1e+30, where that column's "
                              "values are usually about ")
    assert "rescale the column" in message and str(tmp_path) not in message


@pytest.mark.parametrize("value", [5e3, -2e4, 1e30])
def test_values_over_1000_times_a_unit_columns_size_are_refused(value):
    vectors = np.random.default_rng(1).normal(size=(40, 4))
    vectors[5, 2] = value
    assert refused(vectors).startswith(f"--content audio: row 5, column 2 holds {value:.3g}")


def test_genuine_vectors_of_every_usual_scale_read_unchanged():
    rng = np.random.default_rng(2)
    unit = rng.normal(size=(200, 16))
    sentence = unit / np.linalg.norm(unit, axis=1, keepdims=True)  # unit-norm text embeddings
    cases = [sentence, unit, unit * 30.0,  # a dot-product model's item vectors
             unit * 1e4 + 5e4,  # a column on a large scale of its own (durations in seconds)
             np.eye(200)[:, :16] * 999.0,  # sparse: one-hot columns, their zeros are no scale
             rng.poisson(3.0, size=(200, 4)) * 100.0,  # counts, heavy-ish tail
             np.c_[unit[:, :3] * 1e-5, np.ones(200)]]  # a tiny column beside an ordinary one
    for case in cases:
        tiny = case.copy()
        if case is cases[-1]:
            tiny[7, 0] = 1.0  # a normal-sized value in a tiny column: far from its scale, harmless
        assert read_vectors(tiny, "x").tolist() == tiny.astype(np.float32).tolist()


def test_train_refuses_the_file_before_training(tmp_path):
    from edgerec.cli.main import cli
    from edgerec.data import SynthConfig, write_synth

    write_synth(SynthConfig(users=30, items=60, events=600, seed=3), tmp_path / "data")
    audio = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    audio[17, 3] = 1e30
    np.save(tmp_path / "audio.npy", audio)
    result = CliRunner().invoke(cli, ["train", "--data", str(tmp_path / "data"), "--content",
                                      f"audio={tmp_path / 'audio.npy'}", "--dim", "8", "--layers", "1", "--epochs",
                                      "1", "--steps", "5", "--out", str(tmp_path / "ckpt")])
    assert result.exit_code != 0
    assert "row 17, column 3 holds 1e+30" in result.output and "diverged" not in result.output
    assert not (tmp_path / "ckpt").exists()


def test_the_divergence_message_names_the_content_vectors_when_there_are_some():
    plain = _diverged(float("inf"), 0, 4, 10, 0.01)
    assert "learning rate" in plain and "content" not in plain
    with_content = _diverged(float("inf"), 0, 4, 10, 0.01, ("audio", "text"))
    assert with_content.startswith(plain)
    assert with_content.endswith("; or the content vectors (audio, text) are on too large a scale: standardize them")
