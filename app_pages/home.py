"""Home: what KF Studio is for, the machine it trains on, and the way in."""

import streamlit as st

from ui import sidebar
from ui.pages import page

st.title("KF Studio")
st.markdown(
    "Design a neural network with a few clicks, train it on real data and watch it learn, epoch by epoch. "
    "Change one setting, train again, and see at a glance what the change did — no code needed."
)

st.subheader("This machine")
st.markdown(sidebar.device_text())
st.caption("Training runs in background worker processes: switching pages or reloading never stops a run.")

st.subheader("Three steps")
cols = st.columns(3)
steps = [
    (page("data"), "1 · Data", ":material/dataset:", "Pick a built-in set, a Keras download or your own CSV."),
    (page("model"), "2 · Model", ":material/account_tree:", "Stack layers or start from a preset."),
    (page("train"), "3 · Train", ":material/model_training:", "Set the optimizer, press Train, watch the curves."),
]
for col, (target, label, icon, text) in zip(cols, steps, strict=True):
    with col.container(border=True):
        st.page_link(target, label=label, icon=icon)
        st.caption(text)

if st.button("Start: pick a dataset", key="start", type="primary", icon=":material/arrow_forward:"):
    st.switch_page(page("data"))
st.caption("In a hurry? The defaults (8×8 digits, a 64-unit MLP, Adam) are ready: go straight to **Train**.")
