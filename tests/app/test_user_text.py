"""User text reaches Streamlit's Markdown escaped (ui.text.plain), on every page, through AppTest: a run name, CSV
column names and class labels, a share link's data.name, and the error that quotes a bad one.

AppTest shows the Markdown source each element was given, so this checks what the pages send; what Chromium
makes of it (no <img>, no <a>) is tests/browser/test_user_text.py.
"""

import base64
import json
import zlib

import numpy as np
import pytest

from kfcore.runs.store import RunStore
from kfcore.spec import RunSpec
from kfcore.training.evaluate import classification_report
from tests.app.helpers import go, open_app
from ui.text import plain

RUN_NAME = "![x](http://127.0.0.1:9/x.png) [phish](http://127.0.0.1:9/) :red[boom] :material/home:"
LABELS = ["[a](http://127.0.0.1:9/a)", "![i](http://127.0.0.1:9/i.png)"]
DATA_NAME = "![d](http://127.0.0.1:9/d.png) :violet[data]"
COLUMNS = ["[c](http://127.0.0.1:9/c)", ":red[kind]"]
# What no Markdown body may hold unescaped: the start of a link or image target, a directive, an icon.
RAW = ("](http", ":red[", ":violet[", ":material/home")
PAGES = [
    "app_pages/home.py",
    "app_pages/data.py",
    "app_pages/model.py",
    "app_pages/train.py",
    "app_pages/evaluate.py",
    "app_pages/runs.py",
]


@pytest.fixture
def kf_home(tmp_path, monkeypatch):
    home = tmp_path / "kf"
    monkeypatch.setenv("KF_HOME", str(home))
    yield home
    from ui import state

    state.shutdown_jobs()


def finished_run(home) -> str:
    """A finished run with a hostile name and class labels, written into the store as a worker would leave it."""
    store = RunStore(home)
    spec = {"data": {"source": "builtin", "name": "iris"}, "layers": [{"type": "Dense", "units": 8}]}
    run_id = store.create_run(RunSpec.from_dict(spec).to_dict(), name=RUN_NAME)
    store.start_in_process(run_id)
    y = np.array([0, 0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    store.finish(run_id, {"accuracy": 0.6, "loss": 0.7}, classification_report(y, probs, LABELS), None)
    return run_id


def link(spec: dict) -> str:
    """A share-link token for any spec, even one RunSpec would refuse to build (as a hand-made link can be)."""
    raw = json.dumps(spec, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


def bodies(at) -> list[str]:
    """The Markdown source of every text element on the page, the sidebar's included."""
    kinds = ("markdown", "caption", "error", "warning", "info", "success", "title", "subheader")
    return [e.value for kind in kinds for e in getattr(at, kind)]


def assert_escaped(at) -> str:
    texts = bodies(at)
    for body in texts:
        assert not any(raw in body for raw in RAW), body
    return " ".join(texts)


def test_a_hostile_run_name_and_class_labels_are_escaped_on_every_page(kf_home):
    run_id = finished_run(kf_home)
    at = open_app({"run": run_id})
    for page in PAGES:
        go(at, page)
        text = assert_escaped(at)
        assert f"**{plain(RUN_NAME)}**" in " ".join(m.value for m in at.sidebar.markdown), page
    go(at, "app_pages/evaluate.py")
    text = assert_escaped(at)
    # The cell opens on the commonest mistake, the first of two here: true LABELS[0] predicted as LABELS[1].
    assert f"class **{plain(LABELS[0])}** predicted as **{plain(LABELS[1])}**" in text


def test_a_share_link_with_hostile_names_restores_them_as_text_and_a_bad_one_is_quoted_as_text(kf_home, tmp_path):
    csv = tmp_path / "table.csv"
    csv.write_text(",".join(COLUMNS) + "\n" + "".join(f"{i % 7},{LABELS[i % 2]}\n" for i in range(40)))
    spec = {"data": {"source": "csv", "name": DATA_NAME, "path": str(csv), "target": COLUMNS[1]}}
    at = open_app({"spec": link(spec)})
    assert at.session_state["spec"].data.name == DATA_NAME
    for page in ("app_pages/home.py", "app_pages/model.py", "app_pages/train.py"):
        go(at, page)
        text = assert_escaped(at)
        assert plain(DATA_NAME) in text, page
    go(at, "app_pages/data.py")  # the upload section names the data after its file from here on
    assert_escaped(at)
    assert at.selectbox(key="target_column").options == COLUMNS  # a selectbox shows its options as text

    at = open_app({"spec": link({"data": {"source": "builtin", "name": RUN_NAME}})})
    text = assert_escaped(at)
    assert (
        "This share link could not be opened" in text and plain(f"unknown value '{RUN_NAME[:30]}") in text
    )  # quoted cut short
