"""load_dataset: the DataSpec's source read by its loader, every failure a DataError fit to show the user."""

from __future__ import annotations

import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from kfcore.data.builtin import load_builtin
from kfcore.data.dataset import DataError, DataMemoryError, Dataset
from kfcore.data.downloads import load_keras
from kfcore.data.imagefolder import load_image_folder
from kfcore.data.images import load_idx
from kfcore.data.npz import load_npz
from kfcore.data.tables import load_csv
from kfcore.runs.limits import Limits
from kfcore.spec import TASKS, DataSpec, SplitSpec


def load_dataset(
    spec: DataSpec, cache_dir: str | Path | None = None, limits: Limits | None = None, split: SplitSpec | None = None
) -> Dataset:
    """Load the data a DataSpec describes, or raise DataError with a message fit to show the user.

    A CSV's recipe (kfcore.data.recipe) is fitted on the training rows of `split` (None: a new run's default split);
    with_recipe refits it for another split.

    cache_dir only matters for the "keras" source: where downloads are kept (default: Keras' own cache,
    $KERAS_HOME/datasets or ~/.keras/datasets). A file (CSV, NPZ, IDX) over limits' rows or memory share
    (default: this process's Limits.from_env()) is refused from its headers, before its data is read.
    """
    loaders: dict[str, Callable[[], Dataset]] = {
        "builtin": lambda: load_builtin(spec),
        "keras": lambda: load_keras(spec, cache_dir),
        "csv": lambda: load_csv(spec, limits or Limits.from_env(), split),
        "npz": lambda: load_npz(spec, limits or Limits.from_env()),
        "idx": lambda: load_idx(spec, limits or Limits.from_env()),
        "images": lambda: load_image_folder(spec, limits or Limits.from_env()),
    }
    if spec.source not in loaders:
        raise DataError(f"unknown data source {spec.source!r}; choose one of {', '.join(loaders)}")
    if spec.task not in TASKS:
        raise DataError(f"unknown task {spec.task!r}; choose one of {', '.join(TASKS)}")
    try:
        return loaders[spec.source]()
    except DataError:
        raise
    except MemoryError:
        raise DataMemoryError(
            "the data does not fit in this machine's memory; use a smaller file or a smaller set"
        ) from None
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError) as e:
        # A safety net: the loaders translate the failures they expect; anything else still reads as a message.
        raise DataError(f"could not load the {spec.source} data: {e}") from None
