"""Why an item is recommended: the next episode of a series, the history item it is closest to,
a "more like this" request, matched tags, the onboarding choice it matches, or plain popularity."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Reason:
    kind: str  # series | feedback | history | tags | choice | popular | fallback (the personal model could not run)
    text: str
    item_id: str | None = None  # the history item behind the reason
    tags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "item_id": self.item_id, "tags": self.tags}


# the verb of "because you ... X" follows X's modality; a log without modalities (a bare listening log)
# gets one that fits audio and video alike, never "watched" for a song
VERBS = {"film": "watched", "series_episode": "watched", "short_video": "watched",
         "music_track": "listened to", "podcast_episode": "listened to"}


def matched_tags(item_tags: list[str], profile_tags: dict[str, int], limit: int = 3) -> list[str]:
    return sorted((t for t in item_tags if t in profile_tags), key=lambda t: -profile_tags[t])[:limit]


def matched_choices(meta: dict, choices: dict[str, list[str]], limit: int = 3) -> list[str]:
    """The onboarding choices `meta` matches, as the cold-start score counts them (spec §4, §6): its
    genre among the chosen genres and tags, its tags among the chosen tags (in the item's order), its
    language among the chosen languages; each once, at most `limit`."""
    tags = choices.get("tag", ())
    found = [meta.get("genre")] if meta.get("genre") in [*choices.get("genre", ()), *tags] else []
    found += [t for t in meta.get("tags", ()) if t in tags]
    found += [meta.get("language")] if meta.get("language") in choices.get("language", ()) else []
    return list(dict.fromkeys(found))[:limit]


class Explainer:
    """Reasons for the items of one list; the user's side (history, likes, tags) is looked up once."""

    def __init__(self, catalog, history_rows: list[int], liked_rows: list[int], profile_tags: dict[str, int],
                 cold_start: bool, choices: dict[str, list[str]] | None = None):
        self.catalog, self.profile_tags, self.cold_start = catalog, profile_tags, cold_start
        self.choices = choices or {}  # onboarding: "genre", "tag", "language"
        self.history = np.asarray(history_rows, np.int64)
        self.history_vectors = catalog.vectors(self.history)
        # series -> (history row, episode) of its highest episode watched (ties: the newest), as the ranker's
        # "next episode" feature reads it: after 1, 3, 2 the next is 4 (3 is seen and filtered out)
        self.last_episode: dict[str, tuple[int, int]] = {}
        if "series_id" in catalog.categorical and "episode" in catalog.numeric:
            series = catalog.column("series_id", self.history)
            episodes = catalog.numeric_column("episode", self.history).tolist() if any(series) else []  # no series
            for row, name, episode in zip(self.history.tolist(), series, episodes):
                if name and int(episode) >= self.last_episode.get(name, (0, -1))[1]:
                    self.last_episode[name] = (row, int(episode))
        self.liked = np.asarray(liked_rows, np.int64)
        self.liked_vectors = catalog.vectors(self.liked) if len(self.liked) else self.history_vectors[:0]
        # "because you watched X" of each history position, made when first named: an explainer is kept
        # per user state, and a list names a few history items again and again
        self._verbs_of_history: list[str] | None = None
        self._history_reasons: dict[int, tuple[str, str]] = {}

    def explain_all(self, metas: list[dict], vectors: np.ndarray) -> list[Reason]:
        """Reasons for a whole list (catalog.metas and the items' vectors): one similarity
        matrix each against likes and history."""
        liked_best = history_best = None
        if len(self.liked) and len(metas):
            sims = vectors @ self.liked_vectors.T
            liked_best = sims.argmax(1)
            liked_sim = sims[np.arange(len(metas)), liked_best]
        if not self.cold_start and len(self.history) and len(metas):
            history_best = (vectors @ self.history_vectors.T).argmax(1).tolist()
        profile, episodes = self.profile_tags, self.last_episode
        reasons = []
        for i, meta in enumerate(metas):
            tags = matched_tags(meta.get("tags", []), profile) if profile else []  # no profile: nothing matches
            latest = episodes.get(meta.get("series_id") or "") if episodes else None
            if latest is not None and int(meta.get("episode") or 0) == latest[1] + 1:
                reasons.append(self._because("series", "next episode after", latest[0], tags))
            elif liked_best is not None and liked_sim[i] > 0.6:
                reasons.append(self._because("feedback", "more like", self.liked[liked_best[i]], tags))
            elif history_best is not None:
                text, item_id = self._history_reason(history_best[i])
                reasons.append(Reason("history", text, item_id, tags))
            elif tags:
                reasons.append(Reason("tags", "matches your interests: " + ", ".join(tags), None, tags))
            elif chosen := matched_choices(meta, self.choices):  # e.g. a language choice, which no tag names
                reasons.append(Reason("choice", "matches your choices: " + ", ".join(chosen), None, tags))
            else:
                reasons.append(Reason("popular", "popular right now", None, []))
        return reasons

    def _history_reason(self, position: int) -> tuple[str, str]:
        """(text, item id) of "because you <verb> <history item>" for a position in the history."""
        kept = self._history_reasons.get(position)
        if kept is None:
            if self._verbs_of_history is None:
                self._verbs_of_history = self._verbs(self.history)  # one column read for the whole history
            kept = self._history_reasons[position] = self._named(f"because you {self._verbs_of_history[position]}",
                                                                 self.history[position])
        return kept

    def _verbs(self, rows: np.ndarray) -> list[str]:
        if "modality" not in self.catalog.categorical:
            return ["played"] * len(rows)
        return [VERBS.get(m, "played") for m in self.catalog.column("modality", rows)]

    def _because(self, kind: str, words: str, row, tags: list[str]) -> Reason:
        return Reason(kind, *self._named(words, row), tags)

    def _named(self, words: str, row) -> tuple[str, str]:
        """(`words` "title", item id) of a row."""
        item_id, title = self.catalog.label(int(row))
        return f"{words} \"{title or item_id}\"", item_id
