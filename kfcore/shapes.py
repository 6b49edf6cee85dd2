"""Output shapes and parameter counts of the model a spec builds, in pure Python (no TensorFlow).

The web process calls `infer_shapes` on every edit to show the layer table live, and `kfcore.build`
calls it before any TF work so that an impossible stack is refused with the same readable ShapeError.
The numbers match Keras's own (`model.summary()`); tests/unit/test_shapes.py checks that layer by layer.

The model is: Input -> [Normalization] -> the user's hidden layers -> output Dense, with a Flatten
inserted automatically before any Dense (hidden or output) that would otherwise get a rank > 1 input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kfcore.spec import LAYER_DEFAULTS, LayerSpec, OutputSpec, pair

Shape = tuple[int, ...]

_IMAGE_ONLY = ("Conv2D", "MaxPooling2D", "GlobalAveragePooling2D")

# (units, activation, loss) of the output layer for each resolved task; units None means n_classes.
_HEADS: dict[str, tuple[int | None, str, str]] = {
    "multiclass": (None, "softmax", "sparse_categorical_crossentropy"),
    "binary": (1, "sigmoid", "binary_crossentropy"),
    "regression": (1, "linear", "mse"),
}


class ShapeError(ValueError):
    """A layer stack that cannot be built; `layer_index` is the 0-based position in the spec's layers
    (None for the input or the output layer), the message names the layer counting from 1."""

    def __init__(self, layer_index: int | None, message: str):
        self.layer_index = layer_index
        super().__init__(message)


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
        if len(shape) > 1 and layer.type == "Dense":
            shape = _flatten(shape)
            rows.append(LayerRow(None, "Flatten (automatic)", "Flatten", shape, 0, 0, True))
            flattened_by = flattened_by or f"the automatic Flatten before {label}"
        if layer.type in _IMAGE_ONLY and len(shape) != 3:
            raise ShapeError(i, f"{label}: needs image input of shape (height, width, channels), but gets "
                                f"{_describe_flat(shape, input_shape, flattened_by)}")
        shape, params, trainable = _layer(i, label, layer, shape)
        if len(shape) == 1 and not tabular and flattened_by is None:
            flattened_by = label
        rows.append(LayerRow(i, f"{layer.type} {i + 1}", layer.type, shape, params, trainable, False))

    units, activation, _ = head(task, n_classes, output)
    if len(shape) > 1:
        shape = _flatten(shape)
        rows.append(LayerRow(None, "Flatten (automatic)", "Flatten", shape, 0, 0, True))
    params = shape[0] * units + units
    rows.append(LayerRow(None, f"Output (Dense {units}, {activation})", "Dense", (units,), params, params, False))

    total = sum(r.params for r in rows)
    trainable = sum(r.trainable for r in rows)
    return ShapeReport(rows, total, trainable, total - trainable)


def layer_field(layer: LayerSpec, name: str) -> Any:
    """A layer field, or the default a parsed spec would have filled in (for LayerSpecs made by hand)."""
    v = getattr(layer, name)
    return LAYER_DEFAULTS[layer.type].get(name) if v is None else v


def _flatten(shape: Shape) -> Shape:
    return (math.prod(shape),)


def _describe_flat(shape: Shape, input_shape: Shape, flattened_by: str | None) -> str:
    """What a layer that needs an image gets instead, and what to do about it."""
    if len(input_shape) == 1:
        return f"tabular input of {input_shape[0]} features; remove it or choose an image dataset"
    if len(shape) == 1 and flattened_by:
        return (f"flat input of {shape[0]} features because {flattened_by} already flattened the image; "
                f"move it before that layer or remove it")
    return f"input of shape {shape}; remove it or choose an image dataset"


def _layer(i: int, label: str, layer: LayerSpec, shape: Shape) -> tuple[Shape, int, int]:
    """(output shape, params, trainable params) of one hidden layer; the input rank is already checked."""
    kind = layer.type
    if kind == "Dense":
        units = int(layer_field(layer, "units"))
        return (units,), shape[0] * units + units, shape[0] * units + units
    if kind == "Dropout":
        return shape, 0, 0
    if kind == "BatchNormalization":
        # gamma and beta train; the moving mean and variance are non-trainable weights.
        c = shape[-1]
        return shape, 4 * c, 2 * c
    if kind == "Flatten":
        return _flatten(shape), 0, 0
    if kind == "GlobalAveragePooling2D":
        return (shape[2],), 0, 0
    if kind == "Conv2D":
        filters = int(layer_field(layer, "filters"))
        kernel = pair(layer_field(layer, "kernel_size"))
        strides = pair(layer.strides or 1)
        out = _spatial(i, label, shape, kernel, strides, layer_field(layer, "padding") or "valid", "kernel")
        params = kernel[0] * kernel[1] * shape[2] * filters + filters
        return (*out, filters), params, params
    if kind == "MaxPooling2D":
        pool = pair(layer_field(layer, "pool_size"))
        strides = pair(layer.strides) if layer.strides is not None else pool
        out = _spatial(i, label, shape, pool, strides, layer_field(layer, "padding") or "valid", "pool")
        return (*out, shape[2]), 0, 0
    raise ShapeError(i, f"{label}: unknown layer type; remove it")


def _spatial(i: int, label: str, shape: Shape, window: tuple[int, int], strides: tuple[int, int],
             padding: str, what: str) -> tuple[int, int]:
    """Height and width after a Conv2D/MaxPooling2D window, refusing anything below 1x1."""
    if padding == "same":
        return (math.ceil(shape[0] / strides[0]), math.ceil(shape[1] / strides[1]))
    out = tuple(max(0, (n - k) // s + 1) for n, k, s in zip(shape[:2], window, strides, strict=True))
    if min(out) < 1:
        raise ShapeError(i, f"{label}: its {window[0]}x{window[1]} {what} (padding \"valid\") on a "
                            f"{shape[0]}x{shape[1]} input would leave {out[0]}x{out[1]}, below 1x1; use padding "
                            f"\"same\", a smaller {what} or fewer pooling layers before it")
    return out[0], out[1]
