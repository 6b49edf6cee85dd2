"""The Evaluate and Runs pages, export and share links, through Streamlit's AppTest on real finished runs.

One subprocess trains four small runs once for the module (iris: tabular classes, circle: 2-D, diabetes:
regression, digits: images), the way the CLI does; the tests then read them like a user would.
"""

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from kfcore.export import script as export
from kfcore.present import runview
from kfcore.runs.store import RunStore
from kfcore.spec import RunSpec
from tests.app.helpers import address_token, go, open_app, shown

REPO = Path(__file__).resolve().parents[2]
EVALUATE, RUNS = "app_pages/evaluate.py", "app_pages/runs.py"

SPECS = {
    "iris run": {
        "data": {"source": "builtin", "name": "iris"},
        "layers": [{"type": "Dense", "units": 16, "activation": "relu"}],
        "train": {"epochs": 3},
    },
    "circle run": {
        "data": {"source": "builtin", "name": "circle", "n": 300},
        "layers": [{"type": "Dense", "units": 8, "activation": "tanh"}],
        "train": {"epochs": 3, "learning_rate": 0.03},
    },
    "diabetes run": {
        "data": {"source": "builtin", "name": "diabetes"},
        "layers": [{"type": "Dense", "units": 32, "activation": "relu"}],
        "train": {"epochs": 3, "learning_rate": 0.03},
    },
    "digits run": {
        "data": {"source": "builtin", "name": "digits"},
        "layers": [{"type": "Dense", "units": 64, "activation": "relu"}],
        "train": {"epochs": 2},
    },
}
# What `python -m kfcore train` does for each spec, in one process so TensorFlow is imported once.
TRAIN = """
import json, sys
from kfcore.runs.jobs import execute_run
from kfcore.spec import RunSpec
from kfcore.runs.store import RunStore
store = RunStore(sys.argv[1])
for name, spec in json.loads(sys.argv[2]).items():
    run_id = store.create_run(RunSpec.from_dict(spec).to_dict(), name=name)
    store.start_in_process(run_id)
    result = execute_run(store, run_id)
    assert result.status == "finished", (name, result.error)
"""


@pytest.fixture(scope="module")
def kf_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("kf")
    out = subprocess.run(
        [sys.executable, "-c", TRAIN, str(home), json.dumps(SPECS)],
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

        state.shutdown_jobs()  # the worker and the predictor of this module's store


@pytest.fixture(scope="module")
def runs(kf_home):
    return {r.name: r.id for r in RunStore(kf_home).list_runs()}


@pytest.fixture
def app(kf_home):
    at = open_app(timeout_s=60)
    assert not at.exception
    return at


def evaluate(at: AppTest, run_id: str) -> AppTest:
    go(at, EVALUATE)
    at.selectbox(key="eval_run").select(run_id).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def chart(at: AppTest, key: str) -> dict:
    found = [c for c in at.get("plotly_chart") if c.proto.id.endswith(key)]
    assert found, f"no chart {key}"
    return json.loads(found[0].proto.spec)


def values(array) -> list:
    """A trace's data as a list, whether Plotly wrote it as a list or as a typed array (numpy input)."""
    if isinstance(array, dict) and "bdata" in array:
        import base64

        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def table_with(at: AppTest, column: str):
    """The first table on the page with this column (plain st.dataframe tables carry no key in AppTest)."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert found, f"no table with a {column!r} column"
    return found[0]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def copy_run(kf_home: Path, source_id: str, name: str, spec: dict | None = None) -> str:
    """A finished run made from another one's results (for tests that change or delete runs)."""
    store = RunStore(kf_home)
    src = store.get(source_id)
    run_id = store.create_run(spec or src.spec, name=name)
    store.start_in_process(run_id)
    shutil.copytree(store.run_dir(source_id), store.run_dir(run_id), dirs_exist_ok=True)
    store.finish(run_id, src.test, src.evaluation, str(store.model_file(run_id)))
    return run_id


# -- Evaluate -------------------------------------------------------------------------------------


def test_evaluate_opens_on_the_newest_finished_run_with_its_test_metrics(app, kf_home):
    go(app, EVALUATE)
    newest = next(r for r in RunStore(kf_home).list_runs() if r.status == "finished")
    assert app.selectbox(key="eval_run").value == newest.id
    shown = metrics(app)
    assert set(shown) >= {"Test accuracy", "Test loss", "Best epoch"} or "Test MAE" in shown


def test_a_confusion_cell_lists_its_tabular_samples_with_their_probabilities(app, runs, kf_home):
    evaluate(app, runs["iris run"])
    record = RunStore(kf_home).get(runs["iris run"])
    cm = record.evaluation["confusion_matrix"]
    names = record.evaluation["class_names"]
    assert metrics(app)["Test accuracy"] == f"{record.test['accuracy']:.1%}"
    fig = chart(app, "confusion")
    assert fig["data"][0]["type"] == "heatmap" and fig["data"][0]["x"] == names
    i, j = max(((i, j) for i in range(3) for j in range(3)), key=lambda c: cm[c[0]][c[1]])
    app.selectbox(key="cm_true").select(names[i]).run()
    app.selectbox(key="cm_pred").select(names[j]).run()
    table = table_with(app, f"P({names[j]})")
    assert len(table) == cm[i][j]
    probs = table[[f"P({n})" for n in names]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-3) and (probs.argmax(axis=1) == j).all()
    assert "sepal length (cm)" in table.columns
    # the chosen cell is outlined on the matrix
    (shape,) = chart(app, "confusion")["layout"]["shapes"]
    assert (shape["x0"], shape["y0"]) == (j - 0.5, i - 0.5)


def test_the_matrix_opens_on_the_commonest_mistake_and_can_show_row_shares(app, runs, kf_home):
    evaluate(app, runs["digits run"])
    cm = np.array(RunStore(kf_home).get(runs["digits run"]).evaluation["confusion_matrix"])
    off = cm - np.diag(np.diag(cm))
    i, j = np.unravel_index(off.argmax(), off.shape)
    assert (app.selectbox(key="cm_true").value, app.selectbox(key="cm_pred").value) == (str(i), str(j))
    assert chart(app, "confusion")["data"][0]["text"][0][0].isdigit()
    app.toggle(key="cm_normalise").set_value(True).run()
    assert chart(app, "confusion")["data"][0]["text"][0][0].endswith("%")


def test_an_image_cell_shows_thumbnails_captioned_with_confidence(app, runs, kf_home):
    evaluate(app, runs["digits run"])
    cm = RunStore(kf_home).get(runs["digits run"]).evaluation["confusion_matrix"]
    app.selectbox(key="cm_true").select("3").run()
    app.selectbox(key="cm_pred").select("3").run()
    (images,) = [im for im in app.image if im.captions and im.captions[0].startswith("#")]
    assert len(images.value) == min(cm[3][3], 48)
    assert all(c.startswith("#") and " says 3 (" in c and c.endswith("%)") for c in images.captions)


def test_a_mistaken_image_is_captioned_in_words_what_the_model_says_and_what_it_is(app, runs, kf_home):
    evaluate(app, runs["digits run"])
    cm = np.array(RunStore(kf_home).get(runs["digits run"]).evaluation["confusion_matrix"])
    off = cm - np.diag(np.diag(cm))
    i, j = np.unravel_index(off.argmax(), off.shape)
    assert off[i, j] > 0
    app.selectbox(key="cm_true").select(str(i)).run()
    app.selectbox(key="cm_pred").select(str(j)).run()
    (images,) = [im for im in app.image if im.captions and im.captions[0].startswith("#")]
    assert all(re.fullmatch(rf"#\d+ · says {j} \(\d+%\) · is {i} \(\d+%\)", shown(c)) for c in images.captions), (
        images.captions[:3]
    )


def test_per_class_scores_and_per_class_validation_accuracy_over_epochs(app, runs):
    evaluate(app, runs["iris run"])
    table = table_with(app, "precision")
    assert list(table["class"]) == ["setosa", "versicolor", "virginica"]
    assert [t["name"] for t in chart(app, "chart_per_class")["data"]] == ["precision", "recall", "F1"]
    lines = chart(app, "chart_per_class_epochs")["data"]
    assert [t["name"] for t in lines] == ["setosa", "versicolor", "virginica"] and lines[0]["x"] == [1, 2, 3]


def test_two_d_data_shows_the_decision_boundary_with_train_and_test_points(app, runs):
    evaluate(app, runs["circle run"])
    traces = chart(app, "chart_boundary")["data"]
    assert traces[0]["type"] == "heatmap"
    assert [t["name"] for t in traces[1:]] == ["train · 0", "train · 1", "test · 0", "test · 1"]
    assert sum(len(values(t["x"])) for t in traces[3:]) == 60  # the 20% test split of 300 points


def test_regression_shows_errors_predicted_vs_actual_and_residuals(app, runs):
    evaluate(app, runs["diabetes run"])
    assert {"Test MAE", "Test RMSE", "R²"} <= set(metrics(app))
    scatter = chart(app, "chart_predicted")["data"]
    assert len(values(scatter[1]["x"])) == 88  # diabetes' 20% test split of 442
    assert chart(app, "chart_residuals")["data"][0]["type"] == "histogram"
    assert not any(c.proto.id.endswith("confusion") for c in app.get("plotly_chart"))
    table = table_with(app, "predicted")  # the ten largest errors, with their features
    assert list(table.columns[:5]) == ["sample", "actual", "predicted", "error", "age"] and len(table) == 10
    errors = np.abs(table["error"].to_numpy())
    assert (np.diff(errors) <= 0).all() and np.allclose(table["error"], table["predicted"] - table["actual"])


def test_regression_lists_the_samples_typed_or_selected_and_explains_a_bad_number(app, runs):
    evaluate(app, runs["diabetes run"])
    largest = table_with(app, "predicted")
    app.text_input(key="reg_samples").input("5, 17 3").run()
    table = table_with(app, "predicted")
    assert sorted(table["sample"]) == [3, 5, 17]
    assert (np.diff(np.abs(table["error"].to_numpy())) <= 0).all()  # the largest error first
    assert any("3 chosen samples" in m.value for m in app.markdown)
    app.text_input(key="reg_samples").input("5, 500").run()
    assert any("there is no sample 500: the test set has 88 (0 to 87)" in shown(e.value) for e in app.error)
    assert table_with(app, "predicted")["sample"].tolist() == largest["sample"].tolist()  # nothing lost
    assert not app.exception


def test_data_that_changed_since_training_is_reported_instead_of_wrong_samples(app, runs, kf_home):
    run_id = copy_run(kf_home, runs["iris run"], "changed data")
    path = RunStore(kf_home).run_dir(run_id) / "predictions.npz"
    with np.load(path) as f:
        y, outputs = f["y_true"], f["outputs"]
    np.savez_compressed(path, y_true=np.roll(y, 1), outputs=outputs)
    evaluate(app, run_id)
    assert any("changed since" in w.value for w in app.warning)
    assert not any("P(setosa)" in d.value.columns for d in app.dataframe)


def test_try_it_predicts_a_test_sample_and_an_uploaded_picture_in_a_worker(app, runs):
    from PIL import Image

    evaluate(app, runs["iris run"])
    app.number_input(key="try_index").set_value(4).run()
    app.button(key="try_predict").click().run(timeout=120)
    assert not app.error, [e.value for e in app.error]
    assert any(m.value.startswith("Prediction: **") for m in app.markdown)
    bars = chart(app, "chart_try")["data"][0]
    assert bars["y"] == ["setosa", "versicolor", "virginica"] and abs(sum(values(bars["x"])) - 1) < 1e-3
    app.button_group(key="try_source").set_value("Type feature values").run()
    assert any("Starts from test sample 4" in c.value for c in app.caption)
    app.button(key="try_predict").click().run(timeout=120)
    assert not app.error and any(m.value.startswith("Prediction: **") for m in app.markdown)

    evaluate(app, runs["digits run"])
    app.button_group(key="try_source").set_value("Upload an image").run()
    picture = np.full((32, 32), 255, np.uint8)
    picture[6:26, 14:18] = 0
    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG")
    app.file_uploader(key="try_upload").set_value(("one.png", buf.getvalue(), "image/png")).run()
    assert any(c == "What the model sees" for im in app.image for c in im.captions)
    app.button(key="try_predict").click().run(timeout=120)
    assert not app.error, [e.value for e in app.error]
    assert chart(app, "chart_try")["data"][0]["y"] == [str(d) for d in range(10)]


def test_try_it_refuses_a_file_that_is_not_a_picture(app, runs):
    evaluate(app, runs["digits run"])
    app.button_group(key="try_source").set_value("Upload an image").run()
    app.file_uploader(key="try_upload").set_value(("notes.png", b"hello", "image/png")).run()
    assert any("not a picture" in e.value for e in app.error) and not app.exception


def test_with_no_finished_run_evaluate_says_to_train_first(tmp_path, monkeypatch):
    monkeypatch.setenv("KF_HOME", str(tmp_path / "empty"))
    at = open_app(timeout_s=60)
    go(at, EVALUATE)
    go(at, RUNS)
    assert any("No runs yet" in i.value for i in at.info)
    from ui import state

    state.shutdown_jobs()


# -- Export and share -----------------------------------------------------------------------------


def test_the_model_metrics_and_script_can_be_downloaded(app, runs, kf_home):
    evaluate(app, runs["iris run"])
    buttons = {b.id.rsplit("-", 1)[-1]: b for b in app.get("download_button")}
    assert set(buttons) == {"download_model", "download_metrics", "download_script"}
    assert not any(b.proto.disabled for b in buttons.values())
    assert buttons["download_script"].proto.url.endswith(".py")
    assert buttons["download_metrics"].proto.deferred_file_id  # written on the click (the browser test downloads it)
    from ui import share

    record = RunStore(kf_home).get(runs["iris run"])
    script, problem = share._script(RunSpec.from_dict(record.spec).to_json(), record.name)
    assert problem is None and script == export.python_script(RunSpec.from_dict(record.spec), record.name)
    assert "model.fit(" in script and "iris run" in script


def test_a_share_link_restores_the_experiment_in_a_new_session(kf_home):
    spec = RunSpec.from_dict(
        {
            "data": {"source": "builtin", "name": "wine"},
            "layers": [{"type": "Dense", "units": 24, "activation": "tanh"}, {"type": "Dropout", "rate": 0.25}],
            "train": {"epochs": 17, "learning_rate": 0.003},
        }
    )
    at = open_app({"spec": spec.to_url()}, timeout_s=60)
    assert not at.exception and not at.error
    restored = at.session_state["spec"]
    assert restored.to_dict() == spec.to_dict()
    assert address_token(at) == spec.to_url()  # the address bar keeps the experiment (issue 12)
    go(at, "app_pages/model.py")
    assert [layer.type for layer in at.session_state["spec"].layers] == ["Dense", "Dropout"]
    go(at, "app_pages/train.py")
    assert at.slider(key="epochs").value == 17


def test_a_damaged_share_link_says_why_and_keeps_the_default_experiment(kf_home):
    at = open_app({"spec": RunSpec().to_url()[:-30] + "x"}, timeout_s=60)
    assert not at.exception
    assert any("share link could not be opened" in e.value for e in at.error)
    assert at.session_state["spec"].to_dict() == RunSpec().to_dict()


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b" " * (4 << 20),
        b'{"train": {"epochs": ' + b"9" * 5000 + b"}}",
        b'{"data": {"source": "csv", "path": "a\\u0000b", "target": "y"}}',
    ],
    ids=["nested", "zlib-bomb", "huge-integer", "nul-in-path"],
)
def test_a_crafted_share_link_shows_the_notice_and_the_app_goes_on_with_the_default_experiment(kf_home, raw):
    import base64
    import zlib

    token = base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")
    at = open_app({"spec": token}, timeout_s=60)
    assert not at.exception, [e.value for e in at.exception]
    assert any("share link could not be opened" in e.value for e in at.error)
    assert at.session_state["spec"].to_dict() == RunSpec().to_dict()
    assert address_token(at) is None  # the address bar drops it: a reload does not meet the crafted token again
    go(at, "app_pages/train.py")


def test_the_sidebar_share_control_holds_the_link_of_the_current_experiment(app):
    go(app, "app_pages/data.py")
    app.selectbox(key="dataset").select("iris").run()
    links = [c.value for c in app.sidebar.code]
    assert links and links[0].startswith("/train?spec=")
    shared = RunSpec.from_url(links[0].split("spec=", 1)[1])
    assert shared.data.name == "iris"


def test_a_run_link_opens_that_runs_evaluate_page(kf_home, runs):
    at = open_app({"run": runs["circle run"]}, timeout_s=60)
    go(at, EVALUATE)
    assert at.selectbox(key="eval_run").value == runs["circle run"]
    assert any(c.value == f"/evaluate?run={runs['circle run']}" for c in at.main.code)


def test_the_app_root_drops_the_page_path_from_the_browser_address():
    from ui.share import app_root

    assert app_root("http://host:8501/evaluate") == "http://host:8501"
    assert app_root("http://host:8501/") == "http://host:8501"
    assert app_root("https://x.org/studio/runs?run=1") == "https://x.org/studio"
    assert app_root(None) == ""


# -- Runs -----------------------------------------------------------------------------------------


def runs_table(at: AppTest):
    return next(d for d in at.dataframe if d.proto.id.split("-")[-1].startswith("runs_table")).value


def test_the_runs_table_lists_every_run_with_its_results_and_filters(app, runs):
    go(app, RUNS)
    table = runs_table(app)
    assert set(runs) <= set(table["Name"])
    assert {
        "Dataset",
        "Layers",
        "Parameters",
        "Epochs",
        "Best val acc.",
        "Test acc.",
        "Test MAE",
        "Time",
        "Device",
        "Status",
    } <= set(table.columns)
    iris = table[table["Name"] == "iris run"].iloc[0]
    assert iris["Layers"] == "Dense(16, relu)" and iris["Epochs"] == "3 of 3" and iris["Parameters"] == 131
    app.text_input(key="runs_filter").input("circle").run()
    assert list(runs_table(app)["Name"]) == ["circle run"]
    app.text_input(key="runs_filter").input("").run()
    app.multiselect(key="runs_status").select("failed").run()
    assert any("No run matches" in c.value for c in app.caption)


def test_comparing_two_runs_overlays_their_curves_and_lists_only_the_settings_that_differ(app, runs):
    go(app, RUNS)
    app.multiselect(key="compare_runs").select(runs["iris run"]).select(runs["digits run"]).run()
    names = [t["name"] for t in chart(app, "compare_loss")["data"]]
    assert names == [
        "iris run · validation",
        "iris run · best epoch",
        "digits run · validation",
        "digits run · best epoch",
    ]
    assert chart(app, "compare_metric")["layout"]["yaxis"]["title"]["text"] == "Accuracy"
    diff = table_with(app, "setting")
    assert list(diff["setting"]) == ["data.name", "layers[0].units", "train.epochs"]
    assert list(diff["iris run"]) == ["iris", "16", "3"] and list(diff["digits run"]) == ["digits", "64", "2"]


def test_a_run_can_be_renamed_and_deleted_after_confirmation(app, runs, kf_home):
    run_id = copy_run(kf_home, runs["iris run"], "scratch")
    go(app, RUNS)
    app.selectbox(key="manage_run").select(run_id).run()
    app.text_input(key="rename_run").input("keeper?").run()
    assert RunStore(kf_home).get(run_id).name == "keeper?"
    assert "keeper?" in list(runs_table(app)["Name"])
    app.button(key="delete_run").click().run()
    assert RunStore(kf_home).get(run_id) is not None  # nothing happens before the confirmation
    app.button(key="confirm_delete").click().run()
    assert RunStore(kf_home).get(run_id) is None and not RunStore(kf_home).run_dir(run_id).exists()
    assert "keeper?" not in list(runs_table(app)["Name"])
    assert any("Deleted keeper?" in s.value for s in app.success)


def test_load_into_editor_puts_a_runs_spec_back_into_data_model_and_train(app, runs):
    go(app, RUNS)
    app.selectbox(key="manage_run").select(runs["circle run"]).run()
    app.button(key="load_run").click().run()
    spec = app.session_state["spec"]
    assert spec.data.name == "circle" and spec.data.n == 300 and spec.layers[0].units == 8
    assert app.session_state["run_id"] == runs["circle run"]  # a retrain is drawn over it
    go(app, "app_pages/data.py")
    assert app.selectbox(key="dataset").value == "circle" and app.slider(key="n_points").value == 300
    go(app, "app_pages/train.py")
    assert app.slider(key="epochs").value == 3


def test_load_into_editor_of_an_upload_works_while_the_file_is_there(app, runs, kf_home):
    folder = kf_home / "uploads" / "0123456789abcdef"
    folder.mkdir(parents=True)
    csv = folder / "flowers.csv"
    csv.write_text("a,b,kind\n" + "\n".join(f"{i % 5},{i % 3},{'x' if i % 2 else 'y'}" for i in range(40)))
    spec = {
        "data": {"source": "csv", "name": "flowers", "path": str(csv), "target": "kind"},
        "layers": [{"type": "Dense", "units": 4, "activation": "relu"}],
        "train": {"epochs": 2},
    }
    present = copy_run(kf_home, runs["iris run"], "from upload", spec)
    gone = copy_run(
        kf_home, runs["iris run"], "lost upload", {**spec, "data": {**spec["data"], "path": str(folder / "gone.csv")}}
    )
    go(app, RUNS)
    app.selectbox(key="manage_run").select(gone).run()
    app.button(key="load_run").click().run()
    assert any("no longer on this server" in e.value for e in app.error)
    assert app.session_state["spec"].data.name == "digits"  # the editor is left as it was
    app.selectbox(key="manage_run").select(present).run()
    app.button(key="load_run").click().run()
    assert app.session_state["spec"].data.path == str(csv)
    go(app, "app_pages/data.py")
    assert not app.error and app.selectbox(key="target_column").value == "kind"
    for run_id in (present, gone):
        RunStore(kf_home).delete(run_id)


def test_a_regression_runs_results_on_train_are_worded_for_regression(kf_home, runs):
    at = open_app({"run": runs["diabetes run"]}, timeout_s=60)
    go(at, "app_pages/train.py")
    record = RunStore(kf_home).get(runs["diabetes run"])
    shown = metrics(at)
    assert shown["Test mean absolute error"] == runview.format_metric("mae", record.test["mae"])
    assert "Test mae" not in shown
    loss = record.test["loss"]
    assert shown["Test loss"] == (f"{loss:,.0f}" if loss >= 1000 else f"{loss:.4g}") and len(shown["Test loss"]) <= 7
    links = [link.label for link in at.get("page_link")]
    assert any("predictions against the truth" in label for label in links)
    assert not any("confusion matrix" in label for label in links)


def test_evaluate_starts_the_predictor_and_puts_a_2d_runs_boundary_above_its_tables(app, runs):
    from ui import state

    state.predictor.clear()  # a fresh predictor: the page, not an earlier 'Try it', must start it
    evaluate(app, runs["circle run"])
    assert state.predictor().running  # issue 12: the first 'Try it' no longer waits for its Keras import
    order = [c.proto.id for c in app.get("plotly_chart")]
    boundary = next(i for i, key in enumerate(order) if "decision_boundary" in key or "boundary" in key)
    confusion = next(i for i, key in enumerate(order) if key.endswith("confusion"))
    assert boundary < confusion


def test_the_data_page_describes_a_built_in_set_once(app):
    go(app, "app_pages/data.py")
    app.selectbox(key="dataset").select("iris").run()
    from kfcore.data import BUILTIN_INFO

    assert sum(BUILTIN_INFO["iris"] in shown(c.value) for c in app.caption) == 1  # was twice (issue 12)
