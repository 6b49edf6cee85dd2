"""What a stored run means to a person: its status line, progress, ETA and headline test metric.

Pure functions over a RunRecord and the store's epoch rows, shared by the sidebar, the Train page,
the CLI and tests, so every place words a run's state the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kfcore.runs.store import RunRecord, RunStore


@dataclass
class Progress:
    fraction: float  # 0..1 of the planned epochs
    epoch: int  # the epoch in progress (1-based); the last one run once the run is final
    epochs: int  # planned epochs
    step: int | None  # batch within the epoch in progress, when known
    steps: int | None
    samples_per_s: float | None
    eta_s: float | None  # seconds left at the steady pace (None during the first epoch, or final)
    elapsed_s: float | None


# How a metric's key reads in a label ("Test mean absolute error", not "Test mae").
METRIC_NAMES = {"accuracy": "accuracy", "mae": "mean absolute error", "loss": "loss"}


def metric_for(task: str) -> str:
    """The metric the studio tracks next to the loss: mean absolute error for regression, else accuracy."""
    return "mae" if task == "regression" else "accuracy"


def planned_epochs(record: RunRecord) -> int:
    return int(record.info.get("epochs") or record.spec.get("train", {}).get("epochs") or 1)


def progress(record: RunRecord, history: Sequence[dict[str, Any]]) -> Progress:
    epochs = planned_epochs(record)
    done = len(history)
    p = record.progress or {}
    step, steps = p.get("step"), p.get("steps")
    # A batch-progress row speaks of the epoch in progress; an epoch row (step None) of the one just done.
    in_epoch = bool(step and steps and p.get("epoch") == done + 1)
    partial = min(1.0, step / steps) if in_epoch and step and steps else 0.0
    if record.status == "finished":
        fraction = 1.0
    else:
        fraction = min(1.0, (done + partial) / epochs)
    speed = p.get("samples_per_s") or (history[-1].get("samples_per_s") if history else None)
    eta = None
    if record.status == "running":
        # The first epoch also traces the graph (measured: 2 min 22 s predicted for a 20 s run), so it is no pace:
        # the steady epochs after it are; while only it is done, the sample rate of the second; during it, unknown.
        epoch_times = [float(r["epoch_time"]) for r in history if r.get("epoch_time")]
        n_train = record.info.get("n_train")
        if len(epoch_times) > 1:
            epoch_s = sum(epoch_times[1:]) / len(epoch_times[1:])
        elif epoch_times and in_epoch and p.get("samples_per_s") and n_train:
            epoch_s = n_train / float(p["samples_per_s"])
        elif epoch_times:
            epoch_s = epoch_times[0]
        else:
            epoch_s = None
        if epoch_s is not None:
            eta = max(0.0, (epochs - done - partial) * epoch_s)
    current = done if record.is_final else min(done + 1, epochs)
    return Progress(
        fraction=fraction,
        epoch=max(current, 0),
        epochs=epochs,
        step=step if in_epoch else None,
        steps=steps if in_epoch else None,
        samples_per_s=float(speed) if speed else None,
        eta_s=eta,
        elapsed_s=record.duration,
    )


def comparable(spec: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two runs' curves may share a chart: the same data (source, set, file, size, noise) and task. A loss
    of 30,000 on diabetes would flatten a digits loss to a line at 0."""
    return bool(spec.get("data")) and spec.get("data") == other.get("data")


def best_epoch(history: Sequence[dict[str, Any]]) -> int | None:
    """The epoch with the lowest validation loss (the training loss without validation), as training ranks it."""
    key = "val_loss" if any("val_loss" in r for r in history) else "loss"
    scored = [r for r in history if r.get(key) is not None]
    return int(min(scored, key=lambda r: r[key])["epoch"]) if scored else None


def best_epoch_text(best: int | None, history: Sequence[dict[str, Any]]) -> str:
    """'12 of 20': the best epoch of the epochs run, numbered as stored (a continued run's follow its parent's)."""
    return f"{best} of {int(history[-1]['epoch'])}" if best and history else "–"


def headline_metric(test: dict[str, Any]) -> tuple[str, float] | None:
    """The one test number to show first: accuracy, else mean absolute error, else the loss."""
    for key in ("accuracy", "mae", "loss"):
        if key in test:
            return key, float(test[key])
    return None


def format_metric(name: str, value: float) -> str:
    """'97.2%', '0.0123', '28,448': a regression loss in the ten thousands stays whole and short on a card."""
    if name == "accuracy":
        return f"{value:.1%}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def format_duration(seconds: float | None) -> str:
    """'8 s', '2 min 05 s', '1 h 02 min'; '–' when unknown."""
    if seconds is None:
        return "–"
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


@dataclass
class Wait:
    """What a queued run waits for (queue_wait)."""

    ahead: int  # runs that take a worker before this one: those training now and those queued before it
    paused: int  # paused runs: each holds a worker until it is resumed or stopped
    seconds: float | None  # until a worker takes this run; None when it cannot be told (see queue_wait)


PACE_RUNS = 20  # finished runs whose seconds per epoch pace a run that has not started


def estimate_wait(
    workers: int, remaining: Sequence[float | None], queued: Sequence[float | None], paused: int
) -> float | None:
    """Seconds until a worker is free for the next run in line: `remaining` the seconds each training run has left,
    `queued` the expected length of each run queued before it, in order; `paused` workers are held. None when a
    length is unknown, or paused runs hold every worker (they wait for a person, not for time)."""
    free = workers - paused
    if free <= 0 or any(t is None for t in [*remaining, *queued]):
        return None
    busy = sorted(float(t) for t in remaining if t is not None)[:free]
    slots = [0.0] * (free - len(busy)) + busy  # the free workers first: the list stays sorted
    for length in queued:  # each takes the first worker to come free, as the queue hands them out
        slots[0] += float(length or 0.0)
        slots.sort()
    return slots[0]


def queue_wait(store: RunStore, record: RunRecord, workers: int) -> Wait:
    """How many runs are ahead of a queued run and about how long until it starts: training runs by their ETA (or,
    before their first steady epoch, like a queued one), queued runs by their planned epochs at the median seconds
    per epoch of the store's last PACE_RUNS finished runs (none yet: the wait is not known)."""
    runs = store.list_runs()
    training = [r for r in runs if r.status == "running" and r.paused is None]
    paused = sum(1 for r in runs if r.status == "running" and r.paused is not None)
    before = sorted((r for r in runs if r.status == "queued" and r.created < record.created), key=lambda r: r.created)
    finished = [r for r in runs if r.status == "finished" and r.duration][:PACE_RUNS]  # the newest first
    paces = sorted(r.duration / planned_epochs(r) for r in finished if r.duration)
    pace = paces[len(paces) // 2] if paces else None

    def length(r: RunRecord) -> float | None:
        return None if pace is None else pace * planned_epochs(r)

    remaining = [progress(r, store.epochs(r.id)).eta_s for r in training]
    remaining = [t if t is not None else length(r) for t, r in zip(remaining, training, strict=True)]
    seconds = estimate_wait(workers, remaining, [length(r) for r in before], paused)
    return Wait(ahead=len(training) + len(before), paused=paused, seconds=seconds)


def status_line(
    record: RunRecord,
    history: Sequence[dict[str, Any]],
    position: int | None = None,
    paused_runs: int = 0,
    wait: Wait | None = None,
) -> str:
    """One line for the sidebar: 'queued — 2 runs ahead of yours, about 40 s', 'running — epoch 3 of 10',
    'finished — test accuracy 97.2%'. A queued run without `wait` (queue_wait) says its position; paused_runs
    (RunStore.paused_count) are paused runs that each hold a training worker a queued run waits for."""
    if record.status == "queued":
        if wait is not None:
            line = "queued — " + (
                f"{wait.ahead} run{'s' if wait.ahead != 1 else ''} ahead of yours" if wait.ahead else "next in line"
            )
            if wait.seconds is not None:
                line += ", starting any moment" if wait.seconds < 1 else f", about {format_duration(wait.seconds)}"
            paused_runs = wait.paused
        else:
            line = f"queued (position {position})" if position else "queued"
        if paused_runs:
            held = (
                "a paused run holds a training worker"
                if paused_runs == 1
                else f"{paused_runs} paused runs hold training workers"
            )
            line += f"; {held} until it is resumed or stopped"
        return line
    if record.status == "running":
        if record.paused is not None:
            return (
                f"paused after {len(history)} of {planned_epochs(record)} epochs — it holds a training worker "
                "until resumed or stopped"
            )
        if not record.info:
            return "running — starting: loading the data and building the model"
        p = progress(record, history)
        return f"running — epoch {p.epoch} of {p.epochs}"
    if record.status == "finished":
        head = headline_metric(record.test)
        return f"finished — test {head[0]} {format_metric(*head)}" if head else "finished"
    if record.status == "failed":
        return f"failed — {record.error or 'no reason was recorded'}"
    if record.status == "cancelled":
        return f"cancelled after {len(history)} of {planned_epochs(record)} epochs"
    return record.status
