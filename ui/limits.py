"""What a hosted server allows, said where a user meets it: a one-line note of every cap on the Train page.

Which cap a refused run hit is said by the refusal itself (kfcore.runs.limits' LimitError text, shown where
Train, an upload or a share link was refused); this note lists them all up front.
"""

from __future__ import annotations

import streamlit as st

from kfcore.runs.limits import describe
from ui import state
from ui.text import plain


def server_note() -> None:
    """A compact caption of this server's caps; nothing on a local (non-hosted) studio."""
    problem = state.limits_problem()
    if problem:
        st.error(f"This server's limit settings are misconfigured: {plain(problem)}", icon=":material/error:")
    current = state.limits()
    if not current.hosted:
        return
    parts = describe(current)
    if parts:
        with st.container(key="server_limits"):
            st.caption(":material/dns: **Server limits**: at most " + " · ".join(parts) + ".")
