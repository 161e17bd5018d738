"""Domains of a data set: which items belong to which app (by modality group or an explicit column),
and the data set cut into one data set per domain with the user ids kept, so overlaps are known.
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import numpy as np

from edgerec.data.schema import Dataset, Interactions
from edgerec.data.vocab import DOMAIN_OF_MODALITY
from edgerec.errors import ConfigError, DataError
from edgerec.runtime.atomic import Temporary, claim, sync_folder, write_file

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


SPLIT_LOCK = ".edgerec-splitting"  # held in --out while a split into an existing folder publishes
SPLIT_FOLDERS = "split_folders"  # in each domain folder's dataset.json: the folders of the split that wrote it


def save_split(parts: dict[str, Dataset], out: str | Path, folders: dict[str, str]) -> list[str]:
    """Write each domain's data set to `out`/its folder, as one split: every folder is written under a hidden
    staging folder first, so a split stopped while writing leaves the earlier folders as they were. A new `out`
    then appears whole in one rename. An existing `out` (empty or not: the current folder, a symlink's folder, a
    mount point) is written into, never replaced: all earlier folders are first marked unfinished (their loads
    refuse them), then each gets its new files, its dataset.json last: a split stopped among the moves leaves
    some folders new and the others refused, never folders of two data sets that each load. The folders of an
    earlier split there that this one does not write (a domain no longer in the data) are marked unfinished too,
    and returned (their names), for the caller to say; each domain folder's dataset.json records the split's
    folders (SPLIT_FOLDERS: no file of its own in `out`, whose entries stay the domain folders)."""
    given = Path(out).expanduser()
    try:  # resolved: "." has no name to stage beside, and a symlink's folder is written into, not the link
        return _save_split(parts, given.resolve(), folders)
    except OSError as exc:  # no room, no permission, a file where a folder goes
        raise DataError(f"cannot write the domain folders ({exc.strerror or type(exc).__name__}); choose an --out "
                        "this app can write, with room for them", str(given)) from None


def _recorded(part: Dataset, folders: dict[str, str]) -> Dataset:
    """`part` with the split's folder list in its metadata (written to its dataset.json)."""
    import copy

    recorded = copy.copy(part)
    recorded.meta = {**part.meta, SPLIT_FOLDERS: sorted(folders.values())}
    return recorded


def _save_split(parts: dict[str, Dataset], out: Path, folders: dict[str, str]) -> list[str]:
    from edgerec.data.store import save_dataset

    if not out.exists():
        with Temporary(out, ".tmp", folder=True) as staging:
            for name, part in parts.items():
                save_dataset(_recorded(part, folders), staging.path / folders[name])
            if not staging.publish():
                raise _not_published(staging.error, out)
        return []
    held = claim(out, SPLIT_LOCK)
    if held is None:
        raise ConfigError("another edgerec domains split is writing into --out right now; wait for it to finish, "
                          "or choose another --out")
    try:
        for folder in folders.values():
            if (out / folder).exists() and not (out / folder).is_dir():
                raise DataError("a file has the name of this domain's folder; move it away, or choose another "
                                "--out", str(out / folder))
        stale = [f for f in earlier_split(out) if f not in folders.values()]
        with Temporary(out / "domains-split", ".tmp", folder=True) as staging:
            for name, part in parts.items():
                save_dataset(_recorded(part, folders), staging.path / folders[name])
            _publish(staging.path, out, list(folders.values()), stale)
            staging.discard()
    finally:
        held.release()
    return stale


def _not_published(error: OSError | None, out: Path) -> Exception:
    """Why a new --out could not be published, by its real cause: filled by another writer meanwhile, or not."""
    if error is not None and error.errno in (errno.ENOTEMPTY, errno.EEXIST):
        return ConfigError("another program (a second edgerec domains split?) wrote into --out meanwhile; run the "
                           "split again once it has finished, or choose another --out")
    cause = (error.strerror or type(error).__name__) if error is not None else "unknown cause"
    return DataError(f"cannot put the domain folders in place as --out ({cause}); choose an --out this app can "
                     "write", str(out))


def earlier_split(out: Path) -> list[str]:
    """The folders in `out` of an earlier split: any whose dataset.json records a domain, and those the domain
    folders' SPLIT_FOLDERS name (a folder of theirs whose data set is another's now, by hand)."""
    found = set()
    for folder in out.iterdir():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            meta = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and "domain_by" in meta:
            found.add(folder.name)
            listed = meta.get(SPLIT_FOLDERS)
            if isinstance(listed, list):
                found.update(f for f in listed if isinstance(f, str) and f and "/" not in f and not f.startswith("."))
    return sorted(f for f in found if (out / f).is_dir() and any((out / f).iterdir()))


def _publish(staging: Path, out: Path, folders: list[str], stale: list[str] = ()) -> None:
    """Move the staged domain folders into `out` over the earlier ones, marking `stale` (an earlier split's
    folders this one does not write) unfinished (see save_split)."""
    from edgerec.data.store import FORMAT_VERSION, INCOMPLETE

    earlier = [f for f in folders if (out / f).is_dir() and any((out / f).iterdir())]
    claims = []
    try:
        for folder in [*earlier, *stale]:  # all held before any is marked: a refused split marks none
            held = claim(out / folder)
            if held is None:
                raise DataError("another import or synth is writing into this domain's folder right now; wait "
                                "for it to finish, or choose another --out", str(out / folder))
            claims.append(held)
        for folder in [*earlier, *stale]:
            write_file(out / folder / "dataset.json",
                       json.dumps({"format_version": FORMAT_VERSION, INCOMPLETE: True}, indent=2, sort_keys=True))
        for folder in folders:
            new, target = staging / folder, out / folder
            if folder not in earlier:
                if target.is_dir():
                    target.rmdir()  # an empty folder
                os.replace(new, target)
                continue
            names = sorted(p.name for p in new.iterdir() if not p.name.startswith(".") and p.name != "dataset.json")
            for name in [*names, "dataset.json"]:  # dataset.json last: until then the folder is refused
                os.replace(new / name, target / name)
            sync_folder(target)
        sync_folder(out)
    except OSError as exc:  # a full disk, no permission, a folder filled meanwhile
        raise DataError(f"cannot move the new domain folders into --out ({exc.strerror or type(exc).__name__}); "
                        "run the split again", str(out)) from None
    finally:
        for held in claims:
            held.release()
