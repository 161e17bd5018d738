"""The hand-over benchmark: direct calls against the same calls handed to a Background runner."""

from __future__ import annotations

import json

import pytest

from edgerec.device_tests import handover_bench
from edgerec.errors import ConfigError
from edgerec.runtime.recommender import Recommender


def test_each_way_gets_the_same_calls_and_every_figure_is_reported(golden_bundle, tmp_path, monkeypatch):
    seen = []
    record, recommend = Recommender.record, Recommender.recommend
    monkeypatch.setattr(Recommender, "record", lambda self, *a: seen.append(("record", a[0])) or record(self, *a))
    monkeypatch.setattr(Recommender, "recommend", lambda self, *a: seen.append(("recommend", a[0])) or
                        recommend(self, *a))
    out = handover_bench.bench_handover(golden_bundle, calls=4, workdir=tmp_path)
    for op in ("record", "recommend"):
        assert {kind: out[op][kind]["n"] for kind in ("direct", "returned", "done")} == \
            {"direct": 4, "returned": 4, "done": 4}
        assert 0 < out[op]["returned"]["p50_ms"] <= out[op]["done"]["p50_ms"]  # done includes the work
        assert out["ratio"][op] == out[op]["returned"]["p99_ms"] / out[op]["direct"]["p99_ms"]
    # alternating: direct first on even calls, handed first on odd ones; each user the same calls
    assert [user for _, user in seen[:8]] == ["direct"] * 2 + ["handed"] * 2 + ["handed"] * 2 + ["direct"] * 2
    assert seen.count(("record", "direct")) == seen.count(("record", "handed")) == 4
    assert out["setup"] == {"calls": 4}
    assert not list(tmp_path.iterdir())  # its history went with its temporary folder


def test_bad_counts_and_bundles_are_refused_in_words(golden_bundle, tmp_path, capsys):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="the hand-over benchmark's calls"):
            handover_bench.bench_handover(golden_bundle, calls=bad)
    assert handover_bench.main([str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err.startswith("Error: ")
    out = tmp_path / "h.json"
    assert handover_bench.main([str(golden_bundle), "--calls", "2", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["setup"] == {"calls": 2}
