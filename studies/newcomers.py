"""The newcomer study: what a new user's first lists are worth, with and without onboarding choices.

Two parts, both through the device's own code (`Recommender.onboard`, `record`, `recommend`):

- **visibility**: for every genre and language of the catalog, a newcomer who chooses only that
  value at onboarding: how many of their top 10 carry it. A choice the list does not show is a
  broken promise, whatever the accuracy.
- **first lists**: sampled users of the log, each replayed as a newcomer in several ways (nothing
  chosen, their choices, their first two items as "more like this", one or two plays, and these
  with their choices); the share of their next 10 consumed items that the 10 listed items hold, at
  the moment of the first of them. A log does not say what a user would have chosen at
  onboarding: the study takes the two genres the user consumed most over the whole log (a stated
  taste stands in for a choice; it knows the user's later items, so read it as an upper bound of
  what genres can give, and compare variants, not absolute values).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.data.split import consumed_sequences
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError, UnknownIdError
from edgerec.runtime.policies import column_values
from edgerec.studies.base import Progress, Study, Table
from edgerec.studies.devices import open_device

NEXT = 10  # the next items a first list is judged on
# name: (plays recorded, first items onboarded as "more like this", genres chosen)
VARIANTS = {"popular": (0, 0, False), "choices": (0, 0, True), "2 items": (0, 2, False),
            "2 items + choices": (0, 2, True), "1 play": (1, 0, False), "1 play + choices": (1, 0, True),
            "2 plays": (2, 0, False), "2 plays + choices": (2, 0, True)}


@dataclass
class NewcomerStudy(Study):
    """Onboarding choices on the device: whether each shows in the list, and newcomers' first lists."""

    name = "newcomers"
    bundle: Path
    data_dir: Path
    users: int = 300
    seed: int = 0

    def measure(self, progress: Progress) -> dict:
        if isinstance(self.users, bool) or not isinstance(self.users, int) or self.users < 1:
            raise ConfigError(f"users must be a whole number >= 1 (got {self.users!r})")
        with open_device(self.bundle) as rec:
            progress("a newcomer choosing each genre and language", {})
            visibility = {column: _visibility(rec, column) for column in ("genre", "language")
                          if column in rec.catalog.categorical and column_values(rec.catalog, column)}
            firsts = self._first_lists(rec, progress)
        return {"visibility": visibility, **firsts}

    def _first_lists(self, rec, progress: Progress) -> dict:
        dataset = load_dataset(self.data_dir)
        ids, genres = dataset.catalog.item_ids, dataset.catalog.column("genre")
        seq, _ = consumed_sequences(dataset.interactions, dataset.n_users)
        long_enough = np.flatnonzero(seq.lengths() >= 2 + NEXT)
        picked = np.sort(np.random.default_rng(self.seed).choice(
            long_enough, min(self.users, len(long_enough)), replace=False))
        progress(f"{len(picked)} users replayed as newcomers, {len(VARIANTS)} ways each", {})
        hits = {name: [] for name in VARIANTS}
        for user in picked:
            rows = seq.items[seq.indptr[user]:seq.indptr[user + 1]]
            items, times = [ids[r] for r in rows], seq.times[seq.indptr[user]:seq.indptr[user + 1]]
            choices = [g for g, _ in Counter(genres[r] for r in rows if genres[r]).most_common(2)]
            for name, variant in VARIANTS.items():
                hits[name].append(first_list_precision(rec, f"{name}/{user}", items, times, choices, *variant))
        return {"users": len(picked), "next_items": NEXT,
                "first_lists": {name: float(np.mean(v)) if v else None for name, v in hits.items()}}

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        out = [Table(f"a newcomer choosing one {column}: its items among their top 10", [
            {"choices": len(shown), "shown (mean)": float(np.mean(list(shown.values()))),
             "choices with none shown": sum(v == 0 for v in shown.values())}])
            for column, shown in record["visibility"].items()]
        out.append(Table(f"first lists of {record['users']} replayed users: share of their next "
                         f"{record['next_items']} items in the list", [
                             {"newcomer": name, "precision@10": value}
                             for name, value in record["first_lists"].items()]))
        return out


def first_list_precision(rec, profile: str, items: list[str], times, choices: list[str], plays: int, liked: int,
                         chosen: bool) -> float:
    """One user replayed as the newcomer `profile`: their first `liked` items onboarded as "more like
    this" (with their genre `choices` when `chosen`), their first `plays` items played at their times;
    then the share of the next NEXT items that the list asked for at the first of them holds."""
    try:
        if chosen and choices or liked:
            rec.onboard(profile, genres=choices if chosen else [], items=items[:liked])
        for item, ts in zip(items[:plays], times[:plays]):
            rec.record(profile, item, "play", timestamp=float(ts))
    except (ConfigError, UnknownIdError) as error:
        raise ConfigError(f"the data does not match the bundle ({error}): pass the --data the bundle was "
                          "built on") from None
    start = max(plays, liked)
    listed = rec.recommend(profile, k=10, context={"now": float(times[start])})
    return len({r.item_id for r in listed} & set(items[start:start + NEXT])) / NEXT


def _visibility(rec, column: str) -> dict[str, int]:
    """Each value of `column`: how many of a newcomer's top 10 carry it after choosing only it."""
    shown = {}
    for value in sorted(column_values(rec.catalog, column)):
        profile = f"chooses {column} {value}"
        rec.onboard(profile, **{f"{column}s": [value]})
        shown[value] = sum(r.meta.get(column) == value for r in rec.recommend(profile, k=10))
    return shown
