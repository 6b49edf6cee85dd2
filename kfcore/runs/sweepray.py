"""Running a sweep with Ray Tune: a Tuner over the same `kfcore.training.train.train`, on a Ray cluster or a local Ray.

Grid and random sweeps hand Tune the settings kfcore.runs.sweep plans (Tune's grid search over them), so a sweep tries
the same trials on Ray as on the local pool; Optuna's TPE is Tune's OptunaSearch, early stopping Tune's
ASHAScheduler with kfcore.runs.sweep's rungs. Each trial `tune.report`s every epoch; a Tune Callback on this (the
driver's) side writes the runs, their epochs and outcomes into the store, so remote trials never open the SQLite
file. A finished trial's model and recipe come back as its Tune checkpoint and are copied into the store.
What travels to the cluster: the kfcore package (runtime_env py_modules) and the trial's spec; built-in data is
made there by name, a file path must be readable on the node.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kfcore.data import uploads
from kfcore.runs.store import RunRecord, RunStore
from kfcore.runs.sweep import (
    ASHA_ETA,
    ASHA_GRACE,
    Range,
    Sweep,
    asha_rungs,
    max_epochs,
    settings,
    trial_name,
    trial_spec,
    with_seeds,
)
from kfcore.runs.sweepresults import metric_of
from kfcore.runs.sweeprun import asha_reason

EVALUATION_FILE = "evaluation.json"
WORKER_DIED = (
    "the Ray worker training this trial died (its node was lost, or its process was killed or ran out "
    "of memory); the other trials go on"
)


class RayError(RuntimeError):
    """Ray is missing or its cluster cannot be reached: what to do."""


def _trainable(config: dict[str, Any], base: dict[str, Any], paths: list[str], metric: str) -> None:
    """One trial, in a Ray worker: the spec with the trial's values, trained by kfcore.training.train, reported
    per epoch."""
    import keras
    from ray import tune

    from kfcore.runs.limits import Limits
    from kfcore.runs.sweep import set_path
    from kfcore.spec import RunSpec
    from kfcore.training.train import train

    keras.backend.clear_session()  # a reused actor's previous trial (as a local worker does between runs)
    values = _values(config, paths)
    spec = base
    for path, value in values.items():
        spec = set_path(spec, path, value)
    started: list[dict[str, Any]] = []
    out = Path(tempfile.mkdtemp(prefix="kf-trial-"))

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "started":
            started.append({"hardware": event["hardware"], "info": event["info"]})
        elif event["event"] == "epoch":
            logs = {k: v for k, v in event.items() if k != "event"}
            report = {"logs": json.dumps(logs), metric: _number(metric_of([logs], metric))}
            if started:
                report["started"] = json.dumps(started.pop())
            tune.report(report)

    result = train(RunSpec.from_dict(spec), on_event=on_event, model_path=out / "model.keras", limits=Limits.from_env())
    if result.status != "finished":
        raise RuntimeError(result.error or result.status)
    (out / EVALUATION_FILE).write_text(json.dumps(result.evaluation), encoding="utf-8")
    last = metric_of(result.history, metric)
    tune.report(
        {"final": json.dumps({"test": result.test}), metric: _number(last)},
        checkpoint=tune.Checkpoint.from_directory(str(out)),
    )


def _number(value: float | None) -> float:
    return math.nan if value is None else value


def _values(config: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """A trial's {path: value} from its Tune config: a planned setting, or Optuna's draws (one key per path)."""
    if "trial" in config:
        return dict(config["trial"])
    return {path: config[f"p{i}"] for i, path in enumerate(paths)}


def _space(sweep: Sweep) -> tuple[dict[str, Any], int, Any]:
    """Tune's param space, num_samples and search algorithm for the sweep."""
    from ray import tune

    if sweep.search != "optuna":
        trials = [values for s in settings(sweep) for values in with_seeds(sweep, s)]
        return {"trial": tune.grid_search(trials)}, 1, None
    from ray.tune.search.optuna import OptunaSearch

    space = {}
    for i, values in enumerate(sweep.params.values()):
        if isinstance(values, Range) and values.integer:
            space[f"p{i}"] = (tune.lograndint if values.log else tune.randint)(int(values.min), int(values.max) + 1)
        elif isinstance(values, Range):
            space[f"p{i}"] = (tune.loguniform if values.log else tune.uniform)(values.min, values.max)
        else:
            space[f"p{i}"] = tune.choice(list(values))
    return space, sweep.samples, OptunaSearch(seed=sweep.seed)


def _failure(trial: Any) -> str:
    """The reason a trial errored, in one line: that its Ray worker died, or the trainer's message."""
    import ray.exceptions

    error: Any = None
    pickled = getattr(trial, "pickled_error_file", None)
    if pickled and Path(pickled).is_file():
        with contextlib.suppress(Exception):  # an exception that cannot be loaded here: its text says enough
            error = ray.cloudpickle.loads(Path(pickled).read_bytes())
    died = (
        ray.exceptions.RayActorError,
        ray.exceptions.WorkerCrashedError,
        ray.exceptions.NodeDiedError,
        ray.exceptions.OutOfMemoryError,
    )
    if isinstance(error, died) or isinstance(getattr(error, "cause", None), died):
        return WORKER_DIED
    text = ""
    error_file = getattr(trial, "error_file", None)
    if error_file and Path(error_file).is_file():
        text = Path(error_file).read_text(encoding="utf-8", errors="replace")
    if "worker process has died" in text or "ActorDiedError" in text:
        return WORKER_DIED
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("RuntimeError: "):
            return line.removeprefix("RuntimeError: ")[:500]
    return lines[-1][:500] if lines else "the trial failed on Ray without saying why"


def _callback(
    store: RunStore,
    sweep_id: str,
    sweep: Sweep,
    owner: str | None,
    label: str,
    on_trial: Callable[[RunRecord], None] | None,
) -> Any:
    from ray import tune

    class ToStore(tune.Callback):
        """Driver side: each Tune trial becomes a run in the store; its reports become epochs and its outcome."""

        def __init__(self) -> None:
            self.runs: dict[str, str] = {}
            self.finals: dict[str, dict[str, Any]] = {}
            self.checkpoints: dict[str, str] = {}

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            values = _values(trial.config, list(sweep.params))
            spec = trial_spec(sweep, values)
            run_id = store.create_run(spec.to_dict(), name=trial_name(label, values), owner=owner, sweep=sweep_id)
            store.start_in_process(run_id)  # this process holds its lease while Tune trains it
            self.runs[trial.trial_id] = run_id

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            run_id = self.runs[trial.trial_id]
            store.renew_lease(run_id)
            if "started" in result:
                started = json.loads(result["started"])
                store.set_info(run_id, started["hardware"], started["info"])
            if "logs" in result:
                logs = json.loads(result["logs"])
                epoch = logs.pop("epoch")
                store.append_epoch(run_id, epoch, logs)
                store.set_progress(
                    run_id,
                    {
                        "epoch": epoch,
                        "step": None,
                        "elapsed": logs.get("elapsed"),
                        "samples_per_s": logs.get("samples_per_s"),
                    },
                )
            if "final" in result:
                self.finals[trial.trial_id] = json.loads(result["final"])

        def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
            self.checkpoints[trial.trial_id] = checkpoint.path

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            run_id = self.runs[trial.trial_id]
            final = self.finals.get(trial.trial_id)
            if final is not None:
                run_dir = store.run_dir(run_id)
                run_dir.mkdir(parents=True, exist_ok=True)
                source = Path(self.checkpoints[trial.trial_id])
                for f in source.iterdir():
                    shutil.copyfile(f, run_dir / f.name)
                evaluation = json.loads((run_dir / EVALUATION_FILE).read_text(encoding="utf-8"))
                (run_dir / EVALUATION_FILE).unlink()
                store.finish(run_id, final["test"], evaluation, str(store.model_file(run_id)))
            else:  # Tune stopped it before its last epoch: ASHA did
                epochs = store.epochs(run_id)
                rung = max([r for r in asha_rungs(max_epochs(sweep) + 1) if r <= len(epochs)] or [0])
                value = metric_of(epochs[:rung], sweep.metric) if rung else None
                store.mark_cancelled(
                    run_id, asha_reason(rung, sweep.metric, value) if value is not None else "stopped early by ASHA"
                )
            self._ended(run_id)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            run_id = self.runs.get(trial.trial_id)
            if run_id is not None:
                store.fail(run_id, _failure(trial))
                self._ended(run_id)

        def _ended(self, run_id: str) -> None:
            record = store.get(run_id, with_evaluation=False)
            if on_trial is not None and record is not None:  # None: deleted meanwhile
                on_trial(record)

    return ToStore()


def run_ray(
    store: RunStore,
    sweep_id: str,
    sweep: Sweep,
    address: str | None = None,
    owner: str | None = None,
    on_trial: Callable[[RunRecord], None] | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
) -> list[RunRecord]:
    """Run the sweep through Ray Tune and wait; its trials as stored; on_trial gets each as it ends (Tune's own
    output goes to standard error meanwhile). address: a Ray cluster's HOST:PORT (default
    KF_RAY_ADDRESS, else a local Ray started for this). RayError when Ray is missing or cannot be reached."""
    try:
        import ray
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
    except ImportError:
        raise RayError("Ray is not installed here: pip install 'ray[tune]' (requirements.txt pins it)") from None
    address = address or os.environ.get("KF_RAY_ADDRESS") or None
    try:
        ray.init(
            address=address,
            ignore_reinit_error=True,
            log_to_driver=False,
            logging_level=logging.ERROR,
            runtime_env={
                "py_modules": [str(Path(__file__).resolve().parents[1])],  # the kfcore package
                "env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"},
            },
        )
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise RayError(
            f"cannot reach the Ray cluster at {address or 'a local Ray'}: "
            f"{(str(e).splitlines() or [type(e).__name__])[0][:200]}; start it with ray start --head, "
            "or check the address"
        ) from None
    record = store.get_sweep(sweep_id)
    # An upload's reference becomes its file's path: a node reads it where this machine does (one host, or a
    # shared file system); built-in data is made on the node by name.
    base = dataclasses.replace(sweep.base, data=uploads.resolve(sweep.base.data, store.uploads_dir)).to_dict()
    space, samples, search = _space(sweep)
    scheduler = None
    if sweep.early_stop == "asha":
        scheduler = ASHAScheduler(
            max_t=max_epochs(sweep) + 1, grace_period=ASHA_GRACE, reduction_factor=ASHA_ETA
        )  # +1: the final report after the last epoch
    trainable = tune.with_resources(
        tune.with_parameters(_trainable, base=base, paths=list(sweep.params), metric=sweep.metric),
        {"cpu": cpus_per_trial, "gpu": gpus_per_trial},
    )
    callback = _callback(store, sweep_id, sweep, owner, record.name if record else sweep_id, on_trial)
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        # reuse_actors: a trial's worker process serves the next one, so TensorFlow is imported once per worker
        # rather than once per trial (measured: 17 s more per trial without, on 2 busy cores).
        tune_config=tune.TuneConfig(
            metric=sweep.metric,
            mode=sweep.mode,
            search_alg=search,
            scheduler=scheduler,
            num_samples=samples,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=sweep_id, storage_path=str((store.root / "ray").resolve()), verbose=0, callbacks=[callback]
        ),
    )
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Tune's tables: standard output is the caller's (JSON lines)
            tuner.fit()
    finally:
        for run_id in callback.runs.values():  # a run Tune never ended (the driver was stopped) is not left running
            store.fail(run_id, "interrupted: the sweep's driver stopped before this trial ended")
    return store.trials(sweep_id)
