"""Where an A/B effect lies and how much of it team-draft interleaving sees, for two bundles on the simulator.

    python tools/interleave_anatomy.py CONTROL TREATMENT DATA --users 300 --seed 0 [--json OUT]

Runs every user under each bundle (as `edgerec experiment sensitivity` does) and once interleaved,
logging both teams' lists. Prints the A/B effect split into lists per user and plays per list, each
list's expected plays under the simulator's own click model (same states: the interleaved run's),
how many items the two top-k lists share and how many clicks land on them, the clicks credited to
each team on items only one list holds, and users needed by A/B and by the credit test
(docs/experiments.md, "Why the model pair gains only about 2x").
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgerec.runtime.interleave import team_draft
from edgerec.runtime.vocab import DEVICE_EVENTS, FEEDBACK
from edgerec.studies import stats
from edgerec.studies.devices import open_device
from edgerec.studies.experiments import _setup, interleave_tests
from edgerec.studies.reactions import examination
from edgerec.studies.simulator import DAY, Arm, SimConfig

PLAYS = tuple(e for e in DEVICE_EVENTS if e not in FEEDBACK and e != "like")  # what the simulator records for a started item


def anatomy(control: Path, treatment: Path, data: Path, users: int, seed: int) -> dict:
    sim = SimConfig(users=users, seed=seed)
    _, simulator = _setup(data, sim, "auto", "plays")
    react, gamma = simulator.reactions, examination(sim.k)
    code_of = {name: i for i, name in enumerate(simulator.dataset.user_ids)}
    pure = {}
    for key, bundle in (("A", control), ("B", treatment)):
        simulator.cfg = replace(sim)
        log = simulator.run([Arm("pre", control), Arm("only", bundle)], lambda _u: "only")
        pure[key] = log.period("plays"), log.period("lists")

    def expected(rec, user, ids):
        """The list's expected plays under the click model, given all the user has played so far."""
        consumed = simulator.consumed(code_of[user])
        begin = simulator.start - sim.pre_days * DAY
        consumed.add([simulator.item_code[e.item] for e in rec.history.events(user) if e.ts >= begin and e.event in PLAYS])
        items = np.array([simulator.item_code[i] for i in ids])
        return float((gamma[:len(items)] * react.attraction(code_of[user], items, consumed)).sum())

    other, calls, rng = open_device(treatment), [], np.random.default_rng(seed)

    def lister(rec, user, k, context):
        la = [r.item_id for r in rec.recommend(user, k, context=context)]
        lb = [r.item_id for r in other.recommend(user, k, context=context)]
        merged = team_draft(la, lb, k, rng)
        if merged.items:  # the simulator logs a reaction for every non-empty list, in this order
            calls.append((len(set(la) & set(lb)), expected(rec, user, la), expected(rec, user, lb), merged.shared))
        return merged.items, merged.teams

    simulator.cfg = replace(sim)
    try:
        log = simulator.run([Arm("interleaved", control)], lambda _u: "interleaved", lister, mirrors=[other])
    finally:
        other.close()
    n = len(log.users)
    credit = {key: np.zeros(n) for key in ("A", "B", "A only", "B only")}
    lists = []
    for (row, day, clicked, teams), (overlap, value_a, value_b, shared) in zip(log.interleaved, calls):
        if day < 0:
            continue
        lists.append((overlap, value_a, value_b))
        for p in clicked:
            credit[teams[p]][row] += 1
            if not shared[p]:
                credit[teams[p] + " only"][row] += 1
    (ya, la), (yb, lb) = pure["A"], pure["B"]
    effect, sigma = float(yb.mean() - ya.mean()), float(np.sqrt((ya.var(ddof=1) + yb.var(ddof=1)) / 2))
    overlap, value_a, value_b = (np.array(c) for c in zip(*lists))
    tests = interleave_tests(credit["A"], credit["B"], 0.05)
    clicks = credit["A"] + credit["B"]
    ab_users = stats.sample_size(sigma, effect) if effect and sigma > 0 else None
    return {
        "users": n, "seed": seed, "ab_relative_effect": effect / float(ya.mean()),
        "lists_per_user_relative": float(lb.mean() / la.mean() - 1),
        "plays_per_list_relative": float((yb.sum() / lb.sum()) / (ya.sum() / la.sum()) - 1),
        "ab_cv": sigma / float(ya.mean()), "ab_users_needed": ab_users,
        "expected_plays_per_list": [float(value_a.mean()), float(value_b.mean())],
        "shared_items_per_list": float(overlap.mean()),
        "clicks_on_shared_share": float(1 - (credit["A only"] + credit["B only"]).sum() / max(clicks.sum(), 1)),
        "credited_clicks": [float(credit["A"].sum()), float(credit["B"].sum())],
        "clicks_on_items_one_list_holds": [float(credit["A only"].sum()), float(credit["B only"].sum())],
        "users_without_clicks": int((clicks == 0).sum()),
        "interleaving_users_needed": tests["users_needed_80pct"],
        "gain": ab_users / tests["users_needed_80pct"] if ab_users and tests["users_needed_80pct"] else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("control", type=Path)
    parser.add_argument("treatment", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    record = anatomy(args.control, args.treatment, args.data, args.users, args.seed)
    text = json.dumps(record, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
