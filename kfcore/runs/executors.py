"""Executors: where queued runs train. One small interface, two implementations.

    executor.submit(spec, name=None, owner=None, parent=None, sweep=None) -> run id
    executor.cancel(run_id) -> the run's status after the request (None: no such run)
    executor.shutdown()

submit admits the run into the store's queue (kfcore.runs.jobs.queue_run: the same limits for every executor) and
returns at once. `sweep` is the id of the sweep the run is a trial of: it is kept with the run (RunRecord.sweep), so
a trial is an ordinary run that Runs, Evaluate, export and share links treat as any other. Pause, resume, step and
the learning rate go through the store (RunStore.send_command) whatever the executor; so does every event.

- The local pool (kfcore.runs.jobs.JobManager): spawned worker processes on this machine. The default; needs nothing.
- Ray (RayExecutor): each run trains in a Ray actor, on a cluster (KF_RAY_ADDRESS, or the CLI's --address) or on a
  local Ray started on demand (KF_EXECUTOR=ray). The actor never opens the store: this process's relay thread hands
  it the run's commands and cancel flag and writes the events it returns into the store (jobs.record_event), the
  saved model's files included. Built-in data travels by name; uploaded files travel as bytes through Ray's object
  store, after the access check a local worker makes (jobs.run_inputs). KF_RAY_NUM_CPUS and KF_RAY_NUM_GPUS (a
  fraction such as 0.25 lets several runs share a GPU) are what each run's actor reserves.

executor_from_env() picks one from the environment; README's "Run on a Ray cluster" says how.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kfcore.runs.jobs import (
    RUNS_PER_WORKER,
    SERVER_GONE,
    JobManager,
    queue_run,
    record_event,
    refuse,
    run_inputs,
    run_training,
)
from kfcore.runs.limits import Limits, data_budget_bytes
from kfcore.runs.store import HEARTBEAT_S, RunStore, StoreFullError
from kfcore.spec import RunSpec

RELAY_S = 0.2  # how often the relay asks each actor for its events and hands it the run's commands
IDLE_S = 30.0  # an actor with no run to train gives its CPUs (and GPU share) back to the cluster after this
DRAIN_S = 30.0
PLACE_AHEAD = 4  # at most this many actors asked for at once while runs wait (a cluster gives them as it has room)  # how long the relay waits for a finished actor's last events
WORKER_DIED = "the Ray worker running it died: {}; its epochs so far are kept — train it again to finish it"
NO_WORKER = (
    "the Ray cluster could not start a worker for it ({}): check that its nodes have KF Studio's Python "
    'packages (README, "Run on a Ray cluster")'
)


class ExecutorError(ValueError):
    """An executor that cannot be set up as configured: what is wrong and what to do."""


class Executor(Protocol):
    def submit(
        self,
        spec: RunSpec,
        name: str | None = None,
        owner: str | None = None,
        parent: str | None = None,
        sweep: str | None = None,
    ) -> str: ...

    def cancel(self, run_id: str) -> str | None: ...

    def capacity(self) -> int:
        """How many runs it trains at once, at most (a sweep keeps that many trials in flight)."""
        ...

    def shutdown(self) -> None: ...


@dataclass(frozen=True)
class RaySettings:
    address: str | None = None  # None: a local Ray started by this process
    num_cpus: float = 1.0  # what each run's actor reserves
    num_gpus: float = 0.0


def ray_settings(env: Mapping[str, str] | None = None, address: str | None = None) -> RaySettings | None:
    """Ray's settings from KF_EXECUTOR, KF_RAY_ADDRESS (or `address`, the CLI's), KF_RAY_NUM_CPUS and
    KF_RAY_NUM_GPUS; None for the local pool. ExecutorError says which variable is wrong and how."""
    env = os.environ if env is None else env
    address = (address or env.get("KF_RAY_ADDRESS") or "").strip() or None
    kind = (env.get("KF_EXECUTOR") or "").strip().lower()
    if kind not in ("", "local", "ray"):
        raise ExecutorError(f"KF_EXECUTOR={kind[:40]!r} is no executor: set it to local (the default) or ray")
    if kind == "local" and address:
        raise ExecutorError(
            "KF_EXECUTOR=local and a Ray address (KF_RAY_ADDRESS or --address) contradict each other: unset one of them"
        )
    if kind != "ray" and not address:
        return None
    return RaySettings(address, *ray_resources(env))


def ray_resources(env: Mapping[str, str] | None = None) -> tuple[float, float]:
    """(CPUs, GPUs) each run or sweep trial reserves on Ray: KF_RAY_NUM_CPUS (default 1) and KF_RAY_NUM_GPUS
    (default 0; a share of one GPU such as 0.25 lets several small runs share it). ExecutorError if wrong."""
    env = os.environ if env is None else env
    cpus = _amount(env, "KF_RAY_NUM_CPUS", 1.0)
    gpus = _amount(env, "KF_RAY_NUM_GPUS", 0.0)
    if cpus <= 0:
        raise ExecutorError("KF_RAY_NUM_CPUS must be above 0: the CPUs each run reserves, e.g. 1 or 0.5")
    if gpus > 1 and not gpus.is_integer():
        raise ExecutorError(
            f"KF_RAY_NUM_GPUS={gpus:g}: Ray gives a run a share of one GPU (0.25) or whole GPUs "
            "(2), not a fraction above one"
        )
    return cpus, gpus


def _amount(env: Mapping[str, str], var: str, default: float) -> float:
    raw = (env.get(var) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ExecutorError(f"{var}={raw[:40]!r} is not a number of 0 or more: set it to e.g. 1, 0.5 or 0.25")
    return value


def executor_from_env(store: RunStore, address: str | None = None, **pool_options: Any) -> Executor:
    """The executor this environment asks for: Ray (ray_settings), else the local pool (JobManager with
    `pool_options`). ExecutorError when the settings are wrong, Ray is missing or its cluster cannot be reached."""
    settings = ray_settings(address=address)
    if settings is None:
        return JobManager(store, **pool_options)
    return RayExecutor(store, settings)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError(
            "Ray is not installed here: pip install -r requirements.txt (it lists ray), or unset "
            "KF_EXECUTOR and KF_RAY_ADDRESS to train on this machine"
        ) from None
    return ray


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def worker_death(e: BaseException) -> str:
    """What Ray says about a dead actor's worker, in one line: its exit detail where it gives one."""
    text = str(e)
    marker = "Worker exit detail:"
    if marker in text:
        return text.split(marker, 1)[1].strip().splitlines()[0].strip()[:300]
    return _first_line(e)


class _RunActor:
    """A run's training process on Ray (made a Ray actor by RayExecutor); it trains one run at a time with
    jobs.run_training and is the run's RunLink: commands and the cancel flag come in with each poll, events go out
    with its answer. Threaded (max_concurrency), so polls are answered while a run trains."""

    def __init__(self) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from kfcore.training.hardware import quiet_native_stderr

        with quiet_native_stderr():  # import TensorFlow while the run still waits, not once it trains
            import keras  # noqa: F401
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        # By run id: a poll can arrive before run() starts, or after it ended; each run reads only its own.
        self._commands: dict[str, list[tuple[str, float | None]]] = {}
        self._cancelled: set[str] = set()

    def where(self) -> dict[str, Any]:
        import ray

        return {"pid": os.getpid(), "host": socket.gethostname(), "node": ray.get_runtime_context().get_node_id()}

    def poll(self, run_id: str, commands: list[tuple[str, float | None]], cancel: bool) -> list[dict[str, Any]]:
        with self._lock:
            self._commands.setdefault(run_id, []).extend(commands)
            if cancel:
                self._cancelled.add(run_id)
            events, self._events = self._events, []
        return events

    # -- RunLink ----------------------------------------------------------------------------------
    def take_commands(self, run_id: str) -> list[tuple[str, float | None]]:
        with self._lock:
            return self._commands.pop(run_id, [])

    def set_paused(self, run_id: str, paused: bool) -> None:
        self._emit({"event": "paused", "paused": paused})

    def cancel_requested(self, run_id: str) -> bool:
        return run_id in self._cancelled

    def _emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._events.append(event)

    def run(self, job: dict[str, Any]) -> str:
        """Train one run (RayExecutor._job made `job`) in a folder of its own; the model's files go back in the
        finished event. Returns the trainer's status."""
        run_id = job["run_id"]
        with self._lock:  # what late polls left for earlier runs; this run's may be here already (Pause at once)
            self._commands = {k: v for k, v in self._commands.items() if k == run_id}
            self._cancelled &= {run_id}
        return self._train(job)

    def _train(self, job: dict[str, Any]) -> str:
        import keras
        import ray

        from kfcore.training.train import Resume

        where = self.where()
        with tempfile.TemporaryDirectory(prefix="kf-ray-run-") as tmp:
            files = {}
            for name, (filename, ref) in job["files"].items():
                path = Path(tmp, "data", name, filename)
                path.parent.mkdir(parents=True)
                path.write_bytes(ray.get(ref))
                files[name] = str(path)
            spec = RunSpec.from_dict(job["spec"])
            data = spec.data
            spec = dataclasses.replace(
                spec,
                data=dataclasses.replace(
                    data,
                    path=files.get("path", data.path),
                    images=files.get("images", data.images),
                    labels=files.get("labels", data.labels),
                ),
            )
            resume = None
            if job["parent_model"] is not None:
                parent = Path(tmp, "parent", "model.keras")
                parent.parent.mkdir()
                parent.write_bytes(ray.get(job["parent_model"]))
                resume = Resume(str(parent), job["epochs_done"])
            model_path = Path(tmp, "run", "model.keras")

            def emit(event: dict[str, Any]) -> None:
                if event["event"] == "started":  # where it trained, for the run's page (and the tests' kill)
                    event = {**event, "hardware": {**event["hardware"], "ray": where}}
                elif (event["event"] == "finished" and event.get("model_path")) or (
                    event["event"] == "cancelled" and model_path.is_file()  # Stop saved the state: Continue needs it
                ):
                    event = {**event, "files": {f.name: f.read_bytes() for f in model_path.parent.iterdir()}}
                self._emit(event)

            result = run_training(self, job["run_id"], spec, job["limits"], emit, model_path, resume=resume)
        keras.backend.clear_session()
        return result.status


@dataclass
class _Slot:
    """One actor, as the relay sees it: being placed (ready pending), idle, or training a run (RayExecutor._active)."""

    actor: Any
    ready: Any  # the ObjectRef of its where(): set once the cluster placed it and it imported TensorFlow
    job: dict[str, Any] | None = None  # kept while it trains: its data's object refs stay alive
    done: Any = None  # the ObjectRef of run()
    poll: Any = None  # the poll in flight
    served: int = 0
    idle_since: float = field(default_factory=time.monotonic)


class RayExecutor:
    """Runs the store's queued runs in Ray actors, one run per actor at a time, oldest first, as many at once as the
    cluster has room for (each reserves settings.num_cpus / num_gpus; `max_concurrent` caps it further). A queued
    run stays queued until an actor for it is placed. serve_queue=False (the CLI): only runs submitted here, not
    every queued run of the store (those are a server's)."""

    def __init__(
        self, store: RunStore, settings: RaySettings, serve_queue: bool = True, max_concurrent: int | None = None
    ) -> None:
        ray = _ray()
        self.store, self.settings, self.serve_queue, self.max_concurrent = store, settings, serve_queue, max_concurrent
        self._started_ray = not ray.is_initialized()
        if self._started_ray:
            _init_ray(ray, settings)
        self._actor_class = ray.remote(max_concurrency=4)(_RunActor).options(
            num_cpus=settings.num_cpus, num_gpus=settings.num_gpus
        )
        self._placing: list[_Slot] = []
        self._idle: list[_Slot] = []
        self._active: dict[str, _Slot] = {}  # by the id of the run each trains
        self._mine: list[str] = []  # serve_queue=False: the runs submitted here, oldest first
        self._unrecorded: dict[str, str] = {}  # runs to fail once the disk has room again
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._renewed = 0.0
        self._thread = threading.Thread(target=self._relay, name="kf-ray-relay", daemon=True)
        self._thread.start()

    # -- the interface -----------------------------------------------------------------------------
    def submit(
        self,
        spec: RunSpec,
        name: str | None = None,
        owner: str | None = None,
        parent: str | None = None,
        sweep: str | None = None,
    ) -> str:
        """Queue a run and return its id at once; LimitError when this owner or the server has too many."""
        run_id = queue_run(self.store, spec, name, owner, parent, sweep)
        if not self.serve_queue:
            with self._lock:
                self._mine.append(run_id)
        self._wake.set()
        return run_id

    def cancel(self, run_id: str) -> str | None:
        """A queued run is cancelled at once; a running one stops at the actor's next check (the relay tells it)."""
        return self.store.request_cancel(run_id)

    def capacity(self) -> int:
        """Runs the cluster holds at once: its CPUs (and GPUs, where a run reserves some) over what each run
        reserves, capped by max_concurrent; at least one. Read from Ray each time: nodes join and leave."""
        total = _ray().cluster_resources()
        fits = [total.get("CPU", 0.0) / self.settings.num_cpus] if self.settings.num_cpus else []
        if self.settings.num_gpus:
            fits.append(total.get("GPU", 0.0) / self.settings.num_gpus)
        runs = max(1, math.floor(min(fits) + 1e-9)) if fits else 1  # 1e-9: 1.0 / 0.25 may come out 3.999…
        return min(runs, self.max_concurrent) if self.max_concurrent is not None else runs

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop relaying: runs still training are failed as interrupted (their actors are killed with this
        executor), queued ones stay queued for the next server."""
        import ray

        self._closed.set()
        self._wake.set()
        self._thread.join(timeout)
        for run_id in self._active:
            try:
                self.store.fail(run_id, SERVER_GONE)
            except StoreFullError:
                pass  # its lease lapses once this process is gone: store.recover fails it then
        for slot in [*self._active.values(), *self._idle, *self._placing]:
            ray.kill(slot.actor)
        self._active, self._idle, self._placing = {}, [], []
        if self._started_ray:
            ray.shutdown()

    # -- the relay thread ------------------------------------------------------------------------------
    def _relay(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(RELAY_S)
            self._wake.clear()
            if self._closed.is_set():
                return
            try:
                self._tick()
            except StoreFullError:  # each write is tried again on the next tick
                pass
            except Exception:  # never let the relay die: every run on Ray would be stranded
                traceback.print_exc(file=sys.stderr)

    def _tick(self) -> None:
        import ray

        for run_id, reason in list(self._unrecorded.items()):
            self.store.fail(run_id, reason)
            del self._unrecorded[run_id]
        self._place()
        for run_id, slot in list(self._active.items()):
            self._follow(ray, run_id, slot)
        if time.monotonic() - self._renewed >= HEARTBEAT_S:  # this process holds the leases of the runs it relays
            self._renewed = time.monotonic()
            for run_id in self._active:
                self.store.renew_lease(run_id)

    def _queued(self) -> list[str]:
        """The ids of the runs waiting for an actor, oldest first (serve_queue=False: of those submitted here)."""
        if self.serve_queue:
            return self.store.queued_ids(PLACE_AHEAD)
        with self._lock:
            mine = list(self._mine)
        waiting = [i for i in mine if (r := self.store.get(i, with_evaluation=False)) and r.status == "queued"]
        with self._lock:
            self._mine = [i for i in self._mine if i in waiting or i not in mine]
        return waiting[:PLACE_AHEAD]

    def _place(self) -> None:
        """Give queued runs to idle actors, oldest first; ask the cluster for more actors while runs wait (a few at
        a time: each imports TensorFlow while it is placed, so they start side by side)."""
        import ray

        for slot in [s for s in self._placing if ray.wait([s.ready], timeout=0)[0]]:
            self._placing.remove(slot)
            try:
                ray.get(slot.ready)
                self._idle.append(slot)
            except ray.exceptions.RayError as e:  # the cluster cannot run our actor: say so on the run it was for
                waiting = self._queued()
                if waiting and self.store.start_in_process(waiting[0]):
                    self.store.fail(waiting[0], NO_WORKER.format(_first_line(e)))
        now = time.monotonic()
        for slot in [s for s in self._idle if now - s.idle_since > IDLE_S]:
            self._idle.remove(slot)
            ray.kill(slot.actor)
        waiting = self._queued()
        while self._idle and waiting:
            run_id = waiting.pop(0)
            if self.store.start_in_process(run_id):  # else another executor took it, or it was cancelled
                self._start(self._idle.pop(0), run_id)
        held = len(self._active) + len(self._idle) + len(self._placing)
        want = len(waiting) - len(self._placing)
        if self.max_concurrent is not None:
            want = min(want, self.max_concurrent - held)
        for _ in range(max(0, want)):
            actor = self._actor_class.remote()
            self._placing.append(_Slot(actor, actor.where.remote()))

    def _start(self, slot: _Slot, run_id: str) -> None:
        import ray

        limits = Limits.from_env()
        record = self.store.get(run_id, with_evaluation=False)
        if record is None:  # deleted since it was claimed
            self._idle.append(slot)
            return
        try:
            spec, resume = run_inputs(self.store, record, limits)  # the access check, before any byte leaves
            files = {}
            for name, path in ((k, getattr(spec.data, k)) for k in ("path", "images", "labels")):
                if path:
                    files[name] = (Path(path).name, ray.put(_read_for_cluster(Path(path), limits)))
        except ValueError as e:
            refuse(self.store, run_id, str(e))
            self._idle.append(slot)
            return
        slot.job = {
            "run_id": run_id,
            "spec": spec.to_dict(),
            "files": files,
            "limits": limits,
            "parent_model": ray.put(Path(resume.model_path).read_bytes()) if resume else None,
            "epochs_done": resume.epochs_done if resume else 0,
        }
        slot.served += 1
        slot.done = slot.actor.run.remote(slot.job)
        self._active[run_id] = slot

    def _follow(self, ray: Any, run_id: str, slot: _Slot) -> None:
        """Relay one poll's worth of a training run: its events into the store, its commands to the actor."""
        if slot.poll is not None:
            if not ray.wait([slot.poll], timeout=0)[0]:
                return
            try:
                events = ray.get(slot.poll)
            except ray.exceptions.ActorUnavailableError:  # reconnecting (a node's network hiccup): ask again
                events = []
            except ray.exceptions.RayActorError as e:
                self._lost(ray, run_id, slot, e)
                return
            slot.poll = None
            if not self._write(ray, run_id, slot, events):
                return
        if ray.wait([slot.done], timeout=0)[0]:
            self._ended(ray, run_id, slot)
            return
        commands = self.store.take_commands(run_id)
        slot.poll = slot.actor.poll.remote(run_id, commands, self.store.cancel_requested(run_id))

    def _write(self, ray: Any, run_id: str, slot: _Slot, events: list[dict[str, Any]]) -> bool:
        """Store a run's events; False when the disk is full (the run is stopped and failed with that reason)."""
        try:
            for event in events:
                if "files" in event:  # a finished run's model, or the state a stopped one saved, as a worker leaves it
                    folder = self.store.run_dir(run_id)
                    with self.store.writing():
                        folder.mkdir(parents=True, exist_ok=True)
                        for name, data in event.pop("files").items():
                            (folder / Path(name).name).write_bytes(data)
                    if event["event"] == "finished":
                        event["model_path"] = str(self.store.model_file(run_id))
                record_event(self.store, run_id, event)
        except StoreFullError as e:
            self._unrecorded[run_id] = str(e)
            self._drop(ray, run_id, slot)
            return False
        return True

    def _ended(self, ray: Any, run_id: str, slot: _Slot) -> None:
        """run() returned (or raised): take its last events, make sure the run has an outcome, free the actor."""
        try:
            ray.get(slot.done)
            events = ray.get(slot.actor.poll.remote(run_id, [], False), timeout=DRAIN_S)
        except ray.exceptions.RayActorError as e:
            self._lost(ray, run_id, slot, e)
            return
        except ray.exceptions.RayError as e:  # run() itself raised: a bug on the actor's side
            self.store.fail(
                run_id, f"training on Ray stopped by an internal error ({_first_line(e)}); please report it"
            )
            self._drop(ray, run_id, slot)
            return
        if not self._write(ray, run_id, slot, events):
            return
        del self._active[run_id]
        slot.job, slot.done, slot.idle_since = None, None, time.monotonic()
        if slot.served >= RUNS_PER_WORKER:  # a fresh process returns the memory Keras accumulates, as locally
            ray.kill(slot.actor)
        else:
            self._idle.append(slot)
            self._wake.set()

    def _lost(self, ray: Any, run_id: str, slot: _Slot, e: BaseException) -> None:
        self.store.fail(run_id, WORKER_DIED.format(worker_death(e)))
        self._drop(ray, run_id, slot)
        self._wake.set()

    def _drop(self, ray: Any, run_id: str, slot: _Slot) -> None:
        self._active.pop(run_id, None)
        ray.kill(slot.actor)


def _read_for_cluster(path: Path, limits: Limits) -> bytes:
    """A data file's bytes for the object store, its size checked before any is read."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ValueError(f"cannot read the data file {path.name}: {e.strerror or e}") from None
    budget = data_budget_bytes(limits)
    if size > budget:
        raise ValueError(
            f"{path.name} is {size / 2**20:.0f} MB, more than the {budget / 2**20:.0f} MB one run may "
            "send to the Ray cluster (a quarter of KF_MEMORY_BUDGET_MB); use a smaller file"
        )
    return path.read_bytes()


def _init_ray(ray: Any, settings: RaySettings) -> None:
    """Connect to the cluster, or start a local Ray (as many CPUs as the local pool would use, at least one run's),
    shipping this kfcore to its workers so the cluster trains with the server's own code."""
    options: dict[str, Any] = {
        "runtime_env": {"py_modules": [str(Path(__file__).resolve().parents[1])], "excludes": ["__pycache__"]},
        "log_to_driver": False,  # the workers' TensorFlow chatter stays in Ray's logs, off the server's console
    }
    if settings.address is None:
        cpus = max(Limits.from_env().max_concurrent * settings.num_cpus, settings.num_cpus)
        options.update(num_cpus=math.ceil(cpus), include_dashboard=False)
    try:
        ray.init(address=settings.address, **options)
    except Exception as e:  # ConnectionError, a timeout, a version mismatch: Ray's own words, in one line
        where = f"the Ray cluster at {settings.address}" if settings.address else "a local Ray"
        raise ExecutorError(
            f"cannot start runs on {where}: {_first_line(e)}; check KF_RAY_ADDRESS (or --address) "
            "and that the cluster runs (ray status)"
        ) from None
