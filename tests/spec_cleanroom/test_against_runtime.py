"""Beyond the golden cases: seeded random event scripts (histories, feedback, onboarding, catalog
updates, policies, filters, contexts) played through the clean-room reader and through the
reference runtime (edgerec.runtime) must give the same lists. The reader encodes the spec text, so a
runtime change the text does not describe, or text the runtime does not do, fails here even where no
golden case looks. The reader still imports nothing of edgerec; this test does."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgerec.errors import EdgerecError
from edgerec.runtime.golden import Case, run_case

_spec = importlib.util.spec_from_file_location("spec_cleanroom_reader_rt", Path(__file__).with_name("reader.py"))
reader = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reader)

BUNDLE = reader.SPEC / "golden" / "bundle"
RANKED = reader.SPEC / "golden" / "ranked"  # the same items with a ranker and a scorer
TEXT = reader.SPEC / "golden" / "text"  # the same items with a content encoder (§7b)
NOW = 1763598915.0
EVENTS = ("play", "finish", "like", "skip", "not_interested", "more_like_this")
POLICIES = ({}, {"diversity": 0.4}, {"max_per_creator": 2}, {"max_per_genre": 1, "diversity": 0.2},
            {"freshness": 2.0, "freshness_days": 90.0}, {"popularity": -1.5}, {"hub_penalty": 1.0},
            {"fairness": 1.5}, {"fairness": 0.5, "fairness_method": "cap"}, {"keep_top": 2, "diversity": 0.6},
            {"language_boost": 1.0}, {"feedback_weight": 2.0}, {"short_list": 7}, {"engagement": 0.0},
            {"context_weight": 1.0}, {"keep_top": 3, "freshness": 3.0, "freshness_days": 365.0},
            {"fairness": 0.6, "fairness_method": "cap", "diversity": 0.3, "max_per_genre": 1})
FILTERS = (None, None, {"languages": ["en"]}, {"genres": ["jazz", "romance"]}, {"exclude_genres": ["travel"]},
           {"max_duration_s": 400.0}, {"modalities": ["music_track", "podcast_episode"]}, {"kids_safe": True})


RANKING = ({}, {}, {"use_ranker": False}, {"use_scorer": True}, {"use_scorer": False},
           {"use_ranker": False, "use_scorer": False})


def script(rng: random.Random, ids: list[str], ranking: tuple[dict, ...] = ({},)) -> list[dict]:
    user, steps = "u", []
    if rng.random() < 0.4:
        kind, value = rng.choice([("genres", "jazz"), ("genres", "travel"), ("languages", "hi"), ("tags", "dark"),
                                  ("tags", "jazz")])  # a tag choice that names a genre matches the genre column too
        steps.append({"op": "onboard", "user": user, kind: [value]})
    for _ in range(rng.choice([0, 0, 1, 2, 4, 6, 9])):
        event = rng.choices(EVENTS, [3, 4, 1, 1, 1, 1])[0]
        steps.append({"op": "record", "user": user, "item": rng.choice(ids), "event": event})
    if rng.random() < 0.3:
        vector = [rng.uniform(-1, 1) for _ in range(8)]
        steps.append({"op": "add_items", "items": [
            {"item_id": "v2", "title": "V", "genre": "travel", "language": "hi", "vector": vector,
             "popularity": rng.choice([0.0, 5.0, 500.0]), "release_ts": NOW - rng.randint(-5, 90) * 86_400},
            {"item_id": "e9", "title": "E", "series_id": "s01", "episode": 5, "genre": "romance",
             "modality": rng.choice(["series_episode", "short_video", ""]), "duration": 1200.0},
            {"item_id": "n1", "title": "N", "creator": "Leo Kline", "genre": "jazz", "tags": ["bebop"]},
            {"item_id": rng.choice(ids), "title": "U", "genre": "travel", "tags": ["islands"]}]})
        steps.append({"op": "record", "user": user, "item": rng.choice(["v2", "e9"]), "event": "finish"})
    if rng.random() < 0.2:
        steps.append({"op": "remove_items", "items": rng.sample(ids, 2)})
    if rng.random() < 0.2:
        steps.append({"op": "onboard", "user": user, "items": [rng.choice(ids)]})
    for _ in range(2):
        context = {"now": NOW - rng.randint(0, 60) * 86_400, "hour": rng.choice([2.0, 8.0, 14.0, 20.5, 23.75, 24.0])}
        if rng.random() < 0.5:
            context["device"] = rng.choice(["phone", "tv", "tablet", "web"])
        step = {"op": "recommend", "user": user, "k": rng.choice([3, 5, 8, 12]), "context": context}
        policy, filters = {**rng.choice(POLICIES), **rng.choice(ranking)}, rng.choice(FILTERS)
        step.update({"policy": policy} if policy else {}, **({"filters": filters} if filters else {}))
        steps.append(step)
    return steps


WORDS = ("jazz night thriller dark hackers island quiet rain café olé travel épica smooth bebop tense amnesia "
         "東京の夜 zyxwv record slow evenings romance letters mountains walkthroughs").split()


def metadata_steps(rng: random.Random, ids: list[str]) -> list[dict]:
    """§7b: items added with metadata only (short and long texts, none at all, a bundle creator or series
    to blend with), then tag steps on texts, on added items and on bundle items."""
    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))
    items = []
    for j in range(rng.randint(1, 4)):
        item = {"item_id": f"m{j}", "genre": rng.choice(["jazz", "travel", "golden-new"])}
        if rng.random() < 0.8:
            item["title"] = words(rng.randint(1, 5))
        if rng.random() < 0.6:
            item["description"] = words(rng.choice([0, 3, 12, 40])) if rng.random() < 0.9 else None
        if rng.random() < 0.6:
            item["tags"] = rng.sample(["jazz", "dark", "travel", "tense", "bebop"], rng.randint(0, 3))
        if rng.random() < 0.3:
            item["creator"] = rng.choice(["Leo Kline", "Studio Lund", "nobody"])
        if rng.random() < 0.2:
            item["series_id"] = rng.choice(["s01", "s02"])
        items.append(item)
    steps = [{"op": "add_items", "items": items}]
    for _ in range(2):
        target = rng.choice([{"text": words(rng.choice([1, 6, 30]))}, {"item_id": rng.choice(items)["item_id"]},
                             {"item_id": rng.choice(ids)}])
        steps.append({"op": "tag", "k": rng.choice([1, 3, 5, 12]), **target})
    return steps


def summary(lists: list[list[dict] | dict]) -> list[list[tuple]]:
    """Each list as tuples; a tag step's labels as one tuple and its tags as (tag, score) pairs."""
    return [[("labels " + json.dumps(one["labels"], sort_keys=True), 0.0, None, None, None, None)] + [
        (t["tag"], t["score"], None, None, None, None) for t in one["tags"]] if isinstance(one, dict) else
            [(r["item_id"], r["score"], r["reason"], r["reason_item"], r["tags"], r.get("scorer_score"))
             for r in one] for one in lists]


@pytest.fixture(scope="module")
def bundle() -> reader.Bundle:
    return reader.Bundle(BUNDLE)


@pytest.fixture(scope="module")
def ranked() -> reader.Bundle:
    return reader.Bundle(RANKED)


@pytest.mark.parametrize("seed", range(6))
def test_the_reader_and_the_runtime_agree_on_random_scripts(bundle, seed):
    agree(bundle, BUNDLE, random.Random(seed), ({},))


@pytest.mark.parametrize("seed", range(4))
def test_they_agree_with_a_ranker_and_a_scorer(ranked, seed):
    """The ranked bundle: the ranker's and the scorer's features on random histories, contexts, added
    items (with and without popularity, release, a known modality) and ranking policies."""
    agree(ranked, RANKED, random.Random(100 + seed), RANKING)


@pytest.mark.parametrize("seed", range(4))
def test_they_agree_on_items_added_with_metadata_only(seed):
    """The text bundle (§7b): metadata-only items take the content encoder's vectors (blended for a
    series or creator match), rank among the rest, and tag steps give the same labels and scores."""
    agree(reader.Bundle(TEXT), TEXT, random.Random(400 + seed), ({},), metadata=True)


def agree(bundle: reader.Bundle, path: Path, rng: random.Random, ranking: tuple[dict, ...],
          metadata: bool = False) -> None:
    for _ in range(10):
        steps = script(rng, bundle.strings["ids"], ranking)
        if metadata:  # before the requests, after the history
            at = next(i for i, s in enumerate(steps) if s["op"] == "recommend")
            steps[at:at] = metadata_steps(rng, bundle.strings["ids"])
        try:
            expected = run_case(path, Case("random", "", json.loads(json.dumps(steps))), "onnx")
        except EdgerecError:  # e.g. an id removed, then recorded: the reader must refuse it too
            with pytest.raises(reader.SpecError):
                list(reader.play(reader.Runtime(bundle), {"steps": [{**s, "expected": []} for s in steps]}))
            continue
        got = [lists for _, lists, _ in reader.play(reader.Runtime(bundle),
                                                    {"steps": [{**s, "expected": []} for s in steps]})]
        assert len(got) == len(expected), json.dumps(steps)
        for one, other in zip(summary(got), summary(expected)):
            assert [r[0] for r in one] == [r[0] for r in other], json.dumps(steps)
            for mine, ref in zip(one, other):
                assert abs(mine[1] - ref[1]) <= 1e-4 and mine[2:5] == ref[2:5], json.dumps(steps)
                assert (mine[5] is None) == (ref[5] is None), json.dumps(steps)
                assert mine[5] is None or abs(mine[5] - ref[5]) <= 1e-4, json.dumps(steps)


@pytest.fixture(scope="module")
def as_text(tmp_path_factory) -> dict[str, Path]:
    """Format 4 copies (tags as text in compressed blocks) of both golden bundles (format 5: tag codes)."""
    from edgerec.export.convert import convert_bundle

    root = tmp_path_factory.mktemp("format4")
    return {name: convert_bundle(path, root / name, format_version=4)
            for name, path in (("bundle", BUNDLE), ("ranked", RANKED))}


@pytest.mark.parametrize("seed", range(3))
def test_they_agree_on_tags_stored_as_text(as_text, seed):
    """The older format: the reader reads format 4's tag text from the spec text alone, the runtime
    through its text tags; the same tags as format 5's codes, and the same lists."""
    for name, path, ranking in (("bundle", BUNDLE, ({},)), ("ranked", RANKED, RANKING)):
        copy, coded = reader.Bundle(as_text[name]), reader.Bundle(path)
        assert copy.manifest["format_version"] == 4 and "tags" in copy.manifest["items"]["strings"]
        assert coded.manifest["format_version"] >= 5 and "tags" in coded.manifest["items"]
        assert copy.strings["tags"] == coded.strings["tags"]
        agree(copy, as_text[name], random.Random(200 + seed), ranking)


@pytest.fixture(scope="module")
def constant(tmp_path_factory) -> Path:
    """A format 6 copy of the golden bundle whose creator, provider, series, episode and duration
    columns each hold one value for every item: stored as constants in the manifest, no files."""
    import shutil

    from bundle_edit import flatten_columns

    from edgerec.device_tests.scale import scaled_bundle
    from edgerec.runtime.bundle import Bundle as RuntimeBundle

    root = tmp_path_factory.mktemp("format6")
    shutil.copytree(BUNDLE, root / "flat")
    flatten_columns(root / "flat", {"creator": -1, "provider": 1, "series_id": -1, "episode": 0, "duration": 240.0})
    source = RuntimeBundle.open(root / "flat")
    return scaled_bundle(source, source.manifest.items.count, root / "v6", format_version=6)


@pytest.mark.parametrize("seed", range(3))
def test_they_agree_on_columns_stored_as_constants(constant, seed):
    """Format 6: the reader rebuilds each constant column's rows from the spec text alone, the runtime
    through its repeated view; the same metadata and the same lists."""
    bundle = reader.Bundle(constant)
    items = bundle.manifest["items"]
    assert bundle.manifest["format_version"] == 6 and items["numeric"]["duration"] == {"constant": 240.0}
    assert items["categorical"]["provider"]["constant"] == 1 and "codes" not in items["categorical"]["creator"]
    assert set(bundle.num["duration"]) == {240.0} and set(bundle.cat["creator"]) == {None}
    agree(bundle, constant, random.Random(300 + seed), ({},))


def test_the_reader_refuses_an_onboarding_genre_whose_items_were_all_removed_as_the_runtime_does(tmp_path):
    """§2: onboarding takes values an active item holds (a genre whose items were all removed steered nothing)."""
    from edgerec.runtime import Recommender

    clean = reader.Runtime(reader.Bundle(BUNDLE))
    cat = clean._catalog()
    genre = cat["genre"][0]
    gone = [i for i, g in zip(cat["ids"], cat["genre"]) if g == genre]
    clean.remove_items(gone)
    with pytest.raises(reader.SpecError, match="active item"):
        clean.onboard("u", genres=[genre])
    with Recommender.open(BUNDLE, history=tmp_path / "h.db") as rec:
        rec.remove_items(gone)
        with pytest.raises(EdgerecError, match=genre):
            rec.onboard("u", genres=[genre])


@pytest.mark.parametrize("call", [
    lambda r: r.recommend("u", k=3, filters={"modalities": ["audiobook"]}),  # §5: not one of the five names
    lambda r: r.recommend("u", k=3, filters={"modalities": ["Film"]}),  # compared exactly
    lambda r: r.onboard("u", tags=[""]),  # §2: tags are non-empty strings
], ids=["unknown-modality", "miscased-modality", "empty-tag"])
def test_the_reader_refuses_what_the_runtime_refuses(tmp_path, call):
    """Audit I1: the reader accepted these (an empty list; a stored empty tag) where the runtime refuses."""
    from edgerec.runtime import Filters, Recommender

    with pytest.raises(reader.SpecError):
        call(reader.Runtime(reader.Bundle(BUNDLE)))
    with Recommender.open(BUNDLE, history=tmp_path / "h.db") as rec:
        runtime = SimpleNamespace(recommend=lambda user, k, filters: rec.recommend(user, k, filters=Filters(**filters)),
                                  onboard=rec.onboard)
        with pytest.raises(EdgerecError):
            call(runtime)


@pytest.mark.parametrize("days", [0.3, 1.0])
def test_the_freshness_group_counts_in_the_cut_whether_or_not_a_release_is_near(tmp_path, days):
    """§4: with freshness the short list keeps want + 20 * (liked_used + 1). The runtime counted the group only
    when a row of any score (a seen one too) was in the window: scores moved by 0.19 on the window alone."""
    from edgerec.runtime import Policy, Recommender

    bundle = reader.Bundle(BUNDLE)
    ids, released = bundle.strings["ids"], bundle.num["release_ts"]
    newest = ids[int(released.argmax())]
    ctx = {"now": float(released.max()) + 86_400, "hour": 13.0}  # 0.9 days: no release; 3 days: a seen one
    policy = {"freshness": 0.5, "freshness_days": days}
    clean = reader.Runtime(bundle)
    with Recommender.open(BUNDLE, history=tmp_path / "h.db") as rec:
        for item in ("i01", "i02", "i03", newest):
            rec.record("u", item, "play")
            clean.record("u", item, "play")
        got = [(r.item_id, round(float(r.score), 4)) for r in rec.recommend("u", k=3, context=ctx, policy=Policy(**policy))]
    assert got == [(r["item_id"], round(r["score"], 4)) for r in clean.recommend("u", 3, ctx, None, policy)]
