"""Output shapes and parameter counts of the model a spec builds, in pure Python (no TensorFlow).

The web process calls `infer_shapes` on every edit to show the layer table live, and `kfcore.model.build`
calls it before any TF work so that an impossible stack is refused with the same readable ShapeError.
The numbers match Keras's own (`model.summary()`); tests/unit/test_shapes.py checks that layer by layer.

The model is: Input -> [Normalization] -> the user's hidden layers -> output Dense, with a Flatten
inserted automatically before any Dense (hidden or output) that would otherwise get a rank > 1 input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kfcore.layers import KINDS, ShapeError, Where
from kfcore.layers.base import flatten
from kfcore.spec import LayerSpec, OutputSpec

__all__ = ["LayerRow", "ShapeError", "ShapeReport", "head", "infer_shapes", "layer_field"]

Shape = tuple[int, ...]

# (units, activation, loss) of the output layer for each resolved task; units None means n_classes.
_HEADS: dict[str, tuple[int | None, str, str]] = {
    "multiclass": (None, "softmax", "sparse_categorical_crossentropy"),
    "binary": (1, "sigmoid", "binary_crossentropy"),
    "regression": (1, "linear", "mse"),
}


@dataclass
class LayerRow:
    """One row of the layer table, i.e. one Keras layer of the built model.

    index: 0-based position in the spec's layers, None for layers the studio adds (Normalization,
    automatic Flatten, output). implicit: True for layers added only to make the model work
    (Normalization, automatic Flatten), which the user neither asked for nor configures.
    output_shape excludes the batch dimension.
    """

    index: int | None
    name: str
    kind: str
    output_shape: tuple[int | None, ...]
    params: int
    trainable: int
    implicit: bool

    @property
    def values_per_sample(self) -> int:
        """How many numbers this layer outputs for one sample (a dimension the model leaves open counts as 1)."""
        return math.prod(d or 1 for d in self.output_shape)

    @property
    def positions(self) -> int:
        """Where a convolution's filters apply for one sample: every output value but the channels (1 for Dense)."""
        return math.prod(d or 1 for d in self.output_shape[:-1])


@dataclass
class ShapeReport:
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int


def head(task: str, n_classes: int, output: OutputSpec | None) -> tuple[int, str, str]:
    """(units, activation, loss) of the output layer for a resolved task, with the spec's overrides."""
    if task not in _HEADS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(_HEADS)}")
    units, activation, loss = _HEADS[task]
    if output is not None:
        activation = output.activation or activation
        loss = output.loss or loss
    return (n_classes if units is None else units), activation, loss


def infer_shapes(
    layers: list[LayerSpec],
    input_shape: tuple[int, ...],
    task: str,
    n_classes: int,
    output: OutputSpec | None = None,
    normalize: bool | None = None,
) -> ShapeReport:
    """Rows (shape, params) of the model built from `layers` on `input_shape`; raises ShapeError."""
    input_shape = shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise ShapeError(None, f"the input shape {shape} has no data; choose a dataset with at least one feature")
    tabular = len(shape) == 1
    if normalize is None:
        normalize = tabular
    rows: list[LayerRow] = []
    # Label of the layer that made an image flat, so a later Conv2D says where the image went.
    flattened_by: str | None = None

    if normalize:
        # Keras 3 keeps a mean/variance given to the constructor as constants, not weights: 0 params
        # (only an adapt()-ed Normalization has 2F+1 non-trainable weights).
        rows.append(LayerRow(None, "Normalization", "Normalization", shape, 0, 0, True))

    for i, layer in enumerate(layers):
        label = f"layer {i + 1} ({layer.type})"
        layer_kind = KINDS.get(layer.type)
        if layer_kind is None:
            raise ShapeError(i, f"{label}: unknown layer type; remove it")
        if len(shape) > 1 and layer_kind.input == "flat":
            shape = flatten(shape)
            rows.append(LayerRow(None, "Flatten (automatic)", "Flatten", shape, 0, 0, True))
            flattened_by = flattened_by or f"the automatic Flatten before {label}"
        if layer_kind.input == "image" and len(shape) != 3:
            raise ShapeError(
                i,
                f"{label}: needs image input of shape (height, width, channels), but gets "
                f"{_describe_flat(shape, input_shape, flattened_by)}",
            )
        shape, params, trainable = layer_kind.output(layer.values(), shape, Where(i, label))
        if len(shape) == 1 and not tabular and flattened_by is None:
            flattened_by = label
        rows.append(LayerRow(i, f"{layer.type} {i + 1}", layer.type, shape, params, trainable, False))

    units, activation, _ = head(task, n_classes, output)
    if len(shape) > 1:
        shape = flatten(shape)
        rows.append(LayerRow(None, "Flatten (automatic)", "Flatten", shape, 0, 0, True))
    params = shape[0] * units + units
    rows.append(LayerRow(None, f"Output (Dense {units}, {activation})", "Dense", (units,), params, params, False))
    if task == "regression":
        # The network learns the standardised target; this turns its output back into the target's units, so the
        # saved model predicts in them (its scale and offset are the training split's std and mean: 0 params).
        rows.append(LayerRow(None, "Rescaling (to the target's units)", "Rescaling", (units,), 0, 0, True))

    total = sum(r.params for r in rows)
    trainable = sum(r.trainable for r in rows)
    return ShapeReport(rows, total, trainable, total - trainable)


def layer_field(layer: LayerSpec, name: str) -> Any:
    """A layer field, or the default its kind declares (for LayerSpecs made by hand)."""
    return layer.values().get(name)


def _describe_flat(shape: Shape, input_shape: Shape, flattened_by: str | None) -> str:
    """What a layer that needs an image gets instead, and what to do about it."""
    if len(input_shape) == 1:
        return f"tabular input of {input_shape[0]} features; remove it or choose an image dataset"
    if len(shape) == 1 and flattened_by:
        return (
            f"flat input of {shape[0]} features because {flattened_by} already flattened the image; "
            f"move it before that layer or remove it"
        )
    return f"input of shape {shape}; remove it or choose an image dataset"
