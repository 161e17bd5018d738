"""`edgerec domains split | space | bridge | recommend`: cross-domain data, shared spaces, transfer of interest."""

from __future__ import annotations

from pathlib import Path

import click

from edgerec.cli.device_cmd import refuse_missing_history
from edgerec.cli.output import FILE_OUT, FiniteRange, console, example, table, write_json

DIR = click.Path(exists=True, file_okay=False, path_type=Path)
OUT_DIR = click.Path(file_okay=False, path_type=Path)


@click.group("domains", epilog=example(
    "edgerec domains split data/world --out data/domains",
    "edgerec domains space bundle-video --data data/world --id media-v1 --out bundle-video-space",
    "edgerec domains bridge bundle-audio-space bundle-video-space --data data/world --out bundle-video-bridged",
    "edgerec domains recommend bundle-audio-space bundle-video-bridged --user u0042 --history audio.db"))
def domains_group() -> None:
    """Cross-domain recommendation: split data by domain, declare a shared space, transfer interest."""


@domains_group.command("split", epilog=example("edgerec domains split data/world --by modality --out data/domains"))
@click.argument("data_dir", type=DIR)
@click.option("--by", default="modality", show_default=True,
              help="'modality' (video: film, series, short video; audio: music, podcasts) or an item column.")
@click.option("--out", required=True, type=OUT_DIR, help="One data folder per domain is written under it.")
@click.option("--skip-empty", is_flag=True,
              help="Leave out the items with no value to split by (a film with no genre listed) and their "
                   "events, instead of refusing; the summary says how many.")
def split(data_dir, by, out, skip_empty) -> None:
    """Write one data folder per domain (same user ids in each, so users of both apps are known)."""
    import numpy as np

    from edgerec.data.domains import (
        SHOWN,
        folder_names,
        item_domains,
        save_split,
        split_domains,
        users_with_history,
    )
    from edgerec.data.store import load_dataset, refuse_foreign_folder

    source, target = data_dir.resolve(), out.expanduser().resolve()
    if target == source or source in target.parents:  # the next load of DATA_DIR read or refused the extra folders
        raise click.UsageError("--out is the data folder being split, or inside it; choose an --out outside it")
    dataset = load_dataset(data_dir)
    parts = split_domains(dataset, by, allow_empty=skip_empty)
    left_out = np.flatnonzero(item_domains(dataset, by, allow_empty=True) == "") if skip_empty else []
    folders = folder_names(list(parts))  # a value is no path: '../x' stays under --out
    if any((target / f).resolve() == source for f in folders.values()):  # `split data/video --out data`
        raise click.UsageError(f"--out would write a domain's folder over the data folder being split "
                               f"({data_dir.name}); choose another --out")
    for name in parts:  # before any is written: the user's own files in one of them would be replaced
        refuse_foreign_folder(out / folders[name])
    stale = save_split(parts, out, folders)  # all folders as one split: never some new beside an earlier split's
    rows = []
    for name, part in parts.items():
        rows.append({"domain": name, "items": part.n_items, "events": len(part.interactions),
                     "users with history": len(users_with_history(part)), "folder": str(out / folders[name])})
    table(rows, title=f"domains by {by}")
    if stale:  # an earlier split's domains this data no longer has: they would load beside the new split
        console.print(f"marked unfinished (they no longer load): {len(stale)} folder(s) of an earlier split in "
                      f"--out that this data has no domain for: {', '.join(stale[:SHOWN])}"
                      f"{', ...' if len(stale) > SHOWN else ''}; delete them", style="yellow")
    if skip_empty:
        events = int(np.isin(dataset.interactions.item, left_out).sum())
        ids = [dataset.catalog.item_ids[c] for c in left_out[:SHOWN]]
        named = f" (items {', '.join(ids)}{', ...' if len(left_out) > SHOWN else ''})" if len(left_out) else ""
        console.print(f"left out: {len(left_out):,} of {dataset.n_items:,} items with an empty {by!r}{named} "
                      f"and their {events:,} events")


@domains_group.command("space", epilog=example(
    "edgerec domains space bundle-video --data data/world --id media-v1 --encoder use-multilingual "
    "--out bundle-video-space"))
@click.argument("bundle", type=DIR)
@click.option("--data", "data_dir", required=True, type=DIR, help="The data the bundle's items come from.")
@click.option("--id", "space_id", required=True, help="Name of the shared space (the same in every bundle).")
@click.option("--by", default="modality", show_default=True)
@click.option("--encoder", "encoder_dir",
              help="The anchor: 'use-multilingual' (packaged, 16 languages) or a sentence-encoder folder; "
                   "default: hashed words.")
@click.option("--out", required=True, type=OUT_DIR)
def space(bundle, data_dir, space_id, by, encoder_dir, out) -> None:
    """Copy a bundle with a shared-space section: its domains and its items' vectors in the content space."""
    from edgerec.data.domains import item_domains, refuse_empty
    from edgerec.data.store import load_dataset
    from edgerec.export.space import content_anchor, declare_space
    from edgerec.runtime.bundle import Bundle
    from edgerec.runtime.catalog import ItemCatalog

    dataset = load_dataset(data_dir)
    catalog = ItemCatalog(Bundle.open(bundle))
    index = dataset.catalog.index
    ids = [catalog.item_id(r) for r in range(catalog.base_count)]
    missing = [i for i in ids if i not in index]
    if missing:
        raise click.UsageError(f"{len(missing)} bundle items (e.g. {missing[0]}) are not in {data_dir}")
    codes = [index[i] for i in ids]
    vectors, anchor = content_anchor(dataset.catalog.subset(codes), encoder_dir)
    # only the bundle's items need a domain: one built on a `split --skip-empty` part holds none of the others
    of_bundle = item_domains(dataset, by, allow_empty=True)[codes]
    refuse_empty(ids, of_bundle, by)
    domains = sorted(set(of_bundle.tolist()))
    opened = declare_space(bundle, out, space_id=space_id, domains=domains, anchor=anchor, content=vectors)
    console.print(f"{out}: space {space_id} ({anchor}), domains {', '.join(domains)}, "
                  f"{opened.size_bytes():,} bytes")


@domains_group.command("bridge", epilog=example(
    "edgerec domains bridge bundle-audio-space bundle-video-space --data data/world --out bundle-video-bridged"))
@click.argument("source", type=DIR)
@click.argument("target", type=DIR)
@click.option("--data", "data_dir", required=True, type=DIR, help="Events of both domains (users in both).")
@click.option("--by", default="modality", show_default=True)
@click.option("--ridge", default=1.0, show_default=True, type=FiniteRange(min=0, min_open=True))
@click.option("--method", "methods", type=click.Choice(["mapping", "direct"]), multiple=True,
              default=("mapping", "direct"), show_default=True,
              help="mapping: fit to TARGET's pooled user vectors; direct: fit to its item scores, with a "
                   "per-item prior (repeatable: the copy carries one bridge per method).")
@click.option("--input", "source_input", type=click.Choice(["items", "items+content"]), default="items",
              show_default=True,
              help="What the bridges map: SOURCE's pooled item vectors, or those followed by its pooled "
                   "space.content vectors (content can carry taste SOURCE's item space does not line up).")
@click.option("--out", required=True, type=OUT_DIR)
def bridge(source, target, data_dir, by, ridge, methods, source_input, out) -> None:
    """Fit linear maps from SOURCE's pooled user vectors into TARGET's item space (one per --method),
    and ship them in a copy of TARGET."""
    import numpy as np

    from edgerec.export.space import declare_space, fit_bundle_bridge
    from edgerec.runtime.bundle import Bundle
    from edgerec.runtime.space import SharedSpace, check_shared

    src, tgt = Bundle.open(source), Bundle.open(target)
    check_shared(src.manifest, tgt.manifest)
    space_of = SharedSpace.of(tgt)
    source_domain = src.manifest.space["domains"][0]
    # a bundle of several domains (one bridged to itself) is bridged into its next domain, not into the source's
    target_domain = next((d for d in space_of.domains if d != source_domain), space_of.domains[0])
    fitted = [fit_bundle_bridge(src, tgt, data_dir, by=by, source_domain=source_domain,
                                target_domain=target_domain, ridge=ridge, method=method,
                                source_input=source_input)
              for method in dict.fromkeys(methods)]
    content = None if space_of.content is None else np.asarray(space_of.content)
    declare_space(target, out, space_id=space_of.id, domains=space_of.domains, anchor=space_of.anchor,
                  content=content, bridges=fitted)
    console.print(f"{out}: {' and '.join(dict.fromkeys(methods))} bridge {source_domain} -> {target_domain} "
                  f"fit on {fitted[0].bridge.users} users of both")


@domains_group.command("recommend", epilog=example(
    "edgerec domains recommend bundle-audio-space bundle-video-bridged --user u0042 --history audio.db"))
@click.argument("source", type=click.Path(exists=True))
@click.argument("target", type=click.Path(exists=True))
@click.option("--user", required=True)
@click.option("--history", "history_path", type=click.Path(dir_okay=False),
              help="The source app's on-device history (its events are the user's source-domain history).")
@click.option("--item", "items", multiple=True, help="Source items to use as the history instead (repeatable).")
@click.option("--method", type=click.Choice(["mapping", "direct", "content"]), default="mapping", show_default=True)
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 10_000))  # the runtime's limit
@click.option("--json", "json_out", type=FILE_OUT)
def recommend(source, target, user, history_path, items, method, k, json_out) -> None:
    """Target-domain items for a user whose history lies in the source bundle's domain."""
    from edgerec.runtime import Recommender
    from edgerec.runtime.transfer import Transfer

    if items and history_path:  # the items were recorded as finishes into the real history file
        raise click.UsageError("--item stands for the history: give --item or --history, not both")
    if history_path:  # it only reads the history: a typo made an empty one and served a newcomer's list
        refuse_missing_history(history_path)
    with Recommender.open(source, history=None if items else history_path) as src, Recommender.open(target) as tgt:
        for item in items:  # in memory only: nothing is written
            src.record(user, item, "finish")
        results = Transfer(src, tgt, method).recommend(user, k)
    table([{"#": i + 1, "item": r.item_id, "title": r.title, "score": round(r.score, 4), "why": r.reason.text}
           for i, r in enumerate(results)], title=f"{method} transfer for {user}")
    write_json(json_out, [r.to_dict() for r in results])


def register(cli: click.Group) -> None:
    cli.add_command(domains_group)
