"""`Recommender`: what an app embeds. Open a bundle, record events, recommend, update the catalog.

    rec = Recommender.open("bundle/", history="history.db")
    rec.record("alice", "i00042", "finish")
    for r in rec.recommend("alice", k=10, context={"device": "tv"}):
        print(r.item_id, r.title, r.reason.text)

This is the facade only. A request flows through the stages of `rec.pipeline`
(history -> encode -> retrieve -> rank -> ranker -> policies -> explain, see
stages.py); apps can insert their own. Every stage is timed in stats(); an
optional stage that fails is skipped and counted, a failing user encoder
falls back to the popularity list, and recommend() raises only EdgerecErrors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError, EdgerecError, UnknownIdError
from edgerec.runtime import checks
from edgerec.runtime.backends import BACKENDS, available_backends
from edgerec.runtime.background import Runners
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.catalog import AddedItem, ItemCatalog
from edgerec.runtime.catalog_sync import CatalogSync
from edgerec.runtime.drift import DriftBaseline, drift_report
from edgerec.runtime.history import HistoryStore, Retention
from edgerec.runtime.keys import KeyProvider
from edgerec.runtime.models import Models
from edgerec.runtime.monitor import Monitor
from edgerec.runtime.new_items import checked_meta, metadata_vector
from edgerec.runtime.pipeline import TOTAL, Pipeline, Stage
from edgerec.runtime.policies import Filters, Policy, check_filters, column_values
from edgerec.runtime.pseudonyms import open_history
from edgerec.runtime.request import Recommendation, Request, parse_context
from edgerec.runtime.retrieval import KERNELS, require_ann
from edgerec.runtime.stages import default_pipeline
from edgerec.runtime.update import BundleUpdate, open_update
from edgerec.runtime.user_state import UserCache


class Recommender:
    def __init__(self, bundle: Bundle, history: HistoryStore, backend: str, threads: int, ann: str | None,
                 kernel: str, cache_dir: Path | None, update: BundleUpdate | None = None):
        self.bundle, self.history = bundle, history
        self.manifest = bundle.manifest
        self.catalog = ItemCatalog(bundle)
        self.models = Models(bundle, self.catalog, backend, threads, kernel, ann, cache_dir)
        self.backend_name = backend
        defaults = self.manifest.defaults
        self.policy = Policy().with_defaults(defaults)  # a request's own policy gets them too
        self.default_k = int(defaults.get("k", 10))
        self.monitor = Monitor()
        self.drift_baseline = DriftBaseline.from_manifest(self.manifest)
        self.update = update  # set when opened as an update of a previous bundle
        self.users = UserCache()  # each user's state and vector, kept between requests
        self.runners = Runners()  # its Background runners: close() runs what they hold
        self.pipeline: Pipeline = default_pipeline(self.models, history, self.users)
        self.catalog_sync = CatalogSync(history, self.catalog, self.manifest.embedding_space, self.manifest.dim)
        self.catalog_sync.carry()  # a new bundle's space keeps the removals made under the bundle before
        self.catalog_sync.refresh()  # and at every call that reads the catalog: another process may change it

    @classmethod
    def open(cls, bundle: str | Path, history: str | Path | None = None, *, backend: str = "auto",
             threads: int = 1, ann: str | None = None, kernel: str = "auto", verify: bool = True,
             retention: Retention | None = None, cache_dir: str | Path | None = None,
             fallback: str | Path | None = None, stages: list[tuple[str, Stage]] = (),
             key: bytes | KeyProvider | None = None,
             profile_secret: bytes | KeyProvider | None = None) -> Recommender:
        """Verify and open a bundle; sessions and indexes are created lazily on first use.

        history: the SQLite file of on-device events (None keeps them in memory).
        backend: "onnx", "tflite" or "auto" (the first engine installed that the bundle has).
        ann: None or "usearch" (an HNSW index kept in cache_dir, default: the history's folder; a packed bundle is unpacked there if its own folder is read-only).
        fallback: the bundle served so far, when `bundle` is an update: the update is served only if
            it verifies and its encoder reproduces its reference outputs here; otherwise `fallback`
            keeps serving and `rec.update` (and stats()["update"]) says why.
        stages: app stages to add, as (name of the stage to follow, Stage) pairs.
        key: 32 raw bytes (or a KeyProvider) to keep the history encrypted at rest (needs edgerec[crypto]).
        profile_secret: bytes (or a KeyProvider) to store user names only as keyed hashes.
        """
        threads = checks.integer(threads, "threads", 1, 1024)
        for value, what in ((bundle, "bundle"), (history, "history"), (cache_dir, "cache_dir"), (fallback, "fallback")):
            checks.path(value, what, allow_none=what != "bundle")
        checks.choice(kernel, ("auto", *KERNELS), "kernel")  # now, not at the first request that scans
        checks.choice(backend, ("auto", *BACKENDS), "backend")
        checks.flag(verify, "verify")
        if not (ann is None or isinstance(ann, str) and ann == "usearch"):
            raise ConfigError(f"unknown ann {ann!r}; use None (exact) or 'usearch'")
        require_ann(ann)
        cache = Path(cache_dir) if cache_dir else (Path(history).parent if history else None)
        if fallback is None:  # a packed bundle in a folder the app cannot write is unpacked in `cache`
            opened = Bundle.open(bundle, verify=verify, spare=cache)
            chosen, update = cls._choose_backend(opened, backend), None
        else:
            opened, chosen, update = open_update(bundle, fallback, lambda b: cls._choose_backend(b, backend), cache)
        store = open_history(history if history is not None else ":memory:", key=key,
                             profile_secret=profile_secret, retention=retention)
        try:
            rec = cls(opened, store, chosen, threads, ann, kernel, cache, update)
            rec.pipeline.insert_all(stages)
        except BaseException:  # a damaged unverified bundle, a bad stage list: the history is not left open
            store.close()
            raise
        return rec

    @staticmethod
    def _choose_backend(bundle: Bundle, requested: str) -> str:
        offered = bundle.manifest.formats("user_encoder")
        if not offered:
            raise ConfigError("the bundle has no user encoder; re-export it with `edgerec export`")
        if requested == "auto":
            for name in available_backends():
                if name in offered:
                    return name
            raise ConfigError(f"no inference engine for this bundle's formats ({', '.join(offered)}); "
                              "install onnxruntime or ai-edge-litert")
        if requested not in offered:
            raise ConfigError(f"the bundle has no {requested} user encoder (it has {', '.join(offered)})")
        return requested

    # ---------------------------------------------------------- parts (created on first use)

    @property
    def encoder(self):
        return self.models.encoder

    @property
    def ranker(self):
        return self.models.ranker

    @property
    def content(self):
        """The bundle's content encoder (None when the bundle has none)."""
        return self.models.content

    @property
    def scan(self):
        return self.models.scan

    @property
    def ann_kind(self) -> str | None:
        return self.models.ann_kind

    @ann_kind.setter
    def ann_kind(self, value: str | None) -> None:
        self.models.ann_kind = value

    @property
    def _ann(self):
        return self.models.ann

    @_ann.setter
    def _ann(self, value) -> None:
        self.models.ann = value

    def warm_up(self) -> None:
        """Create sessions and indexes now rather than on the first request."""
        _ = self.models.encoder, self.models.scan, self.models.ranker
        if self.models.ann_kind:
            self.models.ann_index()

    def tag(self, text: str | None = None, item_id: str | None = None, k: int = 5) -> dict:
        """Zero-shot labels (genre, mood, top tags) and a short extractive summary of a text or an item,
        from the content encoder."""
        from edgerec.runtime.content import text_to_tag

        if self.content is None:
            raise ConfigError("this bundle has no content encoder; export it with `edgerec export --content`")
        if item_id is not None:
            self.catalog_sync.refresh()
        text, prose = text_to_tag(self.catalog, text, item_id)
        return self.content.describe(text, k, prose)

    # ---------------------------------------------------------- events

    def record(self, user: str, item: str, event: str = "play", value: float | None = None,
               timestamp: float | None = None, context: dict | None = None) -> int:
        """Store one event durably; it shapes the very next recommend() call."""
        checks.event(event)
        self.catalog_sync.refresh()
        self.catalog.row(checks.text(item, "item"))  # UnknownIdError for items the device does not know
        return self.history.record(user, item, event, value, timestamp, context)

    def onboard(self, user: str, *, genres: list[str] = (), tags: list[str] = (), languages: list[str] = (),
                items: list[str] = ()) -> None:
        """A new user's first choices (lists of names, not single strings): they steer the cold-start
        list until real history exists. Every argument is checked before anything is stored, and all
        is stored in one commit or nothing is (a crash or a lock midway leaves no half onboarding)."""
        checks.text(user, "user")
        self.catalog_sync.refresh()  # the genres and languages it checks include other connections' items
        choices = [(kind, checks.names(values, what, allow_none=False)) for kind, values, what in
                   (("genre", genres, "genres"), ("tag", tags, "tags"), ("language", languages, "languages"))]
        for kind, values in choices[0::2]:  # genres and languages: the catalog's own values (tags are free)
            checks.known(values, column_values(self.catalog, kind), f"{kind}s")
        items = checks.names(items, "items", allow_none=False)
        for item in items:
            self.catalog.row(item)  # all known before anything is stored
        with self.history.batch():  # one transaction: a failure midway (a lock, a full disk) stores nothing
            for kind, values in choices:
                if values:
                    self.history.set_preferences(user, kind, values)
            for item in items:  # checked above; the store's record(): Recommender.record's catalog refresh
                self.history.record(user, item, "more_like_this")  # takes its lock, after the store's (deadlock)

    def forget(self, user: str) -> int:
        """Delete and erase everything stored about `user` (runtime/history_care.py); drop what requests kept."""
        checks.text(user, "user")
        try:
            return self.history.forget(user)
        finally:
            self.users.drop(user)
            self.monitor.forget(user)  # its drift sample is kept per user
            self.pipeline.forget(user)  # a stage's failure whose words name them

    def export_history(self, user: str) -> dict:
        return self.history.export(user)

    # ---------------------------------------------------------- catalog updates

    def add_items(self, items: list[dict]) -> list[str]:
        """New items on the device: with a 'vector' in the bundle's space, or metadata only.

        Metadata-only items are embedded by the bundle's content encoder (title,
        description, tags -> content vector -> item space). A bundle without one
        places them at the mean vector of related catalog items (same creator or
        series, else same genre and tags). An item of a bundle id replaces it.
        """
        if isinstance(items, (str, bytes, dict)) or not isinstance(items, (list, tuple)):
            raise ConfigError(f"add_items() takes a list of dicts, one per item (got {type(items).__name__})")
        self.catalog_sync.refresh()  # related items and replaced ids as every connection saved them
        prepared = [self._prepare(spec) for spec in items]  # all checked first: a bad one adds nothing
        if len({item.item_id for item in prepared}) != len(prepared):
            raise ConfigError("add_items() got the same item_id twice in one batch; pass each item once")
        self.history.save_items([(item.item_id, self.manifest.embedding_space, item.vector.tobytes(), item.meta,
                                  False) for item in prepared])
        self.catalog.replace_many(prepared)
        return [item.item_id for item in prepared]

    def _prepare(self, spec: dict) -> AddedItem:
        if not isinstance(spec, dict):
            raise ConfigError(f"each added item must be a dict with an 'item_id' (got {type(spec).__name__})")
        item_id = checks.text(spec.get("item_id"), "an added item's 'item_id'")
        meta = checked_meta(item_id, {k: v for k, v in spec.items() if k not in ("item_id", "vector")}, self.catalog)
        return AddedItem(item_id, self._vector_for({**spec, "item_id": item_id}, meta), meta)

    update_items = add_items

    def remove_items(self, item_ids: list[str]) -> None:
        item_ids = list(dict.fromkeys(checks.names(item_ids, "item_ids", allow_none=False)))  # each once
        self.catalog_sync.refresh()
        rows = [self.catalog.row(item_id) for item_id in item_ids]  # every id known before any is removed
        base, space = self.catalog.base_count, self.manifest.embedding_space
        self.history.save_items([(item_id, space, None, self.catalog.meta(row) if row >= base else {}, True)
                                 for item_id, row in zip(item_ids, rows)])  # stored first, all or none
        for item_id in item_ids:
            self.catalog.remove(item_id)

    def _vector_for(self, spec: dict, meta: dict) -> np.ndarray:
        dim = self.manifest.dim
        if spec.get("vector") is not None:
            with np.errstate(over="ignore"):  # a too-large value becomes inf, refused below
                vector = np.asarray(checks.real_numbers(spec["vector"], f"item {spec['item_id']!r}: vector", dim),
                                    np.float32)
            meta["vector_source"] = "given"
        else:
            vector, meta["vector_source"] = self.metadata_vector({**meta, "item_id": spec["item_id"]})
        if not np.all(np.isfinite(vector)):
            raise ConfigError(f"item {spec['item_id']!r}: vector holds NaN or infinite values")
        if not vector.any():
            raise ConfigError(f"item {spec['item_id']!r}: vector is all zeros")
        with np.errstate(over="ignore", under="ignore"):
            norm = float(np.linalg.norm(vector))
        if not 1e-18 < norm < 1e18:  # float32's squares overflow (the vector became zeros) or lose their digits
            wide = vector.astype(np.float64)
            return (wide / np.linalg.norm(wide)).astype(np.float32)
        return (vector / norm).astype(np.float32)

    def metadata_vector(self, meta: dict, use_content: bool = True, use_related: bool = True) -> tuple[np.ndarray, str]:
        """A vector for an item known only by its metadata, and where it came from (see new_items.py); an
        untitled item's id is its title, as add_items keeps it (spec §7b)."""
        if meta.get("title") in (None, "") and meta.get("item_id"):
            meta = {**meta, "title": meta["item_id"]}
        return metadata_vector(self.catalog, self.content, meta, use_content, use_related)

    # ---------------------------------------------------------- recommend

    def recommend(self, user: str, k: int | None = None, context: dict | None = None,
                  filters: Filters | None = None, policy: Policy | None = None) -> list[Recommendation]:
        """The top-k items for `user` now. A user with no history gets the cold-start list."""
        checks.text(user, "user")
        k = checks.integer(self.default_k if k is None else k, "k", 1, 10_000)
        checks.instance(filters, Filters, "filters")
        checks.instance(policy, Policy, "policy")
        if policy is None:  # rec.policy, which an app may replace or change: checked as a request's is
            policy = checks.instance(self.policy, Policy, "Recommender.policy", allow_none=False)
        for part in (filters, policy):
            if part is not None:
                part.check()  # its fields may have been changed since it was made
        self.catalog_sync.refresh()  # before the filters are checked against the catalog's values
        check_filters(self.catalog, filters)
        now, hour, device = parse_context(context)
        if policy.unresolved():  # rec.policy too: an app may replace it
            policy = policy.with_defaults(self.manifest.defaults)
        if policy.hub_penalty and "hubness" not in self.catalog.numeric:  # every user alike, cold ones too (§5)
            self.catalog.hubness(np.zeros(0, np.int64))
        request = Request(user, int(k), now, hour, device, filters, policy, self.catalog.snapshot())
        request.count("requests")  # counted with the stages' counters and timings, under one lock
        forgets = self.monitor.forgets  # before anything is read: a forget() from now on keeps its sample out
        try:
            request = self.pipeline.run(request, self.monitor, total=TOTAL)
        except EdgerecError:
            self.monitor.count("errors")
            raise
        if request.top_scores is not None:
            self.monitor.score(request.top_scores, forgets)
        return request.results

    # ---------------------------------------------------------- health

    def stats(self) -> dict:
        snapshot = self.monitor.snapshot()
        snapshot.update(  # the item counts as every connection saved them (catalog_counts.py)
            bundle=self.manifest.name, embedding_space=self.manifest.embedding_space, backend=self.backend_name,
            kernel=self.models.scan_label, **self.catalog_sync.counts(),
            profiles=len(self.history.profiles()), events=self.history.count(),
            drift=drift_report(self.monitor.score_window(), self.drift_baseline),
            update=self.update.to_dict() if self.update is not None else None,
            failures=self.pipeline.failure_reasons(),  # why each stage last failed, beside its _fallback count
        )
        return snapshot

    def close(self) -> None:
        """Close the Background runners first (what waits in them runs, as their close() does), then the history
        and the catalog's column files."""
        if self.runners.close():  # False: another thread's close() is under way (two workers closing)
            self.history.close()
            self.catalog.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


__all__ = ["Filters", "Policy", "Recommendation", "Recommender", "Retention", "Stage", "UnknownIdError"]
