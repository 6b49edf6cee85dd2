"""The address bar is the experiment (see the package docstring): restoring runs and specs from it, following
back/forward, writing ?spec= without a history entry."""

from __future__ import annotations

import dataclasses
import json

import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from kfcore.data import uploads
from kfcore.spec import RunSpec, SpecError
from ui.state import layers
from ui.state.owner import data_refusal, visible_runs
from ui.state.services import store
from ui.text import plain


def restore_runs() -> None:
    ss = st.session_state
    runs = store()
    current = runs.get(st.query_params.get("run", ""), with_evaluation=False)
    if current is None:  # a new tab while something trains: show that run (one's own, when hosted) rather than nothing
        active = [r for r in visible_runs() if not r.is_final]
        current = active[0] if active else None
    if current is None:
        return
    ss.run_id = current.id
    try:
        restored = RunSpec.from_dict(current.spec)
        if data_refusal(restored) is None:  # another owner's run may name a file this session must not read
            ss.spec = restored
    except SpecError:
        pass
    previous = runs.get(st.query_params.get("prev", ""), with_evaluation=False)
    ss.previous_run_id = previous.id if previous else None


def follow_browser() -> None:
    """Back/forward: take the run and the experiment of the history entry the browser went to. Only then: other
    reruns may send an address that is a few edits old (the script that writes it lags the widgets)."""
    ctx = get_script_run_ctx()
    if ctx is None or not ctx.is_history_navigation:
        return
    ss = st.session_state
    current = store().get(st.query_params.get("run", ""), with_evaluation=False)
    if current is not None and current.id != ss.run_id:
        previous = store().get(st.query_params.get("prev", ""), with_evaluation=False)
        ss.run_id, ss.previous_run_id = current.id, previous.id if previous else None
    token = st.query_params.get("spec")
    if token != spec_token(ss.spec):
        if token:
            restore_shared_spec()
        else:  # an entry of the default experiment
            load_spec(RunSpec())


def spec_token(candidate: RunSpec) -> str | None:
    """The experiment as the address bar and share links carry it (uploads by reference), None for the defaults."""
    if candidate.to_dict() == RunSpec().to_dict():
        return None
    return dataclasses.replace(candidate, data=uploads.as_refs(candidate.data, store().uploads_dir)).to_url()


def write_address_bar() -> None:
    """Put the experiment into the address bar without a new history entry (see the module's docstring). The
    script runs in the page itself; a counter makes every full run draw it anew, so it also runs after Streamlit
    rewrote the address (a new run, another page)."""
    ss = st.session_state
    ss.address_writes = ss.get("address_writes", 0) + 1
    token = json.dumps(spec_token(ss.spec))  # base64url or null: nothing in it needs escaping in a script
    with st.sidebar:
        st.html(
            f"""<script data-n="{ss.address_writes}">(() => {{ const u = new URL(location.href), t = {token};"""
            """ if (t) u.searchParams.set("spec", t); else u.searchParams.delete("spec");"""
            """ if (u.href !== location.href) history.replaceState(history.state, "", u); })();"""
            """document.currentScript?.remove();</script>""",
            unsafe_allow_javascript=True,
            width="content",
        )


def restore_shared_spec() -> None:
    """A share link (?spec=…) sets the experiment; a damaged one says why and leaves the spec as it was."""
    token = st.query_params.get("spec")
    if not token:
        return
    try:
        shared = RunSpec.from_url(token)
    except SpecError as e:
        st.error(f"This share link could not be opened: {plain(e)}", icon=":material/link_off:")
        return
    refusal = data_refusal(shared)  # a link may name any path on the server
    if refusal:
        st.error(f"This share link could not be opened: {plain(refusal)}", icon=":material/link_off:")
        return
    load_spec(shared)


# Widget state of the Data page that belongs to the spec being replaced (an upload, its target column).
_EDITOR_KEYS = (
    "data_choice",
    "data_error",
    "uploaded",
    "upload_file_id",
    "upload_attempt",
    "target_column",
    "upload_task",
    "preset_error",
    "train_error",
)


def load_spec(new: RunSpec) -> None:
    """Make `new` the experiment every page edits (a share link, a run loaded from the Runs page)."""
    ss = st.session_state
    for key in _EDITOR_KEYS:
        ss.pop(key, None)
    ss.spec = new
    layers.new_layer_ids()


def sync_url() -> None:
    """?run=&prev= through Streamlit; ?spec= is write_address_bar's (the browser's copy may be stale: ignored)."""
    ss = st.session_state
    want = {k: v for k, v in (("run", ss.run_id), ("prev", ss.previous_run_id)) if v}
    if {k: v for k, v in st.query_params.items() if k != "spec"} != want:
        st.query_params.from_dict(want)
