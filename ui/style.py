"""The few layout rules Streamlit has no option for, as one stylesheet every page gets.

Streamlit's wide layout keeps 5rem of padding either side of the main area whatever the window's width; at 1024 px,
beside the sidebar, that leaves the Train page's settings column about 150 px ("Hyperparamete-rs" broke in two).
Narrow windows get a slimmer margin instead.
"""

from __future__ import annotations

import streamlit as st

_CSS = """<style>
@media (max-width: 1300px) {
  [data-testid="stMainBlockContainer"] { padding-left: 2rem; padding-right: 2rem; }
}
</style>"""


def apply() -> None:
    """Add the stylesheet to the page (a style-only st.html takes no room)."""
    st.html(_CSS)
