"""Which executor the environment asks for (kfcore.runs.executors.ray_settings / executor_from_env): the local pool
by default, Ray by address or KF_EXECUTOR=ray, per-run resources with GPU fractions; a wrong setting says which
variable and how to fix it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kfcore.runs.executors import ExecutorError, RaySettings, executor_from_env, ray_settings, worker_death
from kfcore.runs.jobs import JobManager
from kfcore.runs.limits import Limits
from kfcore.runs.store import RunStore
from kfcore.spec import parse_spec


def test_the_local_pool_is_the_default_and_needs_nothing(tmp_path, monkeypatch):
    for var in ("KF_EXECUTOR", "KF_RAY_ADDRESS", "KF_RAY_NUM_CPUS", "KF_RAY_NUM_GPUS"):
        monkeypatch.delenv(var, raising=False)
    assert ray_settings() is None
    assert ray_settings({"KF_EXECUTOR": "local"}) is None
    executor = executor_from_env(RunStore(tmp_path / "store"), prestart=False)
    try:
        assert isinstance(executor, JobManager)
        assert executor.capacity() == Limits.from_env().max_concurrent  # a sweep's trials in flight at once
    finally:
        executor.shutdown()


def test_an_address_or_kf_executor_ray_picks_ray_with_its_resources():
    assert ray_settings({"KF_RAY_ADDRESS": "head:6379"}) == RaySettings("head:6379", 1.0, 0.0)
    assert ray_settings({}, address="ray://head:10001") == RaySettings("ray://head:10001", 1.0, 0.0)
    assert ray_settings({"KF_EXECUTOR": "Ray"}) == RaySettings(None, 1.0, 0.0)  # a local Ray, on demand
    assert ray_settings({"KF_EXECUTOR": "ray", "KF_RAY_NUM_CPUS": "0.5", "KF_RAY_NUM_GPUS": "0.25"}) == RaySettings(
        None, 0.5, 0.25
    )
    assert ray_settings({"KF_EXECUTOR": "ray", "KF_RAY_NUM_GPUS": "2"}).num_gpus == 2


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"KF_EXECUTOR": "dask"}, "KF_EXECUTOR='dask' is no executor: set it to local (the default) or ray"),
        ({"KF_EXECUTOR": "local", "KF_RAY_ADDRESS": "head:6379"}, "contradict each other: unset one of them"),
        ({"KF_EXECUTOR": "ray", "KF_RAY_NUM_CPUS": "two"}, "KF_RAY_NUM_CPUS='two' is not a number of 0 or more"),
        ({"KF_EXECUTOR": "ray", "KF_RAY_NUM_CPUS": "0"}, "KF_RAY_NUM_CPUS must be above 0"),
        ({"KF_EXECUTOR": "ray", "KF_RAY_NUM_GPUS": "-1"}, "KF_RAY_NUM_GPUS='-1' is not a number of 0 or more"),
        ({"KF_EXECUTOR": "ray", "KF_RAY_NUM_GPUS": "nan"}, "KF_RAY_NUM_GPUS='nan' is not a number of 0 or more"),
        ({"KF_EXECUTOR": "ray", "KF_RAY_NUM_GPUS": "1.5"}, "a share of one GPU (0.25) or whole GPUs (2)"),
    ],
)
def test_a_wrong_setting_names_the_variable_and_the_fix(env, says):
    with pytest.raises(ExecutorError) as e:
        ray_settings(env)
    assert says in str(e.value)


def test_a_dead_workers_reason_is_rays_exit_detail_in_one_line():
    text = (
        "The actor died unexpectedly before finishing this task.\n\tclass_name: _RunActor\n\tpid: 123\nThe actor "
        "is dead because its worker process has died. Worker exit type: SYSTEM_ERROR Worker exit detail: Worker "
        "unexpectedly exits with a connection error code 2. End of file.\nmore"
    )
    assert worker_death(RuntimeError(text)) == "Worker unexpectedly exits with a connection error code 2. End of file."
    assert worker_death(RuntimeError("the node was lost\nsecond line")) == "the node was lost"


def test_the_cli_refuses_a_wrong_ray_setting_in_one_line(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text("{}")
    env = {**os.environ, "KF_EXECUTOR": "ray", "KF_RAY_NUM_CPUS": "lots"}
    out = subprocess.run(
        [sys.executable, "-m", "kfcore", "train", str(spec), "--store", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: KF_RAY_NUM_CPUS='lots' is not a number of 0 or more: set it to e.g. 1, 0.5 or 0.25"
    ]


def test_a_run_submitted_with_a_sweep_keeps_its_sweep_id(tmp_path, monkeypatch):
    monkeypatch.setattr(JobManager, "_ensure_workers", lambda self, want=None: None)  # nothing here trains
    store = RunStore(tmp_path / "store")
    pool = JobManager(store, prestart=False)
    try:
        trial = pool.submit(parse_spec({}), name="trial 1", sweep="sw-1")
        plain = pool.submit(parse_spec({}))
    finally:
        pool.shutdown()
    assert store.get(trial).sweep == "sw-1" and store.get(plain).sweep is None
    assert {r.id: r.sweep for r in store.list_runs()} == {trial: "sw-1", plain: None}


def test_a_ray_sweep_reserves_the_same_resources_per_trial_and_refuses_a_wrong_one_in_one_line(tmp_path):
    from kfcore.runs.executors import ray_resources

    assert ray_resources({"KF_RAY_NUM_CPUS": "0.5", "KF_RAY_NUM_GPUS": "0.25"}) == (0.5, 0.25)
    assert ray_resources({}) == (1.0, 0.0)
    sweep = tmp_path / "sweep.json"
    sweep.write_text(
        json.dumps(
            {
                "base": {"data": {"source": "builtin", "name": "xor", "n": 40}},
                "grid": {"train.learning_rate": [0.01, 0.1]},
            }
        )
    )
    env = {**os.environ, "KF_RAY_NUM_GPUS": "1.5"}
    out = subprocess.run(
        [sys.executable, "-m", "kfcore", "sweep", str(sweep), "--backend", "ray", "--store", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert out.returncode == 2, out.stderr
    assert not (tmp_path / "s").exists()  # refused before a store (or a sweep in it) was made
    assert out.stderr.strip().splitlines() == [
        "error: KF_RAY_NUM_GPUS=1.5: Ray gives a run a share of one GPU (0.25) or whole GPUs (2), not a fraction above one"
    ]
