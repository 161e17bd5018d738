"""Domains of a data set: which items belong to which app (by modality group or an explicit column),
and the data set cut into one data set per domain with the user ids kept, so overlaps are known.
"""

from __future__ import annotations

import re

import numpy as np

from edgerec.data.schema import Dataset, Interactions
from edgerec.data.vocab import DOMAIN_OF_MODALITY
from edgerec.errors import DataError

BY_MODALITY = "modality"


def item_domains(dataset: Dataset, by: str = BY_MODALITY, allow_empty: bool = False) -> np.ndarray:
    """One domain name per item: the modality's group (video, audio) or the value of column `by`;
    with `allow_empty`, items with an empty value get "" (no domain) instead of an error."""
    catalog = dataset.catalog
    if by not in catalog.text:
        raise DataError(f"no item column {by!r} to split domains by; use 'modality' or one of "
                        f"{', '.join(sorted(catalog.text))}")
    values = catalog.text[by]
    if by == BY_MODALITY:
        unknown = sorted({v for v in values if v not in DOMAIN_OF_MODALITY})
        if unknown:
            raise DataError(f"modalities {unknown[:5]} have no domain; name a column with --by instead")
        values = [DOMAIN_OF_MODALITY[v] for v in values]
    out = np.array(values, dtype=object)
    if not allow_empty:
        refuse_empty(catalog.item_ids, out, by)
    return out


SHOWN = 5  # item ids a message names


def without_domain(item_ids, domains: np.ndarray) -> list[str]:
    """Ids of the items whose domain is empty (no value in the column split by)."""
    return [item_ids[i] for i in np.flatnonzero(domains == "")]


def refuse_empty(item_ids, domains: np.ndarray, by: str) -> None:
    """A DataError naming how many items have no domain and the first few of them, if any has none."""
    empty = without_domain(item_ids, domains)
    if empty:
        more = ", ..." if len(empty) > SHOWN else ""
        raise DataError(f"{len(empty):,} of {len(domains):,} items have an empty {by!r} (items "
                        f"{', '.join(empty[:SHOWN])}{more}), and every item needs a domain: give them a value in "
                        "the items table, or leave them out of every domain (`edgerec domains split --skip-empty`; "
                        "split_domains(..., allow_empty=True))")


def split_domains(dataset: Dataset, by: str = BY_MODALITY, allow_empty: bool = False) -> dict[str, Dataset]:
    """One data set per domain: that domain's items (codes renumbered) and the events on them.

    Every domain keeps the full user list in the same order, so user code u is the same person in
    every domain (users without events there simply have none). With `allow_empty`, items with an
    empty `by` (a film with no genre listed) belong to no domain and are left out."""
    domains = item_domains(dataset, by, allow_empty)
    names = sorted(set(domains.tolist()) - {""})
    if not names:
        raise DataError(f"no item has a {by!r}; name another column")
    if len(names) < 2:
        raise DataError(f"the data has only one domain ({names[0]!r}) by {by!r}; nothing to split")
    log = dataset.interactions
    out = {}
    for name in names:
        codes = np.flatnonzero(domains == name)
        new_code = np.full(dataset.n_items, -1, np.int64)
        new_code[codes] = np.arange(len(codes))
        keep = np.flatnonzero(new_code[log.item] >= 0)
        part = log.take(keep)
        events = Interactions(part.user, new_code[part.item].astype(np.int32), part.timestamp, part.event,
                              part.value, part.device)
        meta = {**dataset.meta, "domain": name, "domain_by": by}
        out[name] = Dataset(dataset.catalog.subset(codes), events, list(dataset.user_ids), meta=meta)
    return out


def folder_names(names: list[str]) -> dict[str, str]:
    """A folder for each domain value: letters, digits, '.', '_' and '-' kept, anything else (a '/' of
    'sci/fi', or '../../x', which left --out) made '_', no leading dot, each distinct (a suffix when two meet)."""
    out: dict[str, str] = {}
    for name in names:
        safe = (re.sub(r"[^\w.-]", "_", name, flags=re.ASCII).lstrip(".") or "_")[:100]  # 300 bytes: too long
        base, n = safe, 1
        while safe.lower() in {v.lower() for v in out.values()}:  # case-insensitive file systems too
            n += 1
            safe = f"{base}-{n}"
        out[name] = safe
    return out


def users_with_history(dataset: Dataset, min_items: int = 1) -> np.ndarray:
    """Codes of users with at least `min_items` consumed items in this data set."""
    log = dataset.interactions
    consumed = log.consumed_mask()
    pairs = np.unique(log.user[consumed].astype(np.int64) * dataset.n_items + log.item[consumed])
    counts = np.bincount(pairs // dataset.n_items, minlength=dataset.n_users)
    return np.flatnonzero(counts >= min_items)
