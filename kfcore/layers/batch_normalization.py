"""BatchNormalization: re-centres and re-scales each channel over the batch, which steadies deep stacks."""

from __future__ import annotations

from kfcore.layers.base import LayerKind, Shape, Values, Where


class BatchNormalization(LayerKind):
    name = "BatchNormalization"
    order = 30
    description = "Re-centres and re-scales its inputs; no settings needed."

    def short(self, v: Values) -> str:
        return "BatchNorm"

    def output(self, v: Values, shape: Shape, where: Where) -> tuple[Shape, int, int]:
        # gamma and beta train; the moving mean and variance are non-trainable weights.
        c = shape[-1]
        return shape, 4 * c, 2 * c
