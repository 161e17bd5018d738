"""Keeping bundles free of anything personal: synthetic reference histories and no host paths.

Every device that installs a bundle receives it, so a bundle must hold no user's
history, no user id and no path of the machine that built it. Conformance needs
histories to run the encoder on; these are synthetic: sessions drawn from the
catalog (a genre-coherent mix weighted by aggregate popularity), not any real
user's sequence. Strings that name files on the build machine are reduced to
their last component, and the data source to a description.
"""

from __future__ import annotations

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


def _is_path(text: str) -> bool:
    if not text or "\n" in text or len(text) > 4096:
        return False
    path = Path(text)
    return path.is_absolute() or text.startswith("~") or (("/" in text or "\\" in text) and path.exists())


def scrub_paths(value):
    """A copy of a JSON-like value in which strings naming host files keep only their last component."""
    if isinstance(value, dict):
        return {k: scrub_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_paths(v) for v in value]
    if isinstance(value, str) and _is_path(value):
        return Path(value).name
    return value


def public_source(meta: dict) -> str:
    """What a bundle may say about its training data: the description, never a path of the build machine."""
    source = str(meta.get("source", "")).strip()
    fmt = meta.get("format")
    if source and not _is_path(source) and not fmt:  # an import's source is the name of the user's file
        return source
    return f"local {fmt} files" if fmt else "local files"
