"""Host side of cross-domain transfer: the shared content anchor, per-domain item factors, pooled
user vectors, and the linear bridges between two domains fit on overlapping users (to the target's
pooled user vectors, or to its item scores directly with the target's item prior).

The device applies what this fits with edgerec.runtime.transfer (same pooling, same arithmetic).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from edgerec.data.split import Sequences
from edgerec.errors import ConfigError
from edgerec.runtime.transfer import pooled

WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*", re.UNICODE)
HASHED_DIM = 256


def hashed_text_vectors(texts: list[str], dim: int = HASHED_DIM) -> np.ndarray:
    """A vocabulary-free text encoder: signed feature hashing of lower-cased words, sqrt counts, L2 norm.

    Every domain's items land in the same space without a shared vocabulary or training, so it is
    the anchor of last resort (a sentence encoder, `--encoder`, is the better one)."""
    slots: dict[str, tuple[int, float]] = {}
    out = np.zeros((len(texts), dim), np.float32)
    for row, text in enumerate(texts):
        for word in WORD.findall(text.lower()):
            if word not in slots:
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                slots[word] = (value % dim, 1.0 if (value >> 32) & 1 else -1.0)
            col, sign = slots[word]
            out[row, col] += sign
    out = np.sign(out) * np.sqrt(np.abs(out))
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def item_factors(history: Sequences, n_items: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """A domain's item vectors by truncated SVD of its user-item matrix (PureSVD: a user is the mean
    of their items' rows, so scores are history . V . V^T)."""
    if len(history.items) == 0:
        raise ConfigError("a domain needs interactions to fit item factors")
    matrix = sp.csr_matrix((np.ones(len(history.items), np.float32), history.items, history.indptr),
                           shape=(history.n_users, n_items))
    matrix.data[:] = 1.0  # repeated items count once
    k = max(1, min(dim, min(matrix.shape) - 1))
    v0 = np.random.default_rng(seed).random(min(matrix.shape))
    _, _, vt = svds(matrix.astype(np.float64), k=k, v0=v0)
    return np.ascontiguousarray(vt.T[:, ::-1], np.float32)


def pooled_users(item_vectors: np.ndarray, history: Sequences, users: np.ndarray, recent: int = 50) -> np.ndarray:
    """One pooled vector per user (the device's `pooled` over each user's newest `recent` items)."""
    return np.stack([pooled(item_vectors[history.of(int(u))[-recent:]]) for u in users])


@dataclass
class LinearBridge:
    weights: np.ndarray  # (source dim, target dim)
    bias: np.ndarray  # (target dim,)
    users: int
    prior: np.ndarray | None = None  # (target items,): a direct bridge's score offset per target item

    def apply(self, source: np.ndarray) -> np.ndarray:
        return source @ self.weights + self.bias


def _check_ridge(ridge: float) -> None:
    """Ridge 0 left the regression singular whenever the overlapping users' vectors were (a LinAlgError)."""
    if not (isinstance(ridge, (int, float)) and 0 < ridge < float("inf")):
        raise ConfigError(f"the bridge's ridge must be a finite number > 0 (got {ridge!r}); 1.0 is the default")


def fit_bridge(source: np.ndarray, target: np.ndarray, ridge: float = 1.0) -> LinearBridge:
    """Ridge regression from source user vectors to target user vectors (rows: the same users)."""
    if len(source) != len(target) or len(source) < 2:
        raise ConfigError(f"a bridge needs at least 2 users with history in both domains (got {len(source)})")
    _check_ridge(ridge)
    mean_s, mean_t = source.mean(0), target.mean(0)
    xs, xt = source - mean_s, target - mean_t
    gram = xs.T @ xs + ridge * np.eye(source.shape[1])
    weights = np.linalg.solve(gram, xs.T @ xt)
    bias = mean_t - mean_s @ weights
    return LinearBridge(weights.astype(np.float32), bias.astype(np.float32), len(source))


def fit_direct_bridge(source: np.ndarray, consumed: sp.spmatrix, target_items: np.ndarray,
                      ridge: float = 1.0) -> LinearBridge:
    """A bridge fit to the target's item scores directly: ridge regression from source user vectors to
    each user's target consumption (rows: the same users; `consumed` 0/1, users x target items), with
    the scores restricted to the target item table's span (score = item . (p W + b) + prior).

    The prior is each target item's share of these users who consumed it: the intercept of the
    regression, so how much popularity counts against the user's own signal is fit by least squares
    on the overlapping users, never set by hand."""
    _check_ridge(ridge)
    consumed = sp.csr_matrix(consumed, dtype=np.float64)
    if consumed.shape != (len(source), len(target_items)) or len(source) < 2:
        raise ConfigError(f"a direct bridge needs at least 2 users and one consumption row per user and a "
                          f"column per target item (got {len(source)} users, matrix {consumed.shape}, "
                          f"{len(target_items)} items)")
    items = np.asarray(target_items, np.float64)
    prior = np.asarray(consumed.mean(0)).ravel()
    # the centred consumption in the item table's basis: least squares Z with Z V^T ~ Y - prior
    gram_v = items.T @ items + 1e-6 * np.eye(items.shape[1])
    coded = np.linalg.solve(gram_v, (consumed @ items - np.outer(np.ones(len(source)), prior @ items)).T).T
    mean_s = source.mean(0)
    xs = source - mean_s
    weights = np.linalg.solve(xs.T @ xs + ridge * np.eye(source.shape[1]), xs.T @ coded)
    bias = -mean_s @ weights
    return LinearBridge(weights.astype(np.float32), bias.astype(np.float32), len(source), prior.astype(np.float32))


def consumed_matrix(histories: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    """0/1 users x items: which items each history (one array of item codes per user) holds."""
    cols = np.concatenate([np.asarray(h, np.int64) for h in histories]) if histories else np.zeros(0, np.int64)
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    matrix = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(histories), n_items))
    matrix.data[:] = 1.0  # repeats were summed into one entry: count them once
    return matrix
