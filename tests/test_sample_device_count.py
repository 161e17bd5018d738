"""Audit fix: the warning about device names edgerec does not know counts the rows imported, not the
rows of users --sample left out nor rows --event-map drops."""

from __future__ import annotations

from edgerec.data import import_dataset
from edgerec.data.loaders import ColumnMap, ReadOptions


def _log(path, users=200, per_user=5):
    lines = ["user_id,item_id,timestamp,device,event"]
    for u in range(users):
        for j in range(per_user):
            event = "ad" if j == 0 else "play"  # one row per user that --event-map drops
            lines.append(f"user{u},i{(u + j) % 50},{1_700_000_000 + u * 100 + j},mobile,{event}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _warning(dataset):
    return next(w for w in dataset.meta["warnings"] if "a device edgerec does not know" in w)


def test_the_unknown_device_warning_counts_the_sampled_rows_only(tmp_path):
    dataset = import_dataset("csv", _log(tmp_path / "log.csv"), columns=ColumnMap(event_map={"ad": "drop"}),
                             options=ReadOptions(sample_users=0.1, seed=0))
    events = len(dataset.interactions.item)
    assert 0 < events < 1000 - 200
    assert _warning(dataset).startswith(f"{events:,} rows name a device edgerec does not know ('mobile')")


def test_without_a_sample_every_imported_row_counts(tmp_path):
    dataset = import_dataset("csv", _log(tmp_path / "log.csv", users=20), columns=ColumnMap(event_map={"ad": "drop"}))
    assert len(dataset.interactions.item) == 80
    assert _warning(dataset).startswith("80 rows name a device")
