"""Defects an audit found on real MovieLens-100K (two films of 1,682 with no genre; replayed validation
events dated at the host's clock), guarded on tiny data."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data.domains import split_domains
from edgerec.data.schema import Catalog, Dataset
from edgerec.data.split import leave_last_out
from edgerec.data.store import load_dataset, save_dataset
from edgerec.errors import DataError
from edgerec.runtime.vocab import LOG_EVENTS, LOG_TO_DEVICE


def _with_empty(dataset: Dataset, column: str, codes: list[int]) -> Dataset:
    """`dataset` with `column` emptied for the items `codes` (ML-100K: item 267 "unknown", 1373)."""
    catalog = dataset.catalog.subset(np.arange(dataset.n_items))
    for code in codes:
        catalog.text[column][code] = ""
    return Dataset(catalog, dataset.interactions, list(dataset.user_ids), meta=dict(dataset.meta))


def test_a_refused_split_names_how_many_items_have_no_domain_and_which(small_dataset):
    data = _with_empty(small_dataset, "genre", [3, 11])
    ids = [data.catalog.item_ids[c] for c in (3, 11)]
    with pytest.raises(DataError) as caught:
        split_domains(data, by="genre")
    message = str(caught.value)
    assert f"2 of {data.n_items:,} items have an empty 'genre'" in message
    assert f"(items {ids[0]}, {ids[1]})" in message
    assert "--skip-empty" in message and "allow_empty=True" in message  # what to do
    many = _with_empty(small_dataset, "genre", list(range(8)))
    with pytest.raises(DataError, match=r"8 of .* items have an empty 'genre' \(items ([^,]+, ){4}[^,]+, \.\.\.\)"):
        split_domains(many, by="genre")


def test_domains_split_skip_empty_leaves_those_items_out_and_says_how_many(small_dataset, tmp_path):
    data = _with_empty(small_dataset, "genre", [3, 11])
    ids = [data.catalog.item_ids[c] for c in (3, 11)]
    events = int(np.isin(data.interactions.item, [3, 11]).sum())
    folder = save_dataset(data, tmp_path / "data")
    runner = CliRunner()

    refused = runner.invoke(cli, ["domains", "split", str(folder), "--by", "genre", "--out", str(tmp_path / "no")])
    assert refused.exit_code != 0
    assert "2 of" in refused.output and ids[0] in refused.output and "--skip-empty" in refused.output

    out = tmp_path / "parts"
    result = runner.invoke(cli, ["domains", "split", str(folder), "--by", "genre", "--out", str(out), "--skip-empty"],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    summary = " ".join(result.output.split())
    assert (f"left out: 2 of {data.n_items:,} items with an empty 'genre' (items {ids[0]}, {ids[1]}) "
            f"and their {events:,} events") in summary
    written = [load_dataset(p) for p in sorted(out.iterdir())]
    kept = [i for part in written for i in part.catalog.item_ids]
    assert len(kept) == data.n_items - 2 and not set(ids) & set(kept)
    assert sum(len(part.interactions) for part in written) == len(data.interactions) - events


def test_domains_space_needs_a_domain_only_for_the_bundles_items(tiny_bundle, tmp_path):
    """A bundle built on a `split --skip-empty` part holds no item without a domain; the other items of
    --data (no language listed here) are no reason to refuse its space."""
    data = load_dataset(tiny_bundle.parent / "data")
    c = data.catalog
    extra = Catalog(c.item_ids + ["no-language"], {k: v + [""] for k, v in c.text.items()}, c.tags + [()],
                    np.r_[c.duration, 0].astype(np.float32), np.r_[c.release_ts, 0].astype(np.int64),
                    np.r_[c.episode, 0].astype(np.int32))
    folder = save_dataset(Dataset(extra, data.interactions, list(data.user_ids), meta=dict(data.meta)),
                          tmp_path / "data")
    result = CliRunner().invoke(cli, ["domains", "space", str(tiny_bundle), "--data", str(folder), "--by", "language",
                                      "--id", "media-v1", "--out", str(tmp_path / "space")])
    assert result.exit_code == 0, result.output


class _Device:
    """Keeps what it is asked to record; answers nothing."""

    def __init__(self):
        self.recorded = []

    def record(self, user, item, event, timestamp=None):
        self.recorded.append((user, item, event, timestamp))

    def recommend(self, *args, **kwargs):
        return []


def _logged_validation(dataset, split, row):
    e = split.val_events[row]
    log = dataset.interactions
    return (dataset.catalog.item_ids[split.val_items[row]], LOG_TO_DEVICE[LOG_EVENTS[log.event[e]]],
            float(log.timestamp[e]))


def test_replay_records_the_validation_item_at_its_logged_time_and_kind(small_dataset):
    from edgerec.studies.replay import replay_lists

    split = leave_last_out(small_dataset)
    rows = np.arange(12)
    device = _Device()
    list(replay_lists(device, small_dataset, split, rows))
    for row in rows:
        name = small_dataset.user_ids[split.test_users[row]]
        mine = [r for r in device.recorded if r[0] == name]
        assert mine[-1][1:] == _logged_validation(small_dataset, split, row)  # not (item, "finish", None): now
        assert all(r[3] is not None for r in mine)


def test_fairness_report_keeps_the_replayed_validation_at_its_logged_time(tiny_bundle, tmp_path):
    from edgerec.runtime.history import KEEP_EVERYTHING, HistoryStore
    from edgerec.studies.fairness import FairnessStudy

    data = tiny_bundle.parent / "data"
    dataset = load_dataset(data)
    split = leave_last_out(dataset)
    FairnessStudy(tiny_bundle, data, tmp_path / "h.db", users=15, weights=(1.0,)).measure(lambda *a: None)
    store = HistoryStore(tmp_path / "h.db", retention=KEEP_EVERYTHING)
    try:
        newest_logged = float(dataset.interactions.timestamp.max())
        checked = 0
        for profile in store.profiles():
            row = int(np.flatnonzero(np.asarray(dataset.user_ids)[split.test_users] == profile)[0])
            events = store.events(profile)
            assert max(e.ts for e in events) <= newest_logged  # no event dated at the host's clock
            last = events[-1]
            assert (last.item, last.event, float(last.ts)) == _logged_validation(dataset, split, row)
            checked += 1
        assert checked == 15
    finally:
        store.close()
