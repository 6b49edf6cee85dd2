"""kfcore.data: every source loads offline, refusals say what is wrong, splits are deterministic."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from kfcore import data
from kfcore.data import DataError, class_counts, load_dataset, split_dataset
from kfcore.spec import BUILTIN_SETS, KERAS_SETS, SYNTHETIC_SETS, DataSpec, SplitSpec

SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"
UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: nothing listens, the connection is refused at once


# -- helpers --------------------------------------------------------------------------------------


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> Path:
    """An MNIST-style IDX file of unsigned bytes."""
    raw = bytes([0, 0, 0x08, arr.ndim]) + np.array(arr.shape, ">u4").tobytes() + arr.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def write_csv(tmp_path: Path, text: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def csv_spec(path: Path, target: str, task: str = "auto") -> DataSpec:
    return DataSpec(source="csv", name=None, path=str(path), target=target, task=task)


def npz_spec(path: Path, task: str = "auto") -> DataSpec:
    return DataSpec(source="npz", name=None, path=str(path), task=task)


def images(n: int, h: int = 28, w: int = 28, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w), dtype=np.uint8)


def fake_mnist_npz(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=images(30), y_train=np.arange(30) % 10, x_test=images(10, seed=1), y_test=np.arange(10))
    return path


def cifar_records(labels: list[int]) -> bytes:
    """CIFAR binary records whose channel c is filled with the value 10 * label + c."""
    out = b""
    for label in labels:
        planes = np.stack([np.full((32, 32), 10 * label + c, np.uint8) for c in range(3)])  # CHW
        out += bytes([label]) + planes.tobytes()
    return out


def add_member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


@pytest.fixture
def offline(monkeypatch):
    """Point every download at an address that refuses connections."""
    for name, files in data.KERAS_URLS.items():
        monkeypatch.setitem(data.KERAS_URLS, name, {rel: UNREACHABLE + rel for rel in files})


# -- built-in sets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, shape, task, n_classes",
    [
        ("digits", (1797, 8, 8, 1), "multiclass", 10),
        ("iris", (150, 4), "multiclass", 3),
        ("wine", (178, 13), "multiclass", 3),
        ("breast_cancer", (569, 30), "binary", 2),
        ("diabetes", (442, 10), "regression", 0),
    ]
    + [(s, (300, 2), "binary", 2) for s in SYNTHETIC_SETS],
)
def test_builtin_sets_load_with_their_shapes_and_tasks(name, shape, task, n_classes):
    ds = load_dataset(DataSpec(source="builtin", name=name, n=300))
    assert ds.x.shape == shape and ds.x.dtype == np.float32
    assert len(ds.y) == shape[0]
    assert ds.task == task and ds.n_classes == n_classes
    assert ds.y.dtype == (np.float32 if task == "regression" else np.int64)
    assert ds.name == name and ds.description
    assert ds.x_test is None and ds.y_test is None
    if ds.is_image:
        assert ds.x.min() >= 0 and ds.x.max() == 1.0
    else:
        assert len(ds.feature_names) == shape[1]


def test_builtin_class_names_come_from_scikit_learn():
    assert load_dataset(DataSpec(name="iris")).class_names == ["setosa", "versicolor", "virginica"]
    assert load_dataset(DataSpec(name="breast_cancer")).class_names == ["malignant", "benign"]
    assert load_dataset(DataSpec(name="digits")).class_names == [str(i) for i in range(10)]


def test_tabular_builtins_are_raw_not_standardised():
    diabetes = load_dataset(DataSpec(name="diabetes"))
    assert diabetes.x[:, 0].max() > 50  # age in years, not scikit-learn's scaled default
    assert load_dataset(DataSpec(name="wine")).x.max() > 1000  # proline


def test_info_tables_cover_every_set():
    assert set(data.BUILTIN_INFO) == set(BUILTIN_SETS)
    assert set(data.KERAS_INFO) == set(KERAS_SETS)
    assert all("MB download" in text for text in data.KERAS_INFO.values())


def test_unknown_builtin_is_refused_with_the_choices():
    with pytest.raises(DataError, match="unknown built-in set 'mnist'; choose one of digits"):
        load_dataset(DataSpec(source="builtin", name="mnist"))
    with pytest.raises(DataError, match="unknown data source 'sql'"):
        load_dataset(DataSpec(source="sql"))
    with pytest.raises(DataError, match="unknown task 'ranking'"):
        load_dataset(DataSpec(task="ranking"))


# -- synthetic sets -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SYNTHETIC_SETS)
def test_synthetic_sets_are_deterministic_balanced_and_noise_matters(name):
    spec = DataSpec(name=name, n=400, noise=0.2)
    a, b = load_dataset(spec), load_dataset(spec)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.feature_names == ["x1", "x2"] and a.class_names == ["0", "1"]
    assert 0.35 < a.y.mean() < 0.65
    assert np.abs(a.x).max() < 9  # Playground's [-6, 6] square, give or take the noise
    clean = load_dataset(DataSpec(name=name, n=400, noise=0.0))
    assert not (np.array_equal(clean.x, a.x) and np.array_equal(clean.y, a.y))


def test_clean_synthetic_labels_follow_playground_rules():
    circle = load_dataset(DataSpec(name="circle", n=500))
    radius = np.linalg.norm(circle.x, axis=1)
    assert np.all((radius < 2.5) == (circle.y == 1))
    assert np.all((radius < 2.5) | (radius >= 3.5))  # the gap between the disc and the ring
    xor = load_dataset(DataSpec(name="xor", n=500))
    assert np.all((xor.x[:, 0] * xor.x[:, 1] >= 0) == (xor.y == 1))
    assert np.abs(xor.x).min() >= 0.3
    gauss = load_dataset(DataSpec(name="gauss", n=500))
    assert gauss.x[gauss.y == 1].mean() == pytest.approx(2, abs=0.3)
    assert gauss.x[gauss.y == 0].mean() == pytest.approx(-2, abs=0.3)
    spiral = load_dataset(DataSpec(name="spiral", n=500))
    assert np.linalg.norm(spiral.x, axis=1).max() <= 5


def test_synthetic_point_count_follows_n_even_when_odd():
    assert len(load_dataset(DataSpec(name="spiral", n=301)).y) == 301


# -- Keras downloads, served from a local cache -------------------------------------------------


def test_mnist_loads_from_the_cache_without_network(tmp_path, offline):
    fake_mnist_npz(tmp_path / "mnist.npz")
    ds = load_dataset(DataSpec(source="keras", name="mnist"), cache_dir=tmp_path)
    assert ds.x.shape == (30, 28, 28, 1) and ds.x.dtype == np.float32
    assert ds.x_test.shape == (10, 28, 28, 1) and ds.y_test.tolist() == list(range(10))
    assert 0 <= ds.x.min() and ds.x.max() <= 1
    assert ds.class_names == [str(i) for i in range(10)] and ds.task == "multiclass"
    assert ds.name == "mnist"


def test_keras_home_is_the_default_cache(tmp_path, offline, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    fake_mnist_npz(tmp_path / "datasets" / "mnist.npz")
    assert len(load_dataset(DataSpec(source="keras", name="mnist")).y) == 30


def test_fashion_mnist_loads_from_idx_files_in_the_cache(tmp_path, offline):
    folder = tmp_path / "fashion-mnist"
    write_idx(folder / "train-images-idx3-ubyte.gz", images(20))
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(20) % 10)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", images(5, seed=1))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([9, 8, 7, 6, 5]))
    ds = load_dataset(DataSpec(source="keras", name="fashion_mnist"), cache_dir=tmp_path)
    assert ds.x.shape == (20, 28, 28, 1) and ds.x_test.shape == (5, 28, 28, 1)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert ds.y_test.tolist() == [9, 8, 7, 6, 5]


def test_cifar10_reads_the_binary_archive_without_extracting(tmp_path, offline):
    archive = tmp_path / "cache" / "cifar-10-binary.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        add_member(tar, "../escaped.bin", b"must never be written")
        add_member(tar, "cifar-10-batches-bin/batches.meta.txt", b"airplane\n")
        for i in range(1, 6):
            add_member(tar, f"cifar-10-batches-bin/data_batch_{i}.bin", cifar_records([i, i + 1]))
        add_member(tar, "cifar-10-batches-bin/test_batch.bin", cifar_records([0, 9, 3]))
    ds = load_dataset(DataSpec(source="keras", name="cifar10"), cache_dir=archive.parent)
    assert ds.x.shape == (10, 32, 32, 3) and ds.x_test.shape == (3, 32, 32, 3)
    assert ds.y.tolist() == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6] and ds.y_test.tolist() == [0, 9, 3]
    # record with label 9: channel c holds 90 + c everywhere, so CHW became HWC correctly
    np.testing.assert_allclose(ds.x_test[1, 5, 7], np.array([90, 91, 92]) / 255, rtol=1e-6)
    assert ds.class_names[0] == "airplane" and ds.class_names[9] == "truck"
    assert not (tmp_path / "escaped.bin").exists() and sorted(p.name for p in archive.parent.iterdir()) == [
        archive.name
    ]


def test_incomplete_cifar_archive_is_reported_as_damaged(tmp_path, offline):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add_member(tar, "cifar-10-batches-bin/data_batch_1.bin", cifar_records([1]))
    with pytest.raises(DataError, match=r"is damaged \(it lacks data_batch_2.bin.*delete it and load again"):
        load_dataset(DataSpec(source="keras", name="cifar10"), cache_dir=tmp_path)


def test_damaged_cached_mnist_says_to_delete_it(tmp_path, offline):
    (tmp_path / "mnist.npz").write_bytes(b"<html>captive portal</html>")
    with pytest.raises(DataError, match="mnist.npz is damaged .*delete it"):
        load_dataset(DataSpec(source="keras", name="mnist"), cache_dir=tmp_path)


@pytest.mark.parametrize("name", KERAS_SETS)
def test_offline_download_fails_fast_and_names_the_alternatives(tmp_path, offline, name):
    start = time.monotonic()
    with pytest.raises(DataError) as err:
        load_dataset(DataSpec(source="keras", name=name), cache_dir=tmp_path)
    assert time.monotonic() - start < 5
    msg = str(err.value)
    assert msg.startswith(f"could not download {name} (")
    assert "this machine seems to be offline" in msg
    assert "Offline alternatives: the built-in 'digits' set (8×8 handwritten digits)" in msg
    assert "upload" in msg
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # no half files left behind


def test_mnist_offline_message_matches_the_wording(tmp_path, offline):
    with pytest.raises(DataError, match="or upload MNIST yourself as IDX or NPZ files"):
        load_dataset(DataSpec(source="keras", name="mnist"), cache_dir=tmp_path)


@pytest.fixture
def local_server(tmp_path):
    """A throwaway HTTP server on 127.0.0.1 serving tmp_path/served."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_lands_in_the_cache_once_verified(tmp_path, local_server, monkeypatch):
    served, url = local_server
    payload = fake_mnist_npz(served / "mnist.npz").read_bytes()
    monkeypatch.setitem(data.KERAS_URLS, "mnist", {"mnist.npz": url + "mnist.npz"})
    monkeypatch.setitem(data.DOWNLOAD_HASHES, "mnist.npz", ("sha256", hashlib.sha256(payload).hexdigest()))
    cache = tmp_path / "cache"
    ds = load_dataset(DataSpec(source="keras", name="mnist"), cache_dir=cache)
    assert len(ds.y) == 30
    assert [p.name for p in cache.iterdir()] == ["mnist.npz"]
    assert (cache / "mnist.npz").read_bytes() == payload


def test_download_with_a_wrong_checksum_is_not_cached(tmp_path, local_server, monkeypatch):
    served, url = local_server
    fake_mnist_npz(served / "mnist.npz")
    monkeypatch.setitem(data.KERAS_URLS, "mnist", {"mnist.npz": url + "mnist.npz"})
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="not the expected file .*sha256 checksum differs"):
        load_dataset(DataSpec(source="keras", name="mnist"), cache_dir=cache)  # the real mnist.npz hash
    assert list(cache.iterdir()) == []


def test_missing_file_on_the_server_is_reported(tmp_path, local_server, monkeypatch):
    _, url = local_server
    monkeypatch.setitem(data.KERAS_URLS, "mnist", {"mnist.npz": url + "gone.npz"})
    with pytest.raises(DataError, match="answered HTTP 404"):
        load_dataset(DataSpec(source="keras", name="mnist"), cache_dir=tmp_path / "cache")


# -- CSV ------------------------------------------------------------------------------------------

CSV_MIXED = """age, color ,income,flag,label
30,red,1000,True,yes
,blue,2000,False,no
50,red,,True,yes
41,,1500,False,no
60,green,2500,True,
20,blue,3000,False,yes
"""


def test_csv_keeps_numbers_one_hot_encodes_text_and_fills_gaps(tmp_path):
    ds = load_dataset(csv_spec(write_csv(tmp_path, CSV_MIXED, "people.csv"), "label"), split=SplitSpec(0.2, 0, 0))
    assert ds.name == "people" and "people.csv" in ds.description
    train = split_dataset(ds, SplitSpec(0.2, 0, 0)).train_index
    # The recipe is fitted on the 4 training rows alone: the test row (50, red, no income) is never looked at.
    assert sorted(train.tolist()) == [0, 1, 3, 4]
    assert ds.feature_names == [
        "age",
        "color=(missing)",
        "color=blue",
        "color=red",
        "income",
        "flag=False",
        "flag=True",
    ]
    assert ds.x.dtype == np.float32 and ds.x.shape == (5, 7)  # the row with no label is dropped
    assert ds.task == "binary" and ds.class_names == ["no", "yes"]
    assert ds.y.tolist() == [1, 0, 1, 0, 1]
    # training ages 30, -, 41, 20 -> median 30; training incomes 1000, 2000, 1500, 3000 -> 1750
    assert ds.x[:, 0].tolist() == [30, 30, 50, 41, 20]  # raw, not standardised
    assert ds.x[2, 4] == 1750
    assert ds.x[3, 1:4].tolist() == [1, 0, 0]  # the missing colour is its own category
    assert "dropped 1 rows whose target 'label' is missing" in ds.notes
    assert "filled 1 missing values in 'age' with the median 30.0" in ds.notes
    assert "filled 1 missing values in 'income' with the median 1750.0" in ds.notes
    assert "1 missing values in 'color' became their own category '(missing)'" in ds.notes
    assert ds.recipe.describe()[1]["kind"] == "category"


def test_csv_with_semicolons_is_read(tmp_path):
    path = write_csv(tmp_path, "a;b;y\n1;2;0\n3;4;1\n5;6;0\n")
    ds = load_dataset(csv_spec(path, "y"))
    assert ds.feature_names == ["a", "b"] and ds.x.shape == (3, 2)


def test_csv_drops_text_columns_with_too_many_values(tmp_path):
    rows = "\n".join(f"person{i},{i % 7},{i % 2}" for i in range(150))
    ds = load_dataset(csv_spec(write_csv(tmp_path, "name,score,y\n" + rows), "y"))
    assert ds.feature_names == ["score"]
    assert any("dropped column 'name': 105 different text values in 105 rows" in n for n in ds.notes)  # training rows


def test_csv_missing_target_lists_the_columns(tmp_path):
    path = write_csv(tmp_path, CSV_MIXED)
    with pytest.raises(DataError, match="there is no column 'price'; the columns are: 'age', 'color', 'income'"):
        load_dataset(csv_spec(path, "price"))


@pytest.mark.parametrize(
    "content, target, message",
    [
        (b"", "y", "is empty"),
        (b"\n\n", "y", "is empty"),
        (bytes(range(256)) * 8, "y", "holds binary data, not CSV text"),
        (b"PK\x03\x04rest-of-a-workbook", "y", "Excel workbook or zip archive"),
        ("a,y\ncaf\xe9,1\n".encode("latin-1"), "y", "is not UTF-8 text"),
        (b"a,y\n1,x\n2,x\n3,x\n", "y", r"only one class \('x'\) occurs in the target column 'y'"),
        (b"a,y\n1,0\n", "y", "has 1 usable rows; a model needs at least 2"),
        (b"a,y\n1,\n2,\n3,1\n", "y", "has 1 usable rows"),
        (b"y\n0\n1\n0\n", "y", "no feature columns are left .*only has the target column 'y'"),
        (b"a,y\n,0\n,1\n,0\n", "y", "no feature columns are left .*all of them were dropped"),
        (b'a,y\n1,2\n"3,4\n', "y", "is not valid CSV"),
    ],
)
def test_csv_refusals_say_what_is_wrong(tmp_path, content, target, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_dataset(csv_spec(path, target))


def test_csv_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match="does not exist; upload it again"):
        load_dataset(csv_spec(tmp_path / "nope.csv", "y"))


def test_gzipped_csv_is_read_whatever_its_name(tmp_path):
    path = tmp_path / "upload.bin"
    path.write_bytes(gzip.compress(b"a,y\n1,0\n2,1\n3,0\n"))
    assert load_dataset(csv_spec(path, "y")).x.shape == (3, 1)


# -- task inference and overrides -----------------------------------------------------------------


def target_csv(tmp_path: Path, values: list) -> Path:
    """A CSV with a feature f and the target t; each call writes a new file."""
    rows = "\n".join(f"{i},{v}" for i, v in enumerate(values))
    return write_csv(tmp_path, "f,t\n" + rows + "\n", name=f"target{len(list(tmp_path.iterdir()))}.csv")


@pytest.mark.parametrize(
    "values, task, names",
    [
        ([0, 1, 1, 0], "binary", ["0", "1"]),
        ([3, 1, 2, 10], "multiclass", ["1", "2", "3", "10"]),  # numeric order, not text order
        (["cat", "dog", "ant", "dog"], "multiclass", ["ant", "cat", "dog"]),
        ([1.0, 2.0, "", 1.0], "binary", ["1", "2"]),  # a gap makes the column float; labels stay '1', '2'
        ([0.5, 1.25, 2.0, 3.5], "regression", []),
        (list(range(51)), "regression", []),  # more than 50 distinct integers
        (list(range(50)), "multiclass", [str(i) for i in range(50)]),
    ],
)
def test_task_is_inferred_from_the_target(tmp_path, values, task, names):
    ds = load_dataset(csv_spec(target_csv(tmp_path, values), "t"))
    assert ds.task == task and ds.class_names == names
    if task == "regression":
        assert ds.y.dtype == np.float32
    else:
        assert ds.y.dtype == np.int64 and set(ds.y.tolist()) == set(range(len(names)))


def test_classification_codes_follow_sorted_labels(tmp_path):
    ds = load_dataset(csv_spec(target_csv(tmp_path, ["dog", "ant", "cat", "dog"]), "t"))
    assert ds.y.tolist() == [2, 0, 1, 2]


def test_task_overrides(tmp_path):
    ints = target_csv(tmp_path, [1, 2, 3, 2, 1])
    reg = load_dataset(csv_spec(ints, "t", task="regression"))
    assert reg.task == "regression" and reg.y.dtype == np.float32 and reg.y.tolist() == [1, 2, 3, 2, 1]
    two = load_dataset(csv_spec(target_csv(tmp_path, [0, 1, 0, 1]), "t", task="multiclass"))
    assert two.task == "multiclass" and two.n_classes == 2
    with pytest.raises(
        DataError, match="task 'binary' needs exactly 2 classes, but there are 3 in the target column 't'"
    ):
        load_dataset(csv_spec(ints, "t", task="binary"))
    with pytest.raises(DataError, match="task 'regression' needs a numeric target, but there are labels like 'ant'"):
        load_dataset(csv_spec(target_csv(tmp_path, ["ant", "bee"]), "t", task="regression"))


def test_task_override_applies_to_builtins():
    with pytest.raises(DataError, match="task 'binary' needs exactly 2 classes, but there are 10 in the digit labels"):
        load_dataset(DataSpec(name="digits", task="binary"))
    assert load_dataset(DataSpec(name="breast_cancer", task="multiclass")).task == "multiclass"


# -- NPZ ------------------------------------------------------------------------------------------


def test_npz_uint8_images_are_scaled_and_get_a_channel(tmp_path):
    path = tmp_path / "pics.npz"
    x = images(12, 10, 10)
    np.savez(path, x=x, y=np.arange(12) % 3)
    ds = load_dataset(npz_spec(path))
    assert ds.name == "pics" and ds.x.shape == (12, 10, 10, 1) and ds.x.dtype == np.float32
    np.testing.assert_allclose(ds.x[..., 0], x / 255, rtol=1e-6)
    assert ds.task == "multiclass" and ds.class_names == ["0", "1", "2"]


def test_npz_with_its_own_test_set_and_colour_images(tmp_path):
    path = tmp_path / "rgb.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x=rng.integers(0, 256, (8, 4, 4, 3), dtype=np.uint8),
        y=np.array(["cat", "dog"] * 4),
        x_test=rng.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8),
        y_test=np.array(["dog", "cat"]),
    )
    ds = load_dataset(npz_spec(path))
    assert ds.x.shape == (8, 4, 4, 3) and ds.x_test.shape == (2, 4, 4, 3)
    assert ds.class_names == ["cat", "dog"] and ds.y_test.tolist() == [1, 0] and ds.task == "binary"


def test_npz_tabular_float_images_and_unknown_test_labels(tmp_path):
    tab = tmp_path / "tab.npz"
    np.savez(tab, x=np.arange(20.0).reshape(10, 2), y=np.linspace(0, 1, 10)[:, None])  # a column vector is fine
    ds = load_dataset(npz_spec(tab))
    assert ds.x.shape == (10, 2) and ds.task == "regression" and ds.feature_names == ["x1", "x2"]

    wide = tmp_path / "wide.npz"
    np.savez(wide, x=np.linspace(-1, 3, 4 * 9).reshape(4, 3, 3), y=np.array([0, 1, 0, 1]))
    ds = load_dataset(npz_spec(wide))
    assert ds.x.min() == 0 and ds.x.max() == 1 and "scaled them to [0, 1]" in ds.notes[0]

    unknown = tmp_path / "unknown.npz"
    np.savez(unknown, x=np.zeros((4, 2)), y=np.array([0, 1, 0, 1]), x_test=np.zeros((1, 2)), y_test=np.array([7]))
    with pytest.raises(DataError, match="test labels include classes that never occur in y: 7"):
        load_dataset(npz_spec(unknown))


UNPICKLED: list[str] = []


def _record_unpickling() -> str:
    UNPICKLED.append("ran")
    return "payload"


class Payload:
    def __reduce__(self):
        return (_record_unpickling, ())


def test_npz_object_arrays_are_refused_and_never_unpickled(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.zeros((2, 2)), y=np.array([Payload(), Payload()], dtype=object))  # pickles y
    UNPICKLED.clear()
    with pytest.raises(DataError, match="array 'y' in objects.npz holds Python objects; object arrays are refused"):
        load_dataset(npz_spec(path))
    assert UNPICKLED == []


def test_a_pickle_posing_as_npz_is_refused(tmp_path):
    import pickle

    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(Payload()))
    UNPICKLED.clear()
    with pytest.raises(DataError, match="not an .npz archive of plain arrays"):
        load_dataset(npz_spec(path))
    assert UNPICKLED == []


def test_npz_refusals(tmp_path):
    missing = tmp_path / "missing.npz"
    np.savez(missing, x=np.zeros((3, 2)), labels=np.zeros(3))
    with pytest.raises(DataError, match="has no array named 'y'; it holds 'x', 'labels'"):
        load_dataset(npz_spec(missing))

    mismatch = tmp_path / "mismatch.npz"
    np.savez(mismatch, x=np.zeros((3, 2)), y=np.array([0, 1]))
    with pytest.raises(DataError, match="x has 3 rows but there are 2 values in y"):
        load_dataset(npz_spec(mismatch))

    single = tmp_path / "single.npz"
    np.save(single.with_suffix(".npy"), np.zeros(3))
    single.with_suffix(".npy").rename(single)
    with pytest.raises(DataError, match="holds a single array, not an .npz archive"):
        load_dataset(npz_spec(single))

    half = tmp_path / "half.npz"
    np.savez(half, x=np.zeros((3, 2)), y=np.zeros(3), x_test=np.zeros((1, 2)))
    with pytest.raises(DataError, match="only one of x_test and y_test"):
        load_dataset(npz_spec(half))

    onehot = tmp_path / "onehot.npz"
    np.savez(onehot, x=np.zeros((3, 2)), y=np.eye(3))
    with pytest.raises(DataError, match=r"not one-hot rows \(y.argmax\(axis=1\) turns"):
        load_dataset(npz_spec(onehot))

    nan = tmp_path / "nan.npz"
    np.savez(nan, x=np.array([[1.0], [np.nan], [2.0]]), y=np.array([0, 1, 0]))
    with pytest.raises(DataError, match="x holds 1 missing"):
        load_dataset(npz_spec(nan))


# -- IDX ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_idx_gzip_or_raw_is_recognised_by_content(tmp_path, gz):
    x = images(7, 5, 6)
    imgs = write_idx(tmp_path / "imgs.data", x, gz=gz)  # the names say nothing about gzip
    labels = write_idx(tmp_path / "labels.data", np.array([0, 1, 2, 0, 1, 2, 0]), gz=gz)
    ds = load_dataset(DataSpec(source="idx", name=None, images=str(imgs), labels=str(labels)))
    assert ds.x.shape == (7, 5, 6, 1) and ds.name == "imgs"
    np.testing.assert_allclose(ds.x[..., 0], x / 255, rtol=1e-6)
    assert ds.y.tolist() == [0, 1, 2, 0, 1, 2, 0] and ds.task == "multiclass"


def test_idx_refusals(tmp_path):
    imgs = write_idx(tmp_path / "i.gz", images(5))
    labels = write_idx(tmp_path / "l.gz", np.zeros(6))
    with pytest.raises(DataError, match="the images file holds 5 images but the labels file holds 6 labels"):
        load_dataset(DataSpec(source="idx", images=str(imgs), labels=str(labels)))
    with pytest.raises(DataError, match=r"\(are the two files swapped\?\)"):
        load_dataset(DataSpec(source="idx", images=str(labels), labels=str(imgs)))

    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(DataError, match="the images file notes.txt is not an IDX file"):
        load_dataset(DataSpec(source="idx", images=str(text), labels=str(labels)))

    cut = tmp_path / "cut.idx"
    cut.write_bytes(gzip.decompress(imgs.read_bytes())[:500])
    with pytest.raises(DataError, match="cut.idx is cut short: its header promises 3,920 bytes"):
        load_dataset(DataSpec(source="idx", images=str(cut), labels=str(labels)))

    with pytest.raises(DataError, match="does not exist"):
        load_dataset(DataSpec(source="idx", images=str(tmp_path / "gone"), labels=str(labels)))


def test_real_mnist_test_split():
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("the real MNIST split in ../shared/data/mnist is not here")
    ds = load_dataset(
        DataSpec(
            source="idx",
            name=None,
            images=str(SHARED_MNIST / "t10k-images-idx3-ubyte.gz"),
            labels=str(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz"),
        )
    )
    assert ds.x.shape == (10000, 28, 28, 1) and ds.x.dtype == np.float32
    assert ds.x.min() == 0 and ds.x.max() == 1
    assert list(class_counts(ds).values()) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.class_names == [str(i) for i in range(10)]


# -- splitting ------------------------------------------------------------------------------------


def test_split_fractions_are_of_the_whole_dataset():
    ds = load_dataset(DataSpec(name="circle", n=1000))
    s = split_dataset(ds, SplitSpec(test=0.2, validation=0.1, seed=0))
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (700, 100, 200)
    assert len(s.x_train) == 700 and s.stratified
    together = np.concatenate([s.x_train, s.x_val, s.x_test])
    assert sorted(map(tuple, together.tolist())) == sorted(map(tuple, ds.x.tolist()))  # a partition


def test_split_is_stratified_and_deterministic():
    ds = load_dataset(DataSpec(name="breast_cancer"))
    a = split_dataset(ds, SplitSpec(test=0.2, validation=0.1, seed=3))
    b = split_dataset(ds, SplitSpec(test=0.2, validation=0.1, seed=3))
    c = split_dataset(ds, SplitSpec(test=0.2, validation=0.1, seed=4))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test) or not np.array_equal(a.x_test, c.x_test)
    overall = ds.y.mean()
    for part in (a.y_train, a.y_val, a.y_test):
        assert part.mean() == pytest.approx(overall, abs=0.02)


def test_split_falls_back_to_shuffling_when_a_class_is_too_small(tmp_path):
    path = tmp_path / "rare.npz"
    np.savez(path, x=np.arange(20.0).reshape(10, 2), y=np.array([0] * 9 + [1]))
    s = split_dataset(load_dataset(npz_spec(path)), SplitSpec(test=0.3, validation=0.0))
    assert not s.stratified and len(s.y_test) == 3 and s.x_val is None and s.y_val is None


def test_split_regression_and_no_validation():
    ds = load_dataset(DataSpec(name="diabetes"))
    s = split_dataset(ds, SplitSpec(test=0.25, validation=0.0, seed=1))
    assert s.x_val is None and len(s.y_test) == round(0.25 * 442) and len(s.y_train) == 442 - len(s.y_test)
    assert not s.stratified


def test_split_uses_the_datasets_own_test_set(tmp_path, offline):
    fake_mnist_npz(tmp_path / "mnist.npz")
    ds = load_dataset(DataSpec(source="keras", name="mnist"), cache_dir=tmp_path)
    s = split_dataset(ds, SplitSpec(test=0.5, validation=0.2))
    assert s.x_test is ds.x_test and s.y_test is ds.y_test
    assert (len(s.y_train), len(s.y_val)) == (24, 6)  # validation is 20 % of the 30 training images
    s0 = split_dataset(ds, SplitSpec(test=0.0, validation=0.0))
    assert len(s0.y_train) == 30 and s0.x_val is None


def test_split_refusals():
    ds = load_dataset(DataSpec(name="iris"))
    with pytest.raises(
        DataError, match="no test set of its own and the test fraction is 0: set a test fraction above 0"
    ):
        split_dataset(ds, SplitSpec(test=0.0, validation=0.1))
    tiny = data.Dataset("tiny", "", np.zeros((4, 1), np.float32), np.array([0, 1, 0, 1]), "binary", ["0", "1"])
    with pytest.raises(DataError, match="fewer than 2 are left to train on"):
        split_dataset(tiny, SplitSpec(test=0.5, validation=0.25))


# -- class counts ---------------------------------------------------------------------------------


def test_class_counts_include_the_own_test_set_and_are_empty_for_regression(tmp_path, offline):
    assert class_counts(load_dataset(DataSpec(name="iris"))) == {"setosa": 50, "versicolor": 50, "virginica": 50}
    assert class_counts(load_dataset(DataSpec(name="diabetes"))) == {}
    fake_mnist_npz(tmp_path / "mnist.npz")
    counts = class_counts(load_dataset(DataSpec(source="keras", name="mnist"), cache_dir=tmp_path))
    assert counts == {str(i): 4 for i in range(10)}


def test_the_task_comes_with_a_one_line_reason(tmp_path):
    assert load_dataset(DataSpec(name="diabetes")).task_reason.startswith("regression: 214 different values")
    reason = load_dataset(csv_spec(write_csv(tmp_path, "a,kind\n1,cat\n2,dog\n3,cat\n4,dog\n"), "kind")).task_reason
    assert reason == "binary: 2 classes in the target column 'kind' (cat, dog), text labels"
    forced = load_dataset(csv_spec(write_csv(tmp_path, "a,n\n1,1\n2,2\n3,3\n", "n.csv"), "n", task="regression"))
    assert forced.task_reason == "regression: the task chosen for this data"


def test_a_target_is_proposed_only_from_a_column_named_like_one():
    from kfcore.data import propose_target

    assert propose_target(["species", "island", "bill_length_mm", "year"]) == "species"
    assert propose_target(["id", "Label ", "x"]) == "Label "
    assert propose_target(["island", "bill_length_mm", "year"]) is None  # not the last column: the user chooses
