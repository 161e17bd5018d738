"""`edgerec data synth | import | stats`."""

from __future__ import annotations

import click

from edgerec.cli.output import (
    FILE_OUT,
    SEED,
    VocabularyChoice,
    console,
    example,
    key_values,
    progress_bar,
    write_json,
)


@click.group("data", epilog=example("edgerec data synth --out data/world"))
def data_group() -> None:
    """Create, import and inspect data sets in the neutral format."""


@data_group.command("synth", epilog=example("edgerec data synth --out data/world --users 5000 --items 20000"))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write.")
@click.option("--users", default=5_000, show_default=True, type=click.IntRange(min=1))
@click.option("--items", default=20_000, show_default=True, type=click.IntRange(min=50))
@click.option("--events", default=500_000, show_default=True, type=click.IntRange(min=1),
              help="Approximate number of events (at least --users).")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--days", default=365, show_default=True, type=click.IntRange(min=30),
              help="Length of the event log in days.")
@click.option("--chunk-users", default=5_000, show_default=True, type=click.IntRange(min=1),
              help="Users generated per streamed chunk.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
def synth(out, users, items, events, seed, days, chunk_users, fmt) -> None:
    """Generate the embedded default: a synthetic audio/video world."""
    from edgerec.data.synth import SynthConfig, write_synth

    cfg = SynthConfig(users=users, items=items, events=events, seed=seed, days=days, chunk_users=chunk_users)
    with progress_bar("generating") as update:
        summary = write_synth(cfg, out, fmt, progress=lambda _, done, total: update(done, total))
    key_values(summary, title="synthetic data set")


@data_group.command("import", epilog=example(
    "edgerec data import ml-1m ~/ml-1m --out data/ml1m",
    "edgerec data import netflix ~/netflix-prize --out data/netflix --sample 0.05",
    "edgerec data import mpd ~/spotify_million_playlist_dataset --out data/mpd --sample 0.01",
    "edgerec data import 30music ~/ThirtyMusic --out data/30music --sample 0.1",
    "edgerec data import csv log.csv --out data/mine --user-col account --item-col track --time-col ts",
    "edgerec data import csv plays.tsv --out data/music --delimiter tab --columns user,time,artist,track "
    "--user-col user --time-col time --item-col artist+track"))
@click.argument("fmt", metavar="FORMAT",
                type=click.Choice(["csv", "parquet", "jsonl", "ml-100k", "ml-1m", "ml-latest", "netflix", "mpd", "30music"]))
@click.argument("path", type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--items", "items_path", type=click.Path(exists=True),
              help="Item table (csv, parquet or jsonl), for FORMAT csv, parquet or jsonl: one row per item, its id in column item_id "
              "(or the log's --item-col; a table with both needs --item-columns item_id=COLUMN), fields in columns named "
              "as edgerec's or mapped with --item-columns.")
@click.option("--item-columns", help="Which --items columns hold which item field: FIELD=COLUMN pairs joined by "
              "commas, FIELD one of item_id, title, description, genre, mood, modality, language, creator, "
              "provider, series_id, tags, duration, release_ts, episode, e.g. 'item_id=movieId,tags=genres'.")
@click.option("--items-delimiter", help="Field separator of the --items file when it differs from --delimiter.")
@click.option("--duration-unit", type=click.Choice(["s", "ms", "min"]), default="s", show_default=True,
              help="Unit of the --items table's durations (ms for KuaiRand's video_duration).")
@click.option("--items-header", help="Names of the --items file's columns when it has no header line, "
              "comma-separated in file order (e.g. item_id,title,tags; --item-columns may map them).")
@click.option("--user-col", default="user_id", show_default=True)
@click.option("--item-col", default="item_id", show_default=True,
              help="The item id column, or several joined by '+' to key items by them (artist+track).")
@click.option("--item-list-sep", help="The item column lists several ids a row, separated by this (' ' for "
              "MicroLens' sequences): each id is an event, in the order written, at the row's time.")
@click.option("--time-col", default="timestamp", show_default=True)
@click.option("--event-col", default="event", show_default=True, help="Optional; events default to play.")
@click.option("--default-event", type=VocabularyChoice("LOG_EVENTS"),
              help="The event of every row of a log without an event column (play when not given): rate for a log "
              "of ratings (Amazon, Goodreads, Yelp reviews), so a rating is not read as the share of a play. With "
              "an event column: the event of its rows whose cell is empty (or whose JSON line lacks the field).")
@click.option("--value-col", default="value", show_default=True,
              help="Optional: a rating, or the share of a play played (watch ratio; above 1 for replays).")
@click.option("--skip-below", type=float, help="A play whose --value-col value is below this is imported as a "
              "skip (not consumed), e.g. 0.5 for a watch ratio, 50 for a percentage; for FORMAT 30music, the "
              "share of the track played.")
@click.option("--value-scale", type=float, help="Multiply every value by this as it is read (0.01 turns a "
              "percentage played into a share; --skip-below then compares shares).")
@click.option("--event-map", help="Rename the file's events: NAME=EVENT pairs joined by commas, EVENT one of play, "
              "finish, skip, like, rate, or drop to leave those rows out (counted), e.g. 'listen=play,unlike=drop'.")
@click.option("--delimiter", default=",", show_default=True, help="Field separator; tab as '\\t' or 'tab'.")
@click.option("--columns", "names", help="Names of the columns of a file without a header line, comma-separated "
              "in file order (its first line is then data).")
@click.option("--no-quoting", is_flag=True, help="A '\"' is plain text, never the start of a quoted field (logs "
              "whose names hold quotes, such as Last.fm's), in the log and the --items table.")
@click.option("--skip-bad-rows", is_flag=True, help="Leave out rows with the wrong number of fields, no user or "
              "item id, or no readable time; they are counted and their first lines shown.")
@click.option("--missing-ids", type=click.Choice(["keep", "empty"]), default="keep", show_default=True,
              help="An id written as a missing-value marker (\\N, NULL, null, None, NaN, NA, ...): keep reads it as "
              "an id, one user or item for all such rows, and warns with the count; empty reads it as no id, so "
              "the row is refused at its line, or left out with --skip-bad-rows.")
@click.option("--encoding", default="utf-8", show_default=True,
              help="Text encoding of CSV files (e.g. latin-1, cp1252, utf-16); a UTF-8 byte order mark is skipped.")
@click.option("--items-encoding", help="Text encoding of the --items file when it differs from --encoding.")
@click.option("--tag-sep", default="|", show_default=True,
              help="What separates the tags in the --items file's tags column (e.g. ',').")
@click.option("--time-unit", default="s", show_default=True,
              help="Unit of numeric times: s, ms, us or ns since 1970, or steps of s, min, h or d with an optional "
              "count (10min for Twitch's 10-minute slots, d for day numbers). ISO-8601 strings carry their own.")
@click.option("--no-time", is_flag=True, help="The log has no time column (ratings dumps such as Book-Crossing's): "
              "each row's place in the file is its time, so a user's last row is their last event.")
@click.option("--time-format", help="How the log's text times are written when not ISO-8601, as Python's strptime "
              "reads them: '%a %b %d %H:%M:%S %z %Y' (Goodreads), '%m %d, %Y' (Amazon's reviewTime).")
@click.option("--time-zone", help="The zone of the log's times written without one (ISO-8601 or --time-format): an "
              "IANA name (Asia/Shanghai for KuaiRec's time column) or an offset (+08:00); UTC by default. An "
              "--items table's ISO-8601 release times without a zone read in it too, and the bundle's part-of-day "
              "priors and hour features are learned in its local hours (name it for epoch numbers too when the "
              "log's users share one zone).")
@click.option("--sample", type=click.FloatRange(0, 1, min_open=True), help="Keep this fraction of users.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of the user sample.")
@click.option("--chunk-rows", default=200_000, show_default=True, help="Rows read at a time.")
@click.option("--out-format", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
def import_(fmt, path, out, items_path, item_columns, items_delimiter, duration_unit, items_header, user_col,
            item_col, item_list_sep, time_col, event_col,
            default_event, value_col, skip_below, value_scale,
            event_map, delimiter,
            names, no_quoting, skip_bad_rows, missing_ids, encoding, items_encoding, tag_sep, time_unit, no_time, time_format, time_zone, sample, seed, chunk_rows,
            out_format) -> None:
    """Import PATH (a file, a folder of a table's part files, a MovieLens folder, the Netflix Prize folder
    or one of its ratings files, the Million Playlist Dataset's folder or one of its slices, or the 30Music
    folder or its events.idomaar) into the neutral format at --out."""
    from edgerec.data.item_import import parse_item_columns
    from edgerec.data.loaders import ColumnMap, ReadOptions, import_dataset, parse_event_map
    from edgerec.data.stats import dataset_stats
    from edgerec.data.store import refuse_writing_over, save_dataset

    refuse_writing_over(out, [path] + ([items_path] if items_path else []))
    if no_time and time_col != "timestamp":  # a named time column would be left unread
        raise click.UsageError(f"--no-time reads a log without times; it cannot go with --time-col {time_col}")
    columns = ColumnMap(user=user_col, item=item_col, time=None if no_time else time_col, event=event_col,
                        value=value_col,
                        default_event=default_event,
                        skip_below=skip_below, value_scale=value_scale,
                        event_map=parse_event_map(event_map) if event_map is not None else None,
                        item_list_sep=_separator(item_list_sep))
    delimiter, items_delimiter = _separator(delimiter), _separator(items_delimiter)
    header, item_header = _column_names(names), _column_names(items_header)
    options = ReadOptions(delimiter=delimiter, header=header, encoding=encoding, chunk_rows=chunk_rows,
                          sample_users=sample, seed=seed, time_unit=time_unit, quoted=not no_quoting,
                          skip_bad_rows=skip_bad_rows, tag_separator=tag_sep, time_format=time_format,
                          time_zone=time_zone, duration_unit=duration_unit, missing_ids=missing_ids)
    with console.status(f"reading {path}"):
        dataset = import_dataset(fmt, path, columns=columns, items=items_path, options=options,
                                 items_encoding=items_encoding, items_delimiter=items_delimiter,
                                 items_header=item_header,
                                 item_columns=parse_item_columns(item_columns) if item_columns is not None else None)
        save_dataset(dataset, out, out_format)
    stats = dataset_stats(dataset)
    key_values({k: v for k, v in readable(stats, dataset.meta).items() if not isinstance(v, dict)},
               title=f"imported into {out}")
    for warning in dataset.meta.get("warnings", []):
        console.print(f"warning: {warning}")
    if "plays_as_skips" in dataset.meta:
        made = dataset.meta["plays_as_skips"]
        console.print(f"{made['events']:,} play{'s' * (made['events'] != 1)} with a value below {made['below']:g} "
                      "imported as skips")
    for name, rows in dataset.meta.get("event_map", {}).get("dropped_rows", {}).items():
        console.print(f"left out {rows:,} row{'s' * (rows != 1)} of event {name!r} (--event-map {name}=drop)")
    for reason, what in dataset.meta.get("skipped_rows", {}).items():
        console.print(f"skipped {what['rows']:,} row{'s' * (what['rows'] > 1)} ({reason}); first at line(s) "
                      f"{', '.join(map(str, what['first_lines']))}")


def _column_names(text: str | None) -> tuple[str, ...] | None:
    """--columns or --items-header: names joined by commas."""
    return tuple(n.strip() for n in text.split(",")) if text else None


def _separator(text: str | None) -> str | None:
    """A separator as typed: a shell passes \\t as two characters, and 'tab' is easier to type."""
    return {"\\t": "\t", "tab": "\t"}.get(text, text)


@data_group.command("stats", epilog=example("edgerec data stats data/world --json stats.json"))
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "json_out", type=FILE_OUT, help="Also write the numbers as JSON.")
def stats(folder, json_out) -> None:
    """Users, items, events, density and popularity skew of a data folder."""
    from edgerec.data.stats import dataset_stats
    from edgerec.data.store import load_dataset

    with console.status(f"reading {folder}"):
        dataset = load_dataset(folder)
        result = dataset_stats(dataset)
    key_values(readable(result, dataset.meta), title=str(folder))
    write_json(json_out, result)


def readable(stats: dict, meta: dict) -> dict:
    """The summary as printed: the first and last event as UTC dates (epoch seconds stay in the JSON), or as
    rows of a log imported without times."""
    from datetime import datetime, timezone

    out = dict(stats)
    for key in ("first_event", "last_event"):
        if key in out and stats["events"]:
            out[key] = (f"row {out[key]:,}" if meta.get("time") == "file order" else
                        f"{datetime.fromtimestamp(out[key], timezone.utc):%Y-%m-%d %H:%M:%S} UTC")
    return out


def register(cli: click.Group) -> None:
    cli.add_command(data_group)
