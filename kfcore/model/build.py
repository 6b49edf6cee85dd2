"""Build the keras.Sequential model a RunSpec describes, layer for layer as kfcore.model.shapes reports it.

Keras is imported inside the functions so that `import kfcore.model.build` stays cheap (no TensorFlow) in
the web process. The model is not compiled; the trainer does that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kfcore.layers import kind
from kfcore.model.shapes import ShapeReport, head, infer_shapes
from kfcore.spec import RunSpec

if TYPE_CHECKING:
    import keras


def keras_names(report: ShapeReport) -> list[str]:
    """The Keras layer name build_model gives each row of `report`, in order (stable across builds)."""
    names = []
    for j, row in enumerate(report.rows):
        if row.index is not None:
            names.append(f"layer_{row.index + 1}_{row.kind.lower()}")
        elif row.kind == "Normalization":
            names.append("normalization")
        elif row.kind == "Rescaling":
            names.append("to_target_units")
        elif row.kind == "Flatten":
            # An automatic Flatten always sits right before a Dense: name it after that layer.
            nxt = report.rows[j + 1].index
            names.append("flatten_before_output" if nxt is None else f"flatten_before_layer_{nxt + 1}")
        else:
            names.append("output")
    return names


def build_model(
    spec: RunSpec,
    input_shape: tuple[int, ...],
    task: str,
    n_classes: int,
    norm_mean: Any = None,
    norm_var: Any = None,
    mixed_precision: bool = False,
    target_scale: tuple[float, float] = (0.0, 1.0),
) -> keras.Model:
    """An uncompiled keras.Sequential for `spec` on inputs of `input_shape` (batch excluded).

    norm_mean / norm_var: per-feature statistics for the Normalization of tabular input (zeros / ones
    when None). mixed_precision: run the hidden layers under "mixed_float16"; when False they follow
    the global Keras policy. Normalization and the output layer always stay float32 (raw features may
    overflow float16; losses need float32 outputs). target_scale: (mean, std) of a regression target; the model
    ends in a Rescaling by them, so it learns the standardised target and predicts in the target's units.
    Raises ShapeError before any TensorFlow work.
    """
    input_shape = tuple(int(s) for s in input_shape)
    report = infer_shapes(spec.layers, input_shape, task, n_classes, spec.output)
    import keras
    import numpy as np

    dtype = "mixed_float16" if mixed_precision else None
    model = keras.Sequential(name="kf_model")
    model.add(keras.Input(shape=input_shape))
    for row, name in zip(report.rows, keras_names(report), strict=True):
        if row.kind == "Normalization":
            mean = np.zeros(input_shape[-1]) if norm_mean is None else np.asarray(norm_mean)
            var = np.ones(input_shape[-1]) if norm_var is None else np.asarray(norm_var)
            model.add(keras.layers.Normalization(mean=mean, variance=var, dtype="float32", name=name))
        elif row.index is not None:
            layer = spec.layers[row.index]
            model.add(kind(layer.type).build(keras, layer.values(), name, dtype))
        elif row.kind == "Flatten":
            model.add(keras.layers.Flatten(dtype=dtype, name=name))
        elif row.kind == "Rescaling":
            target_mean, target_std = target_scale
            model.add(
                keras.layers.Rescaling(scale=float(target_std), offset=float(target_mean), dtype="float32", name=name)
            )
        else:
            units, activation, _ = head(task, n_classes, spec.output)
            model.add(keras.layers.Dense(units, activation=activation, dtype="float32", name=name))
    return model
