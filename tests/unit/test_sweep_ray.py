"""A sweep through Ray Tune on a real Ray cluster started here (tests/raycluster.py: two nodes, token auth, a private
dir, stopped at the end): the trials land in the store as runs, with the same test metrics as on the local pool, and a
trial whose Ray worker is killed fails with that reason while the sweep completes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kfcore.runs.store import RunStore
from kfcore.runs.sweepray import WORKER_DIED
from tests.raycluster import busiest
from tests.raycluster import ray_cluster as start_cluster
from tests.unit.helpers import wait_for
from tests.unit.test_cli import REPO, run_cli

BASE = {
    "data": {"source": "builtin", "name": "xor", "n": 60},
    "split": {"test": 0.2, "validation": 0.2, "seed": 0},
    "layers": [{"type": "Dense", "units": 4}],
    "train": {"epochs": 2, "batch_size": 16, "seed": 0},
}


@pytest.fixture(scope="module")
def ray_cluster():
    """The two-node cluster of tests/raycluster.py: (address, the environment that reaches it, the cluster)."""
    with start_cluster(head_cpus=2, node_cpus=1) as cluster:  # its token is in os.environ (tests.raycluster)
        yield cluster.address, {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}, cluster


def sweep_cli(tmp_path, sweep, store, env=None, *extra):
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(sweep))
    if env is None:
        return run_cli("sweep", path, "--store", store, *extra, timeout=600)
    return subprocess.run(
        [sys.executable, "-m", "kfcore", "sweep", str(path), "--store", str(store), *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )


def test_a_ray_tune_sweep_stores_its_trials_with_the_local_pools_test_metrics(tmp_path, ray_cluster):
    address, env, _ = ray_cluster
    sweep = {"base": BASE, "grid": {"train.learning_rate": [0.003, 0.05]}}
    on_ray = sweep_cli(tmp_path, sweep, tmp_path / "ray", env, "--backend", "ray", "--address", address)
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    lines = [json.loads(line) for line in on_ray.stdout.splitlines()]  # Tune's own output stays off stdout
    assert len(lines) == 3 and lines[-1]["summary"]["backend"] == "ray" and lines[-1]["summary"]["finished"] == 2
    local = sweep_cli(tmp_path, sweep, tmp_path / "local")
    assert local.returncode == 0, local.stderr[-2000:]
    by_lr = {t["values"]["train.learning_rate"]: t for t in map(json.loads, local.stdout.splitlines()[:-1])}
    for trial in lines[:-1]:
        twin = by_lr[trial["values"]["train.learning_rate"]]
        assert trial["test"] == pytest.approx(twin["test"], abs=1e-6) and trial["epochs"] == twin["epochs"] == 2

    store = RunStore(tmp_path / "ray")
    sweep_id = lines[-1]["summary"]["sweep_id"]
    trials = store.trials(sweep_id)
    assert {r.id for r in trials} == {t["run_id"] for t in lines[:-1]}
    for record in trials:  # ordinary runs: epochs, info, the saved model and recipe, the evaluation
        assert record.status == "finished" and record.info and len(store.epochs(record.id)) == 2
        assert Path(record.model_path).is_file() and Path(record.model_path).parent == store.run_dir(record.id)
        assert store.get(record.id).evaluation


def test_a_trial_whose_ray_worker_is_killed_fails_with_the_reason_and_the_sweep_completes(tmp_path, ray_cluster):
    address, env, cluster = ray_cluster
    long = {
        **BASE,
        "data": {"source": "builtin", "name": "spiral", "n": 2000},
        "train": {**BASE["train"], "epochs": 2000, "batch_size": 8},
    }
    sweep = {"base": long, "grid": {"train.epochs": [2, 2000]}}
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(sweep))
    store_dir = tmp_path / "store"
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kfcore",
            "sweep",
            str(path),
            "--store",
            str(store_dir),
            "--backend",
            "ray",
            "--address",
            address,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:

        def long_trains_short_ended():
            if not (store_dir / "runs.sqlite").exists():
                return None
            store = RunStore(store_dir, recover=False)
            runs = {r.spec["train"]["epochs"]: r for r in store.list_runs()}
            if 2 not in runs or not runs[2].is_final or 2000 not in runs or not store.epochs(runs[2000].id):
                return None
            return runs[2000]

        victim = wait_for(long_trains_short_ended, 240, "the long trial training after the short one ended")
        workers = [pid for pid, cmd in cluster.processes().items() if cmd.startswith("ray::ImplicitFunc")]
        assert workers, cluster.processes()
        os.kill(busiest(workers), signal.SIGKILL)  # the long trial's Ray worker, mid-trial (the short one's idles)
        out, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, err[-3000:]
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-1]["summary"]["trials"] == 2 and lines[-1]["summary"]["finished"] == 1
    failed = RunStore(store_dir).get(victim.id)
    assert failed.status == "failed" and failed.error == WORKER_DIED
    assert time.time() - failed.finished < 300
