"""IDX files (MNIST's format): the header read and size-checked before the data."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kfcore.data.dataset import DataError, Dataset, as_images, check_size, finish
from kfcore.runs.limits import Limits
from kfcore.spec import DataSpec

if TYPE_CHECKING:
    pass


_MAX_IDX_BYTES = 4 << 30  # refuse IDX headers that promise more than 4 GiB (a damaged or hostile file)


# -- IDX files ------------------------------------------------------------------------------------

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path, what: str, limits: Limits | None = None) -> np.ndarray:
    """An IDX array (MNIST's format), gzip-compressed or raw; gzip is recognised by its magic bytes.

    With limits, the header's dimensions are checked against them before any data is read."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in _IDX_TYPES or head[3] == 0:
                raise DataError(
                    f"the {what} file {path.name} is not an IDX file (it should start with 0 0, a type code and "
                    "the number of dimensions); use MNIST-style files such as t10k-images-idx3-ubyte.gz"
                )
            dims = [int(d) for d in np.frombuffer(f.read(4 * head[3]), ">u4")]
            dtype = np.dtype(_IDX_TYPES[head[2]])
            nbytes = math.prod(dims) * dtype.itemsize
            if len(dims) != head[3] or nbytes > _MAX_IDX_BYTES:
                raise DataError(
                    f"the {what} file {path.name} has a damaged IDX header (dimensions {dims}); get the file again"
                )
            if limits is not None:  # the raw values plus their float32 (images) or int64 (labels) copy
                check_size(path.name, dims[0], nbytes + math.prod(dims) * (8 if len(dims) == 1 else 4), limits)
            data = f.read(nbytes)
    except FileNotFoundError:
        raise DataError(f"the {what} file {path.name} does not exist; upload it again") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"could not read the {what} file {path.name}: {e}") from None
    if len(data) != nbytes:
        raise DataError(
            f"the {what} file {path.name} is cut short: its header promises {nbytes:,} bytes of data, it holds "
            f"{len(data):,}; the file is incomplete (an interrupted download or copy?): get it again"
        )
    return np.frombuffer(data, dtype).reshape(dims).astype(dtype.newbyteorder("="))


def load_idx(spec: DataSpec, limits: Limits) -> Dataset:
    if not spec.images or not spec.labels:
        raise DataError("an IDX source needs both an images file and a labels file (e.g. t10k-images-idx3-ubyte.gz)")
    images = read_idx(spec.images, "images", limits)
    labels = read_idx(spec.labels, "labels", limits)
    if labels.ndim != 1 or images.ndim not in (3, 4):
        swapped = " (are the two files swapped?)" if images.ndim == 1 else ""
        raise DataError(
            f"expected images of shape N×H×W and labels of shape N, got images {images.shape} and labels "
            f"{labels.shape}{swapped}"
        )
    if len(images) != len(labels):
        raise DataError(
            f"the images file holds {len(images):,} images but the labels file holds {len(labels):,} labels; "
            "pick files that belong together (both train- or both t10k-)"
        )
    notes: list[str] = []
    x, _ = as_images(images, None, notes)
    name = spec.name or Path(spec.images).name.split(".")[0]
    h, w, c = x.shape[1:]
    description = f"IDX images {Path(spec.images).name}: {len(x):,} images of {h}×{w}×{c}"
    return finish(spec, name, description, x, labels, "the labels", notes=notes)
