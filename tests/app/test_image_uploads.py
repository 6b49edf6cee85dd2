"""Images by folder and IDX files on the Data page (AppTest): a ZIP of class folders becomes the dataset at the size
and colour picked there, with its per-class grid and counts; a hostile ZIP is explained and the dataset chosen
before stays; MNIST's IDX images and labels files arrive one after the other. No test here trains."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from kfcore.data.uploads import UPLOAD_REF
from kfcore.runs.jobs import JobManager
from tests.app.helpers import APP, shown
from tests.imagezips import class_zip, deflate_bomb, image_bytes, pets


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("KF_HOME", str(tmp_path / "kf"))
    monkeypatch.delenv("KF_MAX_UPLOAD_MB", raising=False)
    monkeypatch.delenv("KF_HOSTED", raising=False)
    monkeypatch.setattr(JobManager, "_ensure_workers", lambda self, want=None: None)  # nothing trains here
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("app_pages/data.py").run()
    at.selectbox(key="dataset").select("wine").run()
    at.selectbox(key="dataset").select("upload").run()
    yield at
    from ui import state

    state.shutdown_jobs()


def upload(at: AppTest, name: str, content: bytes, key: str = "upload") -> AppTest:
    at.file_uploader(key=key).set_value((name, content, "application/octet-stream")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_a_zip_of_class_folders_becomes_the_dataset_at_the_size_and_colour_picked(app, tmp_path):
    members = pets(5) | {"cats/readme.txt": b"hi", "../escape/1.png": image_bytes((8, 8), 1)}
    upload(app, "my pets.zip", class_zip(tmp_path / "pets.zip", members).read_bytes())
    data = app.session_state["spec"].data
    assert (data.source, data.name, data.image_size, data.color) == ("images", "my_pets", 32, False)
    assert UPLOAD_REF.fullmatch(data.path)  # a reference into the store's uploads, as every upload
    assert metric(app, "Image size") == "32×32×1" and metric(app, "Classes") == "2" and metric(app, "Rows") == "10"
    captions = [shown(c.value) for c in app.caption]
    assert any("skipped 1 files that are not images" in c for c in captions), captions
    assert any("skipped 1 files with an absolute path or '..'" in c for c in captions), captions
    charts = {c.proto.id for c in app.get("plotly_chart")}
    assert any("chart_samples" in i for i in charts) and any("chart_balance" in i for i in charts), charts

    app.selectbox(key="image_size").select(64).run()
    app.radio(key="image_colour").set_value("colour").run()
    assert not app.exception
    data = app.session_state["spec"].data
    assert (data.image_size, data.color) == (64, True) and metric(app, "Image size") == "64×64×3"


def test_a_hostile_zip_is_explained_and_the_previous_dataset_stays(app, tmp_path):
    bomb = deflate_bomb(tmp_path / "bomb.zip", "cats/big.png", 256 << 20, extra=pets(2))
    upload(app, "bomb.zip", bomb.read_bytes())
    errors = [shown(e.value) for e in app.error]
    assert any("bomb.zip is refused: 'cats/big.png' declares" in e and "decompression bomb" in e for e in errors)
    assert app.session_state["spec"].data.name == "wine"
    upload(app, "one.zip", class_zip(tmp_path / "one.zip", {"cats/1.png": image_bytes((8, 8), 1)}).read_bytes())
    errors = [shown(e.value) for e in app.error]
    assert any("only the class folder 'cats' has images" in e for e in errors), errors
    assert app.session_state["spec"].data.name == "wine"


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return gzip.compress(header + arr.astype(np.uint8).tobytes())


def test_idx_images_then_labels_make_an_idx_dataset(app):
    rng = np.random.default_rng(0)
    upload(app, "train-images-idx3-ubyte.gz", idx_bytes(rng.integers(0, 255, (30, 12, 12))))
    assert any("now upload its labels file" in shown(i.value) for i in app.info)
    assert app.session_state["spec"].data.name == "wine"
    upload(app, "train-labels-idx1-ubyte.gz", idx_bytes(np.arange(30) % 3))
    data = app.session_state["spec"].data
    assert data.source == "idx" and data.images.endswith("train-images-idx3-ubyte.idx.gz")
    assert data.labels.endswith("train-labels-idx1-ubyte.idx.gz")
    assert metric(app, "Image size") == "12×12×1" and metric(app, "Classes") == "3"
