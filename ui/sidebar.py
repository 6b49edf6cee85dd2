"""The sidebar on every page: the device training uses and the current run's state, live while it trains."""

from __future__ import annotations

import streamlit as st

from kfcore.present import runview
from kfcore.runs.store import RunRecord
from kfcore.training.hardware import describe_host
from ui import auth, share, state
from ui.text import plain


def device_text() -> str:
    host = describe_host()
    if host["gpus"]:
        return "  \n".join(f"GPU: {g}" for g in host["gpus"])
    return f"CPU: {host['cpu']} ({host['cpu_cores']} cores)"


def render() -> None:
    with st.sidebar:
        if state.accounts():
            auth.sidebar_control()
        st.caption("Device")
        st.markdown(f":material/memory: {device_text()}")
        st.caption("Experiment")
        spec = state.spec()
        name = spec.data.name or spec.data.source
        layers = spec.layers_short().split(" → ")
        shown = " → ".join(layers[:3]) + (f" → … (+{len(layers) - 3} more)" if len(layers) > 3 else "")
        st.markdown(f"**{plain(name)}** · {plain(shown)}")
        share.share_popover()
        record = state.current_run()
        st.caption("Current run")
        st.fragment(_run_status, run_every=1.0 if state.is_active(record) else None)(state.is_active(record))
        state.remember_owner()


def _run_status(was_active: bool) -> None:
    record = state.current_run()
    if record is None:
        st.markdown("none yet — press **Train** on the Train page")
        return
    if was_active and record.is_final:
        st.rerun()  # the whole page: re-enable Train, show the results, stop polling
    st.markdown(f"{_icon(record)} **{plain(record.name)}**: {plain(status_text(record))}")
    if not state.owns(record):
        st.caption(":material/lock: shared run — fork it to change it")


def status_text(record: RunRecord) -> str:
    runs = state.store()
    history = [] if record.status == "queued" else runs.epochs(record.id)
    return runview.status_line(record, history, wait=queue_wait(record))


def queue_wait(record: RunRecord) -> runview.Wait | None:
    """What a queued run waits for (None for any other run): the runs ahead, about how long, what holds a worker."""
    if record.status != "queued":
        return None
    return runview.queue_wait(state.store(), record, state.limits().max_concurrent)


def _icon(record: RunRecord) -> str:
    return {
        "queued": ":material/hourglass_empty:",
        "running": ":material/autorenew:",
        "finished": ":green[:material/check_circle:]",
        "failed": ":red[:material/error:]",
        "cancelled": ":orange[:material/cancel:]",
    }[record.status]
