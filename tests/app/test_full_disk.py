"""A full disk under KF_HOME (AppTest): Train, rename, delete and an upload each say so as an error where the user
acted, never Streamlit's exception box, and work again once space is freed. On a real tmpfs filled to the last
byte where mounting is allowed, and everywhere with SQLite's and the file system's full-disk errors simulated."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from kfcore.runs.jobs import JobManager
from kfcore.runs.store import RunStore
from tests.app.helpers import go, open_app, shown
from tests.unit.helpers import FullDiskConnection, fill, small_disk

DATA, RUNS, TRAIN = "app_pages/data.py", "app_pages/runs.py", "app_pages/train.py"
SPEC = {"data": {"source": "builtin", "name": "iris"}}


class _Disk:
    """Fill and free the disk under KF_HOME: a real one (tmpfs), or simulated for SQLite and file writes."""

    def __init__(self, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self.kind, self.monkeypatch, self.filler = kind, monkeypatch, None
        if kind == "real":
            self._mount = small_disk(tmp_path / "disk", size="8m")
            self.home = self._mount.__enter__() / "kf"
        else:
            self.home = tmp_path / "kf"
            connect = sqlite3.connect
            monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: connect(*a, factory=FullDiskConnection, **k))
            monkeypatch.setattr(FullDiskConnection, "full", False)
            monkeypatch.setattr(FullDiskConnection, "reads_too", False)

    def fill(self, reads_too: bool = False) -> None:
        if self.kind == "real":
            self.filler = fill(self.home.parent)
            return
        FullDiskConnection.full, FullDiskConnection.reads_too = True, reads_too
        write_bytes = Path.write_bytes

        def no_space(path: Path, data: bytes) -> int:
            if not FullDiskConnection.full:
                return write_bytes(path, data)
            path.touch()  # as a real full disk does: the file is made, its data does not fit
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

        self.monkeypatch.setattr(Path, "write_bytes", no_space)

    def free(self) -> None:
        if self.kind == "real":
            self.filler.unlink()
        else:
            FullDiskConnection.full = FullDiskConnection.reads_too = False

    def close(self) -> None:
        if self.kind == "real":
            self._mount.__exit__(None, None, None)


@pytest.fixture(params=["real", "simulated"])
def disk(request, tmp_path, monkeypatch):
    d = _Disk(request.param, tmp_path, monkeypatch)
    monkeypatch.setenv("KF_HOME", str(d.home))
    monkeypatch.delenv("KF_HOSTED", raising=False)
    # Nothing here trains: no warm worker (it imports TensorFlow, seconds of CPU on a small machine).
    monkeypatch.setattr(JobManager, "_ensure_workers", lambda self, want=None: None)
    yield d
    from ui import state

    state.shutdown_jobs()
    state.services._store(state.store_root()).close()
    d.close()


def errors(at) -> list[str]:
    assert not at.exception, [e.value for e in at.exception]
    return [shown(e.value) for e in at.error]


def test_a_full_disk_is_explained_where_the_user_acted_and_nothing_stored_is_lost(disk):
    store = RunStore(disk.home)
    kept = store.create_run(SPEC, name="kept")
    store.start_in_process(kept)
    store.append_epoch(kept, 1, {"loss": 0.5})
    store.finish(kept, {"accuracy": 0.9}, {}, None)
    before = (store.get(kept), store.epochs(kept))
    message = (
        "the disk under KF_HOME is full: free some space (delete old runs on the Runs page, or files in the "
        "KF_HOME folder) and try again"
    )
    at = open_app()
    go(at, TRAIN)
    disk.fill()

    at.button(key="train").click().run()
    assert message in errors(at) and at.session_state["run_id"] is None

    go(at, RUNS)
    at.text_input(key="rename_run").input("renamed").run()
    assert any(message in e for e in errors(at)) and store.get(kept).name == "kept"

    go(at, DATA)
    data_before = at.session_state["spec"].data
    at.selectbox(key="dataset").select("upload").run()
    at.file_uploader(key="upload").set_value(("mine.csv", b"a,y\n" + b"1,0\n2,1\n" * 500, "text/csv")).run()
    assert message in errors(at) and at.session_state["spec"].data == data_before
    uploads = disk.home / "uploads"
    assert not [p for p in uploads.rglob("*") if p.is_file()]  # no partial file left behind

    assert (store.get(kept), store.epochs(kept)) == before
    with sqlite3.connect(store.db_path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    disk.free()
    go(at, TRAIN)
    at.button(key="train").click().run()
    assert not errors(at) and store.get(at.session_state["run_id"]).status == "queued"
    store.close()


def test_a_store_that_cannot_be_opened_on_a_full_disk_is_explained_instead_of_the_pages(disk):
    disk.fill(reads_too=True)  # real: the store is not made yet, and cannot be; simulated: nothing can be read
    at = open_app()
    assert errors(at) == [
        "the disk under KF_HOME is full: free some space (delete old runs on the Runs page, or files "
        "in the KF_HOME folder) and try again"
    ]
    disk.free()
    at.run()
    assert not errors(at) and at.session_state["spec"] is not None
