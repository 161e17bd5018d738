"""How simulated users react to a shown list: who examines what, plays, finishes, likes, refuses, returns.

Two sources of truth, one interface (`Reactions`), indexed by the data set's
user and item codes:

- `SynthReactions`: the synthetic world's own ground-truth user model
  (data/synth.py: genre taste at the end of the log, mood and theme
  preferences, languages, activity, and series watched in episode order),
  so a simulated user reacts as the generator's users behave. Given what
  the user has consumed (`Consumed`: the log, then the simulation), an
  episode later than the first one the user has not seen is not played
  (the generator's users start a series at its first unseen episode and
  never skip ahead), and the next episode of the series the user is
  watching draws them at least as often as the generator continues a series
  (CONTINUE_SERIES) and is skipped less, as there.
- `FittedReactions`: for imported data, a click model fitted on the log, and
  only that: attraction = item popularity^0.5 x the user's affinity for the
  item's genre, capped at 0.95 and scaled so that the mean attraction of the
  logged plays (every event but a like, which is not another play) is 0.5 after
  the cap; skip rates per play and finish rates per play not skipped, per
  item from the log (smoothed towards the global rates).
  It is a plausible stand-in, not a claim about the real users.

Examination is position-biased: the position-based model (position r is
examined with probability (1 + r)^-EXAMINE_DECAY, independently) or the
cascade model (top-down; after a play the user goes on with probability
CASCADE_CONTINUE, after a pass always).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from edgerec.data.schema import Dataset
from edgerec.data.synth import (
    CONTINUE_SERIES,
    SynthConfig,
    finish_probability,
    ground_truth,
    item_fit,
    like_probability,
    skip_probability,
)
from edgerec.errors import ConfigError
from edgerec.runtime.vocab import LOG_EVENTS
from edgerec.studies.activity import normal_scores

EXAMINE_DECAY = 0.7
CASCADE_CONTINUE = 0.6
CLICK_MODELS = ("pbm", "cascade")
MEAN_ATTRACTION, MAX_ATTRACTION = 0.5, 0.95  # the fitted model's mean over logged pairs, after its clip


def examination(k: int) -> np.ndarray:
    """P(position r is examined) under the position-based model, r = 0..k-1."""
    return (1.0 + np.arange(k)) ** -EXAMINE_DECAY


@dataclass
class Reaction:
    """What one user did with one list: positions that were played, and what became of each."""

    examined: np.ndarray  # bool per position
    played: np.ndarray
    finished: np.ndarray
    skipped: np.ndarray
    liked: np.ndarray
    refused: np.ndarray  # "not interested"
    watched_s: np.ndarray  # seconds watched per position

    @property
    def clicked(self) -> list[int]:
        return [int(p) for p in np.flatnonzero(self.played)]


class Consumed:
    """What one simulated user has played, oldest first: their logged items, then the simulation's plays."""

    def __init__(self, items=()):
        self.order: list[int] = [int(i) for i in items]
        self.items: set[int] = set(self.order)

    def add(self, items) -> None:
        for item in items:
            self.order.append(int(item))
            self.items.add(int(item))


class Reactions(ABC):
    """A user model over the data set's codes; `consumed` (when given) is what the user has played so far."""

    # simulated per-user figures (simulator.FIELDS) the model has nothing in its data to base on
    unmeasured: tuple[str, ...] = ()

    @abstractmethod
    def attraction(self, user: int, items: np.ndarray, consumed: Consumed | None = None) -> np.ndarray:
        """P(play | examined) for each item."""

    @abstractmethod
    def outcome(self, user: int, items: np.ndarray,
                consumed: Consumed | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P(skip | played), P(finish | played, not skipped), P(like | finished))."""

    @abstractmethod
    def duration(self, items: np.ndarray) -> np.ndarray:
        """Seconds of each item."""

    @abstractmethod
    def activity_score(self, users: np.ndarray) -> np.ndarray:
        """Each user's normal score in the data's own activity (0: the median user; studies/activity.py)."""

    def satisfied(self, reaction: Reaction) -> np.ndarray:
        """Positions that satisfied the user (bring them back tomorrow, keep the session going): a
        finish, or a play that was not skipped when the log measures no finishes (a ratings log:
        a rating is the best outcome it records, and finishes that never happen would halve every
        simulated user's visits)."""
        if "finishes" in self.unmeasured:
            return reaction.played & ~reaction.skipped
        return reaction.finished

    def judge(self, user: int, items: np.ndarray, consumed: Consumed | None = None) -> tuple[np.ndarray, ...]:
        """(attraction, P(skip), P(finish), P(like)) of each item: what `react` draws from."""
        return (self.attraction(user, items, consumed), *self.outcome(user, items, consumed))

    def react(self, user: int, items: np.ndarray, rng: np.random.Generator, model: str = "pbm",
              consumed: Consumed | None = None) -> Reaction:
        k = len(items)
        attract, p_skip, p_finish, p_like = self.judge(user, items, consumed)
        u = rng.random((6, k))  # a fixed number of draws per list keeps runs repeatable under edits
        if model == "pbm":
            examined = u[0] < examination(k)
            played = examined & (u[1] < attract)
        elif model == "cascade":
            examined, played = np.zeros(k, bool), np.zeros(k, bool)
            for r in range(k):
                examined[r] = True
                played[r] = u[1, r] < attract[r]
                if played[r] and u[0, r] >= CASCADE_CONTINUE:
                    break
        else:
            raise ConfigError(f"unknown click model {model!r}; use one of {', '.join(CLICK_MODELS)}")
        skipped = played & (u[2] < p_skip)
        finished = played & ~skipped & (u[3] < p_finish)
        liked = finished & (u[4] < p_like)
        # an examined item passed over is sometimes refused outright, the more so the worse it fits
        refused = examined & ~played & (u[5] < 0.1 * (1 - attract))
        share = np.where(finished, 1.0, np.where(skipped, 0.1, np.where(played, 0.5, 0.0)))
        return Reaction(examined, played, finished, skipped, liked, refused, share * self.duration(items))


class SynthReactions(Reactions):
    """The synthetic world's users, as the generator defines them (taste at the end of the log)."""

    def __init__(self, dataset: Dataset):
        config = dataset.meta.get("config")
        if not config:
            raise ConfigError("this data set has no synthetic config in dataset.json; use FittedReactions for "
                              "imported data")
        fields = SynthConfig.__dataclass_fields__
        self.truth = ground_truth(SynthConfig(**{k: v for k, v in config.items() if k in fields}))
        world, users = self.truth.world, self.truth.users
        if dataset.catalog.item_ids != self.truth.catalog.item_ids:
            raise ConfigError("the data set's items differ from its synthetic config's world; regenerate it")
        by_id = {name: i for i, name in enumerate(self.truth.user_ids)}
        missing = len(set(dataset.user_ids) - set(by_id))
        if missing:  # counted, never named: a user id can be a person's e-mail address
            raise ConfigError(f"{missing:,} of the data set's {len(dataset.user_ids):,} users are not in its synthetic "
                              "config's world (were users renamed or added?); regenerate the data set, or drop "
                              "'config' from its dataset.json to simulate it as imported data (a fitted click model)")
        self.user_row = np.array([by_id[name] for name in dataset.user_ids], np.int64)
        self.world, self.users = world, users
        self.score = normal_scores(users.slots)  # event slots: the generator's lognormal activity

    def fit(self, user: int, items: np.ndarray) -> np.ndarray:
        row = self.user_row[user]
        u = np.full(len(items), row)
        return item_fit(self.world, self.users, u, self.users.taste_end[u], items)

    def judge(self, user: int, items: np.ndarray, consumed: Consumed | None = None) -> tuple[np.ndarray, ...]:
        # the fit and the series order computed once for both halves (a simulated list's main cost)
        fit = self.fit(user, items)
        ahead, continuing = (False, False) if consumed is None else self.series_order(items, consumed)
        row = self.user_row[user]
        speaks = np.isin(self.world.language[items], self.users.languages[row])
        attract = (1 / (1 + np.exp(-10 * (fit - 0.45)))) * np.where(speaks, 1.0, 0.3)
        attract = np.where(ahead, 0.0, np.where(continuing, np.maximum(attract, CONTINUE_SERIES), attract))
        return (attract, skip_probability(self.world, items, fit, continuing),
                finish_probability(self.world, items, fit), like_probability(fit))

    def attraction(self, user: int, items: np.ndarray, consumed: Consumed | None = None) -> np.ndarray:
        return self.judge(user, items, consumed)[0]

    def outcome(self, user: int, items: np.ndarray, consumed: Consumed | None = None):
        return self.judge(user, items, consumed)[1:]

    def series_order(self, items: np.ndarray, consumed: Consumed) -> tuple[np.ndarray, np.ndarray]:
        """Per item: `ahead` (a later episode than the first one of its series the user has not seen) and
        `continuing` (the next episode of the series the user watched last, as data/synth.py's walk)."""
        series = self.world.series
        ahead, continuing = np.zeros(len(items), bool), np.zeros(len(items), bool)
        current = next((int(series[i]) for i in reversed(consumed.order) if series[i] >= 0), -1)
        for p, item in enumerate(items.tolist()):
            s = int(series[item])
            if s < 0 or item in consumed.items:
                continue
            first = next((int(e) for e in self.world.series_items[s] if int(e) not in consumed.items), -1)
            ahead[p] = item != first
            continuing[p] = item == first and s == current
        return ahead, continuing

    def duration(self, items: np.ndarray) -> np.ndarray:
        return self.world.duration[items].astype(np.float64)

    def activity_score(self, users: np.ndarray) -> np.ndarray:
        return self.score[self.user_row[users]]


class FittedReactions(Reactions):
    """A click model fitted on an imported log: popularity x genre affinity (see the module docstring)."""

    def __init__(self, dataset: Dataset, smoothing: float = 5.0):
        log, catalog = dataset.interactions, dataset.catalog
        n_items, n_users = len(catalog.item_ids), dataset.n_users
        code = {name: i for i, name in enumerate(LOG_EVENTS)}
        # a like follows a play of the same item: it is not another play, so the rates count the rest
        views = log.event != code["like"]
        count = np.bincount(log.item[views], minlength=n_items).astype(np.float64)
        skips = np.bincount(log.item[log.event == code["skip"]], minlength=n_items)
        finishes = np.bincount(log.item[log.event == code["finish"]], minlength=n_items)
        self.skip = (skips + smoothing * skips.sum() / max(count.sum(), 1)) / (count + smoothing)
        played = np.maximum(count - skips, 0)
        self.finish = (finishes + smoothing * finishes.sum() / max(played.sum(), 1)) / (played + smoothing)
        genres = catalog.text.get("genre") or ["" for _ in catalog.item_ids]
        names = sorted(set(genres))
        self.genre = np.array([names.index(g) for g in genres], np.int64)
        pairs = np.zeros((n_users, len(names)))
        np.add.at(pairs, (log.user, self.genre[log.item]), 1.0)
        self.affinity = (pairs + 0.5) / (pairs.sum(1, keepdims=True) + 0.5 * len(names))
        self.pop = np.sqrt((count + 1) / (count.mean() + 1))
        raw = self.pop[log.item[views]] * self.affinity[log.user[views], self.genre[log.item[views]]]
        self.scale = scale_for_mean(raw, MEAN_ATTRACTION, MAX_ATTRACTION)
        self.length = np.nan_to_num(np.asarray(catalog.duration, np.float64), nan=600.0)
        known_length = self.length > 0
        self.length = np.where(known_length, self.length, 600.0)
        # a ratings log (MovieLens) has no finish: every simulated finish and like would be 0, not a
        # measurement; items without durations watch an assumed 10 minutes
        self.unmeasured = ((("finishes", "likes") if finishes.sum() == 0 else ())
                           + (("watch_s",) if not known_length.any() or finishes.sum() == 0 else ()))
        self.score = normal_scores(np.bincount(log.user, minlength=n_users))  # events per user in the log

    def attraction(self, user: int, items: np.ndarray, consumed: Consumed | None = None) -> np.ndarray:
        return np.clip(self.scale * self.pop[items] * self.affinity[user, self.genre[items]], 0.0, MAX_ATTRACTION)

    def outcome(self, user: int, items: np.ndarray, consumed: Consumed | None = None):
        return self.skip[items], self.finish[items], np.full(len(items), 0.2)

    def duration(self, items: np.ndarray) -> np.ndarray:
        return self.length[items]

    def activity_score(self, users: np.ndarray) -> np.ndarray:
        return self.score[users]


def scale_for_mean(raw: np.ndarray, mean: float, cap: float) -> float:
    """The s > 0 with mean(min(s x raw, cap)) = mean, for raw > 0 and mean < cap (1.0 for no values).

    Scaling to the mean before the clip left the mean of logged pairs at 0.435, not 0.5, with 14.7% of
    them clipped (an imported log). The clipped mean rises with s, and with the m largest values clipped
    it is (s x sum of the others + cap x m) / n: the smallest m whose s keeps the others below the
    cap and the m clipped above it is the answer."""
    raw = np.sort(np.asarray(raw, np.float64))[::-1]  # largest first
    n = len(raw)
    if not n:
        return 1.0
    rest = np.cumsum(raw[::-1])[::-1]  # rest[m]: the sum of all but the m largest
    s = (mean * n - cap * np.arange(n)) / rest  # the scale each m asks for (all m at once: logs are long)
    fits = (s > 0) & (s * raw <= cap) & np.concatenate([[True], s[1:] * raw[:-1] >= cap])
    return float(s[np.argmax(fits)]) if fits.any() else float(cap / raw[-1])  # none: mean >= cap


def reactions_for(dataset: Dataset, source: str = "auto") -> Reactions:
    """The synthetic world's ground truth when the data set is synthetic, else the fitted click model."""
    if source not in ("auto", "synth", "fitted"):
        raise ConfigError(f"unknown reactions source {source!r}; use auto, synth or fitted")
    if source == "synth" or (source == "auto" and dataset.meta.get("config")):
        return SynthReactions(dataset)
    return FittedReactions(dataset)
