"""What every layer kind declares, and the small pieces several kinds share.

A kind (one module in this package) declares its fields (type, range, default, help and editor widget),
its output shape and parameter count, its Keras construction, its line of exported code and its advice.
Spec parsing, kfcore.model.shapes, kfcore.model.build, kfcore.export.script, the layer editor and kfcore.model.advice read these
declarations and nothing else, so a new kind is one new module here (plus its tests).

Nothing here imports TensorFlow: `build` receives the `keras` module from its caller.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

Shape = tuple[int, ...]
Values = Mapping[str, Any]  # a layer's field values with the kind's defaults filled in

ACTIVATIONS = ("relu", "sigmoid", "tanh", "softmax", "linear", "elu", "selu", "gelu", "swish", "leaky_relu", "softplus")
INITIALIZERS = (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "random_normal",
    "random_uniform",
    "zeros",
    "ones",
)
PADDINGS = ("valid", "same")
WINDOWS = (1, 2, 3, 4, 5, 7)  # square window sizes the editor offers


class ShapeError(ValueError):
    """A layer stack that cannot be built; `layer_index` is the 0-based position in the spec's layers
    (None for the input or the output layer), the message names the layer counting from 1."""

    def __init__(self, layer_index: int | None, message: str):
        self.layer_index = layer_index
        super().__init__(message)


@dataclass(frozen=True)
class Field:
    """One setting of a layer kind.

    kind: "int", "float", "choice" (one of `options`) or "size" (a window: n, or a pair [h, w]).
    default: filled in by the parser; None makes the field optional (left out unless given).
    widget: how the layer editor shows it ("number", "select", "slider"), or None to keep it out of the editor;
    shown: the value the editor shows while the field is unset (an optional field's Keras default).
    """

    name: str
    kind: str
    default: Any = None
    lo: float = 0
    hi: float = 0
    options: tuple[Any, ...] = ()
    label: str = ""
    help: str = ""
    widget: str | None = None
    step: float | None = None
    shown: Any = None


@dataclass(frozen=True)
class Where:
    """Which layer a shape problem is about: its 0-based index and its label, 'layer 3 (Conv2D)'."""

    index: int
    label: str

    def error(self, message: str) -> ShapeError:
        return ShapeError(self.index, f"{self.label}: {message}")


class LayerKind:
    """A layer kind. Subclasses set the class attributes and override what their layer does differently."""

    name: ClassVar[str]
    order: ClassVar[int]  # position in the editor's list of kinds
    fields: ClassVar[tuple[Field, ...]] = ()
    input: ClassVar[str] = "any"  # "image": needs (H, W, C) input; "flat": a Flatten is added before it if needed
    weighted: ClassVar[bool] = False  # has weights and an activation (the advice looks at these)
    description: ClassVar[str] = ""  # one line for the editor when the kind has no settings to show

    def values(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The layer's field values: the given ones, the kind's defaults for the rest."""
        return {f.name: given.get(f.name) if given.get(f.name) is not None else f.default for f in self.fields}

    def short(self, v: Values) -> str:
        """A few characters for tables: 'Dense(64, relu)'."""
        return self.name

    def output(self, v: Values, shape: Shape, where: Where) -> tuple[Shape, int, int]:
        """(output shape, parameters, trainable parameters) on an input of `shape` (batch excluded); the input's
        rank is already checked against `input`. Raises where.error(...) for a shape that cannot work."""
        return shape, 0, 0

    def build(self, keras: Any, v: Values, name: str, dtype: str | None) -> Any:
        return getattr(keras.layers, self.name)(dtype=dtype, name=name)

    def code(self, v: Values) -> str:
        """The layer as a line of a keras-io style script: 'layers.Dense(64, activation="relu")'."""
        return f"layers.{self.name}()"

    def advice(self, v: Values, position: int) -> list[str]:
        """Warnings about this one layer (position counts from 1); stack-wide advice lives in kfcore.model.advice."""
        return []


# -- shared by several kinds ------------------------------------------------------------------------------------


def pair(v: int | list[int] | tuple[int, ...]) -> tuple[int, int]:
    """Keras-style size argument (3 or [3, 3]) as a (height, width) pair."""
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[1]))
    return (int(v), int(v))


def flatten(shape: Shape) -> Shape:
    return (math.prod(shape),)


def spatial(
    where: Where, shape: Shape, window: tuple[int, int], strides: tuple[int, int], padding: str, what: str
) -> tuple[int, int]:
    """Height and width after a sliding window (a kernel or a pool), refusing anything below 1x1."""
    if padding == "same":
        return (math.ceil(shape[0] / strides[0]), math.ceil(shape[1] / strides[1]))
    out = tuple(max(0, (n - k) // s + 1) for n, k, s in zip(shape[:2], window, strides, strict=True))
    if min(out) < 1:
        raise where.error(
            f'its {window[0]}x{window[1]} {what} (padding "valid") on a {shape[0]}x{shape[1]} input '
            f'would leave {out[0]}x{out[1]}, below 1x1; use padding "same", a smaller {what} or fewer '
            "pooling layers before it"
        )
    return out[0], out[1]


ACTIVATION = Field("activation", "choice", "relu", options=ACTIVATIONS, label="Activation", widget="select")
INITIALIZER = Field("initializer", "choice", None, options=INITIALIZERS, label="Initializer")
L1 = Field("l1", "float", None, lo=0.0, hi=1.0, label="L1 penalty")
L2 = Field("l2", "float", None, lo=0.0, hi=1.0, label="L2 penalty")
PADDING = Field("padding", "choice", "valid", options=PADDINGS, label="Padding", widget="select")
WEIGHT_FIELDS = (ACTIVATION, INITIALIZER, L1, L2)


def weight_arguments(keras: Any, v: Values) -> dict[str, Any]:
    """Keras keyword arguments of the activation, initializer and regularizers a weighted layer shares."""
    kwargs: dict[str, Any] = {"activation": v["activation"]}
    if v["initializer"]:
        kwargs["kernel_initializer"] = v["initializer"]
    if v["l1"] or v["l2"]:
        kwargs["kernel_regularizer"] = keras.regularizers.L1L2(l1=v["l1"] or 0.0, l2=v["l2"] or 0.0)
    return kwargs


def weight_code(v: Values) -> list[str]:
    """The same arguments as code, in the order a person would write them."""
    args = []
    if v["activation"] != "linear":
        args.append(f"activation={q(v['activation'])}")
    if v["initializer"]:
        args.append(f"kernel_initializer={q(v['initializer'])}")
    l1, l2 = v["l1"], v["l2"]
    if l1 and l2:
        args.append(f"kernel_regularizer=keras.regularizers.L1L2(l1={num(l1)}, l2={num(l2)})")
    elif l1 or l2:
        args.append(f"kernel_regularizer=keras.regularizers.{'L1' if l1 else 'L2'}({num(l1 or l2)})")
    return args


# -- writing code (kfcore.export.script uses these too) ----------------------------------------------------------------

CODE_WIDTH = 100  # a call wider than this is written one argument per line


def q(text: str) -> str:
    """A Python string literal in double quotes."""
    return json.dumps(text, ensure_ascii=False)


def num(v: float) -> str:
    """A number as written by hand: 255, 0.001, 1e-05."""
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


def size(v: int | list[int]) -> str:
    """A window size as Keras takes it: 3, or (3, 5) when it is not square."""
    h, w = pair(v)
    return str(h) if h == w else f"({h}, {w})"


def call(fn: str, args: list[str], indent: int = 0) -> str:
    """fn(a, b) on one line, or one argument per line when that would be too wide."""
    one = f"{fn}({', '.join(args)})"
    if indent + len(one) <= CODE_WIDTH:
        return one
    pad = " " * (indent + 4)
    return f"{fn}(\n" + "".join(f"{pad}{a},\n" for a in args) + " " * indent + ")"
