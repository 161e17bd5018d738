"""On-device conformance suite: `EDGEREC_BUNDLE=path pytest --pyargs edgerec.device_tests`.

Needs only the runtime (numpy + one engine) and pytest on the device.
"""

import os

import pytest

from edgerec.device_tests.conformance import check_conformance

BUNDLE = os.environ.get("EDGEREC_BUNDLE")


@pytest.mark.skipif(not BUNDLE, reason="set EDGEREC_BUNDLE to the bundle to check")
def test_device_reproduces_the_bundle_reference():
    report = check_conformance(BUNDLE)
    assert report["models"], f"no user encoder this device can run (engines: {report.get('engines')})"
    for model in report["models"]:
        assert model["passed"], model
