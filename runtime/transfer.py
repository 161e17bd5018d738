"""Transfer of interest across domains on the device: a user's history in one bundle (the source
domain, say music) ranks the items of another bundle (the target, say video) that shares its space.

Three methods, side by side, all plain numpy over arrays the bundles ship:

    content   the source history's items in the shared content space, pooled, scored against the
              target's items in that space: needs only the shared content encoder
    mapping   the source history pooled in the source bundle's own item space, carried into the
              target's item space by the target's learned linear bridge (EMCDR-style: fit on users
              of both apps), then scored by the target's item scan like any user vector
    direct    the same pooled source history through a direct bridge, fit to the overlapping
              users' target consumption itself, so its scores (the item scan plus the bridge's
              per-item prior, the target's popularity among those users) rank target items as a
              least-squares fit weighs the user's own signal against popularity

`Transfer` refuses two bundles that do not declare one shared space, and a bridge fit on another
export of the source, with SpaceMismatchError.
"""

from __future__ import annotations

import numpy as np

from edgerec.errors import ConfigError, SpaceMismatchError
from edgerec.runtime import checks
from edgerec.runtime.explain import Reason
from edgerec.runtime.request import Recommendation
from edgerec.runtime.space import Bridge, SharedSpace, check_shared
from edgerec.runtime.user_state import read_state

METHODS = ("content", "mapping", "direct")
RECENT = 50  # newest source items a transfer pools (the taste now, as the user encoder's window)


def pooled(vectors: np.ndarray) -> np.ndarray:
    """The L2-normalised mean of a history's vectors: the user in that space."""
    vectors = np.asarray(vectors, np.float32)
    if vectors.ndim != 2 or not len(vectors):
        raise ConfigError("a transfer needs at least one item of source-domain history")
    mean = vectors.mean(0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def content_query(source_content: np.ndarray) -> np.ndarray:
    """content: the query is the pooled source history in the shared content space."""
    return pooled(source_content)


def bridge_input(source_items: np.ndarray, bridge: Bridge, source_content: np.ndarray | None = None) -> np.ndarray:
    """What a bridge maps: the pooled source history in the source's item space, followed for an
    "items+content" bridge by the same history pooled in the shared content space."""
    if bridge.input == "items":
        return pooled(source_items)
    if source_content is None:
        raise ConfigError("this bridge maps the source history's content vectors too; give the source's "
                          "space.content rows of the history")
    return np.concatenate([pooled(source_items), pooled(source_content)])


def mapped_query(source_items: np.ndarray, bridge: Bridge, source_content: np.ndarray | None = None) -> np.ndarray:
    """mapping: the pooled source history in the source's item space, through the bridge."""
    mapped = bridge.apply(bridge_input(source_items, bridge, source_content))
    return (mapped / max(float(np.linalg.norm(mapped)), 1e-12)).astype(np.float32)


def direct_query(source_items: np.ndarray, bridge: Bridge, source_content: np.ndarray | None = None) -> np.ndarray:
    """direct: the pooled source history through a direct bridge, not normalised (its scale is
    fit against the bridge's prior)."""
    if not bridge.direct:
        raise ConfigError("the direct method needs a direct bridge (one with a prior); fit it with "
                          "`edgerec domains bridge --method direct`")
    return bridge.apply(bridge_input(source_items, bridge, source_content))


def direct_scores(item_scores: np.ndarray, bridge: Bridge) -> np.ndarray:
    """direct: the target's item scan of the direct query plus the bridge's per-item prior."""
    return (np.asarray(item_scores, np.float32) + bridge.prior).astype(np.float32)


class Transfer:
    """Recommendations from a target Recommender for a user whose history lies in a source Recommender."""

    def __init__(self, source, target, method: str = "mapping"):
        if not isinstance(method, str) or method not in METHODS:
            raise ConfigError(f"unknown transfer method {method!r}; use one of {', '.join(METHODS)}")
        for what, rec in (("source", source), ("target", target)):
            if not all(hasattr(rec, part) for part in ("manifest", "bundle", "catalog", "history", "models")):
                raise ConfigError(f"Transfer's {what} must be an open Recommender (got {type(rec).__name__})")
        check_shared(source.manifest, target.manifest)
        self.source, self.target, self.method = source, target, method
        self.target_space = SharedSpace.of(target.bundle)
        if method == "content":
            self.source_content = SharedSpace.of(source.bundle).content
            if self.source_content is None or self.target_space.content is None:
                raise ConfigError("the content method needs both bundles to carry space.content vectors; "
                                  "export them with `edgerec domains space`, or use method='mapping'")
            if self.source_content.shape[1] != self.target_space.content.shape[1]:
                raise SpaceMismatchError(f"the source's content vectors are {self.source_content.shape[1]} wide, the "
                                         f"target's {self.target_space.content.shape[1]}: not one content space, "
                                         "re-export both with `edgerec domains space`")
        else:
            self.bridge = self.target_space.bridge_from(source.manifest, direct=method == "direct")
            self.source_content = None
            width = source.manifest.dim
            if self.bridge.input == "items+content":
                self.source_content = SharedSpace.of(source.bundle).content
                if self.source_content is None:
                    raise SpaceMismatchError("the bridge maps the source's content vectors too, and the source "
                                             "bundle carries none; export it with `edgerec domains space`")
                width += self.source_content.shape[1]
            if self.bridge.weights.shape[0] != width:
                raise SpaceMismatchError(f"the bridge maps {self.bridge.weights.shape[0]}-wide source vectors, the "
                                         f"source bundle gives {width} ({self.bridge.input}); re-fit it against "
                                         "that very export")

    def query(self, source_rows: np.ndarray) -> np.ndarray:
        """The query vector for source-catalog rows: content space or the target's item space."""
        rows = np.asarray(source_rows, np.int64)[-RECENT:]
        content = None if self.source_content is None else np.asarray(self.source_content[rows], np.float32)
        if self.method == "content":
            return content_query(content)
        query = direct_query if self.method == "direct" else mapped_query
        return query(self.source.catalog.vectors(rows), self.bridge, content)

    def scores(self, source_rows: np.ndarray) -> np.ndarray:
        """One score per row of the target's bundle item table."""
        query = self.query(source_rows)
        if not np.isfinite(query).all() or not np.any(query):  # an all-zero or overflowing bridge ranked rows in order
            raise ConfigError("the transfer's query vector is zero or not finite (a bridge that maps everything to "
                              "zero, or weights that overflow): re-fit and re-export the bridge")
        if self.method == "content":
            return (np.asarray(self.target_space.content, np.float32) @ query).astype(np.float32)
        scores = np.asarray(self.target.models.scan.scores(query), np.float32)
        return direct_scores(scores, self.bridge) if self.method == "direct" else scores

    def recommend(self, user: str, k: int = 10) -> list[Recommendation]:
        """Top-k target items for `user` from their source history, leaving out what the user already
        consumed or excluded in the target and items removed from its catalog."""
        checks.text(user, "user")
        k = checks.integer(k, "k", 1, 10_000)
        source_state = read_state(self.source.history, self.source.catalog, user)
        source_rows = [r for r in source_state.consumed if r < self.source.catalog.base_count]
        scores = self.scores(np.array(source_rows, np.int64))
        target_cat = self.target.catalog
        drop = np.r_[target_cat.inactive_rows(), sorted(read_state(self.target.history, target_cat, user).excluded)]
        drop = drop[drop < len(scores)].astype(np.int64)
        scores[drop] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        top = top[np.isfinite(scores[top])]
        anchor = self.source.catalog.title(source_rows[-1])
        domains = " and ".join((self.source.manifest.space or {}).get("domains", [])) or "the other app"
        text = f"because you enjoyed {anchor} in {domains}"
        reason = Reason("transfer", text, item_id=self.source.catalog.item_id(source_rows[-1]))
        out = []
        for row, meta in zip(top.tolist(), target_cat.metas(top)):
            item_id, title = meta.pop("item_id"), meta.pop("title", "")
            out.append(Recommendation(item_id, float(scores[row]), title, reason, meta))
        return out
