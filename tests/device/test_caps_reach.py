"""The caps' reach (runtime/caps.py, spec §4): the vectorised walk under one cap and the ordered walk under
two give what a plain walk down the list gives, row by row."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgerec.runtime.caps import within_caps, within_one_cap


def walk(groups_per_cap, caps, k=None):
    """The rule as the spec words it: best first, drop a row whose group already has its cap."""
    counts, kept = [{} for _ in caps], []
    for i in range(len(groups_per_cap[0])):
        if k is not None and sum(kept) == k:
            kept.append(False)
            continue
        values = [g[i] for g in groups_per_cap]
        full = any(v >= 0 and seen.get(v, 0) >= cap for v, seen, cap in zip(values, counts, caps))
        if not full:
            for v, seen in zip(values, counts):
                if v >= 0:
                    seen[v] = seen.get(v, 0) + 1
        kept.append(not full)
    return kept


groups = st.lists(st.integers(-1, 4), max_size=60)


@settings(max_examples=200, deadline=None)
@given(groups=groups, cap=st.integers(1, 4))
def test_one_cap_keeps_what_the_walk_keeps(groups, cap):
    g = np.array(groups, np.int64)
    assert within_one_cap(g, cap).tolist() == walk([g], [cap])


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(-1, 3), st.integers(-1, 3)), max_size=60), caps=st.tuples(
    st.integers(1, 3), st.integers(1, 3)), k=st.integers(1, 30), block=st.sampled_from([1, 3, 7, 4096]))
def test_two_caps_keep_what_the_walk_keeps_up_to_k(pairs, caps, k, block):
    creators = np.array([p[0] for p in pairs], np.int64)
    genres = np.array([p[1] for p in pairs], np.int64)
    kept = within_caps([(creators, caps[0]), (genres, caps[1])], k, block=block)
    assert kept.tolist() == walk([creators, genres], caps, k)


def test_two_caps_that_cannot_fill_k_skip_the_full_rows_a_block_at_a_time():
    # a million rows of 3 creators and 3 genres, caps 1 and 1: at most 3 rows can be kept
    rng = np.random.default_rng(0)
    creators, genres = rng.integers(0, 3, 1_000_000), rng.integers(0, 3, 1_000_000)
    kept = within_caps([(creators, 1), (genres, 1)], 10)
    assert kept.tolist()[:50] == walk([creators[:50], genres[:50]], (1, 1))[:50]
    assert kept.sum() == len(set(creators[kept])) == len(set(genres[kept])) <= 3


long_pairs = st.lists(st.tuples(st.integers(-1, 40), st.integers(-1, 6)), min_size=100, max_size=400)


@settings(max_examples=60, deadline=None)
@given(pairs=long_pairs, caps=st.tuples(st.integers(1, 3), st.integers(1, 40)), k=st.integers(1, 120))
def test_two_caps_on_long_lists_keep_what_the_walk_keeps(pairs, caps, k):
    """Blocks of 4 k rows (at least 64) that double, refiltered when a group fills with over 64 rows left:
    the walk of the spec, row by row, whatever the blocks."""
    creators = np.array([p[0] for p in pairs], np.int64)
    genres = np.array([p[1] for p in pairs], np.int64)
    assert within_caps([(creators, caps[0]), (genres, caps[1])], k).tolist() == walk([creators, genres], caps, k)
