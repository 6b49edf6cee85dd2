"""The layers being edited, each with a stable id so per-layer widgets keep their values when layers move."""

from __future__ import annotations

import streamlit as st

from kfcore.spec import LAYER_DEFAULTS, LayerSpec


def _next_id() -> int:
    st.session_state.next_layer_id = st.session_state.get("next_layer_id", 0) + 1
    return st.session_state.next_layer_id


def new_layer_ids() -> None:
    st.session_state.layer_ids = [_next_id() for _ in st.session_state.spec.layers]


def layer_ids() -> list[int]:
    if len(st.session_state.get("layer_ids", [])) != len(st.session_state.spec.layers):
        new_layer_ids()
    return st.session_state.layer_ids


def layer_by_id(lid: int) -> LayerSpec:
    return st.session_state.spec.layers[layer_ids().index(lid)]


def new_layer(kind: str) -> LayerSpec:
    return LayerSpec(type=kind, **LAYER_DEFAULTS[kind])


def add_layer(kind: str) -> None:
    ids = layer_ids()
    st.session_state.spec.layers.append(new_layer(kind))
    ids.append(_next_id())


def remove_layer(lid: int) -> None:
    ids = layer_ids()
    i = ids.index(lid)
    del st.session_state.spec.layers[i], ids[i]


def duplicate_layer(lid: int) -> None:
    ids = layer_ids()
    i = ids.index(lid)
    st.session_state.spec.layers.insert(i + 1, LayerSpec(**st.session_state.spec.layers[i].to_dict()))
    ids.insert(i + 1, _next_id())


def move_layer(lid: int, delta: int) -> None:
    ids, layers = layer_ids(), st.session_state.spec.layers
    i = ids.index(lid)
    j = min(max(i + delta, 0), len(ids) - 1)
    layers[i], layers[j] = layers[j], layers[i]
    ids[i], ids[j] = ids[j], ids[i]


def change_layer_type(lid: int, kind: str) -> None:
    ids = layer_ids()
    st.session_state.spec.layers[ids.index(lid)] = new_layer(kind)


def set_layers(layers: list[LayerSpec]) -> None:
    st.session_state.spec.layers = layers
    new_layer_ids()
