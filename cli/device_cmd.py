"""Acting as a device: `edgerec recommend`, `record`, `onboard`, `add-items`, `remove-items`,
`history show|export|forget|backup|recover|keygen|encrypt`.

These use only the runtime, so they work where only `pip install edgerec` is installed.
"""

from __future__ import annotations

import contextlib
import functools
import os
from datetime import datetime, timezone

import click

from edgerec.cli.output import (
    FILE_OUT,
    VocabularyChoice,
    console,
    example,
    read_json,
    table,
    write_json,
)

_HISTORY = click.option("--history", "history_path", default="history.db", show_default=True,
                        type=click.Path(dir_okay=False), help="The on-device history database.")
_KEY_FILE = click.option("--key-file", type=click.Path(dir_okay=False),
                         help="Key of an encrypted history (32 bytes or 64 hex characters); without it, "
                              "$EDGEREC_HISTORY_KEY (hex) when set, else the history is plain.")
_PROFILE_KEY = click.option("--profile-key-file", type=click.Path(dir_okay=False),
                            help="Per-device secret: user names are stored only as keyed hashes.")


def HISTORY(command):
    """--history with its key options; the command receives `history_path` and `access` (keyword args)."""
    def wrap(*args, key_file=None, profile_key_file=None, **kwargs):
        kwargs["access"] = history_access(key_file, profile_key_file)
        refuse_output_over_history(kwargs)
        with removed_if_failed(kwargs["history_path"]):
            return command(*args, **kwargs)

    wrap = functools.update_wrapper(wrap, command)
    return _HISTORY(_KEY_FILE(_PROFILE_KEY(wrap)))


@contextlib.contextmanager
def removed_if_failed(history_path: str):
    """A history this call created is removed when the call fails: `recommend --history typo.db --k 0` or
    `record --item nope` left an empty database behind, which the next call took for the real one."""
    from pathlib import Path

    path = Path(history_path)
    new = not os.path.lexists(path)
    try:
        yield
    except Exception:
        if new:  # the database and the side files SQLite makes beside it
            for name in (path, *(path.with_name(path.name + side) for side in ("-wal", "-shm", "-journal"))):
                with contextlib.suppress(OSError):
                    name.unlink()
        raise


OUTPUTS = {"json_out": "--json", "out": "--out"}  # the output options of the commands that take --history


def refuse_output_over_history(kwargs: dict) -> None:
    """An output file that is the history database (or one of its side files) would replace it with JSON:
    every user's events, the privacy ledger and the added items gone, and the command would say "wrote"."""
    from pathlib import Path

    history = Path(kwargs["history_path"]).expanduser().resolve()
    own = {history, *(history.with_name(history.name + side) for side in ("-wal", "-shm", "-journal"))}
    for name, flag in OUTPUTS.items():
        target = kwargs.get(name)
        if target and Path(target).expanduser().resolve() in own:
            raise click.UsageError(f"{flag} names the history database (or its side file) {Path(target).name}; "
                                   "writing there would destroy the history: choose another file")


def history_access(key_file: str | None, profile_key_file: str | None) -> dict:
    """The key and profile secret for open_history / Recommender.open, from files or the environment."""
    import os

    from edgerec.runtime.keys import KEY_ENV, EnvKey, FileKey

    key = FileKey(key_file) if key_file else (EnvKey() if os.environ.get(KEY_ENV) else None)
    return {"key": key, "profile_secret": FileKey(profile_key_file) if profile_key_file else None}


def open_store(history_path: str, access: dict):
    from edgerec.runtime.pseudonyms import open_history

    return open_history(history_path, **access)


def refuse_missing_history(path: str) -> None:
    """Commands that only read or delete a history never create one by mistake."""
    from pathlib import Path

    from edgerec.errors import HistoryError
    from edgerec.runtime.checks import file_name

    if not Path(path).is_file():  # the name only: a full path can name the user
        raise HistoryError(f"no history database {file_name(path)!r}; pass the right file with --history")


def existing_store(path: str, access: dict):
    """The history at `path`, which must exist (refuse_missing_history)."""
    refuse_missing_history(path)
    return open_store(path, access)


@click.command("recommend", epilog=example(
    "edgerec recommend bundle --user alice --history alice.db --device tv --k 10"))
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--user", required=True)
@click.option("--k", default=10, show_default=True, type=click.IntRange(1, 10_000))  # the runtime's limit
@HISTORY
@click.option("--backend", type=click.Choice(["auto", "onnx", "tflite"]), default="auto", show_default=True)
@click.option("--device", type=VocabularyChoice("DEVICES"), help="Context: the device type.")
@click.option("--language", "languages", multiple=True, help="Only items in these languages.")
@click.option("--kids-safe", is_flag=True)
@click.option("--diversity", type=float, help="0 (relevance only) to 1 (novelty only); checked by Policy.")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False),
              help="Policy settings as JSON, e.g. the policy.json of `edgerec tune --target policy`.")
@click.option("--fallback", type=click.Path(exists=True),
              help="The bundle served so far: BUNDLE is an update, served only if it verifies and reproduces "
                   "its reference outputs here; otherwise this one keeps serving.")
@click.option("--json", "json_out", type=FILE_OUT)
def recommend(bundle, user, k, history_path, backend, device, languages, kids_safe, diversity, policy_file,
              fallback, json_out, access) -> None:
    """The user's top-k items right now, with the reason for each.

    Example: edgerec recommend new-bundle/ --user alice --fallback bundle/
    """
    from edgerec.runtime import Filters, Policy, Recommender

    with Recommender.open(bundle, history=history_path, backend=backend, fallback=fallback, **access) as rec:
        if rec.update is not None and not rec.update.accepted:
            console.print(f"update {rec.update.rejected} rejected: {rec.update.reason}; still serving "
                          f"{rec.update.serving}", style="yellow")
        weights = read_json(policy_file, "--policy") if policy_file else {}
        if diversity is not None:
            weights = {**weights, "diversity": diversity}
        policy = Policy.from_dict(weights) if weights else None
        results = rec.recommend(user, k=k, context={"device": device} if device else None,
                                filters=Filters(languages=list(languages) or None, kids_safe=kids_safe),
                                policy=policy)
        stats = rec.stats()
        newcomer = rec.history.count(user) == 0
    table([{"#": i + 1, "item": r.item_id, "title": r.title, "score": r.score, "why": r.reason.text}
           for i, r in enumerate(results)], title=f"for {user}")  # table() prints text as text, not markup
    if newcomer:  # a mistyped --history made a new, empty file: said, not served silently as a newcomer
        from edgerec.runtime.checks import file_name

        console.print(f"no events of this user in {file_name(history_path)!r}: a newcomer's list; record "
                      "events with `edgerec record`, or pass the history that holds them with --history", style="yellow")
    console.print(f"{stats['stages']['total']['p50_ms']:.1f} ms, backend {stats['backend']}", style="dim")
    write_json(json_out, [r.to_dict() for r in results])


@click.command("record", epilog=example(
    "edgerec record bundle --user alice --item i00042 --event finish --history alice.db"))
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--user", required=True)
@click.option("--item", required=True)
@click.option("--event", type=VocabularyChoice("DEVICE_EVENTS"),
              default="play", show_default=True)
@click.option("--value", type=float, help="e.g. the share watched.")
@HISTORY
def record(bundle, user, item, event, value, history_path, access) -> None:
    """Store one event in the on-device history."""
    from edgerec.runtime import Recommender

    with Recommender.open(bundle, history=history_path, **access) as rec:
        event_id = rec.record(user, item, event, value)
    console.print(f"recorded {event} of {item} for {user} (event {event_id})")


@click.group("history", epilog=example("edgerec history show alice --history alice.db"))
def history_group() -> None:
    """Inspect, export or forget what the device stores about a user."""


@history_group.command("show", epilog=example("edgerec history show alice --history alice.db --last 50"))
@click.argument("user")
@HISTORY
@click.option("--last", default=20, show_default=True, type=click.IntRange(min=0))
def show(user, history_path, last, access) -> None:
    """USER's newest events, as the device stores them."""
    from edgerec.runtime.pseudonyms import stored_count

    store = existing_store(history_path, access)
    events = store.events(user, limit=last)
    kept, stored = store.count(user), stored_count(store, user)
    table([{"id": e.id, "item": e.item, "event": e.event, "value": e.value if e.value is not None else "",
            "time (UTC)": _when(e.ts)} for e in events], title=f"{user}: {kept} events (last {last})")
    if stored > kept:  # said, not hidden: the next prune (an app's 100th record, an export) erases them
        console.print(f"{stored} events of this user are stored, {stored - kept} of them past what this "
                      f"history's retention keeps ({_kept(store.retention)}): not shown, and erased at the "
                      "next prune (an app's, `history export`); to keep them, open the history once with a "
                      "retention that does (Recommender.open(..., retention=...)): the file keeps it",
                      style="yellow")


def _kept(retention) -> str:
    days = "any age" if retention.max_age_days == float("inf") else f"the last {retention.max_age_days:g} days"
    return f"{days}, at most {retention.max_events:,} events per user"


def _when(ts: float) -> str:
    """An event's time as a date, or the raw seconds where the calendar cannot show it."""
    try:
        return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return f"{ts:g} s"


@history_group.command("export", epilog=example(
    "edgerec history export alice --history alice.db --out alice.json"))
@click.argument("user")
@HISTORY
@click.option("--out", required=True, type=click.Path(dir_okay=False))
def export_cmd(user, history_path, out, access) -> None:
    """Everything stored about USER, as JSON (the user's right to their data)."""
    write_json(out, existing_store(history_path, access).export(user), private=True)


@history_group.command("forget", epilog=example("edgerec history forget alice --history alice.db --yes"))
@click.argument("user")
@HISTORY
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def forget(user, history_path, yes, access) -> None:
    """Delete USER's events and preferences; nothing readable is left in the database files
    (an error says so when another reader keeps the bytes, see docs/runtime.md)."""
    store = existing_store(history_path, access)
    if not yes:
        click.confirm(f"Forget everything about {user}?", abort=True)
    removed = store.forget(user)
    console.print(f"forgot {user}: {removed} events removed and erased")


@history_group.command("backup", epilog=example("edgerec history backup --history alice.db --out alice-copy.db"))
@HISTORY
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="A new file for the copy.")
def backup_cmd(history_path, out, access) -> None:
    """A consistent copy of the history, safe while the app is running (SQLite's backup API)."""
    copy = existing_store(history_path, access).backup(out)
    console.print(f"backed up {history_path} to {copy}")


@history_group.command("recover", epilog=example("edgerec history recover --history broken.db --out fresh.db"))
@HISTORY
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="A new file for what is readable.")
def recover_cmd(history_path, out, access) -> None:
    """Copy every readable event of a damaged history into a new file."""
    from edgerec.runtime.history import HistoryStore
    from edgerec.runtime.keys import resolve_key

    report = HistoryStore.recover(history_path, out, resolve_key(access["key"]))
    ledger = f", {report['privacy_ledger']} privacy-ledger entries" if "privacy_ledger" in report else ""
    console.print(f"recovered {report['events']} events, {report['preferences']} preferences and "
                  f"{report['added_items']} added items{ledger} into {out} ({report['unreadable']} "
                  "unreadable reads)")


@history_group.command("keygen", epilog=example("edgerec history keygen --out history.key"))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The new key file (never overwritten).")
def keygen(out) -> None:
    """Write a new random 32-byte key, readable by its owner only (for --key-file / --profile-key-file)."""
    from edgerec.runtime.keys import FileKey

    FileKey.create(out)
    console.print(f"wrote a new key to {out}; keep it safe: without it an encrypted history cannot be "
                  "read")


@history_group.command("encrypt", epilog=example("edgerec history encrypt --history alice.db --key-file h.key"))
@_HISTORY
@_KEY_FILE
def encrypt(history_path, key_file) -> None:
    """Encrypt an existing plain history in place (SQLCipher); the plain file is overwritten and removed."""
    from edgerec.runtime.keys import resolve_key
    from edgerec.runtime.secure_db import encrypt_database

    key = history_access(key_file, None)["key"]
    if key is None:
        raise click.UsageError("give the key with --key-file or $EDGEREC_HISTORY_KEY")
    pages = encrypt_database(history_path, resolve_key(key))
    console.print(f"encrypted {history_path} ({pages} pages)")


@click.command("onboard", epilog=example(
    "edgerec onboard bundle --user newbie --genre comedy --tag heist --language en --history newbie.db",
    "edgerec onboard bundle --user newbie --item i00042 --item i00077"))
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--user", required=True)
@click.option("--genre", "genres", multiple=True, help="A genre the user picked (repeatable).")
@click.option("--tag", "tags", multiple=True, help="A tag the user picked, e.g. heist (repeatable).")
@click.option("--language", "languages", multiple=True, help="A language the user reads or listens to.")
@click.option("--item", "items", multiple=True, help="An item the user wants more like (repeatable).")
@HISTORY
def onboard(bundle, user, genres, tags, languages, items, history_path, access) -> None:
    """A new user's first choices: they steer the list until real history exists."""
    from edgerec.runtime import Recommender

    with Recommender.open(bundle, history=history_path, **access) as rec:
        rec.onboard(user, genres=list(genres), tags=list(tags), languages=list(languages), items=list(items))
    # distinct values, as stored (a genre given twice is one choice)
    console.print(f"onboarded {user}: {len(set(genres))} genres, {len(set(tags))} tags, "
                  f"{len(set(languages))} languages, {len(items)} items")


@click.command("add-items", epilog=example(
    "edgerec add-items bundle --items new.json --history device.db",
    "edgerec add-items bundle --items - --history device.db"))
@click.argument("bundle", type=click.Path(exists=True))
@click.option("--items", "items_file", required=True, type=click.File("rb"),
              help="A JSON list of items (item_id, title, genre, tags, ...; optional vector); - reads stdin.")
@HISTORY
def add_items(bundle, items_file, history_path, access) -> None:
    """Add (or replace) items on the device; those without a vector are placed from their metadata.

    The file holds a JSON list such as
    [{"item_id": "n1", "title": "Night Heist", "genre": "thriller", "tags": ["heist"]}].
    """
    import json

    from edgerec.errors import ConfigError
    from edgerec.runtime import Recommender

    try:  # JSON is UTF-8; a byte-order mark (as some editors write) is allowed
        items = json.loads(items_file.read().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--items is not UTF-8 (byte {exc.start:,} cannot be decoded); save the file as "
                          "UTF-8") from None
    except (ValueError, RecursionError) as exc:  # also nesting too deep, integers of over 4,300 digits
        raise ConfigError(f"--items is not valid JSON ({exc}); give a list of objects with an item_id") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError("--items must hold a JSON list of objects, each with an item_id")
    if not items:
        raise ConfigError("--items holds an empty list: nothing to add; give at least one object with an item_id")
    with Recommender.open(bundle, history=history_path, **access) as rec:
        added = rec.add_items(items)
    shown = ", ".join(added[:10]) + (f" and {len(added) - 10:,} more" if len(added) > 10 else "")
    console.print(f"added {_items(len(added))}: {shown}")


@click.command("remove-items", epilog=example("edgerec remove-items bundle i00042 i00077 --history device.db"))
@click.argument("bundle", type=click.Path(exists=True))
@click.argument("item_ids", nargs=-1, required=True)
@HISTORY
def remove_items(bundle, item_ids, history_path, access) -> None:
    """Remove items from the device's catalog (they are never recommended again)."""
    from edgerec.runtime import Recommender

    with Recommender.open(bundle, history=history_path, **access) as rec:
        rec.remove_items(list(item_ids))
    console.print(f"removed {_items(len(set(item_ids)))}")  # an id named twice is removed once


def _items(count: int) -> str:
    return f"{count:,} item{'' if count == 1 else 's'}"


def register(cli: click.Group) -> None:
    cli.add_command(recommend)
    cli.add_command(record)
    cli.add_command(history_group)
    cli.add_command(onboard)
    cli.add_command(add_items)
    cli.add_command(remove_items)
