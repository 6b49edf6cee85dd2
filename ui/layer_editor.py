"""One editable card per layer: its type, its parameters, and buttons to move, duplicate or remove it.

The widgets come from the layer kind's declared fields (kfcore.layers): a field with a `widget` is shown,
in one row, as a number input, a select box or a slider; a kind with none shows its description.

Every widget is keyed by the layer's stable id (layer<ID>_<what>), never by its position, so moving a
layer carries its values along. Ids start at 1 for a session's first layers and only grow.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from kfcore.layers import KINDS, LAYER_TYPES, Field, pair
from kfcore.spec import LayerSpec, RunSpec
from ui import state
from ui.text import plain
from ui.widgets import bound, icon_button


def _layer_setter(lid: int, name: str, cast: Any) -> Any:
    def set_value(_spec: RunSpec, value: Any) -> None:
        setattr(state.layer_by_id(lid), name, cast(value))

    return set_value


def _cast(f: Field) -> Any:
    return {"int": int, "float": float, "size": int}.get(f.kind, lambda v: v)


def _widget(lid: int, layer: LayerSpec, f: Field) -> None:
    value = layer.values()[f.name]
    if value is None:
        value = f.shown
    if f.kind == "size":
        value = pair(value)[0]  # the editor offers square windows; a shared [3, 5] shows as 3
    key, setter = f"layer{lid}_{f.name}", _layer_setter(lid, f.name, _cast(f))
    kwargs: dict[str, Any] = {"help": f.help or None}
    if f.widget == "number":
        bound(
            st.number_input,
            f.label,
            key,
            value,
            setter,
            min_value=int(f.lo),
            max_value=int(f.hi),
            step=int(f.step or 1),
            **kwargs,
        )
    elif f.widget == "slider":
        bound(
            st.slider,
            f.label,
            key,
            value,
            setter,
            min_value=float(f.lo),
            max_value=min(float(f.hi), 0.95),
            step=f.step,
            **kwargs,
        )
    else:
        fmt = _square if f.kind == "size" else (lambda v: f"{v:g}") if f.kind == "float" else str
        bound(st.selectbox, f.label, key, value, setter, options=f.options, format_func=fmt, **kwargs)


def params(lid: int, layer: LayerSpec) -> None:
    """The parameter widgets of one layer, as its kind declares them."""
    layer_kind = KINDS[layer.type]
    shown = [f for f in layer_kind.fields if f.widget]
    if not shown:
        st.caption(layer_kind.description)
        return
    for column, f in zip(st.columns(len(shown)), shown, strict=True):
        with column:
            _widget(lid, layer, f)


def _square(n: int) -> str:
    return f"{n}×{n}"


def card(position: int, lid: int, layer: LayerSpec, count: int, problem: str | None) -> None:
    with st.container(border=True, key=f"layer{lid}"):
        head = st.columns([0.5, 3, 1, 1, 1, 1], vertical_alignment="bottom", gap="small")
        head[0].markdown(f"**{position + 1}**")
        with head[1]:
            bound(
                st.selectbox,
                "Layer type",
                f"layer{lid}_type",
                layer.type,
                lambda _s, kind: state.change_layer_type(lid, kind),
                options=LAYER_TYPES,
                label_visibility="collapsed",
            )
        icon_button(
            head[2],
            f"Move layer {position + 1} up",
            f"layer{lid}_up",
            ":material/arrow_upward:",
            on_click=state.move_layer,
            args=(lid, -1),
            disabled=position == 0,
        )
        icon_button(
            head[3],
            f"Move layer {position + 1} down",
            f"layer{lid}_down",
            ":material/arrow_downward:",
            on_click=state.move_layer,
            args=(lid, 1),
            disabled=position == count - 1,
        )
        icon_button(
            head[4],
            f"Duplicate layer {position + 1}",
            f"layer{lid}_duplicate",
            ":material/content_copy:",
            on_click=state.duplicate_layer,
            args=(lid,),
        )
        icon_button(
            head[5],
            f"Remove layer {position + 1}",
            f"layer{lid}_remove",
            ":material/delete:",
            on_click=state.remove_layer,
            args=(lid,),
        )
        params(lid, layer)
        if problem:
            st.error(plain(problem), icon=":material/error:")
