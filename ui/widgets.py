"""Widgets bound to the RunSpec: each shows the spec's value and writes a change straight back into it.

The spec, not the widget, is the source of truth: the widget's session-state slot is set from the spec
before the widget is drawn (never also via `value=`, which Streamlit refuses), and a change goes
through an on_change callback that looks the spec up at call time, so a replaced spec is never stale.
"""

from __future__ import annotations

import json
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


_ICON_LABELS = "_icon_button_labels"  # session slot: key -> label of the icon-only buttons drawn in this run
# Streamlit names an icon-only button after its icon ("arrow_upward icon") for screen readers and get_by_role; this
# names each by its label instead and hides the icon's ligature text, again whenever Streamlit redraws one.
_LABEL_JS = """<script>(() => { const labels = %s;
const apply = () => { for (const [key, label] of Object.entries(labels)) {
  for (const b of document.querySelectorAll(`.st-key-${CSS.escape(key)} button`)) {
    if (b.getAttribute("aria-label") !== label) b.setAttribute("aria-label", label);
    b.querySelectorAll('[data-testid="stIconMaterial"]').forEach(i => i.setAttribute("aria-hidden", "true"));
  } } };
apply(); window.__kfIconLabels?.disconnect();
window.__kfIconLabels = new MutationObserver(apply);
window.__kfIconLabels.observe(document.body, {childList: true, subtree: true}); })();
document.currentScript?.remove();</script>"""


def icon_button(container: Any, label: str, key: str, icon: str, **kwargs: Any) -> bool:
    """A button that shows only its icon; `label` is its tooltip and its accessible name (label_icon_buttons)."""
    st.session_state.setdefault(_ICON_LABELS, {})[key] = label
    return container.button("", key=key, icon=icon, help=label, **kwargs)


def label_icon_buttons() -> None:
    """Give the icon-only buttons this run drew their labels as accessible names: one script, after the page."""
    labels = st.session_state.pop(_ICON_LABELS, None)
    if labels:
        with st.sidebar:  # JSON of keys and our own labels: nothing a user typed
            st.html(_LABEL_JS % json.dumps(labels, sort_keys=True), unsafe_allow_javascript=True, width="content")
