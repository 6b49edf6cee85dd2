"""LayerNormalization: re-centres and re-scales each sample over its last axis (no batch statistics), as in
transformers; it behaves the same in training and prediction, whatever the batch size."""

from __future__ import annotations

from typing import Any

from kfcore.layers.base import Field, LayerKind, Shape, Values, Where, num

EPSILONS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


class LayerNormalization(LayerKind):
    name = "LayerNormalization"
    order = 35
    fields = (
        Field(
            "epsilon",
            "float",
            0.001,
            lo=1e-8,
            hi=0.1,
            options=EPSILONS,
            label="Epsilon",
            help="Added to the variance so a constant input never divides by zero.",
            widget="select",
        ),
    )

    def short(self, v: Values) -> str:
        return "LayerNorm"

    def output(self, v: Values, shape: Shape, where: Where) -> tuple[Shape, int, int]:
        c = shape[-1]  # gamma and beta over the last axis, both trained
        return shape, 2 * c, 2 * c

    def build(self, keras: Any, v: Values, name: str, dtype: str | None) -> Any:
        return keras.layers.LayerNormalization(epsilon=float(v["epsilon"]), dtype=dtype, name=name)

    def code(self, v: Values) -> str:
        return (
            "layers.LayerNormalization()"
            if v["epsilon"] == 0.001
            else f"layers.LayerNormalization(epsilon={num(v['epsilon'])})"
        )
