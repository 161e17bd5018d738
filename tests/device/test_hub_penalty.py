"""The hub penalty on the device: the bundle's hubness column read, checked and applied (spec section 5)."""

from __future__ import annotations

import numpy as np
import pytest
from bundle_edit import replace_array, rewrite

from edgerec.errors import BundleError, ConfigError
from edgerec.runtime import Bundle, Policy, Recommender


def listed(rec, policy=None) -> list[str]:
    return [r.item_id for r in rec.recommend("u", k=8, policy=policy)]


def watched(rec) -> None:
    for row in (3, 9, 20, 31):
        rec.record("u", rec.catalog.item_id(row), "finish")


def test_the_penalty_moves_hubs_down_and_zero_changes_nothing(golden_bundle):
    with Recommender.open(golden_bundle) as rec:
        watched(rec)
        plain = listed(rec, Policy())
        assert listed(rec, Policy(hub_penalty=0.0)) == plain
        penalised = listed(rec, Policy(hub_penalty=3.0))
        hubs = lambda ids: rec.catalog.hubness(np.array([rec.catalog.index.get(i) for i in ids])).mean()  # noqa: E731
        assert penalised != plain
        assert hubs(penalised) < hubs(plain)


def test_an_item_added_on_the_device_takes_the_bundles_median(golden_bundle):
    with Recommender.open(golden_bundle) as rec:
        column = np.load(golden_bundle / "items" / "hubness.npy")
        rec.add_items([{"item_id": "new", "vector": rec.catalog.vectors([7])[0].tolist(), "title": "New"}])
        row = rec.catalog.index.get("new")
        values = rec.catalog.hubness(np.array([0, row]))
        assert values[0] == pytest.approx(float(column[0]))
        # the median of the values, not of float16 arithmetic: a narrowed column (format 3) must not
        # change scores (this column is float16; its float16 median was 0.63574, the true one 0.63550)
        assert column.dtype == np.float16 and values[1] == pytest.approx(float(np.median(column.astype(np.float64))))
        watched(rec)
        assert len(listed(rec, Policy(hub_penalty=3.0))) == 8


def test_a_bundle_without_the_column_refuses_the_penalty_and_ranks_as_before(bundle_copy):
    (bundle_copy / "items" / "hubness.npy").unlink()
    rewrite(bundle_copy, lambda d: (d["items"]["numeric"].pop("hubness"), d["files"].pop("items/hubness.npy")))
    with Recommender.open(bundle_copy) as rec:
        watched(rec)
        assert len(listed(rec)) == 8
        with pytest.raises(ConfigError, match="hubness"):
            listed(rec, Policy(hub_penalty=0.5))
        with pytest.raises(ConfigError, match="hubness"):  # cold too: the same policy, the same answer (§5)
            rec.recommend("newcomer", k=4, policy=Policy(hub_penalty=0.5))


@pytest.mark.parametrize("values", [
    np.full(56, np.nan, np.float32), np.full(56, 1.5, np.float32), np.full(56, -2.0, np.float32),
    np.zeros(55, np.float32), np.zeros((56, 2), np.float32), np.array(["x"] * 56),
])
def test_a_damaged_hubness_column_is_a_bundle_error_at_open(bundle_copy, values):
    replace_array(bundle_copy, "items/hubness.npy", values)
    with pytest.raises(BundleError):
        Bundle.open(bundle_copy)


