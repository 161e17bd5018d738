"""Audit M4, host side: the runtime's conformance floor (runtime/reference.py) sits below every tolerance
edgerec's exporter writes, for any file it measures (fp32, fp16, int8; ONNX or TFLite: reference_tolerance
is the one place it is written), and the exporter's reference holds at least the runtime's minimum of users:
the floor and the minimum never refuse a bundle edgerec made."""

import json

import numpy as np

from edgerec.export.bundle_builder import ExportConfig, reference_tolerance
from edgerec.runtime.reference import MIN_REFERENCE_USERS, TOLERANCE_FLOOR, check_references


class Random:
    """An encoder whose vectors have nothing to do with the reference's: the worst figures there are."""

    def __init__(self, shape, seed):
        self.out = np.random.default_rng(seed).normal(size=shape)

    def encode_rows(self, rows):
        return self.out


def test_the_floor_is_below_what_the_exporter_writes_even_for_the_worst_file():
    rng = np.random.default_rng(1)
    table, vectors = rng.normal(size=(300, 8)), rng.normal(size=(32, 8))
    rows, seen = np.zeros((32, 5), np.int64), [np.zeros(0, np.int64)] * 32
    top = np.argsort(-(vectors @ table.T), axis=1)[:, :10]
    written = reference_tolerance({"onnx": Random(vectors.shape, 2), "tflite": Random(vectors.shape, 3)},
                                  rows, vectors, table, top, seen)
    assert all(written[key] > TOLERANCE_FLOOR[key] for key in TOLERANCE_FLOOR), written


def test_an_exported_bundle_meets_the_minimum_and_is_judged_by_its_own_tolerance(tiny_bundle):
    assert ExportConfig().reference_users >= MIN_REFERENCE_USERS
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert len(np.load(tiny_bundle / manifest["reference"]["histories"])) >= MIN_REFERENCE_USERS
    report = check_references(tiny_bundle)
    assert report["passed"] is True and report["tolerance_source"] == "bundle"
    assert report["tolerance"] == manifest["reference"]["tolerance"]


def test_the_exporter_refuses_fewer_reference_users_than_the_runtime_checks():
    import pytest

    from edgerec.errors import ConfigError

    for bad in (MIN_REFERENCE_USERS - 1, 0, True, 8.0):
        with pytest.raises(ConfigError, match="reference_users must be a whole number of at least"):
            ExportConfig(reference_users=bad).validate()
    assert ExportConfig(reference_users=MIN_REFERENCE_USERS).validate().reference_users == MIN_REFERENCE_USERS
