"""Training jobs: worker processes that take queued runs from the store, train them and record every event.

The queue is the store itself (runs with status 'queued'), so a queued run survives a server restart
and `submit` returns at once. Workers are spawned, never forked (a forked TensorFlow or Streamlit process
is unsafe); each imports TensorFlow once, serves several runs, then exits so its memory is returned, and
the supervisor starts a fresh one. A global cap limits how many train at once.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kfcore.data import uploads
from kfcore.runs.limits import LimitError, Limits, check_data_access
from kfcore.runs.store import HEARTBEAT_S, RunRecord, RunStore, StoreFullError
from kfcore.spec import RunSpec

if TYPE_CHECKING:  # numpy: the web process's landing page never needs it
    from kfcore.data import Dataset

RUNS_PER_WORKER = 20  # then the worker exits and a fresh one returns the memory Keras accumulates
POLL_S = 0.1  # how often an idle worker looks for queued runs
CANCEL_CHECK_S = 0.2  # how often a training run reads the store's cancel flag
PAUSE_POLL_S = 0.2  # how often a paused run reads its commands (its lease thread keeps renewing meanwhile)
DISK_RETRY_S = 2.0  # how often a worker tries again to write into a full store
RECOVER_S = 5.0  # how often the supervisor looks for runs whose lease lapsed, besides when a worker dies
SERVER_GONE = (
    "interrupted: the server that started this run stopped, so its worker stopped too; its epochs so far "
    "are kept — train it again to finish it"
)
OUT_OF_MEMORY = (
    "ran out of memory: the system stopped the process training this run, as it does when memory runs "
    "out; its epochs so far are kept — train it with a smaller batch size, fewer units or filters, or a "
    "smaller dataset"
)


def default_concurrency() -> int:
    """KF_MAX_CONCURRENT, else one training per two CPU cores (Limits.from_env)."""
    return Limits.from_env().max_concurrent


def saved_state(store: RunStore, record: RunRecord) -> Path | None:
    """The saved model (weights and optimizer state) a run can be continued from: a finished run's, or the state a
    stopped run reached (kfcore.training.train saves it on Stop once an epoch ran); None when there is none."""
    path: Path | None
    if record.status == "finished":
        path = Path(record.model_path) if record.model_path else None
    elif record.status == "cancelled":  # a stopped run's outcome stores no model: its file is where train saved it
        path = store.run_dir(record.id) / "model.keras"
    else:
        return None
    return path if path is not None and path.is_file() else None


def continue_run(
    store: RunStore,
    run_id: str,
    epochs: int,
    learning_rate: float | None = None,
    owner: str | None = None,
    limits: Limits | None = None,
) -> str:
    """Queue a child of a finished or stopped run that trains `epochs` more epochs from its saved weights and
    optimizer state, on the same data split (same spec, same seed); its epochs are numbered after the parent's.
    Returns its id. Raises ValueError (what is wrong, what to do) for an unknown run, one with no saved state, a
    cosine schedule (it ended at its run's last planned step) or a rate set on a decaying schedule, bad numbers."""
    from kfcore.spec import SpecError

    record = store.get(run_id, with_evaluation=False)
    if record is None:
        raise ValueError(f"no run with id {run_id!r}; list them with python -m kfcore runs")
    if saved_state(store, record) is None:
        if record.status == "cancelled":
            raise ValueError(
                f"run {run_id} was stopped before it saved a model (no epoch had finished), so there is "
                "nothing to continue from; train it again instead"
            )
        raise ValueError(
            f"run {run_id} is {record.status}: only a finished or stopped run with its saved model can "
            "be continued; train it again instead"
        )
    spec = record.spec
    schedule = spec.get("train", {}).get("schedule", "constant")
    if schedule == "cosine":  # its decay spans the run's planned steps: past them the rate stays at 0
        raise ValueError(
            f"run {run_id}'s learning rate follows a cosine decay planned over its own epochs, so more "
            "epochs would restart or flatten it; train a new run with more epochs instead"
        )
    if learning_rate is not None and schedule != "constant":
        raise ValueError(
            f"run {run_id}'s learning rate follows the {schedule} schedule, which the continued run "
            "carries on from where it was; continue without a new learning rate"
        )
    train = {**spec.get("train", {}), "epochs": epochs}
    history = store.epochs(run_id)
    if learning_rate is None and schedule == "constant" and history and history[-1].get("learning_rate"):
        learning_rate = float(history[-1]["learning_rate"])  # the rate it trained at last (it may have changed live)
    if learning_rate is not None:
        train["learning_rate"] = learning_rate
    try:
        child = RunSpec.from_dict({**spec, "train": train})
    except SpecError as e:
        raise ValueError(str(e)) from None
    limits = limits or Limits.from_env()
    if limits.max_epochs and epochs > limits.max_epochs:
        raise ValueError(
            f"{epochs} epochs is over this server's limit of {limits.max_epochs} per run; continue for fewer"
        )
    return store.create_run(
        child.to_dict(), name=f"{record.name} +{epochs}", owner=owner or record.owner, parent=run_id, continues=True
    )


def queue_run(
    store: RunStore,
    spec: RunSpec,
    name: str | None = None,
    owner: str | None = None,
    parent: str | None = None,
    sweep: str | None = None,
) -> str:
    """Admit a run into the store's queue, whichever executor trains it; its id. LimitError when this owner or the
    server has too many runs queued or training (KF_MAX_RUNS_PER_SESSION, KF_MAX_RUNS_TOTAL)."""
    admit(store, owner)
    return store.create_run(spec.to_dict(), name=name, owner=owner, parent=parent, sweep=sweep)


def admit(store: RunStore, owner: str | None) -> None:
    """Whether one more run may queue (queue_run's rule; the dashboard's Continue asks it too): LimitError when not."""
    limits = Limits.from_env()
    if limits.max_runs_per_session and owner is not None and store.active_count(owner) >= limits.max_runs_per_session:
        raise LimitError(
            f"you already have {limits.max_runs_per_session} run(s) queued or training, this server's "
            "limit per session; wait for one to finish or stop one"
        )
    if limits.max_runs_total and store.active_count() >= limits.max_runs_total:
        raise LimitError(
            f"the server is busy: {limits.max_runs_total} runs are queued or training, its limit; try again in a minute"
        )


class RunLink(Protocol):
    """What a training process asks about its run while it trains: the store itself where it can open it, a relay
    where it cannot (a Ray actor: kfcore.runs.executors)."""

    def take_commands(self, run_id: str) -> list[tuple[str, float | None]]: ...

    def set_paused(self, run_id: str, paused: bool) -> None: ...

    def cancel_requested(self, run_id: str) -> bool: ...


class _LiveRun:
    """A running run's commands from the store, obeyed at epoch boundaries (kfcore.training.train's `pace`): pause
    (wait, keeping model and optimizer in memory), resume, step (one epoch while paused), learning_rate."""

    def __init__(self, store: RunLink, run_id: str, limits: Limits, stopped: Callable[[], bool]) -> None:
        self.store, self.run_id, self.limits, self.stopped = store, run_id, limits, stopped
        self.paused_since: float | None = None
        self.paused_total = 0.0  # paused time does not count against the time limit per run
        self.steps = 0
        self.lr_changed = False
        self.paused_out = False

    def __call__(self, model: Any, hold: Callable[[], None] = lambda: None) -> int | None:
        self._obey(model)
        if self.paused_since is not None and self.steps == 0:
            hold()
        while self.paused_since is not None and self.steps == 0:
            cap = self.limits.max_paused_seconds
            if self.stopped() or (cap and time.monotonic() - self.paused_since > cap):
                self.paused_out = not self.stopped()
                return 0
            time.sleep(PAUSE_POLL_S)
            self._obey(model)
        if self.paused_since is not None:
            self.steps -= 1
            return 1
        return None

    def _obey(self, model: Any) -> None:
        for command, value in self.store.take_commands(self.run_id):
            if command == "pause" and self.paused_since is None:
                self.paused_since = time.monotonic()
                self.store.set_paused(self.run_id, True)
            elif command == "resume" and self.paused_since is not None:
                self.end_pause()
            elif command == "step" and self.paused_since is not None:
                self.steps += 1
            elif command == "learning_rate":  # the store refused it for a decaying schedule
                model.optimizer.learning_rate.assign(value)
                self.lr_changed = True

    def end_pause(self) -> None:
        if self.paused_since is not None:
            self.paused_total += time.monotonic() - self.paused_since
            self.paused_since, self.steps = None, 0
            self.store.set_paused(self.run_id, False)

    def paused_for(self) -> float:
        return self.paused_total + (time.monotonic() - self.paused_since if self.paused_since is not None else 0.0)

    def mark(self, logs: dict[str, Any]) -> None:
        """The first epoch after a learning-rate change carries the `lr_changed` marker (drawn on the curves)."""
        if self.lr_changed:
            logs["lr_changed"] = True
            self.lr_changed = False


def execute_run(
    store: RunStore,
    run_id: str,
    on_event: Any = None,
    limits: Limits | None = None,
    parent_alive: Callable[[], bool] | None = None,
    dataset: Dataset | None = None,
) -> Any:
    """Train one stored run, writing its events to the store and renewing its lease. Used by workers and the CLI.

    Returns the run's outcome as stored: an outcome stored first (the run failed by recovery, cancelled) stands
    over the trainer's. parent_alive (a worker's): polled with the cancel flag, so a worker whose server died
    stops within a second and leaves its run interrupted. When the disk fills up the run stops and is failed with
    that reason; a worker keeps trying to record it while its server lives, the CLI tries once (its error line
    says it). dataset: the run's data already loaded by the caller (the CLI checked the spec with it)."""
    from kfcore.training.train import TrainResult

    try:
        with store.writing(), _leased(store, run_id):
            return _execute(store, run_id, on_event, limits, parent_alive, dataset)
    except StoreFullError as e:
        reason = str(e)
        while True:
            try:
                record = store.get(run_id, with_evaluation=False)
                # deleted, or its outcome was stored before the disk filled (its error log was not)
                if record is None or record.is_final:
                    return _stored_outcome(record)
                store.fail(run_id, reason)
                break
            except StoreFullError:
                if parent_alive is None or not parent_alive():
                    break
                time.sleep(DISK_RETRY_S)
        if on_event is not None:
            on_event({"event": "failed", "error": reason})
        return TrainResult(status="failed", error=reason)


@contextmanager
def _leased(store: RunStore, run_id: str) -> Iterator[None]:
    """Renew the run's lease from a thread while it trains: a long compile, step or save never lets it lapse,
    only a dead process does (store.recover)."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_S):
            with suppress(StoreFullError):  # the run's own next write stops it; a live process here keeps its run
                store.renew_lease(run_id)
        store.close()

    thread = threading.Thread(target=beat, name="kf-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _stored_outcome(record: RunRecord | None, fallback: Any = None) -> Any:
    """The outcome a run holds in the store as a TrainResult; `fallback` when it holds none (or is gone)."""
    from kfcore.training.train import TrainResult

    if record is None or not record.is_final:
        return fallback
    return TrainResult(status=record.status, error=record.error, test=record.test)


def refuse(store: RunStore, run_id: str, reason: str) -> Any:
    """Fail a run that may not or cannot train (its data, its parent), before it trains; its outcome as stored."""
    from kfcore.training.train import TrainResult

    refusal = TrainResult(status="failed", error=reason)
    return refusal if store.fail(run_id, reason) else _stored_outcome(store.get(run_id, False), refusal)


def run_inputs(store: RunStore, record: RunRecord, limits: Limits) -> tuple[RunSpec, Any]:
    """What a stored run trains on, checked where the store is: its spec with its uploads resolved to files, and
    the Resume of a continued run (or None). Raises LimitError for data its owner may not read (its own uploads and
    those it forked), ValueError when the run it continues, or its saved model, is gone."""
    from kfcore.training.train import Resume

    spec = RunSpec.from_dict(record.spec)
    check_data_access(spec.data, limits, store, record.owner)
    spec = dataclasses.replace(spec, data=uploads.resolve(spec.data, store.uploads_dir))
    if not record.continues:
        return spec, None
    parent = store.get(record.parent, with_evaluation=False) if record.parent else None
    state = saved_state(store, parent) if parent is not None else None
    if parent is None or state is None:
        raise ValueError("the run this one continues, or its saved model, was deleted: train it again instead")
    return spec, Resume(str(state), max((e["epoch"] for e in store.epochs(parent.id)), default=0))


def record_event(store: RunStore, run_id: str, event: dict[str, Any]) -> bool:
    """Write one event of a training run (run_training's) into the store. False when it was an outcome and the run
    already had one (recovery, a cancel), which then stands."""
    kind = event["event"]
    if kind == "started":
        store.set_info(run_id, event["hardware"], event["info"])
    elif kind == "progress":
        store.set_progress(run_id, event)
    elif kind == "paused":
        store.set_paused(run_id, event["paused"])
    elif kind == "epoch":
        store.append_epoch(run_id, event["epoch"], {k: v for k, v in event.items() if k not in ("event", "epoch")})
        store.set_progress(
            run_id,
            {
                "epoch": event["epoch"],
                "step": None,
                "elapsed": event["elapsed"],
                "samples_per_s": event["samples_per_s"],
            },
        )
    elif kind == "picture":
        store.set_picture(run_id, {k: v for k, v in event.items() if k != "event"})
    elif kind == "finished":
        return store.finish(run_id, event["test"], event["evaluation"], event["model_path"])
    elif kind == "failed":
        moved = store.fail(run_id, event["error"])
        if event.get("traceback"):
            store.run_dir(run_id).mkdir(parents=True, exist_ok=True)
            (store.run_dir(run_id) / "error.log").write_text(event["traceback"], encoding="utf-8")
        return moved
    elif kind == "cancelled":
        return store.mark_cancelled(run_id)
    return True


def run_training(
    link: RunLink,
    run_id: str,
    spec: RunSpec,
    limits: Limits,
    emit: Callable[[dict[str, Any]], None],
    model_path: str | Path,
    parent_alive: Callable[[], bool] | None = None,
    dataset: Dataset | None = None,
    resume: Any = None,
) -> Any:
    """Train a run where it runs (a worker, the CLI, a Ray actor): obey its commands and cancel flag through `link`,
    stop it at the time limits, and hand every event to `emit` as record_event takes it (a stop at a limit or by a
    dead server is a failure with its reason, not a cancel). Returns the trainer's TrainResult."""
    from kfcore.training.train import train

    started = time.monotonic()
    last_check: list[Any] = [0.0, False]  # when the store was last asked, and whether a cancel was requested
    timed_out = []
    orphaned = []
    live = _LiveRun(link, run_id, limits, lambda: should_stop())

    def should_stop() -> bool:
        if parent_alive is not None and not parent_alive():
            orphaned.append(True)
            return True
        now = time.monotonic()
        if limits.max_seconds_per_run and now - started - live.paused_for() > limits.max_seconds_per_run:
            timed_out.append(True)
            return True
        if live.paused_out:
            return True
        if now - last_check[0] >= CANCEL_CHECK_S:
            last_check[0] = now
            last_check[1] = link.cancel_requested(run_id)
        return last_check[1]

    def translate(event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "epoch":
            live.mark(event)
        elif kind == "cancelled" and timed_out:
            event = {
                "event": "failed",
                "error": f"stopped at this server's time limit of {limits.max_seconds_per_run:.0f} s "
                "per run; train fewer epochs or a smaller model",
            }
        elif kind == "cancelled" and live.paused_out:
            event = {
                "event": "failed",
                "error": f"stopped after {limits.max_paused_seconds:.0f} s paused, this server's limit: a paused run "
                "holds a training worker that others wait for; its epochs so far are kept",
            }
        elif kind == "cancelled" and orphaned:
            event = {"event": "failed", "error": SERVER_GONE}
        emit(event)

    try:
        return train(
            spec,
            on_event=translate,
            should_stop=should_stop,
            model_path=model_path,
            dataset=dataset,
            limits=limits,
            pace=live,
            resume=resume,
        )
    finally:
        live.end_pause()


def _execute(
    store: RunStore,
    run_id: str,
    on_event: Any,
    limits: Limits | None,
    parent_alive: Callable[[], bool] | None,
    dataset: Dataset | None,
) -> Any:
    limits = limits or Limits.from_env()
    record = store.get(run_id, with_evaluation=False)
    if record is None:  # deleted before a worker took it
        from kfcore.training.train import TrainResult

        return TrainResult(status="failed", error="the run was deleted before it started")
    try:
        spec, resume = run_inputs(store, record, limits)  # the run's owner: its own or forked uploads
    except ValueError as e:
        return refuse(store, run_id, str(e))
    refused = []  # the trainer's outcome, when the store already held another

    def write(event: dict[str, Any]) -> None:
        if not record_event(store, run_id, event):
            refused.append(True)
        if on_event is not None:
            on_event(event)

    result = run_training(store, run_id, spec, limits, write, store.model_file(run_id), parent_alive, dataset, resume)
    return _stored_outcome(store.get(run_id, with_evaluation=False), result) if refused else result


WORKER_NICENESS = 10  # added to a worker's nice value (Unix: higher is lower priority)


def worker_main(store_root: str, runs_per_worker: int, parent_pid: int, max_running: int | None = None) -> None:
    """Body of a worker process: claim queued runs one at a time until the quota is used or the parent is gone.
    At most max_running runs train at once, counting those of an earlier server's workers still alive."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Training yields the CPU to the web server: on a small machine the fast loop keeps every core busy, and pages
    # (a sweep's above all) waited for it (bench/bench_sweep_ui.py). Idle cores still all go to training.
    os.nice(WORKER_NICENESS)
    from kfcore.training.hardware import quiet_native_stderr

    with quiet_native_stderr():  # import TensorFlow once, before the first run, so the first Train is quick
        import keras

    def parent_alive() -> bool:  # a dead parent's children are handed to another process
        return os.getppid() == parent_pid

    store = RunStore(store_root, recover=False)
    served = 0
    while served < runs_per_worker and parent_alive():
        try:
            record = store.claim_next(os.getpid(), max_running)
        except StoreFullError:  # nothing can start on a full disk: look again in a while
            time.sleep(DISK_RETRY_S)
            continue
        if record is None:
            time.sleep(POLL_S)
            continue
        execute_run(store, record.id, parent_alive=parent_alive)
        served += 1
        keras.backend.clear_session()


class JobManager:
    """Starts and supervises worker processes for one store. One per server process."""

    def __init__(
        self,
        store: RunStore,
        max_concurrent: int | None = None,
        runs_per_worker: int = RUNS_PER_WORKER,
        prestart: bool = True,
        prestart_delay: float = 0.0,
    ):
        self.store = store
        self.max_concurrent = max_concurrent or default_concurrency()
        self.runs_per_worker = runs_per_worker
        self._ctx = mp.get_context("spawn")
        self._workers: list[Any] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        # A warm worker hides TensorFlow's import (seconds) from the first press of Train. The web server
        # delays it a little so that import does not compete with drawing the first page on a small machine.
        self._min_workers = 1 if prestart else 0
        self._prestart_at = time.monotonic() + prestart_delay
        if prestart_delay <= 0:
            self._ensure_workers()
        self._supervisor = threading.Thread(target=self._supervise, name="kf-supervisor", daemon=True)
        self._supervisor.start()

    def submit(
        self,
        spec: RunSpec,
        name: str | None = None,
        owner: str | None = None,
        parent: str | None = None,
        sweep: str | None = None,
    ) -> str:
        """Queue a run and return its id at once; LimitError when this owner or the server has too many.
        sweep: the sweep this run is a trial of (kfcore.runs.sweeprun keeps its trials within these caps)."""
        run_id = queue_run(self.store, spec, name, owner, parent, sweep)
        self._ensure_workers()
        return run_id

    def cancel(self, run_id: str) -> str | None:
        return self.store.request_cancel(run_id)

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._workers if w.is_alive()]

    def capacity(self) -> int:
        """Runs training at once, at most: one per worker process, max_concurrent of them."""
        return self.max_concurrent

    def shutdown(self, timeout: float = 5.0) -> None:
        self._closed.set()
        with self._lock:
            workers, self._workers = self._workers, []
        for w in workers:
            w.terminate()
        for w in workers:
            w.join(timeout)
            if w.is_alive():
                w.kill()
                w.join(1)
        self.store.recover()

    def _ensure_workers(self, want: int | None = None) -> None:
        with self._lock:
            self._workers = [w for w in self._workers if w.is_alive()]
            if want is None:
                # Enough workers for what is running plus what waits, within the cap; idle ones count.
                counts = self.store.counts()
                want = counts.get("running", 0) + counts.get("queued", 0)
            floor = self._min_workers if time.monotonic() >= self._prestart_at else 0
            want = min(self.max_concurrent, max(want, floor))
            while len(self._workers) < want and not self._closed.is_set():
                w = self._ctx.Process(
                    target=worker_main,
                    args=(str(Path(self.store.root).resolve()), self.runs_per_worker, os.getpid(), self.max_concurrent),
                    name="kf-worker",
                    daemon=True,
                )
                w.start()
                self._workers.append(w)

    def _supervise(self) -> None:
        # Reap workers that exited (quota reached, crashed, killed), fail the runs they held, refill the pool;
        # every RECOVER_S also fail runs whose lease lapsed (an earlier server's workers, on any host).
        oom_seen, recovered = oom_kills(), 0.0
        while not self._closed.wait(0.5):
            with self._lock:
                died = [w for w in self._workers if not w.is_alive()]
                # Our live workers' runs are left to the next round, which sees how a worker that dies meanwhile died
                living = {w.pid for w in self._workers if w not in died and w.pid is not None}
            with suppress(StoreFullError):  # reads can fail too on a full disk: try again next time
                if died or time.monotonic() - recovered >= RECOVER_S:
                    oom_now = oom_kills()
                    # SIGKILL is what the kernel's OOM killer sends; the cgroup's counter, where readable, confirms it
                    oom = oom_now is None or oom_now > (oom_seen or 0)
                    self.store.recover(
                        {w.pid: OUT_OF_MEMORY for w in died if w.exitcode == -signal.SIGKILL and oom}, skip=living
                    )
                    oom_seen, recovered = oom_now, time.monotonic()
                self._ensure_workers()


def oom_kills() -> int | None:
    """How many processes of this process's cgroup and those below it (a worker may have been put in its own) the
    kernel's OOM killer has killed: oom_kill of cgroup v2's memory.events, else of v1's memory.oom_control. None
    where neither can be read. Only its growth matters: a cgroup removed below takes its count with it."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            top, name = Path("/sys/fs/cgroup", path.lstrip("/")), "memory.events"
        elif "memory" in controllers.split(","):
            top, name = Path("/sys/fs/cgroup/memory", path.lstrip("/")), "memory.oom_control"
        else:
            continue
        counts = [_oom_kill_count(Path(folder, name)) for folder, _, files in os.walk(top) if name in files]
        if any(c is not None for c in counts):
            return sum(c or 0 for c in counts)
    return None


def _oom_kill_count(file: Path) -> int | None:
    try:
        rows = file.read_text().splitlines()
    except OSError:
        return None
    for row in rows:
        key, _, value = row.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return None


class PredictError(RuntimeError):
    """A prediction that could not be made, with a message for the user."""


def predictor_main(requests: Any, results: Any) -> None:
    """Body of the predictor process: load saved models (safe mode, a few cached) and answer requests."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kfcore.training.hardware import quiet_native_stderr

    with quiet_native_stderr():
        import keras
    models: dict[str, Any] = {}
    while True:
        request = requests.get()
        if request is None:
            return
        req_id, model_path, x = request
        try:
            if model_path not in models:
                if len(models) >= 4:
                    models.pop(next(iter(models)))
                models[model_path] = keras.saving.load_model(model_path, safe_mode=True, compile=False)
            results.put((req_id, "ok", models[model_path].predict(x, verbose=0)))
        except Exception as e:  # the web page shows this as a message, never a traceback
            results.put((req_id, "error", f"{type(e).__name__}: {str(e)[:300]}"))


class Predictor:
    """Predictions for 'Try it', made in one spawned process so the web process never imports TensorFlow."""

    def __init__(self) -> None:
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._process: Any = None
        self._next_id = 0

    def start(self) -> None:
        """Start the process (it imports Keras at once) unless it runs: the Evaluate page calls this when it opens,
        so the first 'Try it' waits for no import (measured: 58 s on a busy machine, 2.8 s after)."""
        with self._lock:
            self._start()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def _start(self) -> None:
        if self._process is None or not self._process.is_alive():
            self._requests, self._results = self._ctx.Queue(), self._ctx.Queue()
            self._process = self._ctx.Process(
                target=predictor_main, args=(self._requests, self._results), name="kf-predictor", daemon=True
            )
            self._process.start()

    def predict(self, model_path: str, x: Any, timeout: float = 120.0) -> Any:
        import queue

        if not model_path or not Path(model_path).exists():
            raise PredictError("this run has no saved model (it did not finish); train it to completion first")
        with self._lock:
            self._start()
            self._next_id += 1
            self._requests.put((self._next_id, str(model_path), x))
            deadline = time.monotonic() + timeout
            while True:
                try:
                    req_id, status, value = self._results.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    self._process.kill()
                    raise PredictError("the prediction took too long and was stopped; try again") from None
                if req_id == self._next_id:
                    break
        if status != "ok":
            raise PredictError(f"could not predict with this model ({value})")
        return value

    def shutdown(self) -> None:
        with self._lock:
            if self._process is not None and self._process.is_alive():
                self._requests.put(None)
                self._process.join(5)
                if self._process.is_alive():
                    self._process.kill()
            self._process = None
