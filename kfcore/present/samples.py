"""The test samples behind a run's numbers: which ones fall in a confusion-matrix cell, with their probabilities.

The worker saves the model's outputs for every test sample (predictions.npz: y_true, outputs); the samples
themselves are rebuilt from the run's spec, because loading and splitting are deterministic. A rebuilt
split is checked against the saved labels before it is shown, so changed data never shows wrong samples.
Also: thumbnails for image samples, an uploaded picture turned into model input, and reading a click on
the confusion matrix. Pure numpy (Pillow only to decode an upload); no TensorFlow, no Streamlit.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kfcore.data import Dataset, fingerprint, split_dataset
from kfcore.spec import SplitSpec
from kfcore.training.evaluate import probabilities_to_classes

MAX_CELL_SAMPLES = 48
PREDICTIONS_FILE = "predictions.npz"


class SampleError(ValueError):
    """Samples that cannot be shown, with a message for the user."""


@dataclass
class Predictions:
    """What the trained model said about each test sample, in test-split order."""

    y_true: np.ndarray  # class codes, or target values for regression
    outputs: np.ndarray  # raw model outputs: (N, K) softmax, (N, 1) sigmoid or regression values
    # Where the run's samples were in Dataset.x and what the data was (kfcore.data.fingerprint); None in runs
    # saved before they were kept, whose split is then made anew. An empty test_index: the source's own test set.
    train_index: np.ndarray | None = None
    test_index: np.ndarray | None = None
    fingerprint: str | None = None

    @property
    def is_regression(self) -> bool:
        return self.y_true.dtype.kind == "f"

    @property
    def probs(self) -> np.ndarray:
        """Class probabilities, one column per class (a sigmoid output becomes two)."""
        return probabilities_to_classes(self.outputs)[0]

    @property
    def predicted(self) -> np.ndarray:
        """Predicted class per sample (classification) or predicted value (regression)."""
        if self.is_regression:
            return np.asarray(self.outputs, dtype=np.float64).reshape(-1)
        return probabilities_to_classes(self.outputs)[1]


@dataclass
class TestSplit:
    """The rebuilt samples of a run: its test split, and where its training samples are in the dataset."""

    x_test: np.ndarray
    y_test: np.ndarray
    train_index: np.ndarray  # rows of Dataset.x that were trained on (taken only when needed: 2-D plots)
    y_train: np.ndarray
    test_index: np.ndarray | None = None  # rows of Dataset.x that were tested on; None: the source's own test set


def load_predictions(run_dir: str | Path) -> Predictions:
    """The predictions a finished run saved; SampleError when it saved none or the file is damaged."""
    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.exists():
        raise SampleError(
            "this run saved no per-sample predictions (it is older, or did not finish), so its test "
            "samples cannot be listed; train it again to see them"
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            kept = "test_index" in f.files
            return Predictions(
                y_true=np.asarray(f["y_true"]),
                outputs=np.asarray(f["outputs"]),
                train_index=np.asarray(f["train_index"]) if kept else None,
                test_index=np.asarray(f["test_index"]) if kept else None,
                fingerprint=str(f["fingerprint"]) if kept else None,
            )
    except (OSError, ValueError, KeyError) as e:
        raise SampleError(
            f"this run's saved predictions cannot be read ({e}); train it again to see its samples"
        ) from None


def rebuild_split(ds: Dataset, split: SplitSpec, saved: Predictions | None = None) -> TestSplit:
    """The run's test and training samples (raises DataError): where the run saved them (`saved`, when it kept
    its sample numbers and the data is the same), else split exactly as training split them.

    Only the test samples are taken out: no copy of a large training set.
    """
    if (
        saved is not None
        and saved.test_index is not None
        and saved.train_index is not None
        and saved.fingerprint == fingerprint(ds)
    ):
        test = saved.test_index.astype(np.int64)
        train = saved.train_index.astype(np.int64)
        if ds.x_test is not None and ds.y_test is not None:  # the source's own test set
            return TestSplit(x_test=ds.x_test, y_test=ds.y_test, train_index=train, y_train=ds.y[train])
        return TestSplit(x_test=ds.x[test], y_test=ds.y[test], train_index=train, y_train=ds.y[train], test_index=test)
    idx = split_dataset(dataclasses.replace(ds, x=np.arange(len(ds.y))), split)
    x_test = ds.x_test if ds.x_test is not None else ds.x[idx.x_test]
    return TestSplit(
        x_test=x_test,
        y_test=idx.y_test,
        train_index=idx.x_train,
        y_train=idx.y_train,
        test_index=None if ds.x_test is not None else idx.x_test,
    )


def mismatch(rebuilt_y: np.ndarray, saved_y: np.ndarray) -> str | None:
    """Why a rebuilt test split is not the one the run was scored on, or None when it is."""
    if len(rebuilt_y) != len(saved_y):
        return (
            f"the data now gives {len(rebuilt_y)} test samples, but the run was scored on {len(saved_y)}: the "
            "data changed since it trained (a file replaced, a generator changed), so its samples cannot be shown"
        )
    same = (
        np.allclose(rebuilt_y.astype(np.float64), saved_y.astype(np.float64), rtol=1e-5, atol=1e-6)
        if saved_y.dtype.kind == "f"
        else np.array_equal(rebuilt_y, saved_y)
    )
    if not same:
        return (
            "the data now holds different test labels from the ones the run was scored on: it changed since "
            "the run trained, so its samples cannot be shown"
        )
    return None


def cell(predictions: Predictions, true_class: int, predicted_class: int, limit: int = MAX_CELL_SAMPLES) -> np.ndarray:
    """Test-sample indices whose true class and prediction are the given ones, the most confident first."""
    probs, predicted = probabilities_to_classes(predictions.outputs)
    idx = np.flatnonzero((predictions.y_true == true_class) & (predicted == predicted_class))
    confidence = probs[idx, predicted_class]
    return idx[np.argsort(-confidence, kind="stable")][:limit]


def most_confused(cm: Sequence[Sequence[float]]) -> tuple[int, int]:
    """The off-diagonal cell with the most samples (the model's commonest mistake); (0, 0) when there is none."""
    m = np.asarray(cm, dtype=np.float64)
    off = m - np.diag(np.diag(m))
    if off.size == 0 or off.max() <= 0:
        return 0, 0
    i, j = np.unravel_index(int(np.argmax(off)), off.shape)
    return int(i), int(j)


def cell_from_selection(points: Sequence[dict[str, Any]], class_names: Sequence[str]) -> tuple[int, int] | None:
    """(true, predicted) class of a click on plots.confusion_matrix, from Streamlit's selection points.

    The clickable points carry [true, predicted] as customdata; their x / y (predicted / true class
    names) are the fallback. None when nothing usable was selected.
    """
    names = [str(n) for n in class_names]
    for point in points or []:
        custom = point.get("customdata")
        if isinstance(custom, (list, tuple)) and len(custom) >= 2:
            i, j = int(custom[0]), int(custom[1])
            if 0 <= i < len(names) and 0 <= j < len(names):
                return i, j
        x, y = str(point.get("x")), str(point.get("y"))
        if x in names and y in names:
            return names.index(y), names.index(x)
    return None


MAX_LISTED = 200  # rows in a table of chosen samples; a lasso around thousands of points lists the worst


def samples_from_selection(points: Sequence[dict[str, Any]], n_samples: int, curve: int = 1) -> list[int]:
    """Test-sample numbers of the points selected (clicked, boxed or lassoed) on trace `curve` of a chart
    whose points carry their sample number as customdata (plots.predicted_vs_actual: trace 1). Other
    traces (the diagonal) and numbers out of range are ignored; order kept, no repeats."""
    picked: list[int] = []
    for point in points or []:
        if point.get("curve_number", curve) != curve:
            continue
        value = point.get("customdata", point.get("point_index"))
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        try:
            k = int(value)  # type: ignore[arg-type]  # anything else is caught: the point names no sample
        except (TypeError, ValueError):
            continue
        if 0 <= k < n_samples and k not in picked:
            picked.append(k)
    return picked


def parse_sample_numbers(text: str, n_samples: int) -> list[int]:
    """ "3, 17 42" → [3, 17, 42]: test-sample numbers typed by a person. Raises SampleError saying what is
    wrong (not a whole number, out of range) and what is allowed."""
    picked: list[int] = []
    for word in re.split(r"[\s,;]+", text.strip()):
        if not word:
            continue
        word = word.lstrip("#")
        if not word.isdigit():
            raise SampleError(
                f"{word!r} is not a sample number; type whole numbers from 0 to {n_samples - 1}, separated by commas"
            )
        k = int(word)
        if k >= n_samples:
            raise SampleError(f"there is no sample {k}: the test set has {n_samples} (0 to {n_samples - 1})")
        if k not in picked:
            picked.append(k)
    return picked


def largest_errors(
    y_true: np.ndarray, y_pred: np.ndarray, among: Sequence[int] | None = None, limit: int = MAX_LISTED
) -> np.ndarray:
    """Sample numbers (all, or those `among`), the largest absolute error first, at most `limit`."""
    idx = np.arange(len(y_true)) if among is None else np.asarray(list(among), dtype=int)
    errors = np.abs(np.asarray(y_pred, dtype=np.float64)[idx] - np.asarray(y_true, dtype=np.float64)[idx])
    return idx[np.argsort(-errors, kind="stable")][:limit]


# -- images ---------------------------------------------------------------------------------------


def thumbnail(image: np.ndarray, size: int = 64) -> np.ndarray:
    """An (H, W, C) image in [0, 1] as uint8 pixels, enlarged with hard edges to about `size` pixels.

    Grey images are drawn as ink on paper (dark strokes on white), as the Data page draws them.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = 1.0 - img[..., 0]
    scale = max(1, size // max(img.shape[0], img.shape[1]))
    img = np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)
    return (np.clip(img, 0.0, 1.0) * 255).round().astype(np.uint8)


def image_input(
    content: bytes, input_shape: Sequence[int], dark_background: bool, class_folders: bool = False
) -> np.ndarray:
    """An uploaded picture as one model input (1, H, W, C) in [0, 1], like the training images.

    For a run on a ZIP of class folders (class_folders) it is made exactly as those images were
    (kfcore.data.imagefolder.picture: centre-cropped, resized, grey or colour). Otherwise it is converted to
    the model's channels and size; a light picture for a model trained on light strokes on a dark background
    (MNIST, digits) is inverted, and contrast is stretched to the full range.
    Raises SampleError when the file is not a picture.
    """
    from PIL import Image, UnidentifiedImageError

    h, w, c = (int(s) for s in input_shape)
    if class_folders:
        from kfcore.data import DataError
        from kfcore.data.imagefolder import picture

        try:
            return (picture(content, h, c == 3).astype(np.float32) / 255.0)[None]
        except DataError as e:
            raise SampleError(str(e)) from None
    try:
        with Image.open(io.BytesIO(content)) as opened:
            img = opened.convert("RGB" if c == 3 else "L").resize((w, h), Image.Resampling.LANCZOS)
            pixels = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise SampleError(f"the file is not a picture this studio can read ({e}); use a PNG or JPEG") from None
    if c == 1:
        if dark_background and pixels.mean() > 0.5:
            pixels = 1.0 - pixels
        lo, hi = float(pixels.min()), float(pixels.max())
        if hi > lo:
            pixels = (pixels - lo) / (hi - lo)
        pixels = pixels[..., None]
    return pixels[None].astype(np.float32)
