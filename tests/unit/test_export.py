"""Export as Python: scripts compile, pass ruff, load and split the run's very samples and, run on their own,
reach the run's test accuracy; metrics export as CSV."""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kfcore.data import DataError, load_dataset, split_dataset
from kfcore.export.script import metrics_csv, python_script
from kfcore.model.shapes import ShapeError, head
from kfcore.spec import parse_spec
from kfcore.training.hardware import describe_host
from kfcore.training.train import _targets, train

CONVNET = [
    {"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu", "padding": "same"},
    {"type": "MaxPooling2D", "pool_size": 2},
    {"type": "Conv2D", "filters": 16, "kernel_size": 3, "activation": "relu", "padding": "same"},
    {"type": "MaxPooling2D", "pool_size": 2},
    {"type": "Flatten"},
    {"type": "Dropout", "rate": 0.5},
]


# -- data files the specs read --------------------------------------------------------------------


def _write_idx(path: Path, arr: np.ndarray, code: int, gz: bool) -> str:
    raw = bytes([0, 0, code, arr.ndim]) + np.array(arr.shape, ">u4").tobytes() + arr.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return str(path)


def _people_csv(path: Path, n: int = 240) -> str:
    """A table with a text column, gaps, an ID column too varied to encode and an empty column."""
    rng = np.random.default_rng(1)
    colours = np.array(["red", "green", "blue"])[rng.integers(0, 3, n)]
    age = rng.integers(18, 80, n).astype(float)
    label = np.where((colours == "red") ^ (age > 50), "yes", "no")
    age[::17] = np.nan
    label[7] = ""  # a row without a target, dropped
    colours = colours.astype(object)
    colours[5::23] = None
    rows = [" age ,colour,id,empty,flag,label"]
    for i in range(n):
        a = "" if np.isnan(age[i]) else f"{age[i]:g}"
        rows.append(f"{a},{colours[i] or ''},id{i},,{i % 3 == 0},{label[i]}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("export_data")
    rng = np.random.default_rng(0)
    (d / "semicolon.csv.txt").write_bytes(gzip.compress(b"a;b;y\n1;2;0.5\n3;inf;1.5\n5;6;2\n7;8;3\n9;1;4\n2;2;5\n"))
    np.savez(d / "table.npz", x=rng.normal(size=40), y=(np.arange(40) % 2)[:, None])
    np.savez(
        d / "images.npz",
        x=rng.uniform(0, 4095, (40, 6, 6)).astype(np.float32),
        y=np.arange(40) % 4 * 10,
        x_test=rng.uniform(0, 4095, (8, 6, 6)).astype(np.float32),
        y_test=np.arange(8) % 4 * 10,
    )
    # "1.037,5": a dot groups thousands, a comma starts the decimals; "car 3" names the row (an ID, dropped)
    eu = ["name;price;weight;y"] + [
        f"car {i};{1 + i // 20}.{(37 * i) % 1000:03d},{i % 10};{i // 2},{(i * 5) % 10};{i % 2}" for i in range(40)
    ]
    (d / "decimal_comma.csv").write_text("\n".join(eu) + "\n", encoding="utf-8")
    us = ["amount,code,y"] + [f'"{1000 + 997 * i:,}",c{i % 3},{i % 3}' for i in range(40)]
    (d / "thousands.csv").write_text("\n".join(us) + "\n", encoding="utf-8")
    return {
        "decimal_comma": str(d / "decimal_comma.csv"),
        "thousands": str(d / "thousands.csv"),
        "csv": _people_csv(d / "people.csv"),
        "semicolon": str(d / "semicolon.csv.txt"),
        "table_npz": str(d / "table.npz"),
        "images_npz": str(d / "images.npz"),
        "images_gz": _write_idx(d / "images-idx3.gz", rng.integers(0, 256, (60, 6, 6), dtype=np.uint8), 0x08, True),
        "labels_gz": _write_idx(d / "labels-idx1.gz", (np.arange(60) % 3).astype(np.uint8), 0x08, True),
        "images_raw": _write_idx(d / "images-f4", rng.uniform(-1, 1, (50, 5, 5)).astype(">f4"), 0x0D, False),
        "labels_raw": _write_idx(d / "labels-i4", np.array([3, 7, 9] * 16 + [3, 7], ">i4"), 0x0C, False),
    }


def _spec(data: dict, layers: list | None = None, split: dict | None = None, output: dict | None = None, **train_):
    d = {
        "data": data,
        "split": {"test": 0.2, "validation": 0.1, "seed": 0, **(split or {})},
        "layers": [{"type": "Dense", "units": 16, "activation": "relu"}] if layers is None else layers,
        "train": {"epochs": 3, "batch_size": 16, **train_},
    }
    if output:
        d["output"] = output
    return parse_spec(d)


@pytest.fixture(scope="module")
def matrix(files) -> dict:
    """Every source, optimizer, schedule and layer kind, and every task, at least once."""
    builtin = {"source": "builtin"}
    return {
        "digits_mlp": _spec({**builtin, "name": "digits"}, [{"type": "Dense", "units": 64, "activation": "relu"}]),
        "digits_convnet": _spec({**builtin, "name": "digits"}, CONVNET, optimizer="sgd", momentum=0.9),
        "iris_regression": _spec({**builtin, "name": "iris", "task": "regression"}, optimizer="adagrad"),
        "wine_onehot": _spec(
            {**builtin, "name": "wine"},
            output={"loss": "categorical_crossentropy"},
            optimizer="rmsprop",
            schedule="cosine",
        ),
        "breast_cancer": _spec(
            {**builtin, "name": "breast_cancer"}, optimizer="adamw", weight_decay=0.01, early_stopping=True, patience=2
        ),
        "diabetes": _spec(
            {**builtin, "name": "diabetes"},
            [{"type": "Dense", "units": 8, "l1": 0.01, "l2": 0.02, "initializer": "he_normal"}],
            schedule="exponential",
        ),
        "diabetes_as_classes": _spec({**builtin, "name": "diabetes", "task": "multiclass"}, split={"validation": 0}),
        **{
            name: _spec(
                {**builtin, "name": name, "n": 120, "noise": 0.2},
                [{"type": "Dense", "units": 8, "activation": "tanh"}, {"type": "BatchNormalization"}],
                output={"activation": "sigmoid"},
            )
            for name in ("circle", "xor", "gauss", "spiral", "moons")
        },
        "csv": _spec(
            {"source": "csv", "path": files["csv"], "target": "label"}, early_stopping=True, restore_best_weights=False
        ),
        "csv_decimal_comma_and_an_id": _spec({"source": "csv", "path": files["decimal_comma"], "target": "y"}),
        "csv_thousands": _spec({"source": "csv", "path": files["thousands"], "target": "y"}),
        "csv_decimal_comma_target": _spec(
            {"source": "csv", "path": files["decimal_comma"], "target": "weight", "task": "regression"}
        ),
        "csv_semicolon_gzip": _spec(
            {"source": "csv", "path": files["semicolon"], "target": "y"},
            split={"test": 0.3, "validation": 0},
            early_stopping=True,
        ),
        "npz_table": _spec({"source": "npz", "path": files["table_npz"]}, [{"type": "Dropout", "rate": 0.2}]),
        "npz_images_own_test": _spec(
            {"source": "npz", "path": files["images_npz"]},
            [
                {
                    "type": "Conv2D",
                    "filters": 4,
                    "kernel_size": [3, 2],
                    "strides": 2,
                    "l2": 0.001,
                    "initializer": "glorot_normal",
                },
                {"type": "MaxPooling2D", "pool_size": 2, "strides": 1, "padding": "same"},
                {"type": "GlobalAveragePooling2D"},
            ],
            split={"validation": 0.25},
        ),
        "idx_gzip": _spec({"source": "idx", "images": files["images_gz"], "labels": files["labels_gz"]}, CONVNET),
        "idx_raw_float": _spec(
            {"source": "idx", "images": files["images_raw"], "labels": files["labels_raw"]}, split={"validation": 0}
        ),
        "mnist": _spec({"source": "keras", "name": "mnist"}, CONVNET, split={"validation": 0.1}),
        "fashion_mnist": _spec(
            {"source": "keras", "name": "fashion_mnist"}, split={"validation": 0}, early_stopping=True
        ),
        "cifar10_regression": _spec(
            {"source": "keras", "name": "cifar10", "task": "regression"}, split={"validation": 0}
        ),
    }


@pytest.fixture(scope="module")
def scripts(matrix) -> dict[str, str]:
    return {name: python_script(spec, name) for name, spec in matrix.items()}


# -- the text -------------------------------------------------------------------------------------


def test_every_script_compiles_and_passes_ruff_with_default_and_project_rules(scripts, tmp_path):
    for name, text in scripts.items():
        compile(text, f"{name}.py", "exec")
        (tmp_path / f"{name}.py").write_text(text, encoding="utf-8")
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    for rules in ([], ["--select", "E,F,W,I,B,UP", "--ignore", "E501"]):  # ruff's defaults, then the project's
        result = subprocess.run(
            [ruff, "check", "--isolated", "--no-cache", *rules, str(tmp_path)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_scripts_stand_alone_and_import_only_what_the_data_needs(scripts):
    for name, text in scripts.items():
        assert "kfcore" not in text, name
        assert ("import pandas" in text) == name.startswith("csv"), name
        assert "keras.utils.set_random_seed(0)" in text and 'model.save("model.keras")' in text, name
    assert "sklearn" not in scripts["cifar10_regression"]  # its own test set and no validation: nothing to split
    assert "keras.datasets.mnist.load_data()" in scripts["mnist"]
    assert "def spiral(" in scripts["spiral"] and "def circle(" not in scripts["spiral"]
    assert "SGD(learning_rate=0.001, momentum=0.9)" in scripts["digits_convnet"]
    assert (
        "ExponentialDecay" in scripts["diabetes"]
        and "AdamW(learning_rate=0.001, weight_decay=0.01)" in scripts["breast_cancer"]
    )


def test_script_is_written_for_its_spec_alone(scripts):
    tutorial = scripts["digits_mlp"]
    sections = [tutorial.index(f"\n# {s}") for s in ("Data", "Split", "Model", "Train", "Evaluate")]
    assert sections == sorted(sections)
    for other in ("pd.read_csv", "np.load", "read_idx", "Normalization", "EarlyStopping", "schedules", "to_categ"):
        assert other not in tutorial
    assert "layers.Flatten(),  # added" in tutorial  # the automatic Flatten before Dense on 8x8 images
    assert "layers.Normalization(mean=x_train.mean(axis=0), variance=x_train.var(axis=0))" in scripts["csv"]
    assert '"id"' in scripts["csv"] and 'df["id"]' not in scripts["csv"]  # dropped as kfcore drops it


def test_scripts_load_and_split_the_runs_samples_exactly(matrix, scripts, files, monkeypatch):
    """The script's code up to '# Model', run beside its data files, leaves the arrays kfcore trains and tests on,
    bit for bit."""
    monkeypatch.chdir(Path(files["csv"]).parent)  # a script names its files without their folder
    for name, spec in matrix.items():
        if spec.data.source == "keras":
            continue  # a download; its loading is the same keras.datasets call
        ds = load_dataset(spec.data, split=spec.split)  # a table's recipe is fitted on the run's training rows
        splits = split_dataset(ds, spec.split)
        loss = head(ds.task, ds.n_classes, spec.output)[2]
        namespace: dict = {}
        exec(compile(scripts[name].split("\n# Model\n")[0], name, "exec"), namespace)  # noqa: S102
        for part in ("train", "val", "test"):
            x, y = getattr(splits, f"x_{part}"), _targets(getattr(splits, f"y_{part}"), loss, ds.n_classes)
            if x is None:  # no validation split
                assert "x_val" not in namespace, name
                continue
            np.testing.assert_array_equal(namespace[f"x_{part}"], x, err_msg=f"{name} x_{part}")
            np.testing.assert_array_equal(namespace[f"y_{part}"], y, err_msg=f"{name} y_{part}")
            assert namespace[f"x_{part}"].dtype == x.dtype, (name, part)


# -- the real check: run them ---------------------------------------------------------------------


def test_exported_scripts_reach_the_runs_test_accuracy(files, tmp_path):
    specs = {
        "iris_mlp": _spec(
            {"source": "builtin", "name": "iris"}, split={"validation": 0.2}, learning_rate=0.01, epochs=15
        ),
        "circle_2_8_8_tanh": _spec(
            {"source": "builtin", "name": "circle", "n": 200, "noise": 0.1},
            [{"type": "Dense", "units": 8, "activation": "tanh"}] * 2,
            learning_rate=0.03,
            epochs=15,
            early_stopping=True,
        ),
        "digits_convnet": _spec(
            {"source": "builtin", "name": "digits"}, CONVNET, learning_rate=0.01, epochs=4, batch_size=64
        ),
        "csv_categorical": _spec(
            {"source": "csv", "path": files["csv"], "target": "label"}, learning_rate=0.01, epochs=8
        ),
        "diabetes_regression": _spec({"source": "builtin", "name": "diabetes"}, epochs=6),
    }
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    runs = {}
    for name, spec in specs.items():  # the scripts run meanwhile, each in a fresh process that cannot see kfcore
        cwd = tmp_path / name
        cwd.mkdir()
        (cwd / "train.py").write_text(python_script(spec, name), encoding="utf-8")
        for path in filter(None, (spec.data.path, spec.data.images, spec.data.labels)):
            shutil.copy(path, cwd)  # "Put people.csv next to this script"
        log = open(cwd / "log.txt", "w")  # a file, not a pipe: a full pipe would stall the script; closed below
        runs[name] = (
            cwd,
            log,
            subprocess.Popen([sys.executable, "train.py"], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT),
        )
    expected = {name: train(spec).test for name, spec in specs.items()}

    # Same samples, seeds, layers and steps: on a CPU the script repeats the run exactly (4-decimal print).
    # On a GPU kfcore trains in mixed precision and the script in float32: agreement within noise only.
    tolerance = 0.05 if describe_host()["gpus"] else 6e-5
    for name, (cwd, log, proc) in runs.items():
        proc.wait(timeout=300)
        log.close()
        output = (cwd / "log.txt").read_text()
        assert proc.returncode == 0, output[-3000:]
        found = dict(re.findall(r"^test (loss|accuracy|mae): (\d+\.\d{4})$", output, re.MULTILINE))
        metric = "mae" if "mae" in expected[name] else "accuracy"
        assert set(found) == {"loss", metric}, output[-3000:]
        scale = 1.0 if metric == "accuracy" else expected[name]["mae"]  # mae in the target's units: relative
        assert abs(float(found[metric]) - expected[name][metric]) <= tolerance * scale, (name, found, expected[name])
        if tolerance < 0.01:  # the loss too: the same weights, not just a similar score
            assert abs(float(found["loss"]) - expected[name]["loss"]) <= 2e-4, (name, found, expected[name])
        assert (cwd / "model.keras").is_file()


# -- refusals -------------------------------------------------------------------------------------


def test_a_run_that_could_not_start_is_refused_with_kfcores_message(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        python_script(_spec({"source": "csv", "path": str(tmp_path / "gone.csv"), "target": "y"}))
    with pytest.raises(ShapeError, match="needs image input"):
        python_script(_spec({"source": "builtin", "name": "iris"}, [{"type": "Conv2D"}]))
    with pytest.raises(DataError, match="exactly 2 classes"):
        python_script(_spec({"source": "keras", "name": "mnist", "task": "binary"}))


# -- metrics CSV ----------------------------------------------------------------------------------


def test_metrics_csv_has_a_header_and_one_column_per_class_accuracy():
    epochs = [
        {
            "epoch": 1,
            "time": 1700000000.5,
            "loss": 0.9,
            "accuracy": 0.5,
            "val_loss": 1.0,
            "val_accuracy": 0.4,
            "learning_rate": 0.001,
            "epoch_time": 0.2,
            "samples_per_s": 5000.0,
            "elapsed": 1.2,
            "per_class_val_accuracy": [0.25, 0.5, 1.0],
        },
        {
            "epoch": 2,
            "time": 1700000001.5,
            "loss": 0.5,
            "accuracy": 0.75,
            "val_loss": 0.6,
            "val_accuracy": 0.7,
            "learning_rate": 0.0009,
            "epoch_time": 0.1,
            "samples_per_s": 6000.0,
            "elapsed": 1.4,
            "per_class_val_accuracy": [0.5, 0.75, 1.0],
        },
    ]
    rows = list(csv.DictReader(io.StringIO(metrics_csv(epochs))))
    assert list(rows[0])[:2] == ["epoch", "time"]
    assert [r["per_class_val_accuracy_1"] for r in rows] == ["0.5", "0.75"]
    assert "per_class_val_accuracy" not in rows[0] and rows[1]["val_accuracy"] == "0.7"
    assert float(rows[0]["time"]) == 1700000000.5


def test_metrics_csv_leaves_missing_fields_empty_and_handles_no_epochs():
    text = metrics_csv([{"epoch": 1, "loss": 2.0, "mae": 1.1}, {"epoch": 2, "loss": 1.5, "val_loss": 1.7}])
    assert text.splitlines() == ["epoch,loss,mae,val_loss", "1,2.0,1.1,", "2,1.5,,1.7"]
    assert metrics_csv([]) == "epoch\n"
