"""The run store: SQLite (WAL) plus model files in one directory; the only thing pages and workers share.

Workers append epochs and progress while pages poll, from any number of processes. Each thread keeps
its own connection (a RunStore object is safe to share between threads); keeping it open matters:
closing the last connection checkpoints the WAL with an fsync, which made every write cost ~7 ms.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("queued", "running", "finished", "failed", "cancelled")
FINAL_STATUSES = ("finished", "failed", "cancelled")
# A run's life: its status only moves along these arrows, and a final status never changes, so the first outcome
# stored stands (a run stopped as it finished, or failed by recovery while its worker still wrote, keeps it).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "queued": ("running", "cancelled"),
    "running": ("finished", "failed", "cancelled"),
}
# What a running run's worker obeys at an epoch boundary (RunStore.send_command); stop is request_cancel.
COMMANDS = ("pause", "resume", "step", "learning_rate")
# A running run's lease: the process training it renews it every HEARTBEAT_S; one that lapsed means that
# process is gone, whatever host it ran on (a recreated container has another hostname, or the same one).
LEASE_S = 15.0
HEARTBEAT_S = 3.0
INTERRUPTED = (
    "interrupted: the process training this run stopped unexpectedly (killed, out of memory, or the "
    "server restarted); its epochs so far are kept — train it again to finish it"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    owner TEXT,
    host TEXT,
    pid INTEGER,
    proc_start TEXT,
    heartbeat REAL,
    parent TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    commands TEXT,
    paused REAL,
    continues INTEGER NOT NULL DEFAULT 0,
    hardware TEXT,
    info TEXT,
    progress TEXT,
    error TEXT,
    test TEXT,
    evaluation TEXT,
    model_path TEXT,
    sweep TEXT,
    imported TEXT
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status, created);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    time REAL NOT NULL,
    logs TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch)
);
-- A live run's latest picture (kfcore.training.snapshot): one row a run, replaced as it trains; its training points
-- once.
CREATE TABLE IF NOT EXISTS live (
    run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    time REAL NOT NULL,
    picture TEXT NOT NULL,
    points TEXT
);
-- Who may read which upload (kfcore.data.uploads reference): its uploader (via NULL), or a browser that forked a run
-- on it (via: that run's id).
CREATE TABLE IF NOT EXISTS uploads (
    owner TEXT NOT NULL,
    ref TEXT NOT NULL,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    via TEXT,
    PRIMARY KEY (owner, ref)
);
-- A sweep (kfcore.runs.sweep): its definition as given; its trials are runs whose `sweep` column names it.
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    created REAL NOT NULL,
    owner TEXT
);
"""

# Columns cheap enough to read for every run in a table; evaluation can be large and is read on demand.
_LIST_COLUMNS = (
    "id, name, spec, status, created, started, finished, owner, host, pid, cancel_requested, "
    "hardware, info, progress, error, test, model_path, parent, paused, continues, sweep, imported"
)


@dataclass
class RunRecord:
    id: str
    name: str
    spec: dict[str, Any]
    status: str
    created: float
    started: float | None = None
    finished: float | None = None
    owner: str | None = None
    host: str | None = None
    pid: int | None = None
    cancel_requested: bool = False
    hardware: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # what the trainer said at start: params, sizes, steps
    progress: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    test: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] | None = None
    model_path: str | None = None
    parent: str | None = None  # the run this one changes or continues (the coach's retrain, a continue)
    continues: bool = False  # it trains on from its parent's saved state (a continue), not from scratch
    paused: float | None = None  # when its worker paused it (it still holds that worker); None while it trains
    sweep: str | None = None  # the sweep this run is a trial of (kfcore.runs.sweep), None for a single run
    imported: dict[str, Any] | None = None  # where a run imported from a bundle came from; such a run is read-only

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started


@dataclass
class SweepRecord:
    id: str
    name: str
    definition: dict[str, Any]  # as kfcore.runs.sweep.parse_sweep reads it
    created: float
    owner: str | None = None


class StoreFullError(RuntimeError):
    """The disk under the store is full: nothing was written by the call that raised it, nothing stored is lost."""

    def __init__(self, root: str | Path):
        super().__init__(
            "the disk under KF_HOME is full: free some space (delete old runs on the Runs page, or files in the "
            "KF_HOME folder) and try again"  # no path: a hosted server's folders are nobody's business
        )
        self.root = root


def disk_full(e: BaseException) -> bool:
    """Whether an error means the disk is full: SQLite says so in one of two ways, files with ENOSPC/EDQUOT."""
    if isinstance(e, StoreFullError):
        return True
    if isinstance(e, sqlite3.OperationalError):
        text = str(e)
        return "database or disk is full" in text or "disk I/O error" in text
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def disk_guard(root: str | Path) -> Iterator[None]:
    """Turn a full disk's errors, from SQLite or a file write, into StoreFullError (the one message for it)."""
    try:
        yield
    except StoreFullError:
        raise
    except (sqlite3.OperationalError, OSError) as e:
        if disk_full(e):
            raise StoreFullError(root) from e
        raise


def default_root() -> Path:
    return Path(os.environ.get("KF_HOME") or ".kf")


def _loads(text: str | None, default: Any) -> Any:
    return json.loads(text) if text else default


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None without /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return []
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def process_identity(pid: int) -> str | None:
    """Boot id and start time of a live process: the same pid handed to another process later (a restarted
    container counts from 1 again) has another identity. None where /proc cannot tell (not Linux)."""
    fields = _proc_stat(pid)
    if not fields:
        return None
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "?"
    return f"{boot}:{fields[19]}"  # field 22 of stat, the start time in clock ticks since boot


def _process_alive(pid: int, identity: str | None) -> bool:
    """Whether the process that claimed a run is still that process and still running (not a zombie)."""
    fields = _proc_stat(pid)
    if fields is None:  # no /proc: ask the kernel whether the pid exists at all
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if not fields or fields[0] in ("Z", "X"):
        return False
    return identity is None or process_identity(pid) == identity


class RunStore:
    def __init__(self, root: str | Path | None = None, recover: bool = True):
        self.root = Path(root) if root is not None else default_root()
        with disk_guard(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "models").mkdir(exist_ok=True)
        self.db_path = self.root / "runs.sqlite"
        self._local = threading.local()
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
            columns = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
            for column, kind in (
                ("proc_start", "TEXT"),
                ("heartbeat", "REAL"),
                ("parent", "TEXT"),
                ("commands", "TEXT"),
                ("paused", "REAL"),
                ("continues", "INTEGER NOT NULL DEFAULT 0"),
                ("sweep", "TEXT"),
                ("imported", "TEXT"),
            ):
                if column not in columns:  # a store made before the column existed
                    try:
                        con.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
                    except sqlite3.OperationalError as e:  # another process added it first
                        if "duplicate column" not in str(e):
                            raise
        if recover:
            self.recover()

    # Picklable (a Ray Tune callback holding a store is): the copy opens its own connections.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_local"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def writing(self) -> AbstractContextManager[None]:
        """For files written into the store (uploads, logs): a full disk raises StoreFullError."""
        return disk_guard(self.root)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # Autocommit mode plus explicit BEGIN IMMEDIATE where a read-then-write must be atomic; a long
        # busy timeout so many readers and writers wait their turn instead of seeing "database is locked".
        # Every store call goes through here, so a full disk becomes StoreFullError in this one place.
        with disk_guard(self.root):
            con = getattr(self._local, "con", None)
            if con is None or self._local.pid != os.getpid():
                con = sqlite3.connect(self.db_path, timeout=30, isolation_level=None, check_same_thread=False)
                con.execute("PRAGMA busy_timeout=30000")
                con.execute("PRAGMA synchronous=NORMAL")
                con.execute("PRAGMA foreign_keys=ON")
                self._local.con, self._local.pid = con, os.getpid()
            try:
                yield con
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # -- writing ------------------------------------------------------------------------------
    def create_run(
        self,
        spec: dict[str, Any],
        name: str | None = None,
        owner: str | None = None,
        parent: str | None = None,
        continues: bool = False,
        sweep: str | None = None,
    ) -> str:
        run_id = uuid.uuid4().hex[:12]
        now = time.time()
        with self._connect() as con:
            if not name:
                (count,) = con.execute("SELECT COUNT(*) FROM runs").fetchone()
                name = f"run {count + 1}"
            con.execute(
                "INSERT INTO runs (id, name, spec, status, created, owner, parent, continues, sweep) "
                "VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                (run_id, name, json.dumps(spec), now, owner, parent, int(continues), sweep),
            )
        return run_id

    def create_sweep(self, definition: dict[str, Any], name: str | None = None, owner: str | None = None) -> str:
        sweep_id = "s" + uuid.uuid4().hex[:11]
        with self._connect() as con:
            if not name:
                (count,) = con.execute("SELECT COUNT(*) FROM sweeps").fetchone()
                name = f"sweep {count + 1}"
            con.execute(
                "INSERT INTO sweeps (id, name, definition, created, owner) VALUES (?, ?, ?, ?, ?)",
                (sweep_id, name, json.dumps(definition), time.time(), owner),
            )
        return sweep_id

    def add_imported(
        self,
        spec: dict[str, Any],
        run: dict[str, Any],
        epochs: list[dict[str, Any]],
        evaluation: dict[str, Any],
        files: dict[str, bytes],
        origin: dict[str, Any],
        owner: str | None = None,
    ) -> str:
        """A finished run brought from another store (kfcore.bundle): its files go into its folder first, then its
        row and epochs in one transaction, so a failed import leaves no half run. run: name, created, started,
        finished, hardware, info, test as the other store had them. Returns the new id."""
        run_id = uuid.uuid4().hex[:12]
        folder = self.run_dir(run_id)
        try:
            with self.writing():
                folder.mkdir(parents=True, exist_ok=True)
                for name, content in files.items():
                    (folder / name).write_bytes(content)
            with self._connect() as con:
                con.execute("BEGIN IMMEDIATE")
                con.execute(
                    "INSERT INTO runs (id, name, spec, status, created, started, finished, owner, hardware, info, "
                    "test, evaluation, model_path, imported) VALUES (?, ?, ?, 'finished', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        str(run["name"])[:80] or run_id,
                        json.dumps(spec),
                        time.time(),
                        run.get("started"),
                        run.get("finished"),
                        owner,
                        json.dumps(run["hardware"]),
                        json.dumps(run["info"]),
                        json.dumps(run["test"]),
                        json.dumps(evaluation),
                        str(folder / "model.keras"),
                        json.dumps(origin),
                    ),
                )
                con.executemany(
                    "INSERT INTO epochs (run_id, epoch, time, logs) VALUES (?, ?, ?, ?)",
                    [
                        (
                            run_id,
                            e["epoch"],
                            float(e.get("time") or 0.0),
                            json.dumps({k: v for k, v in e.items() if k not in ("epoch", "time")}),
                        )
                        for e in epochs
                    ],
                )
                con.execute("COMMIT")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return run_id

    def claim_next(self, pid: int, max_running: int | None = None) -> RunRecord | None:
        """Atomically move the oldest queued run to running for this worker; None when the queue is empty or
        max_running runs already hold a live lease (an orphan of a killed server counts until it stops)."""
        now = time.time()
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            row = con.execute("SELECT id FROM runs WHERE status='queued' ORDER BY created LIMIT 1").fetchone()
            if row is not None and max_running:
                (live,) = con.execute(
                    "SELECT COUNT(*) FROM runs WHERE status='running' AND heartbeat > ?", (now,)
                ).fetchone()
                row = row if live < max_running else None
            if row is None:
                con.execute("COMMIT")
                return None
            self._move(
                con,
                row[0],
                "running",
                started=now,
                pid=pid,
                host=socket.gethostname(),
                proc_start=process_identity(pid),
                heartbeat=now + LEASE_S,
            )
            con.execute("COMMIT")
        return self.get(row[0])

    def queued_ids(self, limit: int) -> list[str]:
        """The ids of the oldest `limit` queued runs, oldest first (claim_next takes the first); nothing changes."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT id FROM runs WHERE status='queued' ORDER BY created LIMIT ?", (limit,)
            ).fetchall()
        return [r[0] for r in rows]

    def start_in_process(self, run_id: str) -> bool:
        """Mark a queued run running in this process, which holds its lease: the CLI trains it here, a Ray executor
        relays it from a remote actor. False: it is not queued (a server's worker claimed it first, or it was
        cancelled), and nothing changed."""
        now = time.time()
        with self._connect() as con:
            return self._move(
                con,
                run_id,
                "running",
                started=now,
                pid=os.getpid(),
                host=socket.gethostname(),
                proc_start=process_identity(os.getpid()),
                heartbeat=now + LEASE_S,
            )

    def renew_lease(self, run_id: str) -> None:
        """The training process is alive: extend its run's lease (see LEASE_S)."""
        with self._connect() as con:
            con.execute("UPDATE runs SET heartbeat=? WHERE id=? AND status='running'", (time.time() + LEASE_S, run_id))

    def set_info(self, run_id: str, hardware: dict[str, Any], info: dict[str, Any]) -> None:
        self._update(run_id, hardware=json.dumps(hardware), info=json.dumps(info))

    def set_progress(self, run_id: str, progress: dict[str, Any]) -> None:
        self._update(run_id, progress=json.dumps(progress))

    def append_epoch(self, run_id: str, epoch: int, logs: dict[str, Any]) -> None:
        with self._connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO epochs (run_id, epoch, time, logs) VALUES (?, ?, ?, ?)",
                (run_id, epoch, time.time(), json.dumps(logs)),
            )

    def set_picture(self, run_id: str, picture: dict[str, Any]) -> None:
        """Replace the run's live picture (kfcore.training.snapshot.LiveView.take's dict); its "points", sent with the first
        picture only, are kept for the later ones."""
        picture = dict(picture)
        points = picture.pop("points", None)
        with self._connect() as con:
            con.execute(
                "INSERT INTO live (run_id, epoch, time, picture, points) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(run_id) DO UPDATE SET epoch=excluded.epoch, time=excluded.time, "
                "picture=excluded.picture, points=COALESCE(excluded.points, live.points)",
                (
                    run_id,
                    int(picture.get("epoch", 0)),
                    time.time(),
                    json.dumps(picture),
                    None if points is None else json.dumps(points),
                ),
            )

    # finish, fail and mark_cancelled store a running run's outcome and say whether they did: False when the run
    # already has one (or is not running), which then stands.
    def finish(self, run_id: str, test: dict[str, Any], evaluation: dict[str, Any], model_path: str | None) -> bool:
        with self._connect() as con:
            return self._move(
                con,
                run_id,
                "finished",
                finished=time.time(),
                test=json.dumps(test),
                evaluation=json.dumps(evaluation),
                model_path=model_path,
            )

    def fail(self, run_id: str, reason: str) -> bool:
        with self._connect() as con:
            return self._move(con, run_id, "failed", finished=time.time(), error=reason)

    def mark_cancelled(self, run_id: str, reason: str | None = None) -> bool:
        """Cancelled: a running run that stopped, or a queued one before it started; `reason` when it was not the
        user (a sweep's early stopping)."""
        reasons = {"error": reason} if reason is not None else {}  # one request_cancel stored stays
        with self._connect() as con:
            return self._move(con, run_id, "cancelled", finished=time.time(), **reasons)

    def request_cancel(self, run_id: str, reason: str | None = None) -> str | None:
        """Cancel a queued run at once, or ask its worker to stop a running one. Returns the new status.
        `reason`: why, when it is not the user (a sweep stopping a trial early); the cancelled run keeps it."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            row = con.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None:
                con.execute("COMMIT")
                return None
            if row[0] == "queued":
                self._move(con, run_id, "cancelled", finished=time.time(), error=reason)
            elif row[0] == "running":
                con.execute(
                    "UPDATE runs SET cancel_requested=1, error=COALESCE(?, error) WHERE id=? AND status='running'",
                    (reason, run_id),
                )
            con.execute("COMMIT")
            return "cancelled" if row[0] == "queued" else row[0]

    def send_command(self, run_id: str, command: str, value: float | None = None) -> None:
        """Queue a command for a running run's worker, obeyed at its next epoch boundary (kfcore.runs.jobs): pause,
        resume, step (one epoch while paused) or learning_rate (value: the new rate). Stop is request_cancel.
        Raises ValueError saying what is wrong: an unknown command, a run that is not running, a bad rate."""
        if command not in COMMANDS:
            raise ValueError(f"unknown command {command!r}: use one of {', '.join(COMMANDS)}")
        record = self.get(run_id, with_evaluation=False)
        if record is None:
            raise ValueError(f"no run with id {run_id!r}")
        if record.status != "running":
            raise ValueError(f"run {run_id} is {record.status}, not running: only a running run takes commands")
        if command == "learning_rate":
            if value is None or not math.isfinite(value) or value <= 0:
                raise ValueError(f"the learning rate must be a number above 0, not {value}")
            schedule = record.spec.get("train", {}).get("schedule", "constant")
            if schedule != "constant":  # a schedule owns the rate step by step: a set value would be overwritten
                raise ValueError(
                    f"this run's learning rate follows the {schedule} schedule, so it cannot be set "
                    "while it trains; continue it with another rate when it ends"
                )
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            (text,) = con.execute("SELECT commands FROM runs WHERE id=?", (run_id,)).fetchone()
            con.execute(
                "UPDATE runs SET commands=? WHERE id=?", (json.dumps([*_loads(text, []), [command, value]]), run_id)
            )
            con.execute("COMMIT")

    def take_commands(self, run_id: str) -> list[tuple[str, float | None]]:
        """The commands sent to a run since the last call, oldest first; they are removed (the worker obeys them)."""
        with self._connect() as con:
            row = con.execute("SELECT commands FROM runs WHERE id=?", (run_id,)).fetchone()
            if not row or not row[0]:  # the usual case, read without taking the write lock
                return []
            con.execute("BEGIN IMMEDIATE")
            (text,) = con.execute("SELECT commands FROM runs WHERE id=?", (run_id,)).fetchone()
            con.execute("UPDATE runs SET commands=NULL WHERE id=?", (run_id,))
            con.execute("COMMIT")
        return [(c, v) for c, v in _loads(text, [])]

    def set_paused(self, run_id: str, paused: bool) -> None:
        """Record that the run's worker paused it (now) or resumed it."""
        with self._connect() as con:
            con.execute("UPDATE runs SET paused=? WHERE id=?", (time.time() if paused else None, run_id))

    def cancel_requested(self, run_id: str) -> bool:
        with self._connect() as con:
            row = con.execute("SELECT cancel_requested FROM runs WHERE id=?", (run_id,)).fetchone()
        return bool(row and row[0])

    def rename(self, run_id: str, name: str) -> None:
        self._update(run_id, name=name.strip() or run_id)

    def delete(self, run_id: str) -> None:
        try:
            with self._connect() as con:
                con.execute("DELETE FROM runs WHERE id=?", (run_id,))
        except StoreFullError:  # even a delete needs room in the log: the run's files make some, then once more
            shutil.rmtree(self.run_dir(run_id), ignore_errors=True)
            with self._connect() as con:
                con.execute("DELETE FROM runs WHERE id=?", (run_id,))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    def _update(self, run_id: str, **values: Any) -> None:
        if "status" in values:
            raise ValueError("a run's status changes only through _move, along TRANSITIONS")
        cols = ", ".join(f"{k}=?" for k in values)
        with self._connect() as con:
            con.execute(f"UPDATE runs SET {cols} WHERE id=?", (*values.values(), run_id))

    @staticmethod
    def _move(con: sqlite3.Connection, run_id: str, status: str, **values: Any) -> bool:
        """Set the run's status (and `values`) in one statement, only from a status TRANSITIONS allows: a run
        whose status another process changed meanwhile is left as it is. Whether it moved."""
        sources = tuple(source for source, targets in TRANSITIONS.items() if status in targets)
        if not sources:
            raise ValueError(
                f"no run moves to the status {status!r}; the statuses a run moves to: "
                f"{', '.join(sorted({t for ts in TRANSITIONS.values() for t in ts}))}"
            )
        cols = ", ".join(f"{k}=?" for k in ("status", *values))
        cursor = con.execute(
            f"UPDATE runs SET {cols} WHERE id=? AND status IN ({', '.join('?' * len(sources))})",
            (status, *values.values(), run_id, *sources),
        )
        return cursor.rowcount == 1

    # -- reading ------------------------------------------------------------------------------
    def get(self, run_id: str, with_evaluation: bool = True) -> RunRecord | None:
        cols = _LIST_COLUMNS + (", evaluation" if with_evaluation else "")
        with self._connect() as con:
            row = con.execute(f"SELECT {cols} FROM runs WHERE id=?", (run_id,)).fetchone()
        return _record(row, with_evaluation) if row else None

    def list_runs(self, owner: str | None = None) -> list[RunRecord]:
        query = f"SELECT {_LIST_COLUMNS} FROM runs"
        args: tuple[Any, ...] = ()
        if owner is not None:
            query += " WHERE owner=?"
            args = (owner,)
        with self._connect() as con:
            rows = con.execute(query + " ORDER BY created DESC", args).fetchall()
        return [_record(r, False) for r in rows]

    def sweeps(self, owner: str | None = None) -> list[SweepRecord]:
        """The sweeps, newest first; of one owner when given."""
        query, args = "SELECT id, name, definition, created, owner FROM sweeps", tuple[str, ...]()
        if owner is not None:
            query, args = query + " WHERE owner=?", (owner,)
        with self._connect() as con:
            rows = con.execute(query + " ORDER BY created DESC", args).fetchall()
        return [SweepRecord(i, n, json.loads(d), c, o) for i, n, d, c, o in rows]

    def get_sweep(self, sweep_id: str) -> SweepRecord | None:
        with self._connect() as con:
            row = con.execute(
                "SELECT id, name, definition, created, owner FROM sweeps WHERE id=?", (sweep_id,)
            ).fetchone()
        return SweepRecord(row[0], row[1], json.loads(row[2]), row[3], row[4]) if row else None

    def trials(self, sweep_id: str) -> list[RunRecord]:
        """A sweep's trials, in the order they were made."""
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {_LIST_COLUMNS} FROM runs WHERE sweep=? ORDER BY created, rowid", (sweep_id,)
            ).fetchall()
        return [_record(r, False) for r in rows]

    def epochs_of(self, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Several runs' epochs in one query (a sweep's overlaid curves), each list as epochs() gives it."""
        out: dict[str, list[dict[str, Any]]] = {i: [] for i in run_ids}
        if not run_ids:
            return out
        with self._connect() as con:
            rows = con.execute(
                f"SELECT run_id, epoch, time, logs FROM epochs WHERE run_id IN "
                f"({', '.join('?' * len(run_ids))}) ORDER BY run_id, epoch",
                run_ids,
            ).fetchall()
        for rid, e, t, logs in rows:
            out[rid].append({"epoch": e, "time": t, **json.loads(logs)})
        return out

    def epochs(self, run_id: str) -> list[dict[str, Any]]:
        """Every epoch's logs in order, each with 'epoch' and the wall-clock 'time' it was stored."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT epoch, time, logs FROM epochs WHERE run_id=? ORDER BY epoch", (run_id,)
            ).fetchall()
        return [{"epoch": e, "time": t, **json.loads(logs)} for e, t, logs in rows]

    def picture(self, run_id: str) -> dict[str, Any] | None:
        """The run's latest live picture with its training points ("points": [[x1, x2, target], ...] or None);
        None when its worker stored none (not 2-D data nor a small dense network, or a run from before)."""
        with self._connect() as con:
            row = con.execute("SELECT picture, points FROM live WHERE run_id=?", (run_id,)).fetchone()
        return {**json.loads(row[0]), "points": _loads(row[1], None)} if row else None

    def active_count(self, owner: str | None = None) -> int:
        """Runs queued or running, of one owner or of everyone."""
        query = "SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')"
        args: tuple[Any, ...] = ()
        if owner is not None:
            query += " AND owner=?"
            args = (owner,)
        with self._connect() as con:
            return con.execute(query, args).fetchone()[0]

    def queue_position(self, run_id: str) -> int | None:
        """1-based place of a queued run in the queue, oldest first; None when it is not queued.
        One indexed query, so pages can poll it cheaply however many runs the store holds."""
        with self._connect() as con:
            row = con.execute(
                "SELECT COUNT(*) FROM runs q, runs r WHERE r.id=? AND r.status='queued' AND q.status='queued' "
                "AND q.created <= r.created",
                (run_id,),
            ).fetchone()
        return row[0] or None

    def paused_count(self) -> int:
        """Running runs that are paused: each holds a training worker (kfcore.present.runview.status_line says so)."""
        with self._connect() as con:
            (count,) = con.execute("SELECT COUNT(*) FROM runs WHERE status='running' AND paused IS NOT NULL").fetchone()
        return count

    def counts(self) -> dict[str, int]:
        with self._connect() as con:
            rows = con.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall()
        return dict(rows)

    # -- files --------------------------------------------------------------------------------
    @property
    def uploads_dir(self) -> Path:
        """Where the dashboard keeps uploaded data files; workers read them from here."""
        return self.root / "uploads"

    def add_upload(self, owner: str, ref: str, name: str, via: str | None = None) -> None:
        """Record that `owner` may read the upload `ref` (`name`: the file name as uploaded); the first record of
        an owner and a file stays: uploading it again after a fork keeps the fork's."""
        with self._connect() as con:
            con.execute(
                "INSERT OR IGNORE INTO uploads (owner, ref, name, created, via) VALUES (?, ?, ?, ?, ?)",
                (owner, ref, name, time.time(), via),
            )

    def may_read_upload(self, owner: str | None, ref: str) -> bool:
        with self._connect() as con:
            return con.execute("SELECT 1 FROM uploads WHERE owner=? AND ref=?", (owner, ref)).fetchone() is not None

    def run_dir(self, run_id: str) -> Path:
        return self.root / "models" / run_id

    def model_file(self, run_id: str) -> Path:
        d = self.run_dir(run_id)
        d.mkdir(parents=True, exist_ok=True)
        return d / "model.keras"

    # -- recovery -----------------------------------------------------------------------------
    def recover(self, reasons: dict[int, str] | None = None, skip: set[int] | None = None) -> list[str]:
        """Mark runs whose worker died as failed, so nothing is left 'running' forever. Returns their ids.

        A run's worker is dead when its lease lapsed, whatever host it ran on, unless it is provably alive here;
        on this host also at once when its pid is gone, a zombie, or now another process (a different start time).
        `reasons` gives the error for a worker's pid on this host whose death the caller knows more about; runs of the
        pids in `skip` (on this host) are left alone: the caller judges those itself.
        With the disk full the runs are left for a later call: this one reports, it never raises for that."""
        here, now = socket.gethostname(), time.time()
        try:
            with self._connect() as con:
                rows = con.execute(
                    "SELECT id, pid, host, proc_start, heartbeat FROM runs WHERE status='running'"
                ).fetchall()
        except StoreFullError:
            return []
        dead: list[str] = []
        for rid, pid, host, identity, lease in rows:
            local = host == here and pid is not None
            if local and pid in (skip or ()):
                continue
            alive = _process_alive(pid, identity) if local else host != here and (lease or 0) > now
            if alive:
                continue
            try:
                if self.fail(rid, (reasons or {}).get(pid, INTERRUPTED) if local else INTERRUPTED):
                    dead.append(rid)  # else its worker stored the outcome since the read above: that stands
            except StoreFullError:
                break
        return dead


def _record(row: tuple, with_evaluation: bool) -> RunRecord:
    (
        rid,
        name,
        spec,
        status,
        created,
        started,
        finished,
        owner,
        host,
        pid,
        cancel,
        hw,
        info,
        progress,
        error,
        test,
        model_path,
        parent,
        paused,
        continues,
        sweep,
        imported,
    ) = row[:22]
    return RunRecord(
        id=rid,
        name=name,
        spec=json.loads(spec),
        status=status,
        created=created,
        started=started,
        finished=finished,
        owner=owner,
        host=host,
        pid=pid,
        cancel_requested=bool(cancel),
        hardware=_loads(hw, {}),
        info=_loads(info, {}),
        progress=_loads(progress, {}),
        error=error,
        test=_loads(test, {}),
        evaluation=_loads(row[22], None) if with_evaluation else None,
        model_path=model_path,
        parent=parent,
        paused=paused,
        continues=bool(continues),
        sweep=sweep,
        imported=_loads(imported, None),
    )
