"""Responsible ranking: the interpretable scorer, explanations, exposure fairness, feedback and context."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from stand_ins import ProviderCatalog

from edgerec.cli.main import cli
from edgerec.runtime import Policy, Recommender
from edgerec.runtime.fairness import exposure, fair_relevance, gini, provider_cap, provider_lift
from edgerec.runtime.history import HistoryStore
from edgerec.runtime.scorer import FEATURES, LinearScorer
from edgerec.runtime.vocab import MODALITIES

pytestmark = pytest.mark.usefixtures("fixed_history_clock")  # events recorded at fixed times near 1.79e9

NOW = 1_790_000_000.0
OFF = {"context_weight": 0.0, "engagement": 0.0}  # the new behaviours off: today's lists


@pytest.fixture(scope="module")
def scorer_bundle(tiny_bundle, tmp_path_factory):
    """The tiny bundle's model with an interpretable scorer trained for it (ONNX only, to save time)."""
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset
    from edgerec.export.bundle_builder import ExportConfig, export_bundle
    from edgerec.models.ranker import RankerConfig
    from edgerec.models.scorer import fit_scorer

    root = tmp_path_factory.mktemp("scorer")
    data, ckpt = tiny_bundle.parent / "data", tiny_bundle.parent / "ckpt"
    dataset = load_dataset(data)
    info = fit_scorer(dataset, leave_last_out(dataset), ckpt, root / "scorer", RankerConfig(events_per_user=8))
    export_bundle(ckpt, data, root / "bundle", ExportConfig(formats=("onnx",), parity_users=100, evaluate=False,
                                                            min_top10_agreement=0.8, hubness=False),
                  scorer=root / "scorer")
    # hubness=False: the column is left out (the default tiny bundle carries it: test_hubness.py)
    assert "hubness" not in json.loads((root / "bundle" / "manifest.json").read_text())["items"]["numeric"]
    return root / "bundle", info


def watch(rec, user, rows, event="finish", start=NOW - 10_000):
    for i, row in enumerate(rows):
        rec.record(user, rec.catalog.item_id(int(row)), event, timestamp=start + i)


def ids(results):
    return [r.item_id for r in results]


# ---------------------------------------------------------------- the scorer

def test_contributions_add_up_to_the_score_exactly():
    rng = np.random.default_rng(0)
    n = len(FEATURES)
    scorer = LinearScorer(FEATURES, rng.normal(size=n), rng.normal(size=n), rng.uniform(0.1, 2, n), 0.37)
    feats = rng.normal(size=(100, n)) * 5
    parts = scorer.contributions(feats)
    assert parts.shape == (100, n + 1)
    np.testing.assert_allclose(parts.sum(1), scorer.score(feats), atol=1e-6, rtol=0)
    np.testing.assert_allclose(parts[:, -1], 0.37)
    with pytest.raises(ValueError, match="finite"):
        LinearScorer(FEATURES, np.full(n, np.nan), np.zeros(n), np.ones(n))


def test_the_scorer_ships_as_plain_arrays_and_ranks_on_the_device(scorer_bundle, tmp_path):
    bundle, info = scorer_bundle
    manifest = json.loads((bundle / "manifest.json").read_text())
    spec = manifest["ranking"]["scorer"]
    assert spec["features"] == list(FEATURES) + [f"taste match {i}" for i in range(16)]  # dim 16
    for name in spec["arrays"].values():
        assert name.endswith(".npy") and name in manifest["files"]
        np.load(bundle / name, allow_pickle=False)  # numbers only
    assert {"NDCG@10 retrieval only", "NDCG@10 with scorer"} <= set(info["validation"])
    with Recommender.open(bundle, history=tmp_path / "h.db") as rec:
        watch(rec, "ann", range(30, 42))
        got = rec.recommend("ann", k=10, context={"now": NOW, "device": "tv", "hour": 21},
                            policy=replace(rec.policy, language_boost=0.0, **OFF))
        assert "scorer" in rec.stats()["stages"]
        scores = [r.meta["scorer_score"] for r in got]
        for r in got:  # each item's terms add up to its scorer score, and the list follows that score
            assert abs(sum(r.meta["contributions"].values()) - r.meta["scorer_score"]) < 1e-6
            assert r.reason.kind == "scorer" and "(+" in r.reason.text
        assert scores == sorted(scores, reverse=True)
        plain = rec.recommend("ann", k=10, context={"now": NOW}, policy=replace(rec.policy, use_scorer=False))
        assert "contributions" not in plain[0].meta


def test_host_and_device_compute_the_same_scorer_features(scorer_bundle, tiny_bundle, tmp_path):
    """One Featurizer, two item sides (the data set's columns and the bundle's): same numbers."""
    from edgerec.data.split import leave_last_out
    from edgerec.data.store import load_dataset
    from edgerec.models.evaluation import train_popularity
    from edgerec.models.ranker import item_table
    from edgerec.models.scorer import host_featurizer
    from edgerec.runtime.ranking import device_featurizer

    bundle, _ = scorer_bundle
    dataset = load_dataset(tiny_bundle.parent / "data")
    split = leave_last_out(dataset)
    with Recommender.open(bundle, history=tmp_path / "h.db") as rec:
        cat = rec.catalog
        vectors = cat.vectors(np.arange(len(cat)))
        host = host_featurizer(dataset, item_table(dataset.catalog, train_popularity(split)), vectors)
        device = device_featurizer(cat)
        history, cands, liked = np.arange(20, 60), np.arange(100, 200), np.array([20, 25])
        args = (vectors[5], vectors[cands], cands, history, 8.5, 0, int(NOW), liked)
        a, b = host(*args), device(*args)
    assert a.shape == (100, len(FEATURES) + 16)
    np.testing.assert_allclose(a[:, len(FEATURES):], vectors[cands] * vectors[5], atol=1e-6)
    np.testing.assert_allclose(a[:, FEATURES.index("retrieval score")], vectors[cands] @ vectors[5], atol=1e-6)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a[:, FEATURES.index("tag match")].max() > 0 and a[:, FEATURES.index("genre match")].max() > 0
    known = dataset.catalog.text["modality"]
    for cell in ("phone", "morning"):  # device 0 at 8:30: one cell per item of a known modality
        cells = [FEATURES.index(f"{cell} x {m}") for m in MODALITIES]
        assert a[:, cells].sum(1).tolist() == [float(known[c] in MODALITIES) for c in cands]


def test_explain_prints_contributions_and_plots(scorer_bundle, tmp_path):
    bundle, _ = scorer_bundle
    db = tmp_path / "h.db"
    with Recommender.open(bundle, history=db) as rec:
        watch(rec, "bo", range(50, 60))
    png = tmp_path / "bo.png"
    result = CliRunner().invoke(cli, ["explain", str(bundle), "--user", "bo", "--history", str(db), "--k", "5",
                                      "--device", "tv", "--plot", str(png), "--json", str(tmp_path / "bo.json")])
    assert result.exit_code == 0, result.output
    assert "scorer score = sum of contributions" in result.output
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    items = json.loads((tmp_path / "bo.json").read_text())
    assert len(items) == 5
    assert all(abs(sum(i["contributions"].values()) - i["score"]) < 1e-6 for i in items)
    assert all("taste match" in i["contributions"] and "retrieval score" in i["contributions"] for i in items)


def test_explain_refuses_a_bundle_without_a_scorer(tiny_bundle, tmp_path):
    HistoryStore(tmp_path / "h.db").record("x", "i00001", "play")
    result = CliRunner().invoke(cli, ["explain", str(tiny_bundle), "--user", "x", "--history", str(tmp_path / "h.db")])
    assert result.exit_code != 0 and "no interpretable scorer" in result.output


# ---------------------------------------------------------------- exposure and fair re-ranking

def test_gini_and_discounted_exposure():
    assert gini([1, 1, 1, 1]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 1]) == pytest.approx(0.75)
    shares = exposure([["a", "a"], ["b"]], ["a", "b", "c"])
    total = 1 + 1 / np.log2(3) + 1
    assert shares == pytest.approx({"a": (1 + 1 / np.log2(3)) / total, "b": 1 / total, "c": 0.0})


def test_fair_relevance_trades_relevance_for_provider_exposure():
    relevance = np.r_[np.linspace(3, 2, 10), np.linspace(1.9, 1.0, 10), [-np.inf]]
    providers = np.array(["big"] * 10 + [f"p{i}" for i in range(10)] + ["p0"])
    lift = np.where(providers == "big", 2.0, -1.0)
    z = (relevance[:20] - relevance[:20].mean()) / relevance[:20].std()
    assert fair_relevance(relevance, lift, 0.0)[:20] == pytest.approx(z)  # weight 0: relevance only
    fair = fair_relevance(relevance, lift, 1.5)
    assert fair[:20] == pytest.approx(z - 1.5 * 0.15 * lift[:20]) and fair[20] == -np.inf  # never listed
    top = np.argsort(-fair, kind="stable")[:10]
    assert 1 <= (providers[top] == "big").sum() < 10  # small providers' items moved into the ten
    assert provider_cap(10, 0.0) == 10 and provider_cap(10, 0.7) == 3 and provider_cap(10, 1.0) == 1


def test_provider_lift_is_the_clipped_log_share_over_an_equal_one():
    # providers 0, 2, 3, 4 (code 1 unused) with plays 50, 25, 25, 0; an item without a provider played 900
    cat = ProviderCatalog([0, 0, 2, 3, 4, -1], [30, 20, 25, 25, 0, 900])
    codes, lift = provider_lift(cat)
    assert list(codes) == [0, 0, 2, 3, 4, -1]
    # shares 0.5, 0.25, 0.25, 0 against an equal 0.25: log 2, 0, 0, log 0 clipped to -2; code -1 reads 0
    assert lift[codes] == pytest.approx([np.log(2), np.log(2), 0.0, 0.0, -2.0, 0.0])
    heavy = ProviderCatalog([0, 2], [1e6, 1.0])  # of two providers, one holds nearly all plays: just under log 2
    assert provider_lift(heavy)[1][0] == pytest.approx(np.log(2 * 1e6 / (1e6 + 1)))
    crowd = ProviderCatalog(list(range(20)), [1e6] + [1.0] * 19)
    assert provider_lift(crowd)[1][0] == pytest.approx(2.0) and provider_lift(crowd)[1][1] == pytest.approx(-2.0)
    assert not provider_lift(ProviderCatalog([0, 2, -1], [0, 0, 5]))[1].any()  # no plays by any provider: no lift
    bad = provider_lift(ProviderCatalog([0, 2, 3], [10, -5, np.nan]))[1]  # negative or missing counts count as none
    assert bad[[0, 2, 3]] == pytest.approx([np.log(3), -2.0, -2.0])


def test_the_fairness_weight_spreads_providers_in_the_device_list(tiny_bundle, tmp_path):
    with Recommender.open(tiny_bundle, history=tmp_path / "h.db") as rec:
        watch(rec, "cy", range(100, 120))

        def top_provider_count(policy):
            got = rec.recommend("cy", k=10, context={"now": NOW}, policy=policy)
            return max(np.unique([r.meta["provider"] for r in got], return_counts=True)[1])

        base = top_provider_count(rec.policy)
        assert top_provider_count(replace(rec.policy, fairness=2.0)) < base
        cap = replace(rec.policy, fairness=0.8, fairness_method="cap")
        assert top_provider_count(cap) <= provider_cap(10, 0.8)


def test_fair_re_ranking_keeps_the_policys_caps_and_diversity(tiny_bundle, tmp_path):
    with Recommender.open(tiny_bundle, history=tmp_path / "h.db") as rec:
        watch(rec, "cy", range(100, 120))

        def creators(policy):
            got = rec.recommend("cy", k=10, context={"now": NOW}, policy=policy)
            return [r.meta["creator"] for r in got]

        assert len(set(creators(replace(rec.policy, fairness=1.0)))) < 10  # the pool repeats creators
        capped = creators(replace(rec.policy, fairness=1.0, max_per_creator=1))
        assert len(capped) == 10 and len(set(capped)) == 10

        def genres(policy):
            return [r.meta["genre"] for r in rec.recommend("cy", k=6, context={"now": NOW}, policy=policy)]

        baseline = replace(rec.policy, fairness=0.5, fairness_method="cap")
        assert len(set(genres(baseline))) < 6  # the pool repeats genres
        one_each = genres(replace(baseline, max_per_genre=1))
        assert len(one_each) == 6 and len(set(one_each)) == 6  # the cap baseline keeps the genre cap


def test_fairness_report_tables_json_and_plot(tiny_bundle, tmp_path):
    out = tmp_path / "fair.json"
    result = CliRunner().invoke(cli, ["report", "fairness", str(tiny_bundle), "--data",
                                      str(tiny_bundle.parent / "data"), "--users", "25", "--json", str(out),
                                      "--plot", str(tmp_path / "fair.png"), "--weights", "0.5,2"])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert set(record["exposure"]) == {"provider", "language", "modality"}
    assert sum(record["exposure"]["provider"].values()) == pytest.approx(1.0)
    assert sum(record["popularity_bucket"].values()) == pytest.approx(1.0)
    assert {s["segment"] for s in record["segments"]} == {"activity", "language", "device"}
    assert sum(s["users"] for s in record["segments"] if s["segment"] == "device") == 25
    curve = {(p["method"], p["weight"]): p for p in record["trade_off"]}
    assert set(curve) == {(m, w) for m in ("exposure", "cap") for w in (0.0, 0.5, 2.0)}
    assert curve[("exposure", 2.0)]["provider_gini"] < curve[("exposure", 0.0)]["provider_gini"]
    assert (tmp_path / "fair.png").read_bytes()[:4] == b"\x89PNG"
    assert "exposure share by provider" in result.output


@pytest.mark.parametrize("weights", ["", "0.5,x", "-1", "nan", "1,200"])
def test_fairness_report_refuses_weights_it_cannot_use(tiny_bundle, weights):
    result = CliRunner().invoke(cli, ["report", "fairness", str(tiny_bundle), "--data",
                                      str(tiny_bundle.parent / "data"), "--weights", weights])
    assert result.exit_code == 2 and "comma-separated weights from 0 to 100" in result.output


# ---------------------------------------------------------------- feedback and context

def test_a_like_pulls_harder_than_a_play(tiny_bundle, tmp_path):
    with Recommender.open(tiny_bundle, history=tmp_path / "h.db") as rec:
        history = list(range(200, 212))
        for user, last in (("plays", "play"), ("likes", "like")):
            watch(rec, user, history[:-2])
            watch(rec, user, history[-2:], event=last, start=NOW - 100)
        ctx = {"now": NOW}
        plays, likes = rec.recommend("plays", k=10, context=ctx), rec.recommend("likes", k=10, context=ctx)
        assert ids(plays) != ids(likes)
        # the liked items' neighbourhood rises for the `like` user
        liked = rec.catalog.vectors(np.array(history[-2:])).mean(0)
        def sim(got):
            return np.mean(rec.catalog.vectors(np.array([rec.catalog.row(r.item_id) for r in got])) @ liked)
        assert sim(likes) > sim(plays)
        off = replace(rec.policy, engagement=0.0)
        assert ids(rec.recommend("plays", k=10, context=ctx, policy=off)) == \
            ids(rec.recommend("likes", k=10, context=ctx, policy=off))


def test_context_priors_shift_the_list_towards_what_the_moment_favours(tiny_bundle, tmp_path):
    long_form = {"film", "series_episode"}
    with Recommender.open(tiny_bundle, history=tmp_path / "h.db") as rec:
        prior = rec.manifest.ranking["context_prior"]
        assert prior["device"]["tv"][0] > prior["device"]["phone"][0]  # films: tv over phone, from the log
        watch(rec, "dee", range(300, 315))
        morning = rec.recommend("dee", k=20, context={"now": NOW, "device": "phone", "hour": 8})
        night = rec.recommend("dee", k=20, context={"now": NOW, "device": "tv", "hour": 22})
        assert ids(morning) != ids(night)
        def share(got):
            return np.mean([r.meta["modality"] in long_form for r in got])
        assert share(night) > share(morning)
        still = replace(rec.policy, context_weight=0.0)
        assert ids(rec.recommend("dee", k=20, context={"now": NOW, "device": "phone", "hour": 8}, policy=still)) \
            == ids(rec.recommend("dee", k=20, context={"now": NOW, "device": "tv", "hour": 22}, policy=still))


def test_a_bundle_without_the_ranking_section_keeps_todays_lists(tiny_bundle, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(tiny_bundle, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest.pop("ranking")
    (old / "manifest.json").write_text(json.dumps(manifest))
    ctx = {"now": NOW, "device": "tv", "hour": 22}
    lists = []
    for bundle, policy in ((old, None), (tiny_bundle, Policy(**OFF))):
        with Recommender.open(bundle, history=tmp_path / f"{bundle.name}.db") as rec:
            watch(rec, "eve", range(400, 410))
            watch(rec, "eve", [410], event="like", start=NOW - 50)
            lists.append(ids(rec.recommend("eve", k=10, context=ctx, policy=policy)))
            assert "context" not in rec.stats()["stages"]
    assert lists[0] == lists[1]


def test_onboarding_tags_pull_items_with_that_tag(tiny_bundle, tmp_path):
    with Recommender.open(tiny_bundle, history=tmp_path / "h.db") as rec:
        cat = rec.catalog
        genres = set(cat.categorical["genre"][1])
        counts = cat.tag_counts(list(range(len(cat))))
        tag = next(t for t, n in counts.most_common() if t not in genres and n < len(cat) // 10)
        plain = rec.recommend("new", k=10, context={"now": NOW})
        rec.onboard("newer", tags=[tag])
        steered = rec.recommend("newer", k=10, context={"now": NOW})
        def tagged(got):
            return sum(tag in cat.tags(cat.row(r.item_id)) for r in got)
        assert tagged(steered) > tagged(plain) and tagged(steered) >= 5


def test_onboard_add_and_remove_items_from_the_cli(tiny_bundle, tmp_path):
    db = str(tmp_path / "dev.db")
    runner = CliRunner()
    got = runner.invoke(cli, ["onboard", str(tiny_bundle), "--user", "fay", "--tag", "heist", "--genre", "comedy",
                              "--history", db])
    assert got.exit_code == 0, got.output
    items = tmp_path / "items.json"
    items.write_text(json.dumps([{"item_id": "n1", "title": "Night Heist", "genre": "comedy", "tags": ["heist"]}]))
    got = runner.invoke(cli, ["add-items", str(tiny_bundle), "--items", str(items), "--history", db])
    assert got.exit_code == 0 and "n1" in got.output, got.output
    with Recommender.open(tiny_bundle, history=db) as rec:
        assert rec.history.preferences("fay")["tag"] == ["heist"]
        assert rec.catalog.meta(rec.catalog.row("n1"))["tags"] == ["heist"]
        victim = rec.recommend("fay", k=10, context={"now": NOW})[0].item_id
    got = runner.invoke(cli, ["remove-items", str(tiny_bundle), "n1", victim, "--history", db])
    assert got.exit_code == 0, got.output
    with Recommender.open(tiny_bundle, history=db) as rec:
        listed = ids(rec.recommend("fay", k=50, context={"now": NOW}))
        assert "n1" not in listed and victim not in listed
    bad = runner.invoke(cli, ["add-items", str(tiny_bundle), "--items", "-", "--history", db], input="{nope")
    assert bad.exit_code != 0 and "not valid JSON" in bad.output


def test_series_features_name_the_series_you_watch_and_its_next_episode():
    from edgerec.runtime.features import EXTRA, ItemTable, ranker_features

    n = 6  # rows 0, 1: episodes 1 and 3 of series 2 (watched); 2: episode 4; 3: episode 2; 4: series 5; 5: none
    table = ItemTable(modality=np.zeros(n, np.int64), duration=np.ones(n, np.float32),
                      popularity=np.ones(n, np.float32), release_ts=np.zeros(n, np.int64),
                      language=np.zeros(n, np.int64), creator=np.zeros(n, np.int64),
                      series=np.array([2, 2, 2, 2, 5, -1]), episode=np.array([1, 3, 4, 2, 1, 0]))
    cands = np.arange(2, 6)
    feats = ranker_features(np.ones(4, np.float32), np.ones((4, 4), np.float32), cands, table, np.array([0, 1]),
                            12.0, 0, 1_000)
    col = feats.shape[1] - 3  # the last three: in a watched series, next episode, bias
    assert feats[:, col].tolist() == [1, 1, 0, 0] and feats[:, col + 1].tolist() == [1, 0, 0, 0]
    assert feats.shape[1] == 4 + 1 + EXTRA


def _reseal(bundle, name):
    """Record a changed file's checksum and size in the manifest, as a careless tool would."""
    from edgerec.runtime.bundle import sha256_file

    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": sha256_file(bundle / name), "bytes": (bundle / name).stat().st_size}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_an_unusable_scorer_is_refused_when_the_bundle_opens(scorer_bundle, tmp_path):
    from edgerec.errors import BundleError

    bundle = shutil.copytree(scorer_bundle[0], tmp_path / "zero-scale")
    manifest = json.loads((bundle / "manifest.json").read_text())
    scale = manifest["ranking"]["scorer"]["arrays"]["scale"]
    np.save(bundle / scale, np.zeros(len(manifest["ranking"]["scorer"]["features"])))
    _reseal(bundle, scale)
    with pytest.raises(BundleError, match="scales must be positive"):
        Recommender.open(bundle, history=str(tmp_path / "a.db"))
    np.save(bundle / scale, np.ones(3))  # the wrong length
    _reseal(bundle, scale)
    with pytest.raises(BundleError, match="arrays are unusable"):
        Recommender.open(bundle, history=str(tmp_path / "b.db"))
    other = shutil.copytree(scorer_bundle[0], tmp_path / "renamed")
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["ranking"]["scorer"]["features"][0] = "something else"
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="not the .* this runtime computes"):
        Recommender.open(other, history=str(tmp_path / "c.db"))


@pytest.mark.parametrize("version", [None, 1, 3])
def test_a_scorer_of_other_feature_definitions_is_refused(scorer_bundle, tmp_path, version):
    """Version 1 scorers read a modality indicator as 'retrieval score': their weights mean something else."""
    from edgerec.errors import BundleError

    bundle = shutil.copytree(scorer_bundle[0], tmp_path / "old")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["ranking"]["scorer"]["version"] == 2
    if version is None:
        del manifest["ranking"]["scorer"]["version"]
    else:
        manifest["ranking"]["scorer"]["version"] = version
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=f"version {version or 1}.*re-train"):
        Recommender.open(bundle, history=str(tmp_path / "h.db"))


def test_tag_match_is_the_recent_share_of_each_candidates_tags_even_when_the_last_has_none():
    from edgerec.runtime.scorer import Featurizer, ScorerSide, TagCodes

    tags = {0: ("heist", "crime"), 1: ("crime",), 2: ("space",), 3: (), 4: ("crime", "space"), 5: (),
            6: ("opera", "jazz", "crime")}
    featurize = Featurizer(None, None, TagCodes(lambda row: tags[row], len(tags)), None)
    recent = np.array([0, 1, 2])  # crime twice, heist once, space once
    side = ScorerSide(None, len(recent), None, featurize.tag_profile(recent))  # kept between requests
    got = featurize._tag_match(np.array([4, 0, 3, 2, 5]), side)
    np.testing.assert_allclose(got, [(2 + 1) / (3 * 2), (1 + 2) / (3 * 2), 0.0, 1 / 3, 0.0])
    assert featurize._tag_match(np.array([3, 5]), side).tolist() == [0.0, 0.0]
    # tags first met among later candidates (opera, jazz) count 0 in the history kept before them
    np.testing.assert_allclose(featurize._tag_match(np.array([6, 4]), side), [(0 + 0 + 2) / (3 * 3), (2 + 1) / (3 * 2)])
    assert featurize.tag_profile(np.array([3, 5])) is None


def test_tag_codes_stay_right_when_the_decoded_rows_are_forgotten(monkeypatch):
    import edgerec.runtime.scorer as scorer_module

    monkeypatch.setattr(scorer_module, "TAG_ROWS_KEPT", 4)
    tags = {row: tuple(f"t{row % 3}" for _ in range(row % 4)) + (("x",) if row % 2 else ()) for row in range(40)}
    codes = scorer_module.TagCodes(lambda row: tags[row], len(tags))
    rng = np.random.default_rng(1)
    for _ in range(30):  # batches larger and smaller than what is kept, rows repeated within a batch
        rows = rng.integers(0, 40, rng.integers(1, 7))
        got = codes.matrix(rows)
        for row, line in zip(rows.tolist(), got):
            assert line[0] == len(tags[row])
            assert [t for c in line[1: 1 + line[0]] for t, v in codes.vocab.items() if v == c] == list(tags[row])
            assert (line[1 + line[0]:] == -1).all()


def test_a_kept_scorer_side_reads_tags_as_the_featurizer_numbers_them(tiny_bundle):
    """Tag codes are numbered in the order rows are first decoded, once per catalog version; a
    request of an older snapshot rebuilds them, and the version it left rebuilds them again. A user
    side kept from before must not be read with the new numbering."""
    from edgerec.runtime.bundle import Bundle
    from edgerec.runtime.catalog import AddedItem, ItemCatalog
    from edgerec.runtime.ranking import device_featurizer

    cat = ItemCatalog(Bundle.open(tiny_bundle))
    old = cat.snapshot()  # a request that began before the catalog changed
    history, liked, pool = np.arange(20, 40), np.array([21, 22]), np.arange(500, 600)
    items = old.vectors(pool)
    args = (items.mean(0), items, pool, history, 21.0, 1, 1_790_000_000, liked)
    kept = device_featurizer(old).side(history, liked)  # what the user's cache entry keeps
    cat.add(AddedItem("new", np.full(items.shape[1], items.shape[1] ** -0.5, np.float32), {"title": "n"}))
    device_featurizer(cat.snapshot())  # a request on the new catalog
    again = device_featurizer(old)  # the old snapshot's next request: its tag codes built anew
    np.testing.assert_array_equal(again(*args, kept), again(*args))


def test_the_scorers_kept_user_side_follows_a_new_like(scorer_bundle, tmp_path):
    from edgerec.runtime import Stage
    from edgerec.runtime.scorer import _LIKE

    with Recommender.open(scorer_bundle[0], history=tmp_path / "h.db") as rec:
        seen = []
        rec.pipeline.insert_after("scorer", Stage("peek", lambda r: seen.append(r.scorer_features[:, _LIKE]) or r,
                                                  required=False))
        watch(rec, "ivy", range(500, 510))
        for _ in range(2):  # the second request reuses the user's side
            rec.recommend("ivy", k=10, context={"now": NOW})
        watch(rec, "ivy", [511], event="like", start=NOW - 10)
        rec.recommend("ivy", k=10, context={"now": NOW})
        assert len(seen) == 3 and not seen[0].any() and not seen[1].any() and seen[2].any()


def test_an_added_item_of_unknown_popularity_reads_as_a_typical_item_to_the_ranker_and_scorer(tiny_bundle, tmp_path):
    # at 0 plays the learned rankers put new items at the end of every short list: on the quick demo
    # world a new item by the creator of each user's first item reached 0 of 120 top 10s (ranker) and
    # 2 of 120 (scorer); with the median 1 and 11 (its scan alone: 31)
    with Recommender.open(tiny_bundle, history=tmp_path / "h.db") as rec:
        cat = rec.catalog
        bundle_pop = cat.numeric_column("popularity", np.arange(cat.base_count))
        rec.add_items([{"item_id": "new-a", "title": "A", "genre": cat.meta(0).get("genre")},
                       {"item_id": "new-b", "title": "B", "genre": cat.meta(0).get("genre"), "popularity": 7.0}])
        table = cat.feature_table()
        rows = np.array([cat.row("new-a"), cat.row("new-b")])
        assert table.popularity[rows].tolist() == [np.float32(np.median(bundle_pop)), 7.0]
        assert table.log_pop_max == pytest.approx(np.log1p(bundle_pop.max()), rel=1e-6)


@pytest.mark.parametrize("count", [1, 19])
def test_a_scorer_or_ranker_is_not_fitted_on_a_handful_of_groups(count):
    """One candidate group fitted a scorer that ranked it perfectly and meant nothing; both models refuse."""
    from edgerec.errors import DataError
    from edgerec.models.ranker import RankerConfig, RankerExamples, train_ranker
    from edgerec.models.scorer import ScorerConfig, train_scorer

    rng = np.random.default_rng(0)
    groups = rng.normal(size=(count, 5, len(FEATURES))).astype(np.float32)
    weights = np.ones(count, np.float32)
    plural = "group" if count == 1 else "groups"
    with pytest.raises(DataError, match=f"^{count} candidate {plural} to fit the scorer on, and it needs at least 20"):
        train_scorer(groups, weights, ScorerConfig())
    examples = RankerExamples(groups, weights, weights, np.zeros((0, len(FEATURES)), np.float32))
    with pytest.raises(DataError, match=f"^{count} candidate {plural} to fit the ranker on"):
        train_ranker(examples, RankerConfig(epochs=1))
    scorer, info = train_scorer(rng.normal(size=(20, 5, len(FEATURES))), np.ones(20), ScorerConfig(steps=5))
    assert info["groups"] == 20 and len(scorer.weights) == len(FEATURES)


@pytest.mark.parametrize("top", ["0", "-1"])
def test_explain_refuses_a_count_of_contributions_below_one(tiny_bundle, tmp_path, top):
    """--top -1 printed every contribution but the last (a slice), --top 0 none."""
    result = CliRunner().invoke(cli, ["explain", str(tiny_bundle), "--user", "bo", "--history", str(tmp_path / "h.db"),
                                      "--top", top])
    assert result.exit_code == 2 and "Invalid value for '--top'" in result.output
    assert not (tmp_path / "h.db").exists()


def test_fairness_reads_items_by_id_and_studies_refuse_a_bundle_of_other_data(tiny_bundle, tmp_path):
    """The fairness study mapped bundle rows to the data's items by position: the same lists on a reordered catalog
    gave a long-tail share of 0.82 where it was 0.11. A bundle of other data with the same ids was replayed as if
    its own."""
    import numpy as np

    from edgerec.data.schema import Dataset
    from edgerec.data.store import load_dataset, save_dataset

    data = load_dataset(tiny_bundle.parent / "data")
    perm = np.random.default_rng(1).permutation(data.n_items)
    inverse = np.empty(data.n_items, np.int64)
    inverse[perm] = np.arange(data.n_items)
    log = data.interactions.take(np.arange(len(data.interactions)))
    log.item = inverse[log.item].astype(np.int32)
    save_dataset(Dataset(data.catalog.subset(perm), log, data.user_ids, dict(data.meta)), tmp_path / "reordered")
    records = []
    for folder in (tiny_bundle.parent / "data", tmp_path / "reordered"):
        out = tmp_path / f"{folder.name}.json"
        result = CliRunner().invoke(cli, ["report", "fairness", str(tiny_bundle), "--data", str(folder), "--users",
                                          "25", "--weights", "1", "--json", str(out)])
        assert result.exit_code == 0, result.output
        records.append(json.loads(out.read_text()))
    assert records[0]["popularity_bucket"] == records[1]["popularity_bucket"]
    assert records[0]["exposure"] == records[1]["exposure"]
    fewer = Dataset(data.catalog, data.interactions.take(np.arange(len(data.interactions) - 5)), data.user_ids,
                    dict(data.meta))
    save_dataset(fewer, tmp_path / "other")
    result = CliRunner().invoke(cli, ["study", "replay", str(tiny_bundle), "--data", str(tmp_path / "other"),
                                      "--users", "5"])
    assert result.exit_code != 0 and "the bundle was built on other data than --data (" in result.output
    save_dataset(fewer, tmp_path / "cs" / "data")
    result = CliRunner().invoke(cli, ["study", "coldstart", "--data", str(tmp_path / "cs" / "data"), "--out",
                                      str(tmp_path / "cs"), "--prepare"])
    assert result.exit_code == 2 and "--out/data is the --data folder" in result.output
