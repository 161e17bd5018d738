"""Audit H2 (Dec 2026), replays after the device clock went back: only a play within replay_minutes of the
request, before or after it, cools a favourite down (spec §5 Replays); plays dated further ahead were recorded
before an RTC reset or a manual change of the clock, and kept every favourite out for as long."""

import numpy as np

from edgerec.runtime import Policy, Recommender

MODALITY = ["music_track"] * 12 + ["film"] * 2
STORY = [0, 1, 12, 0, 1, 12, 0, *([2, 3, 4, 5, 6] * 2)]  # favourites i0 (3 plays) and i1 (2), 10 newer plays
START = 1_790_000_000.0 - 86_400  # the first play; 200 s apart: item 0's plays at START, +600 and +1200 s


def vectors():
    v = np.random.default_rng(4).normal(size=(len(MODALITY), 6)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def listen(rec, user, rows, start):
    for i, row in enumerate(rows):
        rec.record(user, rec.catalog.item_id(int(row)), "play", timestamp=start + i * 200.0)


def _back(rec, now, minutes=60.0):
    out = rec.recommend("u", k=12, context={"now": now}, policy=Policy(replay=1.0, replay_minutes=minutes))
    return {r.item_id for r in out if r.reason.kind == "replay"}


def test_plays_dated_ahead_of_the_request_cool_down_only_within_replay_minutes(handmade_bundle):
    with Recommender.open(handmade_bundle(vectors(), modality=MODALITY)) as rec:
        listen(rec, "u", STORY, start=START)
        assert _back(rec, START + 86_400) == {"i0", "i1"}  # the clock right
        assert _back(rec, START - 3 * 86_400) == {"i0", "i1"}  # the clock set back three days
        assert _back(rec, START - 3_601) == {"i0", "i1"}  # every play more than 60 minutes ahead
        assert "i0" not in _back(rec, START - 3_599)  # its first play 59:59 ahead: recent
        assert _back(rec, START - 121, minutes=2.0) == {"i0", "i1"}  # the span is replay_minutes either side
        assert "i0" not in _back(rec, START - 119, minutes=2.0)
        assert "i0" not in _back(rec, START - 3_600)  # a play exactly replay_minutes ahead is still recent (<=)
