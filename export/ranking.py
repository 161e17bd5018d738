"""The bundle's `ranking` section at export: the interpretable scorer's arrays and the context priors.

The context priors are learned from the training log: for each device and
each part of the day, the log lift of every modality's share of consumptions
over its share in the whole log (add-one smoothed, clipped), so the device can
favour short clips on a phone in the morning and films on a TV at night. The part of the day is the log's
local time (the zone it was imported with, `data/local_hours.py`), as the device reads its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgerec.data.local_hours import dataset_zone, local_hours
from edgerec.data.schema import EVENT_CODE, Dataset
from edgerec.data.split import Split
from edgerec.errors import ModelError
from edgerec.runtime.bundle import BundleWriter
from edgerec.runtime.checks import file_name
from edgerec.runtime.scorer import DAY_PARTS, SCORER_VERSION, day_part
from edgerec.runtime.vocab import CONSUMED_LOG_EVENTS, DEVICES, MODALITIES

CONTEXT_WEIGHT = 0.3  # default boost per unit of lift, in relevance deviations
ENGAGEMENT = 0.3  # default pull of liked / finished items on the query
MAX_LIFT = 1.5


def context_prior(dataset: Dataset, split: Split) -> dict:
    """Per device and per part of day: log lift of each modality's consumption share."""
    log = dataset.interactions
    consumed = split.train_events & np.isin(log.event, [EVENT_CODE[e] for e in CONSUMED_LOG_EVENTS])
    code = {m: i for i, m in enumerate(MODALITIES)}
    item_modality = np.array([code.get(m, -1) for m in dataset.catalog.text["modality"]], np.int64)
    modality = item_modality[log.item[consumed]]
    known = modality >= 0
    modality = modality[known]
    device = log.device[consumed][known].astype(np.int64)
    hours = local_hours(log.timestamp[consumed][known], dataset_zone(dataset))  # the log's local time of day
    part = np.array([day_part(h) for h in hours], np.int64) if known.any() else np.zeros(0, np.int64)
    m = len(MODALITIES)
    overall = (np.bincount(modality, minlength=m) + 1.0) / (len(modality) + m)

    def lifts(groups: np.ndarray, names: tuple[str, ...]) -> dict:
        out = {}
        for g, name in enumerate(names):
            counts = np.bincount(modality[groups == g], minlength=m) + 1.0
            if counts.sum() > m:  # a context never seen keeps no row (no lift)
                lift = np.clip(np.log(counts / counts.sum() / overall), -MAX_LIFT, MAX_LIFT)
                out[name] = [round(float(v), 4) for v in lift]
        return out

    return {"modalities": list(MODALITIES), "device": lifts(device, DEVICES), "day_part": lifts(part, DAY_PARTS),
            "weight": CONTEXT_WEIGHT, "events": int(len(modality))}


def add_scorer(writer: BundleWriter, scorer_dir: str | Path, checkpoint: str | Path) -> dict:
    """The scorer's arrays as .npy files and its manifest entry (names, files, measured NDCG)."""
    from edgerec.models.scorer import load_scorer

    scorer, payload = load_scorer(scorer_dir)
    if Path(payload["retrieval"]).resolve() != Path(checkpoint).resolve():
        raise ModelError(f"the scorer {file_name(scorer_dir)} was trained for {file_name(payload['retrieval'])}, not for {file_name(checkpoint)}; "
                         "train one for this model with `edgerec scorer train --retrieval MODEL`")
    arrays = {name: writer.add_array(f"ranking/scorer_{name}.npy", value) for name, value in scorer.arrays().items()}
    info = payload.get("info", {})
    metrics = {k: v for k, v in info.items() if k in ("validation", "test")}
    return {"version": SCORER_VERSION, "features": list(scorer.names), "arrays": arrays, "metrics": metrics}


def ranking_section(writer: BundleWriter, dataset: Dataset, split: Split, checkpoint: str | Path,
                    scorer: str | Path | None = None) -> dict:
    section = {"context_prior": context_prior(dataset, split), "engagement": ENGAGEMENT}
    if scorer is not None:
        section["scorer"] = add_scorer(writer, scorer, checkpoint)
    return section
