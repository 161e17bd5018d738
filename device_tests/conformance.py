"""Conformance: the device reproduces the bundle's reference outputs and top-k within tolerance.

The check itself lives in the runtime (runtime/reference.py), which also uses it to vet a bundle
update before serving it; this is the name the device test suite and `edgerec bench` call it by.
"""

from __future__ import annotations

from edgerec.runtime.reference import check_references as check_conformance

__all__ = ["check_conformance"]
