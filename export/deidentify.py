"""Keeping bundles free of anything personal: synthetic reference histories and no host paths.

Every device that installs a bundle receives it, so a bundle must hold no user's
history, no user id and no path of the machine that built it. Conformance needs
histories to run the encoder on; these are synthetic: sessions drawn from the
catalog (a genre-coherent mix weighted by aggregate popularity), not any real
user's sequence. Strings that name files on the build machine are reduced to
their last component, and the data source to a description.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

GENRE_SHARE = 0.7  # share of a synthetic session drawn from its seed genre, as real sessions cluster


def synthetic_histories(popularity: np.ndarray, genres: list[str], n: int, max_len: int,
                        seed: int = 0) -> np.ndarray:
    """n sessions of catalog items as model rows (item index + 1), left-padded with 0 to max_len."""
    rng = np.random.default_rng(seed)
    weights = np.asarray(popularity, np.float64) + 1.0
    weights /= weights.sum()
    genres = np.asarray(genres, dtype=object)
    rows = np.zeros((n, max_len), np.int64)
    for i in range(n):
        length = int(rng.integers(min(3, max_len), max_len + 1))
        seed_genre = genres[rng.choice(len(weights), p=weights)]
        in_genre = np.flatnonzero(genres == seed_genre)
        picks: list[int] = []
        while len(picks) < length:
            pool = in_genre if rng.random() < GENRE_SHARE else None
            w = weights if pool is None else weights[pool] / weights[pool].sum()
            item = int(rng.choice(len(w), p=w)) if pool is None else int(pool[rng.choice(len(pool), p=w)])
            if item not in picks or len(picks) >= len(weights):
                picks.append(item)
        rows[i, max_len - length:] = np.asarray(picks) + 1
    return rows


_WINDOWS_ROOT = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")  # C:\... or \\server\share, on whatever machine exports
_PATH_WORD = re.compile(r"\S*[\\/]\S*")  # a word holding a separator, in a sentence
_SEPARATOR = re.compile(r"[\\/]")


def _is_path(text: str) -> bool:
    """Absolute (here or on Windows), home-relative, or relative: a relative path that does not exist where
    the export runs (a checkpoint trained in another folder) still names the folders it was typed in.
    A relative text with spaces is a path when it reads as one: no part between separators starts or ends
    with a space and the last part is one word ("Ana Ruiz/data"), not a sentence ("audio/video world",
    "trained on /home/..."); or when it exists here."""
    if not text or "\n" in text or len(text) > 4096:
        return False
    if text.startswith("~") or _WINDOWS_ROOT.match(text) or Path(text).is_absolute():
        return True
    if not _SEPARATOR.search(text):  # a name or a description
        return False
    parts = _SEPARATOR.split(text.rstrip("\\/"))
    if all(p == p.strip() for p in parts) and not any(c.isspace() for c in parts[-1]):
        return True
    return Path(text).exists()


def _last_component(text: str) -> str:
    """The name a path ends with, split at both separators (Path splits at "\\" only on Windows)."""
    return _SEPARATOR.split(text.rstrip("\\/"))[-1]


def _scrubbed(text: str) -> str:
    if _is_path(text):
        return _last_component(text)
    return _PATH_WORD.sub(lambda word: _last_component(word.group()), text)  # "trained on /home/ana/x" -> "... x"


def scrub_paths(value):
    """A copy of a JSON-like value in which strings naming host files keep only their last component,
    also where a sentence names them."""
    if isinstance(value, dict):
        return {k: scrub_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_paths(v) for v in value]
    return _scrubbed(value) if isinstance(value, str) else value


def public_source(meta: dict) -> str:
    """What a bundle may say about its training data: the description, never a path of the build machine."""
    source = str(meta.get("source", "")).strip()
    fmt = meta.get("format")
    if source and not _is_path(source) and not fmt:  # an import's source is the name of the user's file
        return source
    return f"local {fmt} files" if fmt else "local files"
