"""Exploration's per-list records after audit M3: the module no longer says nothing per event leaves a
device without saying that exposures are per-event records that must stay on it, and an exposure's
repr (what an app that logs exposures writes) leaves out the user it was shown to."""

from __future__ import annotations

from edgerec.runtime import Recommender, experiment
from edgerec.runtime.experiment import Exposure, ExposureLog, explore


def test_an_exposure_keeps_its_user_out_of_its_repr():
    exposure = Exposure("alice@example.com", ("i1", "i2"), (0.6, 0.5), ("i1", "i2"))
    assert exposure.user == "alice@example.com"  # kept on the device, to tell a device's profiles apart
    assert "alice" not in repr(exposure) and "i1" in repr(exposure)


def test_an_explored_list_logs_no_user_name_into_its_repr(golden_bundle, tmp_path):
    with Recommender.open(golden_bundle, backend="onnx", history=tmp_path / "h.db") as rec:
        log = explore(rec, temperature=2.0, width=20, seed=1)
        shown = [r.item_id for r in rec.recommend("bob.smith@example.com", 5)]
        exposure = log.pop()
        assert list(exposure.items) == shown and exposure.user == "bob.smith@example.com"
        assert "bob.smith" not in repr(exposure) and "bob.smith" not in str(exposure)


def test_the_module_says_what_exploration_logs_hold_and_where_they_stay():
    """It said "nothing per item or per event" leaves the device, while off-policy evaluation needs
    per-list records, and that an app drains the exposures to its own log."""
    text = " ".join(experiment.__doc__.split())
    assert "off-policy evaluation needs per-list records" in text
    assert "It stays on the device" in text and "aggregated estimates" in text
    assert "drains it to its own log" not in ExposureLog.__doc__
    assert "must not leave it" in " ".join(ExposureLog.__doc__.split())
