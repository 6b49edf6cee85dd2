"""Train, retrain, stop: the session's runs going to the executor (the worker pool or Ray),
and what the Train page compares them with."""

from __future__ import annotations

import streamlit as st

from kfcore.present import runview
from kfcore.runs.executors import ExecutorError
from kfcore.runs.jobs import admit, continue_run
from kfcore.runs.limits import LimitError
from kfcore.runs.store import RunRecord, StoreFullError
from kfcore.spec import RunSpec, SpecError, parse_spec
from kfcore.training import coach
from ui.state.address import load_spec
from ui.state.owner import owns, sign_in_first, visible_runs
from ui.state.services import jobs, limits, store
from ui.state.session import current_run, spec


def start_training(parent: str | None = None) -> None:
    """Train button: queue the spec as it is now; the run before becomes the dashed 'previous'. `parent`: the run
    this one continues or changes (the coach's retrain)."""
    ss = st.session_state
    ss.train_error = sign_in_first()
    if ss.train_error:
        return
    try:
        checked = parse_spec(ss.spec.to_dict())
    except SpecError as e:
        ss.train_error = str(e)
        return
    try:
        run_id = jobs().submit(checked, owner=ss.owner, parent=parent)
    except (LimitError, StoreFullError, ExecutorError) as e:
        ss.train_error = str(e)
        return
    ss.train_error = None
    before, ss.run_id = ss.get("run_id"), run_id
    ss.previous_run_id = next((r.id for r in comparable_runs(run_id, also=before)), None)


def comparable_runs(run_id: str, also: str | None = None) -> list[RunRecord]:
    """The finished runs (this session's to see) whose curves may be drawn dashed behind this run's, newest first;
    `also`: the run the session was on before (a shared run opened by its link and forked), first when it compares."""
    record = store().get(run_id, with_evaluation=False)
    if record is None:
        return []
    before = store().get(also, with_evaluation=False) if also else None
    candidates = ([before] if before is not None else []) + [
        r for r in visible_runs() if before is None or r.id != before.id
    ]
    return [
        r for r in candidates if r.id != run_id and r.status == "finished" and runview.comparable(record.spec, r.spec)
    ]


def reset_hyperparameters() -> None:
    """The Train page's "Reset to defaults": the optimizer, schedule, epochs, batch, seed and split as a new
    experiment has them; data and layers stay."""
    defaults = RunSpec()
    spec().train, spec().split = defaults.train, defaults.split


def run_differs(record: RunRecord) -> tuple[bool, bool]:
    """(other data, other hyperparameters): how the experiment being edited differs from this run's."""
    ran, now = record.spec, spec().to_dict()
    other_data = not runview.comparable(ran, now)
    return other_data, (ran.get("train"), ran.get("split")) != (now["train"], now["split"])


def retrain(parent: RunRecord, change: dict) -> None:
    """The coach's "apply and retrain": the parent's spec with only `change` applied becomes the experiment and
    trains as a child run of the parent (the lineage is kept in the store)."""
    ss = st.session_state
    try:
        child = parse_spec(coach.apply(parent.spec, change))
    except SpecError as e:
        ss.train_error = str(e)
        return
    load_spec(child)
    start_training(parent=parent.id)


def stop_training() -> None:
    """Stop button: cancel the current run, if it is this session's to stop (a shared run is not)."""
    if owns(current_run()):
        try:
            jobs().cancel(st.session_state.run_id)
        except (StoreFullError, ExecutorError) as e:
            st.session_state.train_error = str(e)


def command_run(command: str, value: float | None = None) -> None:
    """Pause, Resume, Step and "Apply to this run": a command for the current run's worker (kfcore.runs.store), if
    it is this session's run; what stands in the way (it just ended, a schedule owns its rate) goes to live_error."""
    ss = st.session_state
    record = current_run()
    if record is None or not owns(record):
        return
    try:
        store().send_command(record.id, command, value)
        ss.live_error = None
    except (ValueError, StoreFullError) as e:
        ss.live_error = str(e)


def continue_training(epochs: int, record: RunRecord | None = None) -> None:
    """Continue: the current (finished or stopped) run, or `record` (the coach's "Continue N more epochs"), trains
    `epochs` more as a child run, which becomes the current run; its curves are drawn joined to its parent's, so no
    earlier run is drawn dashed behind them."""
    ss = st.session_state
    record = record or current_run()
    ss.train_error = sign_in_first()
    if ss.train_error or record is None or not owns(record):
        return
    try:  # queued in the store like any run: whichever executor serves the queue trains it
        admit(store(), ss.owner)
        child = continue_run(store(), record.id, int(epochs), owner=ss.owner)
    except (ValueError, LimitError, StoreFullError) as e:
        ss.train_error = str(e)
        return
    ss.run_id, ss.previous_run_id = child, None


def epochs_max(epochs: int) -> int:
    """The Epochs slider's maximum: the server's cap in hosted mode (or the spec's value, when a shared spec is
    over it: the slider shows it and Train says which limit it is over), else 100 or more."""
    cap = limits().max_epochs
    return max(cap, epochs) if cap else max(100, epochs)
