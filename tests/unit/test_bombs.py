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
from kfcore.limits import Limits, RunBatches, check_run, estimate_training_memory_mb, run_batches
from kfcore.shapes import infer_shapes
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
    np.savez(path, x=np.zeros((21, 3), np.uint8), y=np.zeros(21, np.uint8), x_test=np.zeros((5, 3), np.uint8),
             y_test=np.zeros(5, np.uint8))
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
        "zeros.csv.gz holds more than 94 MB of text once decompressed, over the 94 MB this server reads from one CSV "
        "(its memory budget is 1,500 MB, KF_MEMORY_BUDGET_MB); upload a sample of the rows"
    )


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
    spec = parse_spec({"layers": [{"type": "Conv2D", "filters": filters, "kernel_size": 1},
                                  {"type": "GlobalAveragePooling2D"}], "train": {"batch_size": batch_size}})
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
        assert fixed + batch * per_sample * 2 <= need_mb * 2**20 <= limits.memory_budget_mb * 2**20
    assert need_mb > (fixed + 1 * per_sample * 3) / 2**20  # more than the training batch alone
    check_run(spec, report, 60_000, n_values, limits)  # accepted: every batch fits


def test_inference_batches_keep_their_size_when_memory_allows_and_never_go_below_training():
    _, report = _wide_conv(32, 8)
    assert run_batches(report, 32, 1000, Limits(memory_budget_mb=4096)) == RunBatches(32, 256, 512, 4096)
    assert run_batches(report, 1024, 1000, Limits(memory_budget_mb=4096)) == RunBatches(1024, 1024, 1024, 4096)
    assert run_batches(report, 32, 1000, Limits(memory_budget_mb=1)).evaluate == 32


def test_training_predicts_at_the_fitted_batches(monkeypatch):
    import keras

    from kfcore.train import train

    seen: list[int] = []
    original = keras.Model.predict

    def predict(self, x, batch_size=None, **kwargs):
        seen.append(batch_size)
        return original(self, x, batch_size=batch_size, **kwargs)

    monkeypatch.setattr(keras.Model, "predict", predict)
    spec = parse_spec({"data": {"name": "digits"}, "layers": [{"type": "Conv2D", "filters": 64, "kernel_size": 1},
                       {"type": "GlobalAveragePooling2D"}], "train": {"epochs": 1, "batch_size": 16}})
    limits = Limits(memory_budget_mb=3)
    result = train(spec, limits=limits)
    assert result.status == "finished", result.error
    report = infer_shapes(spec.layers, (8, 8, 1), "multiclass", 10)
    batches = run_batches(report, 16, result.info["n_train"] * 64, limits)
    assert 16 < batches.evaluate < 256 and 16 < batches.validation < 512
    assert seen == [batches.validation, batches.evaluate]  # one epoch's validation, then the test split
