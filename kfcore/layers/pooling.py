"""What MaxPooling2D and AveragePooling2D share: a window slid over an image, keeping one number per position."""

from __future__ import annotations

from typing import Any

from kfcore.layers.base import PADDING, WINDOWS, Field, LayerKind, Shape, Values, Where, call, pair, size, spatial


class Pooling2D(LayerKind):
    abbreviation = "Pool"
    input = "image"
    fields = (
        Field("pool_size", "size", 2, options=WINDOWS[1:], label="Pool", widget="select"),
        Field("strides", "size", None, label="Stride"),  # None: Keras steps by the pool size
        PADDING,
    )

    def short(self, v: Values) -> str:
        p = pair(v["pool_size"])
        return f"{self.abbreviation}({p[0]}x{p[1]})"

    def output(self, v: Values, shape: Shape, where: Where) -> tuple[Shape, int, int]:
        pool = pair(v["pool_size"])
        strides = pair(v["strides"]) if v["strides"] is not None else pool
        return (*spatial(where, shape, pool, strides, v["padding"], "pool"), shape[2]), 0, 0

    def build(self, keras: Any, v: Values, name: str, dtype: str | None) -> Any:
        strides = None if v["strides"] is None else pair(v["strides"])
        return getattr(keras.layers, self.name)(
            pair(v["pool_size"]), strides=strides, padding=v["padding"], dtype=dtype, name=name
        )

    def code(self, v: Values) -> str:
        args = [size(v["pool_size"])]
        if v["strides"] is not None:
            args.append(f"strides={size(v['strides'])}")
        if v["padding"] != "valid":
            args.append(f'padding="{v["padding"]}"')
        return call(f"layers.{self.name}", args, 8)
