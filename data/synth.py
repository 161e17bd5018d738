"""The embedded default: a synthetic but realistic audio/video world.

Deterministic for a seed. Items are films, series episodes, short videos,
music tracks and podcast episodes from creators and providers with power-law
popularity; users mix a few latent tastes, prefer languages and hours of the
day, drift over time, watch series in episode order and stay with artists;
new items keep arriving while the log runs. Events are generated per chunk of
users and streamed to disk, so the same code writes 500k or 10M events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgerec.data import vocab
from edgerec.data.schema import DEVICES, EVENT_CODE, MODALITIES, Catalog, Dataset, Interactions
from edgerec.errors import ConfigError

DAY = 86_400
MOD = {name: code for code, name in enumerate(MODALITIES)}
GENRES = tuple(sorted({g for gs in vocab.MODALITY_GENRES.values() for g in gs}))
GENRE = {g: i for i, g in enumerate(GENRES)}
MOOD = {m: i for i, m in enumerate(vocab.MOODS)}
THEMES = tuple(sorted({t for ts in vocab.GENRE_THEMES.values() for t in ts}))
THEME = {t: i for i, t in enumerate(THEMES)}
# Base chance of skipping, and of a "continue with this series/creator" step, per modality.
SKIP_BASE = np.array([0.08, 0.10, 0.30, 0.35, 0.15])
CONTINUE_SERIES = 0.7
CONTINUE_CREATOR = np.array([0.0, 0.0, 0.15, 0.35, 0.0])
SERIES_DROP = 0.12
CANDIDATES = 3
AUDIO_MODALITIES = [MOD[m] for m, d in vocab.DOMAIN_OF_MODALITY.items() if d == "audio"]


@dataclass
class SynthConfig:
    users: int = 5_000
    items: int = 20_000
    events: int = 500_000
    seed: int = 0
    start: str = "2025-01-01"
    days: int = 365
    back_catalog_days: int = 3 * 365
    new_item_share: float = 0.25  # share of items released while the log runs
    archetypes: int = 24
    chunk_users: int = 5_000
    # Cross-domain ground truth. None: one taste for every modality (the world as it always was).
    # A value c in [0, 1]: each audio genre is paired with one video genre (a seeded, known pairing,
    # `audio_pairing`), and a user's taste for it is c times their taste for the paired video genre
    # (sharpened: cubed, then normalised over the audio genres) plus (1 - c) times a taste of their
    # own; 1 makes audio taste follow video taste (`video_taste_from_audio` inverts it), 0 independent.
    domain_coupling: float | None = None

    def validate(self) -> None:
        if self.users < 1 or self.items < 50 or self.events < self.users:
            raise ConfigError(
                f"need users >= 1, items >= 50 and events >= users (got users={self.users}, "
                f"items={self.items}, events={self.events})"
            )
        if self.days < 30:
            raise ConfigError(f"days must be at least 30 (got {self.days})")
        if self.chunk_users < 1:
            raise ConfigError(f"chunk_users must be at least 1 (got {self.chunk_users})")
        if self.domain_coupling is not None and not 0.0 <= self.domain_coupling <= 1.0:
            raise ConfigError(f"domain_coupling must be between 0 and 1 (got {self.domain_coupling})")

    @property
    def start_ts(self) -> int:
        return int(datetime.fromisoformat(self.start).replace(tzinfo=timezone.utc).timestamp())

    @property
    def end_ts(self) -> int:
        return self.start_ts + self.days * DAY


# --------------------------------------------------------------------- world


@dataclass
class World:
    """Item attributes as integer codes, plus the index used to sample items."""

    modality: np.ndarray
    genre: np.ndarray
    language: np.ndarray
    mood: np.ndarray
    themes: np.ndarray  # (n, 2) theme codes
    creator: np.ndarray
    series: np.ndarray  # -1 when not part of a series/show
    episode: np.ndarray
    release: np.ndarray
    popularity: np.ndarray
    duration: np.ndarray
    series_items: list[np.ndarray]  # per series: item codes in episode order
    creator_items: list[np.ndarray]  # per creator: item codes in release order
    creator_names: list[str]
    provider_of_creator: np.ndarray
    provider_names: list[str]
    series_titles: list[str]


def _power_weights(rng: np.random.Generator, n: int, shape: float = 1.2) -> np.ndarray:
    w = rng.pareto(shape, n) + 1.0
    return w / w.sum()


def _release_times(rng: np.random.Generator, n: int, cfg: SynthConfig) -> np.ndarray:
    new = rng.random(n) < cfg.new_item_share
    back = cfg.start_ts - rng.integers(0, cfg.back_catalog_days * DAY, n)
    fresh = cfg.start_ts + rng.integers(0, cfg.days * DAY, n)
    return np.where(new, fresh, back).astype(np.int64)


def build_world(cfg: SynthConfig, rng: np.random.Generator) -> World:
    shares = np.array([vocab.MODALITY_SHARE[m] for m in MODALITIES])
    counts = np.floor(shares * cfg.items).astype(int)
    counts[np.argmax(counts)] += cfg.items - counts.sum()
    genre_pop = {m: _power_weights(rng, len(gs), 2.0) for m, gs in vocab.MODALITY_GENRES.items()}

    parts: dict[str, list[np.ndarray]] = {k: [] for k in (
        "modality", "genre", "language", "creator", "series", "episode", "release", "popularity")}
    creator_names: list[str] = []
    creator_modality: list[int] = []
    series_titles: list[str] = []
    n_series = 0
    for m, name in enumerate(MODALITIES):
        n_m = int(counts[m])
        if n_m == 0:
            continue
        genres = vocab.MODALITY_GENRES[name]
        n_c = max(1, n_m // vocab.ITEMS_PER_CREATOR[name])
        c_genre = np.array([GENRE[g] for g in genres])[rng.choice(len(genres), n_c, p=genre_pop[name])]
        c_lang = rng.choice(len(vocab.LANGUAGES), n_c, p=vocab.LANGUAGE_SHARE)
        c_pop = rng.lognormal(0.0, 1.0, n_c)
        creator = np.sort(rng.choice(n_c, n_m, p=_power_weights(rng, n_c, 1.3)))
        genre = np.where(rng.random(n_m) < 0.85, c_genre[creator],
                         np.array([GENRE[g] for g in genres])[rng.integers(0, len(genres), n_m)])
        release = _release_times(rng, n_m, cfg)
        series = np.full(n_m, -1, np.int64)
        episode = np.zeros(n_m, np.int32)
        if name in ("series_episode", "podcast_episode"):
            # split each creator's items into series (shows) of consecutive, weekly episodes
            bounds = np.flatnonzero(np.diff(creator)) + 1
            for block in np.split(np.arange(n_m), bounds):
                sizes = _series_sizes(rng, len(block), podcast=name == "podcast_episode")
                for part in np.split(block, np.cumsum(sizes)[:-1]):
                    span = (len(part) - 1) * 7 * DAY
                    first = min(int(release[part[0]]), cfg.end_ts - span - DAY)
                    release[part] = first + np.arange(len(part)) * 7 * DAY
                    genre[part] = genre[part[0]]
                    series[part] = n_series
                    episode[part] = np.arange(1, len(part) + 1)
                    series_titles.append(_title(rng, None))
                    n_series += 1
        pop = c_pop[creator] * rng.lognormal(0.0, 0.7, n_m)
        pop = np.where(episode > 1, pop * 0.92 ** (episode - 1), pop)
        parts["modality"].append(np.full(n_m, m, np.int8))
        parts["genre"].append(genre.astype(np.int16))
        parts["language"].append(c_lang[creator].astype(np.int8))
        parts["creator"].append(creator + len(creator_names))
        parts["series"].append(series)
        parts["episode"].append(episode)
        parts["release"].append(release)
        parts["popularity"].append(pop)
        creator_names.extend(_creator_name(rng, name) for _ in range(n_c))
        creator_modality.extend([m] * n_c)

    a = {k: np.concatenate(v) for k, v in parts.items()}
    n = cfg.items
    mood = np.empty(n, np.int8)
    themes = np.empty((n, 2), np.int16)
    for g, genre_name in enumerate(GENRES):
        idx = np.flatnonzero(a["genre"] == g)
        if idx.size == 0:
            continue
        own_moods = np.array([MOOD[x] for x in vocab.GENRE_MOODS[genre_name]])
        mood[idx] = np.where(rng.random(idx.size) < 0.85, own_moods[rng.integers(0, own_moods.size, idx.size)],
                             rng.integers(0, len(vocab.MOODS), idx.size))
        own_themes = np.array([THEME[t] for t in vocab.GENRE_THEMES[genre_name]])
        pick = np.argsort(rng.random((idx.size, own_themes.size)), axis=1)[:, :2]
        themes[idx] = own_themes[pick]
    lo = np.array([vocab.DURATION_RANGE_S[m][0] for m in MODALITIES])[a["modality"]]
    hi = np.array([vocab.DURATION_RANGE_S[m][1] for m in MODALITIES])[a["modality"]]
    duration = (lo + rng.random(n) * (hi - lo)).astype(np.float32)

    n_creators = len(creator_names)
    n_providers = max(3, n_creators // 25)
    provider_of_creator = rng.choice(n_providers, n_creators, p=_power_weights(rng, n_providers, 1.1))
    by_release = np.lexsort((a["release"], a["creator"]))
    creator_items = _group(by_release, a["creator"][by_release], n_creators)
    by_episode = np.lexsort((a["episode"], a["series"]))
    by_episode = by_episode[a["series"][by_episode] >= 0]
    series_items = _group(by_episode, a["series"][by_episode], n_series)
    return World(
        modality=a["modality"], genre=a["genre"], language=a["language"], mood=mood, themes=themes,
        creator=a["creator"], series=a["series"], episode=a["episode"], release=a["release"],
        popularity=a["popularity"], duration=duration, series_items=series_items,
        creator_items=creator_items, creator_names=creator_names,
        provider_of_creator=provider_of_creator,
        provider_names=[_provider_name(rng, i) for i in range(n_providers)],
        series_titles=series_titles,
    )


def _group(order: np.ndarray, keys: np.ndarray, n_groups: int) -> list[np.ndarray]:
    starts = np.searchsorted(keys, np.arange(n_groups + 1))
    return [order[starts[g]:starts[g + 1]] for g in range(n_groups)]


def _series_sizes(rng: np.random.Generator, n: int, podcast: bool) -> list[int]:
    sizes, left = [], n
    while left > 0:
        size = min(left, int(rng.integers(10, 40)) if podcast else int(rng.integers(4, 13)))
        sizes.append(size)
        left -= size
    return sizes


def _title(rng: np.random.Generator, mood: str | None) -> str:
    mood = mood or vocab.MOODS[rng.integers(len(vocab.MOODS))]
    adjective = vocab.TITLE_ADJECTIVES[mood][rng.integers(4)]
    noun = vocab.TITLE_NOUNS[rng.integers(len(vocab.TITLE_NOUNS))]
    return f"The {adjective} {noun}" if rng.random() < 0.4 else f"{adjective} {noun}"


def _creator_name(rng: np.random.Generator, modality: str) -> str:
    first = vocab.NAME_FIRST[rng.integers(len(vocab.NAME_FIRST))]
    last = vocab.NAME_LAST[rng.integers(len(vocab.NAME_LAST))]
    if modality in ("film", "series_episode"):
        return f"{last} Pictures" if rng.random() < 0.5 else f"Studio {last}"
    if modality == "music_track" and rng.random() < 0.4:
        mood = vocab.MOODS[rng.integers(len(vocab.MOODS))]
        return f"The {vocab.TITLE_ADJECTIVES[mood][rng.integers(4)]} {vocab.GROUP_WORDS[rng.integers(len(vocab.GROUP_WORDS))]}"
    return f"{first} {last}"


def _provider_name(rng: np.random.Generator, i: int) -> str:
    word = vocab.TITLE_NOUNS[i % len(vocab.TITLE_NOUNS)]
    kind = ("Media", "Records", "Networks", "Studios", "Audio")[rng.integers(5)]
    return f"{word} {kind}" + (f" {i // len(vocab.TITLE_NOUNS) + 1}" if i >= len(vocab.TITLE_NOUNS) else "")


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def world_catalog(world: World, cfg: SynthConfig, rng: np.random.Generator) -> Catalog:
    """Readable metadata for every item: titles and descriptions carry genre, mood and themes."""
    n = len(world.genre)
    width = len(str(n))
    titles, descriptions, tags = [], [], []
    for i in range(n):
        modality = MODALITIES[world.modality[i]]
        genre, mood = GENRES[world.genre[i]], vocab.MOODS[world.mood[i]]
        t1, t2 = THEMES[world.themes[i, 0]], THEMES[world.themes[i, 1]]
        creator = world.creator_names[world.creator[i]]
        language = vocab.LANGUAGES[world.language[i]]
        s, e = world.series[i], int(world.episode[i])
        if modality == "series_episode":
            title = f"{world.series_titles[s]}, Episode {e}"
            text = f"Episode {e} of {world.series_titles[s]}, {_a(mood)} {genre} series about {t1} and {t2}."
        elif modality == "podcast_episode":
            title = f"{world.series_titles[s]} #{e}: {t1.title()}"
            text = f"{_a(mood).capitalize()} {genre} podcast episode on {t1} and {t2}, hosted by {creator}."
        elif modality == "short_video":
            title = f"{t1.capitalize()}: {_title(rng, mood).lower()}"
            text = f"{_a(mood).capitalize()} {genre} short video about {t1} and {t2} by {creator}."
        elif modality == "music_track":
            title = _title(rng, mood)
            text = f"{_a(mood).capitalize()} {genre} track with {t1} and {t2} vibes by {creator}."
        else:
            title = _title(rng, mood)
            text = f"{_a(mood).capitalize()} {genre} film about {t1} and {t2}, from {creator}."
        if language != "en":
            text += f" In {vocab.LANGUAGE_NAME[language]}."
        titles.append(title)
        descriptions.append(text)
        tags.append((genre, mood, t1, t2))
    return Catalog(
        item_ids=[f"i{i:0{width}d}" for i in range(n)],
        text={
            "title": titles,
            "description": descriptions,
            "genre": [GENRES[g] for g in world.genre],
            "mood": [vocab.MOODS[m] for m in world.mood],
            "modality": [MODALITIES[m] for m in world.modality],
            "language": [vocab.LANGUAGES[x] for x in world.language],
            "creator": [world.creator_names[c] for c in world.creator],
            "provider": [world.provider_names[world.provider_of_creator[c]] for c in world.creator],
            "series_id": ["" if s < 0 else f"s{s:0{width}d}" for s in world.series],
        },
        tags=tags,
        duration=np.round(world.duration),
        release_ts=world.release,
        episode=world.episode,
    )


# --------------------------------------------------------------------- users


@dataclass
class Users:
    taste_start: np.ndarray  # (U, G) genre affinity at the start of a user's life
    taste_end: np.ndarray  # (U, G) ... and at its end (drift)
    modality_mix: np.ndarray  # (U, M)
    mood_pref: np.ndarray  # (U, moods)
    theme_pref: np.ndarray  # (U, themes) 0/1 favourites
    languages: np.ndarray  # (U, 2) primary, secondary
    peak_hour: np.ndarray  # (U,)
    device_mix: np.ndarray  # (U, D)
    join: np.ndarray  # (U,) first active time
    slots: np.ndarray  # (U,) number of consumption slots
    audio_taste_start: np.ndarray  # (U, G) genre affinity for audio items (== taste_start when coupled)
    audio_taste_end: np.ndarray


def build_users(cfg: SynthConfig, rng: np.random.Generator, n: int) -> Users:
    g, k = len(GENRES), cfg.archetypes
    arche_taste = rng.dirichlet(np.full(g, 0.15), k)
    arche_modality = rng.dirichlet(np.full(len(MODALITIES), 0.7), k)
    # each user mixes one to three archetypes; drift moves weight towards another one
    mix = np.zeros((n, k))
    for _ in range(3):
        mix[np.arange(n), rng.integers(0, k, n)] += rng.random(n) * (rng.random(n) < 0.6)
    mix[np.arange(n), rng.integers(0, k, n)] += 1.0
    mix /= mix.sum(1, keepdims=True)
    drift = np.zeros((n, k))
    drift[np.arange(n), rng.integers(0, k, n)] = 1.0
    taste_start = mix @ arche_taste + 0.01
    taste_end = (0.55 * mix + 0.45 * drift) @ arche_taste + 0.01
    modality_mix = mix @ arche_modality + 0.02
    mood_pref = rng.dirichlet(np.full(len(vocab.MOODS), 0.6), n) + 0.02
    theme_pref = np.zeros((n, len(THEMES)), np.float32)
    top_genres = np.argsort(-taste_start, axis=1)[:, :2]
    for u in range(n):
        pool = [THEME[t] for gi in top_genres[u] for t in vocab.GENRE_THEMES[GENRES[gi]]]
        theme_pref[u, rng.choice(pool, 3, replace=False)] = 1.0
    primary = rng.choice(len(vocab.LANGUAGES), n, p=vocab.LANGUAGE_SHARE)
    secondary = np.where((primary != 0) & (rng.random(n) < 0.5), 0,
                         rng.choice(len(vocab.LANGUAGES), n, p=vocab.LANGUAGE_SHARE))
    peak = rng.choice([7, 12, 17, 20, 22], n, p=[0.15, 0.15, 0.15, 0.3, 0.25])
    device_mix = rng.dirichlet(np.array([1.2, 1.0, 0.3, 0.3]), n)
    join = cfg.start_ts + (rng.random(n) ** 2 * (cfg.days - 20) * DAY).astype(np.int64)
    activity = rng.lognormal(0.0, 0.8, n)
    audio_start, audio_end = taste_start, taste_end
    if cfg.domain_coupling is not None:
        own = np.random.default_rng([cfg.seed, 0xD0])  # its own stream: the main draws stay as they were
        other = np.zeros((n, k))
        other[np.arange(n), own.integers(0, k, n)] += 1.0
        other[np.arange(n), own.integers(0, k, n)] += own.random(n)
        other /= other.sum(1, keepdims=True)
        audio, paired = audio_pairing(cfg.seed)
        audio_start, audio_end = taste_start.copy(), taste_end.copy()
        for out, video_taste in ((audio_start, taste_start), (audio_end, taste_end)):
            own_taste = other @ arche_taste + 0.01
            follow = video_taste[:, paired] ** 3  # sharpened: the favourite video genre leads
            follow /= follow.sum(1, keepdims=True)
            mine = own_taste[:, audio] / own_taste[:, audio].sum(1, keepdims=True)
            out[:, audio] = cfg.domain_coupling * follow + (1 - cfg.domain_coupling) * mine
    return Users(taste_start, taste_end, modality_mix, mood_pref, theme_pref,
                 np.stack([primary, secondary], 1), peak, device_mix, join, activity, audio_start, audio_end)


def audio_pairing(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The known pairing of a coupled world: audio genre codes, and the video genre each one follows."""
    audio = sorted({GENRE[g] for m, d in vocab.DOMAIN_OF_MODALITY.items() if d == "audio"
                    for g in vocab.MODALITY_GENRES[m]})
    video = sorted({GENRE[g] for m, d in vocab.DOMAIN_OF_MODALITY.items() if d == "video"
                    for g in vocab.MODALITY_GENRES[m]})
    paired = np.random.default_rng([seed, 0xD1]).choice(video, len(audio), replace=len(audio) > len(video))
    return np.array(audio), paired


def video_taste_from_audio(audio_taste: np.ndarray, base: np.ndarray, seed: int) -> np.ndarray:
    """What a coupled world's audio tastes (rows over GENRES) say about the video tastes: each paired
    video genre gets the cube root of its audio genre's taste (undoing the coupling's sharpening),
    scaled to the mass `base` (rows over GENRES) puts on the paired genres; every other genre keeps
    `base`. At coupling 1 the paired columns are proportional to the true video taste."""
    audio, paired = audio_pairing(seed)
    out = np.array(base, np.float64, copy=True, ndmin=2)
    root = np.cbrt(np.asarray(audio_taste, np.float64).reshape(len(out), -1)[:, audio])
    out[:, paired] = root / root.sum(1, keepdims=True) * out[:, paired].sum(1, keepdims=True)
    return out


def _allocate_slots(cfg: SynthConfig, activity: np.ndarray) -> np.ndarray:
    """Split the event budget over users by activity (heavy-tailed), at least 5 each."""
    budget = cfg.events / 1.08  # likes add about 8% more events on top of the slots
    slots = np.maximum(5, np.round(activity / activity.sum() * budget)).astype(np.int64)
    return slots


# -------------------------------------------------------------------- events


class ItemSampler:
    """Popularity-weighted sampling of items released before a time, per (modality, genre, language)."""

    def __init__(self, world: World, fresh_days: int = 30):
        n_lang = len(vocab.LANGUAGES)
        self.bucket = (world.modality.astype(np.int64) * len(GENRES) + world.genre) * n_lang + world.language
        self.t0 = int(world.release.min())
        rel = world.release - self.t0
        key = self.bucket * (1 << 34) + rel
        self.order = np.argsort(key, kind="stable")
        self.key = key[self.order]
        self.cum = np.concatenate([[0.0], np.cumsum(world.popularity[self.order])])
        self.fresh = fresh_days * DAY

    def sample(self, rng, bucket: np.ndarray, t: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        """One item per request, or -1 where nothing in the bucket was released yet."""
        rel = t - self.t0
        hi = np.searchsorted(self.key, bucket * (1 << 34) + rel, "right")
        lo = np.searchsorted(self.key, bucket * (1 << 34) + np.where(fresh, np.maximum(rel - self.fresh, 0), 0))
        lo_all = np.searchsorted(self.key, bucket * (1 << 34))
        lo = np.where(hi > lo, lo, lo_all)  # nothing fresh: fall back to the whole bucket
        ok = hi > lo
        u = self.cum[lo] + rng.random(len(bucket)) * (self.cum[hi] - self.cum[lo])
        pos = np.clip(np.searchsorted(self.cum, u, "right") - 1, lo, np.maximum(hi - 1, lo))
        return np.where(ok, self.order[np.minimum(pos, len(self.order) - 1)], -1)


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Row-wise sampling from unnormalised probabilities."""
    cum = np.cumsum(probs, axis=1)
    return (rng.random(len(probs))[:, None] * cum[:, -1:] < cum).argmax(1)


def generate_events(cfg: SynthConfig, world: World, users: Users, sampler: ItemSampler,
                    rng: np.random.Generator) -> Interactions:
    """Events of one chunk of users (codes local to the chunk), sorted by (user, time)."""
    n_users = len(users.slots)
    slot_user = np.repeat(np.arange(n_users), users.slots)
    n = len(slot_user)
    starts = np.concatenate([[0], np.cumsum(users.slots)[:-1]])
    position = np.arange(n) - starts[slot_user]
    progress = position / np.maximum(users.slots[slot_user] - 1, 1)

    # sessions: about three items each, on random days of the user's active period, near a habitual hour
    new_session = (rng.random(n) < 1 / 3) | (position == 0)
    session = np.cumsum(new_session) - 1
    s_user = slot_user[new_session]
    active = np.maximum(cfg.end_ts - users.join[s_user], DAY)
    day = (users.join[s_user] + (rng.random(len(s_user)) * active).astype(np.int64)) // DAY * DAY
    hour = np.where(rng.random(len(s_user)) < 0.7, users.peak_hour[s_user] + rng.normal(0, 1.5, len(s_user)),
                    rng.uniform(0, 24, len(s_user)))
    hour = np.mod(hour, 24)
    s_time = day + (hour * 3600).astype(np.int64)
    s_time = np.minimum(s_time, cfg.end_ts - 3600)
    s_time = np.sort(s_time + s_user.astype(np.int64) * (1 << 40)) - s_user.astype(np.int64) * (1 << 40)
    s_hour = (s_time % DAY) // 3600
    s_device = _categorical(rng, users.device_mix[s_user])
    t = s_time[session]

    bucket_of_hour = np.searchsorted([b[1] for b in vocab.HOUR_BUCKETS], s_hour[session], "right")
    mod_w = (users.modality_mix[slot_user]
             * np.asarray(vocab.HOUR_MODALITY_FACTOR)[bucket_of_hour]
             * np.asarray(vocab.DEVICE_MODALITY_FACTOR)[s_device[session]])
    modality = _categorical(rng, mod_w)
    taste = ((1 - progress)[:, None] * users.taste_start[slot_user]
             + progress[:, None] * users.taste_end[slot_user])
    audio = np.isin(modality, AUDIO_MODALITIES)
    if cfg.domain_coupling is not None and audio.any():  # audio follows its own (coupled) taste
        taste[audio] = ((1 - progress[audio])[:, None] * users.audio_taste_start[slot_user[audio]]
                        + progress[audio][:, None] * users.audio_taste_end[slot_user[audio]])
    genre = np.empty(n, np.int64)
    for m, name in enumerate(MODALITIES):
        idx = np.flatnonzero(modality == m)
        own = np.array([GENRE[g] for g in vocab.MODALITY_GENRES[name]])
        genre[idx] = own[_categorical(rng, taste[idx][:, own])]
    language = users.languages[slot_user, (rng.random(n) < 0.15).astype(int)]
    any_language = (modality == MOD["music_track"]) & (rng.random(n) < 0.3)
    language = np.where(any_language, rng.choice(len(vocab.LANGUAGES), n, p=vocab.LANGUAGE_SHARE), language)
    n_lang = len(vocab.LANGUAGES)

    cands = np.empty((n, CANDIDATES), np.int64)
    for c in range(CANDIDATES):
        fresh = rng.random(n) < 0.25
        pick = sampler.sample(rng, (modality * len(GENRES) + genre) * n_lang + language, t, fresh)
        for fallback_language in (users.languages[slot_user, 0], np.zeros(n, np.int64)):
            miss = pick < 0
            if not miss.any():
                break
            b = (modality[miss] * len(GENRES) + genre[miss]) * n_lang + fallback_language[miss]
            pick[miss] = sampler.sample(rng, b, t[miss], fresh[miss])
        cands[:, c] = pick
    # the user picks among the candidates by mood and favourite themes
    valid = cands >= 0
    safe = np.where(valid, cands, 0)
    weight = users.mood_pref[slot_user[:, None], world.mood[safe]]
    theme_hit = users.theme_pref[slot_user[:, None], world.themes[safe, 0]] + \
        users.theme_pref[slot_user[:, None], world.themes[safe, 1]]
    weight = np.where(valid, weight * (1 + 2 * theme_hit), 0)
    first = _categorical(rng, weight + 1e-12)
    order = np.argsort(np.arange(CANDIDATES)[None, :] != first[:, None], axis=1, kind="stable")
    cands = np.where(valid, cands, -1)[np.arange(n)[:, None], order]

    item, via = _walk(cfg, world, users, slot_user, t, modality, cands, rng)
    keep = item >= 0
    slot_idx = np.flatnonzero(keep)
    item = item[keep]
    return _outcomes(world, users, slot_idx, item, via[keep], slot_user, taste, session, s_time, s_device, rng)


def _walk(cfg, world: World, users: Users, slot_user, t, modality, cands, rng):
    """Per user, in time order: continue series in episode order and stay with creators; no repeats."""
    n = len(slot_user)
    item = np.full(n, -1, np.int64)
    via = np.zeros(n, np.int8)  # 1 = series continuation, 2 = creator continuation, 3 = dropped the series
    r_series, r_creator, r_pick, r_drop = rng.random(n), rng.random(n), rng.random(n), rng.random(n)
    series, episode, release, creator = world.series, world.episode, world.release, world.creator
    series_items, creator_items = world.series_items, world.creator_items
    continue_creator = CONTINUE_CREATOR[world.modality]
    bounds = np.flatnonzero(np.diff(slot_user)) + 1
    for block in np.split(np.arange(n), bounds):
        seen: set[int] = set()
        current_series, next_episode, current_creator, p_creator = -1, 0, -1, 0.0
        for j in block:
            now = t[j]
            chosen, how = -1, 0
            if current_series >= 0 and r_series[j] < CONTINUE_SERIES:
                nxt = _first_unseen(series_items[current_series], next_episode, seen)
                if nxt >= 0 and release[nxt] <= now:
                    chosen, how = nxt, 1
            if chosen < 0 and r_creator[j] < p_creator:
                pool = creator_items[current_creator]
                released = int(np.searchsorted(release[pool], now, "right"))
                if released:
                    candidate = int(pool[int(r_pick[j] * released)])
                    if candidate not in seen:
                        chosen, how = candidate, 2
            if chosen < 0:
                for c in cands[j]:
                    if c >= 0 and c not in seen:
                        chosen = int(c)
                        break
            if chosen < 0:
                continue
            s = series[chosen]
            if s >= 0 and how != 1 and episode[chosen] > 1:
                # people start a series at its first episode they have not seen
                chosen = _first_unseen(series_items[s], 0, seen)
            seen.add(chosen)
            item[j], via[j] = chosen, how
            if series[chosen] >= 0:
                current_series, next_episode = int(series[chosen]), int(episode[chosen])
                if r_drop[j] < SERIES_DROP:  # gave up on this episode, and on the series
                    current_series, via[j] = -1, 3
            current_creator, p_creator = int(creator[chosen]), continue_creator[chosen]
    return item, via


def _first_unseen(episodes: np.ndarray, start: int, seen: set[int]) -> int:
    for item in episodes[start:]:
        if int(item) not in seen:
            return int(item)
    return -1


# ------------------------------------------------------- ground truth (also read by simulators)


def item_fit(world: World, users: Users, u: np.ndarray, taste: np.ndarray, item: np.ndarray) -> np.ndarray:
    """How well each item suits its user, 0 to 1: genre taste, mood and favourite themes.

    `u` are user codes into `users`, `taste` their genre affinity rows (one per pair).
    """
    genre_fit = taste[np.arange(len(item)), world.genre[item]] / taste.max(1)
    mood_fit = users.mood_pref[u, world.mood[item]] / users.mood_pref[u].max(1)
    theme_fit = 0.5 * (users.theme_pref[u, world.themes[item, 0]] + users.theme_pref[u, world.themes[item, 1]])
    return 0.6 * genre_fit + 0.25 * mood_fit + 0.15 * theme_fit


def skip_probability(world: World, item: np.ndarray, fit: np.ndarray, continuing: np.ndarray | bool) -> np.ndarray:
    """Chance that a started item is skipped (a series being continued is rarely skipped)."""
    return np.clip(SKIP_BASE[world.modality[item]] * (1.6 - fit) * np.where(continuing, 0.3, 1.0), 0.02, 0.8)


def finish_probability(world: World, item: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Chance that an item played and not skipped is watched or heard to the end."""
    long_form = np.isin(world.modality[item], [MOD["film"], MOD["podcast_episode"]])
    return np.clip(0.3 + 0.6 * fit - 0.1 * long_form, 0.1, 0.95)


def like_probability(fit: np.ndarray) -> np.ndarray:
    """Chance of a like after a finish."""
    return 0.05 + 0.35 * fit


@dataclass
class GroundTruth:
    """The generator's world and users for a config: what a simulator reacts with."""

    config: SynthConfig
    world: World
    catalog: Catalog
    users: Users  # slots already allocated: a user's share of the event budget (activity)
    user_ids: list[str]


def ground_truth(cfg: SynthConfig) -> GroundTruth:
    """Rebuild the world and users exactly as `synthesize` does for the same config (same draws)."""
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    world = build_world(cfg, rng)
    catalog = world_catalog(world, cfg, rng)
    users = build_users(cfg, rng, cfg.users)
    users.slots = _allocate_slots(cfg, users.slots)
    width = len(str(cfg.users))
    return GroundTruth(cfg, world, catalog, users, [f"u{u:0{width}d}" for u in range(cfg.users)])


def _outcomes(world: World, users: Users, slot_idx, item, via, slot_user, taste, session, s_time, s_device,
              rng) -> Interactions:
    """Skip / play / finish from how well an item suits the user; likes follow some finishes."""
    u = slot_user[slot_idx]
    fit = item_fit(world, users, u, taste[slot_idx], item)
    p_skip = skip_probability(world, item, fit, via == 1)
    # a series episode is skipped exactly when the user drops the series (decided in the walk)
    in_series = world.series[item] >= 0
    skip = np.where(in_series, via == 3, rng.random(len(item)) < p_skip)
    p_finish = finish_probability(world, item, fit)
    finish = ~skip & (rng.random(len(item)) < p_finish)
    event = np.where(skip, EVENT_CODE["skip"], np.where(finish, EVENT_CODE["finish"], EVENT_CODE["play"]))
    value = np.where(skip, rng.uniform(0.02, 0.25, len(item)),
                     np.where(finish, rng.uniform(0.93, 1.0, len(item)), rng.uniform(0.25, 0.9, len(item))))
    # an item starts when the previous one stopped (plus a short gap); a session starts at its
    # planned time or when the user's previous session ended, whichever is later
    watched = world.duration[item] * value
    spent = watched + rng.uniform(5, 60, len(item))
    sess = session[slot_idx]
    session_length = np.bincount(sess, spent, minlength=len(s_time)).astype(np.int64)
    before = np.cumsum(session_length) - session_length
    s_user = slot_user[np.r_[0, np.flatnonzero(np.diff(session)) + 1]].astype(np.int64)
    big = np.int64(1) << 42  # keeps the running maximum from crossing users
    start = before + np.maximum.accumulate(s_time - before + s_user * big) - s_user * big
    csum = np.cumsum(spent)
    first_in_session = np.r_[True, sess[1:] != sess[:-1]]
    base = np.maximum.accumulate(np.where(first_in_session, csum - spent, 0.0))
    ts = (start[sess] + (csum - spent - base)).astype(np.int64)
    device = s_device[sess].astype(np.int8)

    liked = finish & (rng.random(len(item)) < like_probability(fit))
    users_out = np.concatenate([u, u[liked]])
    items_out = np.concatenate([item, item[liked]])
    ts_out = np.concatenate([ts, ts[liked] + watched[liked].astype(np.int64)])
    ev_out = np.concatenate([event, np.full(liked.sum(), EVENT_CODE["like"])]).astype(np.int8)
    val_out = np.concatenate([value, np.ones(liked.sum())]).astype(np.float32)
    dev_out = np.concatenate([device, device[liked]])
    return Interactions(users_out.astype(np.int32), items_out.astype(np.int32), ts_out, ev_out, val_out,
                        dev_out).sorted_by_time()


# ---------------------------------------------------------------------- main


def synthesize(cfg: SynthConfig, progress: Callable[[str, int, int], None] | None = None
               ) -> Iterator[tuple[Catalog | None, Interactions, list[str]]]:
    """Yield (catalog on the first chunk, events, user ids) chunk by chunk of users.

    User codes in each chunk's events are local: code k is `user_ids[k]` of that chunk.
    """
    truth = ground_truth(cfg)
    world, catalog, users_all = truth.world, truth.catalog, truth.users
    sampler = ItemSampler(world)
    width = len(str(cfg.users))
    done = 0
    for first in range(0, cfg.users, cfg.chunk_users):
        last = min(cfg.users, first + cfg.chunk_users)
        chunk_users = Users(*(getattr(users_all, f)[first:last] for f in Users.__dataclass_fields__))
        chunk_rng = np.random.default_rng([cfg.seed, first])
        log = generate_events(cfg, world, chunk_users, sampler, chunk_rng)
        done = last
        if progress:
            progress("users", done, cfg.users)
        yield (catalog if first == 0 else None), log, [f"u{u:0{width}d}" for u in range(first, last)]


def synth_dataset(cfg: SynthConfig) -> Dataset:
    """The whole synthetic data set in memory (for tests and small sizes)."""
    catalog, logs, user_ids = None, [], []
    for cat, log, ids in synthesize(cfg):
        catalog = catalog or cat
        log.user = log.user + len(user_ids)
        logs.append(log)
        user_ids.extend(ids)
    fields = ("user", "item", "timestamp", "event", "value", "device")
    log = Interactions(*(np.concatenate([getattr(x, f) for x in logs]) for f in fields))
    return Dataset(catalog, log, user_ids, meta=_meta(cfg))


def _meta(cfg: SynthConfig) -> dict:
    return {"source": "edgerec synthetic audio/video world", "config": cfg.__dict__.copy(),
            "devices": list(DEVICES)}


def write_synth(cfg: SynthConfig, out: str | Path, fmt: str = "csv",
                progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Generate and stream the data set to `out` in the neutral format; returns its summary."""
    from edgerec.data.store import (
        begin_write,
        catalog_columns,
        interaction_columns,
        refuse_foreign_folder,
        write_meta,
    )
    from edgerec.data.tables import CsvAppender, write_csv, write_parquet

    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"unknown file format {fmt!r}; use csv or parquet")
    cfg.validate()  # before the folder is marked incomplete: bad options must leave existing data as it was
    refuse_foreign_folder(out)  # the user's own interactions.csv there would be replaced
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    held = begin_write(out)
    began = time.perf_counter()
    events, active_users, catalog, writer, parquet_parts = 0, 0, None, None, []
    try:
        for cat, log, ids in synthesize(cfg, progress):
            if cat is not None:
                catalog = cat
                (write_csv if fmt == "csv" else write_parquet)(out / f"items.{fmt}", catalog_columns(cat))
            columns = interaction_columns(Dataset(catalog, log, ids))
            if fmt == "csv":
                writer = writer or CsvAppender(out / "interactions.csv", list(columns))
                writer.append(list(columns.values()))
            else:
                parquet_parts.append(columns)
            events += len(log)
            active_users += int(np.unique(log.user).size)
    except BaseException:
        if writer:
            writer.__exit__(RuntimeError, None, None)  # drop the partial file
        raise
    if writer:
        writer.close()
    if parquet_parts:
        write_parquet(out / "interactions.parquet",
                      {k: [v for p in parquet_parts for v in p[k]] for k in parquet_parts[0]})
    write_meta(out, _meta(cfg), fmt, users=active_users, items=cfg.items, events=events)
    held.release()
    return {"users": active_users, "items": cfg.items, "events": events,
            "seconds": round(time.perf_counter() - began, 2), "path": str(out)}
