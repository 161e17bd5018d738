"""A user encoder that fails to load is not read and hashed again on every request the popularity
fallback serves (a 1M-item device hashed the file per request), and is tried again once it changes."""

import shutil

from edgerec.runtime import Recommender, models


def test_a_failed_encoder_is_loaded_again_only_once_its_file_changes(tiny_bundle, tmp_path, monkeypatch):
    bundle = shutil.copytree(tiny_bundle, tmp_path / "b")
    reads = []
    real = models.model_bytes
    monkeypatch.setattr(models, "model_bytes", lambda b, name: reads.append(name) or real(b, name))
    with Recommender.open(bundle, history=tmp_path / "h.db", backend="onnx") as rec:
        for user in ("a", "b", "c"):
            rec.record(user, rec.catalog.item_id(3), "finish")
        encoder = bundle / "user_encoder.onnx"
        good = encoder.read_bytes()
        encoder.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # fails its sha256 check when loaded
        for user in ("a", "b", "c"):
            assert rec.recommend(user, k=3)[0].reason.kind == "fallback"
        assert reads == ["user_encoder.onnx"]  # was: one read and hash per request
        assert rec.stats()["counters"]["encode_fallback"] == 3
        encoder.write_bytes(good)  # put back (a new time): tried again, and it serves
        assert rec.recommend("a", k=3)[0].reason.kind != "fallback"
        assert reads == ["user_encoder.onnx"] * 2


def test_an_encoder_output_of_another_width_serves_the_counted_fallback(rec, monkeypatch):
    """A vector of the wrong width failed the whole request in the scan (a StageError); it is an encoder
    failure like a NaN or all-zero one (spec §3): the popularity list, counted, its reason kept."""
    import numpy as np

    rec.record("ana", rec.catalog.item_id(3), "finish")
    encoder = rec.models.encoder
    monkeypatch.setattr(encoder, "encode", lambda rows: np.ones((1, rec.manifest.dim + 1), np.float32))
    out = rec.recommend("ana", k=3)
    assert [r.reason.kind for r in out] == ["fallback"] * 3
    assert rec.stats()["counters"]["encode_fallback"] == 1


def test_an_ann_index_that_failed_to_build_is_not_built_again_on_every_request(tiny_bundle, tmp_path, monkeypatch):
    """The build was tried on every request (minutes each at a million items); the exact scan serves."""
    import pytest

    from edgerec.errors import ConfigError

    builds = []

    def failing(*args, **kwargs):
        builds.append(1)
        raise RuntimeError("out of memory")

    monkeypatch.setattr(models, "AnnIndex", failing)
    with Recommender.open(tiny_bundle, history=tmp_path / "h.db") as rec:
        rec.models.ann_kind = "usearch"
        for i, user in enumerate(("ana", "bo", "cy")):
            rec.record(user, rec.catalog.item_id(3 + i), "finish")
            assert len(rec.recommend(user, k=5)) == 5  # the exact scan serves
        assert builds == [1] and rec.stats()["counters"]["ann_fallback"] == 3  # was: a build per request
        with pytest.raises(ConfigError, match=r"could not be built \(RuntimeError: out of memory\)"):
            rec.warm_up()
