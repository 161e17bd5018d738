"""A big catalog's encoder inputs (past catalog.MAPPED_INPUTS) are read once per event, with the
events, and kept in the user's window (user_state.Window.inputs): the same inputs as the column gives,
an encode after a new event reads one row, not the history's 30 to 50, and the rows go through the
file, so the column does not stay resident (2 MB of the million-item bench's RSS)."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
from resident_files import SMAPS, resident_kb

from edgerec.device_tests.scale import scaled_bundle
from edgerec.runtime import Recommender
from edgerec.runtime import catalog as catalog_module
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.catalog import ItemCatalog
from edgerec.runtime.user_state import Window

pytestmark = pytest.mark.usefixtures("fixed_history_clock")

GOLDEN = Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle"
NOW = 1_790_000_000.0


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """The golden bundle grown to 120k items: its encoder inputs (int16) span 59 pages."""
    return scaled_bundle(Bundle.open(GOLDEN), 120_000, tmp_path_factory.mktemp("inputs") / "big")


def _events(cat, rows):
    return [(i + 1, cat.item_id(row) if row >= 0 else f"gone-{i}", "finish", NOW - 1_000 + i)
            for i, row in enumerate(rows)]


@pytest.mark.parametrize("bundle", ["golden", "big", "big read through the file"])
def test_kept_inputs_are_the_columns(big, bundle, monkeypatch):
    """Bundle rows, an id the catalog lacks, an added item that took a bundle id over (it reads that
    row's input, spec §3) and one that did not (no input); short windows and long ones (> 256 events:
    more than column_rows.FEW_ROWS, gathered through the map and its pages given back)."""
    if bundle.endswith("file"):
        monkeypatch.setattr(catalog_module, "MAPPED_INPUTS", 0)
    with Recommender.open(GOLDEN if bundle == "golden" else big) as rec:
        cat, rng = rec.catalog, np.random.default_rng(3)
        dim = cat.table.shape[1]
        taken = cat.item_id(5)
        rec.add_items([{"item_id": taken, "vector": [1.0] + [0.0] * (dim - 1)},
                       {"item_id": "brand-new", "vector": [0.0, 1.0] + [0.0] * (dim - 2)}])
        cat = rec.catalog.snapshot()
        over, new = cat.index[taken], cat.index["brand-new"]
        assert over >= cat.base_count and not cat.is_active(5)
        for n in (12, 300):
            rows = [*rng.integers(0, cat.base_count, n).tolist(), over, new, -1, 5]
            window = Window().extended(_events(cat, rows), cat.index, len(cat), 400, cat.input_rows)
            assert window.inputs is not None and len(window.inputs) == len(window.rows) == len(rows)
            consumed = list(dict.fromkeys(r for r in window.rows.tolist() if r >= 0))
            kept = window.encoder_inputs(consumed)
            assert kept.dtype == np.int64 and kept.tolist() == cat.encoder_inputs(consumed).tolist()
            assert len(kept) == len(consumed) - 1  # the added item without a model input has none
            absent = next(r for r in range(cat.base_count) if r not in set(window.rows.tolist()))
            assert window.encoder_inputs(consumed + [absent]) is None  # not its row: the caller reads the column
            more = window.extended(_events(cat, [7, over]), cat.index, len(cat), 400, cat.input_rows)
            assert more.inputs.tolist() == cat.input_rows(more.rows).tolist()  # appended, oldest dropped
        assert Window().extended(_events(cat, [1, 2]), cat.index, len(cat), 10).inputs is None  # not asked


def test_an_encode_after_a_new_event_reads_one_row(big, monkeypatch):
    """The encode takes the window's kept inputs; the vector is the one the column's inputs give. (A
    column small enough to stay on the map is gathered by each encode: no inputs are kept.)"""
    with Recommender.open(big) as rec:
        assert rec.catalog.window_inputs is None  # 120k int16 inputs: 0.23 MB, on the map
    monkeypatch.setattr(catalog_module, "MAPPED_INPUTS", 0)
    with Recommender.open(big) as rec:
        cat = rec.catalog
        for i in range(30):
            rec.record("u", cat.item_id(1_000 + 37 * i), "finish", timestamp=NOW - 100 + i)
        rec.recommend("u", k=10, context={"now": NOW})
        reads = []
        monkeypatch.setattr(ItemCatalog, "encoder_inputs", lambda self, rows: reads.append(rows) or 1 / 0)
        read_rows = ItemCatalog.input_rows
        monkeypatch.setattr(ItemCatalog, "input_rows", lambda self, rows: reads.append(len(rows)) or read_rows(self, rows))
        rec.record("u", cat.item_id(99_999), "finish", timestamp=NOW - 50)
        got = rec.recommend("u", k=10, context={"now": NOW})
        assert reads == [1], f"the encode read {reads} rows; the window holds the history's inputs"
        entry = rec.users.get("u")
        monkeypatch.undo()
        wanted = rec.models.encoder.encode([cat.encoder_inputs(entry.state.consumed)])[0]
        assert entry.vector is not None and np.array_equal(entry.vector, wanted)
        assert [r.item_id for r in got] and all(r.reason.kind != "fallback" for r in got)


def _resident_inputs_kb(folder: Path) -> int:
    return resident_kb(folder).get("encoder_inputs.npy", 0)


@pytest.mark.skipif(not SMAPS.exists(), reason="reads the process's mappings (Linux)")
def test_requests_leave_a_big_inputs_column_out_of_resident_memory(big, monkeypatch):
    """80 users of 12 random items, a list each and again after a new event: through the map the
    history reads made the column resident (all 59 pages); through the file none stay."""
    monkeypatch.setattr(catalog_module, "MAPPED_INPUTS", 0, raising=False)  # 120k items stand for a million
    rng = np.random.default_rng(4)
    gc.collect()  # the maps of the other tests' closed catalogs
    assert _resident_inputs_kb((big / "items").resolve()) == 0
    with Recommender.open(big) as rec:
        cat = rec.catalog
        assert cat.input_map is not None
        for user in range(80):
            for i, row in enumerate(rng.integers(0, cat.base_count, 12).tolist()):
                rec.record(f"u{user}", cat.item_id(row), "finish", timestamp=NOW - 1_000 + i)
        for round_ in range(2):
            for user in range(80):
                if round_:
                    rec.record(f"u{user}", cat.item_id(int(rng.integers(0, cat.base_count))), "play",
                               timestamp=NOW - 10)
                assert rec.recommend(f"u{user}", k=10, context={"now": NOW})
        resident = _resident_inputs_kb((big / "items").resolve())
    assert resident <= 16, f"{resident} kB of the encoder inputs resident after the requests"


def test_a_failed_read_of_kept_inputs_leaves_them_to_the_encode_stage(big, monkeypatch):
    """A storage error reading the inputs with the events failed the required history stage (StageError, no
    list); now no inputs are kept and the encode stage reads them, as before the window kept them."""
    monkeypatch.setattr(catalog_module, "MAPPED_INPUTS", 0)
    with Recommender.open(big) as rec:
        cat = rec.catalog
        for i in range(20):
            rec.record("u", cat.item_id(2_000 + 11 * i), "finish", timestamp=NOW - 100 + i)

        def broken(self, rows):
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(ItemCatalog, "input_rows", broken)
        got = rec.recommend("u", k=10, context={"now": NOW})
        entry = rec.users.get("u")
        assert entry.window.inputs is None and entry.vector is not None
        wanted = rec.models.encoder.encode([cat.encoder_inputs(entry.state.consumed)])[0]
        assert np.array_equal(entry.vector, wanted) and all(r.reason.kind != "fallback" for r in got)
