"""Why an item is recommended: the next episode of a series, the history item it is closest to,
a "more like this" request, matched tags, or plain popularity for a newcomer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Reason:
    kind: str  # series | feedback | history | tags | popular
    text: str
    item_id: str | None = None  # the history item behind the reason
    tags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "item_id": self.item_id, "tags": self.tags}


def matched_tags(item_tags: list[str], profile_tags: dict[str, int], limit: int = 3) -> list[str]:
    return sorted((t for t in item_tags if t in profile_tags), key=lambda t: -profile_tags[t])[:limit]


def explain(catalog, row: int, vector: np.ndarray, history_rows: list[int], history_vectors: np.ndarray,
            liked_rows: list[int], liked_vectors: np.ndarray, profile_tags: dict[str, int],
            cold_start: bool) -> Reason:
    meta = catalog.meta(row)
    tags = matched_tags(meta.get("tags", []), profile_tags)
    series = meta.get("series_id")
    if series and history_rows:
        for h in reversed(history_rows[-50:]):
            hm = catalog.meta(h)
            if hm.get("series_id") == series:
                if int(meta.get("episode", 0)) == int(hm.get("episode", 0)) + 1:
                    return Reason("series", f"next episode after \"{hm['title']}\"", hm["item_id"], tags)
                break
    if len(liked_rows):
        sims = liked_vectors @ vector
        best = int(np.argmax(sims))
        if sims[best] > 0.6:
            return Reason("feedback", f"more like \"{catalog.meta(liked_rows[best])['title']}\"",
                          catalog.item_id(liked_rows[best]), tags)
    if not cold_start and len(history_rows):
        sims = history_vectors @ vector
        best = int(np.argmax(sims))
        source = catalog.meta(history_rows[best])
        return Reason("history", f"because you watched \"{source['title']}\"", source["item_id"], tags)
    if tags:
        return Reason("tags", "matches your interests: " + ", ".join(tags), None, tags)
    return Reason("popular", "popular right now", None, [])
