"""Bad uploads on the Data page (AppTest): the message shows right there as an error, nothing raises, and the
dataset chosen before stays the one in the spec. No test here trains, so no worker process is started."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from kfcore.runs.jobs import JobManager
from tests.app.helpers import APP, shown


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("KF_HOME", str(tmp_path / "kf"))
    monkeypatch.delenv("KF_MAX_UPLOAD_MB", raising=False)
    monkeypatch.delenv("KF_HOSTED", raising=False)
    # Uploads never train: skip the warm worker (it imports TensorFlow, seconds of CPU on a small machine).
    monkeypatch.setattr(JobManager, "_ensure_workers", lambda self, want=None: None)
    at = AppTest.from_file(APP, default_timeout=90)  # generous: a busy machine can take 30 s for the first run
    at.run()
    at.switch_page("app_pages/data.py").run()
    at.selectbox(key="dataset").select("wine").run()
    assert at.session_state["spec"].data.name == "wine"
    at.selectbox(key="dataset").select("upload").run()
    yield at
    from ui import state

    state.shutdown_jobs()


def upload(at: AppTest, name: str, content: bytes) -> AppTest:
    at.file_uploader(key="upload").set_value((name, content, "application/octet-stream")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def errors(at: AppTest) -> list[str]:
    return [shown(e.value) for e in at.error]


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


class CreatesFile:
    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def rows(values) -> str:
    return "\n".join(f"{i % 5},{v}" for i, v in enumerate(values)) + "\n"


BAD_UPLOADS = [
    ("empty.csv", b"", "empty.csv is empty; upload a CSV file with a header row and data rows"),
    ("photo.csv", b"\x89PNG\r\n\x1a\n" + bytes(64), "photo.csv is a PNG image, not CSV text"),
    ("latin.csv", "a,y\n1,café\n2,thé\n".encode("latin-1"), "latin.csv is not UTF-8 text (line 2 has the byte 0xE9"),
    ("one.csv", b"a,y\n1,0\n", "one.csv has 1 usable rows; a model needs at least 2 to train on and 1 to test on"),
    ("same.csv", ("a,y\n" + rows(["yes"] * 10)).encode(), "only one class ('yes') occurs in the target column 'y'"),
    (
        "ids.csv",
        ("a,y\n" + rows([f"u{i}" for i in range(3000)])).encode(),
        "there are 3,000 different values in the target column 'y'",
    ),
    ("arrays.npz", npz_bytes(features=np.zeros((4, 2)), y=np.zeros(4)), "arrays.npz has no array named 'x'"),
]


def test_each_bad_upload_is_explained_on_the_data_page_and_wine_stays(app, tmp_path):
    before = app.session_state["spec"].data
    for name, content, message in BAD_UPLOADS:
        upload(app, name, content)
        assert any(message in e for e in errors(app)), (name, errors(app))
        assert app.session_state["spec"].data == before, name
        assert any("The previous dataset, **wine**, stays selected." in c.value for c in app.caption), name
        assert app.metric and app.metric[0].value == "178"  # the wine rows still shown beside the message

    marker = tmp_path / "unpickled"
    upload(app, "evil.npz", npz_bytes(x=np.zeros((4, 2)), y=np.array([CreatesFile(marker)] * 4, dtype=object)))
    assert any("array 'y' in evil.npz holds Python objects; object arrays are refused" in e for e in errors(app))
    assert not marker.exists() and app.session_state["spec"].data == before


def test_a_bad_upload_after_a_good_one_keeps_the_good_one(app):
    upload(app, "survey.csv", ("a,label\n" + rows(["yes", "no"] * 30)).encode())
    assert not app.error, errors(app)
    good = app.session_state["spec"].data
    assert (good.source, good.name, good.target) == ("csv", "survey", "label")
    upload(app, "broken.csv", "a,y\n1,ça\n".encode("latin-1"))
    assert any("broken.csv is not UTF-8 text" in e for e in errors(app))
    assert app.session_state["spec"].data == good
    assert any("The previous dataset, **survey**, stays selected." in c.value for c in app.caption)


def test_a_file_over_the_upload_limit_is_refused_in_place(app, monkeypatch, tmp_path):
    monkeypatch.setenv("KF_MAX_UPLOAD_MB", "1")
    app.run()
    assert app.file_uploader(key="upload").proto.max_upload_size_mb == 1  # the browser refuses it first
    upload(app, "big.csv", b"a,y\n" + b"1,0\n" * 400_000)
    assert any(
        "big.csv is 1.5 MB, over this server's upload limit of 1 MB; upload a smaller file" in e for e in errors(app)
    ), errors(app)
    assert app.session_state["spec"].data.name == "wine"
    assert not (tmp_path / "kf" / "uploads").exists()


def test_text_in_a_number_column_loads_with_a_note_on_the_page(app):
    ages = [str(20 + i % 30) for i in range(40)]
    ages[4] = "?"
    upload(app, "ages.csv", ("age,y\n" + "\n".join(f"{a},{i % 2}" for i, a in enumerate(ages)) + "\n").encode())
    assert not app.error, errors(app)
    assert app.session_state["spec"].data.name == "ages"
    assert any("'age' holds numbers, but 1 cells are not numbers (e.g. '?')" in shown(c.value) for c in app.caption)
    assert {m.label: m.value for m in app.metric}["Features"] == "1"


def test_the_payload_really_would_create_its_file(tmp_path):
    pickle.loads(pickle.dumps(CreatesFile(tmp_path / "probe"))).close()
    assert (tmp_path / "probe").exists()
