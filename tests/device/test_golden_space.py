"""The golden bundle's shared space on the device: its section reads, and a transfer through its bridge
scores exactly as spec section 8 says (mapping, direct and content)."""

from __future__ import annotations

import numpy as np

from edgerec.runtime import Recommender
from edgerec.runtime.space import SharedSpace
from edgerec.runtime.transfer import Transfer


def test_the_golden_space_and_a_mapping_transfer_by_the_spec(golden_bundle):
    with Recommender.open(golden_bundle) as source, Recommender.open(golden_bundle) as target:
        space = SharedSpace.of(target.bundle)
        assert (space.id, space.domains) == ("golden-v1", ["audio", "video"])
        assert space.content.shape == (target.catalog.base_count, 256)
        bridge = space.bridge_from(source.manifest)
        cat = source.catalog
        audio = [r for r in range(cat.base_count) if cat.meta(r)["modality"] in ("music_track", "podcast_episode")]
        history = audio[:4]
        for row in history:
            source.record("ana", cat.item_id(row), "finish")
        results = Transfer(source, target, "mapping").recommend("ana", k=5)
        pooled = cat.vectors(np.array(history)).mean(0)
        query = (pooled / np.linalg.norm(pooled)) @ bridge.weights + bridge.bias
        query /= np.linalg.norm(query)
        expected = np.asarray(target.models.scan.scores(query.astype(np.float32)))
        assert [r.item_id for r in results] == [cat.item_id(int(r)) for r in np.argsort(-expected, kind="stable")[:5]]
        np.testing.assert_allclose([r.score for r in results], np.sort(expected)[::-1][:5], rtol=1e-5)
        content = Transfer(source, target, "content").recommend("ana", k=3)
        by_content = np.asarray(space.content, np.float32) @ _unit(np.asarray(space.content[history], np.float32).mean(0))
        assert [r.item_id for r in content] == [cat.item_id(int(r)) for r in np.argsort(-by_content, kind="stable")[:3]]


def test_a_direct_transfer_through_the_golden_bundle_by_the_spec(golden_bundle):
    with Recommender.open(golden_bundle) as source, Recommender.open(golden_bundle) as target:
        space = SharedSpace.of(target.bundle)
        bridge = space.bridge_from(source.manifest, direct=True)
        assert bridge.prior.shape == (target.catalog.base_count,) and not space.bridge_from(source.manifest).direct
        cat = source.catalog
        audio = [r for r in range(cat.base_count) if cat.meta(r)["modality"] in ("music_track", "podcast_episode")]
        history = audio[2:7]
        for row in history:
            source.record("bo", cat.item_id(row), "finish")
        results = Transfer(source, target, "direct").recommend("bo", k=5)
        # q = norm(mean(vectors[h])) W + b, not normalised; score = scan(q) + prior
        query = _unit(cat.vectors(np.array(history)).mean(0)) @ bridge.weights + bridge.bias
        expected = np.asarray(target.models.scan.scores(query.astype(np.float32))) + bridge.prior
        assert [r.item_id for r in results] == [cat.item_id(int(r)) for r in np.argsort(-expected, kind="stable")[:5]]
        np.testing.assert_allclose([r.score for r in results], np.sort(expected)[::-1][:5], rtol=1e-5)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)
