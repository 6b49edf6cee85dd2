"""Runs on a real Ray cluster (a head node and a second node on this machine, tests/raycluster.py): epochs and the
model reach the store through the relay, the same spec scores as on the local pool, commands reach a live run, a
killed Ray worker fails its run with the reason while the queue goes on, uploads travel under the access rules."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kfcore.runs.executors import RayExecutor, RaySettings
from kfcore.runs.jobs import JobManager, continue_run, saved_state
from kfcore.runs.store import RunStore
from kfcore.spec import parse_spec
from tests.raycluster import ray_cluster
from tests.unit.helpers import wait_for

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="ray is not installed: pip install -r requirements.txt (it lists ray)",
)


def _spec(epochs=6, data=None, batch=16):
    return parse_spec(
        {
            "data": data or {"source": "builtin", "name": "iris"},
            "split": {"test": 0.2, "validation": 0.2, "seed": 0},
            "layers": [{"type": "Dense", "units": 8, "activation": "tanh"}],
            "train": {"optimizer": "adam", "learning_rate": 0.02, "epochs": epochs, "batch_size": batch, "seed": 3},
        }
    )


def _long_spec():  # hundreds of epochs: it is still training when the test acts on it
    return _spec(epochs=400, data={"source": "builtin", "name": "digits"}, batch=8)


def _final(store, run_id, timeout=150.0):
    return wait_for(lambda: (r := store.get(run_id)) is not None and r.is_final and r, timeout, f"run {run_id} to end")


@pytest.fixture(scope="module")
def cluster():
    with ray_cluster(head_cpus=2, node_cpus=1) as c:
        yield c


@pytest.fixture
def on_ray(cluster, tmp_path):
    """(store, make): make(**options) is a RayExecutor on the cluster for this test's store; all shut down after."""
    store = RunStore(tmp_path / "store")
    made = []

    def make(**options):
        made.append(RayExecutor(store, RaySettings(cluster.address), **options))
        return made[-1]

    yield store, make
    for executor in made:
        executor.shutdown()


def _open_files(pid):
    return [os.readlink(f) for f in Path(f"/proc/{pid}/fd").iterdir() if f.is_symlink()]


def test_a_run_on_ray_stores_its_epochs_and_model_and_scores_as_on_the_local_pool(on_ray, tmp_path):
    import ray

    store, make = on_ray
    local = RunStore(tmp_path / "local")
    pool = JobManager(local, max_concurrent=1, prestart=False)
    try:  # both at once: the pool's worker imports TensorFlow while the Ray actor does
        local_id = pool.submit(_spec(), name="on the pool")
        run_id = make().submit(_spec(), name="on ray")
        local_record = _final(local, local_id)
    finally:
        pool.shutdown()
    assert local_record.status == "finished", local_record.error
    assert sum(n["Alive"] for n in ray.nodes()) == 2  # the cluster really has its second node
    record = _final(store, run_id)
    assert record.status == "finished", record.error
    assert [e["epoch"] for e in store.epochs(run_id)] == [1, 2, 3, 4, 5, 6]
    assert record.hardware["ray"]["pid"] != os.getpid()  # trained in a Ray worker, not here
    folder = store.run_dir(run_id)
    assert record.model_path == str(folder / "model.keras") and Path(record.model_path).stat().st_size > 0
    assert json.loads((folder / "recipe.json").read_text())  # the saved model's files came back with it
    assert record.test == pytest.approx(local_record.test, rel=1e-6, abs=1e-7)
    ours, theirs = np.load(folder / "predictions.npz"), np.load(local.run_dir(local_id) / "predictions.npz")
    np.testing.assert_allclose(ours["outputs"], theirs["outputs"], rtol=1e-5, atol=1e-6)


def test_the_cluster_holds_as_many_runs_at_once_as_its_cpus_allow_over_each_runs_share(on_ray, cluster):
    store, _ = on_ray
    made = []

    def capacity(max_concurrent=None, **resources):
        made.append(RayExecutor(store, RaySettings(cluster.address, **resources), False, max_concurrent))
        return made[-1].capacity()

    try:
        # Two nodes, 2 + 1 CPUs: a sweep from the page keeps three trials in flight, not this server's one.
        assert capacity() == 3
        assert capacity(num_cpus=2) == 1 and capacity(num_cpus=0.5) == 6 and capacity(2, num_cpus=0.5) == 2
        # No GPU on this cluster: runs that each reserve a quarter of one still get one slot, never none.
        assert capacity(num_gpus=0.25) == 1
    finally:
        for executor in reversed(made):  # the first may have connected this process to Ray: it goes last
            executor.shutdown()


def test_pause_step_learning_rate_and_cancel_reach_a_run_on_ray(on_ray):
    store, make = on_ray
    executor = make()
    run_id = executor.submit(_long_spec())
    wait_for(lambda: store.get(run_id).status == "running", 120, "the run to start")
    store.send_command(run_id, "pause")
    wait_for(lambda: store.get(run_id).paused is not None, 120, "the run to pause")
    pid = store.get(run_id).hardware["ray"]["pid"]
    assert not [f for f in _open_files(pid) if "runs.sqlite" in f]  # the Ray side never opens the store
    done = len(store.epochs(run_id))
    time.sleep(1.0)  # paused: nothing trains meanwhile
    assert len(store.epochs(run_id)) == done
    store.send_command(run_id, "learning_rate", 0.001)
    store.send_command(run_id, "step")
    wait_for(lambda: len(store.epochs(run_id)) == done + 1, 60, "the stepped epoch")
    assert store.epochs(run_id)[-1].get("lr_changed") is True
    assert store.get(run_id).paused is not None  # still paused after its one step
    assert executor.cancel(run_id) == "running"
    record = _final(store, run_id, 60)
    assert record.status == "cancelled"
    assert len(store.epochs(run_id)) == done + 1
    # The state the stopped run saved came back from the cluster, so it can be continued as on the local pool.
    assert saved_state(store, record) == store.run_dir(run_id) / "model.keras"
    child = _final(store, continue_run(store, run_id, 2, owner=record.owner))
    assert child.status == "finished", child.error


def test_a_killed_ray_worker_fails_its_run_and_the_queue_goes_on(on_ray):
    store, make = on_ray
    executor = make(max_concurrent=1)
    doomed = executor.submit(_long_spec(), name="doomed")
    queued = executor.submit(_spec(), name="queued behind it")
    wait_for(lambda: store.epochs(doomed), 120, "the first run's first epoch")
    assert store.get(queued).status == "queued"
    os.kill(store.get(doomed).hardware["ray"]["pid"], signal.SIGKILL)
    record = _final(store, doomed, 60)
    assert record.status == "failed"
    assert record.error.startswith("the Ray worker running it died: ")
    after = _final(store, queued)
    assert after.status == "finished", after.error
    assert len(store.epochs(queued)) == 6


def test_an_upload_travels_to_ray_and_another_browsers_upload_is_refused(on_ray, monkeypatch):
    monkeypatch.setenv("KF_HOSTED", "1")
    store, make = on_ray
    ref = "0123456789abcdef/points.csv"
    path = store.uploads_dir / ref
    path.parent.mkdir(parents=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 2))
    rows = [f"{a:.4f},{b:.4f},{int(a + b > 0)}" for a, b in x]
    path.write_text("a,b,y\n" + "\n".join(rows) + "\n")
    store.add_upload("owner-a", ref, "points.csv")
    spec = _spec(epochs=3, data={"source": "csv", "path": ref, "target": "y"})
    executor = make()
    mine = executor.submit(spec, owner="owner-a")
    theirs = executor.submit(spec, owner="owner-b")
    refused = _final(store, theirs)
    assert refused.status == "failed" and "uploaded from another browser" in refused.error
    assert not store.epochs(theirs)
    record = _final(store, mine)
    assert record.status == "finished", record.error
    assert record.info["n_train"] + record.info["n_val"] + record.info["n_test"] == 80


def test_the_cli_trains_on_the_cluster_by_address_and_prints_each_epoch(cluster, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(_spec(epochs=3).to_json())
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "kfcore",
            "train",
            str(spec),
            "--address",
            cluster.address,
            "--store",
            str(tmp_path / "store"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=Path(__file__).parents[2],
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["epoch"] for line in lines[:-1]] == [1, 2, 3] and lines[-1]["event"] == "done"
    record = RunStore(tmp_path / "store").get(lines[-1]["run_id"])
    assert record.status == "finished" and record.hardware["ray"]["node"]  # trained by a Ray actor
    assert lines[-1]["test"] == record.test and Path(lines[-1]["model"]).is_file()
