"""The Keras sets (MNIST, Fashion-MNIST, CIFAR-10): downloaded once with their checksums checked, cached where
Keras keeps them, read without TensorFlow."""

from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from kfcore.data.builtin import DIGIT_NAMES
from kfcore.data.dataset import DataError, Dataset, as_images, finish
from kfcore.data.images import read_idx
from kfcore.spec import KERAS_SETS, DataSpec

if TYPE_CHECKING:
    pass


KERAS_INFO: dict[str, str] = {
    "mnist": "70,000 handwritten digits, 28×28 grey, 10 classes, official 10,000-image test set (11 MB download)",
    "fashion_mnist": "70,000 Zalando clothing photos, 28×28 grey, 10 classes, official 10,000-image test set (30 MB download)",
    "cifar10": "60,000 small colour photos, 32×32×3, 10 classes, official 10,000-image test set (170 MB download)",
}

# Cache-relative file name -> URL, as Keras names and places them, so a cache Keras filled is reused
# (and the other way round). CIFAR-10 is the binary release: the Python one would need unpickling.
_KERAS_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
KERAS_URLS: dict[str, dict[str, str]] = {
    "mnist": {"mnist.npz": _KERAS_BASE + "mnist.npz"},
    "fashion_mnist": {
        f"fashion-mnist/{f}": _KERAS_BASE + f
        for f in (
            "train-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
        )
    },
    "cifar10": {"cifar-10-binary.tar.gz": "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"},
}
# Published checksums (Keras' for mnist.npz, the CIFAR page's for the binary archive): a proxy's or
# captive portal's answer must never end up in the cache looking like data.
DOWNLOAD_HASHES: dict[str, tuple[str, str]] = {
    "mnist.npz": ("sha256", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"),
    "cifar-10-binary.tar.gz": ("md5", "c32a1d4ab5d03f1284b67883e8d87530"),
}
DOWNLOAD_TIMEOUT_S = 10.0


FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

_OFFLINE_ALTERNATIVES = {
    "mnist": "the built-in 'digits' set (8×8 handwritten digits), or upload MNIST yourself as IDX or NPZ files.",
    "fashion_mnist": "the built-in 'digits' set (8×8 handwritten digits), or upload Fashion-MNIST yourself as IDX or NPZ files.",
    "cifar10": "the built-in 'digits' set (8×8 handwritten digits), or upload CIFAR-10 yourself as an NPZ file "
    "(x: N×32×32×3 uint8 images, y: labels).",
}


_CIFAR_RECORD = 1 + 3 * 32 * 32  # one label byte, then the image as 3 planes of 32×32 (CHW)


# -- Keras downloads ------------------------------------------------------------------------------


def load_keras(spec: DataSpec, cache_dir: str | Path | None) -> Dataset:
    name = spec.name or ""
    if name not in KERAS_SETS:
        raise DataError(f"unknown downloadable set {name!r}; choose one of {', '.join(KERAS_SETS)}")
    paths = _fetch(name, _cache_root(cache_dir))
    notes: list[str] = []
    if name == "mnist":
        (x, y), (x_test, y_test) = _read_mnist_npz(paths["mnist.npz"])
        names = DIGIT_NAMES
    elif name == "fashion_mnist":
        base = "fashion-mnist/"
        x = _cached_idx(paths[base + "train-images-idx3-ubyte.gz"])
        y = _cached_idx(paths[base + "train-labels-idx1-ubyte.gz"])
        x_test = _cached_idx(paths[base + "t10k-images-idx3-ubyte.gz"])
        y_test = _cached_idx(paths[base + "t10k-labels-idx1-ubyte.gz"])
        names = FASHION_NAMES
    else:
        (x, y), (x_test, y_test) = _read_cifar_binary(paths["cifar-10-binary.tar.gz"])
        names = CIFAR10_NAMES
    for images, labels in ((x, y), (x_test, y_test)):
        if len(images) != len(labels) or images.ndim not in (3, 4) or labels.ndim != 1 or labels.max(initial=0) >= 10:
            raise _damaged(next(iter(paths.values())), "its images and labels do not fit together")
    x, test_images = as_images(x, x_test, notes)
    return finish(
        spec, name, KERAS_INFO[name], x, y, "the labels", names=names, x_test=test_images, y_test=y_test, notes=notes
    )


def _cache_root(cache_dir: str | Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("KERAS_HOME"):
        return Path(os.environ["KERAS_HOME"]).expanduser() / "datasets"
    return Path.home() / ".keras" / "datasets"


def _fetch(name: str, root: Path) -> dict[str, Path]:
    """The set's files in the cache, downloading the missing ones."""
    paths = {}
    for rel, url in KERAS_URLS[name].items():
        dest = root / rel
        if not dest.is_file():
            _download(name, url, dest, DOWNLOAD_HASHES.get(rel))
        paths[rel] = dest
    return paths


def _download(name: str, url: str, dest: Path, expected_hash: tuple[str, str] | None) -> None:
    """Download url to dest through a temporary file beside it, so the cache never holds half a file."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as e:
        raise DataError(
            f"cannot write the download cache {dest.parent} ({e.strerror or e}); set KERAS_HOME to a writable folder"
        ) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _stream(name, url, out, expected_hash[0] if expected_hash else "sha256")
        if expected_hash and digest != expected_hash[1]:
            raise DataError(
                f"the download of {name} from {url} is not the expected file (its {expected_hash[0]} checksum differs; "
                f"a proxy or login page may have answered instead); try again later. "
                f"Offline alternatives: {_OFFLINE_ALTERNATIVES[name]}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _stream(name: str, url: str, out: BinaryIO, algorithm: str) -> str:
    """Copy url into out; the hex digest of what arrived."""
    digest = hashlib.new(algorithm)
    alternatives = f"Offline alternatives: {_OFFLINE_ALTERNATIVES[name]}"
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            expected = response.headers.get("Content-Length")
            received = 0
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                received += len(chunk)
                try:
                    out.write(chunk)
                except OSError as e:
                    raise DataError(
                        f"could not save the download of {name}: {e.strerror or e} (is the disk full?)"
                    ) from None
            if expected and expected.isdigit() and int(expected) != received:
                raise DataError(
                    f"the download of {name} stopped after {received:,} of {int(expected):,} bytes; try again. {alternatives}"
                )
        return digest.hexdigest()
    except urllib.error.HTTPError as e:
        raise DataError(
            f"could not download {name}: {url} answered HTTP {e.code} {e.reason} (the file may have moved). {alternatives}"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = str(getattr(e, "reason", None) or e) or type(e).__name__
        raise DataError(
            f"could not download {name} ({reason}): this machine seems to be offline. {alternatives}"
        ) from None


def _damaged(path: Path, why: object) -> DataError:
    return DataError(f"the cached file {path} is damaged ({why}); delete it and load again to download a fresh copy")


def _read_mnist_npz(path: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return (z["x_train"], z["y_train"]), (z["x_test"], z["y_test"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise _damaged(path, e) from None


def _cached_idx(path: Path) -> np.ndarray:
    try:
        return read_idx(path, path.name)
    except DataError as e:
        raise _damaged(path, e) from None


def _read_cifar_binary(path: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The six batches of the binary CIFAR-10 archive, read straight from the tar stream (nothing extracted)."""
    wanted = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    batches: dict[str, np.ndarray] = {}
    try:
        with tarfile.open(path, "r|gz") as tar:  # a stream: one pass over the 170 MB archive
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if base in wanted and member.isfile():
                    if member.size % _CIFAR_RECORD:
                        raise _damaged(path, f"{base} is not a whole number of {_CIFAR_RECORD}-byte records")
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    batches[base] = np.frombuffer(data, np.uint8).reshape(-1, _CIFAR_RECORD)
    except (OSError, EOFError, zlib.error, tarfile.TarError) as e:
        raise _damaged(path, e) from None
    missing = [w for w in wanted if w not in batches]
    if missing:
        raise _damaged(path, f"it lacks {', '.join(missing)}")

    def images_labels(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # CHW -> HWC
        return images, records[:, 0].copy()

    train = images_labels(np.concatenate([batches[w] for w in wanted[:5]]))
    return train, images_labels(batches["test_batch.bin"])
