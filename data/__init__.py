"""Data: the neutral item/interaction model, the synthetic audio/video world,
loaders for the user's own files (CSV, Parquet, MovieLens), splits and sampling."""

from edgerec.data.loaders import ColumnMap, ReadOptions, import_dataset
from edgerec.data.releases import load_movielens
from edgerec.data.schema import CONSUMED_EVENTS, EVENTS, MODALITIES, Catalog, Dataset, Interactions
from edgerec.data.store import load_dataset, save_dataset
from edgerec.data.synth import SynthConfig, synth_dataset, write_synth

__all__ = [
    "CONSUMED_EVENTS", "EVENTS", "MODALITIES", "Catalog", "ColumnMap", "Dataset", "Interactions",
    "ReadOptions", "SynthConfig", "import_dataset", "load_dataset", "load_movielens", "save_dataset",
    "synth_dataset", "write_synth",
]
