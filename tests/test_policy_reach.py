"""The short list as a policy lever: the device and the host replay (which the tuner scores) cut the
same short list and give the same lists at any `Policy.short_list`, and a longer one changes them."""

import numpy as np
import pytest

from edgerec.data.split import Sequences
from edgerec.models.policy_scorer import PolicyScorer
from edgerec.runtime import Policy, Recommender
from edgerec.studies import tune as tune_module
from edgerec.studies.tune import POLICY_SPACE, TuneConfig, untuned_policy

pytestmark = pytest.mark.usefixtures("fixed_history_clock")  # events recorded at fixed times near 1.79e9

NOW = 1_790_000_000.0
N_ITEMS, DIM = 600, 8


class MeanOfHistory:
    """The handmade bundle's encoder on the host: a user is the mean of its history's item vectors."""

    def __init__(self, items: np.ndarray, history: Sequences):
        self.items, self.history = items, history

    def item_matrix(self):
        return self.items

    def user_vectors(self, users, history):
        return np.stack([self.items[history.of(int(u))].mean(0) for u in users])


def make_world(root, release_ts=None):
    from handmade import write_handmade_bundle

    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(N_ITEMS, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    popularity = np.floor(np.exp(rng.normal(3.0, 1.5, N_ITEMS)))  # skewed, whole counts as the exporter's
    histories = [rng.choice(N_ITEMS, 6, replace=False) for _ in range(12)]
    release_ts = np.zeros(N_ITEMS, np.int64) if release_ts is None else release_ts
    bundle = write_handmade_bundle(root, vectors, popularity=popularity, release_ts=release_ts)
    indptr = np.r_[0, np.cumsum([len(h) for h in histories])].astype(np.int64)
    seqs = Sequences(indptr, np.concatenate(histories).astype(np.int32), np.zeros(indptr[-1], np.int64))
    return bundle, vectors.astype(np.float32), popularity, histories, seqs, release_ts


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("reach") / "bundle")


def device_lists(world, policy: Policy) -> list[list[int]]:
    bundle, _, _, histories, _, _ = world
    out = []
    with Recommender.open(bundle, history=None) as rec:
        for u, history in enumerate(histories):
            for i, row in enumerate(history):
                rec.record(f"u{u}", f"i{row}", "finish", timestamp=NOW - 1_000 + i)
            out.append([int(r.item_id[1:]) for r in rec.recommend(f"u{u}", k=10, context={"now": NOW},
                                                                  policy=policy)])
    return out


def replay_lists(world, policy: Policy) -> list[list[int]]:
    _, vectors, popularity, histories, seqs, release_ts = world
    users = np.arange(len(histories))
    scorer = PolicyScorer(MeanOfHistory(vectors, seqs), release_ts, popularity,
                          np.full(len(histories), NOW), policy, k=10)
    scores = scorer.score(users, seqs)
    return np.argsort(-scores, axis=1, kind="stable")[:, :10].tolist()


# the long tail lifted hard, with and without MMR: at 100 candidates the list is the least popular
# of the short list; at 400 it reaches items a 100-long list never holds
LONG_TAIL = dict(popularity=-2.0, language_boost=0.0)


@pytest.mark.parametrize("diversity", [0.0, 0.3])
def test_device_and_replay_give_the_same_lists_at_a_long_short_list(world, diversity):
    long = Policy(**LONG_TAIL, diversity=diversity, short_list=400)
    short = Policy(**LONG_TAIL, diversity=diversity)  # the default 100
    device_long, replay_long = device_lists(world, long), replay_lists(world, long)
    assert device_long == replay_long
    assert device_lists(world, short) == replay_lists(world, short)
    assert device_long != device_lists(world, short)  # the lever reaches the lists on the device ...
    assert replay_long != replay_lists(world, short)  # ... and in the replay the tuner scores


def test_a_short_list_below_k_still_gives_k_items_on_both_sides(world):
    policy = Policy(**LONG_TAIL, short_list=5)  # the device widens to k: so must the replay
    assert device_lists(world, policy) == replay_lists(world, policy)
    assert all(len(items) == 10 for items in device_lists(world, policy))


def test_the_policy_search_draws_the_short_list_and_starts_from_the_default():
    assert POLICY_SPACE["short_list"] == (50, 1000, "intlog")
    assert untuned_policy(TuneConfig(target="policy"))["short_list"] == Policy().with_defaults().short_list
    TuneConfig(target="policy", space={"short_list": [100, 400]}).validate()
    with pytest.raises(Exception, match="short_list"):
        TuneConfig(target="policy", space={"short_list": [0.5]}).validate()


def test_the_search_hands_the_drawn_short_list_to_the_replay(monkeypatch):
    import optuna

    study = optuna.create_study()
    trial = study.ask()
    drawn = tune_module._pick(trial, {"short_list": POLICY_SPACE["short_list"]}, {})
    assert isinstance(drawn["short_list"], int) and 50 <= drawn["short_list"] <= 1000
    assert Policy(**{**tune_module.UNTUNED, **drawn}).short_list == drawn["short_list"]


# ------------------------------------------------------------------ freshness


@pytest.fixture(scope="module")
def fresh_world(tmp_path_factory):
    # 30 items out two days before the request, the rest ten years old: most of a user's new releases
    # rank far below the short list (100 rows, 120 with the new releases' group)
    release = np.full(N_ITEMS, int(NOW) - 10 * 365 * 86_400, np.int64)
    new = np.random.default_rng(5).choice(N_ITEMS, 30, replace=False)
    release[new] = int(NOW) - 2 * 86_400
    return make_world(tmp_path_factory.mktemp("fresh") / "bundle", release), set(new.tolist())


def test_a_strong_freshness_fills_the_list_with_new_releases_from_anywhere_on_device_and_replay(fresh_world):
    world, new = fresh_world
    plain = device_lists(world, Policy(language_boost=0.0))
    fresh = Policy(freshness=20.0, language_boost=0.0)
    device, replay = device_lists(world, fresh), replay_lists(world, fresh)
    # the 20 best new releases join the short list wherever they rank: with a bonus this strong the list
    # is ten of them (when only those among the best 120 rows joined, about six were)
    assert all(set(items) <= new for items in device), [len(set(items) & new) for items in device]
    assert device == replay  # the tuner scores what the device shows
    assert sum(len(set(items) & new) for items in plain) <= len(plain)  # without freshness few of them
    assert device_lists(world, Policy(freshness=0.0, language_boost=0.0)) == plain == replay_lists(world, Policy(
        freshness=0.0, language_boost=0.0))


def test_the_expected_bound_reads_a_joined_new_release_at_its_rank_in_the_model_order(fresh_world):
    # the tuner's expected NDCG@10 reads each listed item's plain rank; a new release that joined from
    # rank 400 is at rank 400, not at its place in the short list (about 120), which would overstate its hit chance
    world, _ = fresh_world
    _, vectors, popularity, histories, seqs, release_ts = world
    users = np.arange(len(histories))
    ranks: dict = {}
    scorer = PolicyScorer(MeanOfHistory(vectors, seqs), release_ts, popularity, np.full(len(histories), NOW),
                          Policy(freshness=20.0, language_boost=0.0), k=10, plain_ranks=ranks)
    listed = np.argsort(-scorer.score(users, seqs), axis=1, kind="stable")[:, :10]
    model = MeanOfHistory(vectors, seqs).user_vectors(users, seqs) @ vectors.T
    below = 0
    for u in users:
        model[u, histories[u]] = -np.inf
        order = np.argsort(-model[u], kind="stable")
        expected = [int(np.flatnonzero(order == item)[0]) for item in listed[u]]
        assert ranks[int(u)].tolist() == expected
        below += sum(r >= 120 for r in expected)
    assert below >= 10  # some listed new releases did come from below the short list


# ------------------------------------------------------------------ keep_top


@pytest.mark.parametrize("diversity", [0.0, 0.3])
def test_the_kept_head_is_the_plain_lists_and_device_and_replay_agree(world, diversity):
    plain = device_lists(world, Policy(language_boost=0.0))
    kept = Policy(**LONG_TAIL, diversity=diversity, short_list=400, keep_top=6)
    device, replay = device_lists(world, kept), replay_lists(world, kept)
    assert device == replay
    assert [items[:6] for items in device] == [items[:6] for items in plain]  # the model's own first six
    spread = device_lists(world, Policy(**LONG_TAIL, diversity=diversity, short_list=400))
    assert device != spread  # without keep_top the long-tail lift takes the first places too
    assert [items[6:] for items in device] != [items[6:] for items in plain]  # the levers still act below
    everything = Policy(**LONG_TAIL, diversity=diversity, keep_top=10)
    assert device_lists(world, everything) == plain == replay_lists(world, everything)


def test_mmr_places_the_kept_positions_first_and_counts_them_for_diversity_and_caps():
    from edgerec.runtime.list_order import kept_head, mmr

    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    assert mmr(scores, np.eye(5), 3, 0.0, keep=np.array([4])).tolist() == [4, 0, 1]
    vectors = np.array([[1.0, 0], [1.0, 0], [0, 1.0], [0, 1.0], [1.0, 0]])
    # the kept item 4 points along x: diversity then takes the y item 2 before the better x item 0
    assert mmr(scores, vectors, 3, 0.6, keep=np.array([4])).tolist() == [4, 2, 0]
    genres = np.array(["a", "a", "b", "b", "a"])
    assert mmr(scores, np.eye(5), 3, 0.0, genres=genres, max_per_genre=1, keep=np.array([4])).tolist() == [4, 2]
    assert kept_head(np.array([1.0, 3.0, -np.inf, 3.0]), Policy(keep_top=3), 10).tolist() == [1, 3, 0]
    assert kept_head(scores, Policy(keep_top=3), 2).tolist() == [0, 1]  # never more than k
    assert kept_head(scores, Policy(), 10) is None


def test_keep_top_is_range_checked_and_tuned():
    from edgerec.errors import ConfigError

    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="keep_top"):
            Policy(keep_top=bad)
    assert POLICY_SPACE["keep_top"] == (0, 9, "int")
    assert untuned_policy(TuneConfig(target="policy"))["keep_top"] == 0
