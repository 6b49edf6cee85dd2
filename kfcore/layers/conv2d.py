"""Conv2D: small filters slid over an image, each making a map of where its pattern occurs."""

from __future__ import annotations

from typing import Any

from kfcore.layers.base import (
    PADDING,
    WEIGHT_FIELDS,
    WINDOWS,
    Field,
    LayerKind,
    Shape,
    Values,
    Where,
    call,
    pair,
    size,
    spatial,
    weight_arguments,
    weight_code,
)


class Conv2D(LayerKind):
    name = "Conv2D"
    order = 50
    input = "image"
    weighted = True
    fields = (
        Field("filters", "int", 32, lo=1, hi=4096, label="Filters", widget="number", step=1),
        Field("kernel_size", "size", 3, options=WINDOWS, label="Kernel", widget="select"),
        Field("strides", "size", None, options=(1, 2, 3), label="Stride", widget="select", shown=1),
        PADDING,
        *WEIGHT_FIELDS,
    )

    def short(self, v: Values) -> str:
        k = pair(v["kernel_size"])
        return f"Conv2D({v['filters']}, {k[0]}x{k[1]})"

    def output(self, v: Values, shape: Shape, where: Where) -> tuple[Shape, int, int]:
        filters, kernel = int(v["filters"]), pair(v["kernel_size"])
        out = spatial(where, shape, kernel, pair(v["strides"] or 1), v["padding"], "kernel")
        params = kernel[0] * kernel[1] * shape[2] * filters + filters
        return (*out, filters), params, params

    def build(self, keras: Any, v: Values, name: str, dtype: str | None) -> Any:
        return keras.layers.Conv2D(
            int(v["filters"]),
            pair(v["kernel_size"]),
            strides=pair(v["strides"] or 1),
            padding=v["padding"],
            dtype=dtype,
            name=name,
            **weight_arguments(keras, v),
        )

    def code(self, v: Values) -> str:
        args = [str(v["filters"]), size(v["kernel_size"])]
        if v["strides"] is not None and pair(v["strides"]) != (1, 1):
            args.append(f"strides={size(v['strides'])}")
        if v["padding"] != "valid":
            args.append(f'padding="{v["padding"]}"')
        return call("layers.Conv2D", args + weight_code(v), 8)
