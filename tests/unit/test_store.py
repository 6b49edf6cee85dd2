"""The run store: lifecycle, epochs, cancel, recovery of dead workers, leases, concurrent access, a full disk."""

import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from kfcore.runs.store import LEASE_S, RunStore, StoreFullError
from tests.unit.helpers import fill, small_disk

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


# -- leases: recovery whatever the hostname, the concurrency cap --------------------------------------


def _set(store, run_id, **values):
    with store._connect() as con:
        con.execute(f"UPDATE runs SET {', '.join(f'{k}=?' for k in values)} WHERE id=?", (*values.values(), run_id))


def test_a_run_of_another_host_is_recovered_once_its_lease_lapses(store_dir):
    """A container recreated on the same volume has another hostname: its old runs must not stay 'running'."""
    store = RunStore(store_dir)
    live, lapsed, before_leases = (store.create_run(SPEC) for _ in range(3))
    for rid in (live, lapsed, before_leases):
        store.claim_next(pid=os.getpid())
        _set(store, rid, host="old-container")
    _set(store, lapsed, heartbeat=time.time() - 1)
    _set(store, before_leases, heartbeat=None)  # claimed by a version without leases
    reopened = RunStore(store_dir)
    assert reopened.get(live).status == "running"  # its worker, elsewhere, still renews it
    for rid in (lapsed, before_leases):
        assert reopened.get(rid).status == "failed" and reopened.get(rid).error.startswith("interrupted: ")
    assert reopened.active_count() == 1


def test_a_live_worker_here_keeps_its_run_even_when_its_lease_lapsed(store_dir):
    """A full disk stops renewals: the worker is alive here, so its run is not blamed on a crash."""
    store = RunStore(store_dir)
    rid = store.create_run(SPEC)
    store.claim_next(pid=os.getpid())
    _set(store, rid, heartbeat=time.time() - 60)
    assert RunStore(store_dir).get(rid).status == "running"


def test_claim_respects_the_cap_counting_live_leases(store_dir):
    """A worker of a killed server still training holds its slot: a restarted server does not start another."""
    store = RunStore(store_dir)
    orphan, waiting = store.create_run(SPEC), store.create_run(SPEC)
    store.claim_next(pid=os.getpid())
    assert store.claim_next(pid=os.getpid(), max_running=1) is None
    assert store.get(waiting).status == "queued"
    assert store.claim_next(pid=os.getpid(), max_running=2).id == waiting  # under a higher cap it starts
    _set(store, waiting, status="queued")
    _set(store, orphan, heartbeat=time.time() - 1)  # the orphan stopped renewing: its slot is free
    assert store.claim_next(pid=os.getpid(), max_running=1).id == waiting


def test_renewing_extends_the_lease_of_a_running_run_only(store_dir):
    store = RunStore(store_dir)
    rid, queued = store.create_run(SPEC), store.create_run(SPEC)
    store.claim_next(pid=os.getpid())
    _set(store, rid, heartbeat=1.0)
    store.renew_lease(rid)
    store.renew_lease(queued)
    with store._connect() as con:
        leases = dict(con.execute("SELECT id, heartbeat FROM runs").fetchall())
    assert leases[rid] > time.time() + LEASE_S - 5 and leases[queued] is None


# -- a full disk ------------------------------------------------------------------------------------


def _intact(store, runs, epochs):
    """Every run and epoch stored before the disk filled reads back the same, and SQLite finds no damage."""
    assert {r.id: (r.name, r.status, r.test) for r in store.list_runs() if r.id in runs} == runs
    assert {rid: store.epochs(rid) for rid in epochs} == epochs
    with sqlite3.connect(store.db_path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _some_history(store):
    rid = store.create_run(SPEC, name="kept")
    store.claim_next(pid=os.getpid())
    for epoch in (1, 2, 3):
        store.append_epoch(rid, epoch, {"loss": 1.0 / epoch})
    store.finish(rid, {"accuracy": 0.9}, {"accuracy": 0.9}, None)
    return {rid: ("kept", "finished", {"accuracy": 0.9})}, {rid: store.epochs(rid)}


def test_a_full_database_says_so_and_loses_nothing(store_dir):
    store = RunStore(store_dir)
    runs, epochs = _some_history(store)
    with store._connect() as con:  # this connection may not grow the file: SQLite's own "database or disk is full"
        con.execute("PRAGMA max_page_count=1")
    with pytest.raises(StoreFullError) as raised:
        for i in range(10_000):
            store.create_run({**SPEC, "padding": "x" * 500}, name=f"more {i}")
    assert str(raised.value) == (
        "the disk under KF_HOME is full: free some space (delete old runs on the Runs page, or files in the KF_HOME "
        "folder) and try again"
    )
    _intact(store, runs, epochs)
    store.close()  # space is back (a new connection has no page limit): writing works again
    assert store.get(store.create_run(SPEC)).status == "queued"


def test_a_real_full_disk_under_kf_home(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        store = RunStore(disk / "kf")
        runs, epochs = _some_history(store)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        crashed = store.create_run(SPEC, name="its worker died")
        store.claim_next(pid=dead.pid)
        filler = fill(disk)
        with pytest.raises(StoreFullError, match=r"^the disk under KF_HOME is full: free some space"):
            for i in range(10_000):  # the log may still have room for a few writes
                store.create_run({**SPEC, "padding": "x" * 500}, name=f"more {i}")
        assert RunStore(disk / "kf").get(crashed).status == "running"  # recovery cannot write yet: later, not a crash
        _intact(store, runs, epochs)
        filler.unlink()
        assert RunStore(disk / "kf").get(crashed).status == "failed"
        assert store.get(store.create_run(SPEC)).status == "queued"
        _intact(store, runs, epochs)
        store.close()


def test_deleting_a_run_on_a_full_disk_frees_its_files_first_and_succeeds(tmp_path):
    """Deleting old runs is what the full-disk message advises: it must work when even the log cannot grow."""
    with small_disk(tmp_path / "disk") as disk:
        store = RunStore(disk / "kf")
        runs, epochs = _some_history(store)
        old = store.create_run(SPEC, name="old")
        store.model_file(old).write_bytes(os.urandom(256 * 1024))
        fill(disk)
        with pytest.raises(StoreFullError):
            for i in range(10_000):
                store.create_run({**SPEC, "padding": "x" * 500}, name=f"more {i}")
        store.delete(old)
        assert store.get(old) is None and not store.run_dir(old).exists()
        _intact(store, runs, epochs)
        store.close()


# -- the status state machine: queued -> running -> finished | failed | cancelled, and queued -> cancelled --------


def _at(store, status):
    """A run in `status`, reached along the allowed transitions."""
    rid = store.create_run(SPEC)
    if status == "queued":
        return rid
    if status == "cancelled":
        assert store.mark_cancelled(rid)
        return rid
    assert store.start_in_process(rid)
    if status == "finished":
        assert store.finish(rid, {"accuracy": 0.9}, {}, None)
    elif status == "failed":
        assert store.fail(rid, "first outcome")
    return rid


MOVES = {
    "start_in_process": lambda s, rid: s.start_in_process(rid),
    "claim_next": lambda s, rid: s.claim_next(pid=os.getpid()) is not None,
    "finish": lambda s, rid: s.finish(rid, {"accuracy": 0.1}, {"late": True}, "/late.keras"),
    "fail": lambda s, rid: s.fail(rid, "late"),
    "mark_cancelled": lambda s, rid: s.mark_cancelled(rid),
    # it returns the run's status after the call: "cancelled" is a move only from queued
    "request_cancel": lambda s, rid: (s.get(rid).status, s.request_cancel(rid)) == ("queued", "cancelled"),
}
# (from, move) -> the status it leaves; a pair not listed is refused and changes nothing.
ALLOWED = {
    ("queued", "start_in_process"): "running",
    ("queued", "claim_next"): "running",
    ("queued", "mark_cancelled"): "cancelled",
    ("queued", "request_cancel"): "cancelled",
    ("running", "finish"): "finished",
    ("running", "fail"): "failed",
    ("running", "mark_cancelled"): "cancelled",
}


@pytest.mark.parametrize("status", ["queued", "running", "finished", "failed", "cancelled"])
@pytest.mark.parametrize("move", list(MOVES))
def test_a_status_moves_only_along_the_allowed_transitions(store_dir, status, move):
    store = RunStore(store_dir)
    rid = _at(store, status)
    before = store.get(rid)
    moved = MOVES[move](store, rid)
    after = store.get(rid)
    expected = ALLOWED.get((status, move))
    assert moved == (expected is not None)
    assert after.status == (expected or status)
    if (status, move) == ("running", "request_cancel"):  # no move: it asks the worker to stop (a flag)
        assert after.cancel_requested and not before.cancel_requested
    elif expected is None:  # refused: not one column of the run changed
        assert after == before


def test_a_move_to_no_status_is_a_clear_error(store_dir):
    store = RunStore(store_dir)
    rid = store.create_run(SPEC)
    with pytest.raises(ValueError, match="only through _move"):
        store._update(rid, status="finished")
    with store._connect() as con, pytest.raises(ValueError, match="no run moves to the status 'queued'"):
        store._move(con, rid, "queued")
    assert store.get(rid).status == "queued"


def test_a_run_cancelled_while_it_finishes_keeps_the_outcome_stored_first(store_dir):
    """Two writers (own connections) store an outcome for the same running runs at once, from opposite ends of
    the list: exactly one wins each run, which holds that one's outcome whole (a cancelled run never gets the
    finisher's metrics). Where they meet depends on scheduling; what each run holds must not."""
    store = RunStore(store_dir)
    ids = [store.create_run(SPEC) for _ in range(200)]
    for rid in ids:
        store.start_in_process(rid)
    start = threading.Barrier(2)
    results = {}

    def finisher():
        writer = RunStore(store_dir, recover=False)
        start.wait()
        results["finish"] = [writer.finish(rid, {"accuracy": 0.9}, {"accuracy": 0.9}, "/m") for rid in ids]

    def canceller():
        writer = RunStore(store_dir, recover=False)
        start.wait()
        results["cancel"] = [writer.mark_cancelled(rid) for rid in reversed(ids)][::-1]

    threads = [threading.Thread(target=finisher), threading.Thread(target=canceller)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for rid, finished, cancelled in zip(ids, results["finish"], results["cancel"], strict=True):
        record = store.get(rid)
        assert finished != cancelled, "exactly one outcome is stored"
        if finished:
            assert record.status == "finished" and record.test == {"accuracy": 0.9} and record.model_path == "/m"
        else:
            assert record.status == "cancelled" and record.test == {} and record.model_path is None


def test_recovery_leaves_a_run_whose_worker_stored_its_outcome_meanwhile(store_dir, monkeypatch):
    store = RunStore(store_dir)
    rid = store.create_run(SPEC)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.claim_next(pid=dead.pid)
    real_fail = store.fail

    def finished_first(run_id, reason):  # the worker's finish lands between recovery's read and its write
        store.finish(run_id, {"accuracy": 0.9}, {}, None)
        return real_fail(run_id, reason)

    monkeypatch.setattr(store, "fail", finished_first)
    assert store.recover() == []
    assert store.get(rid).status == "finished" and store.get(rid).error is None
