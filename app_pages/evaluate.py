"""Evaluate: how a finished run does on its test split, sample by sample; the latest run by default."""

import streamlit as st

from ui import coach_view, runs_view, share, state
from ui import evaluate_view as view
from ui.pages import page

st.title("Evaluate")
record = view.pick_run()
if record is None:
    st.info("No finished run yet. Train a model first; its test results appear here.", icon=":material/info:")
    st.page_link(page("train"), label="Go to Train", icon=":material/model_training:")
    st.stop()

state.predictor().start()  # warm for 'Try it' while the person reads the results
runs_view.shared_notice(record)
history = state.store().epochs(record.id)
evaluation = record.evaluation or {}
view.headline(record, history)
coach_view.findings(record, history, "evaluate")
data = view.run_data(record)

if evaluation.get("task") == "regression":
    view.regression(record, data)
elif "confusion_matrix" in evaluation:
    if "decision_boundary" in evaluation:  # 2-D data: the picture first, the tables after it
        view.boundary(record, data)
    view.confusion(record, data, history)
    view.per_class(record, history)
else:
    st.warning("This run has no evaluation recorded; train it again to see one.", icon=":material/warning:")

st.divider()
view.try_it(record, data)

st.divider()
st.subheader("Export and share")
share.downloads(record)
st.caption("A link to this run's results:")
st.code(share.run_link(record.id), language=None, wrap_lines=True)
