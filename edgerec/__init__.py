"""edgerec: on-device recommendation for audio and video content.

The root package holds only what every side shares: the version, the
exception hierarchy, and onnxruntime's telemetry turned off. Host code lives in `edgerec.data`, `edgerec.models`,
`edgerec.compress`, `edgerec.export`; device code in `edgerec.runtime` and
`edgerec.device_tests`; the command line in `edgerec.cli`.
"""

import os

# onnxruntime 1.29 and later record usage telemetry and a persistent device id under ~/.cache/Microsoft and
# upload them; the variable, read when onnxruntime is first imported, turns that off whole (an app's own
# setting, 0 included, is kept). edgerec promises that nothing leaves the device.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from edgerec.errors import EdgerecError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["EdgerecError", "__version__"]
