"""A session's experiment and current run: filled on its first run (from the address bar, a share link or a run
that trains), then read by every page."""

from __future__ import annotations

from contextlib import suppress

import streamlit as st

from kfcore.runs.executors import ExecutorError
from kfcore.runs.store import RunRecord
from kfcore.spec import RunSpec
from ui.state import address, layers
from ui.state.owner import init_owner
from ui.state.services import jobs, store, warm_imports


def init_session() -> None:
    """Fill session state on a session's first run, picking up the run the URL (or a live worker) names."""
    ss = st.session_state
    if "spec" not in ss:
        init_owner()
        ss.spec = RunSpec()
        ss.run_id = ss.previous_run_id = None
        address.restore_runs()
        layers.new_layer_ids()
        address.restore_shared_spec()
    else:
        address.follow_browser()
    with suppress(ExecutorError):  # Train says why nothing can train
        jobs()
    warm_imports()
    address.sync_url()


def spec() -> RunSpec:
    return st.session_state.spec


def current_run() -> RunRecord | None:
    run_id = st.session_state.get("run_id")
    return store().get(run_id, with_evaluation=False) if run_id else None


def is_active(record: RunRecord | None) -> bool:
    return record is not None and not record.is_final
