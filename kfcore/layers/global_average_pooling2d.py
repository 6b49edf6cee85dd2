"""GlobalAveragePooling2D: each channel averaged over the whole image, one number per channel."""

from __future__ import annotations

from kfcore.layers.base import LayerKind, Shape, Values, Where


class GlobalAveragePooling2D(LayerKind):
    name = "GlobalAveragePooling2D"
    order = 70
    input = "image"
    description = "Averages each channel over the image; no parameters."

    def short(self, v: Values) -> str:
        return "GAP"

    def output(self, v: Values, shape: Shape, where: Where) -> tuple[Shape, int, int]:
        return (shape[2],), 0, 0
