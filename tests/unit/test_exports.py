"""Every export format, each checked in its own runtime: SavedModel with tf.saved_model.load, TFLite with the LiteRT
interpreter, ONNX with onnxruntime, event files with TensorBoard's reader; bundles round-trip between two stores
and hostile ones are refused. Two tiny runs (a table from an uploaded CSV, digits images through every image layer
kind) are trained once for the module."""

import hashlib
import io
import json
import re
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kfcore.export import convert, formats
from kfcore.export.bundle import BundleError, import_bundle, read_bundle
from kfcore.runs.jobs import execute_run
from kfcore.runs.limits import Limits, can_modify
from kfcore.runs.store import RunStore
from kfcore.spec import RunSpec
from tests.unit.test_cli import run_cli

TOLERANCE = 1e-4  # float32: the same graph in another runtime

TABLE_SPEC = {
    "data": {"source": "csv", "target": "species"},
    "split": {"test": 0.2, "validation": 0.2, "seed": 0},
    "layers": [
        {"type": "Dense", "units": 16, "activation": "relu"},
        {"type": "BatchNormalization"},
        {"type": "Dropout", "rate": 0.1},
    ],
    "train": {"optimizer": "adam", "learning_rate": 0.01, "epochs": 3, "batch_size": 16, "seed": 0},
}
IMAGE_SPEC = {
    "data": {"source": "builtin", "name": "digits"},
    "split": {"test": 0.2, "validation": 0.1, "seed": 0},
    "layers": [
        {"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu", "padding": "same"},
        {"type": "BatchNormalization"},
        {"type": "MaxPooling2D", "pool_size": 2},
        {"type": "LayerNormalization"},
        {"type": "AveragePooling2D", "pool_size": 2},
        {"type": "Flatten"},
        {"type": "Dense", "units": 64, "activation": "swish"},
        {"type": "Dropout", "rate": 0.1},
    ],
    "train": {"optimizer": "adam", "learning_rate": 0.01, "epochs": 2, "batch_size": 32, "seed": 0},
}


def _table_csv() -> bytes:
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    frame = iris.frame.rename(columns={"target": "species"})
    frame["species"] = [iris.target_names[i] for i in frame["species"]]
    frame["colour"] = [
        ("red", "green", "blue")[i % 3] for i in frame.index
    ]  # a text column: the recipe one-hot encodes it
    return frame.to_csv(index=False).encode()


def _upload(store: RunStore, name: str, content: bytes) -> str:
    ref = f"{hashlib.sha256(content).hexdigest()[:16]}/{name}"
    path = store.uploads_dir / ref
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return ref


def _train(store: RunStore, spec: dict, name: str) -> str:
    run_id = store.create_run(spec, name=name)
    assert store.start_in_process(run_id)
    result = execute_run(store, run_id)
    assert result.status == "finished", result
    return run_id


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("exports") / "store")
    table = {**TABLE_SPEC, "data": {**TABLE_SPEC["data"], "path": _upload(store, "flowers.csv", _table_csv())}}
    return store, {"table": _train(store, table, "table <b>run</b>"), "image": _train(store, IMAGE_SPEC, "images")}


@pytest.fixture(scope="module", params=["table", "image"])
def run(request, trained):
    """(store, record, its test inputs, the .keras model's outputs for them)."""
    store, ids = trained
    record = store.get(ids[request.param])
    test = formats.run_test_split(store, record)
    assert isinstance(test, convert.TestSplit), test
    reference = convert.load_keras(record.model_path).predict(test.x, verbose=0)
    return store, record, test, reference


def test_savedmodel_serves_the_keras_models_outputs(run, tmp_path):
    import tensorflow as tf

    store, record, test, reference = run
    result = formats.export(store, record, "savedmodel", tmp_path)
    loaded = tf.saved_model.load(str(tmp_path / convert.SAVEDMODEL_DIR))
    signature = loaded.signatures["serving_default"]
    (name,) = signature.structured_input_signature[1]
    outputs = next(iter(signature(**{name: tf.constant(test.x, tf.float32)}).values())).numpy()
    assert np.abs(outputs - reference).max() <= TOLERANCE
    assert np.abs(loaded.serve(test.x).numpy() - reference).max() <= TOLERANCE
    tables = record.spec["data"]["source"] == "csv"
    assert ((tmp_path / "recipe.json").is_file()) is tables  # a table's export carries what encodes raw rows
    assert any("encoded columns" in note for note in result.notes) is tables


def test_tflite_float32_gives_the_keras_models_outputs_in_litert(run, tmp_path):
    store, record, test, reference = run
    result = formats.export(store, record, "tflite", tmp_path)
    outputs = convert.tflite_outputs((tmp_path / convert.TFLITE_FILE).read_bytes(), test.x)
    assert np.abs(outputs - reference).max() <= TOLERANCE
    size_kib = (tmp_path / convert.TFLITE_FILE).stat().st_size / 1024
    assert any(f"{size_kib:,.1f} KiB" in note and "test accuracy" in note for note in result.notes), result.notes


def test_onnx_gives_the_keras_models_outputs_in_onnxruntime(run, tmp_path):
    store, record, test, reference = run
    formats.export(store, record, "onnx", tmp_path)
    outputs = convert.onnx_outputs(tmp_path / convert.ONNX_FILE, test.x)
    assert np.abs(outputs - reference).max() <= TOLERANCE


def test_onnx_refuses_a_model_with_an_op_onnx_lacks_and_names_its_layer(tmp_path):
    import keras

    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, activation="relu", name="fine"),
            keras.layers.Dense(2, activation="gelu", name="smooth"),
        ]
    )
    with pytest.raises(convert.FormatError, match=r"smooth \(TensorFlow op Erfc\)") as refused:
        convert.onnx_bytes(model)
    assert "fine" not in str(refused.value) and "SavedModel or TFLite" in str(refused.value)


def test_dynamic_quantisation_from_the_cli_prints_the_smaller_size_and_the_measured_accuracy_change(trained, tmp_path):
    store, ids = trained
    out = run_cli(
        "export", ids["image"], "--format", "tflite", "--quantize", "dynamic", "--out", tmp_path, "--store", store.root
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [str(tmp_path / convert.TFLITE_FILE)]
    flatbuffer = (tmp_path / convert.TFLITE_FILE).read_bytes()
    record = store.get(ids["image"])
    test = formats.run_test_split(store, record)
    model = convert.load_keras(record.model_path)
    float_size = len(convert.tflite_bytes(model))
    dense_kernel = 32 * 64  # the one tensor over the converter's 1,024-weight floor: 3 of its 4 bytes per weight go
    assert float_size - len(flatbuffer) > 0.6 * 3 * dense_kernel
    lite = convert.score(convert.tflite_outputs(flatbuffer, test.x), test)[1]
    keras_score = convert.score(model.predict(test.x, verbose=0), test)[1]
    assert f"test accuracy {lite:.4f} with LiteRT, {keras_score:.4f} with the .keras model" in out.stderr
    assert f"float32 flatbuffer is {float_size / 1024:,.1f} KiB" in out.stderr


def test_tensorboard_reads_the_event_files_as_the_runs_curves(trained, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    store, ids = trained
    record = store.get(ids["table"])
    history = store.epochs(record.id)
    formats.export(store, record, "tensorboard", tmp_path)
    curves = {}
    for part in ("train", "validation"):
        acc = EventAccumulator(str(tmp_path / "tensorboard" / part), size_guidance={"tensors": 0})
        acc.Reload()
        curves[part] = {
            tag: [
                (e.step, float(np.asarray(__import__("tensorflow").make_ndarray(e.tensor_proto))))
                for e in acc.Tensors(tag)
            ]
            for tag in acc.Tags()["tensors"]
        }
    assert curves["train"]["epoch_loss"] == pytest.approx([(r["epoch"], r["loss"]) for r in history])
    assert curves["validation"]["epoch_accuracy"] == pytest.approx([(r["epoch"], r["val_accuracy"]) for r in history])
    per_class = curves["validation"]["epoch_accuracy_per_class/setosa"]
    assert per_class == pytest.approx([(r["epoch"], r["per_class_val_accuracy"][0]) for r in history])


def test_the_card_is_one_offline_html_file_with_the_runs_facts(trained, tmp_path):
    store, ids = trained
    record = store.get(ids["table"])
    formats.export(store, record, "card", tmp_path)
    page = (tmp_path / "card.html").read_text(encoding="utf-8")
    assert "<script src" not in page and "<link" not in page  # nothing fetched: it reads offline
    assert "Plotly.newPlot" in page and "plotly.js" in page.lower()  # the curves, with their JS inline
    assert "table &lt;b&gt;run&lt;/b&gt;" in page and "<b>run</b>" not in page  # user text escaped
    for fact in (
        "flowers.csv",
        "colour",
        "category",
        "Dense",
        "BatchNormalization",
        "learning_rate",
        "adam",
        record.hardware["device"],
        "Confusion matrix",
        "virginica",
        "precision",
        "recall",
    ):
        assert fact in page, fact
    for line in formats.FORMATS.values():
        assert line.replace("'", "&#x27;") in page


def test_a_bundle_round_trips_into_another_store_as_a_read_only_run_that_forks(trained, tmp_path):
    store, ids = trained
    out = run_cli("export", ids["table"], "--format", "bundle", "--out", tmp_path, "--store", store.root)
    assert out.returncode == 0, out.stderr
    (path,) = map(Path, out.stdout.splitlines())
    other = RunStore(tmp_path / "other")
    imported = run_cli("import", path, "--store", other.root)
    assert imported.returncode == 0, imported.stderr
    new_id = json.loads(imported.stdout)["run_id"]

    original, copy = store.get(ids["table"]), other.get(new_id)
    assert copy.status == "finished" and copy.name == original.name and copy.test == original.test
    assert copy.evaluation == original.evaluation
    assert RunSpec.from_dict(copy.spec) == RunSpec.from_dict(original.spec)
    assert other.epochs(new_id) == store.epochs(original.id)
    assert copy.imported["run"] == original.id
    assert not can_modify(copy, None, Limits.from_env({}))  # read-only, even locally
    assert copy.id in run_cli("runs", "--store", other.root).stdout
    model = convert.load_keras(copy.model_path)
    test = formats.run_test_split(other, copy)  # its upload came along: the data loads in the other store
    np.testing.assert_allclose(
        model.predict(test.x, verbose=0), convert.load_keras(original.model_path).predict(test.x, verbose=0), atol=1e-6
    )

    fork = {**copy.spec, "train": {**copy.spec["train"], "epochs": 1}}  # what Fork into editor then Train runs
    fork_id = _train(other, fork, "fork")
    assert other.get(fork_id).test["accuracy"] > 0


@pytest.fixture(scope="module")
def bundle_bytes(trained, tmp_path_factory) -> bytes:
    store, ids = trained
    result = formats.export(store, store.get(ids["table"]), "bundle", tmp_path_factory.mktemp("bundle"))
    return result.files[0].read_bytes()


def _rewrite(original: bytes, change) -> bytes:
    """The bundle with its members passed through change(name, data) -> [(name, data), ...]."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            for name, data in change(info.filename, src.read(info)):
                dst.writestr(name, data)
    return out.getvalue()


def _add(extra_name, extra_data):
    return lambda n, d: [(n, d)] + ([(extra_name, extra_data)] if n == "manifest.json" else [])


def _replace(member, data):
    return lambda n, d: [(n, data if n == member else d)]


HOSTILE = {
    "zip-slip": (_add("../../evil.py", b"print('owned')"), "whose path leaves the bundle"),
    "absolute path": (_add("/etc/cron.d/evil", b"x"), "whose path leaves the bundle"),
    "unknown member": (_add("run.sh", b"rm -rf /"), "which no KF Studio bundle has"),
    "bomb": (_replace("card.html", b"\0" * (64 << 20)), "ZIP bomb"),
    "bad JSON": (_replace("history.json", b'[{"epoch": 1,'), "history.json is not valid JSON"),
    "deep JSON": (_replace("evaluation.json", b"[" * 5000 + b"]" * 5000), "nests 5,000 levels"),
    "not a manifest": (_replace("manifest.json", b'{"format": "other"}'), "does not say so"),
    "bad spec": (_replace("spec.json", b'{"layers": "all of them"}'), "not a valid run spec"),
    "text in the history": (_replace("history.json", b'[{"epoch": 1, "loss": "<script>"}]'), "not numbers"),
    "odd evaluation": (
        _replace("evaluation.json", b'{"confusion_matrix": [[1, 2]], "class_names": ["a", "b"]}'),
        "not a KF Studio evaluation",
    ),
    "bad model": (_replace("model.keras", b"not a model"), "model.keras is damaged"),
    "changed data": (
        lambda n, d: [(n, d + b"5,5,5,5,setosa,red\n" if n.startswith("data/") else d)],
        "does not match its checksum",
    ),
    "missing model": (lambda n, d: [] if n == "model.keras" else [(n, d)], "it lacks model.keras"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_bundles_are_refused_with_a_clear_message_and_nothing_imported(bundle_bytes, tmp_path, case):
    change, words = HOSTILE[case]
    path = tmp_path / "hostile.zip"
    path.write_bytes(_rewrite(bundle_bytes, change))
    other = RunStore(tmp_path / "other")
    with pytest.raises(BundleError, match=re.escape(words)):
        import_bundle(path, other)
    assert other.list_runs() == [] and not any(other.uploads_dir.rglob("*.csv"))
    assert not (tmp_path / "evil.py").exists()


def test_bundles_over_the_size_limit_or_not_zips_are_refused_before_reading(bundle_bytes, tmp_path):
    path = tmp_path / "big.zip"
    path.write_bytes(bundle_bytes + b"\0" * (2 << 20))
    with pytest.raises(BundleError, match="over the 1 MB a bundle may be here"):
        read_bundle(path, max_upload_mb=1)
    path.write_bytes(b"PK not really")
    out = run_cli("import", path, "--store", tmp_path / "other")
    assert out.returncode == 2 and out.stderr.startswith("error: big.zip is not a KF Studio bundle")
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_cli_refuses_unknown_formats_and_misplaced_quantisation_in_one_line(trained, tmp_path):
    store, ids = trained
    for args, words in (
        (("--format", "pickle"), "invalid choice: 'pickle'"),
        (("--format", "onnx", "--quantize", "dynamic"), "applies to the tflite format only"),
    ):
        out = run_cli("export", ids["table"], *args, "--out", tmp_path, "--store", store.root)
        assert out.returncode == 2 and words in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_the_dashboard_runs_an_export_in_a_child_process_with_progress(trained, tmp_path):
    store, ids = trained
    events = list(formats.in_subprocess(store.root, ids["table"], "onnx", tmp_path))
    steps, done = events[:-1], events[-1]
    assert steps and all(isinstance(s, str) for s in steps) and "converting to onnx" in steps
    assert isinstance(done, formats.Exported) and done.files[0] == tmp_path / convert.ONNX_FILE
    with pytest.raises(formats.ExportError, match="no run with id 'nope'"):
        list(formats.in_subprocess(store.root, "nope", "onnx", tmp_path))


def test_exports_wait_for_a_free_slot_and_one_made_meanwhile_is_taken_as_it_is(trained, monkeypatch):
    # Each export child imports TensorFlow: no more at once than runs may train (here one), the next says it waits.
    store, ids = trained
    monkeypatch.setattr(formats, "_export_slots", formats._ExportSlots(slots=threading.BoundedSemaphore(1)))
    real, children, inside = formats.in_subprocess, [], threading.Event()

    def child(*args, **kwargs):
        children.append(args)
        inside.set()
        yield from real(*args, **kwargs)

    monkeypatch.setattr(formats, "in_subprocess", child)
    seen: dict[str, list] = {}

    def export(who):
        seen[who] = list(formats.prepared(store, ids["table"], "card"))

    first = threading.Thread(target=export, args=("first",))
    first.start()
    assert inside.wait(60)
    export("second")  # while the first one's child runs
    first.join(120)
    assert seen["second"][0] == formats.EXPORT_WAITING and isinstance(seen["second"][-1], formats.Exported)
    assert formats.EXPORT_WAITING not in seen["first"] and len(children) == 1  # the card was made once
    assert seen["second"][-1].files == seen["first"][-1].files


def test_a_store_made_before_imports_gains_the_column_and_keeps_its_runs(tmp_path):
    import sqlite3

    store = RunStore(tmp_path / "s")
    run_id = store.create_run({"data": {}}, name="old")
    store.close()
    con = sqlite3.connect(tmp_path / "s" / "runs.sqlite")
    con.execute("ALTER TABLE runs DROP COLUMN imported")
    con.commit()
    con.close()
    reopened = RunStore(tmp_path / "s")
    assert reopened.get(run_id).name == "old" and reopened.get(run_id).imported is None
