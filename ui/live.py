"""The live view of the current run: progress, curves that grow epoch by epoch, and the result at the end.

It is a fragment that re-reads the run store every half second while the run is queued or running
(an epoch shows about half a second after it ends: measured in bench/bench_ui.py),
and stops polling (one full rerun) once the run is final. Training itself never happens here.
"""

from __future__ import annotations

import streamlit as st

from kfcore.present import plots, runview
from kfcore.runs.store import RunRecord
from ui import sidebar, state
from ui.pages import page
from ui.text import plain

POLL_S = 0.5


def run_panel() -> None:
    record = state.current_run()
    active = state.is_active(record)
    if record is not None:
        _compare_with(record)
    st.fragment(_panel, run_every=POLL_S if active else None)(active)


def _compare_with(record: RunRecord) -> None:
    """Which run is drawn dashed: only runs on the same data qualify (another dataset's loss scale says nothing)."""
    ss = st.session_state
    names = {r.id: r.name for r in state.comparable_runs(record.id, also=ss.get("previous_run_id"))}
    if ss.get("previous_run_id") not in names:
        ss.previous_run_id = None
    options = [None, *names]
    if ss.get("compare_with") != ss.previous_run_id:  # as ui.widgets.bound: only when the state moved on
        ss["compare_with"] = ss.previous_run_id
    st.selectbox("Compare with (dashed)", options, key="compare_with", format_func=lambda i: names.get(i, "none"),
                 on_change=lambda: ss.update(previous_run_id=ss["compare_with"]),
                 help="Earlier finished runs on the same data and task.")


def _panel(was_active: bool) -> None:
    store = state.store()
    record = state.current_run()
    if record is None:
        st.info("No run yet. Press **Train**: the defaults are ready to go, and the curves appear here.")
        return
    if was_active and record.is_final:
        st.rerun()
    history = store.epochs(record.id)
    previous_id = st.session_state.get("previous_run_id")
    previous = store.epochs(previous_id) if previous_id else None
    _status(record, history)
    metric = runview.metric_for(record.info.get("task", ""))
    best = runview.best_epoch(history) if record.status == "finished" else None
    planned = runview.planned_epochs(record)
    loss_chart, metric_chart = _curves(record, history, previous_id, previous, metric, planned, best)
    left, right = st.columns(2)
    with left:
        st.plotly_chart(loss_chart, key="chart_loss")
    with right:
        st.plotly_chart(metric_chart, key="chart_metric")
    if record.status == "finished":
        _results(record, history, best)


def _curves(record: RunRecord, history: list[dict], previous_id: str | None, previous: list[dict] | None,
            metric: str, planned: int, best: int | None) -> tuple:
    """The two charts, rebuilt only when something they show changed: most polls find no new epoch
    (and a queued run none at all), and building a figure is the costliest part of a poll."""
    version = (record.id, len(history), previous_id, len(previous or ()), metric, planned, best)
    cached = st.session_state.get("_live_charts")
    if cached is None or cached[0] != version:
        cached = (version, plots.training_curve(history, "loss", previous, planned, best),
                  plots.training_curve(history, metric, previous, planned, best))
        st.session_state["_live_charts"] = cached
    return cached[1], cached[2]


def _status(record: RunRecord, history: list[dict]) -> None:
    p = runview.progress(record, history)
    name = plain(record.name)
    if record.status == "queued":
        line = runview.status_line(record, history, wait=sidebar.queue_wait(record))
        st.info(f"**{name}**: {plain(line)}; it starts when a worker is free.", icon=":material/hourglass_empty:")
    elif record.status == "running" and not record.info:
        st.progress(0.0, text=f"**{name}**: starting — loading the data and building the model…")
    elif record.status == "running":
        parts = [f"Epoch {p.epoch} of {p.epochs}"]
        if p.step and p.steps:
            parts.append(f"step {p.step}/{p.steps}")
        if p.samples_per_s:
            parts.append(f"{p.samples_per_s:,.0f} samples/s")
        parts.append(f"ETA {runview.format_duration(p.eta_s)}" if p.eta_s is not None else "ETA after the first epoch")
        st.progress(p.fraction, text=f"**{name}**: " + " · ".join(parts))
    elif record.status == "failed":
        st.error(f"**{name}** failed: {plain(record.error)}", icon=":material/error:")
    elif record.status == "cancelled":
        st.warning(f"**{name}** was stopped after {len(history)} of {p.epochs} epochs.",
                   icon=":material/cancel:")


def _results(record: RunRecord, history: list[dict], best: int | None) -> None:
    # Cards as wide as their values, wrapping where the column is narrow (four equal columns cut "78.8%" at 1024 px),
    # in two pairs that wrap whole: the scores, then how the run went; never "Time" alone on a line.
    cards = st.container(horizontal=True, gap="medium")
    scores = cards.container(horizontal=True, gap="medium", width="content")
    facts = cards.container(horizontal=True, gap="medium", width="content")
    head = runview.headline_metric(record.test)
    if head:
        scores.metric(f"Test {runview.METRIC_NAMES.get(head[0], head[0])}", runview.format_metric(*head),
                      width="content")
    if "loss" in record.test:
        scores.metric("Test loss", runview.format_metric("loss", record.test["loss"]), width="content")
    facts.metric("Best epoch", f"{best} of {len(history)}" if best else "–", width="content")
    facts.metric("Time", runview.format_duration(record.duration), width="content")
    offers = ("predictions against the truth, the largest errors" if record.info.get("task") == "regression"
              else "confusion matrix, mistakes, per-class scores")
    st.page_link(page("evaluate"), label=f"Evaluate this model: {offers}", icon=":material/analytics:")
