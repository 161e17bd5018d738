"""What runs on the device: conformance against a bundle's references, and latency/memory benchmarks
against device profiles. Imports only the runtime (numpy + one engine); plots need matplotlib if present."""

from edgerec.device_tests.bench import BenchConfig, run_bench
from edgerec.device_tests.conformance import check_conformance
from edgerec.device_tests.profiles import PROFILES, DeviceProfile, get_profile

__all__ = ["PROFILES", "BenchConfig", "DeviceProfile", "check_conformance", "get_profile", "run_bench"]
