"""Runs: every run in the store, newest first (comparison and sharing come with the next issue)."""

import streamlit as st

from kfcore import runview
from ui import state

st.title("Runs")
st.info("Coming next: compare runs side by side, rename, delete, share a run as a link.",
        icon=":material/construction:")
runs = state.store().list_runs()
if not runs:
    st.caption("No runs yet.")
else:
    rows = []
    for r in runs:
        head = runview.headline_metric(r.test)
        rows.append({
            "Run": r.name,
            "Status": r.status,
            "Dataset": r.spec.get("data", {}).get("name") or r.spec.get("data", {}).get("source"),
            "Test": f"{head[0]} {runview.format_metric(*head)}" if head else "",
            "Time": runview.format_duration(r.duration),
        })
    st.dataframe(rows, hide_index=True, key="runs_table")
