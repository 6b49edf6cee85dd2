"""Sweep: train many variations of the experiment at once and compare them (the trials run in workers)."""

import streamlit as st

from ui import state, sweep_view

st.title("Sweep")
st.caption("Vary hyperparameters of the experiment being edited: every trial is an ordinary run, listed on Runs too.")
with st.container(border=True):
    sweep = sweep_view.designer()
    st.button(
        "Start sweep",
        key="sweep_start",
        type="primary",
        icon=":material/play_arrow:",
        disabled=sweep is None or state.sign_in_first() is not None,
        on_click=sweep_view.start,
        args=(sweep,),
    )
    sweep_view.message()

sweeps = sweep_view.visible_sweeps()
if not sweeps:
    st.info("No sweeps yet: pick what to vary above and press **Start sweep**.", icon=":material/info:")
    st.stop()
st.divider()
sweep_view.follow(sweep_view.pick(sweeps))
