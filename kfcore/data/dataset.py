"""The Dataset a loader returns, its errors, and the rules every source shares: the target's task and classes,
the checks on sizes and rows, images' shape and scale."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kfcore.runs.limits import Limits, data_budget_bytes, rows_problem
from kfcore.spec import DataSpec

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


MAX_CLASSES_AUTO = 50  # integer targets with more distinct values than this are treated as regression
MAX_CLASSES = (
    1000  # a classification target with more distinct labels is refused: an ID, a name, or a number to predict
)
# Column names that usually hold what a table is for, in order of preference (matched ignoring case).
TARGET_NAMES = (
    "target",
    "label",
    "labels",
    "class",
    "y",
    "outcome",
    "species",
    "diagnosis",
    "survived",
    "price",
    "quality",
    "category",
    "result",
    "churn",
    "default",
)


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


# -- targets and the finished Dataset -------------------------------------------------------------


def finish(
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
        raise DataError(too_few_rows(name, len(y), own_test=x_test is not None))
    for arr, label in ((x, "x"), (x_test, "x_test")):
        if arr is not None and not np.isfinite(arr).all():
            bad = int(arr.size - np.isfinite(arr).sum())
            raise DataError(f"{name}: {label} holds {bad} missing (NaN) or infinite values; fill or remove them first")
    raw_y = y
    y, y_test, task, class_names = _resolve_target(y, y_test, spec.task, what, names)
    if x_test is None and len(y) < 3:  # 2 to train on and 1 to test on (a source's own test set spares the 1)
        raise DataError(too_few_rows(name, len(y)))
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
                shown = ", ".join(label_text(v) for v in unknown[:5])
                raise DataError(f"the test labels include classes that never occur in {what}: {shown}")
            test_codes = np.searchsorted(classes, y_test).astype(np.int64)
        if len(classes) > MAX_CLASSES:
            examples = ", ".join(repr(label_text(v)) for v in classes[:3])
            advice = (
                "choose another column to predict (an ID or a name cannot be learned as a class)"
                if texty
                else "to predict it as a number choose task 'regression', or choose another column to predict"
            )
            raise DataError(
                f"there are {len(classes):,} different values in {what} (like {examples}), too many classes for a "
                f"classifier (at most {MAX_CLASSES:,}): it looks like an ID, a name or a number to predict; {advice}"
            )
        class_names = [label_text(v) for v in classes]

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


def too_few_rows(name: str, n: int, own_test: bool = False, dropped: str = "") -> str:
    """Why n rows cannot be split into training and test data, and how many it takes."""
    if own_test:
        need = "a model needs at least 2 to train on (in practice hundreds)"
    else:
        need = (
            "a model needs at least 2 to train on and 1 to test on (in practice hundreds), so 3 rows at the very "
            "least and 4 with a validation split"
        )
    return f"{name} has {n} usable rows; {need}. Add more rows{dropped}"


def label_text(v: object) -> str:
    """A label as users wrote it: 3.0 read from a CSV column with gaps is still class '3'."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def mb(n_bytes: int) -> str:
    mb = n_bytes / 2**20
    return f"{mb:,.1f} MB" if mb < 10 else f"{mb:,.0f} MB"


def check_size(file_name: str, n_rows: int, need: int, limits: Limits) -> None:
    """Refuse a file over the row limit or over the memory one dataset may take, before its data is read."""
    if rows := rows_problem(n_rows, limits):
        raise DataError(f"{file_name}: {rows}")
    budget = data_budget_bytes(limits)
    if need > budget:
        raise DataError(
            f"{file_name} needs about {mb(need)} of memory to load, more than the {mb(budget)} this server allows "
            f"one dataset (a quarter of its {limits.memory_budget_mb:,} MB memory budget, KF_MEMORY_BUDGET_MB); "
            "use fewer rows or smaller images"
        )


# -- images ---------------------------------------------------------------------------------------


def as_images(x: np.ndarray, x_test: np.ndarray | None, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
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
