"""The Sweep page's parts: choose what varies (from the experiment being edited), see the trial count, start it on
the local pool, and follow it: curves overlaid live, filters with parallel coordinates, the results table, seed
bands, and loading the best trial into the editor.

A sweep's driver (kfcore.runs.sweeprun) runs in a thread of the server, kept per sweep id in a process-wide
registry so any session can stop it; the trials are ordinary runs of this browser's owner, so the Runs page,
Evaluate, export and share links take them as they are. Plotly's parcoords brushing never reaches Python
(plotly_chart's selection events cover points, boxes and lassos only), so the range filters beside the chart do
what brushing would, and the chart draws them as its brushed ranges.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from kfcore.layers import KINDS
from kfcore.present import plots
from kfcore.runs import sweeprun
from kfcore.runs.store import RunRecord, StoreFullError, SweepRecord
from kfcore.runs.sweep import Sweep, SweepError, describe_count, get_path, parse_sweep
from kfcore.runs.sweepresults import best, scored, seed_stats, trial_row
from kfcore.spec import OPTIMIZERS, RunSpec
from ui import state
from ui.pages import page
from ui.text import plain

POLL_S = 1.0
CURVE_POINTS = 200  # epochs drawn per trial: the curves are redrawn every second while a sweep runs
CHOICES = {"train.optimizer": OPTIMIZERS}


@st.cache_resource(show_spinner=False)
def _drivers() -> dict[str, sweeprun.Driver]:
    return {}


def hyperparameters(spec: RunSpec) -> dict[str, str]:
    """What the page offers to vary for this experiment: dotted path → label."""
    options = {
        "train.learning_rate": "Learning rate",
        "train.batch_size": "Batch size",
        "train.optimizer": "Optimizer",
        "train.epochs": "Epochs",
    }
    for i, layer in enumerate(spec.layers):
        names = {f.name for f in KINDS[layer.type].fields}
        for name in ("units", "filters", "rate"):
            if name in names:
                options[f"layers.{i}.{name}"] = f"Layer {i + 1} ({layer.type}) {name}"
    return options


def _default_values(spec: RunSpec, path: str) -> str:
    current = current_value(spec, path)
    if path == "train.learning_rate":
        return ", ".join(f"{current * f:.3g}" for f in (0.3, 1, 3))
    if path == "train.optimizer":
        return "adam, sgd"
    if path.endswith(".rate"):
        return "0.0, 0.2, 0.5"
    if isinstance(current, int):
        return ", ".join(str(max(1, v)) for v in (current // 2, current, current * 2))
    return str(current)


def current_value(spec: RunSpec, path: str) -> Any:
    """The experiment's value at a dotted path (a layer field left unset: its kind's default)."""
    value = get_path(spec.to_dict(), path)
    if value is None and path.startswith("layers."):
        _, index, name = path.split(".")
        value = spec.layers[int(index)].values().get(name)
    return value


def _key(path: str) -> str:
    """A widget key for a dotted path (keys become CSS classes: no dots)."""
    return path.replace(".", "_")


def _parse_list(text: str) -> list[Any]:
    """'0.001, 0.01' → [0.001, 0.01]; words stay words ('adam, sgd')."""
    out: list[Any] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            out.append(json.loads(part))
        except ValueError:
            out.append(part)
    return out


def designer() -> Sweep | None:
    """The widgets that say what varies; the sweep they make (None, with the reason shown, when it cannot run)."""
    spec = state.spec()
    options = hyperparameters(spec)
    search = st.radio(
        "Search",
        ("grid", "random", "optuna"),
        horizontal=True,
        key="sw_search",
        format_func={"grid": "Grid (every combination)", "random": "Random", "optuna": "Optuna (TPE)"}.get,
        help="Grid tries every combination of the values; random draws settings from ranges; Optuna "
        "picks each next setting from the results so far.",
    )
    chosen = st.multiselect(
        "Hyperparameters to vary",
        list(options),
        key="sw_vary",
        format_func=lambda p: options.get(p, p),
        placeholder="Pick one or more",
    )
    space: dict[str, Any] = {}
    for path in chosen:
        current = current_value(spec, path)
        if search == "grid" or path in CHOICES:
            if path in CHOICES:
                space[path] = st.multiselect(
                    options[path], CHOICES[path], default=["adam", "sgd"], key=f"sw_choices_{_key(path)}"
                )
            else:
                text = st.text_input(
                    f"{options[path]}: values, comma-separated",
                    _default_values(spec, path),
                    key=f"sw_values_{_key(path)}",
                )
                space[path] = _parse_list(text)
            continue
        low_col, high_col, log_col = st.columns([2, 2, 1], vertical_alignment="bottom")
        numeric = float(current)
        is_int = isinstance(current, int)
        low = low_col.number_input(
            f"{options[path]}: from",
            value=(
                numeric / 10
                if path.endswith("learning_rate")
                else 0.0
                if path.endswith(".rate")
                else max(1.0, numeric // 2)
            ),
            format="%g",
            key=f"sw_min_{_key(path)}",
        )
        high = high_col.number_input(
            "to",
            value=(numeric * 10 if path.endswith("learning_rate") else 0.5 if path.endswith(".rate") else numeric * 2),
            format="%g",
            key=f"sw_max_{_key(path)}",
        )
        log = log_col.checkbox("log", value=path.endswith("learning_rate"), key=f"sw_log_{_key(path)}")
        space[path] = {"min": int(low) if is_int else low, "max": int(high) if is_int else high, "log": log}
    cols = st.columns(3)
    repeats = cols[0].number_input(
        "Repeat × N seeds",
        1,
        20,
        1,
        key="sw_repeats",
        help="Train every setting with N seeds: the page then shows the spread, so you "
        "see which differences are within the noise.",
    )
    samples = None
    if search != "grid":
        samples = cols[1].number_input("Samples", 1, 1000, 8, key="sw_samples", help="How many settings to draw.")
    asha = cols[2].checkbox(
        "Stop bad trials early (ASHA)",
        key="sw_asha",
        help="Stops a trial whose validation loss is not within the best third at epochs 1, 3, 9, …",
    )
    definition: dict[str, Any] = {"base": spec.to_dict(), search: space}
    if samples is not None:
        definition["samples"] = int(samples)
    if repeats > 1:
        definition["repeats"] = int(repeats)
    if asha:
        definition["early_stop"] = "asha"
    try:
        sweep = parse_sweep(definition)
    except SweepError as e:
        st.caption(f":material/info: {plain(e)}")
        return None
    cap = state.limits().max_trials
    if cap and sweep.trial_count > cap:
        st.error(
            f"This makes {plain(describe_count(sweep))}: over this server's limit of {cap:,} trials per sweep. "
            "Give fewer values, samples or seeds.",
            icon=":material/block:",
        )
        return None
    st.markdown(f"**{plain(describe_count(sweep))}**, each an ordinary run of the experiment on the other pages.")
    return sweep


def start(sweep: Sweep) -> None:
    """Start button: record the sweep and run its driver; its trials are this browser's runs."""
    ss = st.session_state
    ss.sweep_error = state.sign_in_first()
    if ss.sweep_error:
        return
    try:
        sweep_id = sweeprun.create(state.store(), sweep, owner=ss.owner, limits=state.limits())
    except (SweepError, StoreFullError) as e:
        ss.sweep_error = str(e)
        return
    _drive(sweep_id, sweep)
    ss.sweep_id = sweep_id


def resume(record: SweepRecord, sweep: Sweep) -> None:
    """Resume button: a sweep whose driver stopped (Stop, or a server restart) submits the trials it never did."""
    ss = st.session_state
    ss.sweep_error = state.sign_in_first()
    if not ss.sweep_error:
        _drive(record.id, sweep, resume=True)


def _drive(sweep_id: str, sweep: Sweep, resume: bool = False) -> None:
    """Run a sweep's driver in this server; its trials are this browser's runs."""
    store, owner, limits = state.store(), st.session_state.owner, state.limits()
    jobs = state.jobs()
    # As many trials in flight as the executor trains at once: the local pool's workers, or what a Ray cluster
    # holds (not this server's KF_MAX_CONCURRENT); hosted, no more than one session may have running.
    parallel = min(jobs.capacity(), limits.max_runs_per_session or jobs.capacity())

    def submit(spec: RunSpec, name: str, sweep_id: str) -> str:
        return jobs.submit(spec, name=name, owner=owner, sweep=sweep_id)

    _drivers()[sweep_id] = sweeprun.start_local(store, sweep_id, sweep, submit, parallel, resume=resume)


def visible_sweeps() -> list[SweepRecord]:
    """Hosted: this browser's sweeps; locally every sweep in the store."""
    owner = st.session_state.get("owner") if state.hosted() else None
    return state.store().sweeps(owner)


def pick(sweeps: list[SweepRecord]) -> SweepRecord:
    ss = st.session_state
    names = {s.id: s.name for s in sweeps}
    if ss.get("sweep_id") not in names:
        ss.sweep_id = sweeps[0].id
    st.selectbox("Sweep", list(names), key="sweep_id", format_func=lambda i: names[i])
    return next(s for s in sweeps if s.id == ss.sweep_id)


def follow(record: SweepRecord) -> None:
    """The chosen sweep's live part: a fragment that re-reads the store every second while trials run."""
    sweep = parse_sweep(record.definition)
    driver = _drivers().get(record.id)
    trials = state.store().trials(record.id)
    active = (driver is not None and driver.running) or any(not t.is_final for t in trials)
    st.fragment(_results, run_every=POLL_S if active else None)(record, sweep, active)


def _results(record: SweepRecord, sweep: Sweep, was_active: bool) -> None:
    store = state.store()
    trials = store.trials(record.id)
    driver = _drivers().get(record.id)
    active = (driver is not None and driver.running) or any(not t.is_final for t in trials)
    if was_active != active:
        st.rerun()  # the last trial ended, or Resume (clicked in here) started it again: one full run sets the polling
    epochs = _epochs(trials)
    rows = [trial_row(sweep, t, epochs[t.id]) for t in trials]
    done = sum(t.is_final for t in trials)
    status = f"{done} of {sweep.trial_count} trials ended" + (" · running" if active else "")
    top = st.columns([4, 1], vertical_alignment="center")
    with top[0].container(key="sweep_status"):
        st.markdown(f"**{plain(record.name)}** · {plain(describe_count(sweep))} · {status}")
    if active and driver is not None and top[1].button("Stop sweep", key="sweep_stop", icon=":material/stop:"):
        driver.stop()
    untried = 0 if active else sweeprun.untried(store, record.id, sweep)
    if untried:  # its driver stopped before submitting them all: Stop, or the server restarted
        st.caption(f":material/info: {untried} of its trials never ran: Resume submits them, the rest stand.")
        top[1].button(
            "Resume sweep",
            key="sweep_resume",
            icon=":material/play_arrow:",
            on_click=resume,
            args=(record, sweep),
            disabled=state.sign_in_first() is not None,
        )
    if not rows:
        st.info("The first trials are queued: their curves appear here as they train.", icon=":material/hourglass:")
        return
    shown = _filters(sweep, rows)
    by_id = {t.id: t for t in trials}
    left, right = st.columns(2)
    with left:
        curves = [(by_id[r["run_id"]].name.split(" · ", 1)[-1], epochs[r["run_id"]], None) for r in shown]
        st.plotly_chart(
            plots.compare_curves(curves, "loss", title="Validation loss of the trials shown", max_points=CURVE_POINTS),
            key="sweep_curves",
        )
    with right:
        if scored(rows, sweep.metric):
            st.plotly_chart(
                plots.sweep_parcoords(rows, sweep.swept, sweep.metric, st.session_state.get("sw_ranges")),
                key="sweep_parcoords",
            )
        else:
            st.caption(
                ":material/info: The parallel coordinates draw each trial once it has ended, by its settings and "
                f"its {plain(sweep.metric)}."
            )
    _table(sweep, shown, by_id)
    if sweep.repeats > 1:
        _seeds(sweep, shown, epochs)
    _best(sweep, rows, by_id)


def _epochs(trials: list[RunRecord]) -> dict[str, list[dict]]:
    """Every trial's epochs; an ended trial's are read once per session (they no longer change)."""
    cache = st.session_state.setdefault("sw_ended_epochs", {})
    fresh = state.store().epochs_of([t.id for t in trials if t.id not in cache])
    for t in trials:
        if t.is_final and t.id in fresh:
            cache[t.id] = fresh[t.id]
    return {t.id: cache.get(t.id, fresh.get(t.id, [])) for t in trials}


def _filters(sweep: Sweep, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Range filters on each swept number and the score, choices on the rest: the rows inside all of them."""
    ranges: dict[str, tuple[float, float]] = {}
    keep = list(rows)
    paths = [*sweep.swept, sweep.metric]
    cols = st.columns(min(4, len(paths)))
    for k, path in enumerate(paths):
        values = [r[sweep.metric] if path == sweep.metric else r["values"].get(path) for r in rows]
        present = [v for v in values if v is not None]
        if not present:
            continue
        label = path.rsplit(".", 1)[-1] if path != sweep.metric else sweep.metric
        with cols[k % len(cols)]:
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
                low, high = float(min(present)), float(max(present))
                if low == high:
                    continue
                picked = st.slider(  # a hundredth of the range a step: Streamlit's 0.01 spans a whole rate range
                    f"Filter: {label}",
                    low,
                    high,
                    (low, high),
                    step=(high - low) / 100,
                    key=f"sw_filter_{_key(path)}",
                    format="%.4g",
                )
                if picked != (low, high):
                    ranges[path] = picked
                    keep = [
                        r
                        for r, v in zip(rows, values, strict=True)
                        if r in keep and v is not None and picked[0] <= v <= picked[1]
                    ]
            else:
                choices = sorted({str(v) for v in present})
                picked_choices = st.multiselect(
                    f"Filter: {label}", choices, default=choices, key=f"sw_filter_{_key(path)}"
                )
                keep = [r for r, v in zip(rows, values, strict=True) if r in keep and str(v) in picked_choices]
    st.session_state.sw_ranges = ranges
    return keep


def _table(sweep: Sweep, rows: list[dict[str, Any]], by_id: dict[str, RunRecord]) -> None:
    frame = pd.DataFrame(
        [
            {
                "trial": by_id[r["run_id"]].name.split(" · ", 1)[-1],
                **{p.rsplit(".", 1)[-1] if p.startswith("train.") else p: r["values"].get(p) for p in sweep.swept},
                "status": r["status"],
                "epochs": r["epochs"],
                sweep.metric: r[sweep.metric],
                **{f"test {k}": v for k, v in r["test"].items()},
                "note": r.get("error", ""),
                "run": r["run_id"],
            }
            for r in rows
        ]
    )
    with st.container(key="sweep_table_box"):
        st.dataframe(frame, hide_index=True, key="sweep_table", width="stretch")


def _seeds(sweep: Sweep, rows: list[dict[str, Any]], epochs: dict[str, list[dict]]) -> None:
    stats = seed_stats(sweep, rows)
    if not stats:
        return
    st.markdown("**Over the seeds**: where two settings' ranges overlap, their difference is within the noise.")
    top = stats[0]
    frame = pd.DataFrame(
        [
            {
                "setting": _setting_text(s.setting),
                "seeds": s.n,
                f"{sweep.metric} mean ± sd": f"{s.mean:.4g} ± {s.sd:.2g}",
                "min–max": f"{s.low:.4g} – {s.high:.4g}",
                "vs the best": "best" if s is top else "within noise" if s.overlaps(top) else "worse",
            }
            for s in stats
        ]
    )
    st.dataframe(frame, hide_index=True, key="sweep_seed_table", width="stretch")
    bands = [(_setting_text(s.setting), [epochs[i] for i in s.run_ids]) for s in stats]
    st.plotly_chart(plots.seed_bands(bands, sweep.metric), key="sweep_bands")


def _setting_text(setting: dict[str, Any]) -> str:
    return (
        " ".join(
            f"{p.rsplit('.', 1)[-1]}={v:.3g}" if isinstance(v, float) else f"{p.rsplit('.', 1)[-1]}={v}"
            for p, v in setting.items()
        )
        or "base"
    )


def _best(sweep: Sweep, rows: list[dict[str, Any]], by_id: dict[str, RunRecord]) -> None:
    winner = best(sweep, rows)
    if winner is None:
        return
    if sweep.repeats > 1:  # the best setting by its mean over seeds, not one lucky seed: its best seed
        ids = seed_stats(sweep, rows)[0].run_ids
        winner = best(sweep, [r for r in rows if r["run_id"] in ids]) or winner
    record = by_id[winner["run_id"]]
    st.button(
        "Load the best into the editor",
        key="sweep_load_best",
        icon=":material/upload:",
        on_click=_load,
        args=(record,),
        help=f"{record.name}: its spec becomes the experiment the other pages edit.",
    )
    if st.session_state.get("sweep_loaded") == record.id:
        st.success(f"Loaded {plain(record.name)} into the editor.", icon=":material/check:")
        st.page_link(page("train"), label="Go to Train", icon=":material/model_training:")


def _load(record: RunRecord) -> None:
    state.load_spec(RunSpec.from_dict(record.spec))
    st.session_state.sweep_loaded = record.id


def message() -> None:
    error = st.session_state.get("sweep_error")
    if error:
        st.error(plain(error), icon=":material/error:")
