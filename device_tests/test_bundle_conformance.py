"""On-device conformance suite: `EDGEREC_BUNDLE=path pytest --pyargs edgerec.device_tests`.

Needs only the runtime (numpy + one engine) and pytest on the device. The tolerance is the bundle's,
never looser than the runtime's floor (runtime/reference.py; spec §1a).
"""

import os

import pytest

from edgerec.device_tests.conformance import check_conformance, conformance_failure

BUNDLE = os.environ.get("EDGEREC_BUNDLE")


@pytest.mark.skipif(not BUNDLE, reason="set EDGEREC_BUNDLE to the bundle to check")
def test_device_reproduces_the_bundle_reference():
    report = check_conformance(BUNDLE)
    assert report["passed"], conformance_failure(report)  # no references or no engine of the bundle's: not a pass
