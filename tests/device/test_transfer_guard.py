"""Guards of cross-domain transfer on the device (runtime/transfer.py), from its mutation run (note 20):
the pooled queries of each method by hand, the window of newest source items, and what a transfer
list leaves out, on the golden bundle as both source and target (spec §8)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import Recommender
from edgerec.runtime.space import Bridge, SharedSpace
from edgerec.runtime.transfer import (
    RECENT,
    Transfer,
    bridge_input,
    content_query,
    direct_query,
    direct_scores,
    mapped_query,
    pooled,
)

W = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]], np.float32)
B = np.array([0.5, 0.0, -1.0], np.float32)


def bridge(**kw) -> Bridge:
    return Bridge(**{"source_domain": "audio", "source_space": "s", "weights": W, "bias": B, "users": 3, **kw})


def test_pooling_is_the_unit_mean_in_float32():
    got = pooled(np.array([[3.0, 0.0], [3.0, 8.0]]))
    assert got.dtype == np.float32 and got.tolist() == pytest.approx([0.6, 0.8])
    assert pooled(np.array([[1.0, -1.0], [-1.0, 1.0]])).tolist() == [0.0, 0.0]  # a zero mean stays zero, not NaN
    assert pooled(np.array([[2e-13, 0.0]])).tolist() == pytest.approx([0.2, 0.0])  # below the floor: not scaled up
    assert content_query(np.array([[0.0, 5.0]], np.float32)).tolist() == [0.0, 1.0]
    for bad in (np.zeros((0, 2)), np.zeros(2), np.zeros((1, 2, 2))):
        with pytest.raises(ConfigError, match="at least one item of source-domain history"):
            pooled(bad)


def test_a_bridge_maps_the_pooled_items_then_the_pooled_content_in_that_order():
    items, content = np.array([[3.0, 4.0]]), np.array([[0.0, 2.0], [0.0, 2.0]])
    assert bridge_input(items, bridge()).tolist() == pytest.approx([0.6, 0.8])
    assert bridge_input(items, bridge(), content).tolist() == pytest.approx([0.6, 0.8])  # items: content unread
    wide = bridge(input="items+content")
    assert bridge_input(items, wide, content).tolist() == pytest.approx([0.6, 0.8, 0.0, 1.0])
    with pytest.raises(ConfigError, match="content vectors too"):
        bridge_input(items, wide)


def test_mapping_normalises_the_bridged_query_and_direct_does_not():
    items = np.array([[3.0, 4.0]])
    raw = np.array([0.6, 0.8]) @ W + B  # [1.1, 0.8, 0.2]
    assert mapped_query(items, bridge()).tolist() == pytest.approx((raw / np.linalg.norm(raw)).tolist(), rel=1e-6)
    assert mapped_query(items, bridge()).dtype == np.float32
    prior = np.array([0.25, -0.5], np.float32)
    got = direct_query(items, bridge(prior=prior))
    assert got.dtype == np.float32 and got.tolist() == pytest.approx(raw.tolist(), rel=1e-6)
    with pytest.raises(ConfigError, match="needs a direct bridge"):
        direct_query(items, bridge())
    nothing = bridge(weights=np.zeros((2, 3), np.float32), bias=np.zeros(3, np.float32))
    assert mapped_query(items, nothing).tolist() == [0.0, 0.0, 0.0]  # a zero map: zeros, not NaN
    scores = direct_scores(np.array([1.0, 2.0]), bridge(prior=prior))
    assert scores.dtype == np.float32 and scores.tolist() == [1.25, 1.5]


@pytest.fixture
def pair(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "a.db") as source, \
            Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "v.db") as target:
        yield source, target


@pytest.mark.parametrize("method", ["content", "mapping", "direct"])
def test_a_query_pools_the_newest_50_source_rows_only(pair, method):
    source, target = pair
    transfer = Transfer(source, target, method)
    assert RECENT == 50
    rows = np.r_[np.zeros(30, np.int64), np.arange(1, 51)]  # 30 old plays of row 0, then rows 1..50
    np.testing.assert_array_equal(transfer.query(rows), transfer.query(rows[-50:]))
    assert not np.allclose(transfer.query(rows), transfer.query(rows[:31]))
    space = SharedSpace.of(source.bundle)
    if method == "content":
        want = content_query(np.asarray(space.content[rows[-50:]], np.float32))
    else:
        want = (direct_query if method == "direct" else mapped_query)(
            source.catalog.vectors(rows[-50:]), space.bridge_from(source.manifest, direct=method == "direct"))
    np.testing.assert_allclose(transfer.query(rows), want, rtol=1e-6)


@pytest.mark.parametrize("method", ["content", "mapping", "direct"])
def test_a_transfer_list_leaves_out_what_the_target_user_had_and_removed_items(pair, method):
    source, target = pair
    cat = source.catalog
    for row in (3, 9, 14):
        source.record("ana", cat.item_id(row), "finish")
    transfer = Transfer(source, target, method)
    scores = transfer.scores(np.array([3, 9, 14]))
    assert scores.dtype == np.float32 and len(scores) == target.catalog.base_count
    everything = transfer.recommend("ana", k=10_000)
    assert [r.item_id for r in everything] == [cat.item_id(int(r)) for r in np.argsort(-scores, kind="stable")]
    np.testing.assert_allclose([r.score for r in everything], np.sort(scores)[::-1], rtol=1e-6)
    best = [r.item_id for r in everything]
    target.record("ana", best[0], "finish")
    target.record("ana", best[1], "not_interested")
    target.remove_items([best[2]])
    after = transfer.recommend("ana", k=5)
    assert [r.item_id for r in after] == best[3:8]
    assert len(transfer.recommend("ana", k=10_000)) == len(best) - 3  # no -inf rows padding the list
    reason = after[0].reason
    assert (reason.kind, reason.item_id) == ("transfer", cat.item_id(14))  # the newest source item
    assert reason.text == f"because you enjoyed {cat.title(14)} in audio and video"
    assert "item_id" not in after[0].meta and after[0].title == target.catalog.title(target.catalog.row(best[3]))


def test_items_added_to_the_source_on_the_device_are_not_pooled(pair):
    source, target = pair
    cat = source.catalog
    source.add_items([{"item_id": "new-song", "title": "New song", "vector": np.ones(source.manifest.dim).tolist()}])
    source.record("bo", cat.item_id(5), "finish")
    source.record("bo", "new-song", "finish")
    transfer = Transfer(source, target, "mapping")
    got = transfer.recommend("bo", k=3)
    assert got[0].reason.item_id == cat.item_id(5)  # the newest bundle item, not the added one
    np.testing.assert_array_equal(transfer.scores(np.array([5])),
                                  np.asarray(target.models.scan.scores(transfer.query(np.array([5]))), np.float32))
    assert [r.item_id for r in got] == [r.item_id for r in Transfer(source, target, "mapping").recommend("bo", k=3)]


def test_a_transfer_refuses_a_non_string_method_and_checks_user_and_k(pair):
    source, target = pair
    with pytest.raises(ConfigError, match="unknown transfer method"):
        Transfer(source, target, 1)
    with pytest.raises(ConfigError, match="target must be an open Recommender"):
        Transfer(source, object())
    transfer = Transfer(source, target)
    assert transfer.method == "mapping" and transfer.source_content is None
    with pytest.raises(ConfigError, match="k"):
        transfer.recommend("ana", k=0)
    with pytest.raises(ConfigError, match="k"):
        transfer.recommend("ana", k=10_001)
    with pytest.raises(ConfigError, match="at least one item"):
        transfer.recommend("ana", k=3)


def test_refusals_of_a_bridge_say_what_to_give_or_fit():
    with pytest.raises(ConfigError) as caught:
        bridge_input(np.ones((1, 2)), bridge(input="items+content"))
    assert str(caught.value) == ("this bridge maps the source history's content vectors too; give the source's "
                                 "space.content rows of the history")
    with pytest.raises(ConfigError) as caught:
        direct_query(np.ones((1, 2)), bridge())
    assert str(caught.value) == ("the direct method needs a direct bridge (one with a prior); fit it with "
                                 "`edgerec domains bridge --method direct`")


def test_a_mapping_through_an_items_and_content_bridge_reads_the_content_too():
    wide = bridge(input="items+content", weights=np.vstack([W, np.eye(2, 3, 1, np.float32)]))
    items, content = np.array([[3.0, 4.0]]), np.array([[0.0, 2.0]])
    raw = np.array([0.6, 0.8, 0.0, 1.0]) @ wide.weights + B
    np.testing.assert_allclose(mapped_query(items, wide, content), raw / np.linalg.norm(raw), rtol=1e-6)


def test_direct_scores_add_the_prior_to_the_float32_scan():
    # 1 + 2**-24 - 2**-40 is 1.0 in float32; the prior 2**-39 is below its step, so the sum stays 1.0
    prior = np.array([2.0 ** -39, 0.0], np.float32)
    got = direct_scores(np.array([1 + 2.0 ** -24 - 2.0 ** -40, 0.5]), bridge(prior=prior))
    assert got.tolist() == [1.0, 0.5]


def test_a_transfer_list_is_10_long_by_default(pair):
    source, target = pair
    source.record("ana", source.catalog.item_id(3), "finish")
    assert len(Transfer(source, target, "content").recommend("ana")) == 10


def test_one_item_and_an_item_the_target_user_added_and_watched(pair):
    source, target = pair
    source.record("ana", source.catalog.item_id(3), "finish")
    best = [r.item_id for r in Transfer(source, target, "mapping").recommend("ana", k=2)]
    assert [r.item_id for r in Transfer(source, target, "mapping").recommend("ana", k=1)] == best[:1]
    # an item added on the target device sits past the bundle rows the scores cover: excluding it is a no-op
    target.add_items([{"item_id": "new-film", "title": "New film", "vector": np.ones(target.manifest.dim).tolist()}])
    target.record("ana", "new-film", "finish")
    assert [r.item_id for r in Transfer(source, target, "mapping").recommend("ana", k=2)] == best


def test_refusals_of_a_transfer_say_what_to_pass_and_results_carry_the_targets_metadata(pair):
    source, target = pair
    with pytest.raises(ConfigError) as caught:
        pooled(np.zeros((0, 2)))
    assert str(caught.value) == "a transfer needs at least one item of source-domain history"
    with pytest.raises(ConfigError) as caught:
        Transfer(source, object())
    assert str(caught.value) == "Transfer's target must be an open Recommender (got object)"
    with pytest.raises(ConfigError) as caught:
        Transfer(source, target, "magic")
    assert str(caught.value) == "unknown transfer method 'magic'; use one of content, mapping, direct"
    source.record("ana", source.catalog.item_id(3), "finish")
    for result in Transfer(source, target, "mapping").recommend("ana", k=3):
        meta = target.catalog.meta(target.catalog.row(result.item_id))
        assert result.meta == {k: v for k, v in meta.items() if k not in ("item_id", "title")} and result.meta


@pytest.mark.parametrize("without", ["source", "target"])
def test_the_content_method_needs_content_vectors_in_both_bundles(pair, monkeypatch, without):
    """Either bundle alone without space.content is refused at once, not at the first request."""
    source, target = pair
    bare = {"source": source, "target": target}[without].bundle
    of = SharedSpace.of.__func__

    def space_of(cls, bundle):
        space = of(cls, bundle)
        return replace(space, content=None) if bundle is bare else space

    monkeypatch.setattr(SharedSpace, "of", classmethod(space_of))
    with pytest.raises(ConfigError, match=r"^the content method needs both bundles to carry space\.content vectors; "
                                          r"export them with `edgerec domains space`, or use method='mapping'$"):
        Transfer(source, target, "content")
    assert Transfer(source, target, "mapping").method == "mapping"  # the other methods do not read them


@pytest.mark.parametrize("change, message", [
    (lambda c: np.where(np.arange(len(c))[:, None] == 31, np.nan, c).astype(c.dtype), "finite float16 or float32"),
    (lambda c: (c * 100).astype(np.int64), "finite float16 or float32"),
    (lambda c: c[:, :0], "expected one row per item"),
])
def test_a_broken_content_array_is_refused_not_ranked(bundle_copy, change, message):
    """One NaN row made every content score NaN and the list empty; integer content scored ~84 for cosines;
    a (56, 0) array scored every item 0 and listed rows in order."""
    from bundle_edit import replace_array

    from edgerec.errors import BundleError

    replace_array(bundle_copy, "space/content.npy", change(np.load(bundle_copy / "space" / "content.npy")))
    with Recommender.open(bundle_copy) as rec, pytest.raises(BundleError, match=message):
        SharedSpace.of(rec.bundle)


def test_a_bridge_that_maps_to_zero_is_refused_at_the_request(bundle_copy, tmp_path):
    """All-zero bridge weights gave a 'personal' list of rows 0..5, each scored 0.0."""
    from bundle_edit import replace_array

    for name in ("space/bridge0.weights.npy", "space/bridge0.bias.npy"):
        replace_array(bundle_copy, name, np.zeros_like(np.load(bundle_copy / name)))
    with Recommender.open(bundle_copy, history=tmp_path / "s.db") as source, Recommender.open(bundle_copy) as target:
        for item in ("i29", "i30"):
            source.record("x", item, "finish")
        with pytest.raises(ConfigError, match="query vector is zero or not finite"):
            Transfer(source, target, "mapping").recommend("x", 5)
