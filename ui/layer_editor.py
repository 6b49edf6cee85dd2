"""One editable card per layer: its type, its parameters, and buttons to move, duplicate or remove it.

Every widget is keyed by the layer's stable id (layer<ID>_<what>), never by its position, so moving a
layer carries its values along. Ids start at 1 for a session's first layers and only grow.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from kfcore.shapes import layer_field
from kfcore.spec import ACTIVATIONS, LAYER_TYPES, PADDINGS, LayerSpec, RunSpec, pair
from ui import state
from ui.text import plain
from ui.widgets import bound

SIZES = (1, 2, 3, 4, 5, 7)


def _layer_setter(lid: int, name: str, cast: Any = lambda v: v) -> Any:
    def set_value(_spec: RunSpec, value: Any) -> None:
        setattr(state.layer_by_id(lid), name, cast(value))

    return set_value


def _param(widget: Any, label: str, lid: int, layer: LayerSpec, name: str, cast: Any = lambda v: v,
           **kwargs: Any) -> None:
    value = layer_field(layer, name)
    if value is None:
        value = {"padding": "valid", "strides": 1}[name]
    if name in ("kernel_size", "pool_size", "strides"):
        value = pair(value or 1)[0]  # the editor offers square windows; a shared [3, 5] shows as 3
    bound(widget, label, f"layer{lid}_{name}", value, _layer_setter(lid, name, cast), **kwargs)


def params(lid: int, layer: LayerSpec) -> None:
    """The parameter widgets of one layer type."""
    kind = layer.type
    if kind == "Dense":
        a, b = st.columns(2)
        with a:
            _param(st.number_input, "Units", lid, layer, "units", int, min_value=1, max_value=65_536, step=1)
        with b:
            _param(st.selectbox, "Activation", lid, layer, "activation", options=ACTIVATIONS)
    elif kind == "Conv2D":
        a, b, c, d, e = st.columns(5)
        with a:
            _param(st.number_input, "Filters", lid, layer, "filters", int, min_value=1, max_value=4096, step=1)
        with b:
            _param(st.selectbox, "Kernel", lid, layer, "kernel_size", int, options=SIZES, format_func=_square)
        with c:
            _param(st.selectbox, "Stride", lid, layer, "strides", int, options=(1, 2, 3))
        with d:
            _param(st.selectbox, "Padding", lid, layer, "padding", options=PADDINGS)
        with e:
            _param(st.selectbox, "Activation", lid, layer, "activation", options=ACTIVATIONS)
    elif kind == "MaxPooling2D":
        a, b = st.columns(2)
        with a:
            _param(st.selectbox, "Pool", lid, layer, "pool_size", int, options=SIZES[1:], format_func=_square)
        with b:
            _param(st.selectbox, "Padding", lid, layer, "padding", options=PADDINGS)
    elif kind == "Dropout":
        _param(st.slider, "Rate (fraction of units dropped while training)", lid, layer, "rate", float,
               min_value=0.0, max_value=0.95, step=0.05)
    else:
        st.caption({"Flatten": "Turns an image into one long row of numbers; no parameters.",
                    "BatchNormalization": "Re-centres and re-scales its inputs; no settings needed.",
                    "GlobalAveragePooling2D": "Averages each channel over the image; no parameters."}[kind])


def _square(n: int) -> str:
    return f"{n}×{n}"


def card(position: int, lid: int, layer: LayerSpec, count: int, problem: str | None) -> None:
    with st.container(border=True, key=f"layer{lid}"):
        head = st.columns([0.5, 3, 1, 1, 1, 1], vertical_alignment="bottom", gap="small")
        head[0].markdown(f"**{position + 1}**")
        with head[1]:
            bound(st.selectbox, "Layer type", f"layer{lid}_type", layer.type,
                  lambda _s, kind: state.change_layer_type(lid, kind), options=LAYER_TYPES,
                  label_visibility="collapsed")
        head[2].button("", key=f"layer{lid}_up", icon=":material/arrow_upward:", help="Move up",
                       on_click=state.move_layer, args=(lid, -1), disabled=position == 0)
        head[3].button("", key=f"layer{lid}_down", icon=":material/arrow_downward:", help="Move down",
                       on_click=state.move_layer, args=(lid, 1), disabled=position == count - 1)
        head[4].button("", key=f"layer{lid}_duplicate", icon=":material/content_copy:", help="Duplicate",
                       on_click=state.duplicate_layer, args=(lid,))
        head[5].button("", key=f"layer{lid}_remove", icon=":material/delete:", help="Remove",
                       on_click=state.remove_layer, args=(lid,))
        params(lid, layer)
        if problem:
            st.error(plain(problem), icon=":material/error:")
