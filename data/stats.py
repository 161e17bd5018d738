"""Summary statistics of a data set: size, density, popularity skew, event mix."""

from __future__ import annotations

from collections import Counter

import numpy as np

from edgerec.data.schema import EVENTS, Dataset


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of counts: 0 = all equal, towards 1 = all on one (popularity skew, exposure)."""
    x = np.sort(np.asarray(counts, np.float64))
    n = x.size
    if n == 0 or x.sum() == 0:
        return 0.0
    cum = np.cumsum(x)
    return float(np.clip((n + 1 - 2 * (cum / cum[-1]).sum()) / n, 0.0, 1.0))  # clip float dust


def dataset_stats(dataset: Dataset) -> dict:
    log = dataset.interactions
    n_users, n_items, n_events = dataset.n_users, dataset.n_items, len(log)
    per_item = np.bincount(log.item, minlength=n_items)
    per_user = np.bincount(log.user, minlength=n_users)
    pairs = np.unique(log.user.astype(np.int64) * n_items + log.item).size if n_events else 0
    consumed = log.consumed_mask()
    # plays of an item the user had consumed before (music: replays of favourites, often most of the log)
    first_plays = np.unique(log.user[consumed].astype(np.int64) * n_items + log.item[consumed]).size
    top = np.sort(per_item)[::-1]
    top_1pct = max(1, n_items // 100)
    stats = {
        "users": n_users,
        "items": n_items,
        "events": n_events,
        "density": pairs / max(n_users * n_items, 1),
        "events_per_user_median": float(np.median(per_user)) if n_users else 0.0,
        "events_per_user_p99": float(np.percentile(per_user, 99)) if n_users else 0.0,
        "events_per_user_max": int(per_user.max()) if n_users else 0,
        "repeat_share": 1 - first_plays / consumed.sum() if consumed.any() else 0.0,
        "items_never_seen": int((per_item == 0).sum()),
        "top_1pct_items_share": float(top[:top_1pct].sum() / max(n_events, 1)),
        "popularity_gini": gini(per_item),
        "first_event": int(log.timestamp.min()) if n_events else 0,
        "last_event": int(log.timestamp.max()) if n_events else 0,
        "event_mix": {EVENTS[c]: int(n) for c, n in enumerate(np.bincount(log.event, minlength=len(EVENTS))) if n},
    }
    for column in ("modality", "language"):
        values = [v for v in dataset.catalog.text[column] if v]
        if values:
            stats[f"{column}_mix"] = dict(Counter(values).most_common())
    return stats
