"""Domains in data: the split by modality group or a column, and the synthetic world's coupled tastes."""

from __future__ import annotations

import numpy as np
import pytest

from edgerec.data import SynthConfig, synth_dataset
from edgerec.data.domains import item_domains, split_domains, users_with_history
from edgerec.data.synth import (
    GENRE,
    audio_pairing,
    build_users,
    ground_truth,
    video_taste_from_audio,
)
from edgerec.data.vocab import DOMAIN_OF_MODALITY
from edgerec.errors import ConfigError, DataError


def test_split_by_modality_puts_every_item_and_event_in_its_domain(small_dataset):
    parts = split_domains(small_dataset)
    assert sorted(parts) == ["audio", "video"]
    assert sum(p.n_items for p in parts.values()) == small_dataset.n_items
    assert sum(len(p.interactions) for p in parts.values()) == len(small_dataset.interactions)
    for name, part in parts.items():
        assert part.user_ids == small_dataset.user_ids  # user code u is the same person in every domain
        assert {DOMAIN_OF_MODALITY[m] for m in part.catalog.text["modality"]} == {name}
        assert part.interactions.item.max() < part.n_items
        # events keep their item: the renumbered code points at the same item id
        first = part.interactions.item[0]
        original = small_dataset.catalog.index[part.catalog.item_ids[first]]
        mask = (small_dataset.interactions.user == part.interactions.user[0]) & \
            (small_dataset.interactions.item == original)
        assert mask.any()
    both = np.intersect1d(users_with_history(parts["audio"]), users_with_history(parts["video"]))
    assert 0 < len(both) < small_dataset.n_users + 1


def test_split_by_an_explicit_column_and_its_errors(small_dataset):
    parts = split_domains(small_dataset, by="language")
    assert sorted(parts) == sorted(set(small_dataset.catalog.text["language"]))
    assert list(item_domains(small_dataset, "language")) == small_dataset.catalog.text["language"]
    with pytest.raises(DataError, match="no item column 'studio'"):
        split_domains(small_dataset, by="studio")
    one = small_dataset.catalog.subset(np.arange(small_dataset.n_items))
    one.text["provider"] = ["same"] * len(one)
    small = type(small_dataset)(one, small_dataset.interactions, small_dataset.user_ids)
    with pytest.raises(DataError, match="only one domain"):
        split_domains(small, by="provider")

    # an item with no value (a film with no genre listed) is an error, or with allow_empty in no domain
    one.text["provider"] = ["a"] * (len(one) - 1) + [""]
    one.text["provider"][0] = "b"
    with pytest.raises(DataError, match="empty 'provider'"):
        split_domains(small, by="provider")
    parts = split_domains(small, by="provider", allow_empty=True)
    assert sorted(parts) == ["a", "b"] and parts["a"].n_items + parts["b"].n_items == len(one) - 1
    assert parts["b"].catalog.item_ids == [one.item_ids[0]]


def test_an_uncoupled_config_is_the_world_as_it_was():
    cfg = SynthConfig(users=50, items=200, events=2_000, seed=3)
    users = build_users(cfg, np.random.default_rng(cfg.seed), cfg.users)
    assert users.audio_taste_start is users.taste_start and users.audio_taste_end is users.taste_end
    coupled = ground_truth(SynthConfig(users=50, items=200, events=2_000, seed=3, domain_coupling=1.0))
    plain = ground_truth(cfg)
    # the coupling draws from its own stream: every other trait of every user is the same
    for name in ("taste_start", "taste_end", "modality_mix", "mood_pref", "languages", "slots"):
        assert np.array_equal(getattr(coupled.users, name), getattr(plain.users, name))
    with pytest.raises(ConfigError, match="domain_coupling"):
        SynthConfig(domain_coupling=1.5).validate()


def test_coupled_audio_taste_follows_the_known_pairing_exactly():
    truth = ground_truth(SynthConfig(users=80, items=300, events=3_000, seed=4, domain_coupling=1.0))
    audio, paired = audio_pairing(4)
    follow = truth.users.taste_start[:, paired] ** 3
    np.testing.assert_allclose(truth.users.audio_taste_start[:, audio], follow / follow.sum(1, keepdims=True),
                               rtol=1e-12)
    video_only = [GENRE[g] for g in ("thriller", "horror", "action")]  # no audio genre has these names
    assert np.array_equal(truth.users.audio_taste_start[:, video_only], truth.users.taste_start[:, video_only])


def test_video_taste_read_off_the_audio_taste_is_the_true_one_at_coupling_1_only():
    def cosines(coupling: float) -> np.ndarray:
        users = ground_truth(SynthConfig(users=200, items=300, events=3_000, seed=4, domain_coupling=coupling)).users
        base = np.ones_like(users.taste_start)
        inferred = video_taste_from_audio(users.audio_taste_start, base, 4)
        _, paired = audio_pairing(4)
        x = inferred[:, paired] - inferred[:, paired].mean(0)
        y = users.taste_start[:, paired] - users.taste_start[:, paired].mean(0)
        assert np.array_equal(np.delete(inferred, paired, 1), np.delete(base, paired, 1))  # the rest keeps base
        return (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)

    coupled = ground_truth(SynthConfig(users=200, items=300, events=3_000, seed=4, domain_coupling=1.0)).users
    _, paired = audio_pairing(4)
    inferred = video_taste_from_audio(coupled.audio_taste_start, np.ones_like(coupled.taste_start), 4)
    truth = coupled.taste_start[:, paired]
    np.testing.assert_allclose(inferred[:, paired] / inferred[:, paired].sum(1, keepdims=True),
                               truth / truth.sum(1, keepdims=True), rtol=1e-9)  # proportional: the exact inverse
    assert cosines(1.0).mean() > 0.9 and abs(cosines(0.0).mean()) < 0.1


def _paired_top_share(coupling: float) -> float:
    """Share of users whose most played audio genre is the partner of their most watched video genre."""
    dataset = synth_dataset(SynthConfig(users=600, items=2_000, events=40_000, seed=2, domain_coupling=coupling))
    audio, paired = audio_pairing(2)
    genre = np.array([GENRE[g] for g in dataset.catalog.text["genre"]])
    domain = item_domains(dataset)
    log = dataset.interactions
    counts = {d: np.zeros((dataset.n_users, len(GENRE))) for d in ("audio", "video")}
    for d in counts:
        keep = domain[log.item] == d
        np.add.at(counts[d], (log.user[keep], genre[log.item[keep]]), 1)
    active = (counts["audio"][:, audio].sum(1) >= 5) & (counts["video"].sum(1) >= 5)
    top_audio = audio[counts["audio"][active][:, audio].argmax(1)]
    top_video = counts["video"][active].argmax(1)
    partner = dict(zip(audio.tolist(), paired.tolist()))
    return float(np.mean([partner[a] == v for a, v in zip(top_audio, top_video)]))


def test_coupling_is_visible_in_the_events():
    coupled, independent = _paired_top_share(1.0), _paired_top_share(0.0)
    assert coupled > 2 * independent
