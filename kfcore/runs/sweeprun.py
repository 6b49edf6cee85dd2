"""Running a sweep on the local pool: every trial an ordinary run in the store, tagged with its sweep.

The driver keeps at most `parallel` trials queued or training (the pool's cap and a browser's run cap still hold:
a refused submit waits its turn), asks Optuna's TPE for each next setting from the results so far, and stops trials
early by ASHA's rule. It only reads the store and submits runs, so it runs in the CLI's process or in a thread of
the web server, never importing TensorFlow. The Ray backend is kfcore.runs.sweepray.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kfcore.runs.limits import LimitError, Limits
from kfcore.runs.store import RunRecord, RunStore
from kfcore.runs.sweep import (
    Range,
    Sweep,
    asha_rungs,
    asha_stops,
    check_count,
    settings,
    trial_name,
    trial_spec,
    trial_values,
    with_seeds,
)
from kfcore.runs.sweepresults import metric_of
from kfcore.spec import RunSpec

POLL_S = 0.2
Submit = Callable[[RunSpec, str, str], str]  # (spec, name, sweep id) -> run id; LimitError: not now


def create(store: RunStore, sweep: Sweep, owner: str | None = None, limits: Limits | None = None) -> str:
    """Check the sweep's size against this server's limit and record it; its id. SweepError when it is too big."""
    check_count(sweep, limits)
    return store.create_sweep(sweep.to_dict(), name=sweep.name, owner=owner)


def asha_reason(rung: int, metric: str, value: float) -> str:
    """Why ASHA stopped a trial (the same words on both backends)."""
    return (
        f"stopped early by ASHA at epoch {rung}: its {metric} of {value:.4g} was not within the best third of "
        "the trials that reached that epoch"
    )


class _Settings:
    """The settings still to try, as (trial values, optuna trial or None); Optuna's are asked one at a time.
    `tried`: the (values, score or None) of trials the sweep already has (resuming it): not tried again, and
    Optuna learns from their scores."""

    def __init__(self, sweep: Sweep, tried: Sequence[tuple[dict[str, Any], float | None]] = ()) -> None:
        self.sweep = sweep
        self.study: Any = None
        self.pending: list[tuple[dict[str, Any], Any]] = []
        self.asked = 0
        if sweep.search == "optuna":
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self.study = optuna.create_study(
                direction="minimize" if sweep.mode == "min" else "maximize",
                sampler=optuna.samplers.TPESampler(seed=sweep.seed),
            )
            self.asked = len(tried)
            for values, score in tried:
                if score is not None:
                    with contextlib.suppress(ValueError):  # a value outside its range (an edited store): not told
                        self.study.add_trial(
                            optuna.trial.create_trial(params=values, distributions=_distributions(sweep), value=score)
                        )
        else:
            self.pending = [(values, None) for s in settings(sweep) for values in with_seeds(sweep, s)]
            for values, _ in tried:  # each trial there stands for one planned setting (and seed)
                same = next((k for k, (planned, _) in enumerate(self.pending) if planned == values), None)
                if same is not None:
                    del self.pending[same]

    def more(self) -> bool:
        return bool(self.pending) or (self.study is not None and self.asked < self.sweep.samples)

    def take(self) -> tuple[dict[str, Any], Any]:
        if self.pending:
            return self.pending.pop(0)
        self.asked += 1
        trial = self.study.ask()
        values = {}
        for path, space in self.sweep.params.items():
            if isinstance(space, Range) and space.integer:
                values[path] = trial.suggest_int(path, int(space.min), int(space.max), log=space.log)
            elif isinstance(space, Range):
                values[path] = trial.suggest_float(path, space.min, space.max, log=space.log)
            else:
                values[path] = trial.suggest_categorical(path, list(space))
        return values, trial

    def drop(self) -> None:
        """Try nothing more (the sweep was stopped)."""
        self.pending, self.asked = [], self.sweep.samples

    def put_back(self, item: tuple[dict[str, Any], Any]) -> None:
        self.pending.insert(0, item)

    def tell(self, trial: Any, score: float | None) -> None:
        if self.study is None or trial is None:
            return
        import optuna

        if score is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, score)


def _distributions(sweep: Sweep) -> dict[str, Any]:
    """Optuna's distribution per swept path: what take() asks it, for trials told after the fact."""
    import optuna

    out: dict[str, Any] = {}
    for path, space in sweep.params.items():
        if isinstance(space, Range) and space.integer:
            out[path] = optuna.distributions.IntDistribution(int(space.min), int(space.max), log=space.log)
        elif isinstance(space, Range):
            out[path] = optuna.distributions.FloatDistribution(space.min, space.max, log=space.log)
        else:
            out[path] = optuna.distributions.CategoricalDistribution(list(space))
    return out


def tried(store: RunStore, sweep_id: str, sweep: Sweep) -> list[tuple[dict[str, Any], float | None]]:
    """The trials a sweep has in the store, as (their values, their score if they finished)."""
    return [
        (
            trial_values(sweep, t.spec),
            metric_of(store.epochs(t.id), sweep.metric) if t.status == "finished" else None,
        )
        for t in store.trials(sweep_id)
    ]


def untried(store: RunStore, sweep_id: str, sweep: Sweep) -> int:
    """How many of a sweep's trials were never submitted (its driver stopped first: Stop, or a server restart)."""
    return max(0, sweep.trial_count - len(store.trials(sweep_id)))


class Asha:
    """ASHA over the store: each running trial is judged once at each rung it reaches (kfcore.runs.sweep.asha_stops)."""

    def __init__(self, sweep: Sweep) -> None:
        self.sweep = sweep
        self.recorded: dict[int, list[float]] = {}
        self.judged: dict[str, set[int]] = {}

    def look(self, store: RunStore, record: RunRecord) -> None:
        epochs = store.epochs(record.id)
        max_epochs = int(record.spec.get("train", {}).get("epochs", 1))
        for rung in asha_rungs(max_epochs):
            done = self.judged.setdefault(record.id, set())
            if rung in done or len(epochs) < rung:
                continue
            done.add(rung)
            value = metric_of(epochs[:rung], self.sweep.metric)
            if value is None:
                continue
            stops = asha_stops(value, self.recorded.setdefault(rung, []), self.sweep.mode)
            self.recorded[rung].append(value)
            if stops:
                store.request_cancel(record.id, reason=asha_reason(rung, self.sweep.metric, value))
                return


def run_local(
    store: RunStore,
    sweep_id: str,
    sweep: Sweep,
    submit: Submit,
    parallel: int = 1,
    on_trial: Callable[[RunRecord], None] | None = None,
    stop: threading.Event | None = None,
    poll_s: float = POLL_S,
    resume: bool = False,
) -> list[RunRecord]:
    """Submit the sweep's trials, keep `parallel` in flight, and wait for them all; each finished one goes to
    on_trial as it ends. `stop` set: the trials not yet submitted are dropped and those in flight cancelled.
    `resume`: the sweep has trials already (its driver stopped): submit only the settings it has no trial for."""
    source = _Settings(sweep, tried(store, sweep_id, sweep) if resume else ())
    asha = Asha(sweep) if sweep.early_stop == "asha" else None
    if asha is not None and resume:  # the rungs the ended trials reached, as if it had watched them
        for trial in store.trials(sweep_id):
            if trial.is_final:
                asha.look(store, trial)
    active: dict[str, Any] = {}  # run id -> its optuna trial (None for grid and random)
    ended: list[RunRecord] = []
    stored = store.get_sweep(sweep_id)
    label = stored.name if stored is not None else sweep_id
    while source.more() or active:
        if stop is not None and stop.is_set():
            for run_id in active:
                store.request_cancel(run_id)
            source.drop()
        while len(active) < parallel and source.more():
            item = source.take()
            try:
                run_id = submit(trial_spec(sweep, item[0]), trial_name(label, item[0]), sweep_id)
            except LimitError:  # this browser's or the server's run cap: try again when a trial ends
                source.put_back(item)
                break
            active[run_id] = item[1]
        time.sleep(poll_s)
        for run_id in list(active):
            record = store.get(run_id, with_evaluation=False)
            if record is None:  # deleted meanwhile
                source.tell(active.pop(run_id), None)
                continue
            if asha is not None and record.status == "running":
                asha.look(store, record)
            if record.is_final:
                score = metric_of(store.epochs(run_id), sweep.metric) if record.status == "finished" else None
                source.tell(active.pop(run_id), score)
                ended.append(record)
                if on_trial is not None:
                    on_trial(record)
    return ended


@dataclass
class Driver:
    """A sweep's driver running in a thread of this process (start_local)."""

    thread: threading.Thread
    stopping: threading.Event

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self) -> None:
        """Submit nothing more and cancel the trials in flight (within a poll)."""
        self.stopping.set()


def start_local(
    store: RunStore, sweep_id: str, sweep: Sweep, submit: Submit, parallel: int, resume: bool = False
) -> Driver:
    """Run the sweep's driver in a daemon thread (the web server: a page never waits for it); `resume` as run_local."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_local,
        args=(store, sweep_id, sweep, submit, parallel),
        kwargs={"stop": stop, "resume": resume},
        name=f"kf-sweep-{sweep_id}",
        daemon=True,
    )
    thread.start()
    return Driver(thread, stop)
