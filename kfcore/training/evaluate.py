"""Evaluation of a trained model's test predictions: confusion matrix, per-class metrics, mistakes,
decision boundary for 2-D inputs, and regression errors. Pure numpy, so pages and tests can call it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

MAX_CONFUSION_CLASSES = 50  # an epoch row keeps its validation confusion matrix up to this many classes
MAX_MISTAKES_STORED = 500  # the full list lives in predictions.npz; the JSON keeps the most confident ones


def probabilities_to_classes(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model outputs → (class probabilities with one column per class, predicted class).

    A binary model has one sigmoid column; it becomes two columns so every task looks the same.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim == 1 or probs.shape[1] == 1:
        p1 = probs.reshape(-1)
        probs = np.stack([1.0 - p1, p1], axis=1)
    return probs, probs.argmax(axis=1)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def row_normalised(cm: Any) -> np.ndarray:
    """Each row of a confusion matrix as shares of its true class (a row without samples stays 0)."""
    cm = np.asarray(cm, dtype=np.float64)
    row_sums = cm.sum(axis=1, keepdims=True)
    return np.where(row_sums > 0, cm / np.maximum(row_sums, 1), 0.0)


def per_class_metrics(cm: np.ndarray, class_names: list[str]) -> list[dict[str, Any]]:
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)
    actual = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return [
        {
            "class": name,
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(actual[i]),
        }
        for i, name in enumerate(class_names)
    ]


def epoch_validation_view(cm: np.ndarray) -> dict[str, Any]:
    """An epoch row's validation detail from its confusion matrix: per-class accuracy (recall, None where the
    class is absent) and, up to MAX_CONFUSION_CLASSES classes, the matrix itself as a list of rows."""
    cm = np.asarray(cm, dtype=np.int64)
    actual = cm.sum(axis=1)
    view: dict[str, Any] = {
        "per_class_val_accuracy": [float(cm[k, k] / actual[k]) if actual[k] else None for k in range(len(cm))]
    }
    if len(cm) <= MAX_CONFUSION_CLASSES:
        view["val_confusion"] = cm.tolist()
    return view


def classification_report(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    probs, y_pred = probabilities_to_classes(probs)
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    n = len(class_names)
    cm = confusion_matrix(y_true, y_pred, n)
    normalised = row_normalised(cm)
    per_class = per_class_metrics(cm, class_names)
    wrong = np.flatnonzero(y_pred != y_true)
    confidence = probs[np.arange(len(y_pred)), y_pred]
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
    mistakes = [
        {
            "index": int(i),
            "true": int(y_true[i]),
            "predicted": int(y_pred[i]),
            "confidence": round(float(confidence[i]), 4),
        }
        for i in wrong[:MAX_MISTAKES_STORED]
    ]
    return {
        "task": "classification",
        "class_names": list(class_names),
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else 0.0,
        "confusion_matrix": cm.tolist(),
        "confusion_matrix_normalised": np.round(normalised, 4).tolist(),
        "per_class": per_class,
        "macro_f1": float(np.mean([c["f1"] for c in per_class])) if per_class else 0.0,
        "n_test": int(len(y_true)),
        "n_mistakes": int(len(wrong)),
        "mistakes": mistakes,
    }


def regression_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    err = y_pred - y_true
    ss_tot = float(((y_true - y_true.mean()) ** 2).sum()) if len(y_true) else 0.0
    return {
        "task": "regression",
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "r2": float(1.0 - (err**2).sum() / ss_tot) if ss_tot > 0 else 0.0,
        "n_test": int(len(y_true)),
    }


def plane_grid(x: np.ndarray, resolution: int = 80, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xs, ys, grid): a resolution × resolution grid spanning the 2-D data x plus a margin, its points row by row."""
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = (hi - lo) * margin + 1e-6
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


def plane_values(xs: np.ndarray, ys: np.ndarray, outputs: np.ndarray, task: str = "classification") -> dict[str, Any]:
    """A model's outputs over plane_grid's points as the boundary dict plots draw: for a binary model `values` is
    P(class 1), for multiclass the predicted class index, for regression the predicted value (kind "value")."""
    shape = (len(ys), len(xs))
    if task == "regression":
        values, kind = np.asarray(outputs, dtype=np.float64).reshape(shape), "value"
    else:
        probs, classes = probabilities_to_classes(outputs)
        binary = probs.shape[1] == 2
        values, kind = (probs[:, 1] if binary else classes).reshape(shape), "probability" if binary else "class"
    return {
        "x": np.round(xs, 5).tolist(),
        "y": np.round(ys, 5).tolist(),
        "values": np.round(values, 4).tolist(),
        "kind": kind,
    }


def decision_boundary(
    predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, resolution: int = 80, margin: float = 0.1
) -> dict[str, Any]:
    """Class probabilities over a grid spanning the 2-D data (plus a margin), as TensorFlow Playground draws it.

    For binary models `values` is P(class 1); for multiclass it is the predicted class index.
    """
    xs, ys, grid = plane_grid(x, resolution, margin)
    return plane_values(xs, ys, predict(grid))
