"""`edgerec domains`: split, space, bridge and recommend end to end on the tiny world's bundle."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from edgerec.cli.main import cli
from edgerec.data.domains import split_domains
from edgerec.data.store import load_dataset
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.space import SharedSpace


def test_domains_commands_end_to_end(tiny_bundle, tmp_path):
    data = tiny_bundle.parent / "data"
    runner = CliRunner()
    result = runner.invoke(cli, ["domains", "split", str(data), "--out", str(tmp_path / "domains")])
    assert result.exit_code == 0, result.output
    parts = split_domains(load_dataset(data))
    for name, part in parts.items():
        assert load_dataset(tmp_path / "domains" / name).n_items == part.n_items

    space = tmp_path / "space"
    result = runner.invoke(cli, ["domains", "space", str(tiny_bundle), "--data", str(data), "--id", "media-v1",
                                 "--out", str(space)])
    assert result.exit_code == 0, result.output
    declared = SharedSpace.of(Bundle.open(space))
    assert (declared.id, declared.anchor, declared.domains) == ("media-v1", "hashed-words-256", ["audio", "video"])

    bridged = tmp_path / "bridged"
    result = runner.invoke(cli, ["domains", "bridge", str(space), str(space), "--data", str(data),
                                 "--out", str(bridged)])
    assert result.exit_code == 0, result.output
    bridge, direct = SharedSpace.of(Bundle.open(bridged)).bridges  # one per --method, both by default
    assert bridge.source_space == Bundle.open(space).manifest.embedding_space
    assert not bridge.direct and direct.direct and direct.users == bridge.users
    assert direct.prior.shape == (Bundle.open(space).manifest.items.count,) and direct.prior.max() <= 1
    audio = parts["audio"]
    video = parts["video"]
    users_with_audio = np.unique(audio.interactions.user[audio.interactions.consumed_mask()])
    users_with_video = np.unique(video.interactions.user[video.interactions.consumed_mask()])
    assert bridge.users == len(np.intersect1d(users_with_audio, users_with_video))  # audio -> video

    out = tmp_path / "list.json"
    items = audio.catalog.item_ids[:3]
    args = ["domains", "recommend", str(space), str(bridged), "--user", "zoe", "-k", "4", "--json", str(out)]
    result = runner.invoke(cli, args + [a for item in items for a in ("--item", item)])
    assert result.exit_code == 0, result.output
    listed = json.loads(out.read_text())
    assert len(listed) == 4 and all(r["reason"]["kind"] == "transfer" for r in listed)
    result = runner.invoke(cli, args + ["--method", "direct"] + [a for item in items for a in ("--item", item)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())) == 4
    mapping_only = tmp_path / "mapping-only"
    result = runner.invoke(cli, ["domains", "bridge", str(space), str(space), "--data", str(data),
                                 "--method", "mapping", "--out", str(mapping_only)])
    assert result.exit_code == 0, result.output
    assert [b.direct for b in SharedSpace.of(Bundle.open(mapping_only)).bridges] == [False]
    both = tmp_path / "items-and-content"
    result = runner.invoke(cli, ["domains", "bridge", str(space), str(space), "--data", str(data),
                                 "--method", "direct", "--input", "items+content", "--out", str(both)])
    assert result.exit_code == 0, result.output
    (fitted,) = SharedSpace.of(Bundle.open(both)).bridges
    content_dim = SharedSpace.of(Bundle.open(space)).content.shape[1]
    assert fitted.input == "items+content" and fitted.weights.shape[0] == direct.weights.shape[0] + content_dim
    result = runner.invoke(cli, ["domains", "recommend", str(tiny_bundle), str(bridged), "--user", "zoe",
                                 "--item", items[0]])
    assert result.exit_code != 0 and "declares no shared space" in result.output


def test_a_domain_value_that_looks_like_a_path_stays_under_out(tiny_bundle, tmp_path):
    """`domains split --by genre` with a genre '../../escaped' wrote a data folder two levels above --out."""
    from edgerec.data.domains import folder_names
    from edgerec.data.store import save_dataset

    data = load_dataset(tiny_bundle.parent / "data")
    genres = data.catalog.text["genre"]
    data.catalog.text["genre"] = ["../../escaped" if i % 2 else "sci/fi" for i in range(len(genres))]
    save_dataset(data, tmp_path / "data")
    out = tmp_path / "a" / "out"
    result = CliRunner().invoke(cli, ["domains", "split", str(tmp_path / "data"), "--by", "genre", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["_.._escaped", "sci_fi"]
    assert not (tmp_path / "escaped").exists() and sorted(p.name for p in (tmp_path / "a").iterdir()) == ["out"]
    assert folder_names(["x", "X", "..", ""]) == {"x": "x", "X": "X-2", "..": "_", "": "_-2"}


def test_long_domain_values_get_short_distinct_folders_and_item_histories_stay_in_memory(tmp_path):
    """A 300-byte domain value failed with 'File name too long'; `domains recommend --item` recorded its items
    as finishes into the user's real history file."""
    from pathlib import Path

    from edgerec.data.domains import folder_names
    from edgerec.errors import ConfigError
    from edgerec.models.transfer import fit_bridge
    from edgerec.runtime.history import HistoryStore

    names = folder_names(["a" * 300, "a" * 300 + "b"])
    assert all(len(v) <= 110 for v in names.values()) and len(set(names.values())) == 2
    golden = str(Path(__file__).resolve().parents[1] / "spec" / "golden" / "bundle")
    history = tmp_path / "h.db"
    assert CliRunner().invoke(cli, ["record", golden, "--user", "ana", "--item", "i29", "--event", "finish",
                                    "--history", str(history)]).exit_code == 0
    both = CliRunner().invoke(cli, ["domains", "recommend", golden, golden, "--user", "ana", "--history",
                                    str(history), "--item", "i40"])
    assert both.exit_code == 2 and "give --item or --history, not both" in both.output
    alone = CliRunner().invoke(cli, ["domains", "recommend", golden, golden, "--user", "ana", "--item", "i40",
                                     "--method", "content", "-k", "3"])
    assert alone.exit_code == 0, alone.output
    assert [e.item for e in HistoryStore(history).events("ana")] == ["i29"]
    refused = CliRunner().invoke(cli, ["domains", "bridge", golden, golden, "--data", str(tmp_path), "--ridge", "0",
                                       "--out", str(tmp_path / "out")])
    assert refused.exit_code == 2 and "--ridge" in refused.output
    import pytest

    with pytest.raises(ConfigError, match="ridge must be a finite number > 0"):
        fit_bridge(np.ones((3, 2)), np.ones((3, 2)), 0.0)
