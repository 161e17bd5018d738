"""The bundle's replay default (manifest `defaults.replay`, spec §5 Replays), decided from the training log.

A listening log where most plays are replays of the user's own tracks (Last.fm-like: 87% of the
generated 2M-play log) gets played favourites back in its lists; a film or video log (MovieLens:
no replay at all; the demo world: 7%, most of its consumption video) keeps the seen filter as it
was. The device never brings a video back whatever the default (runtime/replay.py).
"""

from __future__ import annotations

import numpy as np

from edgerec.data.stats import dataset_stats
from edgerec.runtime.vocab import VIDEO_MODALITIES

REPLAY_WEIGHT = 1.0  # Policy.replay the default sets (chosen on one generated log, reported on another)
MIN_REPEAT_SHARE = 0.5  # replays of one's own items among consumption events, at least


def video_share(dataset) -> float:
    """Share of the log's consumption events on video items (0 when the catalog has no modality)."""
    log = dataset.interactions
    modality = np.asarray(dataset.catalog.text.get("modality", [""] * dataset.n_items), dtype=object)
    consumed = log.item[log.consumed_mask()]
    if not len(consumed):
        return 0.0
    return float(np.isin(modality[consumed], VIDEO_MODALITIES).mean())


def replay_defaults(dataset) -> dict:
    """{"replay": REPLAY_WEIGHT} for a log of mostly replays on mostly non-video items, else {} (off:
    a bundle without the entry behaves as before the replay existed)."""
    stats = dataset_stats(dataset)
    if stats["repeat_share"] >= MIN_REPEAT_SHARE and video_share(dataset) < 0.5:
        return {"replay": REPLAY_WEIGHT}
    return {}
