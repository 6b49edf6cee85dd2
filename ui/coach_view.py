"""The coach on the page: what a finished run's results say, each with a button that changes that one setting
and trains a child run of it, or continues the run where more epochs are the answer (kfcore.training.coach reads
the results; this only draws them)."""

from __future__ import annotations

import streamlit as st

from kfcore.runs.store import RunRecord
from kfcore.training import coach
from ui import state


def findings(record: RunRecord, history: list[dict], where: str) -> None:
    """The coach's findings for a finished run; `where` keeps the button keys of two pages apart."""
    evaluation = record.evaluation if record.evaluation is not None else (state.store().get(record.id).evaluation or {})
    found = coach.read_results(record.spec, history, evaluation, state.limits().max_epochs)
    if not found:
        return
    mine = state.owns(record)
    with st.container(border=True, key=f"coach_{where}"):
        st.markdown("**What the results say**")
        for f in found:
            # The button as wide as its label, beside the message or under it where the page is narrow: a quarter
            # column cut "Train 8 epochs" short at 1280 px.
            row = st.container(horizontal=True, vertical_alignment="center")
            row.markdown(f.message)
            if mine and f.continue_epochs:  # train longer: from where this run ended, its curves joined on
                row.button(
                    f.action,
                    key=f"coach_{where}_{f.key}",
                    icon=":material/fast_forward:",
                    on_click=state.continue_training,
                    args=(f.continue_epochs, record),
                    help="Trains on from this run's last epoch, as a child run that continues its curves.",
                )
            elif mine:
                row.button(
                    f.action,
                    key=f"coach_{where}_{f.key}",
                    icon=":material/replay:",
                    on_click=state.retrain,
                    args=(record, f.change),
                    help="Trains a new run, a child of this one, with only this setting changed.",
                )
        if not mine:
            st.caption("Fork this run to try these changes.")
