"""Stand-ins for runtime parts that several test files hand-make, kept in one place. Device side: numpy only
(host tests import it too; the device suite imports nothing from tests/ above this folder)."""

from __future__ import annotations

import numpy as np


class ProviderCatalog:
    """The columns the fairness stage reads of an ItemCatalog: provider codes (-1: none) named p0, p1, ...,
    plays (the popularity column), and creators and genres for the policy's caps. By default four items:
    providers p0, p0, p1 and none; creators c, c, d, e; genres g, h, g, h; plays 60, 20, 20, 500."""

    def __init__(self, codes=(0, 0, 1, -1), plays=(60, 20, 20, 500), creators=("c", "c", "d", "e"),
                 genres=("g", "h", "g", "h")):
        self.codes, self.plays = np.asarray(codes, np.int64), np.asarray(plays, np.float64)
        names = np.array([f"p{c}" for c in range(int(self.codes.max(initial=-1)) + 1)] + [""], object)
        self.columns = {"provider": names[self.codes], "creator": np.array(creators, object),
                        "genre": np.array(genres, object)}
        self.categorical = {"provider": None, "creator": None, "genre": None}

    def __len__(self):
        return len(self.codes)

    def column(self, name, rows):
        return self.columns[name][rows]

    def code_column(self, name):
        assert name == "provider"
        return self.codes

    def numeric_column(self, name, rows):
        assert name == "popularity"
        return self.plays[rows]

    def _cached(self, name, build):
        return build()
