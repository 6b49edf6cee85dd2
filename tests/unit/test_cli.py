"""The command line: JSON lines per epoch, exit codes, one-line errors without tracebacks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args, cwd=None, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "kfcore", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        env=env,
        timeout=timeout,
    )


def write_spec(tmp_path, spec):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def test_train_prints_epoch_lines_then_done_and_records_the_run(tmp_path, store_dir):
    spec = {
        "data": {"source": "builtin", "name": "iris"},
        "split": {"test": 0.2, "validation": 0.2, "seed": 0},
        "layers": [{"type": "Dense", "units": 8, "activation": "relu"}],
        "train": {"optimizer": "adam", "learning_rate": 0.01, "epochs": 3, "batch_size": 16, "seed": 0},
    }
    out = run_cli("train", write_spec(tmp_path, spec), "--store", store_dir, "--name", "cli run")
    assert out.returncode == 0, out.stderr
    assert "warning:" not in out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["event"] for line in lines] == ["epoch"] * 3 + ["done"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(lines[0]) and lines[0]["epoch"] == 1
    done = lines[-1]
    assert set(done["test"]) >= {"loss", "accuracy"}

    runs = run_cli("runs", "--store", store_dir)
    assert done["run_id"] in runs.stdout and "cli run" in runs.stdout and "finished" in runs.stdout
    shown = json.loads(run_cli("show", done["run_id"], "--store", store_dir).stdout)
    assert shown["status"] == "finished" and len(shown["epochs"]) == 3 and shown["test"] == done["test"]


def test_a_model_that_cannot_learn_well_trains_anyway_with_a_warning_first(tmp_path, store_dir):
    spec = {
        "data": {"source": "builtin", "name": "iris"},
        "layers": [{"type": "Dense", "units": 1, "activation": "softmax"}],
        "train": {"epochs": 1},
    }
    out = run_cli("train", write_spec(tmp_path, spec), "--store", store_dir)
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: Layer 1: Dense(1, softmax) always outputs 1, so nothing after it can learn; "
        "use relu or tanh, or more units."
    ], out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["event"] == "done"


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"layers": [{"type": "Dense", "units": 0}]}, "layers[0].units"),
        ({"data": {"source": "builtin", "name": "iris"}, "layers": [{"type": "Conv2D"}]}, "Conv2D"),
        ({"data": {"source": "csv", "path": "/nonexistent/file.csv", "target": "y"}}, "file.csv does not exist"),
        (
            {
                "data": {"source": "builtin", "name": "digits"},
                "layers": [{"type": "MaxPooling2D", "pool_size": 4}, {"type": "MaxPooling2D", "pool_size": 4}],
            },
            "1x1",
        ),
    ],
)
def test_bad_spec_or_data_exits_2_with_one_error_line(tmp_path, store_dir, spec, words):
    out = run_cli("train", write_spec(tmp_path, spec), "--store", store_dir, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_unreadable_spec_file_and_bad_json_exit_2(tmp_path, store_dir):
    missing = run_cli("train", tmp_path / "nope.json", "--store", store_dir, timeout=60)
    assert missing.returncode == 2 and missing.stderr.startswith("error: cannot read the spec file")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = run_cli("train", bad, "--store", store_dir, timeout=60)
    assert out.returncode == 2 and "not valid JSON" in out.stderr and "Traceback" not in out.stderr


def test_unknown_command_and_unknown_run_exit_2(store_dir):
    out = run_cli("fly", timeout=60)
    assert out.returncode == 2 and out.stderr.startswith("error:") and len(out.stderr.strip().splitlines()) == 1
    out = run_cli("show", "abc", "--store", store_dir, timeout=60)
    assert out.returncode == 2 and "no run with id 'abc'" in out.stderr


@pytest.mark.parametrize(
    "text, words",
    [
        ("[" * 50_000 + "]" * 50_000, "nests 50,000 levels"),
        ('{"data": {"name": ' + "[" * 20 + "]" * 20 + "}}", "nests 22 levels"),
        ('{"train": {"epochs": ' + "7" * 5000 + "}}", "5,000 digits"),
        ('{"train": {"epochs": -' + "7" * 4400 + "}}", "4,400 digits"),
        ('{"data": {"source": "csv", "path": "a\\u0000b.csv", "target": "y"}}', "control characters"),
    ],
)
def test_crafted_spec_files_exit_2_with_one_error_line_and_no_traceback(tmp_path, store_dir, text, words):
    path = tmp_path / "spec.json"
    path.write_text(text)
    out = run_cli("train", path, "--store", store_dir, timeout=120)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_a_spec_file_of_megabytes_is_refused_without_reading_it_all(tmp_path, store_dir):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.write(b'{"data": {"name": "' + b"x" * (5 << 20) + b'"}}')
    out = run_cli("train", path, "--store", store_dir, timeout=120)
    assert out.returncode == 2 and out.stderr.startswith("error:") and "characters long" in out.stderr, out.stderr


def test_train_loads_the_dataset_once(tmp_path, store_dir, monkeypatch, capsys):
    """The CLI checks the spec on the dataset it loaded, then trains on that same dataset: one read, not two."""
    import signal

    from kfcore import __main__ as cli
    from kfcore import data
    from kfcore.training import train

    calls = []
    real = data.load_dataset

    def counting(spec, *args, **kwargs):
        calls.append(spec.name)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(data, "load_dataset", counting)
    monkeypatch.setattr(train, "load_dataset", counting)
    spec = {
        "data": {"source": "builtin", "name": "iris"},
        "layers": [{"type": "Dense", "units": 4}],
        "train": {"epochs": 1, "batch_size": 32},
    }
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}  # the CLI sets its own
    try:
        assert cli.main(["train", str(write_spec(tmp_path, spec)), "--store", str(store_dir)]) == 0
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    done = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert done["event"] == "done" and "accuracy" in done["test"]
    assert calls == ["iris"]


def test_continue_streams_the_childs_epochs_after_the_parents_and_show_has_val_confusion(tmp_path, store_dir):
    spec = {
        "data": {"source": "builtin", "name": "iris"},
        "split": {"test": 0.2, "validation": 0.2, "seed": 0},
        "layers": [{"type": "Dense", "units": 8, "activation": "relu"}],
        "train": {"optimizer": "adam", "learning_rate": 0.01, "epochs": 4, "batch_size": 16, "seed": 0},
    }
    out = run_cli("train", write_spec(tmp_path, spec), "--store", store_dir)
    assert out.returncode == 0, out.stderr
    parent = [json.loads(line) for line in out.stdout.splitlines()]
    parent_id = parent[-1]["run_id"]

    out = run_cli("continue", parent_id, "--epochs", "2", "--learning-rate", "0.005", "--store", store_dir)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["event"] for line in lines] == ["epoch", "epoch", "done"]
    assert [line["epoch"] for line in lines[:2]] == [5, 6]
    assert lines[0]["learning_rate"] == pytest.approx(0.005)
    fresh = parent[0]["loss"]  # a fresh start's first loss, far above where the parent ended
    assert abs(lines[0]["loss"] - parent[3]["loss"]) < 0.25 * abs(fresh - parent[3]["loss"])

    shown = json.loads(run_cli("show", lines[-1]["run_id"], "--store", store_dir).stdout)
    assert shown["parent"] == parent_id and shown["continues"]
    for epoch in shown["epochs"]:
        confusion = epoch["val_confusion"]
        assert len(confusion) == 3 and all(len(row) == 3 for row in confusion)
        assert sum(map(sum, confusion)) == shown["info"]["n_val"] == 30  # each validation sample, once


@pytest.mark.parametrize(
    "args, words",
    [
        (["continue", "nope", "--epochs", "2"], "no run with id"),
        (["continue", "nope"], "--epochs"),
    ],
)
def test_continue_refusals_exit_2_with_one_error_line(store_dir, args, words):
    out = run_cli(*args, "--store", store_dir)
    assert out.returncode == 2 and out.stderr.startswith("error:") and words in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_continue_refuses_an_unfinished_run_and_epochs_out_of_range(store_dir):
    from kfcore.runs.store import RunStore

    store = RunStore(store_dir)
    queued = store.create_run({"train": {"epochs": 3}})
    out = run_cli("continue", queued, "--epochs", "2", "--store", store_dir)
    assert out.returncode == 2 and "only a finished or stopped run" in out.stderr and len(out.stderr.splitlines()) == 1
    store.claim_next(pid=1)
    model = Path(store_dir) / "m.keras"
    model.write_bytes(b"")
    store.finish(queued, {}, {}, str(model))
    out = run_cli("continue", queued, "--epochs", "0", "--store", store_dir)
    assert out.returncode == 2 and "epochs" in out.stderr and len(out.stderr.splitlines()) == 1


def test_continue_of_a_run_stopped_before_it_saved_a_model_says_so_in_one_line(store_dir):
    from kfcore.runs.store import RunStore

    store = RunStore(store_dir)
    stopped = store.create_run({"train": {"epochs": 3}})
    store.request_cancel(stopped)
    out = run_cli("continue", stopped, "--epochs", "2", "--store", store_dir)
    assert out.returncode == 2 and out.stderr.startswith("error:") and "stopped before it saved a model" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
