"""The run store: lifecycle, epochs, cancel, recovery of dead workers, concurrent access."""

import multiprocessing as mp
import os
import subprocess
import sys
import time

from kfcore.store import RunStore

SPEC = {"data": {"source": "builtin", "name": "iris"}}


def test_run_lifecycle_is_recorded(store_dir):
    store = RunStore(store_dir)
    rid = store.create_run(SPEC, name="first")
    assert store.get(rid).status == "queued"
    claimed = store.claim_next(pid=12345)
    assert claimed.id == rid and claimed.status == "running"
    store.append_epoch(rid, 1, {"loss": 1.0, "accuracy": 0.5})
    store.append_epoch(rid, 2, {"loss": 0.5, "accuracy": 0.8})
    store.finish(rid, {"loss": 0.4, "accuracy": 0.9}, {"accuracy": 0.9}, "/tmp/m.keras")
    r = store.get(rid)
    assert r.status == "finished" and r.test["accuracy"] == 0.9 and r.evaluation == {"accuracy": 0.9}
    assert [e["loss"] for e in store.epochs(rid)] == [1.0, 0.5]
    assert store.claim_next(pid=1) is None


def test_store_is_reopened_with_its_runs(store_dir):
    rid = RunStore(store_dir).create_run(SPEC)
    assert [r.id for r in RunStore(store_dir).list_runs()] == [rid]


def test_queue_is_first_in_first_out(store_dir):
    store = RunStore(store_dir)
    ids = [store.create_run(SPEC) for _ in range(3)]
    assert [store.claim_next(pid=1).id for _ in range(3)] == ids


def test_cancel_queued_is_immediate_and_running_sets_a_flag(store_dir):
    store = RunStore(store_dir)
    a, b = store.create_run(SPEC), store.create_run(SPEC)
    assert store.request_cancel(b) == "cancelled" and store.get(b).status == "cancelled"
    store.claim_next(pid=1)
    assert not store.cancel_requested(a)
    store.request_cancel(a)
    assert store.cancel_requested(a) and store.get(a).status == "running"


def test_running_run_of_a_dead_process_is_failed_on_next_open(store_dir):
    store = RunStore(store_dir)
    rid = store.create_run(SPEC)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.claim_next(pid=dead.pid)
    r = RunStore(store_dir).get(rid)
    assert r.status == "failed" and "stopped unexpectedly" in r.error


def test_running_run_of_a_live_process_is_left_alone(store_dir):
    store = RunStore(store_dir)
    rid = store.create_run(SPEC)
    store.claim_next(pid=os.getpid())
    assert RunStore(store_dir).get(rid).status == "running"


def test_running_run_of_a_zombie_worker_is_failed_on_next_open(store_dir):
    store = RunStore(store_dir)
    rid = store.create_run(SPEC)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    store.claim_next(pid=child.pid)  # claimed while alive, then it dies and nobody reaps it yet
    child.kill()
    deadline = time.monotonic() + 10
    while open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        r = RunStore(store_dir).get(rid)
        assert r.status == "failed" and r.error.startswith("interrupted")
    finally:
        child.wait()


def test_a_pid_now_used_by_another_process_does_not_keep_a_run_running(store_dir):
    """After a restart (a container counts pids from 1 again) the dead worker's pid can belong to someone else."""
    store = RunStore(store_dir)
    mine, theirs = store.create_run(SPEC), store.create_run(SPEC)
    store.claim_next(pid=os.getpid())  # this process, as it is: alive
    store.claim_next(pid=os.getpid())
    with store._connect() as con:  # the second claim was made by an earlier process that had this pid
        con.execute("UPDATE runs SET proc_start='another-boot:12' WHERE id=?", (theirs,))
    reopened = RunStore(store_dir)
    assert reopened.get(mine).status == "running"
    assert reopened.get(theirs).status == "failed" and reopened.get(theirs).error.startswith("interrupted")


def test_a_store_made_before_the_process_identity_column_opens_and_recovers(store_dir):
    import sqlite3

    store = RunStore(store_dir)
    rid = store.create_run(SPEC)
    store.claim_next(pid=os.getpid())
    store.close()
    with sqlite3.connect(store_dir / "runs.sqlite") as con:
        con.execute("ALTER TABLE runs DROP COLUMN proc_start")
    reopened = RunStore(store_dir)
    assert reopened.get(rid).status == "running"  # no identity recorded: the pid alone decides, and it is alive
    assert reopened.claim_next(pid=os.getpid()) is None


def test_rename_and_delete(store_dir):
    store = RunStore(store_dir)
    rid = store.create_run(SPEC)
    store.model_file(rid).write_bytes(b"x")
    store.rename(rid, "better name")
    assert store.get(rid).name == "better name"
    store.delete(rid)
    assert store.get(rid) is None and not store.run_dir(rid).exists()


def _hammer(root, n):
    store = RunStore(root, recover=False)
    for i in range(n):
        rid = store.create_run(SPEC)
        store.append_epoch(rid, 1, {"loss": float(i)})
        store.set_progress(rid, {"step": i})
        store.list_runs()
        store.claim_next(pid=1)


def test_many_processes_writing_at_once_never_see_database_locked(store_dir):
    RunStore(store_dir)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(str(store_dir), 40)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 6
    assert len(RunStore(store_dir).list_runs()) == 240
