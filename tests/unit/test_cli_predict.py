"""`kfcore predict` and `kfcore export` on a run trained from an uploaded table: raw rows in, the run's own test
predictions out; the exported script, moved elsewhere with its data file, prints the run's test metrics."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kfcore.data.recipe import Recipe
from kfcore.runs.store import RunStore
from kfcore.training.evaluate import probabilities_to_classes
from tests.unit.test_cli import run_cli, write_spec


def _table(path, n=240):
    rng = np.random.default_rng(2)
    colour = rng.choice(["red", "green", "blue"], n).astype(object)
    age = rng.integers(18, 80, n).astype(float)
    label = np.where((colour == "red") ^ (age > 50), "yes", "no")
    age[::17] = np.nan
    colour[5::23] = None
    pd.DataFrame(
        {
            "id": [f"id{i}" for i in range(n)],
            "age": age,
            "colour": colour,
            "amount": [f"{1000 + 37 * i:,}" for i in range(n)],
            "label": label,
        }
    ).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run on an uploaded table, trained by the CLI: (store dir, run id, the table's path)."""
    root = tmp_path_factory.mktemp("predict")
    store_dir = root / "store"
    table = _table(root / "people.csv")
    ref = f"{hashlib.sha256(table.read_bytes()).hexdigest()[:16]}/people.csv"  # where the dashboard keeps it
    (RunStore(store_dir).uploads_dir / ref).parent.mkdir(parents=True)
    shutil.copy(table, RunStore(store_dir).uploads_dir / ref)
    spec = {
        "data": {"source": "csv", "path": ref, "target": "label"},
        "split": {"test": 0.25, "validation": 0.1},
        "layers": [{"type": "Dense", "units": 8, "activation": "relu"}],
        "train": {"epochs": 8, "learning_rate": 0.01, "batch_size": 16},
    }
    out = run_cli("train", write_spec(root, spec), "--store", store_dir)
    assert out.returncode == 0, out.stderr
    return store_dir, json.loads(out.stdout.splitlines()[-1])["run_id"], table


def test_predict_on_the_raw_rows_reproduces_the_runs_own_test_predictions(trained, tmp_path):
    store_dir, run_id, table = trained
    out = run_cli("predict", run_id, table, "--out", tmp_path / "out.csv", "--store", store_dir)
    assert out.returncode == 0, out.stderr
    result = pd.read_csv(tmp_path / "out.csv")
    saved = np.load(RunStore(store_dir).run_dir(run_id) / "predictions.npz")
    test = saved["test_index"].astype(int)
    probs = probabilities_to_classes(saved["outputs"])[0]
    assert list(result.columns) == ["id", "age", "colour", "amount", "label", "p_no", "p_yes", "predicted"]
    np.testing.assert_allclose(result[["p_no", "p_yes"]].to_numpy()[test], probs, atol=1e-6)
    assert (result["predicted"].to_numpy()[test] == np.array(["no", "yes"])[probs.argmax(axis=1)]).all()


def test_predict_takes_new_rows_without_the_target_with_unseen_values_and_gaps(trained, tmp_path):
    store_dir, run_id, _ = trained
    rows = tmp_path / "new.csv"
    rows.write_text('age,colour,amount\n,purple,"2,500"\n70,red,\n')
    out = run_cli("predict", run_id, rows, "--store", store_dir)
    assert out.returncode == 0, out.stderr
    result = pd.read_csv(pd.io.common.StringIO(out.stdout))
    assert len(result) == 2 and set(result["predicted"]) <= {"no", "yes"}
    assert np.allclose(result["p_no"] + result["p_yes"], 1, atol=1e-5)


def test_export_python_writes_a_script_that_runs_elsewhere_without_kfcore_and_prints_the_runs_metrics(
    trained, tmp_path
):
    store_dir, run_id, _ = trained
    out = run_cli("export", run_id, "--format", "python", "--out", tmp_path / "export", "--store", store_dir)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["people.csv", "train.py"]
    script = (tmp_path / "export" / "train.py").read_text()
    assert str(store_dir) not in script and "uploads" not in script  # no server path
    moved = shutil.move(tmp_path / "export", tmp_path / "elsewhere")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    ran = subprocess.run(
        [sys.executable, "-I", "train.py"], cwd=moved, env=env, capture_output=True, text=True, timeout=300
    )  # -I: isolated, so kfcore cannot be imported even from the checkout
    assert ran.returncode == 0, ran.stderr[-3000:]
    found = dict(re.findall(r"^test (loss|accuracy): (\d+\.\d{4})$", ran.stdout, re.MULTILINE))
    test = RunStore(store_dir).get(run_id).test
    assert abs(float(found["accuracy"]) - test["accuracy"]) <= 6e-5 and abs(float(found["loss"]) - test["loss"]) <= 2e-4


def test_export_keras_writes_the_model_and_its_recipe(trained, tmp_path):
    store_dir, run_id, _ = trained
    out = run_cli("export", run_id, "--format", "keras", "--out", tmp_path, "--store", store_dir)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "model.keras").is_file()
    assert Recipe.load(tmp_path / "recipe.json").target["classes"] == ["no", "yes"]


def test_predict_and_export_refuse_bad_input_with_one_error_line(trained, tmp_path):
    store_dir, run_id, _ = trained
    (tmp_path / "picture.csv").write_bytes(b"\x89PNG\r\n\x1a\n....")
    (tmp_path / "other.csv").write_text("height,weight\n1,2\n")
    cases = [
        (("predict", "nope", tmp_path / "other.csv"), "no run with id 'nope'"),
        (("predict", run_id, tmp_path / "absent.csv"), "does not exist"),
        (("predict", run_id, tmp_path / "picture.csv"), "is a PNG image, not CSV text"),
        (("predict", run_id, tmp_path / "other.csv"), "none of the columns the run learned from"),
        (("export", "nope"), "no run with id 'nope'"),
        (("export", run_id, "--format", "pickle"), "invalid choice"),  # onnx is a format now: test_exports.py
    ]
    for args, words in cases:
        out = run_cli(*args, "--store", store_dir)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.startswith("error:") and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert words in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)

    # A recipe that no longer fits its model (a damaged run folder): refused in one line too.
    saved = RunStore(store_dir).run_dir(run_id) / "recipe.json"
    good = saved.read_text()
    try:
        recipe = Recipe.load(saved)
        recipe.columns = [c for c in recipe.columns if c["name"] != "colour"]
        recipe.save(saved)
        out = run_cli("predict", run_id, trained[2], "--store", store_dir)
        assert out.returncode == 2 and out.stderr.startswith("error:") and "cannot predict these rows" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    finally:
        saved.write_text(good)


def test_a_built_in_table_predicts_from_a_csv_with_its_feature_names(tmp_path, store_dir):
    from sklearn.datasets import load_iris

    spec = {
        "data": {"source": "builtin", "name": "iris"},
        "layers": [{"type": "Dense", "units": 8}],
        "train": {"epochs": 2},
    }
    out = run_cli("train", write_spec(tmp_path, spec), "--store", store_dir)
    assert out.returncode == 0, out.stderr
    run_id = json.loads(out.stdout.splitlines()[-1])["run_id"]
    iris = load_iris(as_frame=True)
    iris.frame.to_csv(tmp_path / "iris.csv", index=False)  # the four measurements and a 'target' column, ignored
    out = run_cli("predict", run_id, tmp_path / "iris.csv", "--out", tmp_path / "out.csv", "--store", store_dir)
    assert out.returncode == 0, out.stderr
    result = pd.read_csv(tmp_path / "out.csv")
    saved = np.load(RunStore(store_dir).run_dir(run_id) / "predictions.npz")
    probs = result[["p_setosa", "p_versicolor", "p_virginica"]].to_numpy()[saved["test_index"].astype(int)]
    np.testing.assert_allclose(probs, saved["outputs"], atol=1e-6)
