"""Memory bombs: each file is refused from what its headers or a bounded, streamed read say, before memory of the
promised size is spent (tracemalloc sees numpy's and Python's allocations), with a message naming the limit,
the size found and what to do. The bombs (tests/bombs.py) inflate to 1.5 GB but cost a few MB on disk."""

from __future__ import annotations

import gzip
import math
import tracemalloc
import zipfile

import numpy as np
import pytest

from kfcore.data import DataError, csv_columns, load_dataset
from kfcore.model.shapes import infer_shapes
from kfcore.runs.limits import (
    PREDICT_COPIES,
    TRAIN_COPIES,
    Limits,
    RunBatches,
    check_run,
    estimate_training_memory_mb,
    run_batches,
)
from kfcore.spec import DataSpec, parse_spec
from tests import bombs

# A hosted server in a 3 GB container: half of it for one run, a quarter of that for one dataset.
HOSTED = Limits(hosted=True, max_rows=200_000, memory_budget_mb=1500)
PEAK_MB = 64  # what refusing any bomb may allocate


@pytest.fixture(scope="module")
def bomb_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bombs")


def refused(fn, *args, **kwargs) -> str:
    """The DataError message of fn(*args), asserting that it allocated under PEAK_MB on the way."""
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as e:
            fn(*args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert peak < PEAK_MB, f"refusing took {peak:.0f} MB"
    return str(e.value)


def test_npz_bomb_is_refused_from_its_member_headers(bomb_dir):
    path = bombs.npz_bomb(bomb_dir / "zeros.npz")
    assert path.stat().st_size < 3 * bombs.MIB
    msg = refused(load_dataset, DataSpec(source="npz", path=str(path)), limits=HOSTED)
    assert "zeros.npz needs about 2,304 MB of memory to load" in msg  # 1.5 GB float64, its float32 copy, y
    assert "more than the 375 MB this server allows one dataset" in msg
    assert "1,500 MB memory budget" in msg and "fewer rows" in msg


def test_npz_over_the_row_limit_is_refused_before_loading(tmp_path):
    path = tmp_path / "long.npz"
    np.savez(
        path,
        x=np.zeros((21, 3), np.uint8),
        y=np.zeros(21, np.uint8),
        x_test=np.zeros((5, 3), np.uint8),
        y_test=np.zeros(5, np.uint8),
    )
    msg = refused(load_dataset, DataSpec(source="npz", path=str(path)), limits=Limits(max_rows=25))
    assert msg == "long.npz: the dataset has 26 rows, over this server's limit of 25; use a smaller sample"


def test_npz_member_that_is_not_an_array_is_refused_unread(tmp_path):
    path = tmp_path / "raw.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x", b"\0" * 1000)  # np.load would hand these bytes back whole
        z.writestr("y.npy", b"")
    msg = refused(load_dataset, DataSpec(source="npz", path=str(path)), limits=HOSTED)
    assert msg.startswith("'x' in raw.npz is not a NumPy array; save your arrays with numpy.savez")


def test_idx_gzip_bomb_is_refused_from_its_header(bomb_dir, tmp_path):
    images = bombs.idx_gz_bomb(bomb_dir / "images-idx3-ubyte.gz")
    labels = tmp_path / "labels-idx1-ubyte"
    labels.write_bytes(bombs.idx_header((1536,)) + bytes(1536))
    spec = DataSpec(source="idx", images=str(images), labels=str(labels))
    msg = refused(load_dataset, spec, limits=HOSTED)
    assert msg.startswith("images-idx3-ubyte.gz needs about 7,680 MB of memory to load, more than the 375 MB")


def test_idx_over_the_row_limit_is_refused(tmp_path):
    images = tmp_path / "images-idx3-ubyte"
    images.write_bytes(bombs.idx_header((300_000, 28, 28)))  # the header alone: nothing is read after it
    labels = tmp_path / "labels-idx1-ubyte"
    labels.write_bytes(bombs.idx_header((300_000,)))
    msg = refused(load_dataset, DataSpec(source="idx", images=str(images), labels=str(labels)), limits=HOSTED)
    assert "the dataset has 300,000 rows, over this server's limit of 200,000" in msg


def test_csv_gz_bomb_is_refused_by_a_streamed_byte_count(bomb_dir):
    path = bombs.csv_gz_bomb(bomb_dir / "zeros.csv.gz")
    msg = refused(load_dataset, DataSpec(source="csv", path=str(path), target="y"), limits=HOSTED)
    assert msg == (
        "zeros.csv.gz holds more than 94 MB of text once decompressed; this server reads at most 94 MB from one CSV "
        "(a sixteenth of its 1,500 MB memory budget, KF_MEMORY_BUDGET_MB). Upload a sample of the rows"
    )


def test_plain_csv_over_the_text_limit_is_refused_by_its_size(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("a,y\n" + "1,0\n" * 300_000)  # 1.1 MB
    msg = refused(load_dataset, DataSpec(source="csv", path=str(path), target="y"), limits=Limits(memory_budget_mb=16))
    assert msg.startswith("long.csv holds 1.1 MB of text; this server reads at most 1.0 MB from one CSV")


def test_csv_columns_of_a_bomb_read_only_its_head(bomb_dir):
    path = bombs.csv_gz_bomb(bomb_dir / "zeros.csv.gz")
    tracemalloc.start()
    try:
        assert csv_columns(path) == list("abcdefghiy")
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert peak < PEAK_MB


def test_csv_over_the_row_limit_is_refused_after_reading_one_row_more(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("a,y\n" + "1,0\n2,1\n" * 20)
    msg = refused(load_dataset, DataSpec(source="csv", path=str(path), target="y"), limits=Limits(max_rows=30))
    assert msg == "rows.csv: the dataset has more than 30 rows, over this server's limit of 30; use a smaller sample"
    assert len(load_dataset(DataSpec(source="csv", path=str(path), target="y"), limits=Limits(max_rows=40)).y) == 40


def test_100_mb_header_line_is_refused_from_the_head(bomb_dir):
    path = bombs.header_line_csv(bomb_dir / "wide.csv")
    expected = "the first line of wide.csv is over 1.0 MB long, too long for a header row of column names"
    assert refused(csv_columns, path).startswith(expected)
    local = Limits(memory_budget_mb=12_000)  # 100 MB of text is within a large local budget: the header check says no
    assert refused(load_dataset, DataSpec(source="csv", path=str(path), target="y"), limits=local).startswith(expected)


def test_idx_bomb_named_csv_gz_is_refused_as_binary(bomb_dir):
    path = bombs.idx_gz_bomb(bomb_dir / "table.csv.gz")
    expected = "table.csv.gz holds binary data, not CSV text; export the table as 'CSV UTF-8'"
    assert refused(csv_columns, path) == expected
    spec = DataSpec(source="csv", path=str(path), target="y")
    assert refused(load_dataset, spec, limits=Limits(memory_budget_mb=12_000)) == expected


def test_latin1_byte_deep_in_a_large_gzip_csv_is_located_by_streaming(tmp_path):
    path = tmp_path / "latin.csv.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"a,y\n")
        for _ in range(4):
            f.write(b"1,0\n" * (bombs.MIB // 4))
        f.write(b"caf\xe9,1\n")
    spec = DataSpec(source="csv", path=str(path), target="y")
    msg = refused(load_dataset, spec, limits=Limits(memory_budget_mb=1500))
    assert f"(line {4 * bombs.MIB // 4 + 2} has the byte 0xE9, which is not valid UTF-8)" in msg


# -- the memory estimate covers every batch a run uses -------------------------------------------------------------


def _wide_conv(batch_size: int, filters: int):
    spec = parse_spec(
        {
            "layers": [{"type": "Conv2D", "filters": filters, "kernel_size": 1}, {"type": "GlobalAveragePooling2D"}],
            "train": {"batch_size": batch_size},
        }
    )
    return spec, infer_shapes(spec.layers, (28, 28, 1), "multiclass", 10)


def test_wide_1x1_conv_at_batch_1_predicts_at_batches_that_fit_the_budget():
    spec, report = _wide_conv(1, 4096)  # 28×28×4096 floats: 12.8 MB per sample, 6.4 GB at the old validation batch
    limits, n_values = Limits(memory_budget_mb=1500), 54_000 * 784
    per_sample = sum(math.prod(row.output_shape) for row in report.rows) * 4
    fixed = report.total_params * 16 + n_values * 8
    batches = run_batches(report, 1, n_values, limits)
    assert batches.train == 1 and 1 <= batches.evaluate < 256 and batches.validation == batches.evaluate
    need_mb = estimate_training_memory_mb(report, 1, n_values, limits)
    for batch in (batches.evaluate, batches.validation, batches.boundary):
        assert fixed + batch * per_sample * PREDICT_COPIES <= need_mb * 2**20 <= limits.memory_budget_mb * 2**20
    assert need_mb > (fixed + 1 * per_sample * TRAIN_COPIES) / 2**20  # more than the training batch alone
    check_run(spec, report, 60_000, n_values, limits)  # accepted: every batch fits


def test_inference_batches_keep_their_size_when_memory_allows_and_never_go_below_training():
    _, report = _wide_conv(32, 8)
    assert run_batches(report, 32, 1000, Limits(memory_budget_mb=4096)) == RunBatches(32, 256, 512, 4096)
    assert run_batches(report, 1024, 1000, Limits(memory_budget_mb=4096)) == RunBatches(1024, 1024, 1024, 4096)
    assert run_batches(report, 32, 1000, Limits(memory_budget_mb=1)).evaluate == 32


def test_training_predicts_at_the_fitted_batches(monkeypatch):
    import keras

    from kfcore.training.train import train

    seen: list[int] = []
    original = keras.Model.predict

    def predict(self, x, batch_size=None, **kwargs):
        seen.append(batch_size)
        return original(self, x, batch_size=batch_size, **kwargs)

    monkeypatch.setattr(keras.Model, "predict", predict)
    spec = parse_spec(
        {
            "data": {"name": "digits"},
            "layers": [{"type": "Conv2D", "filters": 64, "kernel_size": 1}, {"type": "GlobalAveragePooling2D"}],
            "train": {"epochs": 1, "batch_size": 16},
        }
    )
    limits = Limits(memory_budget_mb=3)
    result = train(spec, limits=limits, fast=False)  # the fit path; the fast loop caps its passes in-graph
    assert result.status == "finished", result.error
    report = infer_shapes(spec.layers, (8, 8, 1), "multiclass", 10)
    batches = run_batches(report, 16, result.info["n_train"] * 64, limits)
    assert 16 < batches.evaluate < 256 and 16 < batches.validation < 512
    assert seen == [batches.validation, batches.evaluate]  # one epoch's validation, then the test split


# -- the command line refuses each bomb with one error line, in little memory ----------------------------------------

CLI_CAP_MB = 200  # measured 40-120 MB (the interpreter, numpy, pandas); a loaded bomb would take GBs
_MEASURE = """
import json, resource, subprocess, sys
out = subprocess.run([sys.executable, "-m", "kfcore", "train", sys.argv[1], "--store", sys.argv[2]],
                     capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kB on Linux: the CLI is the only child
print(json.dumps({"rc": out.returncode, "stderr": out.stderr, "peak_mb": peak}))
"""


def cli_train(tmp_path, data: dict) -> dict:
    """Run `python -m kfcore train` on a spec with this data in a fresh wrapper process: exit code, stderr, peak RSS."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"data": data, "train": {"epochs": 1}}))
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "KF_MEMORY_BUDGET_MB": "1500", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("KF_MAX_ROWS", None)
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(spec), str(tmp_path / "store")],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
        timeout=300,
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize("bomb", ["npz", "idx", "csv.gz", "header", "idx as csv.gz"])
def test_cli_refuses_each_bomb_with_one_error_line_under_the_memory_cap(bomb, bomb_dir, tmp_path):
    if bomb == "npz":
        data, expected = {"source": "npz", "path": str(bombs.npz_bomb(bomb_dir / "cli.npz"))}, "needs about 2,304 MB"
    elif bomb == "idx":
        labels = tmp_path / "labels-idx1-ubyte"
        labels.write_bytes(bombs.idx_header((1536,)) + bytes(1536))
        images = bombs.idx_gz_bomb(bomb_dir / "cli-idx3-ubyte.gz")
        data, expected = {"source": "idx", "images": str(images), "labels": str(labels)}, "needs about 7,680 MB"
    elif bomb == "csv.gz":
        path = bombs.csv_gz_bomb(bomb_dir / "cli.csv.gz")
        data = {"source": "csv", "path": str(path), "target": "y"}
        expected = "more than 94 MB of text once decompressed"
    elif bomb == "header":
        path = bombs.header_line_csv(bomb_dir / "cli-wide.csv")
        data, expected = {"source": "csv", "path": str(path), "target": "y"}, "the first line of cli-wide.csv is over"
    else:
        path = bombs.idx_gz_bomb(bomb_dir / "cli-images.csv.gz")
        data, expected = {"source": "csv", "path": str(path), "target": "y"}, "holds binary data, not CSV text"
    result = cli_train(tmp_path, data)
    lines = result["stderr"].splitlines()
    assert result["rc"] == 2 and len(lines) == 1 and lines[0].startswith("error: "), result["stderr"]
    assert expected in lines[0]
    assert result["peak_mb"] < CLI_CAP_MB, f"the CLI peaked at {result['peak_mb']:.0f} MB"


def test_a_long_file_with_carriage_return_line_ends_is_not_taken_for_a_long_header(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(b"a,y\r" + b"1,0\r2,1\r" * 150_000)  # 2.4 MB, not one \n in it
    assert csv_columns(path) == ["a", "y"]
    spec = DataSpec(source="csv", path=str(path), target="y")
    assert len(load_dataset(spec, limits=Limits(memory_budget_mb=1500)).y) == 300_000


def test_a_malformed_limit_variable_leaves_the_default_in_force_for_files(tmp_path, monkeypatch):
    monkeypatch.setenv("KF_HOSTED", "1")
    monkeypatch.setenv("KF_MAX_ROWS", "lots")  # hosted mode's 200,000 stays: a typo never lifts a limit
    path = tmp_path / "long.csv"
    path.write_text("a,y\n" + "1,0\n2,1\n" * 100_001)
    with pytest.raises(DataError, match="the dataset has more than 200,000 rows, over this server.s limit of 200,000"):
        load_dataset(DataSpec(source="csv", path=str(path), target="y"))
    assert len(load_dataset(DataSpec(name="iris")).y) == 150
