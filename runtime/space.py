"""The shared embedding space a bundle declares: its id, the domains it holds, its items' vectors in
the shared content space, and the learned bridges from other bundles' user spaces into this one.

Two bundles share a space when both carry a `space` section with the same id and anchor (the
content encoder that places every domain's items). Anything that mixes two bundles' vectors goes
through `check_shared` or `SharedSpace.bridge_from` first, which refuse with SpaceMismatchError.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgerec.errors import BundleError, SpaceMismatchError

BRIDGE_INPUTS = ("items", "items+content")


@dataclass
class Bridge:
    """A linear map from a source bundle's pooled user vectors into this bundle's item space."""

    source_domain: str
    source_space: str  # the source bundle's embedding_space id: the item vectors the map was fit on
    weights: np.ndarray  # (source dim, target dim) float32
    bias: np.ndarray  # (target dim,) float32
    users: int  # overlapping users it was fit on
    prior: np.ndarray | None = None  # (items,) float32: a direct bridge's score offset per item of this bundle
    # what it maps: "items" (the pooled source item vectors) or "items+content" (those, then the pooled
    # source content vectors: content carries taste the source's own item space may not line up)
    input: str = "items"

    @property
    def direct(self) -> bool:
        """Fit to this bundle's item scores (score = item . (p W + b) + prior), not to its user vectors."""
        return self.prior is not None

    def apply(self, source_vector: np.ndarray) -> np.ndarray:
        return (np.asarray(source_vector, np.float32) @ self.weights + self.bias).astype(np.float32)


@dataclass
class SharedSpace:
    id: str
    anchor: str
    domains: list[str]
    content: np.ndarray | None  # (items, content dim): each item in the shared content space
    bridges: list[Bridge]

    @classmethod
    def of(cls, bundle) -> SharedSpace:
        """The bundle's space section, its arrays checked against the item table; SpaceMismatchError
        when the bundle declares no shared space."""
        section = bundle.manifest.space
        if not section:
            raise SpaceMismatchError(f"bundle {bundle.manifest.name!r} declares no shared space (no 'space' "
                                     "section); export it with `edgerec domains space` to mix it with another")
        count, dim = bundle.manifest.items.count, bundle.manifest.dim
        if len(set(section["domains"])) != len(section["domains"]):
            raise BundleError(f"space.domains names a domain twice ({section['domains']}); re-export the bundle")
        content = None
        if "content" in section:
            content = bundle.array(section["content"]["file"])
            if content.ndim != 2 or content.shape[0] != count or content.shape[1] < 1:
                raise BundleError(f"space.content has shape {content.shape}, expected one row per item ({count}); "
                                  "re-export the bundle")
            if content.dtype not in (np.float16, np.float32) or not np.isfinite(content).all():  # a NaN row made
                raise BundleError(f"space.content must hold finite float16 or float32 vectors (got {content.dtype} "
                                  "or NaN/inf): re-export the bundle")  # every score NaN and the list empty
        bridges = []
        for entry in section.get("bridges", []):
            weights, bias = bundle.array(entry["weights"], mmap=False), bundle.array(entry["bias"], mmap=False)
            if weights.ndim != 2 or weights.shape[1] != dim or bias.shape != (dim,):
                raise BundleError(f"bridge from {entry['source_domain']!r} maps to {weights.shape} with a bias of "
                                  f"{bias.shape}; the bundle's vectors are {dim} wide, re-export the bridge")
            prior = bundle.array(entry["prior"], mmap=False).astype(np.float32) if "prior" in entry else None
            if prior is not None and prior.shape != (count,):
                raise BundleError(f"bridge from {entry['source_domain']!r} has a prior of shape {prior.shape}, "
                                  f"expected one value per item ({count}); re-export the bridge")
            if not all(np.isfinite(part).all() for part in (weights, bias, prior) if part is not None):
                raise BundleError(f"bridge from {entry['source_domain']!r} holds NaN or infinite values; "
                                  "re-fit and re-export the bridge")
            if entry.get("input", "items") not in BRIDGE_INPUTS:
                raise BundleError(f"bridge from {entry['source_domain']!r} takes input {entry['input']!r}; a runtime "
                                  f"knows {', '.join(BRIDGE_INPUTS)}: update edgerec or re-export the bridge")
            bridges.append(Bridge(entry["source_domain"], entry["source_space"], weights.astype(np.float32),
                                  bias.astype(np.float32), int(entry.get("users", 0)), prior,
                                  entry.get("input", "items")))
        return cls(section["id"], section.get("anchor", ""), list(section["domains"]), content, bridges)

    def bridge_from(self, source, direct: bool = False) -> Bridge:
        """The bridge fit on `source`'s item vectors (a Manifest), a direct one (with a prior) or a
        user-vector one; SpaceMismatchError when there is none."""
        for bridge in self.bridges:
            if bridge.source_space == source.embedding_space and bridge.direct == direct:
                return bridge
        kind = "direct bridge" if direct else "bridge"
        known = ", ".join(f"{b.source_domain} ({b.source_space}{', direct' if b.direct else ''})"
                          for b in self.bridges) or "none"
        raise SpaceMismatchError(f"no {kind} from bundle {source.name!r} (embedding space {source.embedding_space}) "
                                 f"into this one (bridges: {known}); fit one with `edgerec domains bridge "
                                 f"--method {'direct' if direct else 'mapping'}` against that very export")


def check_shared(source, target) -> None:
    """Refuse to mix two bundles (Manifests) unless both declare the same shared space."""
    a, b = source.space or {}, target.space or {}
    for manifest, section in ((source, a), (target, b)):
        if not section:
            raise SpaceMismatchError(f"bundle {manifest.name!r} declares no shared space, so its vectors cannot be "
                                     "compared with another bundle's; export both with `edgerec domains space`")
    if (a["id"], a.get("anchor", "")) != (b["id"], b.get("anchor", "")):
        raise SpaceMismatchError(f"bundles {source.name!r} and {target.name!r} live in different spaces "
                                 f"({a['id']} anchored by {a.get('anchor') or 'nothing'} vs {b['id']} anchored by "
                                 f"{b.get('anchor') or 'nothing'}); export both with the same space id and encoder")
