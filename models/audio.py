"""Simple audio features from raw sound, for items without an audio model: a fixed-length vector of
log band energies, spectral shape, loudness and a tempo estimate (numpy and the stdlib `wave` only)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from edgerec.errors import DataError

BANDS = 16
FEATURES = BANDS + 8


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Mono float samples in [-1, 1] and the sample rate of a 16-bit PCM WAV file."""
    try:
        with wave.open(str(path), "rb") as handle:
            if handle.getsampwidth() != 2:
                raise DataError("only 16-bit PCM WAV is supported; convert the file first", str(path))
            rate, channels = handle.getframerate(), handle.getnchannels()
            data = np.frombuffer(handle.readframes(handle.getnframes()), np.int16)
    except (wave.Error, EOFError) as exc:
        raise DataError(f"not a readable WAV file ({exc})", str(path)) from None
    samples = data.reshape(-1, channels).mean(1) / 32768.0
    return samples.astype(np.float32), rate


def audio_features(samples: np.ndarray, rate: int, frame: int = 2048, hop: int = 1024) -> np.ndarray:
    """A FEATURES-long vector describing a sound."""
    if len(samples) < frame:
        samples = np.pad(samples, (0, frame - len(samples)))
    count = 1 + (len(samples) - frame) // hop
    frames = np.lib.stride_tricks.sliding_window_view(samples, frame)[::hop][:count] * np.hanning(frame)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-12
    freqs = np.fft.rfftfreq(frame, 1.0 / rate)
    edges = np.geomspace(40.0, rate / 2, BANDS + 1)
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
    tempo = _tempo(onset, rate / hop)
    nyquist = rate / 2
    return np.concatenate([log_bands / 10.0, [centroid.mean() / nyquist, centroid.std() / nyquist,
                                              rolloff.mean() / nyquist, flatness.mean(), rms.mean(), rms.std(),
                                              zero_cross, tempo / 200.0]]).astype(np.float32)


def _tempo(onset: np.ndarray, frames_per_second: float) -> float:
    """Beats per minute from the autocorrelation of the onset strength (60 to 180 BPM), 0 when unclear."""
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


def catalog_audio_features(item_ids: list[str], folder: str | Path) -> tuple[np.ndarray, int]:
    """Features of <folder>/<item_id>.wav for every item (zeros where there is no file)."""
    folder = Path(folder)
    out = np.zeros((len(item_ids), FEATURES), np.float32)
    found = 0
    for row, item in enumerate(item_ids):
        path = folder / f"{item}.wav"
        if path.exists():
            out[row] = audio_features(*read_wav(path))
            found += 1
    return out, found
