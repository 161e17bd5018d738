"""Host studies replay old logs through simulated devices: no event may be lost to the wall-clock
retention a real device applies (MovieLens-100K's events are from 1997 and 1998)."""

import ast
from pathlib import Path

import pytest

from edgerec.errors import ConfigError
from edgerec.runtime import Recommender
from edgerec.studies.devices import open_device

OLD = 888_000_000.0  # 1998
STUDIES = Path(__file__).resolve().parent.parent / "studies"


def _replay(rec, users: int = 3, events: int = 60) -> None:
    rows = rec.catalog.base_count
    for u in range(users):
        for i in range(events):  # 180 records: retention runs after each 100
            rec.record(f"u{u}", rec.catalog.item_id((u * 31 + i) % rows), "finish", timestamp=OLD + 60 * i)


def test_a_simulated_device_keeps_an_old_log_that_a_real_device_would_erase(tiny_bundle, tmp_path):
    with open_device(tiny_bundle, history=tmp_path / "sim.db") as simulated, \
            Recommender.open(tiny_bundle, history=tmp_path / "real.db") as real:
        _replay(simulated)
        with pytest.raises(ConfigError, match="older than this history keeps"):
            _replay(real)  # the device's own retention: it refuses what it would not keep
        assert [simulated.history.count(f"u{u}") for u in range(3)] == [60, 60, 60]
        assert real.history.count() == 0
        # the first user's list is the one a device holding only that user's log gives
        with open_device(tiny_bundle, history=tmp_path / "alone.db") as alone:
            _replay(alone, users=1)
            ask = {"k": 5, "context": {"now": OLD + 86_400}}
            assert [r.item_id for r in simulated.recommend("u0", **ask)] == \
                [r.item_id for r in alone.recommend("u0", **ask)]


def test_every_study_opens_its_devices_through_open_device():
    """A study that opened Recommender directly would replay into a device that erases old logs."""
    offenders = []
    for path in sorted(STUDIES.glob("*.py")):
        if path.name == "devices.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "open"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "Recommender"):
                offenders.append(f"{path.name}:{node.lineno}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "HistoryStore"
                    and not any(k.arg == "retention" for k in node.keywords)):
                offenders.append(f"{path.name}:{node.lineno} (HistoryStore without retention)")
    assert not offenders, offenders


def test_a_flower_node_keeps_its_whole_old_log(tiny_bundle):
    from edgerec.federated.flower import FlowerDevices, _Device

    with Recommender.open(tiny_bundle) as rec:
        items = [rec.catalog.item_id(i) for i in range(150)]
    node = _Device(FlowerDevices(str(tiny_bundle), [[(item, OLD + i) for i, item in enumerate(items)]]), 0)
    assert node.history.count("node-0") == 150
    node.rec.close()
