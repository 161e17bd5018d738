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

Every list is also read for its **creator spread**: the distinct creators among its items, and
whether one creator holds 5 or more of the 10 (a newcomer who chose a genre was shown one artist).
Catalogs without a creator column report no spread.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgerec.data.local_hours import dataset_zone
from edgerec.data.split import consumed_sequences
from edgerec.data.store import load_dataset
from edgerec.errors import ConfigError, UnknownIdError
from edgerec.runtime.policies import column_values
from edgerec.studies.base import Progress, Study, Table, replay_context
from edgerec.studies.devices import open_device

NEXT = 10  # the next items a first list is judged on
CROWDED = 5  # a list where one creator holds this many of the 10 shows one creator, not a choice
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
            columns = [column for column in ("genre", "language")
                       if column in rec.catalog.categorical and column_values(rec.catalog, column)]
            progress(f"a newcomer choosing each {' and '.join(columns)}" if columns else
                     "the catalog has no genres or languages to choose: newcomers choose nothing", {})
            lists = {column: _visibility(rec, column) for column in columns}
            visibility = {column: shown for column, (shown, _) in lists.items()}
            spread = {f"choosing one {column}": creator_spread(creators) for column, (_, creators) in lists.items()}
            firsts = self._first_lists(rec, progress, spread)
        return {"visibility": visibility, **firsts, "creator_spread": spread}

    def _first_lists(self, rec, progress: Progress, spread: dict) -> dict:
        dataset = load_dataset(self.data_dir)
        ids, genres = dataset.catalog.item_ids, dataset.catalog.column("genre")
        seq, _ = consumed_sequences(dataset.interactions, dataset.n_users)
        long_enough = np.flatnonzero(seq.lengths() >= 2 + NEXT)
        picked = np.sort(np.random.default_rng(self.seed).choice(
            long_enough, min(self.users, len(long_enough)), replace=False))
        progress(f"{len(picked)} users replayed as newcomers, {len(VARIANTS)} ways each" if len(picked) else
                 f"no user consumed {2 + NEXT} items or more: no newcomer's first list can be replayed", {})
        hits = {name: [] for name in VARIANTS}
        creators = {name: [] for name in VARIANTS}
        for user in picked:
            rows = seq.items[seq.indptr[user]:seq.indptr[user + 1]]
            items, times = [ids[r] for r in rows], seq.times[seq.indptr[user]:seq.indptr[user + 1]]
            choices = [g for g, _ in Counter(genres[r] for r in rows if genres[r]).most_common(2)]
            for name, variant in VARIANTS.items():
                listed, start = first_list(rec, f"{name}/{user}", items, times, choices, *variant,
                                           zone=dataset_zone(dataset))
                hits[name].append(len({r.item_id for r in listed} & set(items[start:start + NEXT])) / NEXT)
                creators[name].append([r.meta.get("creator") for r in listed])
        spread.update({f"replayed: {name}": creator_spread(lists) for name, lists in creators.items()})
        return {"users": len(picked), "next_items": NEXT,
                "first_lists": {name: float(np.mean(v)) if v else None for name, v in hits.items()}}

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        out = [Table(f"a newcomer choosing one {column}: its items among their top 10", [
            {"choices": len(shown), "shown (mean)": float(np.mean(list(shown.values()))),
             "choices with none shown": sum(v == 0 for v in shown.values())}])
            for column, shown in record["visibility"].items()]
        if record["users"]:
            out.append(Table(f"first lists of {record['users']} replayed users: share of their next "
                             f"{record['next_items']} items in the list", [
                                 {"newcomer": name, "precision@10": value}
                                 for name, value in record["first_lists"].items()]))
        else:  # every row would read n/a, without a word why
            out.append(Table("first lists of replayed users: none (the replay needs a user's first 2 items and "
                             f"the next {record['next_items']})", [
                                 {"users with that many items": 0, "items needed": 2 + record["next_items"]}]))
        spread = record.get("creator_spread", {})
        if any(value is not None for value in spread.values()):
            out.append(Table("creator spread of the top 10", [
                {"lists": name, "distinct creators (mean)": value["distinct_creators"],
                 f"share with one creator >= {CROWDED}": value["crowded_share"]}
                for name, value in spread.items() if value is not None]))
        return out


def creator_spread(lists: list[list]) -> dict | None:
    """Mean distinct creators per list and the share of lists where one creator holds CROWDED or more
    items (items without a creator count for none); None when no listed item has a creator."""
    named = [[c for c in creators if c] for creators in lists]
    if not any(named):
        return None
    most = [max(Counter(c).values(), default=0) for c in named]
    return {"lists": len(named), "distinct_creators": float(np.mean([len(set(c)) for c in named])),
            "crowded_share": float(np.mean([m >= CROWDED for m in most]))}


def first_list_precision(rec, profile: str, items: list[str], times, choices: list[str], plays: int, liked: int,
                         chosen: bool) -> float:
    """One user replayed as the newcomer `profile` (see first_list): the share of the next NEXT items
    that the list holds."""
    listed, start = first_list(rec, profile, items, times, choices, plays, liked, chosen)
    return len({r.item_id for r in listed} & set(items[start:start + NEXT])) / NEXT


def first_list(rec, profile: str, items: list[str], times, choices: list[str], plays: int, liked: int,
               chosen: bool, zone: str | None = None) -> tuple[list, int]:
    """One user replayed as the newcomer `profile`: their first `liked` items onboarded as "more like
    this" (with their genre `choices` when `chosen`), their first `plays` items played at their times;
    then the list asked for at the next item, and that item's position."""
    try:
        if chosen and choices or liked:
            rec.onboard(profile, genres=choices if chosen else [], items=items[:liked])
        for item, ts in zip(items[:plays], times[:plays]):
            rec.record(profile, item, "play", timestamp=float(ts))
    except (ConfigError, UnknownIdError) as error:
        raise ConfigError(f"the data does not match the bundle ({error}): pass the --data the bundle was "
                          "built on") from None
    start = max(plays, liked)
    return rec.recommend(profile, k=10, context=replay_context(times[start], zone)), start


def _visibility(rec, column: str) -> tuple[dict[str, int], list[list]]:
    """Each value of `column`: how many of a newcomer's top 10 carry it after choosing only it; and
    the creators of each of those lists."""
    shown, creators = {}, []
    for value in sorted(column_values(rec.catalog, column)):
        profile = f"chooses {column} {value}"
        rec.onboard(profile, **{f"{column}s": [value]})
        listed = rec.recommend(profile, k=10)
        shown[value] = sum(r.meta.get(column) == value for r in listed)
        creators.append([r.meta.get("creator") for r in listed])
    return shown, creators
