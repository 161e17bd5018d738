"""The spec's golden cases, generated: a tiny bundle from the real exporter, event scripts over it,
and the list today's runtime returns after each step (that list is the contract).

    python -m edgerec.export.golden --out spec/golden

Everything is seeded and synthetic: the catalog, the users the model is
trained on, and the bundle's reference histories. Rerun this (and commit its
output) whenever the bundle format or a device policy changes on purpose;
tests/device/test_golden.py then holds every runtime to the new lists.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np

from edgerec.data import SynthConfig, write_synth
from edgerec.data.split import leave_last_out
from edgerec.data.store import load_dataset
from edgerec.export.bundle_builder import ExportConfig, export_bundle
from edgerec.export.golden_content import CONTENT, build_content_bundle
from edgerec.export.golden_more import (
    FORMAT1,
    NAN,
    ROWS,
    build_format1_bundle,
    build_nan_bundle,
    build_rows_bundle,
    more_cases,
)
from edgerec.export.golden_ranked import build_ranked_bundle
from edgerec.export.golden_refusals import REFUSALS_FOLDER
from edgerec.export.golden_refusals import generate as generate_refusals
from edgerec.export.golden_text import TEXT, build_text_bundle
from edgerec.models.config import ModelConfig
from edgerec.models.train import TrainConfig, train_model
from edgerec.runtime.backends import available_backends
from edgerec.runtime.bundle import FORMAT_VERSION, Bundle
from edgerec.runtime.catalog import ItemCatalog
from edgerec.runtime.golden import LISTS, SCORE_TOLERANCE, Case, differences, run_case
from edgerec.runtime.schema import SCHEMA_FILE, SCHEMA_PACKAGE

WORLD = SynthConfig(users=160, items=56, events=3_000, seed=11)
MODEL = ModelConfig(dim=8, heads=2, layers=1, max_len=5, dropout=0.0)
TRAIN = TrainConfig(epochs=4, batch_size=32, eval_users=0, seed=0)
EXPORT = ExportConfig(parity_users=150, reference_users=8, k=5, short_list=20, evaluate=False,
                      min_top10_agreement=0.8, name="golden", budgets={"p99_ms": 5.0, "rss_mb": 300.0})
CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z: the manifest's creation time, fixed
ENGINES = ("onnx", "tflite")
RANKED = "ranked"  # the second bundle: the golden one with a ranker and a scorer (export/golden_ranked.py)


@contextlib.contextmanager
def inside(folder: Path):
    """Run in `folder`, so the paths the exporter records are relative (no host path in the bundle)."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def build_bundle(out: Path) -> Path:
    """Train the tiny model on the tiny world and export it through the real exporter."""
    out = Path(out).resolve()
    with reproducible(), tempfile.TemporaryDirectory(prefix="edgerec-golden-") as scratch, inside(Path(scratch)):
        write_synth(WORLD, "data")
        dataset = load_dataset("data")
        train_model(dataset, leave_last_out(dataset), MODEL, TRAIN, out="ckpt")
        export_bundle("ckpt", "data", "bundle", EXPORT)
        declare_golden_space("bundle", "data", "bundle-space")
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree("bundle-space", out)
    return out


@contextlib.contextmanager
def reproducible():
    """The manifest's creation time fixed and torch on one thread (float sums follow the thread count:
    one thread gives every machine the same weights)."""
    import torch

    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(CREATED)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if previous is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = previous


def declare_golden_space(bundle: str, data: str, out: str) -> None:
    """The golden bundle declares a shared space (so every manifest section is exercised): hashed-word
    content vectors, and bridges (mapping and direct) from its own audio users' vectors to their video ones."""
    from edgerec.export.space import content_anchor, declare_space, fit_bundle_bridge

    opened, dataset = Bundle.open(bundle), load_dataset(data)
    catalog = ItemCatalog(opened)
    codes = [dataset.catalog.index[catalog.item_id(r)] for r in range(catalog.base_count)]
    content, anchor = content_anchor(dataset.catalog.subset(codes))
    bridges = [fit_bundle_bridge(opened, opened, data, by="modality", source_domain="audio", target_domain="video",
                                 method=method) for method in ("mapping", "direct")]
    declare_space(bundle, out, space_id="golden-v1", domains=["audio", "video"], anchor=anchor, content=content,
                  bridges=bridges)


# ------------------------------------------------------------------ event scripts


class World:
    """Facts about the golden catalog the scripts pick their items from (by rule, not by hand)."""

    def __init__(self, bundle: Path):
        self.bundle = bundle
        self.catalog = ItemCatalog(Bundle.open(bundle))
        self.metas = self.catalog.metas(list(range(self.catalog.base_count)))
        self.ids = [m["item_id"] for m in self.metas]
        self.now = float(max(self.catalog.numeric["release_ts"])) + 7 * 86_400  # a week after the newest release

    def where(self, **wanted) -> list[str]:
        return [m["item_id"] for m in self.metas if all(m.get(k) == v for k, v in wanted.items())]

    def most_common(self, column: str, n: int = 1) -> list[str]:
        return [v for v, _ in Counter(m[column] for m in self.metas if m.get(column)).most_common(n)]

    def series(self) -> list[str]:
        """Episodes of the longest series, in episode order."""
        name = self.most_common("series_id")[0]
        episodes = [m for m in self.metas if m.get("series_id") == name]
        return [m["item_id"] for m in sorted(episodes, key=lambda m: m["episode"])]

    def mid_hour_after_newest(self) -> float:
        """A `now` minutes after the newest release, within the hour it fell in and not at its start (spec §5's
        freshness reads this exact time; §4's prior reads the hour's start, before the release)."""
        newest = int(max(self.catalog.numeric["release_ts"]))
        return float(newest + (3_600 - newest % 3_600) // 2)

    def context(self, **extra) -> dict:
        return {"now": self.now, "hour": 20.5, **extra}

    def listed(self, steps: list[dict], k: int = 5) -> list[str]:
        """The list a user gets after `steps` (so a script can act on what was shown)."""
        probe = Case("probe", "", [*steps, {"op": "recommend", "user": steps[0]["user"], "k": k,
                                            "context": self.context()}])
        return [r["item_id"] for r in run_case(self.bundle, probe, ENGINES[0])[-1]]


def scripts(world: World) -> list[Case]:
    """The golden cases: each a short story of one or two users, with a recommend after each turn."""
    ids, ctx = world.ids, world.context()
    genre, language = world.most_common("genre")[0], world.most_common("language")[0]
    creator = world.most_common("creator")[0]
    episodes = world.series()
    history = [ids[i] for i in (3, 11, 19, 27, 35, 43)]
    other_language = next(m for m in world.metas if m["language"] != world.metas[ids.index(history[0])]["language"])

    def rec(user, k=5, **extra):
        return {"op": "recommend", "user": user, "k": k, "context": extra.pop("context", ctx), **extra}

    def watch(user, items, event="finish"):
        return [{"op": "record", "user": user, "item": item, "event": event} for item in items]

    spread_genre = world.metas[ids.index(world.where(creator=creator)[0])]["genre"]  # the busiest creator's genre
    shown = world.listed(watch("f", history[:3]), k=8)
    far = world.where(genre=world.metas[-1]["genre"])[1]  # an item far from the history's tastes
    return [
        Case("newcomer", "no history: the popularity-with-freshness prior; then the bundle's default k; then "
             "three weeks earlier, when the newest items were not yet released (no bonus before release); then 30 "
             "items, where old items of equal popularity tie (float32 scores: the lower row first)",
             [rec("new"), {"op": "recommend", "user": "new", "context": ctx},
              rec("new", context=world.context(now=world.now - 21 * 86_400)),
              rec("new", k=30)]),  # a long list: equal float32 priors, ties to the lower row
        Case("onboarding", "a newcomer's choices (genre, language, then a 'more like this' item) steer the "
             "cold-start list", [
                 {"op": "onboard", "user": "o", "genres": [genre]}, rec("o"),
                 {"op": "onboard", "user": "o", "languages": [other_language["language"]]}, rec("o"),
                 {"op": "onboard", "user": "o", "items": [far]}, rec("o")]),
        Case("newcomer_spread", "a newcomer's list keeps at most cold_max_per_creator items of one creator "
             "before the items of other creators (the golden bundle has no defaults.cold_max_per_creator: 3); "
             "0 turns it off, 1 is stricter, the request's own smaller max_per_creator is a hard cap; one play "
             "(a short history) keeps the spread; a chosen genre of one creator stays ahead of unmatched items; "
             "a language-only choice is named in the reason (kind 'choice')", [
                 rec("p", k=8), rec("p", k=8, policy={"cold_max_per_creator": 0}),
                 rec("p", k=8, policy={"cold_max_per_creator": 1}),
                 rec("p", k=8, policy={"cold_max_per_creator": 3, "max_per_creator": 1}),
                 rec("p", k=8, policy={"cold_max_per_creator": 1, "diversity": 0.5}),
                 *watch("p", history[:1], "play"), rec("p", k=8), rec("p", k=8, policy={"cold_max_per_creator": 0}),
                 {"op": "onboard", "user": "g", "genres": [spread_genre]}, rec("g", k=8),
                 {"op": "onboard", "user": "lang", "languages": [other_language["language"]]}, rec("lang", k=8),
                 rec("lang", k=8, policy={"cold_max_per_creator": 0})]),
        Case("short_history", "one, two, then three consumed items: popularity blends out as history grows "
             "(cold_start_items = 3)", [
                 *watch("s", history[:1]), rec("s"), *watch("s", history[1:2], "play"), rec("s"),
                 *watch("s", history[2:3], "like"), rec("s", k=8)]),
        Case("history_longer_than_L", "six items for a model of history length 5: the newest 5 count "
             "(truncated), every seen item is filtered; playing the oldest again changes nothing (the "
             "sequence keeps first consumptions)", [
                 *watch("h", history), rec("h", k=10), *watch("h", history[:1], "play"), rec("h", k=10)]),
        Case("seen_filter", "skip and not_interested exclude an item without making it history; play, finish "
             "and like make it history", [
                 *watch("f", history[:3]), rec("f", k=8),
                 {"op": "record", "user": "f", "item": shown[0], "event": "skip"}, rec("f", k=8),
                 {"op": "record", "user": "f", "item": shown[1], "event": "not_interested"}, rec("f", k=8)]),
        Case("series", "the next episode of a series the user watches is explained as such", [
                 *watch("e", history[:3] + episodes[:1]), rec("e", k=10),
                 *watch("e", episodes[1:3]), rec("e", k=10)]),
        Case("feedback", "not_interested pushes an item's neighbours down; more_like_this pulls a far "
             "item's neighbours up and into the pool (a short list of 5 takes them from beyond the best rows)", [
                 *watch("f", history[:3]), rec("f", k=8),
                 {"op": "record", "user": "f", "item": shown[0], "event": "not_interested"}, rec("f", k=8),
                 {"op": "record", "user": "f", "item": far, "event": "more_like_this"}, rec("f", k=8),
                 rec("f", k=8, policy={"feedback_weight": 3.0}),
                 rec("f", k=5, policy={"short_list": 5})]),  # 4 x 5 rows by score: the neighbours matter
        Case("diversity_and_caps", "MMR diversity and per-creator / per-genre caps re-rank the same pool", [
                 *watch("d", history[:4]), rec("d", k=8), rec("d", k=8, policy={"diversity": 0.5}),
                 rec("d", k=8, policy={"diversity": 0.5, "short_list": 100}),  # dissimilar items: max_sim >= 0
                 rec("d", k=8, policy={"max_per_creator": 1}), rec("d", k=8, policy={"max_per_genre": 1}),
                 rec("d", k=8, policy={"diversity": 0.3, "max_per_genre": 2, "max_per_creator": 2})]),
        Case("fairness", "provider-exposure re-ranking: the lift term, then with the policy's caps kept; "
             "the per-provider cap baseline", [
                 *watch("p", history[:4]), rec("p", k=8), rec("p", k=8, policy={"fairness": 2.0}),
                 rec("p", k=8, policy={"fairness": 4.0, "max_per_creator": 1}),
                 rec("p", k=8, policy={"fairness": 0.8, "fairness_method": "cap"})]),
        Case("boosts", "freshness, language and hub boosts; then another hour and a device, which move scores "
             "through the bundle's context priors (no ranker needed); then a strong freshness of one day, asked "
             "mid-hour minutes after the newest release: its age reads the exact now, not the hour the cold-start "
             "prior truncates it to (that hour began before the release: a truncated age would be below 0)", [
                 *watch("l", history[:4]), rec("l", k=8),
                 rec("l", k=8, policy={"freshness": 3.0, "freshness_days": 365.0}),
                 rec("l", k=8, policy={"language_boost": 2.0}),
                 rec("l", k=8, policy={"hub_penalty": 3.0}),
                 rec("l", k=8, context=world.context(hour=7.0, device="tv")),
                 rec("l", k=8, context=world.context(now=world.mid_hour_after_newest()),
                     policy={"freshness": 10.0, "freshness_days": 1.0})]),
        Case("filters", "business filters: each must hold for every item shown", [
                 *watch("x", history[:4]),
                 rec("x", k=6, filters={"languages": [language]}),
                 rec("x", k=6, filters={"modalities": [world.metas[0]["modality"]]}),
                 rec("x", k=6, filters={"genres": [genre]}),
                 rec("x", k=6, filters={"exclude_genres": [genre]}),
                 rec("x", k=6, filters={"exclude_items": ids[:20]}),
                 rec("x", k=6, filters={"kids_safe": True}),
                 rec("x", k=6, filters={"max_duration_s": 600.0}),
                 rec("new", k=6, filters={"genres": [genre], "languages": [language]})]),
        Case("catalog_updates", "items added on the device (with a vector, or metadata only: placed near "
             "related items), updates of bundle items (one the user watched), and removals", [
                 *watch("c", history[:4]), rec("c", k=8),
                 {"op": "add_items", "items": [
                     {"item_id": "new-vector", "title": "New with a vector", "genre": genre,
                      "vector": [round(float(v), 6) for v in
                                 world.catalog.vectors(np.array([ids.index(history[3])]))[0]]},
                     {"item_id": "new-related", "title": "New by a known creator", "creator": creator,
                      "genre": genre, "tags": []}]},
                 rec("c", k=8),
                 {"op": "add_items", "items": [{"item_id": shown[2], "title": "Updated", "genre": genre,
                                                "creator": creator}]},
                 rec("c", k=8),
                 {"op": "remove_items", "items": ["new-vector", shown[3], shown[4]]}, rec("c", k=8),
                 # a watched item updated: its events keep the bundle row's encoder input (spec §3)
                 {"op": "add_items", "items": [{"item_id": history[1], "title": "Remastered", "genre": genre,
                                                "creator": creator}]},
                 rec("c", k=8),
                 rec("new", k=8)]),
        Case("forget", "forgetting a user makes them a newcomer again", [
                 *watch("g", history[:4]), rec("g"), {"op": "forget", "user": "g"}, rec("g")]),
        replay_case(world),
        ranked_case(world, history, episodes, far, genre, creator),
        replay_ranked_case(world),
        *more_cases(world, history, far),
    ]


def replay_case(world: World) -> Case:
    """Played favourites that come back (spec §5 Replays): music tracks played two and three times, a
    film played twice (never back), three newer plays; then the cool-downs, the plays a favourite
    needs, a skip and a filter. The requests give no `now`: the device clock, just after the plays."""
    music, film = world.where(modality="music_track")[:7], world.where(modality="film")[0]
    plays = [*music[:4], film, music[0], music[1], film, music[0], *music[4:7]]
    on = {"replay": 2.0, "replay_gap": 3, "replay_minutes": 0.0}

    def rec(**extra):
        return {"op": "recommend", "user": "m", "k": 10, "context": {"hour": 20.5}, **extra}

    return Case("replay", "a listener's favourites come back with a replay weight: without one (the golden "
                "bundle has no defaults.replay) every played item stays out; with one, the tracks played twice "
                "and three times return (the film played twice does not), unless played among the newest "
                "replay_gap plays or within replay_minutes of the request (here: all of them), below "
                "replay_min_plays, skipped, or filtered out", [
                    *[{"op": "record", "user": "m", "item": item, "event": "play"} for item in plays],
                    rec(), rec(policy=on), rec(policy={**on, "replay_minutes": 60.0}),
                    rec(policy={**on, "replay_gap": 4}), rec(policy={**on, "replay_min_plays": 3}),
                    rec(policy=on, filters={"exclude_items": music[:1]}),
                    {"op": "record", "user": "m", "item": music[1], "event": "skip"}, rec(policy=on)])


def replay_ranked_case(world: World) -> Case:
    """Favourites on the ranked bundle: the ranker re-scores the short list with the favourites in it,
    and the replay term is added to the ranker's relevance (with the ranker and without it)."""
    music = world.where(modality="music_track")[:6]
    plays = [music[0], music[1], music[2], music[0], music[1], music[0], *music[3:6]]
    on = {"replay": 2.0, "replay_gap": 3, "replay_minutes": 0.0}
    start = world.now - 3_600.0  # the plays come before the context's fixed `now`, a minute apart

    def rec(**policy):
        return {"op": "recommend", "user": "m", "k": 8, "context": world.context(), "policy": policy}

    return Case("replay_ranked", "the ranked bundle with a replay weight: the favourites join the short list "
                "before the ranker re-scores it, and their replay term is added to the ranker's relevance; the same "
                "request without the ranker, and with a smaller weight", [
                    *[{"op": "record", "user": "m", "item": item, "event": "play", "timestamp": start + 60.0 * i}
                      for i, item in enumerate(plays)],
                    rec(**on), rec(**on, use_ranker=False), rec(**{**on, "replay": 0.5})],
                bundle=RANKED, engines=("onnx",))


def ranked_case(world: World, history: list[str], episodes: list[str], far: str, genre: str, creator: str) -> Case:
    """The ranked bundle's case: the ranker's features (history shares, series, context), then the
    scorer's (tags, genres, liked items, context cells), added items and an empty history."""
    def rec(user, k=6, **extra):
        return {"op": "recommend", "user": user, "k": k, "context": extra.pop("context", world.context()), **extra}

    def watch(user, items, event="finish"):
        return [{"op": "record", "user": user, "item": item, "event": event} for item in items]

    added = [{"item_id": "new-episode", "title": "A new episode", "series_id": world.metas[
                 world.ids.index(episodes[0])]["series_id"], "episode": 8, "genre": genre, "duration": 1500.0,
              "popularity": 40.0, "release_ts": int(world.now) - 3 * 86_400, "tags": ["cliffhanger", "dark"]},
             {"item_id": "new-by-creator", "title": "New by a known creator", "creator": creator, "genre": genre,
              "modality": "podcast_episode", "tags": []}]
    long = world.ids[1::2][:22]  # a history longer than the creator window, ending in two likes
    return Case("ranker_and_scorer", "the ranked bundle: its ranker re-scores the short list (features version "
                "1: history shares, series, context; another hour and device move it), then the scorer instead "
                "(use_ranker false) and over it (use_scorer true), a short history, items added on the device, "
                "a request not cold only through more_like_this (no history), a history of 22 items ending in two "
                "likes, and a newcomer (neither runs)", [
                    *watch("r", history[:2] + episodes[:2]), *watch("r", history[2:3], "like"),
                    rec("r"), rec("r", context=world.context(hour=7.0, device="phone")),
                    rec("r", policy={"use_ranker": False}),
                    rec("r", context=world.context(hour=14.0, device="tablet"), policy={"use_ranker": False}),
                    rec("r", policy={"use_scorer": True}),
                    *watch("s", history[3:4]), rec("s"), rec("s", policy={"use_ranker": False}),
                    {"op": "add_items", "items": added}, *watch("r", ["new-by-creator"], "play"),
                    rec("r", k=8), rec("r", k=8, policy={"use_ranker": False}),
                    {"op": "onboard", "user": "m", "items": [far]}, rec("m"), rec("m", policy={"use_ranker": False}),
                    *watch("w", long[:-2]), *watch("w", long[-2:], "like"),  # beyond the creator window of 20
                    rec("w", context=world.context(device="web")),
                    rec("w", context=world.context(hour=2.0, device="web"), policy={"use_ranker": False}),
                    rec("new", policy={"use_scorer": True})],
                bundle=RANKED, engines=("onnx",))


def expected_outputs(bundle: Path, cases: list[Case]) -> dict:
    """Fill each recommend step's expected list from today's runtime (per engine where they differ)."""
    engines = [e for e in ENGINES if e in available_backends()]
    if engines != list(ENGINES):
        raise SystemExit(f"the golden cases need both engines installed ({', '.join(ENGINES)})")
    summary = {"cases": len(cases), "recommend_steps": 0, "steps": 0, "engine_specific": 0,
               "same_as_previous": []}
    for case in cases:
        runs = {engine: run_case(bundle.parent / case.bundle, case, engine) for engine in engines
                if case.plays_on(engine)}
        steps = [s for s in case.steps if s["op"] in LISTS]
        for i, step in enumerate(steps):
            step["expected"] = runs[engines[0]][i]
            for engine in [e for e in engines[1:] if e in runs]:
                if differences([step["expected"]], [runs[engine][i]], case.tolerance):
                    step.setdefault("expected_by_engine", {})[engine] = runs[engine][i]
                    summary["engine_specific"] += 1
            if i and step["expected"] == steps[i - 1]["expected"]:
                summary["same_as_previous"].append(f"{case.name} #{i}")
        summary["recommend_steps"] += len(steps)
        summary["steps"] += len(case.steps)
    return summary


def generate(out: Path, cases_only: bool = False) -> dict:
    """Bundles, cases and index in `out`; cases_only: keep the committed bundles, refill the cases."""
    out = Path(out)
    bundle = out / "bundle" if cases_only else build_bundle(out / "bundle")
    if not cases_only:
        build_ranked_bundle(bundle, out / RANKED)
    if not cases_only or not (out / ROWS).exists():  # derived from the golden bundle alone: the same bytes again
        build_rows_bundle(bundle, out / ROWS)
    if not cases_only or not (out / FORMAT1).exists():  # from the rows bundle alone, likewise
        build_format1_bundle(out / ROWS, out / FORMAT1)
    if not cases_only or not (out / NAN).exists():  # from the golden bundle alone, likewise
        build_nan_bundle(bundle, out / NAN)
    if not cases_only or not (out / CONTENT).exists():  # from the golden bundle and the seeded world
        build_content_bundle(bundle, out / CONTENT)
    if not cases_only or not (out / TEXT).exists():  # the seeded world again, with a content encoder
        build_text_bundle(out / TEXT)
    cases = scripts(World(bundle))
    summary = expected_outputs(bundle, cases)
    folder = out / "cases"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for case in cases:
        (folder / f"{case.name}.json").write_text(json.dumps(case.to_dict(), indent=1, ensure_ascii=False) + "\n")
    schema = resources.files(SCHEMA_PACKAGE).joinpath(SCHEMA_FILE).read_bytes()
    index = {"schema_sha256": hashlib.sha256(schema).hexdigest(), "format_version": FORMAT_VERSION,
             "bundle": "bundle", "bundles": {"bundle": list(ENGINES), RANKED: ["onnx"], ROWS: ["onnx"],
                                                 FORMAT1: ["onnx"], NAN: ["onnx"],
                                                 CONTENT: ["onnx"], TEXT: list(ENGINES)}, "cases": [case.name for case in cases], "engines": list(ENGINES),
             "tolerance": {"score": SCORE_TOLERANCE}, "regenerate": "python -m edgerec.export.golden --out spec/golden"}
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    summary["refusals"] = generate_refusals(bundle, out / REFUSALS_FOLDER)["fixtures"]  # from the bundle: same bytes
    for name in ("bundle", RANKED, ROWS, FORMAT1, NAN, CONTENT, TEXT):
        summary[f"{name}_bytes"] = sum(p.stat().st_size for p in (out / name).rglob("*") if p.is_file())
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edgerec.export.golden", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="spec/golden", help="folder for bundle/, ranked/, rows/, refusals/ and cases/ (replaced)")
    parser.add_argument("--cases-only", action="store_true",
                        help="keep the bundles in --out; only refill the cases' expected lists (a policy changed)")
    args = parser.parse_args(argv)
    summary = generate(Path(args.out), cases_only=args.cases_only)
    print(json.dumps(summary, indent=1, default=float))


if __name__ == "__main__":
    main()
