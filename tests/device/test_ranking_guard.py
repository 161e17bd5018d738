"""Guards of the ranking section on the device (runtime/ranking.py): which scorer a bundle may ship, when
the scorer and the context stage run, what the context lift and the engagement pull add, and which rows
a tag choice matches; with stand-ins for the bundle, the catalog and the request."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.runtime.policies import Policy
from edgerec.runtime.ranking import (
    ContextPrior,
    ContextStage,
    ScorerStage,
    engagement_pull,
    engagement_weight,
    open_scorer,
    rows_with_tags,
)
from edgerec.runtime.scorer import SCORER_VERSION, scorer_names
from edgerec.runtime.vocab import MODALITIES

DIM = 2
NAMES = scorer_names(DIM)


class Bundle:
    """Serves the scorer arrays by file name and records how each was asked for."""

    def __init__(self, arrays):
        self.arrays, self.asked = arrays, []

    def array(self, name, **how):
        self.asked.append((name, how))
        return self.arrays[name]


class Manifest:
    def __init__(self, ranking, ranker=None):
        self.ranking, self.dim, self.ranker, self.asked = ranking, DIM, ranker, []

    def model(self, role, fmt=None):
        self.asked.append((role, fmt))
        return self.ranker if role == "ranker" else None


def scorer_arrays(n=None):
    n = len(NAMES) if n is None else n
    weights = np.linspace(-1.0, 1.0, n)
    return {"w.npy": weights, "m.npy": np.full(n, 0.5), "s.npy": np.full(n, 2.0), "b.npy": np.array([0.25])}


def models(version=SCORER_VERSION, features=NAMES, arrays=None, ranker=None, backend="onnx"):
    spec = {"features": list(features), "arrays": {"weights": "w.npy", "mean": "m.npy", "scale": "s.npy",
                                                    "intercept": "b.npy"}}
    if version is not None:
        spec["version"] = version
    return NS(manifest=Manifest({"scorer": spec}, ranker), bundle=Bundle(arrays or scorer_arrays()),
              backend_name=backend)


def opened(ns):
    return open_scorer(ns.manifest, ns.bundle)


def test_a_valid_scorer_opens_from_in_memory_arrays_and_scores_by_its_weights():
    m = models()
    scorer = open_scorer(m.manifest, m.bundle)
    assert scorer.names == NAMES
    assert sorted(name for name, _ in m.bundle.asked) == ["b.npy", "m.npy", "s.npy", "w.npy"]
    assert not any(how.get("mmap", True) for _, how in m.bundle.asked)  # read into memory: a few small arrays
    features = np.ones((1, len(NAMES)))
    by_hand = float(((features - 0.5) * np.linspace(-1.0, 1.0, len(NAMES)) / 2.0).sum() + 0.25)
    assert scorer.score(features)[0] == pytest.approx(by_hand)


def test_no_scorer_section_opens_no_scorer():
    assert open_scorer(Manifest({}), Bundle({})) is None
    assert open_scorer(Manifest({"scorer": {}}), Bundle({})) is None


@pytest.mark.parametrize("version, said", [(None, 1), (1, 1), (3, 3)])
def test_a_scorer_of_another_features_version_is_refused_naming_both(version, said):
    with pytest.raises(BundleError) as err:
        opened(models(version=version))
    assert str(err.value) == (f"the bundle's scorer was trained on scorer features version {said}, this runtime "
                              f"computes version {SCORER_VERSION}; re-train it (`edgerec scorer train`) and export "
                              "the bundle again")


def test_a_scorer_of_other_feature_names_is_refused_with_both_counts():
    with pytest.raises(BundleError) as err:
        opened(models(features=NAMES[:-1]))
    assert str(err.value) == (f"the bundle's scorer uses {len(NAMES) - 1} features that are not the {len(NAMES)} "
                              "this runtime computes; export the bundle with this edgerec version")
    with pytest.raises(BundleError):  # the same count in another order
        opened(models(features=NAMES[1:] + NAMES[:1]))


@pytest.mark.parametrize("arrays", [scorer_arrays(len(NAMES) - 1),  # ValueError: a weight short
                                    {**scorer_arrays(), "s.npy": np.zeros(len(NAMES))},  # ValueError: scale 0
                                    {**scorer_arrays(), "b.npy": np.zeros(0)},  # IndexError: no intercept
                                    {**scorer_arrays(), "w.npy": None}],  # TypeError: no weights at all
                         ids=["short", "zero scale", "no intercept", "none"])
def test_unusable_scorer_arrays_are_a_bundle_error_without_the_numpy_trace(arrays):
    with pytest.raises(BundleError, match=r"^the bundle's scorer arrays are unusable \(.+\); re-export the bundle$") \
            as err:
        opened(models(arrays=arrays))
    assert err.value.__cause__ is None and err.value.__suppress_context__


def request(cold=False, use_scorer=None, use_ranker=True, **more):
    return NS(cold=cold, policy=Policy(use_scorer=use_scorer, use_ranker=use_ranker), fallback=None, **more)


def test_the_scorer_runs_by_default_only_where_no_deep_ranker_does():
    plain, ranked = ScorerStage(models(backend="tflite")), ScorerStage(models(ranker=object()))
    assert plain.scorer is not None and plain.applies(request())
    assert plain.models.manifest.asked == [("ranker", "tflite")]  # the ranker of this request's engine
    assert not ranked.applies(request())
    assert ranked.applies(request(use_ranker=False))
    assert ranked.applies(request(use_scorer=True))
    for stage in (plain, ranked):
        assert not stage.applies(request(use_scorer=False))
        assert not stage.applies(request(cold=True, use_scorer=True))
    plain.models.manifest.ranking = {}  # a bundle without a scorer: nothing to run even when asked
    assert not plain.applies(request(use_scorer=True))


def prior(weight=0.3, **spec):
    ranking = {"context_prior": {"modalities": ["podcast_episode", "karaoke", "film"],
                                 "device": {"tv": [1.0, 5.0, 2.0]},
                                 "day_part": {"evening": [0.5, 5.0, 0.25], "night": [-1.0, 0.0, 0.0]}, **spec}}
    if weight is not None:
        ranking["context_prior"]["weight"] = weight
    return ContextPrior.from_manifest(Manifest(ranking))


def test_the_context_lift_adds_the_day_part_and_the_device_in_the_runtimes_modality_order():
    lift = prior().lift(1, 20.0)  # device 1 = "tv", 20 h = evening; "karaoke" is no modality of the runtime
    expected = np.zeros(len(MODALITIES))
    expected[MODALITIES.index("podcast_episode")], expected[MODALITIES.index("film")] = 1.5, 2.25
    assert lift.tolist() == expected.tolist()
    assert prior().lift(-1, 20.0).tolist() == (expected - [2.0, 0, 0, 0, 1.0]).tolist()  # no device: day part only
    assert prior().lift(4, 20.0).tolist() == prior().lift(-1, 20.0).tolist()  # past the known devices: the same
    assert prior().lift(0, 9.0).tolist() == [0.0] * len(MODALITIES)  # phone, morning: neither is in the bundle
    assert prior().lift(3, 24.0 + 5.9)[MODALITIES.index("podcast_episode")] == -1.0  # 29.9 h reads 5.9 h: night


def test_the_context_prior_reads_its_weight_or_none():
    assert prior().weight == 0.3 and prior(weight=None).weight == 0.0 and isinstance(prior(weight=1).weight, float)
    assert ContextPrior.from_manifest(Manifest({})) is None
    assert ContextPrior.from_manifest(Manifest({"context_prior": {}})) is None


def context_request(policy, modality, fallback=None, scorer=None):
    table = NS(modality=np.asarray(modality))
    return NS(policy=policy, fallback=fallback, device=1, hour=20.0, pool=np.array([2, 0, 1]), scorer=scorer,
              catalog=NS(feature_table=lambda: table), relevance=np.array([1.0, 2.0, 3.0]))


def test_the_context_stage_boosts_by_each_rows_modality_and_the_chosen_weight():
    stage = ContextStage(Manifest({}))
    assert stage.prior is None and stage.weight(context_request(Policy(context_weight=2.0), [0])) == 0.0
    assert not stage.applies(context_request(Policy(context_weight=2.0), [0]))
    stage.prior = prior()
    film, podcast = MODALITIES.index("film"), MODALITIES.index("podcast_episode")
    req = context_request(Policy(), [podcast, film, -1])  # rows 0, 1, 2; the pool is rows 2, 0, 1
    assert stage.weight(req) == 0.3 and stage.applies(req)
    assert stage(req).relevance.tolist() == pytest.approx([1.0, 2.0 + 0.3 * 1.5, 3.0 + 0.3 * 2.25])
    chosen = context_request(Policy(context_weight=2.0), [podcast, film, -1])
    assert stage.weight(chosen) == 2.0 and stage(chosen).relevance.tolist() == pytest.approx([1.0, 5.0, 7.5])
    assert not stage.applies(context_request(Policy(context_weight=0.0), [0]))
    assert not stage.applies(context_request(Policy(), [0], fallback="the encoder failed"))
    assert not stage.applies(context_request(Policy(), [0], scorer=object()))  # its features hold the context
    stage.prior = prior(weight=0.0)
    assert not stage.applies(context_request(Policy(), [0]))
    assert stage.applies(context_request(Policy(context_weight=0.5), [0]))


def test_the_engagement_weight_is_the_policys_else_the_bundles_else_none():
    assert engagement_weight(request(), Manifest({"engagement": 0.4})) == 0.4
    assert engagement_weight(request(), Manifest({})) == 0.0
    chosen = NS(policy=Policy(engagement=2))
    assert engagement_weight(chosen, Manifest({"engagement": 0.4})) == 2.0
    assert isinstance(engagement_weight(chosen, Manifest({})), float)


def pull_request(loved, finished):
    vectors = np.arange(20, dtype=np.float64).reshape(10, 2) ** 2  # row r: (4r^2, (2r+1)^2)
    return NS(state=NS(loved=list(loved), finished=list(finished)), catalog=NS(vectors=lambda rows: vectors[rows]))


def test_likes_pull_at_full_weight_and_finishes_at_half_the_last_five_of_each():
    vectors = np.arange(20, dtype=np.float64).reshape(10, 2) ** 2
    loved, finished = [0, 1, 2, 3, 4, 5], [9, 8, 7, 6, 5, 4]
    pull = engagement_pull(pull_request(loved, finished), 2.0)
    by_hand = vectors[loved[-5:]].mean(0) * 2.0 + vectors[finished[-5:]].mean(0) * 2.0 * 0.5
    assert pull.tolist() == pytest.approx(by_hand.tolist())
    only = engagement_pull(pull_request([], finished), 2.0)
    assert only.tolist() == pytest.approx((vectors[finished[-5:]].mean(0)).tolist())
    assert engagement_pull(pull_request([3], []), 0.5).tolist() == pytest.approx((vectors[3] * 0.5).tolist())
    assert engagement_pull(pull_request(loved, finished), 0.0) is None
    assert engagement_pull(pull_request([], []), 1.0) is None


def test_a_tag_choice_matches_bundle_rows_and_added_items_carrying_any_chosen_tag():
    asked = []

    def rows_with(tags):
        asked.append(list(tags))
        return np.array([True, False, False])

    catalog = NS(tag_column=NS(rows_with=rows_with), base_count=3,
                 added=[NS(meta={"tags": ["jazz", "live"]}), NS(meta={}), NS(meta={"tags": ["rock"]}),
                        NS(meta={"tags": ["folk"]})])
    matched = rows_with_tags(catalog, ["rock", "live"])
    assert matched.dtype == bool and matched.tolist() == [True, False, False, True, False, True, False]
    assert asked == [["rock", "live"]]


def test_a_kept_scorer_side_of_other_tag_codes_is_read_again_with_the_likes():
    """The user's kept scorer side numbers tags by the codes it was built with; when a request of an older
    catalog version rebuilt the shared codes in between, the side is read again, likes included."""
    from pathlib import Path

    from edgerec.runtime import Recommender
    from edgerec.runtime.ranking import device_featurizer

    context = {"now": 1.767e9, "hour": 20.5}
    with Recommender.open(Path(__file__).resolve().parents[2] / "spec" / "golden" / "ranked", history=None,
                          backend="onnx") as rec:
        cat = rec.catalog
        for row in (3, 11, 19):
            rec.record("u", cat.item_id(row), "finish", timestamp=context["now"] - 100 + row)
        rec.record("u", cat.item_id(27), "like", timestamp=context["now"] - 50)
        older = cat.snapshot()
        rec.add_items([{"item_id": "new", "title": "New", "vector": cat.vectors([5])[0].tolist()}])
        policy = Policy(use_scorer=True, use_ranker=False)
        first = [(r.item_id, r.score) for r in rec.recommend("u", k=6, context=context, policy=policy)]
        device_featurizer(older)  # an in-flight request of the older version numbers the tags anew
        again = [(r.item_id, r.score) for r in rec.recommend("u", k=6, context=context, policy=policy)]
        assert again == first and "scorer_fallback" not in rec.stats()["counters"]
