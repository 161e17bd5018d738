"""The explanation study: a made-up user's list from the interpretable scorer, with a plot of each item's
contributions (the demo report's explanation figure; `edgerec explain --plot` draws the same).

The user is made up (they played the catalog's most popular items): the list of a replayed user, and
its reasons ("because you watched ..."), would put part of that user's history in the report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgerec.runtime.explain_scores import explain_list
from edgerec.studies.base import Progress, Study, Table, pyplot, save_figure
from edgerec.studies.devices import MADE_UP_USER, made_up_user, open_device

SHOWN = 6  # features drawn per plot (the largest by total absolute contribution), the rest as "other"


@dataclass
class ExplainStudy(Study):
    name = "explain"
    draws = True
    bundle: Path
    played: int = 5  # the made-up user's history: this many of the most popular items
    k: int = 10
    device: str = "tv"

    def measure(self, progress: Progress) -> dict:
        with open_device(self.bundle) as rec:
            played = made_up_user(rec, self.played)
            items = explain_list(rec, MADE_UP_USER, self.k, {"device": self.device, "hour": 21.0})
        progress(f"explained {len(items)} items for a made-up user", {})
        return {"device": self.device, "played": played, "items": items}  # reports never name a user

    @classmethod
    def tables(cls, record: dict) -> list[Table]:
        rows = [{"item": i["item_id"], "title": i["title"], "score": i["score"], "why": i["why"]}
                for i in record["items"]]
        return [Table(f"why a user who played the most popular items sees these ({record['device']}, 21:00)", rows)]

    @classmethod
    def draw(cls, record: dict, path: Path) -> Path | None:
        return plot_contributions(record["items"], path)


def plot_contributions(items: list[dict], path: str | Path) -> Path | None:
    """Stacked horizontal bars: each item's contributions (positive right, negative left)."""
    plt = pyplot()
    if plt is None:
        return None
    totals: dict[str, float] = {}
    for item in items:
        for name, value in item["contributions"].items():
            totals[name] = totals.get(name, 0.0) + abs(value)
    shown = sorted(totals, key=lambda n: -totals[n])[:SHOWN]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(items) + 1.5))
    colours = plt.get_cmap("tab10")
    labels = [f"{i['title'][:28]} ({i['item_id']})" for i in items][::-1]
    ys = range(len(items))
    pos_left, neg_left = [0.0] * len(items), [0.0] * len(items)  # where each item's next bar starts
    for c, name in enumerate(shown + ["other"]):
        values = [sum(v for n, v in i["contributions"].items() if n not in shown) if name == "other"
                  else i["contributions"].get(name, 0.0) for i in items][::-1]
        pos = [max(v, 0.0) for v in values]
        neg = [min(v, 0.0) for v in values]
        ax.barh(ys, pos, left=pos_left, color=colours(c), label=name)
        ax.barh(ys, neg, left=neg_left, color=colours(c))
        pos_left = [a + b for a, b in zip(pos_left, pos)]
        neg_left = [a + b for a, b in zip(neg_left, neg)]
    ax.scatter([i["score"] for i in items][::-1], ys, color="black", zorder=3, s=12, label="score")
    ax.set_yticks(list(ys), labels, fontsize=7)
    ax.axvline(0, color="grey", lw=0.6)
    ax.set_xlabel("contribution to the scorer's score")
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path)
