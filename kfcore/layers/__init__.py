"""The layer registry: every layer kind a spec may use, one module each, found by looking in this package.

KINDS maps a kind's name to its LayerKind; LAYER_TYPES lists the names in the editor's order. Spec parsing,
shapes, build, export, the layer editor and the advice all read these, so adding a kind is adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil

from kfcore.layers.base import ACTIVATIONS, INITIALIZERS, PADDINGS, Field, LayerKind, ShapeError, Values, Where, pair

__all__ = [
    "ACTIVATIONS",
    "FIELD_NAMES",
    "INITIALIZERS",
    "KINDS",
    "LAYER_TYPES",
    "PADDINGS",
    "Field",
    "LayerKind",
    "ShapeError",
    "Values",
    "Where",
    "kind",
    "pair",
]


def _discover() -> dict[str, LayerKind]:
    found: list[LayerKind] = []
    for module in pkgutil.iter_modules(__path__):
        if module.name in ("base", "pooling"):
            continue
        mod = importlib.import_module(f"{__name__}.{module.name}")
        found += [
            obj()
            for obj in vars(mod).values()
            if isinstance(obj, type) and issubclass(obj, LayerKind) and obj.__module__ == mod.__name__
        ]
    return {k.name: k for k in sorted(found, key=lambda k: k.order)}


KINDS: dict[str, LayerKind] = _discover()
LAYER_TYPES: tuple[str, ...] = tuple(KINDS)
# Every field name any kind has, in first-seen order: what a LayerSpec may hold.
FIELD_NAMES: tuple[str, ...] = tuple(dict.fromkeys(f.name for k in KINDS.values() for f in k.fields))


def kind(name: str) -> LayerKind:
    """The kind called `name`; KeyError for an unknown one (specs are checked against LAYER_TYPES first)."""
    return KINDS[name]
