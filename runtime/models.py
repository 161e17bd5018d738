"""The heavy parts a request uses, each created on first use: user encoder, ranker, content
encoder, exact scan and ANN index. Shared by the stages and the facade; safe across threads.

The ANN index is cached in `cache_dir` as `ann-<space>-<count>.usearch` (+ `.sha256`), its time stamp set when
opened a day or more after the last. When an index is built or opened, the index files of other spaces not opened for INDEX_KEPT_S (a week) are
removed: every bundle update left its old space's file there for good, and removing by the 10 minutes of pack.py
made two bundles interleaved on one history delete each other's index at every launch (minutes to rebuild at 1M
items). A Recommender still serving from a removed file keeps its mapped view (POSIX keeps an unlinked file's pages
for whoever has it open); where an open file cannot be removed (Windows) it stays until a later open.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from pathlib import Path

from edgerec.errors import BundleError, ConfigError
from edgerec.runtime.backends import open_model
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.catalog import ItemCatalog
from edgerec.runtime.encoder import UserEncoder
from edgerec.runtime.retrieval import AnnIndex, ExactScan


def model_bytes(bundle: Bundle, name: str) -> bytes:
    """A model file's bytes, read once and checked against the manifest's sha256 when it is loaded
    (not only at open): a file swapped after open is refused, and the engine loads what was hashed."""
    data = bundle.path(name).read_bytes()
    if hashlib.sha256(data).hexdigest() != bundle.manifest.files[name].get("sha256"):
        raise BundleError(f"bundle file {name} fails its sha256 check when loaded; it was modified after the "
                          "bundle was opened: copy the bundle again")
    return data


def _stamp(path: Path) -> tuple | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


def drop_superseded_indexes(cache_dir: Path, manifest) -> None:
    """Delete the ANN index files of the space this bundle replaces (a federated update names it in
    metrics.federated.parent_space); indexes of other bundles sharing the folder stay."""
    federated = manifest.metrics.get("federated")
    parent = federated.get("parent_space") if isinstance(federated, dict) else None
    if isinstance(parent, str) and parent.isalnum() and parent != manifest.embedding_space:
        for stale in cache_dir.glob(f"ann-{parent}-*.usearch"):
            stale.unlink(missing_ok=True)
            stale.with_name(stale.name + ".sha256").unlink(missing_ok=True)  # its digest


INDEX_FILE = re.compile(r"ann-([0-9A-Za-z]+)-[0-9]+\.usearch(\.sha256)?")  # an index file or its digest


INDEX_KEPT_S = 7 * 24 * 3600  # an index file not opened for this long belongs to a bundle the device left


def remove_other_spaces(cache_dir: Path, space: str, now: float | None = None) -> list[str]:
    """Remove the ANN index files (and digests) of spaces other than `space` from `cache_dir` once not opened for
    INDEX_KEPT_S; returns the names removed."""
    now, removed = time.time() if now is None else now, []
    for path in sorted(cache_dir.glob("ann-*.usearch*")):
        match = INDEX_FILE.fullmatch(path.name)
        if match is None or match.group(1) == space:
            continue
        try:
            if now - path.stat().st_mtime > INDEX_KEPT_S:
                path.unlink()
                removed.append(path.name)
        except OSError:  # gone meanwhile, or open elsewhere (Windows): a later open tries again
            continue
    return removed


class Models:
    def __init__(self, bundle: Bundle, catalog: ItemCatalog, backend: str, threads: int, kernel: str,
                 ann: str | None, cache_dir: Path | None):
        self.bundle, self.manifest, self.catalog = bundle, bundle.manifest, catalog
        self.backend_name, self.threads, self.kernel = backend, threads, kernel
        self.ann_kind, self.cache_dir = ann, cache_dir
        self._lock = threading.RLock()
        self._encoder: UserEncoder | None = None
        self._encoder_failure: tuple | None = None  # (the file's size and time, why it failed to load)
        self._ranker = None
        self._content = None
        self._scan: ExactScan | None = None
        self.ann = None  # the AnnIndex once built (tests may put a broken one here)
        self._ann_failure: str | None = None  # why its build failed, once it has

    @property
    def encoder(self) -> UserEncoder:
        """The user encoder, loaded once. A file that failed to load is not read and hashed again on every
        request the fallback serves while it stays as it was (same size and time): its refusal is repeated."""
        with self._lock:
            if self._encoder is None:
                entry = self.manifest.model("user_encoder", self.backend_name)
                stamp = _stamp(self.bundle.path(entry.file))
                if self._encoder_failure is not None and self._encoder_failure[0] == stamp:
                    raise BundleError(self._encoder_failure[1])
                try:
                    backend = open_model(model_bytes(self.bundle, entry.file), entry, self.threads)
                except BundleError as exc:
                    self._encoder_failure = (stamp, str(exc))
                    raise
                self._encoder = UserEncoder(backend, entry, int(self.manifest.defaults.get("history_length", 50)))
            return self._encoder

    @property
    def ranker(self):
        """(manifest entry, backend) of the bundle's ranker for this engine, or False when it has none."""
        with self._lock:
            if self._ranker is None:
                entry = self.manifest.model("ranker", self.backend_name)
                self._ranker = (entry, open_model(model_bytes(self.bundle, entry.file), entry, self.threads)) \
                    if entry else False
            return self._ranker

    @property
    def content(self):
        """The bundle's content encoder (None when the bundle has none)."""
        with self._lock:
            if self._content is None:
                from edgerec.runtime.content import ContentEncoder

                formats = self.manifest.formats("content_encoder")
                fmt = self.backend_name if self.backend_name in formats else (formats[0] if formats else None)
                entry = self.manifest.model("content_encoder", fmt) if fmt else None
                self._content = ContentEncoder(self.bundle, entry, self.threads) if entry else False
            return self._content or None

    @property
    def scan(self) -> ExactScan:
        with self._lock:
            if self._scan is None:
                self._scan = ExactScan(self.catalog.stored, self.kernel)
            return self._scan

    @property
    def scan_label(self) -> str | None:
        return self._scan.label if self._scan is not None else None

    def ann_index(self) -> AnnIndex:
        """The ANN index, built once. A build that failed is not tried again on every request (at a million
        items a build takes minutes): its error is repeated, and the retrieve stage scans exactly."""
        with self._lock:
            if self._ann_failure is not None:
                raise ConfigError(self._ann_failure)
            if self.ann is None:
                cache = None
                if self.cache_dir is not None:
                    cache = self.cache_dir / f"ann-{self.manifest.embedding_space}-{self.catalog.base_count}.usearch"
                    drop_superseded_indexes(self.cache_dir, self.manifest)
                try:
                    self.ann = AnnIndex(self.catalog.vectors, self.catalog.base_count, self.manifest.dim, cache)
                except ConfigError as exc:  # usearch missing or broken: its message says what to do
                    self._ann_failure = str(exc)
                    raise
                except Exception as exc:  # noqa: BLE001 - the library's own errors: an EdgerecError for warm_up()
                    self._ann_failure = (f"the ANN index could not be built ({type(exc).__name__}: {str(exc)[:200]}); "
                                         "requests scan exactly; open without ann= to leave it out")
                    raise ConfigError(self._ann_failure) from None
                if cache is not None:
                    for used in (cache, cache.with_name(cache.name + ".sha256")):
                        try:  # opened now: kept while the device uses this bundle (stamped at most once a day)
                            if time.time() - used.stat().st_mtime > 24 * 3600:
                                os.utime(used)
                        except OSError:
                            pass
                    remove_other_spaces(self.cache_dir, self.manifest.embedding_space)
            return self.ann
