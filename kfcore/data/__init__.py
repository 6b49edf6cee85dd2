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
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import math
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from kfcore.data import bounded
from kfcore.runs.limits import Limits, data_budget_bytes, rows_problem
from kfcore.spec import BUILTIN_SETS, KERAS_SETS, SYNTHETIC_SETS, TASKS, DataSpec, SplitSpec

if TYPE_CHECKING:
    import pandas as pd

    from kfcore.data.recipe import Recipe


class DataError(ValueError):
    """Data that cannot be used, with a message that says what is wrong and what to do."""


class DataMemoryError(DataError):
    """Loading ran out of memory (a MemoryError, or an address-space cap that was hit)."""


@dataclass
class Dataset:
    """Features and targets ready for a model.

    x: float32; tabular (N, F), images (N, H, W, C) scaled to [0, 1].
    y: int64 class indices 0..K-1 for classification, float32 for regression.
    x_test / y_test: a test set the source defines itself (MNIST's official one, an NPZ's x_test), else None.
    """

    name: str
    description: str
    x: np.ndarray
    y: np.ndarray
    task: str  # "multiclass" | "binary" | "regression"
    class_names: list[str] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)  # what loading did that the user should know
    task_reason: str = ""  # one line: why the data is this task ("multiclass: … holds text labels, 3 classes …")
    # A table's raw feature columns (rows without a target left out), its target's handling and the recipe that
    # made x from them, fitted on the training rows (with_recipe); None for sources that are arrays already.
    frame: pd.DataFrame | None = None
    target: dict = field(default_factory=dict)  # {column, numbers (text read as numbers), format, task, classes}
    recipe: Recipe | None = None
    recipe_notes: list[str] = field(default_factory=list)  # the notes of the recipe, replaced when it is refitted

    @property
    def is_image(self) -> bool:
        return self.x.ndim == 4

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.x.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


@dataclass
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    stratified: bool = False  # every split kept the class proportions
    # Where each split's samples are in Dataset.x (test_index None: the source's own test set), so a run can save
    # them and its samples are found again without splitting the data anew.
    train_index: np.ndarray | None = None
    val_index: np.ndarray | None = None
    test_index: np.ndarray | None = None


BUILTIN_INFO: dict[str, str] = {
    "digits": "1,797 handwritten digits as 8×8 grey images, 10 classes (scikit-learn's small MNIST)",
    "iris": "150 iris flowers: 4 petal and sepal measurements, 3 species",
    "wine": "178 Italian wines: 13 chemical measurements, 3 grape cultivars",
    "breast_cancer": "569 breast tumour biopsies: 30 cell-nucleus measurements, malignant or benign",
    "diabetes": "442 diabetes patients: 10 baseline measurements → disease progression a year later (regression)",
    "circle": "Playground: a disc of one class inside a ring of the other (2-D, binary)",
    "xor": "Playground: four quadrants, the sign of x1·x2 gives the class (2-D, binary)",
    "gauss": "Playground: two Gaussian blobs that overlap as noise grows (2-D, binary)",
    "spiral": "Playground: two interleaved spirals, the hardest toy set (2-D, binary)",
    "moons": "two interleaving half-moons (scikit-learn make_moons, 2-D, binary)",
}

KERAS_INFO: dict[str, str] = {
    "mnist": "70,000 handwritten digits, 28×28 grey, 10 classes, official 10,000-image test set (11 MB download)",
    "fashion_mnist": "70,000 Zalando clothing photos, 28×28 grey, 10 classes, official 10,000-image test set (30 MB download)",
    "cifar10": "60,000 small colour photos, 32×32×3, 10 classes, official 10,000-image test set (170 MB download)",
}

# Cache-relative file name -> URL, as Keras names and places them, so a cache Keras filled is reused
# (and the other way round). CIFAR-10 is the binary release: the Python one would need unpickling.
_KERAS_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
KERAS_URLS: dict[str, dict[str, str]] = {
    "mnist": {"mnist.npz": _KERAS_BASE + "mnist.npz"},
    "fashion_mnist": {
        f"fashion-mnist/{f}": _KERAS_BASE + f
        for f in (
            "train-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
        )
    },
    "cifar10": {"cifar-10-binary.tar.gz": "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"},
}
# Published checksums (Keras' for mnist.npz, the CIFAR page's for the binary archive): a proxy's or
# captive portal's answer must never end up in the cache looking like data.
DOWNLOAD_HASHES: dict[str, tuple[str, str]] = {
    "mnist.npz": ("sha256", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"),
    "cifar-10-binary.tar.gz": ("md5", "c32a1d4ab5d03f1284b67883e8d87530"),
}
DOWNLOAD_TIMEOUT_S = 10.0

DIGIT_NAMES = [str(i) for i in range(10)]
FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

_OFFLINE_ALTERNATIVES = {
    "mnist": "the built-in 'digits' set (8×8 handwritten digits), or upload MNIST yourself as IDX or NPZ files.",
    "fashion_mnist": "the built-in 'digits' set (8×8 handwritten digits), or upload Fashion-MNIST yourself as IDX or NPZ files.",
    "cifar10": "the built-in 'digits' set (8×8 handwritten digits), or upload CIFAR-10 yourself as an NPZ file "
    "(x: N×32×32×3 uint8 images, y: labels).",
}

MAX_CLASSES_AUTO = 50  # integer targets with more distinct values than this are treated as regression
MAX_CLASSES = 1000  # a classification target with more distinct labels is refused: an ID, a name, or a number to predict
# Column names that usually hold what a table is for, in order of preference (matched ignoring case).
TARGET_NAMES = ("target", "label", "labels", "class", "y", "outcome", "species", "diagnosis", "survived", "price",
                "quality", "category", "result", "churn", "default")
_CIFAR_RECORD = 1 + 3 * 32 * 32  # one label byte, then the image as 3 planes of 32×32 (CHW)
_MAX_IDX_BYTES = 4 << 30  # refuse IDX headers that promise more than 4 GiB (a damaged or hostile file)


# -- public API -----------------------------------------------------------------------------------


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
        "builtin": lambda: _load_builtin(spec),
        "keras": lambda: _load_keras(spec, cache_dir),
        "csv": lambda: _load_csv(spec, limits or Limits.from_env(), split),
        "npz": lambda: _load_npz(spec, limits or Limits.from_env()),
        "idx": lambda: _load_idx(spec, limits or Limits.from_env()),
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


def split_dataset(ds: Dataset, split: SplitSpec) -> Splits:
    """Train / validation / test split, deterministic given split.seed.

    Fractions are of the whole dataset (test 0.2, validation 0.1 -> 70/10/20). A dataset with its own
    test set keeps it (split.test is ignored) and takes the validation fraction of ds.x. Classification
    splits are stratified whenever every class has enough members, else plainly shuffled.
    """
    n = len(ds.y)
    classify = ds.task != "regression"
    n_val = split_count(split.validation, n)
    # The split is made on sample numbers, then the samples are taken: the same partition train_test_split makes of
    # the arrays themselves (the exported script splits those), and the numbers are kept.
    i_rest, y_rest, i_test = np.arange(n), ds.y, None
    if ds.x_test is not None and ds.y_test is not None:
        x_test, y_test = ds.x_test, ds.y_test
        stratified = True
    else:
        if split.test <= 0:
            raise DataError(
                f"{ds.name} has no test set of its own and the test fraction is 0: set a test fraction above 0 "
                "(0.2 is usual) so the model is scored on data it never trained on"
            )
        n_test = split_count(split.test, n)
        if n - n_test - n_val < 2:
            raise DataError(_too_few_message(ds.name, n, n_test, n_val))
        i_rest, i_test, y_rest, y_test, stratified = _split_off(i_rest, ds.y, n_test, split.seed, classify)
        x_test = ds.x[i_test]
    if n_val == 0:
        return Splits(ds.x[i_rest], y_rest, None, None, x_test, y_test, stratified=classify and stratified,
                      train_index=i_rest, test_index=i_test)
    if len(y_rest) - n_val < 2:
        raise DataError(_too_few_message(ds.name, n, 0, n_val))
    i_train, i_val, y_train, y_val, val_stratified = _split_off(i_rest, y_rest, n_val, split.seed, classify)
    return Splits(ds.x[i_train], y_train, ds.x[i_val], y_val, x_test, y_test,
                  stratified=classify and stratified and val_stratified, train_index=i_train, val_index=i_val,
                  test_index=i_test)


def fingerprint(ds: Dataset) -> str:
    """A short digest of what a dataset holds (its shapes, targets and a sample of its features): a run saves it
    with its predictions, so its samples are only shown when the data is still the data it was scored on."""
    digest = hashlib.sha256(repr((ds.x.shape, ds.y.dtype.str, None if ds.x_test is None else ds.x_test.shape)).encode())
    digest.update(np.ascontiguousarray(ds.y).tobytes())
    digest.update(np.ascontiguousarray(ds.x[:: max(1, len(ds.x) // 64)]).tobytes())  # 64 rows: cheap for MNIST too
    return digest.hexdigest()[:16]


def class_counts(ds: Dataset) -> dict[str, int]:
    """Samples per class over the whole dataset (its own test set included), in class order; {} for regression."""
    if ds.task == "regression":
        return {}
    y = ds.y if ds.y_test is None else np.concatenate([ds.y, ds.y_test])
    counts = np.bincount(y, minlength=len(ds.class_names))
    return {name: int(c) for name, c in zip(ds.class_names, counts, strict=False)}


# -- splitting ------------------------------------------------------------------------------------


def split_count(fraction: float, n: int) -> int:
    """Samples a fraction of n stands for: at least one when the fraction is above 0."""
    return 0 if fraction <= 0 else max(1, round(fraction * n))


def _too_few_message(name: str, n: int, n_test: int, n_val: int) -> str:
    return (
        f"{name} has {n} samples: after {n_test} for testing and {n_val} for validation fewer than 2 are left to "
        "train on; lower the test and validation fractions or use more data"
    )


def _split_off(
    x: np.ndarray, y: np.ndarray, n_out: int, seed: int, classify: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """Split n_out samples off (x, y): (x_keep, x_out, y_keep, y_out, stratified)."""
    from sklearn.model_selection import train_test_split

    stratify = classify and can_stratify(y, n_out, len(y) - n_out)
    x_keep, x_out, y_keep, y_out = train_test_split(
        x, y, test_size=n_out, random_state=seed, shuffle=True, stratify=y if stratify else None
    )
    return x_keep, x_out, y_keep, y_out, stratify


def can_stratify(y: np.ndarray, n_out: int, n_keep: int) -> bool:
    # scikit-learn's own preconditions: two members per class, and room for every class on both sides.
    counts = np.bincount(y)
    counts = counts[counts > 0]
    return bool(counts.min() >= 2 and n_out >= len(counts) and n_keep >= len(counts))


# -- targets and the finished Dataset -------------------------------------------------------------


def _finish(
    spec: DataSpec,
    name: str,
    description: str,
    x: np.ndarray,
    y: np.ndarray,
    what: str,
    *,
    names: list[str] | None = None,
    feature_names: list[str] | None = None,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    notes: list[str] | None = None,
) -> Dataset:
    """Resolve the task, encode the target and check what every source must satisfy."""
    if len(x) != len(y):
        raise DataError(
            f"{name}: x has {len(x)} rows but there are {len(y)} values in {what}; give one label per sample"
        )
    if len(y) < 2:
        raise DataError(_too_few_rows(name, len(y), own_test=x_test is not None))
    for arr, label in ((x, "x"), (x_test, "x_test")):
        if arr is not None and not np.isfinite(arr).all():
            bad = int(arr.size - np.isfinite(arr).sum())
            raise DataError(f"{name}: {label} holds {bad} missing (NaN) or infinite values; fill or remove them first")
    raw_y = y
    y, y_test, task, class_names = _resolve_target(y, y_test, spec.task, what, names)
    if x_test is None and len(y) < 3:  # 2 to train on and 1 to test on (a source's own test set spares the 1)
        raise DataError(_too_few_rows(name, len(y)))
    return Dataset(
        task_reason=_task_reason(spec.task, task, class_names, raw_y, what),
        name=name,
        description=description,
        x=x,
        y=y,
        task=task,
        class_names=class_names,
        feature_names=feature_names or [],
        x_test=x_test,
        y_test=y_test,
        notes=notes or [],
    )


def _task_reason(requested: str, task: str, class_names: list[str], raw_y: np.ndarray, what: str) -> str:
    """One line on why the data is this task: chosen, or what the target holds that made 'auto' decide."""
    if requested != "auto":
        return f"{task}: the task chosen for this data"
    if task == "regression":
        values = np.unique(raw_y)
        integral = bool(np.all(np.mod(values, 1) == 0))
        kind = f"whole numbers, more than {MAX_CLASSES_AUTO} of them" if integral else "numbers with decimals"
        return f"regression: {len(values):,} different values in {what} ({kind}), so it is predicted as a number"
    shown = ", ".join(class_names[:4]) + (", …" if len(class_names) > 4 else "")
    kind = "text labels" if raw_y.dtype.kind in "OUSb" else f"at most {MAX_CLASSES_AUTO} whole numbers"
    return f"{task}: {len(class_names)} classes in {what} ({shown}), {kind}"


def propose_target(columns: list[str]) -> str | None:
    """The column a table most likely means to predict, by its name ('target', 'label', 'class', 'y', …), or None:
    then the person must choose (the last column is often an ID or a year, not the target)."""
    by_name = {c.strip().lower(): c for c in columns}
    for name in TARGET_NAMES:
        if name in by_name:
            return by_name[name]
    return None


def _resolve_target(
    y: np.ndarray, y_test: np.ndarray | None, requested: str, what: str, names: list[str] | None
) -> tuple[np.ndarray, np.ndarray | None, str, list[str]]:
    """(y, y_test, task, class_names) for the requested task ("auto" infers it)."""
    if y.dtype.kind not in "OUSbiuf":
        raise DataError(f"the values in {what} have the unsupported type {y.dtype}; store numbers or text labels")
    texty = y.dtype.kind in "OUSb"
    if not texty:
        for arr in (y, y_test):
            if arr is not None and not np.isfinite(arr).all():
                raise DataError(f"there are missing (NaN) or infinite values in {what}; remove those samples first")
    if requested == "regression":
        if texty:
            example = next(iter(np.unique(y)), "")
            raise DataError(
                f"task 'regression' needs a numeric target, but there are labels like {str(example)!r} in {what}; "
                "choose task 'auto' or a classification task"
            )
        return y.astype(np.float32), None if y_test is None else y_test.astype(np.float32), "regression", []

    if names is not None:
        # The source knows its classes: the labels already are the codes 0..K-1.
        codes, test_codes, class_names = y.astype(np.int64), None if y_test is None else y_test.astype(np.int64), names
    else:
        classes = np.unique(y)
        integral = not texty and bool(np.all(np.mod(classes, 1) == 0))
        if requested == "auto" and not texty and not (integral and len(classes) <= MAX_CLASSES_AUTO):
            return _resolve_target(y, y_test, "regression", what, None)
        codes = np.searchsorted(classes, y).astype(np.int64)
        test_codes = None
        if y_test is not None:
            unknown = np.setdiff1d(np.unique(y_test), classes)
            if len(unknown):
                shown = ", ".join(_label_text(v) for v in unknown[:5])
                raise DataError(f"the test labels include classes that never occur in {what}: {shown}")
            test_codes = np.searchsorted(classes, y_test).astype(np.int64)
        if len(classes) > MAX_CLASSES:
            examples = ", ".join(repr(_label_text(v)) for v in classes[:3])
            advice = (
                "choose another column to predict (an ID or a name cannot be learned as a class)"
                if texty
                else "to predict it as a number choose task 'regression', or choose another column to predict"
            )
            raise DataError(
                f"there are {len(classes):,} different values in {what} (like {examples}), too many classes for a "
                f"classifier (at most {MAX_CLASSES:,}): it looks like an ID, a name or a number to predict; {advice}"
            )
        class_names = [_label_text(v) for v in classes]

    k = len(class_names)
    if k < 2:
        only = class_names[0] if class_names else ""
        raise DataError(
            f"only one class ({only!r}) occurs in {what}; a classifier needs at least two different labels. "
            "Choose another column to predict, or add rows of the other classes"
        )
    if requested == "binary" and k != 2:
        raise DataError(
            f"task 'binary' needs exactly 2 classes, but there are {k} in {what}; choose 'multiclass' or 'auto'"
        )
    task = requested if requested != "auto" else ("binary" if k == 2 else "multiclass")
    return codes, test_codes, task, list(class_names)


def _too_few_rows(name: str, n: int, own_test: bool = False, dropped: str = "") -> str:
    """Why n rows cannot be split into training and test data, and how many it takes."""
    if own_test:
        need = "a model needs at least 2 to train on (in practice hundreds)"
    else:
        need = (
            "a model needs at least 2 to train on and 1 to test on (in practice hundreds), so 3 rows at the very "
            "least and 4 with a validation split"
        )
    return f"{name} has {n} usable rows; {need}. Add more rows{dropped}"


def _label_text(v: object) -> str:
    """A label as users wrote it: 3.0 read from a CSV column with gaps is still class '3'."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _mb(n_bytes: int) -> str:
    mb = n_bytes / 2**20
    return f"{mb:,.1f} MB" if mb < 10 else f"{mb:,.0f} MB"


def _check_size(file_name: str, n_rows: int, need: int, limits: Limits) -> None:
    """Refuse a file over the row limit or over the memory one dataset may take, before its data is read."""
    if rows := rows_problem(n_rows, limits):
        raise DataError(f"{file_name}: {rows}")
    budget = data_budget_bytes(limits)
    if need > budget:
        raise DataError(
            f"{file_name} needs about {_mb(need)} of memory to load, more than the {_mb(budget)} this server allows "
            f"one dataset (a quarter of its {limits.memory_budget_mb:,} MB memory budget, KF_MEMORY_BUDGET_MB); "
            "use fewer rows or smaller images"
        )


# -- built-in sets --------------------------------------------------------------------------------


def _load_builtin(spec: DataSpec) -> Dataset:
    name = spec.name or ""
    if name not in BUILTIN_SETS:
        raise DataError(f"unknown built-in set {name!r}; choose one of {', '.join(BUILTIN_SETS)}")
    if name in SYNTHETIC_SETS:
        return _load_synthetic(spec, name)

    from sklearn import datasets as skd

    if name == "digits":
        bunch = skd.load_digits()
        x = (bunch.images / 16.0).astype(np.float32)[..., None]  # pixel values are 0..16
        return _finish(spec, name, BUILTIN_INFO[name], x, bunch.target, "the digit labels", names=DIGIT_NAMES)
    loaders = {"iris": skd.load_iris, "wine": skd.load_wine, "breast_cancer": skd.load_breast_cancer,
               "diabetes": lambda: skd.load_diabetes(scaled=False)}  # diabetes in raw units; the model standardises
    bunch = loaders[name]()
    names = [str(t) for t in bunch.target_names] if "target_names" in bunch else None  # diabetes is a regression
    return _finish(
        spec,
        name,
        BUILTIN_INFO[name],
        bunch.data.astype(np.float32),
        bunch.target,
        "the target",
        names=names,
        feature_names=list(bunch.feature_names),
    )


def _load_synthetic(spec: DataSpec, name: str) -> Dataset:
    n, noise = int(spec.n), float(spec.noise)
    if n < 4 or not 0.0 <= noise <= 0.5:
        raise DataError(f"{name} needs at least 4 points and a noise from 0 to 0.5; got n={n}, noise={noise}")
    rng = np.random.default_rng(0)  # fixed: the same spec always shows the same points
    if name == "moons":
        from sklearn.datasets import make_moons

        pts, labels = make_moons(n_samples=n, noise=noise, random_state=0)
        # make_moons spans about [-1, 2] x [-0.5, 1]; centre and stretch it to Playground's [-6, 6] range.
        pts = (pts - [0.5, 0.25]) * 4.0
    else:
        generator = PLAYGROUND_GENERATORS[name]
        pts, labels = generator(n, noise, rng)
        order = rng.permutation(n)  # the generators emit one class after the other; Playground shuffles too
        pts, labels = pts[order], labels[order]
    description = f"{BUILTIN_INFO[name]}; {n} points, noise {noise:.0%}"
    return _finish(
        spec,
        name,
        description,
        pts.astype(np.float32),
        labels.astype(np.int64),
        "the class",
        feature_names=["x1", "x2"],
    )


# Playground's generators (tensorflow/playground src/dataset.ts), vectorised. Its labels are +1 / -1;
# here they are 1 / 0. Where Playground adds noise to the label's decision only (circle, xor), so do we.


def circle(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    radius, n_in = 5.0, (n + 1) // 2
    r = np.concatenate([rng.uniform(0, radius * 0.5, n_in), rng.uniform(radius * 0.7, radius, n - n_in)])
    angle = rng.uniform(0, 2 * np.pi, n)
    pts = np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)
    jitter = rng.uniform(-radius, radius, (n, 2)) * noise
    labels = np.linalg.norm(pts + jitter, axis=1) < radius * 0.5
    return pts, labels.astype(np.int64)


def xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    pts = rng.uniform(-5, 5, (n, 2))
    pts += np.where(pts > 0, 0.3, -0.3)  # a gap along the axes
    jitter = rng.uniform(-5, 5, (n, 2)) * noise
    labels = (pts[:, 0] + jitter[:, 0]) * (pts[:, 1] + jitter[:, 1]) >= 0
    return pts, labels.astype(np.int64)


def gauss(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    variance = 0.5 + noise / 0.5 * 3.5  # Playground maps noise 0..0.5 to variance 0.5..4
    n_pos = (n + 1) // 2
    pos = rng.normal(2.0, math.sqrt(variance), (n_pos, 2))
    neg = rng.normal(-2.0, math.sqrt(variance), (n - n_pos, 2))
    return np.concatenate([pos, neg]), np.repeat([1, 0], [n_pos, n - n_pos])


def spiral(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    def arm(m: int, delta: float) -> np.ndarray:
        i = np.arange(m) / m
        r, t = i * 5.0, 1.75 * i * 2 * np.pi + delta
        return np.stack([r * np.sin(t), r * np.cos(t)], axis=1) + rng.uniform(-1, 1, (m, 2)) * noise

    n_pos = (n + 1) // 2
    return np.concatenate([arm(n_pos, 0.0), arm(n - n_pos, np.pi)]), np.repeat([1, 0], [n_pos, n - n_pos])


# The generators by set name; the exported script copies the run's one verbatim (kfcore.export.script).
PLAYGROUND_GENERATORS = {"circle": circle, "xor": xor, "gauss": gauss, "spiral": spiral}


# -- Keras downloads ------------------------------------------------------------------------------


def _load_keras(spec: DataSpec, cache_dir: str | Path | None) -> Dataset:
    name = spec.name or ""
    if name not in KERAS_SETS:
        raise DataError(f"unknown downloadable set {name!r}; choose one of {', '.join(KERAS_SETS)}")
    paths = _fetch(name, _cache_root(cache_dir))
    notes: list[str] = []
    if name == "mnist":
        (x, y), (x_test, y_test) = _read_mnist_npz(paths["mnist.npz"])
        names = DIGIT_NAMES
    elif name == "fashion_mnist":
        base = "fashion-mnist/"
        x = _cached_idx(paths[base + "train-images-idx3-ubyte.gz"])
        y = _cached_idx(paths[base + "train-labels-idx1-ubyte.gz"])
        x_test = _cached_idx(paths[base + "t10k-images-idx3-ubyte.gz"])
        y_test = _cached_idx(paths[base + "t10k-labels-idx1-ubyte.gz"])
        names = FASHION_NAMES
    else:
        (x, y), (x_test, y_test) = _read_cifar_binary(paths["cifar-10-binary.tar.gz"])
        names = CIFAR10_NAMES
    for images, labels in ((x, y), (x_test, y_test)):
        if len(images) != len(labels) or images.ndim not in (3, 4) or labels.ndim != 1 or labels.max(initial=0) >= 10:
            raise _damaged(next(iter(paths.values())), "its images and labels do not fit together")
    x, x_test = _as_images(x, x_test, notes)
    return _finish(
        spec, name, KERAS_INFO[name], x, y, "the labels", names=names, x_test=x_test, y_test=y_test, notes=notes
    )


def _cache_root(cache_dir: str | Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("KERAS_HOME"):
        return Path(os.environ["KERAS_HOME"]).expanduser() / "datasets"
    return Path.home() / ".keras" / "datasets"


def _fetch(name: str, root: Path) -> dict[str, Path]:
    """The set's files in the cache, downloading the missing ones."""
    paths = {}
    for rel, url in KERAS_URLS[name].items():
        dest = root / rel
        if not dest.is_file():
            _download(name, url, dest, DOWNLOAD_HASHES.get(rel))
        paths[rel] = dest
    return paths


def _download(name: str, url: str, dest: Path, expected_hash: tuple[str, str] | None) -> None:
    """Download url to dest through a temporary file beside it, so the cache never holds half a file."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as e:
        raise DataError(
            f"cannot write the download cache {dest.parent} ({e.strerror or e}); set KERAS_HOME to a writable folder"
        ) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _stream(name, url, out, expected_hash[0] if expected_hash else "sha256")
        if expected_hash and digest != expected_hash[1]:
            raise DataError(
                f"the download of {name} from {url} is not the expected file (its {expected_hash[0]} checksum differs; "
                f"a proxy or login page may have answered instead); try again later. "
                f"Offline alternatives: {_OFFLINE_ALTERNATIVES[name]}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _stream(name: str, url: str, out: BinaryIO, algorithm: str) -> str:
    """Copy url into out; the hex digest of what arrived."""
    digest = hashlib.new(algorithm)
    alternatives = f"Offline alternatives: {_OFFLINE_ALTERNATIVES[name]}"
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            expected = response.headers.get("Content-Length")
            received = 0
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                received += len(chunk)
                try:
                    out.write(chunk)
                except OSError as e:
                    raise DataError(
                        f"could not save the download of {name}: {e.strerror or e} (is the disk full?)"
                    ) from None
            if expected and expected.isdigit() and int(expected) != received:
                raise DataError(
                    f"the download of {name} stopped after {received:,} of {int(expected):,} bytes; try again. {alternatives}"
                )
        return digest.hexdigest()
    except urllib.error.HTTPError as e:
        raise DataError(
            f"could not download {name}: {url} answered HTTP {e.code} {e.reason} (the file may have moved). {alternatives}"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = str(getattr(e, "reason", None) or e) or type(e).__name__
        raise DataError(
            f"could not download {name} ({reason}): this machine seems to be offline. {alternatives}"
        ) from None


def _damaged(path: Path, why: object) -> DataError:
    return DataError(f"the cached file {path} is damaged ({why}); delete it and load again to download a fresh copy")


def _read_mnist_npz(path: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return (z["x_train"], z["y_train"]), (z["x_test"], z["y_test"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise _damaged(path, e) from None


def _cached_idx(path: Path) -> np.ndarray:
    try:
        return read_idx(path, path.name)
    except DataError as e:
        raise _damaged(path, e) from None


def _read_cifar_binary(path: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The six batches of the binary CIFAR-10 archive, read straight from the tar stream (nothing extracted)."""
    wanted = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    batches: dict[str, np.ndarray] = {}
    try:
        with tarfile.open(path, "r|gz") as tar:  # a stream: one pass over the 170 MB archive
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if base in wanted and member.isfile():
                    if member.size % _CIFAR_RECORD:
                        raise _damaged(path, f"{base} is not a whole number of {_CIFAR_RECORD}-byte records")
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    batches[base] = np.frombuffer(data, np.uint8).reshape(-1, _CIFAR_RECORD)
    except (OSError, EOFError, zlib.error, tarfile.TarError) as e:
        raise _damaged(path, e) from None
    missing = [w for w in wanted if w not in batches]
    if missing:
        raise _damaged(path, f"it lacks {', '.join(missing)}")

    def images_labels(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # CHW -> HWC
        return images, records[:, 0].copy()

    train = images_labels(np.concatenate([batches[w] for w in wanted[:5]]))
    return train, images_labels(batches["test_batch.bin"])


# -- images ---------------------------------------------------------------------------------------


def _as_images(x: np.ndarray, x_test: np.ndarray | None, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, H, W) or (N, H, W, C) images as float32 (N, H, W, C) in [0, 1]; x_test gets the same scaling."""
    if x.ndim == 3:
        x = x[..., None]
        x_test = None if x_test is None else x_test[..., None]
    arrays = [x] if x_test is None else [x, x_test]
    if x.dtype == np.uint8:
        lo, span = 0.0, 255.0
    else:
        lo = float(min(a.min(initial=np.inf) for a in arrays))
        hi = float(max(a.max(initial=-np.inf) for a in arrays))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise DataError("the images hold missing (NaN) or infinite pixel values; fix or remove those images")
        if lo >= 0.0 and hi <= 1.0:
            lo, span = 0.0, 1.0
        else:
            span = hi - lo or 1.0
            notes.append(f"pixel values ran from {lo:g} to {hi:g}; scaled them to [0, 1]")
    scaled = []
    for a in arrays:
        f = a.astype(np.float32)  # a fresh float32 copy, then scaled in place (no float64 detour)
        if lo:
            f -= np.float32(lo)
        if span != 1.0:
            f /= np.float32(span)
        scaled.append(f)
    return scaled[0], (scaled[1] if x_test is not None else None)


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
                _check_size(path.name, dims[0], nbytes + math.prod(dims) * (8 if len(dims) == 1 else 4), limits)
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


def _load_idx(spec: DataSpec, limits: Limits) -> Dataset:
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
    x, _ = _as_images(images, None, notes)
    name = spec.name or Path(spec.images).name.split(".")[0]
    h, w, c = x.shape[1:]
    description = f"IDX images {Path(spec.images).name}: {len(x):,} images of {h}×{w}×{c}"
    return _finish(spec, name, description, x, labels, "the labels", notes=notes)


# -- NPZ files ------------------------------------------------------------------------------------


def _load_npz(spec: DataSpec, limits: Limits) -> Dataset:
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
        x, x_test = _as_images(x, x_test, notes)
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
    return _finish(
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
    _check_size(path.name, rows, need, limits)


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


# -- CSV files ------------------------------------------------------------------------------------


def _load_csv(spec: DataSpec, limits: Limits, split: SplitSpec | None) -> Dataset:
    import pandas as pd

    if not spec.path:
        raise DataError("a CSV source needs the path of the file to read")
    path = Path(spec.path)
    df = read_csv(path, limits)
    tidy_columns(df)
    columns = list(df.columns)
    target = (spec.target or "").strip()
    if target not in columns:
        shown = ", ".join(repr(c) for c in columns[:30]) + (
            f" … and {len(columns) - 30} more" if len(columns) > 30 else ""
        )
        problem = f"there is no column {target!r}" if target else "no target column is chosen"
        raise DataError(f"{path.name}: {problem}; the columns are: {shown}. Choose the column to predict")

    if len(df) == 0:
        raise DataError(f"{path.name} has a header row but no data rows; add one row per sample under the header")
    notes: list[str] = []
    n_rows = len(df)
    missing_target = df[target].isna()
    if missing_target.all():
        raise DataError(
            f"{path.name}: every value in the target column '{target}' is empty, so there is nothing to learn; "
            "choose the column that holds the values to predict"
        )
    if missing_target.any():
        notes.append(f"dropped {int(missing_target.sum())} rows whose target '{target}' is missing")
        df = df.loc[~missing_target].reset_index(drop=True)
    from kfcore.data import recipe as krecipe

    target_format, target_numbers = None, False
    if spec.task in ("auto", "regression"):
        # A number column with a few typos ('?', '12a') is still a number to predict, not thousands of text classes.
        mostly = krecipe.mostly_numbers(df[target])
        if mostly is not None:
            values, stray, target_format = mostly
            target_numbers = True
            keep = ~np.isnan(values)
            if target_format:
                notes.append(f"read the target '{target}' as numbers written with "
                             f"{krecipe.NUMBER_FORMATS[target_format]}")
            if stray:
                notes.append(f"dropped {len(stray)} rows whose target '{target}' is not a number "
                             f"({krecipe.examples(stray)})")
            df = df.loc[keep].reset_index(drop=True)
            df[target] = values[keep]
    if len(df) < 2:
        dropped = n_rows - len(df)
        raise DataError(
            _too_few_rows(path.name, len(df), dropped=f" ({dropped} rows had no usable '{target}')" if dropped else "")
        )

    y_col = df[target]
    if pd.api.types.is_bool_dtype(y_col):
        y = y_col.to_numpy(dtype=bool)
    elif pd.api.types.is_numeric_dtype(y_col):
        y = y_col.to_numpy()
    else:
        y = y_col.astype(str).to_numpy(dtype=object)
    name = spec.name or path.stem
    # The features come from the recipe, fitted once the split is known (with_recipe): a placeholder until then.
    dataset = _finish(spec, name, "", np.zeros((len(y), 0), np.float32), y, f"the target column '{target}'",
                      notes=notes)
    dataset.description = (
        f"CSV file {path.name}: {len(y):,} rows, {len(columns) - 1} columns → '{target}' ({dataset.task})"
    )
    dataset.frame = df.drop(columns=[target])
    dataset.target = {"column": target, "numbers": target_numbers, "format": target_format, "task": dataset.task,
                      "classes": dataset.class_names}
    return with_recipe(dataset, split)


def with_recipe(ds: Dataset, split: SplitSpec | None) -> Dataset:
    """A table's Dataset with its recipe fitted on the training rows of `split` and x made by it; ds itself when
    that is done already or ds has no table behind it (built-in sets, images, NPZ files).

    split None: the split a new run gets (SplitSpec()), or all rows when the table is too small to split (the
    run itself is then refused with the split's message)."""
    if ds.frame is None:
        return ds
    from kfcore.data import recipe as krecipe

    rows: np.ndarray | None = None
    try:
        rows = split_dataset(ds, split or SplitSpec()).train_index
    except DataError:
        if split is not None:
            raise
    fitted_on = None if rows is None else asdict(split or SplitSpec())
    if ds.recipe is not None and ds.recipe.fitted_on == fitted_on:
        return ds
    recipe, notes = krecipe.fit(ds.frame, rows)
    if not recipe.feature_names:
        why = ("all of them were dropped (see the notes)" if len(ds.frame.columns)
               else f"the file only has the target column '{ds.target['column']}'")
        raise DataError(f"{ds.name}: no feature columns are left to learn from; {why}. Add columns that describe "
                        "each row")
    recipe.target, recipe.fitted_on = dict(ds.target), fitted_on
    kept = [n for n in ds.notes if n not in ds.recipe_notes]
    return replace(ds, x=recipe.transform(ds.frame), feature_names=recipe.feature_names, recipe=recipe,
                   notes=kept + notes, recipe_notes=notes)


def csv_columns(path: str | Path) -> list[str]:
    """The column names of a CSV file, read the same way the loader reads it (for a target picker).

    Only the file's head is read (at most MAX_HEADER_BYTES once decompressed), whatever the file's size."""
    path = Path(path)
    gzipped, head = _csv_head(path)
    return [str(c).strip() for c in _csv_header(path, gzipped, head)[0]]


MAX_HEADER_BYTES = 1 << 20  # a header row longer than this is not a table's column names
CSV_TEXT_SHARE = 4  # a CSV's text may be a quarter of a dataset's memory share: a cell "0," becomes an 8-byte float

# What a file that is not CSV text starts with (an .xlsx or .npz is a zip archive: checked separately).
_NOT_CSV = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
    b"\x93NUMPY": "a single NumPy array (.npy)",
    b"\xff\xfe": "UTF-16 text (Excel's 'Unicode Text')",
    b"\xfe\xff": "UTF-16 text",
}


def _where_not_utf8(path: Path, gzipped: bool) -> str:
    """' (line 3 has the byte 0xE9 …)' for the first byte that is not UTF-8, or '' when it cannot be found."""
    try:
        found = bounded.first_non_utf8(path, gzipped)  # streamed: the file was size-checked, but never held whole
    except (OSError, EOFError, zlib.error):
        return ""
    if found is None:
        return ""
    line, byte = found
    return f" (line {line} has the byte 0x{byte:02X}, which is not valid UTF-8)"


def _csv_head(path: Path) -> tuple[bool, bytes]:
    """(gzipped, the first MAX_HEADER_BYTES of the text) after refusing what is plainly not CSV text."""
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"  # a .csv.gz upload, whatever its name
        head = bounded.head(path, gzipped, MAX_HEADER_BYTES)
    except FileNotFoundError:
        raise DataError(f"the file {path.name} does not exist; upload it again") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"could not read {path.name} ({e}); the compressed file is damaged") from None
    except OSError as e:
        raise DataError(f"could not open {path.name} ({e.strerror or e})") from None
    if not head:
        raise DataError(f"{path.name} is empty; upload a CSV file with a header row and data rows")
    if head[:4] == b"PK\x03\x04":
        raise DataError(
            f"{path.name} is an Excel workbook or zip archive, not CSV; save it as 'CSV UTF-8' and upload that"
        )
    for magic, what in _NOT_CSV.items():
        if head.startswith(magic):
            raise DataError(f"{path.name} is {what}, not CSV text; export the table as 'CSV UTF-8' and upload that")
    if b"\0" in head[:4096]:  # the decompressed text: an IDX file or an archive gzipped under a .csv.gz name
        raise DataError(f"{path.name} holds binary data, not CSV text; export the table as 'CSV UTF-8'")
    if b"\n" not in head and b"\r" not in head and len(head) == MAX_HEADER_BYTES:
        raise DataError(
            f"the first line of {path.name} is over {_mb(MAX_HEADER_BYTES)} long, too long for a header row of "
            "column names; check that the file has one line per row (a CSV header names each column once)"
        )
    return gzipped, head


def _csv_header(path: Path, gzipped: bool, head: bytes) -> tuple[list[str], str]:
    """(the columns, the separator) of the header in head: ',' unless one column's name holds ';' or a tab."""
    import pandas as pd

    complete = head[: max(head.rfind(b"\n"), head.rfind(b"\r")) + 1] or head  # whole lines: no character cut in half
    try:
        for sep in (",", ";", "\t"):
            columns = list(pd.read_csv(io.BytesIO(complete), sep=sep, nrows=0, encoding="utf-8").columns)
            # A semicolon- or tab-separated file (common from European Excel) reads as one wide column.
            if len(columns) != 1 or not any(other in str(columns[0]) for other in (";", "\t")):
                return columns, sep
    except UnicodeDecodeError:
        raise DataError(_not_utf8_message(path, gzipped)) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path.name} is empty; upload a CSV file with a header row and data rows") from None
    except pd.errors.ParserError as e:
        raise DataError(f"{path.name} is not valid CSV: {str(e).strip()}") from None
    return columns, sep


def _not_utf8_message(path: Path, gzipped: bool) -> str:
    return (
        f"{path.name} is not UTF-8 text{_where_not_utf8(path, gzipped)}; it is probably Latin-1 or Windows-1252, "
        "as older Excel saves it. Save it as 'CSV UTF-8' and upload that"
    )


def tidy_columns(df: pd.DataFrame) -> bool:
    """Strip spaces around df's column names in place (" age" is "age"), unless that would merge two columns;
    True when a name changed."""
    stripped = [str(c).strip() for c in df.columns]
    if len(set(stripped)) < len(stripped) or stripped == list(df.columns):
        return False
    df.columns = stripped
    return True


def read_csv(path: Path, limits: Limits | None = None) -> pd.DataFrame:
    """Read a CSV (or gzipped CSV, or ; / tab separated) file as a DataFrame, or raise a DataError that says why not.

    Its text (once decompressed, counted by streaming) and its rows are checked against limits (default: this
    process's) before pandas holds them."""
    import pandas as pd

    limits = limits or Limits.from_env()
    gzipped, head = _csv_head(path)
    _, sep = _csv_header(path, gzipped, head)
    text_limit = data_budget_bytes(limits) // CSV_TEXT_SHARE
    try:
        size = bounded.inflated_size(path, gzipped, text_limit)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"could not read {path.name} ({e})") from None
    if size > text_limit:  # counting a gzip stops at the limit: its size is only known to be over it
        found = f"more than {_mb(text_limit)} of text once decompressed" if gzipped else f"{_mb(size)} of text"
        raise DataError(
            f"{path.name} holds {found}; this server reads at most {_mb(text_limit)} from one CSV (a sixteenth of "
            f"its {limits.memory_budget_mb:,} MB memory budget, KF_MEMORY_BUDGET_MB). Upload a sample of the rows"
        )
    nrows = limits.max_rows + 1 if limits.max_rows else None  # one past the limit is enough to refuse
    try:
        df = pd.read_csv(path, sep=sep, encoding="utf-8", compression="gzip" if gzipped else None, nrows=nrows)
    except UnicodeDecodeError:
        raise DataError(_not_utf8_message(path, gzipped)) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path.name} is empty; upload a CSV file with a header row and data rows") from None
    except pd.errors.ParserError as e:
        raise DataError(f"{path.name} is not valid CSV: {str(e).strip()}") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"could not read {path.name} ({e})") from None
    if nrows and len(df) >= nrows:
        raise DataError(f"{path.name}: {rows_problem(len(df), limits, counted_all=False)}")
    return df
