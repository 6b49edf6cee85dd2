"""NumPy .npz files: members' shapes read from their headers and size-checked before any is loaded."""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kfcore.data import bounded
from kfcore.data.dataset import DataError, Dataset, as_images, check_size, finish
from kfcore.runs.limits import Limits
from kfcore.spec import DataSpec

if TYPE_CHECKING:
    pass


# -- NPZ files ------------------------------------------------------------------------------------


def load_npz(spec: DataSpec, limits: Limits) -> Dataset:
    if not spec.path:
        raise DataError("an NPZ source needs the path of the .npz file to read")
    path = Path(spec.path)
    howto = "save your arrays with numpy.savez(path, x=features_or_images, y=labels)"
    try:
        with open(path, "rb") as f:
            single = f.read(6) == b"\x93NUMPY"  # np.load would read the whole array just to say it is not an npz
        archive = None if single else np.load(path, allow_pickle=False)  # never unpickle: a pickle can run any code
    except FileNotFoundError:
        raise DataError(f"the file {path.name} does not exist; upload it again") from None
    except ValueError:
        # numpy falls back to unpickling anything that is not .npy / .npz, and refuses to.
        raise DataError(
            f"{path.name} is not an .npz archive of plain arrays (reading it would mean unpickling, which is "
            f"refused for safety); {howto}"
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"could not read {path.name} ({e}); {howto}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path.name} holds a single array, not an .npz archive; {howto}")
    with archive:
        present = list(archive.files)
        missing = [k for k in ("x", "y") if k not in present]
        if missing:
            raise DataError(
                f"{path.name} has no array named {' or '.join(repr(k) for k in missing)}; it holds "
                f"{', '.join(repr(k) for k in present) or 'no arrays'}. {howto}"
            )
        if ("x_test" in present) != ("y_test" in present):
            raise DataError(f"{path.name} has only one of x_test and y_test; store both or neither")
        _check_npz_size(path, [k for k in ("x", "y", "x_test", "y_test") if k in present], howto, limits)
        arrays = {k: _npz_array(archive, k, path.name) for k in ("x", "y", "x_test", "y_test") if k in present}
    x, y = arrays["x"], arrays["y"]
    x_test, y_test = arrays.get("x_test"), arrays.get("y_test")
    for key, arr in (("x", x), ("x_test", x_test)):
        if arr is not None and arr.dtype.kind not in "biuf":
            raise DataError(f"array {key!r} in {path.name} holds {arr.dtype} values; x must hold numbers")
    y = _label_vector(y, "y", path.name)
    if y_test is not None:
        y_test = _label_vector(y_test, "y_test", path.name)
    if x.ndim not in (1, 2, 3, 4):
        raise DataError(f"array 'x' in {path.name} has shape {x.shape}; use N×features, N×H×W or N×H×W×C")
    if x_test is not None and y_test is not None:
        if x_test.shape[1:] != x.shape[1:] or len(x_test) != len(y_test) or len(x_test) == 0:
            raise DataError(
                f"{path.name}: x_test {x_test.shape} and y_test {y_test.shape} must match x {x.shape} sample for sample"
            )

    notes: list[str] = []
    if x.ndim >= 3:
        x, x_test = as_images(x, x_test, notes)
        kind = f"{len(x):,} images of {'×'.join(str(s) for s in x.shape[1:])}"
        feature_names: list[str] = []
    else:
        x = x.reshape(len(x), -1).astype(np.float32)
        x_test = None if x_test is None else x_test.reshape(len(x_test), -1).astype(np.float32)
        kind = f"{len(x):,} rows of {x.shape[1]} features"
        feature_names = [f"x{i + 1}" for i in range(x.shape[1])]
    if x_test is not None:
        kind += f", own test set of {len(x_test):,}"
    name = spec.name or path.stem
    return finish(
        spec,
        name,
        f"NPZ file {path.name}: {kind}",
        x,
        y,
        "y",
        feature_names=feature_names,
        x_test=x_test,
        y_test=y_test,
        notes=notes,
    )


def _label_vector(arr: np.ndarray, key: str, file_name: str) -> np.ndarray:
    """Labels as one value per sample; a column vector (N, 1) is accepted as such."""
    if arr.ndim == 2 and arr.shape[1] == 1:
        return arr[:, 0]
    if arr.ndim == 2:
        raise DataError(
            f"array {key!r} in {file_name} has shape {arr.shape}; store one label per sample, not one-hot rows "
            f"({key}.argmax(axis=1) turns one-hot rows into class indices)"
        )
    if arr.ndim != 1:
        raise DataError(f"array {key!r} in {file_name} has shape {arr.shape}; store one label per sample")
    return arr


def _check_npz_size(path: Path, keys: list[str], howto: str, limits: Limits) -> None:
    """Refuse an archive whose arrays, as their headers declare them, are over the limits: before one is read."""
    try:
        headers = bounded.npz_headers(path)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"could not read {path.name} ({e}); the file may be damaged") from None
    need, rows = 0, 0
    for key in keys:
        header = headers.get(key)
        if header is None:
            raise DataError(f"{key!r} in {path.name} is not a NumPy array; {howto}")
        shape, dtype = header
        if dtype.hasobject:
            raise DataError(_OBJECT_ARRAY.format(key=key, file=path.name))
        count = math.prod(shape)
        need += count * dtype.itemsize
        if key in ("x", "x_test"):
            need += count * 4  # the float32 copy the model trains on
            rows += shape[0] if shape else 0
    check_size(path.name, rows, need, limits)


_OBJECT_ARRAY = (
    "array {key!r} in {file} holds Python objects; object arrays are refused for safety (loading them "
    "means unpickling, which can run any code). Store numbers only (text labels as a fixed-width string "
    "array, e.g. y.astype(str))"
)


def _npz_array(archive: np.lib.npyio.NpzFile, key: str, file_name: str) -> np.ndarray:
    try:
        return archive[key]
    except ValueError:
        raise DataError(_OBJECT_ARRAY.format(key=key, file=file_name)) from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"could not read array {key!r} from {file_name} ({e}); the file may be damaged") from None
