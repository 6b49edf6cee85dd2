"""Widgets bound to the RunSpec: each shows the spec's value and writes a change straight back into it.

The spec, not the widget, is the source of truth: the widget's session-state slot is set from the spec
before the widget is drawn (never also via `value=`, which Streamlit refuses), and a change goes
through an on_change callback that looks the spec up at call time, so a replaced spec is never stale.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from kfcore.spec import RunSpec
from ui import state

Setter = Callable[[RunSpec, Any], None]


def _apply(key: str, setter: Setter) -> None:
    setter(state.spec(), st.session_state[key])


def bound(widget: Callable[..., Any], label: str, key: str, value: Any, setter: Setter, **kwargs: Any) -> Any:
    """Draw `widget` (st.slider, st.selectbox, …) under `key`, showing `value`, saving changes via `setter`."""
    options = kwargs.get("options")
    if options is not None and value not in options:  # a value from a shared spec that no option offers
        kwargs["options"] = sorted([*options, value])
    # Only when the spec moved on (a preset, a loaded run, a share link): writing an unchanged value
    # would push it back to the browser on every rerun and swallow key presses made meanwhile.
    if key not in st.session_state or st.session_state[key] != value:
        st.session_state[key] = value
    return widget(label, key=key, on_change=_apply, args=(key, setter), **kwargs)


def field(section: str, name: str, cast: Callable[[Any], Any] = lambda v: v) -> Setter:
    """A setter for spec.<section>.<name>, e.g. field("train", "epochs", int)."""

    def set_field(spec: RunSpec, value: Any) -> None:
        setattr(getattr(spec, section), name, cast(value))

    return set_field
