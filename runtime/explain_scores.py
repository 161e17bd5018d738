"""A list with each item's score split into the interpretable scorer's per-feature contributions.

    items = explain_list(rec, "alice", k=10, context={"device": "tv"})
    items[0]["contributions"]  # {"retrieval score": 1.31, "tv x film": 0.22, ..., "intercept": 0.0}

The contributions of an item add up to its `scorer_score` exactly; `why`
names the largest ones in words. Needs a bundle that ships a scorer.
"""

from __future__ import annotations

from dataclasses import replace

from edgerec.errors import ConfigError, ModelError


def explain_list(rec, user: str, k: int = 10, context: dict | None = None) -> list[dict]:
    """The user's top-k, ranked by the bundle's scorer, each with its contributions."""
    if not rec.manifest.ranking.get("scorer"):
        raise ConfigError("this bundle ships no interpretable scorer; export it with "
                          "`edgerec export ... --scorer CKPT` (train one with `edgerec scorer train`)")
    results = rec.recommend(user, k=k, context=context, policy=replace(rec.policy, use_scorer=True))
    out = []
    for r in results:
        if "contributions" not in r.meta:  # not the scorer's list: say which list it is, not "no history"
            if r.reason.kind == "fallback":  # a user with a history whose encoder failed just now
                raise ModelError("the user encoder failed on this request, so the list is the popularity fallback "
                                 "and is not scored per feature; try again (stats() counts these as encode_fallback)")
            raise ConfigError("this user's list is not personal yet (a newcomer's list), so it is not scored per "
                              "feature; record plays, finishes or likes of the bundle's items first (`edgerec record`)")
        out.append({"item_id": r.item_id, "title": r.title, "score": r.meta["scorer_score"],
                    "contributions": r.meta["contributions"], "why": r.reason.text})
    return out
