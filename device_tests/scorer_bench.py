"""How long the interpretable scorer takes on a short list: features + score (the history's part read
afresh, as right after a new event, and kept, as on the user's next requests), and the contributions.

    python -m edgerec.device_tests.scorer_bench BUNDLE   # prints median milliseconds per short list
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgerec.errors import BundleError, EdgerecError
from edgerec.runtime import Recommender, checks
from edgerec.runtime.ranking import device_featurizer, open_scorer

HISTORY = 30  # items in the user's history


def bench_scorer(bundle: str | Path, candidates: int = 100, repeats: int = 200, seed: int = 0) -> dict:
    """Median ms to featurize and score `candidates` items for a 30-item history (and to score only)."""
    checks.integer(repeats, "the scorer benchmark's repeats", low=1, high=10**7)  # a median of none is NaN
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as scratch, Recommender.open(bundle, history=Path(scratch) / "h.db") as rec:
        scorer = open_scorer(rec.models.manifest, rec.models.bundle)
        if scorer is None:  # the file's name only: a full path can name the user
            raise BundleError(f"{checks.file_name(bundle)} ships no interpretable scorer (ranking.scorer); "
                              "benchmark a bundle exported with one")
        cat = rec.catalog
        if len(cat) < HISTORY:
            raise BundleError(f"the scorer benchmark needs a catalog of at least {HISTORY} items "
                              f"(this one has {len(cat)})")
        checks.integer(candidates, "the scorer benchmark's candidates", low=1, high=len(cat))  # drawn without repeats
        featurize = device_featurizer(cat)
        history = rng.choice(len(cat), HISTORY, replace=False)
        pool = rng.choice(len(cat), candidates, replace=False)
        user = cat.vectors(history).mean(0)
        items = cat.vectors(pool)
        args = (user, items, pool, history, 21.0, 1, 1_790_000_000, history[-2:])
        side = featurize.side(history, history[-2:])  # what a device keeps between a user's requests
        full, kept, score_only = [], [], []
        for _ in range(repeats):
            began = time.perf_counter()
            feats = featurize(*args)
            scorer.score(feats)
            middle = time.perf_counter()
            scorer.contributions(feats)
            full.append((middle - began) * 1e3)
            score_only.append((time.perf_counter() - middle) * 1e3)
            began = time.perf_counter()
            scorer.score(featurize(*args, side))
            kept.append((time.perf_counter() - began) * 1e3)
    return {"candidates": candidates, "features_and_score_ms": float(np.median(full)),
            "features_and_score_side_kept_ms": float(np.median(kept)), "contributions_ms": float(np.median(score_only))}


def main(argv: list[str]) -> int:
    """The command line: usage for no bundle or -h, the error's words (no traceback) for a bad bundle."""
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[-1].strip())
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    try:
        print(bench_scorer(argv[0]))
    except EdgerecError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
