"""Dataset registry: built-in sets, Keras downloads, CSV / NPZ / IDX files, and the train/val/test split.

Pure numpy (plus scikit-learn's bundled sets and pandas for CSV); no TensorFlow, so the web process can
show data too. scikit-learn and pandas are imported inside the functions that need them: importing
this module stays cheap (scikit-learn alone takes about a second).

Every failure the user can cause or fix (a missing file, a wrong column, no network) is raised as a
DataError whose message says what is wrong and what to do; lower-level exceptions never leak.

Conventions of the returned Dataset:
- tabular x is float32 and not standardised (the model does that with a Normalization layer adapted on
  the training split); a CSV's x is made by its recipe (kfcore.data.recipe: gaps filled, text one-hot encoded
  as 0/1, dates as numbers), fitted on the training rows of the run's split;
- images are float32 (N, H, W, C) scaled to [0, 1];
- classification y holds int64 codes 0..K-1 in sorted order of the original labels, class_names the
  labels as text; regression y is float32 and class_names is empty.

The package: dataset (Dataset, DataError, the target's rules), load (load_dataset), split, builtin, downloads
(the Keras sets), images (IDX), imagefolder (a ZIP of class folders), npz, tables (CSV), recipe (a table's
preparation), uploads, bounded, sandbox and cache. Its public names below are read from their modules on first
use, so importing one module of the package (uploads, from kfcore.runs.limits) does not import the rest, nor loop
back into it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_PUBLIC = {
    # kfcore.data.builtin
    "BUILTIN_INFO": "builtin",
    "PLAYGROUND_GENERATORS": "builtin",
    "circle": "builtin",
    "gauss": "builtin",
    "spiral": "builtin",
    "xor": "builtin",
    # kfcore.data.dataset
    "MAX_CLASSES": "dataset",
    "MAX_CLASSES_AUTO": "dataset",
    "TARGET_NAMES": "dataset",
    "DataError": "dataset",
    "DataMemoryError": "dataset",
    "Dataset": "dataset",
    "Splits": "dataset",
    "class_counts": "dataset",
    "fingerprint": "dataset",
    "propose_target": "dataset",
    # kfcore.data.downloads
    "DOWNLOAD_HASHES": "downloads",
    "KERAS_INFO": "downloads",
    "KERAS_URLS": "downloads",
    # kfcore.data.images
    "read_idx": "images",
    # kfcore.data.load
    "load_dataset": "load",
    # kfcore.data.split
    "can_stratify": "split",
    "split_count": "split",
    "split_dataset": "split",
    # kfcore.data.tables
    "CSV_TEXT_SHARE": "tables",
    "MAX_HEADER_BYTES": "tables",
    "csv_columns": "tables",
    "read_csv": "tables",
    "tidy_columns": "tables",
    "with_recipe": "tables",
}
__all__ = [
    "BUILTIN_INFO",
    "CSV_TEXT_SHARE",
    "DOWNLOAD_HASHES",
    "DataError",
    "DataMemoryError",
    "Dataset",
    "KERAS_INFO",
    "KERAS_URLS",
    "MAX_CLASSES",
    "MAX_CLASSES_AUTO",
    "MAX_HEADER_BYTES",
    "PLAYGROUND_GENERATORS",
    "Splits",
    "TARGET_NAMES",
    "can_stratify",
    "circle",
    "class_counts",
    "csv_columns",
    "fingerprint",
    "gauss",
    "load_dataset",
    "propose_target",
    "read_csv",
    "read_idx",
    "spiral",
    "split_count",
    "split_dataset",
    "tidy_columns",
    "with_recipe",
    "xor",
]

if TYPE_CHECKING:
    from kfcore.data.builtin import BUILTIN_INFO, PLAYGROUND_GENERATORS, circle, gauss, spiral, xor
    from kfcore.data.dataset import (
        MAX_CLASSES,
        MAX_CLASSES_AUTO,
        TARGET_NAMES,
        DataError,
        DataMemoryError,
        Dataset,
        Splits,
        class_counts,
        fingerprint,
        propose_target,
    )
    from kfcore.data.downloads import DOWNLOAD_HASHES, KERAS_INFO, KERAS_URLS
    from kfcore.data.images import read_idx
    from kfcore.data.load import load_dataset
    from kfcore.data.split import can_stratify, split_count, split_dataset
    from kfcore.data.tables import CSV_TEXT_SHARE, MAX_HEADER_BYTES, csv_columns, read_csv, tidy_columns, with_recipe


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'kfcore.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kfcore.data.{_PUBLIC[name]}"), name)
    globals()[name] = value
    return value
