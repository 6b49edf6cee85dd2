"""Evaluate: how the trained model does on the test split (the full page comes with the next issue)."""

import streamlit as st

from kfcore import runview
from ui import state

st.title("Evaluate")
st.info("Coming next: the confusion matrix, per-class scores, the most confident mistakes and, for 2-D data, "
        "the decision boundary.", icon=":material/construction:")
record = state.current_run()
if record is None or record.status != "finished":
    st.caption("Train a model first; its test results appear here.")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
else:
    st.subheader(record.name)
    cols = st.columns(len(record.test) or 1)
    for col, (name, value) in zip(cols, sorted(record.test.items()), strict=False):
        col.metric(f"Test {name}", runview.format_metric(name, value))
