"""The export picker on Evaluate and Runs and the Import of run bundles on Runs (AppTest, real runs and exports).

One subprocess trains one small iris run for the module; each export then runs as the page runs it, in a child
process, and the web process (this one) never imports TensorFlow.
"""

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kfcore.export import formats
from kfcore.runs.store import RunStore
from tests.app.helpers import go, open_app, shown
from tests.app.test_evaluate_runs import REPO, TRAIN

EVALUATE, RUNS = "app_pages/evaluate.py", "app_pages/runs.py"
SPEC = {
    "data": {"source": "builtin", "name": "iris"},
    "layers": [{"type": "Dense", "units": 8, "activation": "relu"}],
    "train": {"epochs": 2},
}


@pytest.fixture(scope="module")
def kf_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("kf")
    out = subprocess.run(
        [sys.executable, "-c", TRAIN, str(home), json.dumps({"iris <i>run</i>": SPEC})],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KF_HOME", str(home))
        yield home
        from ui import state

        state.shutdown_jobs()


@pytest.fixture
def app(kf_home):
    at = open_app(timeout_s=120)
    assert not at.exception
    return at


def _buttons(at):
    return {b.id.rsplit("-", 1)[-1]: b for b in at.get("download_button")}


def _export(at, choice):
    at.selectbox(key="export_format").select(choice).run()
    assert "download_export" not in _buttons(at)  # not made yet: Export first
    at.button(key="export_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_evaluate_exports_a_model_card_in_a_child_process_and_offers_its_download(app, kf_home):
    tf_before = "tensorflow" in sys.modules
    go(app, EVALUATE)
    _export(app, "card")
    assert not [e.value for e in app.error]
    button = _buttons(app)["download_export"]
    assert button.proto.label == "Download iris_i_run_i-card.html"
    store = RunStore(kf_home)
    (run,) = store.list_runs()
    kept = formats.cache_dir(store, run.id, "card") / "card.html"
    assert "iris &lt;i&gt;run&lt;/i&gt;" in kept.read_text(encoding="utf-8")
    assert any("open it in any browser, offline" in shown(c.value) for c in app.caption)
    go(app, RUNS)  # the kept export is offered at once on the other page, no second Export
    app.selectbox(key="export_format").select("card").run()
    assert "download_export" in _buttons(app)
    assert ("tensorflow" in sys.modules) == tf_before  # the web process never imported it


def test_runs_exports_dynamic_tflite_and_shows_the_measured_size_and_accuracy(app):
    go(app, RUNS)
    _export(app, "tflite-dynamic")
    assert _buttons(app)["download_export"].proto.label.endswith("-tflite.zip")  # the model with its recipe.json
    notes = " ".join(shown(c.value) for c in app.caption)
    assert "KiB; test accuracy" in notes and "with the .keras model" in notes and "dynamic-range quantised" in notes


def test_a_failed_export_says_why_on_the_page(app, kf_home):
    store = RunStore(kf_home)
    (run,) = store.list_runs()
    model = Path(run.model_path)
    saved = model.read_bytes()
    model.write_bytes(b"not a model any more")
    try:
        go(app, EVALUATE)
        _export(app, "onnx")
    finally:
        model.write_bytes(saved)
    assert any("The ONNX export failed" in shown(e.value) and "cannot be loaded" in shown(e.value) for e in app.error)
    assert "download_export" not in _buttons(app)


def _bundle(kf_home, tmp_path) -> bytes:
    store = RunStore(kf_home)
    (run,) = [r for r in store.list_runs() if not r.imported][:1]
    return formats.export(store, run, "bundle", tmp_path).files[0].read_bytes()


def test_runs_imports_a_bundle_as_a_read_only_run_to_fork(app, kf_home, tmp_path):
    content = _bundle(kf_home, tmp_path)
    go(app, RUNS)
    app.file_uploader(key="import_bundle").set_value(("from-elsewhere.zip", content, "application/zip")).run()
    app.button(key="import_run").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("Imported **iris <i>run</i>** as a read-only run" in shown(s.value) for s in app.success), (
        [e.value for e in app.error],
        [s.value for s in app.success],
    )
    store = RunStore(kf_home)
    imported = [r for r in store.list_runs() if r.imported]
    assert len(imported) == 1 and imported[0].test and imported[0].imported["file"].endswith(".zip")
    assert app.selectbox(key="manage_run").value == imported[0].id
    assert app.button(key="load_run").proto.label == "Fork into editor"
    assert any("imported run — fork it to change it" in shown(c.value) for c in app.caption)
    app.button(key="load_run").click().run()
    assert any("Forked" in shown(s.value) for s in app.success)
    go(app, EVALUATE)  # Evaluate shows it as the current run, read-only
    assert any("Imported run — fork it to change it: you can look and download" in shown(c.value) for c in app.caption)


def test_a_hostile_bundle_is_refused_on_the_page(app, kf_home, tmp_path):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("../../escape.txt", "x")
    go(app, RUNS)
    before = len(RunStore(kf_home).list_runs())
    app.file_uploader(key="import_bundle").set_value(("evil.zip", out.getvalue(), "application/zip")).run()
    app.button(key="import_run").click().run()
    assert not app.exception
    assert any(
        "evil.zip was not imported" in shown(e.value) and "leaves the bundle" in shown(e.value) for e in app.error
    )
    assert len(RunStore(kf_home).list_runs()) == before
