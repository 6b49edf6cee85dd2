"""The live view of the current run: progress, curves that grow epoch by epoch, its latest picture (the boundary
on 2-D data, the network), the result at the end; and the controls that act on it (Pause, Resume, Step, its
learning rate, Continue).

The view is a fragment that re-reads the run store every half second while the run is queued or running
(an epoch shows about half a second after it ends: measured in bench/bench_ui.py),
and stops polling (one full rerun) once the run is final. The controls sit outside it, so they stay put while it
redraws; it reruns the page when they must change (the run starts, pauses, resumes, ends). Training itself never
happens here.
"""

from __future__ import annotations

import time

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from kfcore.model.shapes import ShapeError, ShapeReport, infer_shapes
from kfcore.present import plots, runview
from kfcore.runs.jobs import saved_state
from kfcore.runs.store import RunRecord
from kfcore.spec import RunSpec, SpecError
from ui import sidebar, state
from ui.pages import page
from ui.text import plain

POLL_S = 0.5
CONTINUE_EPOCHS = 20  # Continue's default
NETWORK_REDRAW_S = 2.0  # the network diagram's redraws while a run trains


def run_panel() -> None:
    record = state.current_run()
    active = state.is_active(record)
    if record is not None:
        _compare_with(record)
    st.fragment(_panel, run_every=POLL_S if active else None)(active, _phase(record))


def _phase(record: RunRecord | None) -> tuple:
    """What the live controls outside the panel depend on: when it changes, the panel reruns the page."""
    return (record.status, record.paused is not None, bool(record.info)) if record is not None else ()


def _compare_with(record: RunRecord) -> None:
    """Which run is drawn dashed: only runs on the same data qualify (another dataset's loss scale says nothing)."""
    ss = st.session_state
    names = {r.id: r.name for r in state.comparable_runs(record.id, also=ss.get("previous_run_id"))}
    if ss.get("previous_run_id") not in names:
        ss.previous_run_id = None
    options = [None, *names]
    if ss.get("compare_with") != ss.previous_run_id:  # as ui.widgets.bound: only when the state moved on
        ss["compare_with"] = ss.previous_run_id
    st.selectbox(
        "Compare with (dashed)",
        options,
        key="compare_with",
        format_func=lambda i: names.get(i, "none"),
        on_change=lambda: ss.update(previous_run_id=ss["compare_with"]),
        help="Earlier finished runs on the same data and task.",
    )


def _panel(was_active: bool, drawn: tuple) -> None:
    store = state.store()
    record = state.current_run()
    if record is None:
        st.info("No run yet. Press **Train**: the defaults are ready to go, and the curves appear here.")
        return
    if was_active and (record.is_final or _phase(record) != drawn):  # Train, Stop and the live controls follow
        st.rerun()
    history = store.epochs(record.id)
    parent = _lineage_epochs(record)
    previous_id = st.session_state.get("previous_run_id")
    previous = store.epochs(previous_id) if previous_id else None
    _status(record, history)
    metric = runview.metric_for(record.info.get("task", ""))
    best = runview.best_epoch(history) if record.status == "finished" else None
    planned = runview.planned_epochs(record) + (int(parent[-1]["epoch"]) if parent else 0)
    loss_chart, metric_chart = _curves(record, history, previous_id, previous, metric, planned, best, parent)
    left, right = st.columns(2)
    with left:
        st.plotly_chart(loss_chart, key="chart_loss")
    with right:
        st.plotly_chart(metric_chart, key="chart_metric")
    _pictures(record)
    if record.status == "finished":
        _results(record, history, best)


def _lineage_epochs(record: RunRecord) -> list[dict]:
    """The epochs of the runs a continued run continues (its parent's, and theirs when the parent continues one),
    oldest first: its curves are drawn on from them."""
    store, epochs, seen = state.store(), [], {record.id}
    while record.continues and record.parent and record.parent not in seen:
        seen.add(record.parent)
        record = store.get(record.parent, with_evaluation=False)
        if record is None:
            break
        epochs = store.epochs(record.id) + epochs
    return epochs


def _curves(
    record: RunRecord,
    history: list[dict],
    previous_id: str | None,
    previous: list[dict] | None,
    metric: str,
    planned: int,
    best: int | None,
    parent: list[dict],
) -> tuple:
    """The two charts, rebuilt only when something they show changed: most polls find no new epoch
    (and a queued run none at all), and building a figure is the costliest part of a poll."""
    marks = sum(1 for r in history if r.get("lr_changed"))
    version = (record.id, len(history), previous_id, len(previous or ()), metric, planned, best, len(parent), marks)
    cached = st.session_state.get("_live_charts")
    if cached is None or cached[0] != version:
        cached = (
            version,
            plots.training_curve(history, "loss", previous, planned, best, parent=parent),
            plots.training_curve(history, metric, previous, planned, best, parent=parent),
        )
        st.session_state["_live_charts"] = cached
    return cached[1], cached[2]


def controls(row: DeltaGenerator, record: RunRecord | None) -> None:
    """Pause, Resume and Step in `row` (beside Train and Stop), and below it the learning rate of the run training
    now: these act on that run (the Hyperparameters on the next one). Outside the polled panel, so they stay put
    while it redraws; the panel reruns the page when the run starts, pauses or resumes (_phase)."""
    if record is None or record.is_final or not state.owns(record):
        return
    ss = st.session_state
    live = record.status == "running" and bool(record.info)
    paused = record.paused is not None
    row.button(
        "Pause",
        key="pause",
        icon=":material/pause:",
        disabled=not live or paused,
        on_click=state.command_run,
        args=("pause",),
        help="Hold this run at the end of its epoch; its model waits in memory",
    )
    row.button(
        "Resume",
        key="resume",
        icon=":material/resume:",
        disabled=not paused,
        on_click=state.command_run,
        args=("resume",),
        help="Train this run on from where it paused",
    )
    row.button(
        "Step",
        key="step",
        icon=":material/skip_next:",
        disabled=not paused,
        on_click=state.command_run,
        args=("step",),
        help="Train this paused run exactly one more epoch, then wait again",
    )
    train = record.spec.get("train", {})
    schedule = train.get("schedule", "constant")
    if ss.get("live_lr_run") != record.id:  # a new run: the input starts at its rate
        ss.live_lr_run, ss.live_lr = record.id, float(train.get("learning_rate") or 0.001)
    if schedule != "constant":
        st.caption(
            f"This run's learning rate follows the {schedule} schedule, so it cannot be changed while it trains."
        )
    else:
        with st.container(horizontal=True, vertical_alignment="bottom", key="live_rate"):
            st.number_input(
                "Learning rate of this run",
                key="live_lr",
                min_value=1e-6,
                max_value=10.0,
                format="%g",
                width=200,
                disabled=not live,
                help="Applies to the run training now from its next epoch; a marker on the curves shows "
                "where it changed",
            )
            st.button(
                "Apply to this run",
                key="apply_lr",
                icon=":material/tune:",
                disabled=not live,
                on_click=lambda: state.command_run("learning_rate", ss.live_lr),
                help="Change the learning rate of the run training now",
            )
    if ss.get("live_error"):
        st.warning(plain(ss.live_error), icon=":material/warning:")


def _run_report(record: RunRecord) -> ShapeReport | None:
    """The run's model as kfcore.model.shapes reports it, on the data its worker described; None before it started."""
    info = record.info
    if not info.get("input_shape"):
        return None
    try:
        spec = RunSpec.from_dict(record.spec)
        return infer_shapes(
            spec.layers,
            tuple(info["input_shape"]),
            info["task"],
            max(2, len(info.get("class_names") or ())),
            spec.output,
        )
    except (SpecError, ShapeError, KeyError):
        return None


def _pictures(record: RunRecord) -> None:
    """Beside the curves: the boundary over the plane (2-D data) as the run last pictured it, and the network, the
    Playground diagram with its latest weights for a small dense one, else the block diagram of its layers."""
    ss = st.session_state
    picture = state.store().picture(record.id)
    epoch = picture.get("epoch") if picture else None
    boundary_at = (record.id, epoch)
    if ss.get("_live_boundary", (None,))[0] != boundary_at:
        names = [str(c) for c in record.info.get("class_names") or ()]
        ss["_live_boundary"] = (
            boundary_at,
            plots.live_boundary(picture, names) if picture and "boundary" in picture else None,
        )
    # The network is the costlier figure to draw (a thumbnail per unit): while the run trains, at most every
    # NETWORK_REDRAW_S; redrawn twice a second under load, each drawing was replaced before the browser finished it.
    cached = ss.get("_live_network")
    training = record.status == "running" and record.paused is None
    stale = (
        cached is None
        or cached[0][0] != record.id
        or (cached[0][1] != epoch and (not training or time.monotonic() - cached[1] >= NETWORK_REDRAW_S))
    )
    if stale:
        report = _run_report(record)
        network = None
        if report is not None:
            network = plots.network_diagram(report, tuple(record.info["input_shape"]), picture) or plots.layer_blocks(
                report
            )
        ss["_live_network"] = cached = ((record.id, epoch), time.monotonic(), network)
    boundary, network = ss["_live_boundary"][1], cached[2]
    if boundary is None and network is None:
        return
    left, right = st.columns(2)
    if boundary is not None:
        left.plotly_chart(boundary, key="chart_boundary", config={"displayModeBar": False})
    if network is not None:
        (right if boundary is not None else left).plotly_chart(
            network, key="chart_network", config={"displayModeBar": False}
        )


def continue_controls(record: RunRecord | None) -> None:
    """Continue N epochs, for a finished or stopped run of this session's with its saved state (outside the live
    panel: the new run's start reruns the whole page, so Train and Stop follow it)."""
    if record is None or not record.is_final or not state.owns(record):
        return
    if saved_state(state.store(), record) is None:
        if record.status == "cancelled":
            st.caption(
                ":material/info: This run was stopped before its first epoch ended, so it saved no model "
                "to continue from; press **Train** to train it again."
            )
        return
    with st.container(horizontal=True, vertical_alignment="bottom", key="continue_row"):
        st.number_input(
            "More epochs",
            key="continue_epochs",
            min_value=1,
            max_value=state.epochs_max(1000),
            value=CONTINUE_EPOCHS,
            step=10,
            width=160,
        )
        st.button(
            "Continue",
            key="continue",
            icon=":material/fast_forward:",
            on_click=lambda: state.continue_training(st.session_state.continue_epochs),
            help="Train this run's model on for more epochs, from its weights and optimizer state, as a new "
            "run drawn on from this one's curves",
        )


def _status(record: RunRecord, history: list[dict]) -> None:
    p = runview.progress(record, history)
    name = plain(record.name)
    if record.status == "queued":
        line = runview.status_line(record, history, wait=sidebar.queue_wait(record))
        st.info(f"**{name}**: {plain(line)}; it starts when a worker is free.", icon=":material/hourglass_empty:")
    elif record.status == "running" and record.paused is not None:
        st.progress(p.fraction, text=f"**{name}**: {plain(runview.status_line(record, history))}")
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
        st.warning(f"**{name}** was stopped after {len(history)} of {p.epochs} epochs.", icon=":material/cancel:")


def _results(record: RunRecord, history: list[dict], best: int | None) -> None:
    # Cards as wide as their values, wrapping where the column is narrow (four equal columns cut "78.8%" at 1024 px),
    # in two pairs that wrap whole: the scores, then how the run went; never "Time" alone on a line.
    cards = st.container(horizontal=True, gap="medium")
    scores = cards.container(horizontal=True, gap="medium", width="content")
    facts = cards.container(horizontal=True, gap="medium", width="content")
    head = runview.headline_metric(record.test)
    if head:
        scores.metric(
            f"Test {runview.METRIC_NAMES.get(head[0], head[0])}", runview.format_metric(*head), width="content"
        )
    if "loss" in record.test:
        scores.metric("Test loss", runview.format_metric("loss", record.test["loss"]), width="content")
    facts.metric("Best epoch", runview.best_epoch_text(best, history), width="content")
    facts.metric("Time", runview.format_duration(record.duration), width="content")
    offers = (
        "predictions against the truth, the largest errors"
        if record.info.get("task") == "regression"
        else "confusion matrix, mistakes, per-class scores"
    )
    st.page_link(page("evaluate"), label=f"Evaluate this model: {offers}", icon=":material/analytics:")
