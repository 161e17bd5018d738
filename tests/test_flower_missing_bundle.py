"""run_flower with a bundle folder that is not there: a BundleError naming the folder only (it raised a bare
FileNotFoundError with the full host path), before Flower is imported or started."""

from __future__ import annotations

import numpy as np
import pytest

from edgerec.errors import BundleError
from edgerec.federated.flower import FlowerDevices, run_flower
from edgerec.federated.server import FederatedServer, ServerConfig
from edgerec.runtime.federated import RoundTask


def test_a_missing_bundle_is_named_by_its_folder_only(tmp_path):
    space = "ab" * 12
    server = FederatedServer(np.ones((4, 2), np.float32), space, 2, ServerConfig(rounds=1, clients_per_round=2),
                             RoundTask(round=0, space=space))
    missing = tmp_path / "HOST_MARKER" / "bundle-v2"
    with pytest.raises(BundleError) as refused:
        run_flower(server, FlowerDevices(str(missing), [[], []]))
    assert "'bundle-v2'" in str(refused.value) and "HOST_MARKER" not in str(refused.value)
