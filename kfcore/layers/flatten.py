"""Flatten: an image (or any grid) as one long row of numbers."""

from __future__ import annotations

from kfcore.layers.base import LayerKind, Shape, Values, Where, flatten


class Flatten(LayerKind):
    name = "Flatten"
    order = 40
    description = "Turns an image into one long row of numbers; no parameters."

    def output(self, v: Values, shape: Shape, where: Where) -> tuple[Shape, int, int]:
        return flatten(shape), 0, 0
