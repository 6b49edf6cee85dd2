"""A live run's picture of its model, taken in the worker every so often while it trains: on 2-D data its
predictions over a coarse grid of the plane (the decision boundary, or a regression's surface), and for a small
dense network its weights and, on 2-D data, every unit's output over that plane (the Playground diagram).

Bounded in size and rate: a GRID × GRID grid, thumbnails every THUMB_STRIDE-th grid point, at most one picture
every INTERVAL_S, taken only where the training loop stops anyway (between the fast loop's compiled calls, at a
`fit` epoch's start). `small_dense` is pure (the pages ask it too); `LiveView.take` is handed the Keras model.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from kfcore.model.shapes import ShapeReport
from kfcore.training.evaluate import plane_grid, plane_values

GRID = 40  # predictions over the plane: 40 × 40 points
THUMB_STRIDE = 3  # a unit's thumbnail: every third grid point each way (14 × 14)
INTERVAL_S = 0.5  # at most two pictures a second: the Train page polls the store as often (ui.live.POLL_S)
MAX_UNITS = 8  # the Playground diagram: at most this many nodes a column (inputs, each layer, outputs)
MAX_LAYERS = 6  # and at most this many hidden layers
MAX_POINTS = 300  # training points drawn under the live boundary
_PASS_THROUGH = ("Normalization", "Rescaling")  # layers the diagram does not draw: no weights, no units


def small_dense(report: ShapeReport, input_shape: tuple[int, ...]) -> list[int] | None:
    """Nodes per column (inputs, each hidden layer's units, outputs) when the model is a small dense network the
    Playground diagram can draw (only Dense layers, at most MAX_LAYERS hidden, at most MAX_UNITS nodes a column);
    None for any other model (the block diagram draws it)."""
    if len(input_shape) != 1:
        return None
    rows = [r for r in report.rows if r.kind not in _PASS_THROUGH]
    if any(r.kind != "Dense" for r in rows) or len(rows) - 1 > MAX_LAYERS:
        return None
    sizes = [int(input_shape[0]), *(int(r.output_shape[-1] or 0) for r in rows)]  # a Dense output is always known
    return sizes if max(sizes) <= MAX_UNITS else None


class LiveView:
    """Takes a run's pictures: `due()` says whether one is wanted now, `take(model, epoch)` makes it."""

    def __init__(self, x_train: np.ndarray, y_train: np.ndarray, task: str, dense: bool) -> None:
        self.task, self.dense = task, dense
        self.plane = x_train.ndim == 2 and x_train.shape[1] == 2 and len(x_train) > 0
        self.enabled = self.plane or dense
        self.last = -np.inf
        self.points: list[list[float]] | None = None
        self._probe_of: Any = None  # the model _probe_fn was compiled for
        self._probe_fn: Any = None
        if self.plane:
            self.xs, self.ys, self.grid = plane_grid(x_train, GRID)
            keep = np.linspace(0, len(x_train) - 1, min(MAX_POINTS, len(x_train))).astype(int)
            self.points = np.round(np.column_stack([x_train[keep], y_train[keep]]), 4).tolist()

    def _probe(self, model: Any, dense: list[Any]) -> Any:
        """One compiled pass over the grid giving each Dense layer's outputs (when drawn) and the model's: eager,
        layer by layer, a picture cost ~50 ms, a fifth of the training time at four pictures a second."""
        if self._probe_of is not model:
            import keras
            import tensorflow as tf

            taps = [d.output for d in dense] if self.dense else []
            probe = keras.Model(model.inputs, [*taps, model.outputs[0]])
            self._probe_fn, self._probe_of = tf.function(lambda g: probe(g, training=False)), model
        return self._probe_fn

    def due(self) -> bool:
        return self.enabled and time.monotonic() - self.last >= INTERVAL_S

    def take(self, model: Any, epoch: int) -> dict[str, Any]:
        """The picture of `model` after `epoch`: {"epoch", "boundary"?, "weights"?, "biases"?, "units"?}, and with
        the first picture the training points drawn under the boundary ("points": [[x1, x2, target], ...])."""
        import keras

        first = self.last == -np.inf
        shot: dict[str, Any] = {"epoch": int(epoch)}
        if first and self.points is not None:
            shot["points"] = self.points
        dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
        if self.dense:
            shot["weights"] = [np.round(np.asarray(d.kernel, dtype=np.float64), 4).tolist() for d in dense]
            shot["biases"] = [np.round(np.asarray(d.bias, dtype=np.float64), 4).tolist() for d in dense]
        if self.plane:
            result = self._probe(model, dense)(self.grid)
            outputs = [
                np.asarray(o, dtype=np.float64) for o in (result if isinstance(result, (list, tuple)) else [result])
            ]  # one output comes back bare
            shot["boundary"] = plane_values(self.xs, self.ys, outputs[-1], self.task)
            if self.dense:
                thumbs = [o.reshape(GRID, GRID, -1)[::THUMB_STRIDE, ::THUMB_STRIDE] for o in outputs[:-1]]
                shot["units"] = [[np.round(t[:, :, u], 3).tolist() for u in range(t.shape[-1])] for t in thumbs]
        self.last = time.monotonic()  # the interval counts from the end: a slow picture never runs back to back
        return shot
