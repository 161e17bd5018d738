"""edgerec: on-device recommendation for audio and video content.

The root package holds only what every side shares: the version and the
exception hierarchy. Host code lives in `edgerec.data`, `edgerec.models`,
`edgerec.compress`, `edgerec.export`; device code in `edgerec.runtime` and
`edgerec.device_tests`; the command line in `edgerec.cli`.
"""

from edgerec.errors import EdgerecError

__version__ = "0.1.0"

__all__ = ["EdgerecError", "__version__"]
