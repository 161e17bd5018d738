"""`edgerec study coldstart | compression | content | dp-popularity | newcomers | next-play | replay | transfer | crosslingual`: run one study, print its tables, write JSON.

Each command builds the study from its options and hands it to `_run`. The
older names (`compress report`, `content report`, `content coldstart`) are
the same commands under their documented paths (see `alias`).
"""

from __future__ import annotations

import copy
from pathlib import Path

import click

from edgerec.cli.output import (
    FILE_OUT,
    PLOT_OUT,
    SEED,
    FiniteRange,
    console,
    example,
    fmt,
    plot_written,
    print_study,
    write_json,
)

DIR = click.Path(exists=True, file_okay=False, path_type=Path)


def _run(study, json_out=None, plot_out=None) -> None:
    def progress(message: str, values: dict) -> None:
        console.print(f"  {message}" + (f": {fmt(values)}" if values else ""))

    result = study.run(progress)
    print_study(result)
    if json_out:
        write_json(json_out, result.record)
    if plot_out:
        made = result.write_plot(plot_out)
        plot_written(made)


@click.group("study", epilog=example("edgerec study replay bundle --data data/world"))
def study_group() -> None:
    """Studies over data and bundles: one interface (run -> record, tables, plot, JSON)."""


@study_group.command("coldstart", epilog=example(
    "edgerec study coldstart --data data/world --out runs/cold --prepare",
    "edgerec study coldstart --data data/world --content ckpt/cold-content --out runs/cold --minilm "
    "--json cold.json"))
@click.option("--data", "data_dir", required=True, type=DIR)
@click.option("--content", "content_dirs", multiple=True, type=DIR,
              help="A content student (`content distill`); repeat to compare students on the same model.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the reduced data, the model and one bundle per student.")
@click.option("--held-items", default=600, show_default=True, type=click.IntRange(min=1),
              help="Items removed from training.")
@click.option("--epochs", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--minilm", is_flag=True, help="Also place the new items with MiniLM itself (on the host): "
                                             "the reference the students approximate.")
@click.option("--encoder", "encoder_dir", type=DIR, help="The teacher for --minilm (default: the packaged "
                                                         "all-MiniLM-L6-v2).")
@click.option("--k", default=10, show_default=True, type=click.IntRange(min=1), help="Cut-off of the hit rate (HR@k).")
@click.option("--prepare", is_flag=True, help="Only write the data without the new items to OUT/data, to "
                                              "distill the students on (so none reads a new item's text).")
@click.option("--json", "json_out", type=FILE_OUT)
def coldstart(data_dir, content_dirs, out, held_items, epochs, seed, minilm, encoder_dir, k, prepare,
              json_out) -> None:
    """Hold items out of training, add them on the device from metadata only, and measure HR@10 per
    content student (distill the students on the data `--prepare` writes, OUT/data)."""
    from edgerec.studies.coldstart import ColdStartStudy, hold_out_items

    if (out / "data").resolve() == Path(data_dir).resolve():  # its reduced copy replaced the input data
        raise click.UsageError("--out/data is the --data folder; the study writes its reduced data there: choose "
                               "another --out")
    if prepare:
        _, held, reduced = hold_out_items(data_dir, out, held_items, seed)
        console.print(f"wrote {out / 'data'}: {len(reduced.catalog):,} items, {len(held):,} held out "
                      "(the same ones with the same --held-items and --seed)")
        return
    if not content_dirs:
        raise click.UsageError("give --content (a content student) or --prepare")
    _run(ColdStartStudy(data_dir, list(content_dirs), out, held_items, epochs, seed, minilm=minilm, k=k,
                        encoder_dir=encoder_dir), json_out)


@study_group.command("compression", epilog=example(
    "edgerec study compression --teacher ckpt/teacher --student ckpt/student --data data/world"))
@click.option("--teacher", required=True, type=DIR)
@click.option("--student", required=True, type=DIR)
@click.option("--data", "data_dir", required=True, type=DIR)
@click.option("--json", "json_out", type=FILE_OUT, default="compression.json", show_default=True)
@click.option("--plot", "plot_out", type=PLOT_OUT, default="compression.png", show_default=True)
def compression(teacher, student, data_dir, json_out, plot_out) -> None:
    """Export every variant for real, run it with its engine, and tabulate bytes, NDCG@10 and latency."""
    from edgerec.studies.compression import CompressionStudy

    _run(CompressionStudy(teacher, student, data_dir), json_out, plot_out)


@study_group.command("content", epilog=example("edgerec study content --student ckpt/content --data data/world"))
@click.option("--student", required=True, type=DIR)
@click.option("--data", "data_dir", required=True, type=DIR)
@click.option("--encoder", "encoder_dir", type=DIR, help="The teacher (default: the packaged all-MiniLM-L6-v2).")
@click.option("--held-out", type=int, help="Texts kept out of training (default: what the student's `content "
              "distill` kept out; another value is refused).")
@click.option("--seed", type=SEED, help="The split's seed (default: the student's own; another is refused).")
@click.option("--baseline", "baselines", type=DIR, multiple=True,
              help="Another student to compare, e.g. `content distill --no-vocabulary` (repeatable).")
@click.option("--unseen", default=500, show_default=True,
              help="Real film titles with words the student never trained on (per set).")
@click.option("--json", "json_out", type=FILE_OUT)
def content(student, data_dir, encoder_dir, held_out, seed, baselines, unseen, json_out) -> None:
    """MiniLM vs the students on unseen texts: bytes, speed, cosine, neighbours, zero-shot tagging."""
    from edgerec.studies.content import ContentStudy

    _run(ContentStudy(student, data_dir, encoder_dir, held_out, seed, list(baselines), unseen), json_out)


@study_group.command("replay", epilog=example("edgerec study replay bundle --data data/world --users 300"))
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.option("--data", "data_dir", required=True, type=DIR, help="The data the bundle was trained on.")
@click.option("--users", default=300, show_default=True, type=click.IntRange(min=1), help="Held-out users replayed into the device.")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--history", "history_path", type=FILE_OUT,
              help="Keep the device's history database here (default: a temporary one, deleted after).")
@click.option("--json", "json_out", type=FILE_OUT)
def replay(bundle, data_dir, users, seed, history_path, json_out) -> None:
    """Play held-out users' histories into the on-device runtime; HR@10 of their next item, and latency."""
    import tempfile

    from edgerec.studies.replay import ReplayStudy

    if history_path:
        _run(ReplayStudy(bundle, data_dir, history_path, users, seed), json_out)
        return
    with tempfile.TemporaryDirectory(prefix="edgerec-replay-") as scratch:
        _run(ReplayStudy(bundle, data_dir, Path(scratch) / "history.db", users, seed), json_out)


@study_group.command("next-play", epilog=example("edgerec study next-play bundle --data data/music --users 300"))
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.option("--data", "data_dir", required=True, type=DIR, help="The data the bundle was trained on.")
@click.option("--users", default=300, show_default=True, type=click.IntRange(min=1), help="Users replayed into the device.")
@click.option("--events", default=500, show_default=True, type=click.IntRange(min=1),
              help="Newest log events before each target recorded on the device.")
@click.option("--replay", "weights", default="1", show_default=True,
              help="Policy.replay of the replay lists, comma-separated (e.g. 0.5,1,2).")
@click.option("--gap", type=click.IntRange(min=0), help="Policy.replay_gap of the replay lists (default: the Policy's, 10).")
@click.option("--minutes", type=click.FloatRange(min=0), help="Policy.replay_minutes of the replay lists (default: 60).")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--json", "json_out", type=FILE_OUT)
def next_play(bundle, data_dir, users, events, weights, gap, minutes, seed, json_out) -> None:
    """Hits of the next play (new or replay) beside leave-last-out's next new item: the seen filter, the replay
    policy, the bundle's default and a most-played-recently list."""
    from edgerec.studies.next_play import NextPlayStudy

    try:
        parsed = tuple(float(w) for w in weights.split(","))
    except ValueError:
        raise click.BadParameter("give numbers separated by commas, e.g. 0.5,1,2", param_hint="--replay") from None
    _run(NextPlayStudy(bundle, data_dir, users, events, parsed, seed=seed, gap=gap, minutes=minutes),
         json_out)  # the history in memory


@study_group.command("newcomers", epilog=example("edgerec study newcomers bundle --data data/world --json new.json"))
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.option("--data", "data_dir", required=True, type=DIR, help="The data the bundle was trained on.")
@click.option("--users", default=300, show_default=True, type=click.IntRange(min=1),
              help="Users of the log replayed as newcomers.")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--json", "json_out", type=FILE_OUT)
def newcomers(bundle, data_dir, users, seed, json_out) -> None:
    """Onboarding on the device: does each genre or language choice show, and what are first lists worth."""
    from edgerec.studies.newcomers import NewcomerStudy

    _run(NewcomerStudy(bundle, data_dir, users, seed), json_out)


@study_group.command("dp-popularity", epilog=example(
    "edgerec study dp-popularity --data data/world --prior pop.json --json dp.json --plot dp.png"))
@click.option("--data", "data_dir", required=True, type=DIR, help="Whose consumption the devices report.")
@click.option("--epsilon", "epsilons", multiple=True, type=FiniteRange(min=0, min_open=True), default=(0.5, 1.0, 2.0, 4.0), show_default=True)
@click.option("--devices", multiple=True, type=click.IntRange(min=1), default=(10_000, 100_000, 300_000, 1_000_000),
              show_default=True)
@click.option("--trials", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--zipf", type=FiniteRange(min=0, min_open=True), help="Devices consume by Zipf(s) over the items (in the data's popularity "
                                         "order) instead of the data's own shares.")
@click.option("--prior", "prior_out", type=FILE_OUT,
              help="Write the estimate at epsilon 1 and 300k devices as a prior for `edgerec export --popularity`.")
@click.option("--shuffled", is_flag=True,
              help="Reports reach the host in shuffled batches of all devices: --epsilon is the central epsilon, "
                   "each device randomizes at the larger local one the shuffle amplifies down to it.")
@click.option("--json", "json_out", type=FILE_OUT)
@click.option("--plot", "plot_out", type=PLOT_OUT)
def dp_popularity(data_dir, epsilons, devices, trials, zipf, prior_out, shuffled, json_out, plot_out) -> None:
    """Item popularity from locally DP device reports (OLH): recall of the top items and count error."""
    from edgerec.studies.dp_popularity import DPPopularityStudy

    _run(DPPopularityStudy(data_dir, tuple(epsilons), tuple(devices), trials, prior_out=prior_out, zipf=zipf,
                           shuffled=shuffled), json_out, plot_out)


def alias(command: click.Command, example_line: str) -> click.Command:
    """The same command under an older, documented path, with an example of that path."""
    twin = copy.copy(command)
    twin.epilog = example(example_line)
    return twin


@study_group.command("transfer", epilog=example(
    "edgerec study transfer --synthetic --coupling 1 --coupling 0 --json transfer.json --plot transfer.png",
    "edgerec study transfer --data data/world --source audio --target video",
    "edgerec study transfer --data data/ml100k --by genre --source comedy --target drama"))
@click.option("--data", "data_dir", type=DIR, help="A data folder with both domains.")
@click.option("--synthetic", is_flag=True, help="Also run on a synthetic world (users 2000, items 6000).")
@click.option("--coupling", "couplings", multiple=True, type=float,
              help="Synthetic worlds at these domain couplings (0-1; repeatable): the transfer's ground truth.")
@click.option("--source", default="audio", show_default=True)
@click.option("--target", default="video", show_default=True)
@click.option("--by", default="modality", show_default=True, help="'modality' or an item column naming the domain.")
@click.option("--anchor", help="The content space: use-multilingual or an encoder folder (default: hashed words).")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--json", "json_out", type=FILE_OUT)
@click.option("--plot", "plot_out", type=PLOT_OUT)
def transfer(data_dir, synthetic, couplings, source, target, by, anchor, seed, json_out, plot_out) -> None:
    """NDCG@10 in the target domain for users with only source-domain history: content, mapping and
    direct transfer against target popularity and a target-only model."""
    from edgerec.data.synth import SynthConfig
    from edgerec.studies.transfer import TransferStudy

    synth = SynthConfig(users=2000, items=6000, events=120_000, seed=seed) if synthetic or couplings else None
    if data_dir is None and synth is None:
        raise click.UsageError("give --data, --synthetic or --coupling")
    _run(TransferStudy(data_dir, synth, source, target, by, tuple(couplings), seed=seed, anchor=anchor),
         json_out, plot_out)


@study_group.command("crosslingual", epilog=example(
    "edgerec study crosslingual --encoder hashed-words --encoder use-multilingual --encoder all-minilm-l6-v2"))
@click.option("--encoder", "encoders", multiple=True,
              help="hashed-words, use-multilingual, all-minilm-l6-v2 or a sentence-encoder folder (repeatable).")
@click.option("--films", default=200, show_default=True)
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--json", "json_out", type=FILE_OUT)
def crosslingual(encoders, films, seed, json_out) -> None:
    """Spanish film descriptions retrieve their English originals: top-1, recall@5 and MRR per encoder."""
    from edgerec.studies.crosslingual import CrossLingualStudy

    study = CrossLingualStudy(list(encoders), films, seed) if encoders else CrossLingualStudy(films=films, seed=seed)
    _run(study, json_out)


def register(cli: click.Group) -> None:
    cli.add_command(study_group)
