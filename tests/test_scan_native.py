"""The compiled scan kernels (runtime/scan_kernels.h) against the scalar loop, on every path this
machine can run: natively (AVX2 on x86-64) and, cross-compiled for aarch64, under qemu-aarch64
with a dot-product CPU (neon-dotprod) and an Armv8.0 one (neon). `make test` installs the cross
compiler and qemu (Debian's gcc-aarch64-linux-gnu, qemu-user) when they are missing and sets
EDGEREC_REQUIRE_ARM=1, so there a missing tool fails instead of skipping."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HARNESS = Path(__file__).parent / "native" / "scan_check.c"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("EDGEREC_REQUIRE_ARM") == "1":
            pytest.fail(f"{name} is missing; `make arm-tools` installs it (Debian: gcc-aarch64-linux-gnu, qemu-user)")
        pytest.skip(f"{name} is not installed (Debian: gcc-aarch64-linux-gnu, qemu-user; `make arm-tools`)")
    return found


def _run(cmd: list[str]) -> list[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[-1] == "ok"
    return lines


def _kernels(lines: list[str]) -> set[str]:
    return {line.split()[1] for line in lines if line.startswith("kernel ")}


def test_native_kernel_matches_scalar(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    binary = tmp_path / "scan_check"
    subprocess.run([cc, "-O3", "-Wall", "-Werror", "-o", str(binary), str(HARNESS)], check=True)
    kernels = _kernels(_run([str(binary)]))
    assert "portable" in kernels  # the widths that are not a multiple of 16
    if os.uname().machine == "x86_64":
        assert "avx2" in kernels or "avx2" not in Path("/proc/cpuinfo").read_text()


@pytest.mark.parametrize("cpu, expected", [("max", "neon-dotprod"), ("cortex-a57", "neon")])
def test_arm_kernels_match_scalar_under_emulation(tmp_path, cpu, expected):
    gcc, qemu = _tool("aarch64-linux-gnu-gcc"), _tool("qemu-aarch64")
    binary = tmp_path / "scan_check_arm"
    subprocess.run([gcc, "-O3", "-Wall", "-Werror", "-static", "-o", str(binary), str(HARNESS)], check=True)
    kernels = _kernels(_run([qemu, "-cpu", cpu, str(binary)]))
    assert kernels == {expected, "portable"}
