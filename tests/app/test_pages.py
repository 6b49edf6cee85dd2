"""The dashboard driven through Streamlit's AppTest from the entrypoint: every page, data choice and upload,
the layer editor, and real training runs in worker processes (polled with at.run(), as run_every never
fires in AppTest)."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kfcore.data import DataError
from kfcore.runs.store import RunStore
from tests.app.helpers import APP, go, open_app, shown

REPO = Path(__file__).resolve().parents[2]
PAGES = [
    "app_pages/home.py",
    "app_pages/data.py",
    "app_pages/model.py",
    "app_pages/train.py",
    "app_pages/evaluate.py",
    "app_pages/runs.py",
]
TRAIN_DEADLINE_S = 120  # a fresh worker imports TensorFlow first (5-10 s on a small machine)


@pytest.fixture
def kf_home(tmp_path, monkeypatch):
    home = tmp_path / "kf"
    monkeypatch.setenv("KF_HOME", str(home))
    yield home
    from ui import state

    state.shutdown_jobs()  # no worker process outlives its test


@pytest.fixture
def app(kf_home):
    at = open_app()
    assert not at.exception
    return at


def use_dataset(at: AppTest, name: str) -> None:
    go(at, "app_pages/data.py")
    at.selectbox(key="dataset").select(name).run()
    assert at.session_state["spec"].data.name == name


def wait_until_final(at: AppTest, kf_home: Path, deadline_s: float = TRAIN_DEADLINE_S):
    store = RunStore(kf_home)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        record = store.get(at.session_state["run_id"])
        if record.is_final:
            at.run()  # the rerun the live fragment asks for once the run ends
            return record
        time.sleep(0.5)
    pytest.fail(f"the run did not finish within {deadline_s} s")


def sidebar_text(at: AppTest) -> str:
    return " ".join(m.value for m in at.sidebar.markdown)


def chart_traces(at: AppTest, key: str) -> list[dict]:
    chart = next(c for c in at.get("plotly_chart") if key in c.proto.id)
    return json.loads(chart.proto.spec)["data"]


# -- every page -----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_from_the_entrypoint_with_the_sidebar(app, page):
    go(app, page)
    assert app.title, f"{page} has no title"
    text = sidebar_text(app)
    assert "CPU:" in text or "GPU:" in text
    assert "none yet" in text


def test_home_says_what_the_studio_is_for_and_shows_the_hardware(app):
    assert app.title[0].value == "KF Studio"
    text = " ".join(m.value for m in app.main.markdown)
    assert "train" in text.lower() and ("CPU:" in text or "GPU:" in text)
    app.button(key="start").click().run()
    assert app.selectbox(key="dataset").value == "digits"  # Start leads to the Data page


# -- Data page ------------------------------------------------------------------------------------


def test_choosing_iris_updates_the_spec_and_shows_its_rows_and_classes(app):
    use_dataset(app, "iris")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Rows"] == "150" and metrics["Classes"] == "3" and metrics["Features"] == "4"
    assert app.session_state["spec"].data.source == "builtin"
    assert app.get("plotly_chart"), "class balance and split charts"


def test_digits_shows_a_sample_grid_and_circle_a_scatter_with_noise_controls(app):
    go(app, "app_pages/data.py")
    assert any("samples" in c.proto.id for c in app.get("plotly_chart"))
    use_dataset(app, "circle")
    assert any("scatter" in c.proto.id for c in app.get("plotly_chart"))
    app.slider(key="noise").set_value(0.3).run()
    assert app.session_state["spec"].data.noise == pytest.approx(0.3)


def test_a_broken_csv_upload_is_explained_and_the_previous_dataset_stays(app):
    use_dataset(app, "wine")
    app.selectbox(key="dataset").select("upload").run()
    app.file_uploader(key="upload").set_value(("table.csv", b"PK\x03\x04 not a table", "text/csv")).run()
    assert not app.exception
    assert any("table.csv is an Excel workbook or zip archive, not CSV" in shown(e.value) for e in app.error)
    assert app.session_state["spec"].data.name == "wine"


def test_a_csv_upload_becomes_the_dataset_with_the_chosen_target(app, kf_home):
    rows = "\n".join(f"{i % 7},{(i * 3) % 11},{'yes' if i % 2 else 'no'}" for i in range(60))
    go(app, "app_pages/data.py")
    app.selectbox(key="dataset").select("upload").run()
    app.file_uploader(key="upload").set_value(("survey.csv", f"a,b,answer\n{rows}".encode(), "text/csv")).run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    # No column is named like a target: nothing is guessed (the last column is often an ID or a year).
    assert app.selectbox(key="target_column").value is None and app.session_state["spec"].data.source == "builtin"
    assert any("choose it above" in i.value for i in app.info)
    app.selectbox(key="target_column").select("answer").run()
    data = app.session_state["spec"].data
    assert (data.source, data.target, data.name) == ("csv", "answer", "survey")
    assert re.fullmatch(r"[0-9a-f]{16}/survey\.csv", data.path)  # a reference into the store, not a server path
    assert (kf_home / "uploads" / data.path).is_file()
    assert app.selectbox(key="target_column").value == "answer"
    app.selectbox(key="target_column").select("a").run()
    assert app.session_state["spec"].data.target == "a"
    assert any(
        "regression: " not in c.value and "classes in the target column 'a'" in shown(c.value) for c in app.caption
    )  # the task comes with its reason


def test_a_column_named_like_a_target_is_proposed(app):
    rows = "\n".join(f"{2000 + i % 3},{i % 5},{'ab'[i % 2]}" for i in range(40))
    go(app, "app_pages/data.py")
    app.selectbox(key="dataset").select("upload").run()
    app.file_uploader(key="upload").set_value(("pets.csv", f"year,legs,Label\n{rows}".encode(), "text/csv")).run()
    assert app.selectbox(key="target_column").value == "Label"
    assert app.session_state["spec"].data.target == "Label"


def test_uploads_are_kept_once_by_content_and_other_file_types_refused(tmp_path):
    from ui.datasets import save_upload

    first = save_upload("my table (v2).csv", b"x,y\n1,2\n", root=tmp_path)
    assert first.name == "my_table_v2.csv" and first.parent.parent == tmp_path / "uploads"
    assert save_upload("my table (v2).csv", b"x,y\n1,2\n", root=tmp_path) == first
    assert save_upload("my table (v2).csv", b"x,y\n3,4\n", root=tmp_path).parent != first.parent
    assert save_upload("big.csv.gz", b"\x1f\x8b", root=tmp_path).name == "big.csv.gz"
    with pytest.raises(DataError, match="only .csv"):
        save_upload("model.pkl", b"x", root=tmp_path)


# -- Model page -----------------------------------------------------------------------------------


def layer_types(at: AppTest) -> list[str]:
    return [layer.type for layer in at.session_state["spec"].layers]


def test_layers_can_be_added_duplicated_moved_and_removed(app):
    go(app, "app_pages/model.py")
    assert layer_types(app) == ["Dense"]
    app.selectbox(key="add_layer_type").select("Dropout").run()
    app.button(key="add_layer").click().run()
    assert layer_types(app) == ["Dense", "Dropout"]
    first, second = app.session_state["layer_ids"]
    app.number_input(key=f"layer{first}_units").set_value(16).run()
    app.button(key=f"layer{first}_duplicate").click().run()
    assert layer_types(app) == ["Dense", "Dense", "Dropout"]
    assert [layer.units for layer in app.session_state["spec"].layers[:2]] == [16, 16]
    app.button(key=f"layer{second}_up").click().run()
    assert layer_types(app) == ["Dense", "Dropout", "Dense"]
    # The moved layer keeps its widgets (keyed by its id, not its place).
    app.slider(key=f"layer{second}_rate").set_value(0.25).run()
    assert app.session_state["spec"].layers[1].rate == pytest.approx(0.25)
    app.button(key=f"layer{first}_remove").click().run()
    assert layer_types(app) == ["Dropout", "Dense"]
    assert not app.error
    table = app.dataframe[0].value
    assert list(table["Layer"])[-1].startswith("Output (Dense 10, softmax)")


def test_the_two_kinds_the_registry_added_are_edited_like_any_other(app):
    go(app, "app_pages/model.py")  # digits, 8x8 images
    for kind in ("Conv2D", "AveragePooling2D", "LayerNormalization"):
        app.selectbox(key="add_layer_type").select(kind).run()
        app.button(key="add_layer").click().run()
    _, conv, pool, norm = app.session_state["layer_ids"]
    app.selectbox(key=f"layer{conv}_padding").select("same").run()
    app.selectbox(key=f"layer{pool}_pool_size").set_value(4).run()
    app.selectbox(key=f"layer{norm}_epsilon").set_value(1e-5).run()
    layers = app.session_state["spec"].layers
    assert [layer.type for layer in layers] == ["Dense", "Conv2D", "AveragePooling2D", "LayerNormalization"]
    assert layers[2].pool_size == 4 and layers[3].epsilon == pytest.approx(1e-5)
    assert any("needs image input" in e.value for e in app.error)  # the Dense first flattened the image
    app.button(key=f"layer{app.session_state['layer_ids'][0]}_remove").click().run()
    assert not app.error
    rows = list(app.dataframe[0].value["Layer"])
    assert rows[1:4] == ["Conv2D 1", "AveragePooling2D 2", "LayerNormalization 3"]
    assert list(app.dataframe[0].value["Output shape"])[2] == "2×2×32"  # 8x8 "same" conv, then a 4x4 pool


def test_conv2d_on_tabular_data_is_refused_with_reason_before_training(app):
    use_dataset(app, "iris")
    go(app, "app_pages/model.py")
    app.selectbox(key="add_layer_type").select("Conv2D").run()
    app.button(key="add_layer").click().run()
    assert any("needs image input" in e.value and "tabular input" in e.value for e in app.error)
    go(app, "app_pages/train.py")
    assert app.button(key="train").disabled
    assert any("cannot train yet" in e.value for e in app.error)


def test_a_preset_that_does_not_fit_the_data_is_refused_and_the_stack_kept(app):
    use_dataset(app, "iris")
    go(app, "app_pages/model.py")
    app.button(key="preset_convnet").click().run()
    assert any("does not fit" in e.value for e in app.error)
    assert layer_types(app) == ["Dense"]


def test_the_presets_build_on_the_default_digits(app):
    go(app, "app_pages/model.py")
    app.button(key="preset_convnet").click().run()
    assert layer_types(app) == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dropout"]
    assert not app.error
    app.button(key="preset_playground").click().run()
    assert [(layer.units, layer.activation) for layer in app.session_state["spec"].layers] == [(8, "tanh")] * 2


def test_a_layer_that_cannot_learn_gets_advice_on_model_and_train_and_still_trains(app):
    go(app, "app_pages/model.py")
    assert not app.warning
    (lid,) = app.session_state["layer_ids"]
    app.number_input(key=f"layer{lid}_units").set_value(1).run()
    app.selectbox(key=f"layer{lid}_activation").select("softmax").run()
    assert [w.value for w in app.warning] == [
        "Layer 1: Dense(1, softmax) always outputs 1, so nothing after it can learn; use relu or tanh, or more units."
    ]
    assert not app.error
    go(app, "app_pages/train.py")
    assert any("Dense(1, softmax)" in w.value for w in app.warning)
    assert not app.button(key="train").disabled  # advice, not a refusal: exploring it is allowed
    go(app, "app_pages/model.py")
    app.selectbox(key=f"layer{lid}_activation").select("relu").run()
    assert not app.warning


# -- Train page -----------------------------------------------------------------------------------


def test_training_a_tiny_set_shows_live_curves_then_test_results(app, kf_home):
    use_dataset(app, "iris")
    go(app, "app_pages/train.py")
    assert not app.button(key="train").disabled
    app.slider(key="epochs").set_value(3).run()
    app.button(key="train").click().run()
    assert app.button(key="train").disabled  # no double submit while queued or running
    record = wait_until_final(app, kf_home)
    assert record.status == "finished", record.error
    assert [e["epoch"] for e in RunStore(kf_home).epochs(record.id)] == [1, 2, 3]
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Test accuracy"].endswith("%") and metrics["Best epoch"].endswith("of 3")
    names = [t["name"] for t in chart_traces(app, "chart_loss")]
    assert names == ["train", "validation", "best epoch"]
    assert "finished — test accuracy" in sidebar_text(app)
    assert not app.button(key="train").disabled and app.button(key="stop").disabled
    assert app.query_params["run"] == record.id


def test_a_retrain_keeps_the_previous_runs_curves_dashed(app, kf_home):
    use_dataset(app, "iris")
    go(app, "app_pages/train.py")
    app.slider(key="epochs").set_value(2).run()
    app.button(key="train").click().run()
    first = wait_until_final(app, kf_home)
    app.select_slider(key="learning_rate").set_value(0.01).run()
    app.button(key="train").click().run()
    second = wait_until_final(app, kf_home)
    assert second.spec["train"]["learning_rate"] == 0.01 and second.id != first.id
    assert app.session_state["previous_run_id"] == first.id
    traces = {t["name"]: t for t in chart_traces(app, "chart_metric")}
    assert traces["previous · train"]["line"]["dash"] == "dash"
    assert traces["train"]["line"].get("dash") is None


def test_a_run_on_other_data_is_never_drawn_dashed_and_the_comparison_is_picked_among_same_data_runs(app, kf_home):
    use_dataset(app, "iris")
    go(app, "app_pages/train.py")
    app.slider(key="epochs").set_value(2).run()
    app.button(key="train").click().run()
    iris = wait_until_final(app, kf_home)
    use_dataset(app, "wine")
    go(app, "app_pages/train.py")
    app.button(key="train").click().run()
    wine = wait_until_final(app, kf_home)
    assert wine.id != iris.id and app.session_state["previous_run_id"] is None  # issue 12: not the iris run
    assert not [t for t in chart_traces(app, "chart_loss") if t["name"].startswith("previous")]
    assert app.selectbox(key="compare_with").options == ["none"]
    app.button(key="train").click().run()  # a second wine run: the first is offered, and drawn
    again = wait_until_final(app, kf_home)
    assert again.id != wine.id and app.session_state["previous_run_id"] == wine.id
    assert app.selectbox(key="compare_with").options == ["none", wine.name]
    app.selectbox(key="compare_with").select(None).run()
    assert not [t for t in chart_traces(app, "chart_loss") if t["name"].startswith("previous")]


def test_train_says_when_results_are_of_other_data_and_when_changes_wait_for_the_next_run(app, kf_home):
    use_dataset(app, "iris")
    go(app, "app_pages/train.py")
    app.slider(key="epochs").set_value(2).run()
    app.button(key="train").click().run()
    wait_until_final(app, kf_home)
    assert not app.info and not [c for c in app.caption if "apply to the next run" in c.value]
    app.select_slider(key="batch_size").set_value(64).run()
    assert any("apply to the next run" in c.value for c in app.caption)
    app.button(key="reset_hyperparameters").click().run()
    assert (app.slider(key="epochs").value, app.select_slider(key="batch_size").value) == (10, 32)
    use_dataset(app, "wine")
    go(app, "app_pages/train.py")
    assert any("trained on other data" in i.value for i in app.info)


def train_iris(app, kf_home, epochs: int, learning_rate: float):
    """Train iris from the Train page's sliders; the run once it has ended."""
    use_dataset(app, "iris")
    go(app, "app_pages/train.py")
    app.slider(key="epochs").set_value(epochs).run()
    app.select_slider(key="learning_rate").set_value(learning_rate).run()
    app.button(key="train").click().run()
    return wait_until_final(app, kf_home)


def test_the_coach_reads_a_run_that_learned_nothing_and_retrains_a_child_with_one_change(app, kf_home):
    first = train_iris(app, kf_home, 2, 1e-5)
    assert any("close to what guessing the most common class gets" in m.value for m in app.markdown)
    app.button(key="coach_train_near_chance").click().run()
    child = wait_until_final(app, kf_home)
    assert child.id != first.id and child.parent == first.id
    assert child.spec["train"]["learning_rate"] == pytest.approx(1e-4)
    assert {k: v for k, v in child.spec["train"].items() if k != "learning_rate"} == {
        k: v for k, v in first.spec["train"].items() if k != "learning_rate"
    }
    assert app.session_state["spec"].train.learning_rate == pytest.approx(1e-4)  # the editor shows what trained
    go(app, "app_pages/runs.py")
    table = next(d.value for d in app.dataframe if "From" in d.value.columns)
    assert dict(zip(table["Name"], table["From"], strict=True))[child.name] == first.name  # the lineage, on Runs


def test_the_coach_continues_a_run_that_was_still_improving_from_where_it_ended(app, kf_home):
    first = train_iris(app, kf_home, 4, 3e-3)
    (button,) = [b for b in app.button if b.key.startswith("coach_train_") and b.label.startswith("Continue ")]
    more = int(button.label.split()[1])
    button.click().run()
    child = wait_until_final(app, kf_home)
    assert child.parent == first.id and child.continues and child.spec["train"]["epochs"] == more
    epochs = RunStore(kf_home).epochs(child.id)
    assert [e["epoch"] for e in epochs] == list(range(5, 5 + more))  # on from the parent's last epoch
    assert app.session_state["run_id"] == child.id


def test_stop_cancels_a_long_run(app, kf_home):
    go(app, "app_pages/train.py")
    app.session_state["spec"].train.epochs = 10_000  # small data trains hundreds of epochs a second: make it long
    app.button(key="train").click().run()
    store = RunStore(kf_home)
    end = time.monotonic() + TRAIN_DEADLINE_S
    while not store.epochs(app.session_state["run_id"]) and time.monotonic() < end:
        time.sleep(0.5)
    app.run()
    app.button(key="stop").click().run()
    record = wait_until_final(app, kf_home, deadline_s=30)
    assert record.status == "cancelled"
    assert any("was stopped after" in w.value for w in app.warning)


def test_a_reloaded_tab_finds_its_run_and_spec_again(kf_home):
    store = RunStore(kf_home)
    run_id = store.create_run({"data": {"source": "builtin", "name": "wine"}, "train": {"epochs": 7}})
    store.mark_cancelled(run_id)
    at = open_app({"run": run_id})
    assert at.session_state["run_id"] == run_id
    assert at.session_state["spec"].data.name == "wine" and at.session_state["spec"].train.epochs == 7
    assert "cancelled" in sidebar_text(at)


def test_every_session_shares_one_loaded_dataset_and_reruns_neither_load_nor_split_it(kf_home, monkeypatch):
    """The pages draw from the web process's byte-bounded cache (kfcore.data.cache) and the Model page's check never
    splits the data (kfcore.training.train.assess touches no array; the split sizes are cached)."""
    from kfcore.data.cache import DatasetCache, dataset_bytes
    from kfcore.training import train
    from ui import datasets

    loads = []
    real_load = datasets.load_dataset

    def counting(spec, *args, **kwargs):
        loads.append(spec.name)
        return real_load(spec, *args, **kwargs)

    def no_split(*args, **kwargs):
        raise AssertionError("a page split the data through prepare()")

    monkeypatch.setattr(datasets, "_CACHE", DatasetCache())
    monkeypatch.setattr(datasets, "load_dataset", counting)
    monkeypatch.setattr(train, "split_dataset", no_split)
    first, second = open_app(), open_app()  # two browsers
    for at in (first, second, first):
        for page in ("app_pages/model.py", "app_pages/data.py", "app_pages/train.py"):
            go(at, page)
    assert loads == ["digits"]
    (key,) = datasets._CACHE.keys()
    assert datasets._CACHE.nbytes == dataset_bytes(datasets._CACHE.get_or_load(key, no_split, 1 << 40))


def test_the_web_process_never_imports_tensorflow(kf_home):
    script = f"""
import sys
from streamlit.testing.v1 import AppTest
from ui.state import services
services.WARM_IMPORTS_DELAY_S = 3600  # the page's own imports, not the background warm-up's a few seconds later
at = AppTest.from_file({APP!r}, default_timeout=60)
at.run()
for page in {PAGES!r}:
    at.switch_page(page).run()
    assert not at.exception, page
from ui import state
state.shutdown_jobs()
print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_landing_page_loads_neither_numpy_nor_pandas(kf_home):
    # Issue 12: the first visitor's page took 1.55-1.9× a bare Streamlit page under load; importing numpy and
    # pandas (through the Share control's export and the job module's Dataset) was most of the difference.
    script = f"""
import sys
from streamlit.testing.v1 import AppTest
from ui.state import services
services.WARM_IMPORTS_DELAY_S = 3600  # the page's own imports, not the background warm-up's a few seconds later
at = AppTest.from_file({APP!r}, default_timeout=60)
at.run()
assert not at.exception
from ui import state
state.shutdown_jobs()
print(sorted(m for m in ("numpy", "pandas", "sklearn", "kfcore.export") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_shipped_server_config_hides_tracebacks_and_skips_a_full_gc_after_every_script_run():
    import tomllib

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
    # On, Streamlit's collection after each script run (every live-chart refresh) saturated the server's
    # core with 8 sessions training: renders > 30 s instead of 0.2 s (bench/bench_load.py's baseline pass).
    assert config["runner"]["postScriptGC"] is False
