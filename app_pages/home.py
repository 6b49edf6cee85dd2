"""Home: what KF Studio is for, the machine it trains on, and the way in."""

import streamlit as st

from ui import sidebar

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
    ("app_pages/data.py", "1 · Data", ":material/dataset:", "Pick a built-in set, a Keras download or your own CSV."),
    ("app_pages/model.py", "2 · Model", ":material/account_tree:", "Stack layers or start from a preset."),
    ("app_pages/train.py", "3 · Train", ":material/model_training:", "Set the optimizer, press Train, watch the curves."),
]
for col, (page, label, icon, text) in zip(cols, steps, strict=True):
    with col.container(border=True):
        st.page_link(page, label=label, icon=icon)
        st.caption(text)

if st.button("Start: pick a dataset", key="start", type="primary", icon=":material/arrow_forward:"):
    st.switch_page("app_pages/data.py")
st.caption("In a hurry? The defaults (8×8 digits, a 64-unit MLP, Adam) are ready: go straight to **Train**.")
