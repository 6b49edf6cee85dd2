"""Dense: every input connected to every unit, the layer of the Keras tutorial's MLP."""

from __future__ import annotations

from typing import Any

from kfcore.layers.base import (
    WEIGHT_FIELDS,
    Field,
    LayerKind,
    Shape,
    Values,
    Where,
    call,
    weight_arguments,
    weight_code,
)


class Dense(LayerKind):
    name = "Dense"
    order = 10
    input = "flat"
    weighted = True
    fields = (Field("units", "int", 64, lo=1, hi=65_536, label="Units", widget="number", step=1), *WEIGHT_FIELDS)

    def short(self, v: Values) -> str:
        return f"Dense({v['units']}, {v['activation'] or 'linear'})"

    def output(self, v: Values, shape: Shape, where: Where) -> tuple[Shape, int, int]:
        units = int(v["units"])
        params = shape[0] * units + units
        return (units,), params, params

    def build(self, keras: Any, v: Values, name: str, dtype: str | None) -> Any:
        return keras.layers.Dense(int(v["units"]), dtype=dtype, name=name, **weight_arguments(keras, v))

    def code(self, v: Values) -> str:
        return call("layers.Dense", [str(v["units"]), *weight_code(v)], 8)

    def advice(self, v: Values, position: int) -> list[str]:
        if v["activation"] != "softmax":
            return []
        if v["units"] == 1:
            return [
                f"Layer {position}: Dense(1, softmax) always outputs 1, so nothing after it can learn; "
                "use relu or tanh, or more units."
            ]
        return [
            f"Layer {position}: softmax in a hidden layer forces its {v['units']} outputs to sum to 1, which "
            "usually slows learning; relu is the usual choice for hidden layers."
        ]
