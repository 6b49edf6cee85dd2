"""Memory bombs uploaded on a hosted server's Data page (AppTest): each is refused there with the reader's
message, the dataset chosen before stays, and this process (the web server here) does not grow by anything like
the 1.5 GB a bomb inflates to: its files are parsed in a capped child, its column names read from a bounded head."""

from __future__ import annotations

import gzip

import pytest
from streamlit.testing.v1 import AppTest

from kfcore.runs.jobs import JobManager
from tests import bombs
from tests.app.helpers import APP, shown


def vm_hwm_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("KF_HOME", str(tmp_path / "kf"))
    monkeypatch.setenv("KF_HOSTED", "1")
    monkeypatch.setenv("KF_MEMORY_BUDGET_MB", "1500")  # a 3 GB container: half for one run
    monkeypatch.delenv("KF_MAX_UPLOAD_MB", raising=False)
    monkeypatch.delenv("KF_MAX_ROWS", raising=False)
    monkeypatch.setattr(JobManager, "_ensure_workers", lambda self, want=None: None)  # nothing here trains
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("app_pages/data.py").run()
    at.selectbox(key="dataset").select("wine").run()
    at.selectbox(key="dataset").select("upload").run()
    yield at
    from ui import state

    state.shutdown_jobs()


@pytest.fixture(scope="module")
def bomb_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bombs")
    wide = bombs.header_line_csv(d / "wide.csv")
    with open(wide, "rb") as src, gzip.open(d / "wide.csv.gz", "wb") as dst:
        dst.write(src.read())
    return [
        (bombs.npz_bomb(d / "zeros.npz"), "zeros.npz needs about 2,304 MB of memory to load, more than the 375 MB"),
        (bombs.csv_gz_bomb(d / "rows.csv.gz"), "rows.csv.gz holds more than 94 MB of text once decompressed"),
        (d / "wide.csv.gz", "the first line of wide.csv.gz is over 1.0 MB long, too long for a header row"),
        (bombs.idx_gz_bomb(d / "images.csv.gz"), "images.csv.gz holds binary data, not CSV text"),
    ]


def test_each_bomb_is_refused_on_the_page_without_the_server_growing(app, bomb_files):
    before_spec, before_mb = app.session_state["spec"].data, vm_hwm_mb()
    for path, message in bomb_files:
        assert path.stat().st_size < 5 * bombs.MIB  # small uploads: the upload cap never sees them
        app.file_uploader(key="upload").set_value((path.name, path.read_bytes(), "application/octet-stream")).run()
        assert not app.exception, [e.value for e in app.exception]
        errors = [shown(e.value) for e in app.error]  # as a user reads them: the file names were escaped
        assert any(message in e for e in errors), (path.name, errors)
        assert app.session_state["spec"].data == before_spec, path.name
        assert any("The previous dataset, **wine**, stays selected." in shown(c.value) for c in app.caption), path.name
    grown = vm_hwm_mb() - before_mb
    assert grown < 300, f"the web process's peak grew by {grown:.0f} MB"
