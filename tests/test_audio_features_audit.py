"""Audit fixes of `edgerec content audio-features` (models/audio.py): broken WAV files are refused by
name, and long files are summed up block by block with the same features as before."""

from __future__ import annotations

import struct
import tracemalloc
import wave

import numpy as np
import pytest

from edgerec.errors import DataError
from edgerec.models import audio
from edgerec.models.audio import (
    FEATURES,
    audio_features,
    catalog_audio_features,
    read_wav,
    wav_features,
)


def _old_audio_features(samples, rate, frame=2048, hop=1024):
    """audio_features before the block-wise rewrite: the reference the new code must match."""
    if len(samples) < frame:
        samples = np.pad(samples, (0, frame - len(samples)))
    count = 1 + (len(samples) - frame) // hop
    frames = np.lib.stride_tricks.sliding_window_view(samples, frame)[::hop][:count] * np.hanning(frame)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-12
    freqs = np.fft.rfftfreq(frame, 1.0 / rate)
    edges = np.geomspace(40.0, rate / 2, audio.BANDS + 1)
    bands = np.stack([power[:, (freqs >= lo) & (freqs < hi)].sum(1) for lo, hi in zip(edges[:-1], edges[1:])], 1)
    log_bands = np.log10(bands + 1e-10).mean(0)
    total = power.sum(1)
    centroid = (power * freqs).sum(1) / total
    cumulative = np.cumsum(power, 1) / total[:, None]
    rolloff = freqs[np.argmax(cumulative >= 0.85, axis=1)]
    flatness = np.exp(np.log(power).mean(1)) / power.mean(1)
    rms = np.sqrt((frames ** 2).mean(1))
    zero_cross = (np.abs(np.diff(np.sign(samples))) > 0).mean()
    onset = np.maximum(np.diff(np.log(total)), 0)
    tempo = _old_tempo(onset, rate / hop)
    nyquist = rate / 2
    return np.concatenate([log_bands / 10.0, [centroid.mean() / nyquist, centroid.std() / nyquist,
                                              rolloff.mean() / nyquist, flatness.mean(), rms.mean(), rms.std(),
                                              zero_cross, tempo / 200.0]]).astype(np.float32)


def _old_tempo(onset, frames_per_second):
    if len(onset) < 8 or onset.std() == 0:
        return 0.0
    x = onset - onset.mean()
    corr = np.correlate(x, x, "full")[len(x) - 1:]
    lags = np.arange(len(corr))
    bpm = np.where(lags > 0, 60.0 * frames_per_second / np.maximum(lags, 1), 0)
    valid = (bpm >= 60) & (bpm <= 180)
    if not valid.any():
        return 0.0
    return float(bpm[valid][np.argmax(corr[valid])])


def _signals():
    rng = np.random.default_rng(0)
    rate = 16000
    t = np.arange(rate * 6) / rate
    clicks = 0.3 * np.sin(2 * np.pi * 440 * t)
    clicks[:: rate // 2] += 0.9  # 120 BPM
    yield "clicks", clicks.astype(np.float32), rate
    yield "noise", (rng.normal(size=rate * 3) * 0.1).astype(np.float32), rate
    yield "sweep", np.sin(2 * np.pi * (100 + 2000 * t[: rate * 2]) * t[: rate * 2]).astype(np.float32), rate
    yield "short", (rng.normal(size=700) * 0.2).astype(np.float32), 8000  # shorter than one frame: padded
    yield "one frame", (rng.normal(size=2048) * 0.2).astype(np.float32), 44100
    yield "silence", np.zeros(5000, np.float32), 22050
    yield "empty", np.zeros(0, np.float32), 16000


def _write(path, samples, rate, channels=1):
    data = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(np.repeat(data, channels).tobytes())


@pytest.mark.parametrize("blocks", [(1 << 16, 256), (1000, 3)])  # the defaults, and pieces that split frames
def test_blockwise_features_equal_the_old_whole_file_ones(monkeypatch, blocks):
    monkeypatch.setattr(audio, "READ_FRAMES", blocks[0])
    monkeypatch.setattr(audio, "BLOCK_FRAMES", blocks[1])
    for name, samples, rate in _signals():
        expected = _old_audio_features(samples, rate)
        np.testing.assert_allclose(audio_features(samples, rate), expected, rtol=1e-5, atol=1e-6, err_msg=name)


def test_a_file_read_in_pieces_gives_the_features_of_its_samples(tmp_path, monkeypatch):
    monkeypatch.setattr(audio, "READ_FRAMES", 777)  # many pieces, none a multiple of the hop
    for name, samples, rate in _signals():
        _write(tmp_path / "a.wav", samples, rate, channels=2)
        read, got_rate = read_wav(tmp_path / "a.wav")
        assert got_rate == rate and len(read) == len(samples)
        np.testing.assert_allclose(wav_features(tmp_path / "a.wav"), _old_audio_features(read, rate),
                                   rtol=1e-5, atol=1e-6, err_msg=name)


def _peak_bytes(path):
    tracemalloc.start()
    try:
        wav_features(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_length_of_the_sound(tmp_path):
    rng = np.random.default_rng(1)
    rate = 8000
    _write(tmp_path / "short.wav", rng.normal(size=rate * 20) * 0.1, rate)
    _write(tmp_path / "long.wav", rng.normal(size=rate * 160) * 0.1, rate)
    short, long = _peak_bytes(tmp_path / "short.wav"), _peak_bytes(tmp_path / "long.wav")
    # 8x the sound; only the per-frame onset curve (8 bytes a frame) grows. The whole-file version
    # needed about 30 bytes per sample: some 38 MB more for the long file.
    assert long < short + 4_000_000, (short, long)


def _cut_stereo(path):
    _write(path, np.sin(np.arange(16000) / 10) * 0.3, 16000, channels=2)
    path.write_bytes(path.read_bytes()[:-3])  # a partial download: the last frame is cut in half


def test_a_wav_cut_mid_frame_is_read_up_to_its_last_whole_frame(tmp_path):
    _cut_stereo(tmp_path / "i0.wav")
    samples, rate = read_wav(tmp_path / "i0.wav")
    assert rate == 16000 and len(samples) == 16000 - 1
    matrix, found = catalog_audio_features(["i0"], tmp_path)
    assert found == 1 and matrix.shape == (1, FEATURES) and np.isfinite(matrix).all() and matrix.any()


def _with_rate(path, rate):
    _write(path, np.sin(np.arange(16000) / 10) * 0.3, 16000)
    raw = bytearray(path.read_bytes())
    raw[24:28] = struct.pack("<I", rate)  # sample rate
    raw[28:32] = struct.pack("<I", rate * 2)  # byte rate
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("rate", [0, 50, 999])
def test_a_broken_sample_rate_is_refused_naming_the_file(tmp_path, rate):
    folder = tmp_path / "private" / "audio"
    folder.mkdir(parents=True)
    _with_rate(folder / "i7.wav", rate)
    with pytest.raises(DataError, match=rf"^i7\.wav: a sample rate of {rate} Hz is below 1,000 Hz") as err:
        catalog_audio_features(["i7"], folder)
    assert "private" not in str(err.value)
    with pytest.raises(DataError, match="i7.wav"):
        read_wav(folder / "i7.wav")
    with pytest.raises(DataError, match="below 1,000 Hz"):
        audio_features(np.zeros(4000, np.float32), rate)


def test_telephone_rate_is_still_read(tmp_path):
    _with_rate(tmp_path / "i8.wav", 8000)
    assert np.isfinite(catalog_audio_features(["i8"], tmp_path)[0]).all()


def test_the_cli_names_a_broken_file_instead_of_a_traceback(tmp_path, small_data_dir):
    from click.testing import CliRunner

    from edgerec.cli.main import cli
    from edgerec.data.store import load_dataset

    item = load_dataset(small_data_dir).catalog.item_ids[0]
    (tmp_path / "audio").mkdir()
    _with_rate(tmp_path / "audio" / f"{item}.wav", 0)
    result = CliRunner().invoke(cli, ["content", "audio-features", "--audio-dir", str(tmp_path / "audio"),
                                      "--data", str(small_data_dir), "--out", str(tmp_path / "a.npy")])
    assert result.exit_code != 0 and not isinstance(result.exception, ZeroDivisionError)
    assert f"{item}.wav: a sample rate of 0 Hz" in result.output
