"""Runs: every run in the store as a table; compare the selected ones; rename, delete, reload or export one; import a
run bundle."""

import streamlit as st

from ui import runs_view, state
from ui.pages import page

st.title("Runs")
records = state.visible_runs()  # hosted: this browser's runs only; another's is reached through its link
if not records:
    st.info(
        "No runs yet. Train a model and every run is listed here to compare, rename, reload or export.",
        icon=":material/info:",
    )
    st.page_link(page("train"), label="Go to Train", icon=":material/model_training:")
    runs_view.import_box()
    st.stop()

rows = runs_view.summaries(records)
visible = runs_view.filters(rows)
chosen = runs_view.table(visible, rows)

by_id = {r.id: r for r in records}
if len(chosen) >= 2:
    st.subheader(f"Comparing {len(chosen)} runs")
    runs_view.comparison([by_id[i] for i in chosen])
else:
    st.caption(
        "Tick two or more rows to overlay their curves and see which settings differ. Click a column header to sort."
    )

st.divider()
st.subheader("One run")
record = runs_view.pick(records, chosen)
runs_view.manage(record)

st.divider()
runs_view.import_box()
