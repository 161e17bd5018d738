"""Bundle format 6: a categorical or numeric column whose rows all hold one value is that value in
the manifest, not a file (a MovieLens catalog has no creators, providers, series or durations).
Lists, metadata and catalog updates are those of the format 5 copy that stores the files; a
constant the spec does not allow is refused when the bundle opens."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from bundle_edit import flatten_columns, rewrite

from edgerec.device_tests.scale import scaled_bundle
from edgerec.errors import BundleError
from edgerec.runtime import Bundle, Filters, Policy, Recommender

NOW = 1_790_000_000.0
FLAT = {"creator": -1, "provider": 0, "series_id": -1, "episode": 0, "duration": 1800.0}  # code or value


@pytest.fixture(scope="module")
def copies(golden_bundle, tmp_path_factory):
    """The golden bundle with five columns made constant, written as format 6 and as format 5."""
    root = tmp_path_factory.mktemp("constant")
    flat = root / "flat"
    shutil.copytree(golden_bundle, flat)
    flatten_columns(flat, FLAT)
    source = Bundle.open(flat)
    return {v: scaled_bundle(source, source.manifest.items.count, root / f"v{v}", format_version=v) for v in (6, 5)}


def _lists(path) -> list:
    """A mix of requests that read the flattened columns: histories, caps and diversity by creator,
    business filters, an added item with its own creator, onboarding."""
    out = []
    with Recommender.open(path) as rec:
        cat = rec.catalog
        for u in range(5):
            for i in range(2 + u):
                rec.record(f"u{u}", cat.item_id((u * 11 + 3 * i) % cat.base_count), "finish", timestamp=NOW - 50 + i)
        rec.add_items([{"item_id": "new", "title": "New", "creator": "someone", "provider": "p9", "episode": 2,
                        "duration": 60.0, "genre": cat.meta(4)["genre"], "tags": cat.meta(4)["tags"]}])
        rec.onboard("newcomer", genres=[cat.meta(2)["genre"]])
        policies = [Policy(), Policy(diversity=0.5, max_per_creator=1, max_per_genre=2),
                    Policy(freshness=0.3, popularity=0.2)]
        for user in ("u0", "u3", "u4", "newcomer", "nobody"):
            for policy in policies:
                for filters in (None, Filters(max_duration_s=1900.0), Filters(max_duration_s=100.0)):
                    recs = rec.recommend(user, k=8, policy=policy, filters=filters, context={"now": NOW})
                    out.append([r.to_dict() for r in recs])
        out.append(cat.metas(range(len(cat))))
    return out


def test_constant_columns_are_stored_in_the_manifest_and_read_as_their_rows(copies):
    new, old = Bundle.open(copies[6]), Bundle.open(copies[5])
    assert (new.manifest.format_version, old.manifest.format_version) == (6, 5)
    items = new.manifest.to_dict()["items"]
    assert items["categorical"]["creator"] == {"constant": -1, "vocab": list(old.manifest.items.categorical["creator"].vocab)}
    assert items["categorical"]["provider"]["constant"] == 0 and "codes" not in items["categorical"]["provider"]
    assert items["numeric"]["episode"] == {"constant": 0} and items["numeric"]["duration"] == {"constant": 1800.0}
    assert "codes" in items["categorical"]["genre"] and isinstance(items["numeric"]["popularity"], str)
    assert not any(f"items/{name}.npy" in new.manifest.files for name in FLAT)
    assert all(f"items/{name}.npy" in old.manifest.files for name in FLAT)
    saved = sum(old.manifest.files[f"items/{name}.npy"]["bytes"] for name in FLAT)
    assert new.size_bytes() < old.size_bytes() - saved + 200  # the manifest grows by a few bytes a column
    with Recommender.open(copies[6]) as rec:
        duration = rec.catalog.numeric["duration"]
        assert duration.dtype == np.float32 and duration.shape == (new.manifest.items.count,)
        assert duration.strides == (0,) and not duration.flags.writeable  # one element's memory, read-only
        assert rec.catalog.categorical["creator"][0].dtype == np.int32


def test_constant_columns_give_the_lists_and_metadata_of_stored_ones(copies):
    flat, stored = _lists(copies[6]), _lists(copies[5])
    assert flat == stored
    metas = flat[-1]
    assert {m["creator"] for m in metas[:-1]} == {""} and metas[-1]["creator"] == "someone"
    assert {m["duration"] for m in metas[:-1]} == {1800.0} and metas[-1]["duration"] == 60.0
    assert any(r for requests in flat[:-1] for r in requests)


def test_a_format_6_bundle_converts_to_format_5_and_back(copies, tmp_path):
    from edgerec.device_tests.scale import scaled_bundle as rewrite_as

    count = Bundle.open(copies[6]).manifest.items.count
    back = rewrite_as(Bundle.open(copies[6]), count, tmp_path / "v5", format_version=5)
    for name in FLAT:
        assert (back / f"items/{name}.npy").read_bytes() == (copies[5] / f"items/{name}.npy").read_bytes()
    again = rewrite_as(Bundle.open(back), count, tmp_path / "v6", format_version=6)
    assert json.loads((again / "manifest.json").read_text())["items"] == \
        json.loads((copies[6] / "manifest.json").read_text())["items"]


def _set(section: str, name: str, value):
    def change(data):
        data["items"][section][name] = value
    return change


@pytest.mark.parametrize("section, name, value, rule", [
    ("categorical", "creator", {"constant": 0, "vocab": []}, r"constant\) must be a finite number from -1 to -1 "),
    ("categorical", "genre", {"constant": -2, "vocab": ["a"]}, r"must be an integer >= -1"),
    ("categorical", "genre", {"constant": 1.5, "vocab": ["a"]}, r"must be an integer"),
    ("categorical", "genre", {"constant": True, "vocab": ["a"]}, r"must be an integer"),
    ("categorical", "genre", {"vocab": ["a"]}, r"\(items column genre\) must name a file of codes or a constant"),
    ("categorical", "creator", {"codes": "items/genre.npy", "constant": -1, "vocab": ["a"]},
     r"\(items column creator\) must name a file of codes or a constant, not both or neither"),
    ("numeric", "duration", {"constant": -1.0}, r"duration's constant\) must be a finite number from 0 to "),
    ("numeric", "episode", {"constant": 1.5}, r"episode's constant\) must be .* that int32 holds"),
    ("numeric", "popularity", {"constant": 1e39}, r"popularity's constant\) must be a finite number from 0 to "),
    ("numeric", "duration", {"constant": 0.1}, r"duration's constant\) must be .* that float32 holds"),
    ("numeric", "release_ts", {"constant": 2e11}, r"release_ts's constant\) must be a finite number"),
    ("numeric", "extra", {"constant": 2**62 + 1}, r"extra's constant\) must be a finite number from -inf to inf that float64"),
    ("numeric", "extra", {"constant": 10**400}, r"is outside the signed 64-bit range"),
    ("numeric", "duration", {"constant": "3"}, r"must be a number"),
    ("numeric", "duration", {"constant": 3, "unit": "s"}, r"is not a known field here"),
    ("numeric", "duration", {}, r"constant is required"),
])
def test_a_constant_the_spec_does_not_allow_is_refused_on_open(copies, tmp_path, section, name, value, rule):
    root = tmp_path / "b"
    shutil.copytree(copies[6], root)
    rewrite(root, _set(section, name, value))
    with pytest.raises(BundleError, match=rule):
        Bundle.open(root)


def test_a_constant_in_a_bundle_of_an_older_format_is_refused(copies, tmp_path):
    root = tmp_path / "b"
    shutil.copytree(copies[5], root)
    rewrite(root, _set("numeric", "episode", {"constant": 0}))
    with pytest.raises(BundleError, match=r"episode's constant\) is only allowed in format 6 or later bundles"):
        Bundle.open(root)


def test_an_extra_numeric_constant_reads_as_float64(copies, tmp_path):
    root = tmp_path / "b"
    shutil.copytree(copies[6], root)
    rewrite(root, _set("numeric", "loudness", {"constant": -14}))
    with Recommender.open(root) as rec:
        column = rec.catalog.numeric["loudness"]
        assert column.dtype == np.float64 and column[3] == -14.0 and len(column) == rec.catalog.base_count
        assert math.isclose(float(rec.catalog.numeric_column("loudness", np.array([0, 1]))[1]), -14.0)


def test_a_numeric_columns_file_must_be_listed_like_any_other(copies, tmp_path):
    """Rule 5 finds a numeric column's file through the schema's path rules (a numeric column is a
    path or, in format 6, an object): one missing from `files` is refused when the bundle opens."""
    root = tmp_path / "b"
    shutil.copytree(copies[6], root)
    rewrite(root, lambda data: data["files"].pop("items/popularity.npy"))
    with pytest.raises(BundleError, match=r"items/popularity.npy is not listed with a checksum in files"):
        Bundle.open(root)
