"""`python -m kfcore sweep` on the local pool, end to end on tiny data; `runs --json`; bad sweep files."""

import json

import pytest

from kfcore.runs.store import RunStore
from tests.unit.test_cli import run_cli

BASE = {
    "data": {"source": "builtin", "name": "xor", "n": 60},
    "split": {"test": 0.2, "validation": 0.2, "seed": 0},
    "layers": [{"type": "Dense", "units": 4}],
    "train": {"epochs": 2, "batch_size": 16, "seed": 0},
}


def write(tmp_path, sweep, name="sweep.json"):
    path = tmp_path / name
    path.write_text(json.dumps(sweep) if not isinstance(sweep, str) else sweep)
    return path


def test_a_local_sweep_trains_every_trial_as_a_run_and_prints_a_line_each_then_the_best(tmp_path, store_dir):
    sweep = {"base": BASE, "grid": {"train.learning_rate": [0.003, 0.05]}, "repeats": 2, "name": "lr × seeds"}
    out = run_cli("sweep", write(tmp_path, sweep), "--store", store_dir, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    trials, last = lines[:-1], lines[-1]
    assert len(trials) == 4 and all(t["status"] == "finished" and t["epochs"] == 2 for t in trials)
    assert sorted((t["values"]["train.learning_rate"], t["values"]["train.seed"]) for t in trials) == [
        (0.003, 0),
        (0.003, 1),
        (0.05, 0),
        (0.05, 1),
    ]
    assert all({"loss", "accuracy"} <= set(t["test"]) and isinstance(t["val_loss"], float) for t in trials)
    summary = last["summary"]
    assert summary["trials"] == 4 and summary["finished"] == 4 and summary["backend"] == "local"
    assert last["best"]["val_loss"] == min(t["val_loss"] for t in trials)
    sweep_id = summary["sweep_id"]

    store = RunStore(store_dir)
    single = store.create_run(BASE, name="not a trial")  # a run of its own lists with no sweep
    listed = json.loads(run_cli("runs", "--json", "--store", store_dir).stdout)
    assert isinstance(listed, list) and len(listed) == 5
    assert {r["run_id"] for r in listed if r["sweep"] == sweep_id} == {t["run_id"] for t in trials}
    assert next(r for r in listed if r["run_id"] == single)["sweep"] is None
    first = next(r for r in listed if r["run_id"] == trials[0]["run_id"])
    assert set(first) == {"run_id", "name", "status", "created", "spec", "test", "error", "sweep"}
    assert first["spec"]["train"]["learning_rate"] == trials[0]["values"]["train.learning_rate"]
    assert first["test"] == trials[0]["test"] and first["name"].startswith("lr × seeds · ")
    text = run_cli("runs", "--store", store_dir).stdout.splitlines()  # the text listing is as before
    assert text[0].split() == ["RUN", "ID", "NAME", "STATUS", "DATASET", "TEST"] and len(text) == 6
    # A trial is an ordinary run: show and export work on it unchanged.
    shown = json.loads(run_cli("show", trials[0]["run_id"], "--store", store_dir).stdout)
    assert shown["sweep"] == sweep_id and len(shown["epochs"]) == 2
    exported = run_cli(
        "export", trials[0]["run_id"], "--format", "keras", "--out", tmp_path / "k", "--store", store_dir
    )
    assert exported.returncode == 0 and (tmp_path / "k" / "model.keras").is_file()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "sweep file"),
        ({"base": BASE, "grid": {"train.lr": [0.1, 0.2]}}, "'train.lr': train has no field 'lr'"),
        ({"base": BASE, "grid": {"layers.2.units": [4, 8]}}, "'layers.2.units': the base spec has 1 layer(s)"),
        ({"base": BASE, "grid": {"train.batch_size": [16, 0]}}, "'train.batch_size' = 0"),
        ({"base": BASE, "grid": {"train.learning_rate": [0.01, 0.02, 0.03]}, "repeats": 3}, "limit of 5 trials"),
        ({"base": {**BASE, "layers": [{"type": "Conv2D", "filters": 4}]}, "grid": {"train.epochs": [1, 2]}}, "Conv2D"),
    ],
)
def test_a_bad_sweep_file_is_refused_with_one_error_line(tmp_path, store_dir, monkeypatch, content, words):
    monkeypatch.setenv("KF_MAX_TRIALS", "5")
    out = run_cli("sweep", write(tmp_path, content), "--store", store_dir)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1 and words in out.stderr, out.stderr
    assert RunStore(store_dir).sweeps() == [] and RunStore(store_dir).list_runs() == []


def test_a_missing_sweep_file_and_an_address_without_ray_are_refused(tmp_path, store_dir):
    out = run_cli("sweep", tmp_path / "nope.json", "--store", store_dir)
    assert out.returncode == 2 and out.stderr.startswith("error: cannot read the sweep file")
    assert "Trace" not in out.stderr
    ok = write(tmp_path, {"base": BASE, "grid": {"train.epochs": [1, 2]}})
    out = run_cli("sweep", ok, "--address", "127.0.0.1:1", "--store", store_dir)
    assert out.returncode == 2 and out.stderr == "error: --address names a Ray cluster: give it with --backend ray\n"
