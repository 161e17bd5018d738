"""Shared spaces and transfer of interest on the device, on hand-made bundles (scores worked out by hand)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgerec.errors import BundleError, ConfigError, ExportError, SpaceMismatchError
from edgerec.export.space import BridgeFile, declare_space
from edgerec.models.transfer import (
    LinearBridge,
    consumed_matrix,
    fit_bridge,
    fit_direct_bridge,
    hashed_text_vectors,
)
from edgerec.runtime import Recommender
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.space import SharedSpace
from edgerec.runtime.transfer import Transfer

SOURCE = np.array([[1, 0], [0, 1], [1, 0], [0.6, 0.8]], np.float32)  # audio items a0-a3
TARGET = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0.6, 0.8], [0.6, 0, 0.8]], np.float32)  # video v0-v4
SOURCE_CONTENT = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], np.float32)
TARGET_CONTENT = np.array([[1, 0, 0, 0], [0.6, 0.8, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0]],
                          np.float32)
# every source vector goes to the z axis of the target: a user of a0 and a1 is pointed at v2, v3, v4
BRIDGE = LinearBridge(np.array([[0, 0, 1], [0, 0, 1]], np.float32), np.zeros(3, np.float32), 7)


@pytest.fixture
def pair(handmade_bundle, tmp_path):
    """(source, target) bundles in one space 'media-v1'; the target carries a bridge from the source."""
    source = declare_space(handmade_bundle(SOURCE), tmp_path / "audio", space_id="media-v1", domains=["audio"],
                           anchor="hashed-words-256", content=SOURCE_CONTENT)
    target = declare_space(handmade_bundle(TARGET), tmp_path / "video", space_id="media-v1", domains=["video"],
                           anchor="hashed-words-256", content=TARGET_CONTENT,
                           bridges=[BridgeFile("audio", source.manifest.embedding_space, BRIDGE)])
    return source.root, target.root


def listen(rec, user, items):
    for item in items:
        rec.record(user, item, "finish")


def test_mapping_scores_the_target_with_the_bridged_pooled_history(pair):
    with Recommender.open(pair[0]) as audio, Recommender.open(pair[1]) as video:
        listen(audio, "ana", ["i0", "i1"])
        results = Transfer(audio, video, "mapping").recommend("ana", k=3)
        assert [r.item_id for r in results] == ["i2", "i3", "i4"]
        np.testing.assert_allclose([r.score for r in results], [1.0, 0.8, 0.8], rtol=1e-6)
        assert results[0].reason.kind == "transfer" and results[0].reason.item_id == "i1"
        assert "in audio" in results[0].reason.text
        listen(video, "ana", ["i2"])  # what the user already watched in the target is left out
        assert [r.item_id for r in Transfer(audio, video, "mapping").recommend("ana", k=3)] == ["i3", "i4", "i0"]


def test_content_scores_the_target_in_the_shared_content_space(pair):
    with Recommender.open(pair[0]) as audio, Recommender.open(pair[1]) as video:
        listen(audio, "bo", ["i0", "i1"])
        results = Transfer(audio, video, "content").recommend("bo", k=2)
        assert [r.item_id for r in results] == ["i0", "i1"]
        np.testing.assert_allclose([r.score for r in results], [1.0, 0.6], rtol=1e-3)  # float16 vectors
        with pytest.raises(ConfigError, match="at least one item"):
            Transfer(audio, video, "content").recommend("nobody", k=2)
        with pytest.raises(ConfigError, match="unknown transfer method"):
            Transfer(audio, video, "magic")


def test_bundles_in_different_spaces_are_never_mixed(pair, handmade_bundle, tmp_path):
    other_id = declare_space(handmade_bundle(SOURCE), tmp_path / "other", space_id="music-only", domains=["audio"],
                             anchor="hashed-words-256", content=SOURCE_CONTENT)
    other_anchor = declare_space(handmade_bundle(SOURCE), tmp_path / "anchor", space_id="media-v1",
                                 domains=["audio"], anchor="encoder-0123", content=SOURCE_CONTENT)
    plain = handmade_bundle(SOURCE)
    with Recommender.open(pair[1]) as video:
        for bundle, message in ((other_id.root, "music-only anchored by hashed-words-256 vs media-v1"),
                                (other_anchor.root, "encoder-0123"), (plain, "declares no shared space")):
            with Recommender.open(bundle) as audio, pytest.raises(SpaceMismatchError, match=message):
                Transfer(audio, video, "content")
    # the same space, but the bridge was fit on another export of the source: its vectors are foreign
    retrained = declare_space(handmade_bundle(SOURCE * 0.5), tmp_path / "retrained", space_id="media-v1",
                              domains=["audio"], anchor="hashed-words-256", content=SOURCE_CONTENT)
    with Recommender.open(retrained.root) as audio, Recommender.open(pair[1]) as video:
        with pytest.raises(SpaceMismatchError, match="no bridge from bundle"):
            Transfer(audio, video, "mapping")
        assert Transfer(audio, video, "content").method == "content"  # the content space is still shared


def test_the_space_section_is_data_checked_like_the_rest(pair, handmade_bundle, tmp_path):
    target = Bundle.open(pair[1])
    before = Bundle.open(handmade_bundle(TARGET))
    assert target.manifest.embedding_space == before.manifest.embedding_space  # the items' space is unchanged
    space = SharedSpace.of(target)
    assert (space.id, space.domains, space.bridges[0].users) == ("media-v1", ["video"], 7)
    assert space.content.dtype == np.float16 and space.content.shape == (5, 4)
    raw = json.loads((pair[1] / "manifest.json").read_text())
    assert raw["space"]["bridges"][0]["weights"] in raw["files"]
    with pytest.raises(ConfigError, match="^space id 'not a name!' must be 1 to 64 letters"):  # before the copy
        declare_space(pair[1], tmp_path / "bad-id", space_id="not a name!", domains=["video"])
    with pytest.raises(ExportError, match="5 items"):
        declare_space(pair[1], tmp_path / "rows", space_id="media-v1", domains=["video"], content=SOURCE_CONTENT)
    with pytest.raises(SpaceMismatchError, match="declares no shared space"):
        SharedSpace.of(before)
    weights = pair[1] / raw["space"]["bridges"][0]["weights"]
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(BundleError, match="sha256"):
        Bundle.open(pair[1])


def test_redeclaring_a_space_replaces_its_files(pair, tmp_path):
    again = declare_space(pair[1], tmp_path / "again", space_id="media-v2", domains=["video"])
    assert "content" not in again.manifest.space and not any(n.startswith("space/") for n in again.manifest.files)
    assert not (again.root / "space" / "content.npy").exists()


def test_fit_bridge_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    weights, bias = rng.normal(size=(4, 3)), rng.normal(size=3)
    fitted = fit_bridge(x, x @ weights + bias, ridge=1e-9)
    np.testing.assert_allclose(fitted.weights, weights, atol=1e-5)
    np.testing.assert_allclose(fitted.bias, bias, atol=1e-5)
    assert fitted.users == 200
    with pytest.raises(ConfigError, match="at least 2 users"):
        fit_bridge(x[:1], x[:1])


def test_hashed_words_share_a_space_without_a_vocabulary():
    a = hashed_text_vectors(["A dark jazz track. In Spanish.", "A dark crime film. In Spanish."])
    b = hashed_text_vectors(["A dark crime film. In Spanish."])
    np.testing.assert_array_equal(a[1], b[0])  # the same text, the same vector, in any call
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    assert a[0] @ a[1] > 0.5  # five of seven words shared
    unrelated = hashed_text_vectors(["Upbeat pop"])[0]
    assert abs(float(unrelated @ a[0])) < a[0] @ a[1]


# a direct bridge: a0 and a1 pooled ([0.707, 0.707]) map to q = [0, 1.414, 0], not normalised; the prior
# then lifts v4 and v2 above v0, which the scan alone ties at 0
DIRECT = LinearBridge(np.array([[0, 1, 0], [0, 1, 0]], np.float32), np.zeros(3, np.float32), 9,
                      np.array([0.1, 0.1, 0.2, 0.0, 0.3], np.float32))


def test_direct_scores_the_scan_of_the_unnormalised_query_plus_the_prior(pair, handmade_bundle, tmp_path):
    source = Bundle.open(pair[0]).manifest.embedding_space
    both = declare_space(handmade_bundle(TARGET), tmp_path / "both", space_id="media-v1", domains=["video"],
                         anchor="hashed-words-256", bridges=[BridgeFile("audio", source, BRIDGE),
                                                             BridgeFile("audio", source, DIRECT)])
    raw = json.loads((both.root / "manifest.json").read_text())
    assert "prior" not in raw["space"]["bridges"][0] and raw["space"]["bridges"][1]["prior"] in raw["files"]
    with Recommender.open(pair[0]) as audio, Recommender.open(both.root) as video:
        listen(audio, "cy", ["i0", "i1"])
        results = Transfer(audio, video, "direct").recommend("cy", k=4)
        assert [r.item_id for r in results] == ["i1", "i3", "i4", "i2"]
        root2 = 2 ** 0.5
        np.testing.assert_allclose([r.score for r in results], [root2 + 0.1, 0.6 * root2, 0.3, 0.2], rtol=1e-5)
        # the mapping still takes the bridge without a prior
        assert [r.item_id for r in Transfer(audio, video, "mapping").recommend("cy", k=3)] == ["i2", "i3", "i4"]
    with Recommender.open(pair[0]) as audio, Recommender.open(pair[1]) as video:
        with pytest.raises(SpaceMismatchError, match="no direct bridge from bundle .* --method direct"):
            Transfer(audio, video, "direct")
    short = LinearBridge(DIRECT.weights, DIRECT.bias, 9, DIRECT.prior[:4])
    with pytest.raises(ExportError, match="prior for 4 items, the bundle has 5"):
        declare_space(handmade_bundle(TARGET), tmp_path / "short", space_id="media-v1", domains=["video"],
                      bridges=[BridgeFile("audio", source, short)])


def test_a_bridge_with_nan_is_refused_at_export_and_at_open(pair, handmade_bundle, tmp_path):
    """A NaN in a bridge would drop items from every transfer list silently: refused both ways."""
    import hashlib

    source = Bundle.open(pair[0]).manifest.embedding_space
    bad = LinearBridge(DIRECT.weights, DIRECT.bias, 9, np.r_[DIRECT.prior[:4], np.nan].astype(np.float32))
    with pytest.raises(ExportError, match="NaN or infinite"):
        declare_space(handmade_bundle(TARGET), tmp_path / "nan", space_id="media-v1", domains=["video"],
                      bridges=[BridgeFile("audio", source, bad)])
    good = declare_space(handmade_bundle(TARGET), tmp_path / "good", space_id="media-v1", domains=["video"],
                         bridges=[BridgeFile("audio", source, DIRECT)])
    raw = json.loads((good.root / "manifest.json").read_text())
    name = raw["space"]["bridges"][0]["prior"]
    np.save(good.root / name, np.r_[DIRECT.prior[:4], np.inf].astype(np.float32))  # written by a faulty tool,
    data = (good.root / name).read_bytes()  # checksums and all
    raw["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (good.root / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="NaN or infinite"):
        SharedSpace.of(Bundle.open(good.root))


def test_fit_direct_bridge_recovers_item_scores_and_their_prior():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4))
    items = np.linalg.qr(rng.normal(size=(12, 3)))[0]  # 12 target items, 3 wide
    weights, prior = rng.normal(size=(4, 3)), rng.random(12)
    scores = (x - x.mean(0)) @ weights @ items.T + prior
    fitted = fit_direct_bridge(x, scores, items, ridge=1e-9)
    np.testing.assert_allclose(fitted.prior, prior, atol=1e-5)
    np.testing.assert_allclose(fitted.weights, weights, atol=1e-4)
    np.testing.assert_allclose((x @ fitted.weights + fitted.bias) @ items.T + fitted.prior, scores, atol=1e-4)
    with pytest.raises(ConfigError, match="a column per target item"):
        fit_direct_bridge(x, scores[:, :11], items)
    matrix = consumed_matrix([np.array([2, 0, 2]), np.array([], np.int64), np.array([1])], 3)
    np.testing.assert_array_equal(matrix.toarray(), [[1, 0, 1], [0, 0, 0], [0, 1, 0]])  # a repeat counts once


# an items+content bridge maps [pooled items, pooled content]: a0 and a1 pool to [0.707, 0.707] and, in
# content, to [1, 0, 0, 0]; only the first content row is non-zero here, so q = [0, 0, 1] (not normalised)
BOTH = LinearBridge(np.array([[0, 0, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0]], np.float32),
                    np.zeros(3, np.float32), 9, np.array([0.05, 0, 0, 0, 0.01], np.float32))


def test_an_items_and_content_bridge_maps_both_pooled_histories(pair, handmade_bundle, tmp_path):
    source = Bundle.open(pair[0]).manifest.embedding_space
    target = declare_space(handmade_bundle(TARGET), tmp_path / "both", space_id="media-v1", domains=["video"],
                           anchor="hashed-words-256", bridges=[BridgeFile("audio", source, BOTH, "items+content")])
    raw = json.loads((target.root / "manifest.json").read_text())
    assert raw["space"]["bridges"][0]["input"] == "items+content"
    with Recommender.open(pair[0]) as audio, Recommender.open(target.root) as video:
        listen(audio, "di", ["i0", "i1"])
        results = Transfer(audio, video, "direct").recommend("di", k=4)
        assert [r.item_id for r in results] == ["i2", "i4", "i3", "i0"]
        np.testing.assert_allclose([r.score for r in results], [1.0, 0.81, 0.8, 0.05], rtol=1e-5)
    bare = declare_space(handmade_bundle(SOURCE), tmp_path / "bare", space_id="media-v1", domains=["audio"],
                         anchor="hashed-words-256")  # no content vectors: nothing for the content half
    rebridged = declare_space(handmade_bundle(TARGET), tmp_path / "rebridged", space_id="media-v1", domains=["video"],
                              anchor="hashed-words-256",
                              bridges=[BridgeFile("audio", bare.manifest.embedding_space, BOTH, "items+content")])
    with Recommender.open(bare.root) as audio, Recommender.open(rebridged.root) as video:
        with pytest.raises(SpaceMismatchError, match="carries none"):
            Transfer(audio, video, "direct")
    narrow = declare_space(handmade_bundle(TARGET), tmp_path / "narrow", space_id="media-v1", domains=["video"],
                           anchor="hashed-words-256", bridges=[BridgeFile("audio", source, DIRECT, "items+content")])
    with Recommender.open(pair[0]) as audio, Recommender.open(narrow.root) as video:
        with pytest.raises(SpaceMismatchError, match="maps 2-wide source vectors, the source bundle gives 6"):
            Transfer(audio, video, "direct")
    raw["space"]["bridges"][0]["input"] = "items+audio"
    (target.root / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError):
        SharedSpace.of(Bundle.open(target.root))


@pytest.mark.parametrize("space_id", ["", "-lead", "a b", "x" * 65, "é"])
def test_a_space_id_the_schema_would_refuse_is_named_as_such(tmp_path, space_id):
    """--id '' ended in "the manifest does not follow the bundle spec ... re-export the bundle"."""
    with pytest.raises(ConfigError, match=r"^space id .* must be 1 to 64 letters, digits"):
        declare_space(tmp_path / "never-opened", tmp_path / "out", space_id=space_id, domains=["audio"])
    assert not (tmp_path / "out").exists()
