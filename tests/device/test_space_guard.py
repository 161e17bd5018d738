"""The shared space section (runtime/space.py) read from a hand-written bundle: every field it
returns, every refusal's whole message, and which bridge serves which source."""

from types import SimpleNamespace

import numpy as np
import pytest

from edgerec.errors import BundleError, SpaceMismatchError
from edgerec.runtime.space import Bridge, SharedSpace, check_shared

SOURCE = "ab" * 12


class FakeBundle:
    """What SharedSpace.of reads of a Bundle: the manifest and its arrays by name."""

    def __init__(self, space, arrays=None, count=3, dim=2, name="video"):
        self.manifest = SimpleNamespace(name=name, space=space, items=SimpleNamespace(count=count), dim=dim)
        self.arrays = arrays or {}

    def array(self, name, mmap=True):
        return self.arrays[name]


def bridge_entry(**fields):
    return {"source_domain": "audio", "source_space": SOURCE, "weights": "w.npy", "bias": "b.npy", **fields}


def arrays(**extra):
    return {"w.npy": np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), "b.npy": np.array([0.5, -0.5]), **extra}


def refused(error, space, values=None):
    with pytest.raises(error) as caught:
        SharedSpace.of(FakeBundle(space, values))
    return str(caught.value)


def test_the_section_as_read():
    content = np.arange(6, dtype=np.float16).reshape(3, 2)
    space = SharedSpace.of(FakeBundle(
        {"id": "media-v1", "anchor": "enc@1", "domains": ["video", "music"], "content": {"file": "c.npy"},
         "bridges": [bridge_entry(users=7, input="items+content"), bridge_entry(source_domain="news", prior="p.npy")]},
        arrays(**{"c.npy": content, "p.npy": np.array([1, 2, 3], np.int64)})))
    assert (space.id, space.anchor, space.domains) == ("media-v1", "enc@1", ["video", "music"])
    assert space.content is content
    first, second = space.bridges
    assert (first.source_domain, first.source_space, first.users, first.input, first.prior) == (
        "audio", SOURCE, 7, "items+content", None)
    assert first.weights.dtype == np.float32 and first.weights.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert first.bias.dtype == np.float32 and first.bias.tolist() == [0.5, -0.5]
    assert not first.direct and second.direct
    assert (second.source_domain, second.users, second.input) == ("news", 0, "items")
    assert second.prior.dtype == np.float32 and second.prior.tolist() == [1.0, 2.0, 3.0]
    bare = SharedSpace.of(FakeBundle({"id": "s", "domains": ["video"]}))
    assert (bare.anchor, bare.content, bare.bridges) == ("", None, [])


def test_a_bridge_maps_in_float32():
    bridge = Bridge("audio", SOURCE, np.array([[1, 2], [3, 4]], np.float32), np.array([0.5, -1], np.float32), 3)
    out = bridge.apply([1, 1])
    assert out.dtype == np.float32 and out.tolist() == [4.5, 5.0]
    assert bridge.input == "items" and bridge.prior is None and not bridge.direct


def test_a_bundle_without_a_space_is_named():
    message = ("bundle 'video' declares no shared space (no 'space' section); export it with `edgerec domains space` "
               "to mix it with another")
    assert refused(SpaceMismatchError, {}) == message
    assert refused(SpaceMismatchError, None) == message


def test_damaged_sections_are_refused_with_what_to_do():
    base = {"id": "s", "domains": ["video"]}
    assert refused(BundleError, {"id": "s", "domains": ["video", "music", "video"]}) == (
        "space.domains names a domain twice (['video', 'music', 'video']); re-export the bundle")
    for content in (np.zeros(3), np.zeros((4, 2)), np.zeros((2, 2))):
        assert refused(BundleError, {**base, "content": {"file": "c.npy"}}, {"c.npy": content}) == (
            f"space.content has shape {content.shape}, expected one row per item (3); re-export the bundle")
    for weights, bias in ((np.zeros(2), np.zeros(2)), (np.zeros((3, 3)), np.zeros(2)), (np.zeros((3, 2)), np.zeros(3)),
                          (np.zeros((3, 2)), np.zeros((1, 2)))):
        assert refused(BundleError, {**base, "bridges": [bridge_entry()]}, {"w.npy": weights, "b.npy": bias}) == (
            f"bridge from 'audio' maps to {weights.shape} with a bias of {bias.shape}; the bundle's vectors are 2 "
            "wide, re-export the bridge")
    for prior in (np.zeros(2), np.zeros((3, 1))):
        assert refused(BundleError, {**base, "bridges": [bridge_entry(prior="p.npy")]}, arrays(**{"p.npy": prior})) == (
            f"bridge from 'audio' has a prior of shape {prior.shape}, expected one value per item (3); re-export the bridge")
    nan = "bridge from 'audio' holds NaN or infinite values; re-fit and re-export the bridge"
    for name, bad in (("w.npy", np.array([[1, np.nan], [0, 0], [0, 0]])), ("b.npy", np.array([np.inf, 0])),
                      ("p.npy", np.array([0, 0, -np.inf]))):
        values = arrays(**{"p.npy": np.zeros(3)})
        values[name] = bad
        assert refused(BundleError, {**base, "bridges": [bridge_entry(prior="p.npy")]}, values) == nan
    assert refused(BundleError, {**base, "bridges": [bridge_entry(input="audio")]}, arrays()) == (
        "bridge from 'audio' takes input 'audio'; a runtime knows items, items+content: update edgerec or re-export "
        "the bridge")


def manifest(name, space, embedding_space=SOURCE):
    return SimpleNamespace(name=name, space=space, embedding_space=embedding_space)


def test_the_bridge_of_a_source_and_kind():
    space = SharedSpace.of(FakeBundle({"id": "s", "domains": ["video"], "bridges": [
        bridge_entry(prior="p.npy"), bridge_entry(source_domain="radio", source_space="cd" * 12), bridge_entry()]},
        arrays(**{"p.npy": np.zeros(3)})))
    audio = manifest("audio-bundle", {})
    assert space.bridge_from(audio) is space.bridges[2]
    assert space.bridge_from(audio, direct=True) is space.bridges[0]
    assert space.bridge_from(manifest("radio-bundle", {}, "cd" * 12)) is space.bridges[1]
    known = f"audio ({SOURCE}, direct), radio ({'cd' * 12}), audio ({SOURCE})"
    with pytest.raises(SpaceMismatchError) as caught:
        space.bridge_from(manifest("radio-bundle", {}, "cd" * 12), direct=True)
    assert str(caught.value) == (f"no direct bridge from bundle 'radio-bundle' (embedding space {'cd' * 12}) into this "
                                 f"one (bridges: {known}); fit one with `edgerec domains bridge --method direct` "
                                 "against that very export")
    empty = SharedSpace("s", "", ["video"], None, [])
    with pytest.raises(SpaceMismatchError) as caught:
        empty.bridge_from(audio)
    assert str(caught.value) == (f"no bridge from bundle 'audio-bundle' (embedding space {SOURCE}) into this one "
                                 "(bridges: none); fit one with `edgerec domains bridge --method mapping` against that "
                                 "very export")


def test_two_bundles_are_mixed_only_in_one_space_and_anchor():
    space = {"id": "media", "anchor": "enc@1", "domains": ["x"]}
    check_shared(manifest("a", space), manifest("b", dict(space)))
    check_shared(manifest("a", {"id": "m", "domains": ["x"]}), manifest("b", {"id": "m", "anchor": "", "domains": ["y"]}))
    check_shared(manifest("a", {"id": "m", "anchor": ""}), manifest("b", {"id": "m"}))  # no anchor is ""
    check_shared(manifest("a", {"id": "m"}), manifest("b", {"id": "m"}))
    for source, target, name in ((None, space, "a"), ({}, space, "a"), (space, None, "b"), (None, None, "a")):
        with pytest.raises(SpaceMismatchError) as caught:
            check_shared(manifest("a", source), manifest("b", target))
        assert str(caught.value) == (f"bundle {name!r} declares no shared space, so its vectors cannot be compared "
                                     "with another bundle's; export both with `edgerec domains space`")
    for other, shown in (({"id": "media", "anchor": "enc@2"}, "media anchored by enc@2"),
                         ({"id": "media"}, "media anchored by nothing"),
                         ({"id": "films", "anchor": "enc@1"}, "films anchored by enc@1")):
        with pytest.raises(SpaceMismatchError) as caught:
            check_shared(manifest("a", space), manifest("b", other))
        assert str(caught.value) == (f"bundles 'a' and 'b' live in different spaces (media anchored by enc@1 vs "
                                     f"{shown}); export both with the same space id and encoder")
    with pytest.raises(SpaceMismatchError, match=r"\(media anchored by nothing vs media anchored by enc@1\)"):
        check_shared(manifest("a", {"id": "media"}), manifest("b", space))
