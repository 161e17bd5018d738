"""A newcomer's list spread over creators (spec §5): the creator cap of cold and short-history lists.

A list built on the popularity prior (a cold start, or a history shorter than
`cold_start_items`) ranks a chosen genre or language by popularity alone, and
one popular creator can then fill it: on the quick demo world a newcomer who
chose rock and Spanish got 9 of 10 tracks by one artist. Such a list keeps at
most `Policy.cold_max_per_creator` items of one creator (the bundle's
`defaults.cold_max_per_creator`, else policies.COLD_MAX_PER_CREATOR; 0 turns
it off), or the policy's own `max_per_creator` when that is smaller. The
spread passes items over rather than dropping them (list_order.spread_pick): a
creator's items past the cap come after other creators' items, but an item
that matches an onboarding choice (a term of its §4 score) comes before every
item that matches none, and the list is never shorter for it. A cap that
drops for good showed a newcomer who chose a one-creator genre 2 of its
items and 8 unrelated ones; passing over within the count of matched choices
(rather than matched or not) kept, at a cap of 2, 6 of 10 Spanish rock tracks by one artist
for a newcomer who chose rock and Spanish. A request's
own smaller cap stays a hard cap, and a real history's list keeps the
policy's caps as they are.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edgerec.runtime.request import Request


def newcomer_list(request: Request) -> bool:
    """Whether the list is scored by the cold-start or short-history rule (spec §4)."""
    return request.cold or len(request.state.consumed) < request.policy.cold_start_items


def spread_newcomers(request: Request) -> None:
    """Give a newcomer's request the creator cap of its policy's cold_max_per_creator (the stricter of
    the two caps); a real history's request, or a cap of 0, keeps the policy as it is."""
    policy = request.policy
    cap = policy.cold_max_per_creator
    if not cap or not newcomer_list(request):
        return
    if policy.max_per_creator is None or policy.max_per_creator > cap:
        request.policy, request.spread = replace(policy, max_per_creator=cap), True


def spread_tiers(request: Request) -> np.ndarray | None:
    """The short list's tiers for the spread (1 where a row's score holds an onboarding term of §4, else
    0), or None when the request's creator cap is not a newcomer's spread."""
    if not request.spread:
        return None
    if request.tiers is None:
        return np.zeros(len(request.pool), np.int8)
    return request.tiers[request.pool]
