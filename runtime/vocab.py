"""The one vocabulary of events, devices and modalities: the device owns it, the host imports it.

A device records `DEVICE_EVENTS`. A host log (a training data set) holds
`LOG_EVENTS`: the device's consumption events plus `rate`, an explicit
rating that logs such as MovieLens carry and no device records. The
device's feedback buttons (`FEEDBACK`) never appear in a training log; they
steer the very next list on the device. `LOG_TO_DEVICE` says which device
event a host log event becomes when a log is replayed into a device, and
the host's consumed events follow from it. `MAX_ID` and `MAX_TS` bound the ids
and times the device accepts, so a host import refuses what a device would.
"""

from __future__ import annotations

MAX_ID = 256  # characters of a user or item id
MAX_TS = 1e11  # epoch seconds (year 5138): beyond it the calendar functions overflow

# What `Recommender.record()` accepts.
DEVICE_EVENTS = ("play", "finish", "skip", "like", "not_interested", "more_like_this")
# What makes an item part of the user's taste sequence on the device.
CONSUMED = ("play", "finish", "like")
# Buttons that steer the next list at once (and exist only on the device).
FEEDBACK = ("not_interested", "more_like_this")
# Events after which an item is never shown again: what was consumed, skipped or refused.
EXCLUDING = frozenset(CONSUMED + ("skip", "not_interested"))

# Events a host log may hold that no device records.
HOST_ONLY_EVENTS = ("rate",)
# A host log's events; the position of a name is its int8 code in `Interactions.event`.
LOG_EVENTS = ("play", "finish", "skip", "like") + HOST_ONLY_EVENTS
# Replaying a log into a device: a rating says the user watched the item to the end.
LOG_TO_DEVICE = {"play": "play", "finish": "finish", "skip": "skip", "like": "like", "rate": "finish"}
# The host's consumed events: those that become a consumption on the device.
CONSUMED_LOG_EVENTS = tuple(e for e in LOG_EVENTS if LOG_TO_DEVICE[e] in CONSUMED)

DEVICES = ("phone", "tv", "tablet", "web")
MODALITIES = ("film", "series_episode", "short_video", "music_track", "podcast_episode")
# Watched once is enough: these never come back as replays (spec §5 Replays), and a log mostly of them
# gets no replay default at export.
VIDEO_MODALITIES = MODALITIES[:3]
# After one of these an item never comes back as a replay (spec §5 Replays).
NEVER_REPLAYED = ("skip",) + FEEDBACK
