"""The dataset behind the current spec, loaded once per process, and uploads saved into the store.

Datasets are shared by every session and treated as read-only (no copy per rerun: MNIST is hundreds of MB), in
a cache bounded by their bytes (kfcore.data.cache).
A failed load is remembered for the session, so a page does not retry a dead download on every rerun;
choosing the data again on the Data page retries it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, replace
from pathlib import Path

import streamlit as st

from kfcore.data import BUILTIN_INFO, KERAS_INFO, DataError, Dataset, bounded, load_dataset, split_dataset, uploads
from kfcore.data.cache import DatasetCache
from kfcore.data.sandbox import load_capped
from kfcore.model import advice
from kfcore.model.shapes import ShapeError, ShapeReport
from kfcore.runs.limits import LimitError, data_cache_bytes
from kfcore.runs.store import disk_guard
from kfcore.spec import DEFAULT_IMAGE_SIZE, DataSpec, LayerSpec, SplitSpec
from kfcore.training.train import assess
from ui import state

UPLOAD = "upload"
# What the uploader offers: tables, arrays, MNIST-style IDX files (gzipped or not) and ZIPs of class folders.
UPLOAD_TYPES = ("csv", "npz", "gz", "zip", "idx", "ubyte")
# The options of the `dataset` selector: built-in names, Keras download names, then "upload".
SOURCES: dict[str, str] = {
    **BUILTIN_INFO,
    **KERAS_INFO,
    UPLOAD: "your own CSV, NPZ or IDX files, or a ZIP with a folder of images per class",
}


def options() -> list[str]:
    """The selector's options on this server: without Keras downloads (KF_KERAS_DOWNLOADS=0) only built-ins
    and uploads."""
    downloads = state.limits().keras_downloads
    return [o for o in SOURCES if downloads or o not in KERAS_INFO]


def source_of(data: DataSpec) -> str:
    return data.name if data.source in ("builtin", "keras") and data.name else UPLOAD


def label(option: str) -> str:
    kind = "Keras download" if option in KERAS_INFO else "upload" if option == UPLOAD else "built-in"
    title = "Upload a file" if option == UPLOAD else option.replace("_", " ")
    return f"{title} ({kind})"


def spec_for(option: str, current: DataSpec) -> DataSpec:
    """The DataSpec of a selector option, keeping the synthetic-set settings the user already chose."""
    source = "keras" if option in KERAS_INFO else "builtin"
    return DataSpec(source=source, name=option, n=current.n, noise=current.noise)


def _key(data: DataSpec) -> str:
    return json.dumps(asdict(data), sort_keys=True)


FILE_SOURCES = ("csv", "npz", "idx", "images")


# Every session's datasets, shared and read-only, within a byte budget: counting entries bounded nothing (CIFAR-10
# alone is about 737 MB as float32).
_CACHE = DatasetCache()


def _load(key: str) -> Dataset:
    data, limits = uploads.resolve(DataSpec(**json.loads(key)), state.store().uploads_dir), state.limits()

    def load() -> Dataset:  # a cache miss only
        with st.spinner("Loading the data…"):
            if data.source in FILE_SOURCES:  # a user's file is parsed in a memory-capped child: a bomb never hits us
                return load_capped(data, limits)
            return load_dataset(data, limits=limits)

    # Keyed by the resolved spec: an upload reference names a different file in another store.
    return _CACHE.get_or_load(_key(data), load, data_cache_bytes(limits))


def dataset(data: DataSpec | None = None) -> Dataset:
    """The dataset of `data` (default: the current spec's); raises DataError with the loader's message."""
    key = _key(data or state.spec().data)
    failed = st.session_state.setdefault("data_errors", {})
    if key in failed:
        raise DataError(failed[key])
    try:
        return _load(key)
    except DataError as e:
        failed[key] = str(e)
        raise


def choose(data: DataSpec) -> Dataset:
    """Make `data` the current dataset if it loads; on DataError the previous one stays and the error rises."""
    st.session_state.setdefault("data_errors", {}).pop(_key(data), None)
    ds = dataset(data)
    state.spec().data = data
    return ds


@st.cache_data(show_spinner=False, max_entries=32)
def split_sizes(key: str, test: float, validation: float, seed: int, _ds: Dataset) -> dict[str, int]:
    """Samples per split for a dataset (by cache key: _ds, the dataset itself, is not hashed) and split settings;
    raises DataError."""
    s = split_dataset(_ds, SplitSpec(test=test, validation=validation, seed=seed))
    return {"train": len(s.y_train), "validation": 0 if s.y_val is None else len(s.y_val), "test": len(s.y_test)}


def current_split_sizes() -> dict[str, int]:
    spec = state.spec()
    ds = dataset()  # raises the remembered DataError, if any
    return split_sizes(_key(spec.data), spec.split.test, spec.split.validation, spec.split.seed, ds)


def check_model(
    layers: list[LayerSpec] | None = None,
) -> tuple[ShapeReport | None, DataError | ShapeError | LimitError | None]:
    """The shape report of `layers` (default: the current model's) on the current data, or why it cannot train:
    a layer that cannot build, or a limit of this server (memory, parameters, epochs, rows) that it is over.
    kfcore.training.train.assess decides, as it does for the trainer; the split sizes it needs come from the cache.

    A ShapeError carries layer_index, the 0-based position of the layer at fault (None: input or output).
    """
    spec = state.spec()
    if layers is not None:
        spec = replace(spec, layers=layers)
    try:
        return assess(spec, dataset(), current_split_sizes()["train"], state.limits())
    except (DataError, ShapeError) as e:
        return None, e


def model_advice() -> list[str]:
    """Warnings about the current model on the current data (kfcore.model.advice); none when the data does not load."""
    try:
        ds = dataset()
    except DataError:
        return []
    return advice.model_advice(state.spec(), ds.task, ds.n_classes)


def upload_limit_mb() -> int | None:
    """This server's cap on one upload when it is below Streamlit's own server.maxUploadSize (200 MB in
    .streamlit/config.toml), for the uploader to enforce in the browser; None: only Streamlit's applies."""
    limit = state.limits().max_upload_mb
    return limit if limit is not None and limit < st.get_option("server.maxUploadSize") else None


def save_upload(file_name: str, content: bytes, root: str | Path | None = None) -> Path:
    """Keep an upload as <store>/uploads/<sha256 prefix>/<its name>, once per content; workers read it there.

    The folder makes the path unique and stable; keeping the user's file name means every message
    about the file names the file they know. A file over this server's upload limit is refused here too:
    the browser's check (the uploader's max_upload_size) is only a courtesy a client can skip.
    """
    lower = file_name.lower()
    ext = _upload_ext(lower, content[:2] == b"\x1f\x8b", bounded.idx_ndim(content) is not None)
    idx = ext is not None and ".idx" in ext  # MNIST's files go by many names: known by their header
    if ext is None:
        raise DataError(
            f"{file_name}: only .csv, .csv.gz, .npz, IDX files (such as train-images-idx3-ubyte.gz) "
            "and .zip archives of class folders can be used; export your table as CSV"
        )
    limit_mb = state.limits().max_upload_mb
    if limit_mb is not None and len(content) > limit_mb * 2**20:
        size_mb = len(content) / 2**20
        shown = f"{size_mb:,.1f}" if round(size_mb, 1) > limit_mb else f"{size_mb:,.3f}"  # never "50.0, over 50"
        raise DataError(
            f"{file_name} is {shown} MB, over this server's upload limit of {limit_mb:,} MB; upload a smaller "
            "file: a sample of the rows, or compressed (.csv.gz, or numpy.savez_compressed for an .npz)"
        )
    name = Path(file_name).name
    if not idx:
        name = name[: -len(ext)]
    elif lower.endswith(".gz"):  # train-images-idx3-ubyte.gz is kept as train-images-idx3-ubyte.idx.gz
        name = name[:-3]
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:60] or "upload"
    base = Path(root) if root else state.store().root
    folder = base / "uploads" / hashlib.sha256(content).hexdigest()[:16]
    path = folder / f"{stem}{ext}"
    if not path.exists():
        with disk_guard(base):  # a full disk: StoreFullError, and no partial file left behind
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{stem}.{os.getpid()}.part"
            try:
                tmp.write_bytes(content)
                tmp.replace(path)
            except OSError:
                tmp.unlink(missing_ok=True)
                raise
    return path


def _upload_ext(lower: str, gzipped: bool, idx: bool) -> str | None:
    """The extension an upload is kept under (one kfcore.uploads.UPLOAD_REF allows), None for a file it cannot use."""
    for ext in (".csv.gz", ".csv", ".npz", ".zip"):  # a name that says what it is is read as that (its loader checks)
        if lower.endswith(ext):
            return ext
    if idx:
        return ".idx.gz" if gzipped else ".idx"
    return None


def keep_upload(file_name: str, content: bytes) -> str:
    """Save an upload as this browser's (save_upload) and return the reference a spec names it by: the upload is
    private to its owner in hosted mode (kfcore.runs.limits.check_data_access), and no server path reaches a page."""
    path = save_upload(file_name, content)
    ref = f"{path.parent.name}/{path.name}"
    state.store().add_upload(st.session_state.owner, ref, file_name)
    return ref


def local_path(path: str) -> Path:
    """The file on this server that a spec's path (an upload reference, or locally any path) names."""
    return uploads.local_path(path, state.store().uploads_dir)


def upload_kind(path: str) -> str:
    """The source a saved upload is read as: "csv", "npz", "images" (a ZIP of class folders) or "idx"."""
    for ext, kind in ((".npz", "npz"), (".zip", "images"), (".idx", "idx"), (".idx.gz", "idx")):
        if path.endswith(ext):
            return kind
    return "csv"


def idx_role(path: str) -> str:
    """Whether a saved IDX upload holds "labels" (one number per sample) or "images"."""
    with open(local_path(path), "rb") as f:
        return "labels" if bounded.idx_ndim(f.read(1 << 10)) == 1 else "images"


def upload_spec(
    path: str,
    target: str | None,
    task: str = "auto",
    image_size: int = DEFAULT_IMAGE_SIZE,
    color: bool = False,
    labels: str | None = None,
) -> DataSpec:
    """The DataSpec of a saved upload (`path`: its reference, or locally any file): an NPZ as it is, a CSV with the
    column to predict, a ZIP of class folders at an image size and colour, IDX images with their labels file."""
    name = Path(path).name.split(".")[0]
    kind = upload_kind(path)
    if kind == "npz":
        return DataSpec(source="npz", name=name, path=path, task=task)
    if kind == "images":
        return DataSpec(source="images", name=name, path=path, task=task, image_size=image_size, color=color)
    if kind == "idx":
        return DataSpec(source="idx", name=name, images=path, labels=labels, task=task)
    return DataSpec(source="csv", name=name, path=path, target=target, task=task)
