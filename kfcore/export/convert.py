"""A trained model in the formats other runtimes load: a TF SavedModel, a LiteRT (TFLite) flatbuffer, ONNX.

Each function loads the run's model.keras and writes one format. TensorFlow is imported inside them, so
they run in the CLI or a worker process (kfcore.export.formats starts one for the dashboard), never in the web
process. Every format takes what the .keras model takes: for a table that is its encoded columns, made
from raw rows by the recipe.json saved beside the model (kfcore.export.formats copies it next to each export).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SAVEDMODEL_DIR = "savedmodel"
TFLITE_FILE = "model.tflite"
ONNX_FILE = "model.onnx"
QUANTIZE = ("dynamic",)  # dynamic-range: weights stored as int8, computed in float; no calibration data needed


class FormatError(RuntimeError):
    """A model that cannot be written in a format; the message says why and what to do."""


@dataclass
class TestSplit:
    """The run's test inputs and labels (classification: class numbers; regression: values)."""

    x: np.ndarray
    y: np.ndarray
    task: str


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Neither TensorFlow's native logs nor the converters' prints (Keras prints the SavedModel it writes for the
    TFLite converter): the CLI's stdout carries its results, and JSON lines for the dashboard."""
    from kfcore.training.hardware import quiet_native_stderr

    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), quiet_native_stderr():
        yield


def load_keras(model_path: str | Path) -> Any:
    from kfcore.training.predict import load_model

    return load_model(model_path)


def _signature(model: Any) -> list[Any]:
    import tensorflow as tf

    shape = (None, *model.inputs[0].shape[1:])
    return [tf.TensorSpec(shape, tf.float32, name="inputs")]


def savedmodel(model: Any, out: Path) -> Path:
    """A SavedModel folder whose `serving_default` signature (and `serve` function) takes a float32 batch of the
    model's input and returns its outputs; load it with tf.saved_model.load or TF Serving."""
    target = out / SAVEDMODEL_DIR
    with _quiet():
        model.export(str(target), format="tf_saved_model", input_signature=_signature(model), verbose=False)
    return target


def tflite_bytes(model: Any, quantize: str | None = None) -> bytes:
    """The model as a LiteRT flatbuffer: float32, or with quantize="dynamic" its weights as int8."""
    import tensorflow as tf

    if quantize is not None and quantize not in QUANTIZE:
        raise FormatError(f"unknown quantisation {quantize!r}: use {', '.join(QUANTIZE)} (or none for float32)")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # without a representative dataset: dynamic range
    with _quiet():
        return converter.convert()


def tflite_outputs(flatbuffer: bytes, x: np.ndarray) -> np.ndarray:
    """The flatbuffer's outputs for a batch, computed by the LiteRT interpreter (the runtime phones use)."""
    with _quiet():  # it announces its CPU delegate on stderr
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=flatbuffer)
        (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
        interpreter.resize_tensor_input(inp["index"], list(x.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], np.asarray(x, dtype=np.float32))
        interpreter.invoke()
    return np.array(interpreter.get_tensor(out["index"]))


def onnx_bytes(model: Any) -> bytes:
    """The model as ONNX, converted by tf2onnx (the converter Keras 3 uses for its TensorFlow backend).

    The graph is frozen first: Keras' own export (model.export(format="onnx")) leaves the table models'
    Normalization statistics as extra graph inputs, which onnxruntime then asks the caller for. tf2onnx keeps
    a TensorFlow op it has no ONNX op for (gelu's Erfc) and writes a model no runtime loads: such a model is
    refused here, with FormatError naming the layers and ops that stop it."""
    try:
        proto = _onnx_of(model)
    except Exception as e:  # tf2onnx raises anything from ValueError to its own errors for a graph it cannot take
        raise FormatError(
            f"tf2onnx cannot convert this model ({type(e).__name__}: {str(e).splitlines()[0][:160]}); "
            "export it as SavedModel or TFLite instead"
        ) from None
    blocking = _unsupported(proto, [layer.name for layer in model.layers])
    if blocking:
        named = "; ".join(f"{layer} (TensorFlow op {', '.join(sorted(ops))})" for layer, ops in blocking.items())
        raise FormatError(
            f"ONNX has no operator for part of this model, so tf2onnx cannot convert it: {named}. "
            "Change those layers (a gelu activation becomes Erfc: use relu, swish or tanh), or export "
            "as SavedModel or TFLite, which take every layer"
        )
    return proto.SerializeToString()


def _onnx_of(model: Any) -> Any:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    with _quiet():
        # tf2onnx 1.17 still names numpy aliases numpy 2 removed; Keras' own ONNX export applies this same patch.
        from keras.src.export.tf2onnx_lib import patch_tf2onnx

        patch_tf2onnx()
        import tf2onnx

    function = tf.function(lambda inputs: model(inputs, training=False), input_signature=_signature(model))
    with _quiet():
        frozen = convert_variables_to_constants_v2(function.get_concrete_function())
        proto, _ = tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(),
            input_names=[t.name for t in frozen.inputs],
            output_names=[t.name for t in frozen.outputs],
        )
    return proto


def _unsupported(proto: Any, layer_names: list[str]) -> dict[str, set[str]]:
    """{layer name: TensorFlow ops left in the graph that are no ONNX operator}; node names carry the layer's."""
    import onnx

    found: dict[str, set[str]] = {}
    for node in proto.graph.node:
        if node.domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type):
            parts = [re.sub(r"_\d+$", "", p) for p in node.name.split("/")]  # scopes are the names plus _1
            layer = next((p for p in parts if p in layer_names), parts[1] if len(parts) > 1 else node.name)
            found.setdefault(layer, set()).add(node.op_type)
    return found


def onnx_outputs(onnx: bytes | Path, x: np.ndarray) -> np.ndarray:
    """The ONNX model's outputs for a batch, computed by onnxruntime."""
    import onnxruntime

    session = onnxruntime.InferenceSession(
        onnx if isinstance(onnx, bytes) else str(onnx), providers=["CPUExecutionProvider"]
    )
    (inp,) = session.get_inputs()
    return np.asarray(session.run(None, {inp.name: np.asarray(x, dtype=np.float32)})[0])


def score(outputs: np.ndarray, test: TestSplit) -> tuple[str, float]:
    """The test metric of some outputs: ("accuracy", fraction right), or ("mae", mean absolute error) for a
    regression (the outputs are already in the target's units: the model ends in its Rescaling)."""
    from kfcore.training.evaluate import probabilities_to_classes

    if test.task == "regression":
        return "mae", float(np.mean(np.abs(outputs.reshape(-1) - test.y.reshape(-1))))
    _, predicted = probabilities_to_classes(np.asarray(outputs))
    return "accuracy", float(np.mean(predicted == test.y.reshape(-1)))


def compare_tflite(
    model: Any, flatbuffer: bytes, test: TestSplit, progress: Callable[[str], None] = lambda _: None
) -> str:
    """One line: the flatbuffer's size and its test metric next to the .keras model's, measured here."""
    progress("scoring the flatbuffer on the test split with the LiteRT interpreter")
    metric, lite = score(tflite_outputs(flatbuffer, test.x), test)
    _, keras_score = score(model.predict(test.x, batch_size=1024, verbose=0), test)
    change = lite - keras_score
    return (
        f"{TFLITE_FILE}: {len(flatbuffer) / 1024:,.1f} KiB; test {metric} {lite:.4f} with LiteRT, "
        f"{keras_score:.4f} with the .keras model ({change:+.4f}, on {len(test.y):,} test samples)"
    )
