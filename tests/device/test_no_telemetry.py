"""Nothing leaves the device: onnxruntime 1.29+ records telemetry and a persistent device id under
~/.cache/Microsoft (for upload) unless ORT_DISABLE_TELEMETRY is set before its import (audit I4)."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from edgerec.runtime import Recommender
with Recommender.open(sys.argv[1], backend="onnx") as rec:
    rec.record("u", rec.catalog.ids[3], "play")
    rec.recommend("u", k=3)
"""


def test_a_recommender_on_onnx_leaves_no_telemetry_or_device_id(tmp_path, golden_bundle):
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / ".cache"))
    subprocess.run([sys.executable, "-c", SCRIPT, str(golden_bundle)], env=env, check=True, cwd=tmp_path,
                   capture_output=True, timeout=120)
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if "Microsoft" in p.parts] == []
    assert not any(Path(tmp_path).rglob("deviceid"))
