"""Worker processes: submit returns at once, runs train outside this process, queue, cancel, crash recovery."""

import os
import signal
import time
from pathlib import Path

import pytest

from kfcore.runs import jobs
from kfcore.runs.jobs import JobManager
from kfcore.runs.store import RunStore
from kfcore.spec import parse_spec
from tests.unit.helpers import wait_for

TINY = {
    "data": {"source": "builtin", "name": "iris"},
    "layers": [{"type": "Dense", "units": 8}],
    "train": {"epochs": 3, "batch_size": 16, "learning_rate": 0.01},
}
LONG = {
    "data": {"source": "builtin", "name": "digits"},
    "layers": [{"type": "Dense", "units": 128}],
    "train": {"epochs": 1000, "batch_size": 8},
}


@pytest.fixture
def manager(store_dir):
    m = JobManager(RunStore(store_dir), max_concurrent=1, prestart=True)
    yield m
    m.shutdown()


def test_submit_returns_at_once_and_a_worker_trains_the_run(manager):
    t0 = time.perf_counter()
    rid = manager.submit(parse_spec(TINY), name="tiny")
    assert time.perf_counter() - t0 < 0.5
    record = wait_for(lambda: (r := manager.store.get(rid)).is_final and r)
    assert record.status == "finished", record.error
    assert len(manager.store.epochs(rid)) == 3 and record.pid != os.getpid()
    assert record.hardware["device"] and record.info["params"] > 0
    assert os.path.exists(record.model_path)


def test_queue_runs_one_at_a_time_under_cap_and_cancel_works_for_queued_and_running(manager):
    store = manager.store
    long_id = manager.submit(parse_spec(LONG))
    queued_id = manager.submit(parse_spec(TINY))
    wait_for(lambda: store.get(long_id).status == "running" and store.epochs(long_id))
    assert store.get(queued_id).status == "queued"
    assert manager.cancel(queued_id) == "cancelled"
    t0 = time.monotonic()
    manager.cancel(long_id)
    wait_for(lambda: store.get(long_id).is_final, timeout=10)
    assert store.get(long_id).status == "cancelled" and time.monotonic() - t0 < 3
    next_id = manager.submit(parse_spec(TINY))
    assert wait_for(lambda: (r := store.get(next_id)).is_final and r).status == "finished"


def test_killed_worker_fails_its_run_and_the_next_run_works(manager, monkeypatch):
    monkeypatch.setattr(jobs, "oom_kills", lambda: 0)  # the cgroup says: no OOM kill, someone else killed it
    store = manager.store
    rid = manager.submit(parse_spec(LONG))
    record = wait_for(lambda: (r := store.get(rid)).status == "running" and store.epochs(rid) and r)
    os.kill(record.pid, signal.SIGKILL)
    failed = wait_for(lambda: (r := store.get(rid)).is_final and r, timeout=10)
    assert failed.status == "failed" and "stopped unexpectedly" in failed.error
    next_id = manager.submit(parse_spec(TINY))
    assert wait_for(lambda: (r := store.get(next_id)).is_final and r).status == "finished"


@pytest.mark.parametrize("counter", ["rises", "unreadable"])
def test_a_worker_killed_for_memory_leaves_its_run_failed_with_ran_out_of_memory(manager, monkeypatch, counter):
    """The kernel's OOM killer sends SIGKILL; the cgroup's oom_kill counter rises (or cannot be read: SIGKILL of a
    worker is then most likely that). The run must say so and what to do, not 'interrupted … restarted'."""
    kills = [0]
    monkeypatch.setattr(jobs, "oom_kills", lambda: kills[0] if counter == "rises" else None)
    store = manager.store
    rid = manager.submit(parse_spec(LONG))
    record = wait_for(lambda: (r := store.get(rid)).status == "running" and store.epochs(rid) and r)
    kills[0] += 1
    os.kill(record.pid, signal.SIGKILL)
    failed = wait_for(lambda: (r := store.get(rid)).is_final and r, timeout=10)
    assert failed.status == "failed" and failed.error == jobs.OUT_OF_MEMORY
    assert failed.error.startswith("ran out of memory: ") and "smaller batch size" in failed.error
    assert store.epochs(rid)  # what it trained is kept


def test_a_training_renews_its_lease_from_a_thread(store_dir, monkeypatch):
    """Even while the training thread is busy (here: asleep, as in a long compile or step) the lease is renewed."""
    monkeypatch.setattr(jobs, "HEARTBEAT_S", 0.05)
    store = RunStore(store_dir)
    rid = store.create_run(TINY)
    store.claim_next(pid=os.getpid())

    def lease() -> float:
        with store._connect() as con:
            return con.execute("SELECT heartbeat FROM runs WHERE id=?", (rid,)).fetchone()[0]

    first = lease()
    with jobs._leased(store, rid):
        wait_for(lambda: lease() > first, timeout=5, what="the lease to be renewed")
    renewed = lease()
    time.sleep(0.2)  # stopped with the run: no renewal after it
    assert lease() == renewed


def test_failed_spec_in_a_worker_is_recorded_with_its_reason(manager):
    rid = manager.submit(parse_spec({**TINY, "layers": [{"type": "Conv2D"}]}))
    record = wait_for(lambda: (r := manager.store.get(rid)).is_final and r)
    assert record.status == "failed" and "Conv2D" in record.error


def test_predictor_answers_from_a_saved_model_in_another_process(manager, tmp_path):
    import numpy as np

    from kfcore.runs.jobs import PredictError, Predictor

    rid = manager.submit(parse_spec(TINY))
    record = wait_for(lambda: (r := manager.store.get(rid)).is_final and r)
    predictor = Predictor()
    try:
        probs = predictor.predict(record.model_path, np.zeros((2, 4), dtype=np.float32))
        assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
        with pytest.raises(PredictError, match="could not predict"):
            predictor.predict(record.model_path, np.zeros((1, 7), dtype=np.float32))
        with pytest.raises(PredictError, match="no saved model"):
            predictor.predict(str(tmp_path / "missing.keras"), np.zeros((1, 4)))
    finally:
        predictor.shutdown()


@pytest.fixture
def small_memory_cgroup(tmp_path):
    """A child of this process's cgroup (v1 memory controller) holding 48 MB; skipped where one cannot be made."""
    lines = [ln.split(":", 2) for ln in Path("/proc/self/cgroup").read_text().splitlines()]
    mine = next((Path("/sys/fs/cgroup/memory", p.lstrip("/")) for _, c, p in lines if "memory" in c.split(",")), None)
    if mine is None or not (mine / "memory.oom_control").exists():
        pytest.skip("no cgroup v1 memory controller here to make a small-memory cgroup in")
    cgroup = mine / f"kf-oom-test-{os.getpid()}"
    try:
        cgroup.mkdir()
        (cgroup / "memory.limit_in_bytes").write_text(str(48 * 2**20))
    except OSError as e:
        pytest.skip(f"cannot make a memory cgroup to run out of memory in: {e}")
    yield cgroup
    wait_for(lambda: not (cgroup / "cgroup.procs").read_text().strip(), timeout=30, what="the cgroup to empty")
    cgroup.rmdir()


BIG = {
    "data": {"source": "builtin", "name": "digits"},
    "layers": [{"type": "Dense", "units": 2048}, {"type": "Dense", "units": 2048}],
    "train": {"epochs": 1000, "batch_size": 64},
}


def test_a_worker_really_killed_by_the_oom_killer_leaves_ran_out_of_memory(manager, small_memory_cgroup):
    """The kernel itself, not a test: the warm worker is moved into a 48 MB cgroup and its next run needs more."""
    store = manager.store
    warm = manager.submit(parse_spec(TINY))
    record = wait_for(lambda: (r := store.get(warm)).is_final and r)  # TensorFlow loaded, charged outside the cgroup
    (small_memory_cgroup / "cgroup.procs").write_text(str(record.pid))
    rid = manager.submit(parse_spec(BIG))
    failed = wait_for(lambda: (r := store.get(rid)).is_final and r, timeout=60)
    assert failed.pid == record.pid and failed.status == "failed" and failed.error == jobs.OUT_OF_MEMORY, failed.error
    assert (small_memory_cgroup / "memory.oom_control").read_text().split()[-1] != "0"


def test_an_outcome_stored_while_the_run_trained_stands_over_the_trainers(store_dir):
    """Recovery failed the run (its lease lapsed) while its worker still trained: the worker's finish is refused,
    the run keeps the stored failure, and execute_run returns that outcome, not the trainer's."""
    store = RunStore(store_dir)
    rid = store.create_run(TINY)
    store.start_in_process(rid)

    def on_event(event):
        if event["event"] == "epoch" and event["epoch"] == 1:
            assert store.fail(rid, "interrupted: recovered")

    result = jobs.execute_run(store, rid, on_event=on_event)
    record = store.get(rid)
    assert record.status == "failed" and record.error == "interrupted: recovered" and record.test == {}
    assert result.status == "failed" and result.error == "interrupted: recovered"


def test_workers_train_at_a_lower_priority_than_the_server(manager):
    """The web server keeps the CPU it needs while runs train: workers run nicer than it."""
    rid = manager.submit(parse_spec(TINY), name="tiny")
    record = wait_for(lambda: (r := manager.store.get(rid)).is_final and r)
    assert record.status == "finished"
    pids = manager.worker_pids()
    assert pids
    for pid in pids:
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(
            19, os.getpriority(os.PRIO_PROCESS, 0) + jobs.WORKER_NICENESS
        )
