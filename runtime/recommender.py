"""`Recommender`: what an app embeds. Open a bundle, record events, recommend, update the catalog.

    rec = Recommender.open("bundle/", history="history.db")
    rec.record("alice", "i00042", "finish")
    for r in rec.recommend("alice", k=10, context={"device": "tv"}):
        print(r.item_id, r.title, r.reason.text)

history -> user encoder -> exact (or ANN) scan of the item table -> ranker
(if the bundle has one) -> policies (seen filter, cold start, feedback,
language and freshness boosts, business filters, diversity) -> reasons.
Every stage is timed; an optional stage that fails falls back and is counted.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgerec.errors import ConfigError, EdgerecError, UnknownIdError
from edgerec.runtime.backends import available_backends, open_model
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.catalog import AddedItem, ItemCatalog
from edgerec.runtime.encoder import UserEncoder
from edgerec.runtime.explain import Explainer, Reason
from edgerec.runtime.features import DEVICES, ranker_features
from edgerec.runtime.history import CONSUMED, EVENTS, HistoryStore, Retention
from edgerec.runtime.monitor import Monitor
from edgerec.runtime.new_items import metadata_vector
from edgerec.runtime.policies import (
    Filters,
    Policy,
    feedback_adjustment,
    filter_mask,
    mmr,
    popularity_prior,
    standardize,
)
from edgerec.runtime.retrieval import AnnIndex, ExactScan, sorted_contains, top_rows
from edgerec.runtime.vocab import EXCLUDING  # items never shown again

HISTORY_WINDOW = 2_000  # newest events read per request
USER_CACHE = 64  # users whose state and vector are kept between requests (a household, a test bench)


@dataclass
class Recommendation:
    item_id: str
    score: float
    title: str
    reason: Reason
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"item_id": self.item_id, "score": self.score, "title": self.title,
                "reason": self.reason.to_dict(), "meta": self.meta}


@dataclass
class UserState:
    consumed: list[int]  # catalog rows, first consumption order
    excluded: set[int]  # never recommend again: consumed, skipped, not interested
    liked: list[int]  # "more like this", newest last
    disliked: list[int]  # "not interested"
    tags: Counter
    languages: Counter


class Recommender:
    def __init__(self, bundle: Bundle, history: HistoryStore, backend: str, threads: int, ann: str | None,
                 kernel: str, cache_dir: Path | None):
        self.bundle, self.history = bundle, history
        self.manifest = bundle.manifest
        self.catalog = ItemCatalog(bundle)
        self.backend_name, self.threads, self.kernel = backend, threads, kernel
        self.ann_kind, self.cache_dir = ann, cache_dir
        defaults = self.manifest.defaults
        self.policy = Policy(diversity=float(defaults.get("diversity", 0.0)),
                             short_list=int(defaults.get("short_list", 100)))
        self.default_k = int(defaults.get("k", 10))
        self.monitor = Monitor()
        self._lock = threading.RLock()
        self._encoder: UserEncoder | None = None
        self._ranker = None
        self._content = None
        self._scan: ExactScan | None = None
        self._ann: AnnIndex | None = None
        self._users: OrderedDict[str, tuple] = OrderedDict()  # user -> (history key, state, vector)
        self._restore_items()

    @classmethod
    def open(cls, bundle: str | Path, history: str | Path | None = None, *, backend: str = "auto",
             threads: int = 1, ann: str | None = None, kernel: str = "auto", verify: bool = True,
             retention: Retention | None = None, cache_dir: str | Path | None = None) -> Recommender:
        """Verify and open a bundle; sessions and indexes are created lazily on first use.

        history: the SQLite file of on-device events (None keeps them in memory).
        backend: "onnx", "tflite" or "auto" (the first engine installed that the bundle has).
        ann: None for the exact scan, "usearch" for an HNSW index (cached under cache_dir).
        """
        opened = Bundle.open(bundle, verify=verify)
        chosen = cls._choose_backend(opened, backend)
        store = HistoryStore(history if history is not None else ":memory:", retention)
        if threads < 1:
            raise ConfigError(f"threads must be at least 1 (got {threads})")
        if ann not in (None, "usearch"):
            raise ConfigError(f"unknown ann {ann!r}; use None (exact) or 'usearch'")
        cache = Path(cache_dir) if cache_dir else (Path(history).parent if history else None)
        return cls(opened, store, chosen, threads, ann, kernel, cache)

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

    # ---------------------------------------------------------- lazy parts

    @property
    def encoder(self) -> UserEncoder:
        with self._lock:
            if self._encoder is None:
                entry = self.manifest.model("user_encoder", self.backend_name)
                backend = open_model(self.bundle.path(entry.file), entry, self.threads)
                self._encoder = UserEncoder(backend, entry, int(self.manifest.defaults.get("history_length", 50)))
            return self._encoder

    @property
    def ranker(self):
        with self._lock:
            if self._ranker is None:
                entry = self.manifest.model("ranker", self.backend_name)
                self._ranker = (entry, open_model(self.bundle.path(entry.file), entry, self.threads)) if entry else False
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

    def tag(self, text: str | None = None, item_id: str | None = None, k: int = 5) -> dict:
        """Zero-shot labels (genre, mood, top tags) of a text or an item, from the content encoder."""
        from edgerec.runtime.content import metadata_text

        if self.content is None:
            raise ConfigError("this bundle has no content encoder; export it with `edgerec export --content`")
        if text is None:
            if item_id is None:
                raise ConfigError("tag() needs a text or an item_id")
            text = metadata_text(self.catalog.meta(self.catalog.row(item_id)))
        return self.content.labels(self.content.embed([text])[0], k)

    @property
    def scan(self) -> ExactScan:
        with self._lock:
            if self._scan is None:
                self._scan = ExactScan(self.catalog.stored, self.kernel)
            return self._scan

    def warm_up(self) -> None:
        """Create sessions and indexes now rather than on the first request."""
        _ = self.encoder, self.scan, self.ranker
        if self.ann_kind:
            self._ann_index()

    def _ann_index(self) -> AnnIndex:
        with self._lock:
            if self._ann is None:
                cache = None
                if self.cache_dir is not None:
                    cache = self.cache_dir / f"ann-{self.manifest.embedding_space}-{self.catalog.base_count}.usearch"
                self._ann = AnnIndex(self.catalog.vectors, self.catalog.base_count, self.manifest.dim, cache)
            return self._ann

    # ---------------------------------------------------------- events

    def record(self, user: str, item: str, event: str = "play", value: float | None = None,
               timestamp: float | None = None, context: dict | None = None) -> int:
        """Store one event durably; it shapes the very next recommend() call."""
        if event not in EVENTS:
            raise ConfigError(f"unknown event {event!r}; use one of {', '.join(EVENTS)}")
        self.catalog.row(item)  # raises UnknownIdError for items the device does not know
        if value is not None and not np.isfinite(value):
            raise ConfigError(f"event value must be a finite number (got {value})")
        return self.history.record(user, item, event, value, timestamp, context)

    def onboard(self, user: str, *, genres: list[str] = (), tags: list[str] = (), languages: list[str] = (),
                items: list[str] = ()) -> None:
        """A new user's first choices: they steer the cold-start list until real history exists."""
        for kind, values in (("genre", genres), ("tag", tags), ("language", languages)):
            if values:
                self.history.set_preferences(user, kind, list(values))
        for item in items:
            self.record(user, item, "more_like_this")

    def forget(self, user: str) -> int:
        return self.history.forget(user)

    def export_history(self, user: str) -> dict:
        return self.history.export(user)

    # ---------------------------------------------------------- catalog updates

    def add_items(self, items: list[dict]) -> list[str]:
        """New items on the device: with a 'vector' in the bundle's space, or metadata only.

        Metadata-only items are embedded by the bundle's content encoder (title,
        description, tags -> content vector -> item space). A bundle without one
        places them at the mean vector of related catalog items (same creator or
        series, else same genre and tags).
        """
        added = []
        for spec in items:
            item_id = str(spec.get("item_id", "")).strip()
            if not item_id:
                raise ConfigError("every added item needs an 'item_id'")
            meta = {k: v for k, v in spec.items() if k not in ("item_id", "vector")}
            meta.setdefault("title", item_id)
            meta["tags"] = list(meta.get("tags", []))
            vector = self._vector_for(spec, meta)
            with self._lock:
                existing = self.catalog.index.get(item_id)
                if existing is not None and existing < self.catalog.base_count:
                    self.catalog.removed[existing] = True  # an update of a bundle item replaces it
                    del self.catalog.index[item_id]
                self.catalog.add(AddedItem(item_id, vector, meta))
            self.history.save_item(item_id, self.manifest.embedding_space, vector.tobytes(), meta)
            added.append(item_id)
        return added

    update_items = add_items

    def remove_items(self, item_ids: list[str]) -> None:
        for item_id in item_ids:
            row = self.catalog.row(item_id)
            with self._lock:
                self.catalog.remove(item_id)
            meta = self.catalog.meta(row) if row >= self.catalog.base_count else {}
            self.history.save_item(item_id, self.manifest.embedding_space, None, meta, removed=True)

    def _vector_for(self, spec: dict, meta: dict) -> np.ndarray:
        dim = self.manifest.dim
        if spec.get("vector") is not None:
            vector = np.asarray(spec["vector"], np.float32).reshape(-1)
            if vector.shape != (dim,):
                raise ConfigError(f"item {spec['item_id']!r}: vector has {vector.size} values, the bundle's space "
                                  f"has {dim}")
            meta["vector_source"] = "given"
        else:
            vector, meta["vector_source"] = self.metadata_vector(meta)
        if not np.all(np.isfinite(vector)):
            raise ConfigError(f"item {spec['item_id']!r}: vector holds NaN or infinite values")
        norm = float(np.linalg.norm(vector))
        if norm == 0:
            raise ConfigError(f"item {spec['item_id']!r}: vector is all zeros")
        return (vector / norm).astype(np.float32)

    def metadata_vector(self, meta: dict, use_content: bool = True, use_related: bool = True) -> tuple[np.ndarray, str]:
        """A vector for an item known only by its metadata, and where it came from (see new_items.py)."""
        return metadata_vector(self.catalog, self.content, meta, use_content, use_related)

    def _restore_items(self) -> None:
        for item_id, blob, meta, removed in self.history.saved_items(self.manifest.embedding_space):
            existing = self.catalog.index.get(item_id)
            if removed:
                if existing is not None:
                    self.catalog.remove(item_id)
                continue
            if existing is not None and existing < self.catalog.base_count:
                self.catalog.removed[existing] = True
                del self.catalog.index[item_id]
            self.catalog.add(AddedItem(item_id, np.frombuffer(blob, np.float32).copy(), meta))

    # ---------------------------------------------------------- recommend

    def recommend(self, user: str, k: int | None = None, context: dict | None = None,
                  filters: Filters | None = None, policy: Policy | None = None) -> list[Recommendation]:
        """The top-k items for `user` now. A user with no history gets the cold-start list."""
        k = self.default_k if k is None else k
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k must be a positive integer (got {k!r})")
        policy = policy or self.policy
        now, hour, device = _context(context)
        self.monitor.count("requests")
        try:
            with self.monitor.stage("total"):
                return self._recommend(user, int(k), now, hour, device, filters, policy)
        except EdgerecError:
            self.monitor.count("errors")
            raise

    def _recommend(self, user, k, now, hour, device, filters, policy) -> list[Recommendation]:
        cat = self.catalog
        state, user_vector = self._user(user)
        with self._lock:
            inactive = cat.inactive_rows()
            added = cat.added_matrix()
        cold = user_vector is None
        if state.liked:  # "more like this" pulls the query itself towards those items
            liked = cat.vectors(np.array(state.liked[-3:], np.int64))
            pull = liked.mean(0) * policy.feedback_weight
            user_vector = pull if user_vector is None else user_vector + pull
            user_vector = (user_vector / max(float(np.linalg.norm(user_vector)), 1e-12)).astype(np.float32)
            cold = False
        with self.monitor.stage("retrieve"):
            pool = scores = None
            if self._streamable(state, user_vector, cold, policy):
                pool = self._streamed_pool(user_vector, added, inactive, state.excluded, filters, policy, k)
                self.monitor.count("retrieve_streamed" if pool is not None else "retrieve_streamed_too_few")
            if pool is None:  # every score is needed (cold start, short history, feedback pulls, filters)
                scores = self._scores(user, user_vector, added, state, now, policy, cold)
                scores[inactive] = -np.inf
                if state.excluded:
                    scores[list(state.excluded)] = -np.inf
                pool = self._pool(scores, state, added, filters, policy, k)
        if not len(pool):
            return []
        with self.monitor.stage("rank"):
            vectors = cat.vectors(pool)
            relevance = self._relevance(pool, vectors, scores, user_vector, state, hour, device, now, policy, cold)
        with self.monitor.stage("policies"):
            relevance = relevance + self._boosts(pool, vectors, state, now, policy)
            order = mmr(relevance, vectors, k, policy.diversity,
                        cat.column("creator", pool) if policy.max_per_creator else None,
                        cat.column("genre", pool) if policy.max_per_genre else None,
                        policy.max_per_creator, policy.max_per_genre)
        with self.monitor.stage("explain"):
            explainer = Explainer(cat, state.consumed[-50:], state.liked, dict(state.tags), cold)
            order = np.asarray(order, np.int64)
            metas = cat.metas(pool[order])
            reasons = explainer.explain_all(metas, vectors[order])
            results = []
            for meta, reason, score in zip(metas, reasons, relevance[order].tolist()):
                item_id, title = meta.pop("item_id"), meta.pop("title", "")
                results.append(Recommendation(item_id, score, title, reason, meta))
        if results:
            self.monitor.score(results[0].score)
        return results

    def _user(self, user: str) -> tuple[UserState, np.ndarray | None]:
        """The user's state and encoded vector (None: cold start), kept until their history or the
        catalog changes; a new event therefore reaches the very next request."""
        key = (self.history.generation(user), self.catalog.version, len(self.catalog))
        with self._lock:
            cached = self._users.get(user)
            if cached is not None and cached[0] == key:
                self._users.move_to_end(user)
                self.monitor.count("user_cache_hits")
                return cached[1], cached[2]
        with self.monitor.stage("history"):
            state = self._state(user)
        vector = None
        if state.consumed:
            with self.monitor.stage("encode"):
                rows = [self.catalog.encoder_inputs(state.consumed)]
                if len(rows[0]):
                    vector = self.encoder.encode(rows)[0]
                    if not np.all(np.isfinite(vector)):
                        self.monitor.count("encoder_nan")
                        vector = None
        with self._lock:
            self._users[user] = (key, state, vector)
            while len(self._users) > USER_CACHE:
                self._users.popitem(last=False)
        return state, vector

    def _state(self, user: str) -> UserState:
        index = self.catalog.index
        consumed, seen_consumed, excluded, liked, disliked = [], set(), set(), [], []
        tags, languages = Counter(), Counter()
        for item, event in self.history.item_events(user, HISTORY_WINDOW):
            row = index.get(item)
            if row is None:
                continue  # an item the catalog no longer has
            if event in CONSUMED and row not in seen_consumed:
                seen_consumed.add(row)
                consumed.append(row)
            if event in EXCLUDING:
                excluded.add(row)
            if event == "more_like_this":
                liked.append(row)
                excluded.add(row)  # show what is like it, not the item itself
            elif event == "not_interested":
                disliked.append(row)
        recent = np.array(consumed[-50:], np.int64)
        tags.update(self.catalog.tag_counts(consumed[-50:]))
        if "language" in self.catalog.categorical:
            languages.update(lang for lang in self.catalog.column("language", recent) if lang)
        prefs = self.history.preferences(user)
        tags.update({t: 3 for t in prefs.get("tag", []) + prefs.get("genre", [])})
        languages.update({lang: 3 for lang in prefs.get("language", [])})
        return UserState(consumed, excluded, liked[-5:], disliked[-20:], tags, languages)

    def _prior(self, now: float) -> np.ndarray:
        """Standardised popularity-with-freshness of every row; cached per catalog version and hour."""
        key = (self.catalog.version, len(self.catalog), int(now // 3600))
        cached = getattr(self, "_prior_cache", None)
        if cached is None or cached[0] != key:
            cat = self.catalog
            extra = len(cat) - cat.base_count
            prior = popularity_prior(np.r_[cat.numeric["popularity"], np.zeros(extra)],
                                     np.r_[cat.numeric["release_ts"], np.zeros(extra)], now)
            self._prior_cache = cached = (key, standardize(prior).astype(np.float32))
        return cached[1]

    def _scores(self, user, user_vector, added, state, now, policy, cold) -> np.ndarray:
        cat = self.catalog
        if cold:
            scores = self._prior(now).copy()
            if state.tags:  # onboarding choices (or liked items' tags) pull matching items up
                scores = scores + 1.5 * self._tag_match(state.tags)
            if state.languages:
                scores = scores + 1.0 * cat.matches("language", np.arange(len(cat)), state.languages)
            return scores.astype(np.float32)
        if self.ann_kind:  # only the index's candidates get a score
            base = np.full(cat.base_count, -np.inf, np.float32)
            rows, values, _ = self._best_rows(user_vector, max(4 * policy.short_list, 400))
            base[rows] = values
        else:
            base = self.scan.scores(user_vector)
        scores = np.r_[base, (added @ user_vector).astype(np.float32)] if len(added) else base
        n = len(state.consumed)
        if n < policy.cold_start_items:  # a short history: lean on popularity until it grows
            alpha = n / policy.cold_start_items
            scores = (alpha * standardize(scores) + (1 - alpha) * self._prior(now)).astype(np.float32)
        return scores

    def _tag_match(self, tags: Counter) -> np.ndarray:
        """1 for items whose genre the user picked or keeps consuming (a cheap, code-level match)."""
        return self.catalog.matches("genre", np.arange(len(self.catalog)), tags).astype(np.float32)

    def _streamable(self, state, user_vector, cold, policy) -> bool:
        """Whether the pool can come straight from the best rows (scan top-k or ANN): a plain request."""
        return (not cold and user_vector is not None and not state.liked
                and len(state.consumed) >= policy.cold_start_items and (self.ann_kind or self.scan.streams_top_k))

    def _best_rows(self, user_vector, count) -> tuple[np.ndarray, np.ndarray, bool]:
        """About `count` best rows and their scores, from the ANN index when there is one (falling
        back to the exact scan's top `count`), and whether they are all the rows there are."""
        if self.ann_kind:
            try:
                rows = self._ann_index().search(user_vector, count)
                return rows, self.scan.exact(rows, user_vector).astype(np.float32), False
            except Exception:  # an optional stage: fall back to the exact scan
                self.monitor.count("ann_fallback")
        rows, values = self.scan.top(user_vector, count)
        return rows, values, len(rows) >= self.catalog.base_count

    def _streamed_pool(self, user_vector, added, inactive, excluded, filters, policy, k) -> np.ndarray | None:
        """The pool _pool would give, from the scan's top rows only (no score for every item).

        The scan returns enough rows to survive dropping the removed and consumed
        ones; None when the filters leave too few (the caller then scores all).
        """
        want = max(policy.short_list, k)
        skip = np.sort(np.r_[inactive, np.fromiter(excluded, np.int64, len(excluded))])
        # The exact scan without filters: `want` survivors are certain once the skipped rows are
        # counted in. Filters may drop more, and an ANN index finds more of the true best when it
        # searches wider (top-10 recall 0.93 -> 0.98 at 100k), so those ask for a margin.
        margin = 1 if filters is None and not self.ann_kind else 4
        rows, values, scanned_all = self._best_rows(user_vector, want * margin + len(skip))
        if len(added):
            rows = np.r_[rows, self.catalog.base_count + np.arange(len(added))]
            values = np.r_[values, (added @ user_vector).astype(np.float32)]
        if len(added) or self.ann_kind:  # the scan's rows come sorted already; these do not
            order = np.lexsort((rows, -values))  # best first, ties by row as in top_rows
            rows, values = rows[order], values[order]
        rows = rows[~sorted_contains(skip, rows) & np.isfinite(values)]
        passed = rows[filter_mask(self.catalog, rows, filters)]
        if len(passed) < want and not scanned_all:
            return None
        return passed[:want]

    def _pool(self, scores, state, added, filters, policy, k) -> np.ndarray:
        """The best candidates that pass the filters (widening until enough are found)."""
        want = max(policy.short_list, k)
        extra = []
        if state.liked:  # neighbours of "more like this" items join the pool even if the user vector misses them
            liked_vectors = self.catalog.vectors(np.array(state.liked[-3:], np.int64))
            for v in liked_vectors:
                near = self.scan.scores(v)
                near = np.r_[near, added @ v if len(added) else np.zeros(0)]
                near[~np.isfinite(scores)] = -np.inf
                extra.append(top_rows(near, 20))
        size = want * 4
        while True:
            candidates = top_rows(scores, size)
            if extra:
                candidates = np.unique(np.concatenate([candidates, *extra]))
                candidates = candidates[np.isfinite(scores[candidates])]
            keep = candidates[filter_mask(self.catalog, candidates, filters)]
            if len(keep) >= want or size >= np.isfinite(scores).sum():  # enough, or nothing more to find
                order = np.argsort(-scores[keep], kind="stable")
                return keep[order][: want + 20 * len(extra)]
            size *= 4

    def _relevance(self, pool, vectors, scores, user_vector, state, hour, device, now, policy, cold) -> np.ndarray:
        if cold or user_vector is None:
            return standardize(scores[pool].astype(np.float64))
        exact = vectors @ user_vector
        if len(state.consumed) < policy.cold_start_items:
            exact = scores[pool]
        relevance = standardize(exact.astype(np.float64))
        ranker = self.ranker if policy.use_ranker else False
        if ranker:
            try:
                relevance = standardize(self._rank(ranker, pool, vectors, user_vector, state, hour, device, now))
            except Exception:  # an optional stage: keep the retrieval order
                self.monitor.count("ranker_fallback")
        return relevance

    def _rank(self, ranker, pool, vectors, user_vector, state, hour, device, now) -> np.ndarray:
        entry, backend = ranker
        feats = ranker_features(user_vector, vectors, pool, self.catalog.feature_table(),
                                np.array(state.consumed, np.int64), hour, device, int(now))
        if entry.batch:  # a fixed-size TFLite ranker: pad or split to its batch
            out = []
            for start in range(0, len(feats), entry.batch):
                block = feats[start:start + entry.batch]
                padded = np.zeros((entry.batch, feats.shape[1]), np.float32)
                padded[: len(block)] = block
                out.append(backend.run({"features": padded})[0][: len(block)])
            logits = np.concatenate(out)
        else:
            logits = backend.run({backend.input_names[0]: feats})[0]
        if not np.all(np.isfinite(logits)):
            raise ValueError("ranker returned non-finite scores")
        return logits.astype(np.float64)

    def _boosts(self, pool, vectors, state, now, policy) -> np.ndarray:
        cat = self.catalog
        boost = np.zeros(len(pool))
        if state.liked or state.disliked:
            boost += feedback_adjustment(vectors, cat.vectors(state.liked), cat.vectors(state.disliked), policy)
        if policy.language_boost and state.languages:
            usual = [lang for lang, _ in state.languages.most_common(2)]
            boost += policy.language_boost * cat.matches("language", pool, usual)
        if policy.freshness:
            release = cat.numeric_column("release_ts", pool)
            age = np.maximum(now - release, 0) / 86_400
            boost += policy.freshness * np.where(release > 0, np.exp(-age / policy.freshness_days), 0.0)
        return boost

    # ---------------------------------------------------------- health

    def stats(self) -> dict:
        snapshot = self.monitor.snapshot()
        snapshot.update(
            bundle=self.manifest.name, embedding_space=self.manifest.embedding_space, backend=self.backend_name,
            kernel=self.scan.label if self._scan is not None else None, items=len(self.catalog),
            added_items=len(self.catalog.added), removed_items=int(self.catalog.removed.sum()),
            profiles=len(self.history.profiles()), events=self.history.count(),
        )
        return snapshot

    def close(self) -> None:
        self.history.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def _context(context: dict | None) -> tuple[float, float, int]:
    context = context or {}
    now = float(context.get("now", time.time()))
    hour = float(context.get("hour", time.localtime(now).tm_hour + time.localtime(now).tm_min / 60))
    device = context.get("device")
    code = DEVICES.index(device) if device in DEVICES else -1
    if device is not None and code < 0:
        raise ConfigError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    return now, hour, code


__all__ = ["Filters", "Policy", "Recommendation", "Recommender", "Retention", "UnknownIdError"]
