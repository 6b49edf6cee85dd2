"""Faults: whatever spec JSON the CLI gets, it trains or refuses in one line; a server killed mid-run leaves the run
marked interrupted and the store intact; many readers and writers beside a training never see "database is locked";
a server killed alone leaves a worker that stops by itself within a second, and the cap holds across the restart;
a full disk under KF_HOME is said as such (CLI, worker) and loses nothing stored.

(NaN loss: test_train.py; a model over the memory budget: test_limits.py; a worker killed mid-run or by the OOM
killer: test_jobs.py; leases and a full database: test_store.py; a full disk in the app: tests/app/test_full_disk.py.
The CLI cases of the first two are repeated here, in process, because they are cheap once TensorFlow is loaded.)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kfcore.__main__ import main
from kfcore.runs import jobs
from kfcore.runs.jobs import SERVER_GONE, JobManager, execute_run
from kfcore.runs.store import RunStore
from kfcore.spec import ACTIVATIONS, OPTIMIZERS, SCHEDULES, parse_spec
from tests.unit.helpers import FullDiskConnection, fill, small_disk, wait_for

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
TINY = {
    "data": {"source": "builtin", "name": "iris"},
    "layers": [{"type": "Dense", "units": 8}],
    "train": {"epochs": 3, "batch_size": 16, "learning_rate": 0.01},
}
LONG = {
    "data": {"source": "builtin", "name": "digits"},
    "layers": [{"type": "Dense", "units": 64}],
    "train": {"epochs": 1000, "batch_size": 8},
}


# -- (a) any spec JSON through the CLI, in process --------------------------------------------------

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 0),
    st.sampled_from([math.nan, math.inf, -1e12, 1e12, 0.5]),
    st.text(max_size=5),
    st.lists(st.integers(0, 3), max_size=2),
    st.just({}),
)
layer = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("Dense"), "units": st.integers(1, 16), "activation": st.sampled_from(ACTIVATIONS)}
    ),
    st.fixed_dictionaries({"type": st.just("Dropout"), "rate": st.floats(0, 0.5)}),
    st.fixed_dictionaries({"type": st.sampled_from(["BatchNormalization", "Flatten", "GlobalAveragePooling2D"])}),
    st.fixed_dictionaries(
        {
            "type": st.just("Conv2D"),
            "filters": st.integers(1, 4),
            "kernel_size": st.integers(1, 9),
            "padding": st.sampled_from(["valid", "same"]),
        }
    ),
    st.fixed_dictionaries({"type": st.just("MaxPooling2D"), "pool_size": st.integers(1, 3)}),
)
valid_spec = st.fixed_dictionaries(
    {
        "data": st.fixed_dictionaries(
            {"source": st.just("builtin"), "name": st.sampled_from(["iris", "circle", "digits"])}
        ),
        "split": st.fixed_dictionaries(
            {"test": st.sampled_from([0.2, 0.3]), "validation": st.sampled_from([0.0, 0.1, 0.2])}
        ),
        "layers": st.lists(layer, max_size=3),
        "train": st.fixed_dictionaries(
            {
                "optimizer": st.sampled_from(OPTIMIZERS),
                "learning_rate": st.sampled_from([0.001, 0.01, 0.1]),
                "epochs": st.integers(1, 2),
                "batch_size": st.sampled_from([16, 64]),
                "schedule": st.sampled_from(SCHEDULES),
            },
            optional={"early_stopping": st.booleans()},
        ),
    }
)
# Where one bad value goes: every section, a layer's fields, unknown keys, other sources with paths that do not exist.
FIELDS = [
    ("data", "name"),
    ("data", "source"),
    ("data", "task"),
    ("data", "path"),
    ("split", "test"),
    ("split", "validation"),
    ("split", "seed"),
    ("layers",),
    ("layers", 0),
    ("layers", 0, "type"),
    ("layers", 0, "units"),
    ("layers", 0, "kernel_size"),
    ("layers", 0, "activation"),
    ("train",),
    ("train", "optimizer"),
    ("train", "learning_rate"),
    ("train", "epochs"),
    ("train", "batch_size"),
    ("train", "schedule"),
    ("train", "patience"),
    ("output", "loss"),
    ("bogus",),
    ("data",),
]


@st.composite
def spec_text(draw) -> str:
    """Spec JSON: a valid spec (a quarter of the time: it trains, or its stack does not fit its data), the same
    with one or two fields set to junk, a whole spec of junk, or text that is not JSON."""
    kind = draw(st.sampled_from(["valid", "valid", "corrupt", "corrupt", "corrupt", "corrupt", "junk", "text"]))
    if kind == "text":
        return draw(st.text(max_size=12))
    if kind == "junk":
        return json.dumps(draw(junk))
    spec = draw(valid_spec)
    if kind == "corrupt":
        if draw(st.booleans()):
            spec["data"] = {
                "source": draw(st.sampled_from(["csv", "npz", "idx"])),
                "path": "/nonexistent/data",
                "images": "/",
                "labels": "",
                "target": "y",
            }
        for path in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=2)):
            node: object = spec
            for key in path[:-1]:
                node = node.get(key) if isinstance(node, dict) else (node[key] if node else None)
            if isinstance(node, dict):
                node[path[-1]] = draw(junk)
            elif isinstance(node, list) and node:
                node[0] = draw(junk)
    return json.dumps(spec)


@pytest.fixture(scope="module")
def cli_dirs(tmp_path_factory):
    from kfcore.training.hardware import quiet_native_stderr

    with quiet_native_stderr():  # TensorFlow raises the recursion limit as it loads: before Hypothesis starts, please
        import keras  # noqa: F401
    return tmp_path_factory.mktemp("cli_store"), tmp_path_factory.mktemp("cli_specs")


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """kfcore's CLI in this process: (exit code, stdout, stderr), its signal handlers put back afterwards."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.timeout(300)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(text=spec_text())
def test_any_spec_json_trains_or_exits_with_one_error_line(text, cli_dirs, capsys):
    store, specs = cli_dirs
    fd, path = tempfile.mkstemp(suffix=".json", dir=specs)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    code, out, err = run_main(["train", path, "--store", str(store)], capsys)
    event(f"exit {code}")
    assert code in (0, 1, 2), (code, text, err)
    assert "Traceback" not in err and "Traceback" not in out, err
    if code == 0:
        done = json.loads(out.strip().splitlines()[-1])
        assert done["event"] == "done" and done["test"], out
        return
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("error: ") and len(lines[-1]) > len("error: ") + 10, err
    assert sum(line.startswith("error:") for line in lines) == 1, err
    if code == 2:  # refused before training: the one line is all there is, and it says why
        assert len(lines) == 1, err
    else:  # the run started and failed: it says so with the reason, and the store has it as failed
        assert " failed: " in lines[-1], err
        record = RunStore(store).list_runs()[0]
        assert record.status == "failed" and record.error in lines[-1]


def test_cli_nan_loss_and_a_model_over_the_memory_budget(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "nan.json"
    spec.write_text(
        json.dumps(
            {
                "data": {"source": "builtin", "name": "diabetes"},
                "layers": [{"type": "Dense"}],
                "train": {"optimizer": "sgd", "learning_rate": 10.0, "epochs": 20},
            }
        )
    )
    code, _, err = run_main(["train", str(spec), "--store", str(tmp_path / "store")], capsys)
    assert code == 1 and err.startswith("error: run ") and "training diverged. Lower the learning rate" in err
    (record,) = RunStore(tmp_path / "store").list_runs()
    assert record.status == "failed" and record.error.startswith("the loss became ")

    monkeypatch.setenv("KF_MEMORY_BUDGET_MB", "64")
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"layers": [{"type": "Dense", "units": 8192}, {"type": "Dense", "units": 8192}]}))
    code, _, err = run_main(["train", str(big), "--store", str(tmp_path / "store")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "MB of memory, more than the 64 MB this server allows one run; use fewer units" in err
    assert len(RunStore(tmp_path / "store").list_runs()) == 1  # refused before anything was queued or trained


# -- (b) the server restarted during a run ---------------------------------------------------------

SERVER = """
import json, sys, time
from kfcore.runs.jobs import JobManager
from kfcore.spec import parse_spec
from kfcore.runs.store import RunStore
manager = JobManager(RunStore(sys.argv[1]), max_concurrent=1)
manager.submit(parse_spec(json.loads(sys.argv[2])), name="finished before the restart")
manager.submit(parse_spec(json.loads(sys.argv[3])), name="running at the restart")
while True:
    time.sleep(1)
"""


def gone(pid: int) -> bool:
    """The process no longer exists (a zombie still counts as there: the store would see it as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_server_killed_mid_run_leaves_the_run_interrupted_and_the_store_intact(store_dir, tmp_path):
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(store_dir), json.dumps(TINY), json.dumps(LONG)],
        cwd=REPO,
        env=ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        store = RunStore(store_dir, recover=False)  # a reader beside the server, as a page is
        runs = wait_for(
            lambda: len(store.list_runs()) == 2 and {r.name: r for r in store.list_runs()},
            timeout=30,
            what="the server to queue both runs",
        )
        done_id, long_id = runs["finished before the restart"].id, runs["running at the restart"].id
        wait_for(lambda: store.get(long_id).status == "running" and store.epochs(long_id), what="the long run's epochs")
        worker_pid = store.get(long_id).pid
        before = store.get(done_id)
        before_epochs = store.epochs(done_id)
        long_epochs = store.epochs(long_id)
        assert before.status == "finished" and worker_pid not in (None, server.pid)
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the server and its worker, as a crash or `kill -9` of the group
        server.wait(10)
        log.close()
    wait_for(lambda: gone(worker_pid), timeout=10, what=f"the killed worker {worker_pid} to be reaped")

    restarted = RunStore(store_dir)  # what a restarted server does first
    with sqlite3.connect(restarted.db_path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    interrupted = restarted.get(long_id)
    assert interrupted.status == "failed" and interrupted.error.startswith("interrupted: "), interrupted.error
    assert "its epochs so far are kept" in interrupted.error
    kept = restarted.epochs(long_id)
    assert len(kept) >= len(long_epochs) and kept[: len(long_epochs)] == long_epochs
    after = restarted.get(done_id)
    assert (after.status, after.test, after.evaluation) == ("finished", before.test, before.evaluation)
    assert restarted.epochs(done_id) == before_epochs and Path(after.model_path).is_file()

    manager = JobManager(restarted, max_concurrent=1)
    try:
        new_id = manager.submit(parse_spec(TINY), name="after the restart")
        record = wait_for(lambda: (r := restarted.get(new_id)).is_final and r, what="the run after the restart")
    finally:
        manager.shutdown()
    assert record.status == "finished", record.error
    assert [r.status for r in restarted.list_runs()] == ["finished", "failed", "finished"]


# -- (c) many readers and writers while a run trains -----------------------------------------------

POLLER = """
import sqlite3, sys, time
from kfcore.runs.store import RunStore
store = RunStore(sys.argv[1], recover=False)
run_id, me = sys.argv[2], sys.argv[3]
mine = store.create_run({"data": {"source": "builtin", "name": "iris"}}, name=me)
reads = writes = 0
deadline = time.monotonic() + 120
try:
    while time.monotonic() < deadline:
        runs = store.list_runs()
        record = store.get(run_id)
        store.epochs(run_id)
        store.counts()
        reads += 4
        store.rename(mine, f"{me} {writes}")
        store.set_progress(mine, {"epoch": writes})
        writes += 2
        if record.is_final:
            break
        time.sleep(0.005)  # 4 pollers at ~100 Hz each: far busier than pages (1 Hz), without starving the trainer
except sqlite3.OperationalError as e:
    print(f"OperationalError: {e}", flush=True)
    sys.exit(1)
print(reads, writes, record.status, flush=True)
"""


def test_readers_and_writers_beside_a_training_never_see_database_is_locked(store_dir):
    store = RunStore(store_dir)
    spec = {
        "data": {"source": "builtin", "name": "digits"},
        "layers": [{"type": "Dense", "units": 16}],
        "train": {"epochs": 3, "batch_size": 16},
    }
    run_id = store.create_run(spec, name="trained while polled")
    pollers = [
        subprocess.Popen(
            [sys.executable, "-c", POLLER, str(store_dir), run_id, f"poller {i}"],
            cwd=REPO,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    try:
        wait_for(lambda: len(store.list_runs()) == 5, timeout=30, what="the pollers to start")
        store.start_in_process(run_id)
        result = execute_run(store, run_id)  # the worker's own code path: progress, epochs, finish into the store
    finally:
        outputs = [p.communicate(timeout=60) for p in pollers]
    assert result.status == "finished", result.error
    for p, (out, err) in zip(pollers, outputs, strict=True):
        assert p.returncode == 0 and "OperationalError" not in out + err, out + err[-2000:]
        reads, writes, status = out.split()
        assert int(reads) > 20 and int(writes) > 10 and status == "finished"
    assert len(store.epochs(run_id)) == 3 and store.get(run_id).status == "finished"


# -- (d) only the server killed: its worker stops by itself, the cap holds across the restart ---------

LONE_SERVER = """
import json, sys, time
from kfcore.runs.jobs import JobManager
from kfcore.spec import parse_spec
from kfcore.runs.store import RunStore
manager = JobManager(RunStore(sys.argv[1]), max_concurrent=1)
manager.submit(parse_spec(json.loads(sys.argv[2])), name="orphaned")
while True:
    time.sleep(1)
"""


def test_server_killed_alone_its_worker_stops_within_seconds_and_the_cap_holds_after_restart(store_dir, tmp_path):
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [sys.executable, "-c", LONE_SERVER, str(store_dir), json.dumps(LONG)],
        cwd=REPO,
        env=ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    store = RunStore(store_dir, recover=False)
    try:
        orphan = wait_for(
            lambda: (rs := store.list_runs()) and rs[0].status == "running" and store.epochs(rs[0].id) and rs[0],
            timeout=60,
            what="the long run's epochs",
        )
        os.kill(server.pid, signal.SIGKILL)  # the server only, as `kill -9 <pid>`: its worker is orphaned mid-run
        server.wait(10)
        killed_at = time.time()
        restarted = JobManager(RunStore(store_dir), max_concurrent=1)  # the restarted server, at once
        try:
            new_id = restarted.submit(parse_spec(TINY), name="after the restart")
            running_at_once = []

            def settled():
                runs = store.list_runs()
                running_at_once.append(sum(r.status == "running" for r in runs))
                return all(r.is_final for r in runs) and runs

            wait_for(settled, timeout=120, what="both runs to end")
        finally:
            restarted.shutdown()
        wait_for(lambda: gone(orphan.pid), timeout=30, what=f"the orphaned worker {orphan.pid} to exit by itself")
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the first server, should this fail
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
    stopped = store.get(orphan.id)
    assert stopped.status == "failed" and stopped.error == SERVER_GONE and stopped.error.startswith("interrupted: ")
    assert stopped.finished - killed_at < 5, "the orphan noticed its server's death within a few seconds"
    after = store.get(new_id)
    assert after.status == "finished", after.error
    assert after.started >= stopped.finished and max(running_at_once) == 1  # never two at once under the cap of 1


# -- (e) a full disk under KF_HOME -----------------------------------------------------------------


@pytest.fixture
def full_disk(monkeypatch):
    """Make every store connection opened from now on a FullDiskConnection one; the test sets `full` when the disk fills."""
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: connect(*a, factory=FullDiskConnection, **k))
    monkeypatch.setattr(FullDiskConnection, "full", False)
    monkeypatch.setattr(FullDiskConnection, "reads_too", False)
    return FullDiskConnection


def disk_message(root) -> str:
    return (
        "the disk under KF_HOME is full: free some space (delete old runs on the Runs page, or files in the "
        "KF_HOME folder) and try again"
    )


def test_disk_full_mid_run_fails_the_run_with_that_reason_once_space_is_back(store_dir, full_disk, monkeypatch):
    """In process (runs everywhere): the disk fills after two epochs; training stops, the worker keeps trying
    to record why while its server lives, and does once space is back. Nothing stored before is lost."""
    monkeypatch.setattr(jobs, "DISK_RETRY_S", 0.01)
    store = RunStore(store_dir)
    kept = store.create_run(TINY, name="kept")
    store.start_in_process(kept)
    assert execute_run(store, kept).status == "finished"
    before = (store.get(kept), store.epochs(kept))
    rid = store.create_run(LONG, name="filled the disk")
    store.start_in_process(rid)
    retries = []

    def on_event(event):
        if event["event"] == "epoch" and event["epoch"] == 2:
            full_disk.full = True

    def server_alive():  # polled while it trains and between retries; the third time the disk is full, space is freed
        if full_disk.full:
            retries.append(1)
            full_disk.full = len(retries) < 3
        return True

    result = execute_run(store, rid, on_event=on_event, parent_alive=server_alive)
    assert result.status == "failed" and result.error == disk_message(store_dir) and len(retries) == 3
    record = store.get(rid)
    assert record.status == "failed" and record.error == disk_message(store_dir)
    assert [e["epoch"] for e in store.epochs(rid)] == [1, 2]
    assert (store.get(kept), store.epochs(kept)) == before and Path(before[0].model_path).is_file()
    with sqlite3.connect(store.db_path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_cli_on_a_full_disk_prints_one_error_line(tmp_path, full_disk, capsys):
    store_dir = tmp_path / "store"
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(TINY))
    store = RunStore(store_dir)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    crashed = store.create_run(TINY, name="its worker died")
    store.claim_next(pid=dead.pid)
    store.close()
    full_disk.full = True
    code, out, err = run_main(["runs", "--store", str(store_dir)], capsys)  # recovery cannot write: it lists anyway
    assert (code, err) == (0, "") and "its worker died" in out and "running" in out
    code, out, err = run_main(["train", str(spec), "--store", str(store_dir)], capsys)
    assert code == 2 and err == f"error: {disk_message(store_dir)}\n" and out == ""
    full_disk.reads_too = True
    for command in (["runs"], ["show", crashed], ["train", str(spec)]):
        code, out, err = run_main([*command, "--store", str(store_dir)], capsys)
        assert code == 2 and err == f"error: {disk_message(store_dir)}\n" and out == "", command
    full_disk.full = full_disk.reads_too = False
    assert RunStore(store_dir).get(crashed).status == "failed"  # recovered once a write succeeds


def test_cli_train_when_the_disk_fills_mid_run_says_so_in_its_error_line(tmp_path, full_disk, capsys, monkeypatch):
    store_dir, spec = tmp_path / "store", tmp_path / "long.json"
    spec.write_text(json.dumps({**LONG, "train": {**LONG["train"], "epochs": 50}}))
    append_epoch = RunStore.append_epoch

    def fills_after_two(self, run_id, epoch, logs):
        full_disk.full = epoch > 2
        return append_epoch(self, run_id, epoch, logs)

    monkeypatch.setattr(RunStore, "append_epoch", fills_after_two)
    code, out, err = run_main(["train", str(spec), "--store", str(store_dir)], capsys)
    assert code == 1 and "Traceback" not in err and len(err.splitlines()) == 1
    assert err.startswith("error: run ") and err.endswith(f" failed: {disk_message(store_dir)}\n"), err
    assert [json.loads(line)["epoch"] for line in out.splitlines()] == [1, 2]
    full_disk.full = False
    (record,) = RunStore(store_dir).list_runs()  # what was stored before the disk filled is all there
    assert [e["epoch"] for e in RunStore(store_dir).epochs(record.id)] == [1, 2]


def test_disk_full_under_a_worker_on_a_real_small_disk(tmp_path):
    """A real tmpfs filled to the last byte while a worker trains: the run is not blamed on a crash, it is failed
    with the disk's reason as soon as space is freed, and the worker serves the next run."""
    with small_disk(tmp_path / "disk", size="16m") as disk:
        root = disk / "kf"
        store = RunStore(root)
        manager = JobManager(store, max_concurrent=1)
        try:
            kept = manager.submit(parse_spec(TINY), name="kept")
            wait_for(lambda: store.get(kept).is_final, what="the first run")
            before = (store.get(kept), store.epochs(kept))
            rid = manager.submit(parse_spec(LONG), name="filled the disk")
            wait_for(lambda: len(store.epochs(rid)) >= 2, what="two epochs")
            seen = store.epochs(rid)
            filler = fill(disk)
            counts = []

            def stalled():  # no epoch, no progress for 3 s: the worker has hit the full disk
                counts.append((len(store.epochs(rid)), store.get(rid).progress))
                return len(counts) > 30 and counts[-1] == counts[-31]

            wait_for(stalled, timeout=60, what="the worker to stop writing")
            assert store.get(rid).status == "running"  # not 'interrupted': it is alive, waiting to say why
            filler.unlink()
            record = wait_for(lambda: (r := store.get(rid)).is_final and r, timeout=30, what="the run to be failed")
            assert record.status == "failed" and record.error == disk_message(root)
            assert store.epochs(rid)[: len(seen)] == seen
            assert (store.get(kept), store.epochs(kept)) == before and Path(before[0].model_path).is_file()
            with sqlite3.connect(store.db_path) as con:
                assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            after = manager.submit(parse_spec(TINY), name="after")
            assert wait_for(lambda: (r := store.get(after)).is_final and r).status == "finished"
        finally:
            manager.shutdown()
            store.close()
