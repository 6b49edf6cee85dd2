"""Dropout: zeroes a random share of its inputs while training, so the network cannot lean on any one unit."""

from __future__ import annotations

from typing import Any

from kfcore.layers.base import Field, LayerKind, Values, num


class Dropout(LayerKind):
    name = "Dropout"
    order = 20
    fields = (
        Field(
            "rate",
            "float",
            0.5,
            lo=0.0,
            hi=0.99,
            label="Rate (fraction of units dropped while training)",
            widget="slider",
            step=0.05,
        ),
    )

    def short(self, v: Values) -> str:
        return f"Dropout({v['rate']})"

    def build(self, keras: Any, v: Values, name: str, dtype: str | None) -> Any:
        return keras.layers.Dropout(v["rate"], dtype=dtype, name=name)

    def code(self, v: Values) -> str:
        return f"layers.Dropout({num(v['rate'])})"
