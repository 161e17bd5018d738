"""Simple audio features from raw sound, for items without an audio model: a fixed-length vector of
log band energies, spectral shape, loudness and a tempo estimate (numpy and the stdlib `wave` only).

The frames are summed up a block at a time and WAV files are read in pieces, so memory stays the same
for a one-minute track and an hour-long podcast."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError, DataError

BANDS = 16
FEATURES = BANDS + 8
MIN_RATE = 1000  # Hz: below it the 40 Hz..Nyquist bands are empty or meaningless, so the header is broken
READ_FRAMES = 1 << 16  # WAV frames read at a time
BLOCK_FRAMES = 256  # analysis frames windowed and transformed at a time (about 4 MB each in float64)


def _check_rate(rate: int, path: str | Path | None = None) -> None:
    if rate < MIN_RATE:
        raise DataError(f"a sample rate of {rate} Hz is below {MIN_RATE:,} Hz, too low for these features: the "
                        "header is damaged or the file is not audio; re-encode it (16-bit PCM at 16 kHz or more) "
                        "or remove it", path)


@contextmanager
def _open_wav(path: str | Path):
    """The sample rate of a 16-bit PCM WAV file and an iterator over its mono samples in [-1, 1], in pieces."""
    try:
        with wave.open(str(path), "rb") as handle:
            if handle.getsampwidth() != 2:
                raise DataError("only 16-bit PCM WAV is supported; convert the file first", path)
            rate, channels = handle.getframerate(), handle.getnchannels()
            if channels < 1:
                raise DataError("its header gives no audio channels; the file is damaged: replace it", path)
            _check_rate(rate, path)
            yield rate, _pieces(handle, channels)
    except (wave.Error, EOFError) as exc:
        raise DataError(f"not a readable WAV file ({exc})", path) from None


def _pieces(handle: wave.Wave_read, channels: int) -> Iterator[np.ndarray]:
    size = 2 * channels
    while block := handle.readframes(READ_FRAMES):
        # a file cut mid-frame (a partial download) ends in part of a frame: drop that part
        data = np.frombuffer(block, np.int16, (len(block) // size) * channels)
        if len(data):
            yield (data.reshape(-1, channels).mean(1) / 32768.0).astype(np.float32)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Mono float samples in [-1, 1] and the sample rate of a 16-bit PCM WAV file."""
    with _open_wav(path) as (rate, pieces):
        samples = np.concatenate([np.zeros(0, np.float32), *pieces])
    return samples, rate


def wav_features(path: str | Path, frame: int = 2048, hop: int = 1024) -> np.ndarray:
    """audio_features of a WAV file, read in pieces (the whole file is never in memory)."""
    with _open_wav(path) as (rate, pieces):
        features = _Features(rate, frame, hop)
        for piece in pieces:
            features.add(piece)
    return features.result()


def audio_features(samples: np.ndarray, rate: int, frame: int = 2048, hop: int = 1024) -> np.ndarray:
    """A FEATURES-long vector describing a sound."""
    _check_rate(rate)
    features = _Features(rate, frame, hop)
    for start in range(0, len(samples), READ_FRAMES):
        features.add(samples[start:start + READ_FRAMES])
    return features.result()


class _Moments:
    """Count, mean and sum of squared deviations, merged block by block (Chan et al.): no cancellation."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, x: np.ndarray) -> None:
        n, mean = len(x), float(x.mean())
        total = self.n + n
        delta = mean - self.mean
        self.m2 += float(((x - mean) ** 2).sum()) + delta * delta * self.n * n / total
        self.mean += delta * n / total
        self.n = total

    def std(self) -> float:
        return (self.m2 / self.n) ** 0.5


class _Features:
    """Running sums over the frames of one sound (Hann-windowed, `frame` long, every `hop` samples)."""

    def __init__(self, rate: int, frame: int, hop: int) -> None:
        if not 0 < hop <= frame:  # the frames overlap or touch: a sample is never skipped between pieces
            raise ConfigError(f"the hop must be 1 to {frame} samples (got {hop})")
        self.rate, self.frame, self.hop = rate, frame, hop
        self.window = np.hanning(frame)
        self.freqs = np.fft.rfftfreq(frame, 1.0 / rate)
        edges = np.geomspace(40.0, rate / 2, BANDS + 1)
        self.masks = [(self.freqs >= lo) & (self.freqs < hi) for lo, hi in zip(edges[:-1], edges[1:])]
        self.pending: np.ndarray | None = None  # samples not yet in a whole frame (and a frame's overlap)
        self.seen, self.crossings, self.last = 0, 0, None
        self.count, self.log_bands, self.rolloff, self.flatness = 0, np.zeros(BANDS), 0.0, 0.0
        self.centroid, self.rms = _Moments(), _Moments()
        self.log_total: list[np.ndarray] = []  # one float a frame (8 bytes every `hop` samples): the tempo

    def add(self, samples: np.ndarray) -> None:
        if not len(samples):
            return
        signs = np.sign(samples)
        if self.last is not None:
            self.crossings += int(signs[0] != self.last)
        self.crossings += int(np.count_nonzero(np.diff(signs)))
        self.last, self.seen = signs[-1], self.seen + len(samples)
        pending = samples if self.pending is None else np.concatenate([self.pending, samples])
        while len(pending) >= self.frame:
            n = min(BLOCK_FRAMES, 1 + (len(pending) - self.frame) // self.hop)
            windows = np.lib.stride_tricks.sliding_window_view(pending[:(n - 1) * self.hop + self.frame], self.frame)
            self._frames(windows[::self.hop] * self.window)
            pending = pending[n * self.hop:]
        self.pending = pending

    def _frames(self, frames: np.ndarray) -> None:
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-12
        bands = np.stack([power[:, mask].sum(1) for mask in self.masks], 1)
        self.log_bands += np.log10(bands + 1e-10).sum(0)
        total = power.sum(1)
        self.centroid.add((power * self.freqs).sum(1) / total)
        cumulative = np.cumsum(power, 1) / total[:, None]
        self.rolloff += float(self.freqs[np.argmax(cumulative >= 0.85, axis=1)].sum())
        self.flatness += float((np.exp(np.log(power).mean(1)) / power.mean(1)).sum())
        self.rms.add(np.sqrt((frames ** 2).mean(1)))
        self.log_total.append(np.log(total))
        self.count += len(frames)

    def result(self) -> np.ndarray:
        if self.seen < self.frame:  # a sound shorter than a frame is padded with silence to one frame
            dtype = np.float32 if self.pending is None else self.pending.dtype
            self.add(np.zeros(self.frame - self.seen, dtype))
        count = self.count
        onset = np.maximum(np.diff(np.concatenate(self.log_total)), 0)
        tempo = _tempo(onset, self.rate / self.hop)
        nyquist = self.rate / 2
        return np.concatenate([self.log_bands / count / 10.0, [
            self.centroid.mean / nyquist, self.centroid.std() / nyquist, self.rolloff / count / nyquist,
            self.flatness / count, self.rms.mean, self.rms.std(), self.crossings / (self.seen - 1),
            tempo / 200.0]]).astype(np.float32)


def _tempo(onset: np.ndarray, frames_per_second: float) -> float:
    """Beats per minute from the autocorrelation of the onset strength (60 to 180 BPM), 0 when unclear."""
    if len(onset) < 8 or onset.std() == 0:
        return 0.0
    x = onset - onset.mean()
    # only the lags of 60..180 BPM: the full autocorrelation is quadratic in the length (hours for a podcast)
    lags = np.arange(1, min(len(x), int(frames_per_second) + 2))
    bpm = 60.0 * frames_per_second / lags
    lags = lags[(bpm >= 60) & (bpm <= 180)]
    if not len(lags):
        return 0.0
    corr = np.array([np.dot(x[:len(x) - lag], x[lag:]) for lag in lags])
    return float(60.0 * frames_per_second / lags[np.argmax(corr)])


def catalog_audio_features(item_ids: list[str], folder: str | Path) -> tuple[np.ndarray, int]:
    """Features of <folder>/<item_id>.wav for every item (zeros where there is no file)."""
    folder = Path(folder)
    out = np.zeros((len(item_ids), FEATURES), np.float32)
    found = 0
    for row, item in enumerate(item_ids):
        path = folder / f"{item}.wav"
        if path.exists():
            out[row] = wav_features(path)
            found += 1
    return out, found
