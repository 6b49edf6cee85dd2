"""Export a run: a standalone Keras script that trains it again (python_script) and its metrics as CSV (metrics_csv).

The script needs tensorflow/keras, numpy and, where the data calls for them, scikit-learn or pandas;
never kfcore. It repeats kfcore's steps one for one (the same loading and scaling, the same sklearn
split calls and seeds, the same layers in the same order, the same compile, fit and keras seed), so on
the same machine it reaches the same test metrics as the run. The code is written for the one spec,
with no branches for other sources or optimizers. Writing a script never imports TensorFlow.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import inspect
import io
import os
import tempfile
import tokenize
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kfcore import data as kdata
from kfcore.data import DataError, Dataset, load_dataset, split_dataset
from kfcore.data import recipe as krecipe
from kfcore.layers import kind
from kfcore.layers.base import call as _call
from kfcore.layers.base import num as _num
from kfcore.layers.base import q as _q
from kfcore.model.shapes import head, infer_shapes
from kfcore.spec import DEFAULT_IMAGE_SIZE, KERAS_SETS, SYNTHETIC_SETS, RunSpec

# Training samples and image shape of each Keras set: known without downloading it.
_KERAS_SHAPES = {
    "mnist": (60_000, (28, 28, 1)),
    "fashion_mnist": (60_000, (28, 28, 1)),
    "cifar10": (50_000, (32, 32, 3)),
}
_SKLEARN_SETS = {
    "digits": "load_digits",
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "diabetes": "load_diabetes",
}
# The import each name needs, added when the script uses the name (so nothing is imported unused).
_IMPORTS = {
    "gzip": "import gzip",
    "math": "import math",
    "keras": "import keras",
    "np": "import numpy as np",
    "pd": "import pandas as pd",
    "layers": "from keras import layers",
    "train_test_split": "from sklearn.model_selection import train_test_split",
    "make_moons": "from sklearn.datasets import make_moons",
    **{loader: f"from sklearn.datasets import {loader}" for loader in _SKLEARN_SETS.values()},
}
_STDLIB = ("gzip", "math")


# -- public API -----------------------------------------------------------------------------------


def python_script(spec: RunSpec, run_name: str | None = None) -> str:
    """A standalone tf.keras script, top to bottom like a keras-io example, that trains the run again.

    The data is read once here (Keras downloads excepted) so that the code fits what it holds: the
    task, the split sizes, the CSV columns (from the spec's paths: resolve upload references first,
    kfcore.data.uploads.resolve); the script names its files without their folder. Raises DataError or
    ShapeError, with kfcore's message, when the run itself could not start (a missing file, an
    impossible layer stack).
    """
    facts = _facts(spec)
    script = _Script()
    script.section("Data", *_data_lines(spec, facts, script), *_label_lines(facts))
    script.section(*_split_lines(spec, facts))
    targets = _target_lines(facts)
    if targets:
        script.section(*targets)
    script.section("Model", *_model_lines(spec, facts))
    script.section("Train", *_train_lines(spec, facts))
    script.section("Evaluate", *_evaluate_lines(facts))
    return script.text(_docstring(spec, facts, run_name))


SCRIPT_NAME = "train.py"


def data_files(spec: RunSpec) -> list[Path]:
    """The files the script reads by bare name from beside itself (a spec with resolved paths); [] for built-in
    sets and Keras downloads."""
    d = spec.data
    if d.source == "images":
        return [prepared_images(spec)]
    return [Path(p) for p in (d.path, d.images, d.labels) if p]


def prepared_images(spec: RunSpec) -> Path:
    """The NPZ a class-folder ZIP's script reads (x: its images as kfcore.data.imagefolder prepared them, uint8;
    y: their class folders), written once per ZIP, size and colour into the temporary folder: the script needs no
    Pillow and no copy of the cropping and resizing rules."""
    from kfcore.data import imagefolder

    d = spec.data
    zip_path = Path(d.path or "")
    size, color = d.image_size or DEFAULT_IMAGE_SIZE, bool(d.color)
    stat = zip_path.stat()
    key = hashlib.sha256(repr((str(zip_path.resolve()), stat.st_size, stat.st_mtime_ns, size, color)).encode())
    path = (
        Path(tempfile.gettempdir())
        / "kf-prepared"
        / key.hexdigest()[:16]
        / (f"{zip_path.stem}-{size}px-{'colour' if color else 'grey'}.npz")
    )
    if not path.is_file():
        found = imagefolder.read_zip(zip_path, size, color)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.part")
        with open(tmp, "wb") as f:  # a file object: savez would add .npz to the temporary name
            np.savez_compressed(f, x=found.images, y=np.array(found.classes)[found.labels])
        os.replace(tmp, path)
    return path


def script_zip(spec: RunSpec, run_name: str | None = None) -> bytes:
    """A ZIP of the script (train.py) and the data files it reads, side by side: unpack and run it anywhere."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(SCRIPT_NAME, python_script(spec, run_name))
        for path in data_files(spec):
            archive.write(path, arcname=path.name)
    return out.getvalue()


def model_files(model_path: str | Path) -> list[Path]:
    """A run's model and the recipe saved beside it (when it has one): what takes raw rows."""
    from kfcore.data.recipe import RECIPE_FILE

    model = Path(model_path)
    return [f for f in (model, model.with_name(RECIPE_FILE)) if f.is_file()]


def files_zip(files: list[Path]) -> bytes:
    """These files side by side in a ZIP."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, arcname=path.name)
    return out.getvalue()


def metrics_csv(epochs: list[dict[str, Any]]) -> str:
    """Per-epoch metrics (as RunStore.epochs returns them) as CSV text: a header, then one row per epoch.

    List-valued fields (per_class_val_accuracy) become one column per element, name_0, name_1, ...,
    so a spreadsheet can plot each class's curve; a field an epoch lacks is an empty cell.
    """
    rows = [_flat_row(e) for e in epochs]
    columns = ["epoch"]
    for row in rows:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _flat_row(epoch: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in epoch.items():
        if isinstance(value, (list, tuple)):
            row.update({f"{key}_{i}": v for i, v in enumerate(value)})
        else:
            row[key] = "" if value is None else value
    return row


# -- what the data holds --------------------------------------------------------------------------


@dataclass
class _Facts:
    """What the script must know about the data to be written for it alone."""

    task: str
    n_classes: int
    input_shape: tuple[int, ...]
    own_test: bool  # the source brings its own test set (Keras sets, an NPZ with x_test)
    n_test: int  # samples split off for testing; 0 with an own test set
    n_val: int
    stratify_test: bool
    stratify_val: bool
    units: int = 0  # the output layer and loss, from the task and the spec's overrides
    activation: str = ""
    loss: str = ""
    dataset: Dataset | None = None  # None for Keras downloads, which are never fetched here
    raw_labels: bool = False  # classes are the sorted distinct labels of a file (or a forced task)

    @property
    def classify(self) -> bool:
        return self.task != "regression"

    @property
    def sets(self) -> list[str]:
        return ["train", "val", "test"] if self.n_val else ["train", "test"]


def _facts(spec: RunSpec) -> _Facts:
    d, split = spec.data, spec.split
    if d.source == "keras" and d.name in KERAS_SETS:
        n, shape = _KERAS_SHAPES[d.name]
        task = "multiclass" if d.task == "auto" else d.task
        if task == "binary":
            raise DataError(
                f"task 'binary' needs exactly 2 classes, but there are 10 in {d.name}; choose 'multiclass' or 'auto'"
            )
        n_val = kdata.split_count(split.validation, n)
        # Every class has thousands of samples: stratifying only needs room for all 10 on both sides.
        stratify = task != "regression" and min(n_val, n - n_val) >= 10
        facts = _Facts(task, 0 if task == "regression" else 10, shape, True, 0, n_val, False, stratify)
    else:
        ds = load_dataset(d, split=split)  # a table's recipe fitted on the run's training rows, as the run did
        own_test = ds.x_test is not None
        # Split sample numbers, not the data: the run's checks and counts at no memory cost.
        splits = split_dataset(dataclasses.replace(ds, x=np.arange(len(ds.y))), split)
        n_test = 0 if own_test else len(splits.y_test)
        n_val = 0 if splits.y_val is None else len(splits.y_val)
        classify = ds.task != "regression"
        # kfcore decides per train_test_split call from class counts; the rest's counts are train's plus val's.
        y_rest = splits.y_train if splits.y_val is None else np.concatenate([splits.y_train, splits.y_val])
        stratify_test = classify and not own_test and kdata.can_stratify(ds.y, n_test, len(ds.y) - n_test)
        stratify_val = classify and n_val > 0 and kdata.can_stratify(y_rest, n_val, len(y_rest) - n_val)
        coded = d.source == "builtin" and d.name != "diabetes"  # sklearn's and Playground's labels are 0..K-1
        facts = _Facts(
            ds.task,
            ds.n_classes,
            ds.input_shape,
            own_test,
            n_test,
            n_val,
            stratify_test,
            stratify_val,
            dataset=ds,
            raw_labels=classify and not coded,
        )
    infer_shapes(spec.layers, facts.input_shape, facts.task, facts.n_classes, spec.output)  # ShapeError early
    facts.units, facts.activation, facts.loss = head(facts.task, facts.n_classes, spec.output)
    return facts


# -- assembling the script ------------------------------------------------------------------------


@dataclass
class _Script:
    """Helper functions and commented sections; the imports follow from the names they use."""

    helpers: list[str] = field(default_factory=list)
    sections: list[list[str]] = field(default_factory=list)

    def section(self, comment: str, *lines: str) -> None:
        self.sections.append([f"# {comment}", *lines])

    def text(self, docstring: str) -> str:
        helpers = "".join(f"{h}\n\n\n" for h in self.helpers)
        body = "\n\n".join("\n".join(s) for s in self.sections)
        code = helpers + body
        names = {t.string for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type == tokenize.NAME}
        used = [name for name in _IMPORTS if name in names]
        # isort's order: the standard library, then the rest; plain imports before from-imports in each.
        groups = [[_IMPORTS[n] for n in used if n in _STDLIB], [_IMPORTS[n] for n in used if n not in _STDLIB]]
        imports = "\n\n".join(
            "\n".join(sorted(g, key=lambda line: (line.startswith("from"), line.split()[1]))) for g in groups if g
        )
        gap = "\n\n\n" if self.helpers else "\n\n"  # isort: two blank lines before a def, else one
        return f"{docstring}\n\n{imports}{gap}{code}\n"


def _num32(v: float) -> str:
    """The shortest literal that is v as a float32: the script computes in float32, as kfcore does."""
    return _num(float(str(np.float32(v))))


def _clean(text: str) -> str:
    """Text safe inside the docstring: one line, no backslashes or double quotes."""
    return " ".join(str(text).split()).replace("\\", "/").replace('"', "'")


def _docstring(spec: RunSpec, facts: _Facts, run_name: str | None) -> str:
    d, t = spec.data, spec.train
    name = d.name or Path(d.path or d.images or "data").name
    title = f'KF Studio run "{_clean(run_name)}"' if run_name else "A KF Studio run"
    task = f"{facts.task}, {facts.n_classes} classes" if facts.classify else "regression"
    layers = _clean(spec.layers_short().replace(" → ", " -> "))
    needs = ["tensorflow", "numpy"]
    if d.source != "keras" or facts.n_val:
        needs.append("scikit-learn")
    if d.source == "csv":
        needs.append("pandas")
    return "\n".join(
        [
            f'"""{title}, as a standalone Keras script.',
            "",
            f"Data: {_clean(name)} ({task}). Hidden layers: {layers}.",
            f"Training: {t.optimizer}, learning rate {t.learning_rate:g}, {t.epochs} epochs, batch size {t.batch_size}.",
            f"Needs {', '.join(needs)}. Saves the trained model as model.keras in the working directory.",
            '"""',
        ]
    )


# -- data -----------------------------------------------------------------------------------------


def _data_lines(spec: RunSpec, facts: _Facts, script: _Script) -> list[str]:
    """Code that leaves x, y (and x_test, y_test for an own test set) as kfcore loads them, labels raw."""
    d = spec.data
    if d.source == "builtin" and d.name in SYNTHETIC_SETS:
        return _synthetic_lines(spec, script)
    if d.source == "builtin":
        loader = _SKLEARN_SETS[d.name or ""]
        if d.name == "digits":
            return [
                "digits = load_digits()",
                'x = (digits.images / 16.0).astype("float32")[..., None]  # 8x8 grey images, pixels 0..16 -> 0..1',
                "y = digits.target",
            ]
        if d.name == "diabetes":
            return [
                "x, y = load_diabetes(return_X_y=True, scaled=False)  # raw units: the model standardises them",
                'x = x.astype("float32")',
            ]
        return [f"x, y = {loader}(return_X_y=True)", 'x = x.astype("float32")']
    if d.source == "keras":
        lines = [f"(x, y), (x_test, y_test) = keras.datasets.{d.name}.load_data()"]
        channel = "[..., None]"
        if d.name == "cifar10":
            lines.append("y, y_test = y.ravel(), y_test.ravel()  # the labels come as an (N, 1) column")
            channel = ""
        return lines + [
            f'x = x{channel}.astype("float32") / 255  # pixels 0..255 -> 0..1',
            f'x_test = x_test{channel}.astype("float32") / 255',
        ]
    if d.source == "npz":
        return _npz_lines(spec, facts)
    if d.source == "images":  # the prepared arrays: decoding and resizing stay kfcore's, the rest is an NPZ's
        prepared = dataclasses.replace(d, source="npz", path=str(prepared_images(spec)))
        return _npz_lines(dataclasses.replace(spec, data=prepared), facts)
    if d.source == "idx":
        script.helpers.append(_READ_IDX)
        images = kdata.read_idx(d.images or "", "images")
        names = [Path(d.images or "").name, Path(d.labels or "").name]
        return [
            _beside(*names),
            f"x = read_idx({_q(names[0])})",
            f"y = read_idx({_q(names[1])})",
            *_image_lines(["x"], [images]),
        ]
    return _csv_lines(spec, facts, script)


def _label_lines(facts: _Facts) -> list[str]:
    """Float targets for regression, class codes 0..K-1 for a file's labels (kfcore's order: sorted)."""
    tests = ["y_test"] if facts.own_test else []
    if not facts.classify:
        return [f'{y} = {y}.astype("float32")' for y in ["y", *tests]]
    if facts.raw_labels:
        return [
            "classes, y = np.unique(y, return_inverse=True)  # labels -> class numbers, in sorted order",
            *(f"{y} = np.searchsorted(classes, {y})" for y in tests),
        ]
    return []


def _synthetic_lines(spec: RunSpec, script: _Script) -> list[str]:
    d = spec.data
    if d.name == "moons":
        return [
            f"x, y = make_moons(n_samples={d.n}, noise={float(d.noise)!r}, random_state=0)",
            'x = ((x - [0.5, 0.25]) * 4.0).astype("float32")  # centred and stretched to Playground\'s [-6, 6]',
        ]
    # kfcore's own generator, verbatim: the script draws exactly the run's points.
    script.helpers.append(inspect.getsource(kdata.PLAYGROUND_GENERATORS[d.name or ""]).rstrip())
    return [
        "rng = np.random.default_rng(0)  # a fixed seed, as in KF Studio: the same points every time",
        f"x, y = {d.name}({d.n}, {float(d.noise)!r}, rng)",
        "order = rng.permutation(len(x))  # the generator emits one class after the other",
        'x, y = x[order].astype("float32"), y[order]',
    ]


def _image_scaling(arrays: list[np.ndarray]) -> tuple[float, float]:
    """(lo, span) kfcore.data scales images with, (x - lo) / span: uint8 by 255, [0, 1] as is, else min-max."""
    if arrays[0].dtype == np.uint8:
        return 0.0, 255.0
    lo = float(min(a.min(initial=np.inf) for a in arrays))
    hi = float(max(a.max(initial=-np.inf) for a in arrays))
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return lo, (hi - lo) or 1.0


def _image_lines(names: list[str], arrays: list[np.ndarray]) -> list[str]:
    lo, span = _image_scaling(arrays)
    lines = []
    for name, a in zip(names, arrays, strict=True):
        expr = f'{name}{"[..., None]" if a.ndim == 3 else ""}.astype("float32")'
        if lo:
            expr = f"({expr} {'-' if lo > 0 else '+'} {_num32(abs(lo))})"
        if span != 1.0:
            expr += f" / {_num32(span)}"
        lines.append(f"{name} = {expr}")
    if span != 1.0:
        lines[0] += f"  # pixels {lo:.4g}..{lo + span:.4g} -> 0..1"
    return lines


def _beside(*names: str) -> str:
    """The script reads its data files by name alone: no server path in a download, and it runs anywhere."""
    them = "them" if len(names) > 1 else "it"
    return f"# Put {' and '.join(names)} next to this script: it reads {them} from the working directory"


def _npz_lines(spec: RunSpec, facts: _Facts) -> list[str]:
    keys = ["x", "y", "x_test", "y_test"] if facts.own_test else ["x", "y"]
    with np.load(spec.data.path or "", allow_pickle=False) as archive:
        raw = {k: archive[k] for k in keys}
    name = Path(spec.data.path or "").name
    lines = [_beside(name), f"data = np.load({_q(name)}, allow_pickle=False)", 'x, y = data["x"], data["y"]']
    if facts.own_test:
        lines.append('x_test, y_test = data["x_test"], data["y_test"]  # the file\'s own test set')
    lines += [f"{y} = {y}.ravel()  # one label per sample" for y in keys[1::2] if raw[y].ndim == 2]
    xs = keys[0::2]
    if raw["x"].ndim >= 3:
        return lines + _image_lines(xs, [raw[x] for x in xs])
    return lines + [f'{x} = {x}.reshape(len({x}), -1).astype("float32")' for x in xs]


_READ_IDX = '''def read_idx(path):
    """An array in IDX format (MNIST's files), gzip-compressed or raw."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\\x1f\\x8b":
        data = gzip.decompress(data)
    dtype = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[data[2]]
    ndim = data[3]
    shape = np.frombuffer(data, ">u4", count=ndim, offset=4)
    return np.frombuffer(data, dtype, offset=4 + 4 * ndim).reshape(shape)'''


def _csv_lines(spec: RunSpec, facts: _Facts, script: _Script) -> list[str]:
    """pandas code that reads the file as kfcore did and applies the run's recipe (kfcore.data.recipe) to it: the recipe's
    own functions, verbatim, with what it fitted on the run's training rows written in as data."""
    import pandas as pd

    path = Path(spec.data.path or "")
    ds = facts.dataset
    assert ds is not None and ds.recipe is not None  # a CSV run always has its recipe
    recipe = ds.recipe
    target = recipe.target["column"]
    df = kdata.read_csv(path)
    script.helpers.append(krecipe.source_of("numbers", "prepare"))
    lines = [
        _beside(path.name),
        f"df = {_call('pd.read_csv', [_q(path.name), *_csv_read_options(path, list(df.columns))])}",
    ]
    if kdata.tidy_columns(df):  # kfcore's rule: " age" is "age" unless two columns would merge
        lines.append("df.columns = df.columns.str.strip()")
    if recipe.target["numbers"]:
        lines.append(
            f"df[{_q(target)}] = numbers(df[{_q(target)}], {recipe.target['format']!r})  "
            "# the target as numbers: a cell that is not one becomes a gap"
        )
    if len(ds.y) < len(df):
        lines.append(f"df = df.dropna(subset=[{_q(target)}])  # rows without a target teach nothing")
    listed = "".join(f"    {_literal(column)},\n" for column in recipe.columns)
    text = (
        not recipe.target["numbers"]
        and not pd.api.types.is_numeric_dtype(df[target])
        and not pd.api.types.is_bool_dtype(df[target])
    )
    return lines + [
        "# The recipe KF Studio fitted on the run's training rows: per column its kind and preparation (the",
        "# training median fills a gap, the training categories are one-hot encoded, an unseen one is all zeros)",
        "RECIPE = [\n" + listed + "]",
        "x = prepare(df, RECIPE)",
        f"y = df[{_q(target)}]{'.astype(str)' if text else ''}.to_numpy()",
    ]


def _literal(value: Any) -> str:
    """A recipe value (dicts, lists, text, numbers, None) as Python code in the script's style (double quotes)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_q(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return _q(value) if isinstance(value, str) else repr(value)


def _csv_read_options(path: Path, columns: list[str]) -> list[str]:
    """pd.read_csv arguments besides the path that read the file as kfcore did (compression, separator)."""
    import pandas as pd

    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    options = []
    if gzipped != path.name.lower().endswith(".gz"):  # pandas goes by the name, kfcore by the first bytes
        options.append('compression="gzip"' if gzipped else "compression=None")
    for sep in (",", ";", "\t"):
        header = pd.read_csv(path, sep=sep, nrows=0, encoding="utf-8", compression="gzip" if gzipped else None)
        if list(header.columns) == columns:
            if sep != ",":
                options.append(f"sep={_q(sep)}")
            break
    return options


# -- split and targets ----------------------------------------------------------------------------


def _split_lines(spec: RunSpec, facts: _Facts) -> list[str]:
    seed = spec.split.seed
    if facts.own_test:
        comment, rest, lines = "Split: the data's own test set as it is", ("x", "y"), []
    else:
        comment, rest = f"Split: {facts.n_test} samples for testing", ("x_train", "y_train")
        stratify = ", stratify=y" if facts.stratify_test else ""
        lines = [
            f"x_train, x_test, y_train, y_test = "
            f"train_test_split(x, y, test_size={facts.n_test}, random_state={seed}{stratify})"
        ]
    if facts.n_val:
        comment += f", {facts.n_val} for validation"
        stratify = f", stratify={rest[1]}" if facts.stratify_val else ""
        lines.append(
            f"x_train, x_val, y_train, y_val = "
            f"train_test_split({rest[0]}, {rest[1]}, test_size={facts.n_val}, random_state={seed}{stratify})"
        )
    elif facts.own_test:
        lines.append("x_train, y_train = x, y")
    if facts.stratify_test or facts.stratify_val:
        comment += ", keeping the class proportions"
    elif facts.classify and (facts.n_test or facts.n_val):
        comment += " (not stratified: too few samples per class)"
    return [comment, *lines]


def _target_lines(facts: _Facts) -> list[str]:
    """Targets in the form the loss expects; [] when class numbers or floats are that form already."""
    if facts.loss == "categorical_crossentropy":
        return [
            "Targets: one-hot rows for categorical_crossentropy",
            *(f"y_{s} = keras.utils.to_categorical(y_{s}, {facts.n_classes})" for s in facts.sets),
        ]
    if facts.loss == "binary_crossentropy":
        return [
            "Targets: a column of 0/1 floats for binary_crossentropy",
            *(f'y_{s} = y_{s}.astype("float32").reshape(-1, 1)' for s in facts.sets),
        ]
    return []


# -- model, training, evaluation ------------------------------------------------------------------


def _model_lines(spec: RunSpec, facts: _Facts) -> list[str]:
    report = infer_shapes(spec.layers, facts.input_shape, facts.task, facts.n_classes, spec.output)
    items = [f"keras.Input(shape={facts.input_shape!r}),"]
    for row in report.rows:
        if row.kind == "Normalization":
            items += [
                "# Standardise each feature with the training split's mean and variance",
                "layers.Normalization(mean=x_train.mean(axis=0), variance=x_train.var(axis=0)),",
            ]
        elif row.index is not None:
            items.append(kind(spec.layers[row.index].type).code(spec.layers[row.index].values()) + ",")
        elif row.kind == "Flatten":
            items.append("layers.Flatten(),  # added because Dense needs flat input")
        elif row.kind == "Rescaling":
            items += [
                "# Back to the target's units: the layers before learn the standardised target",
                "layers.Rescaling(scale=y_std, offset=y_mean),",
            ]
        else:
            args = [str(facts.units)] + ([f"activation={_q(facts.activation)}"] if facts.activation != "linear" else [])
            items.append(_call("layers.Dense", args, 8) + ",  # output")
    listed = "".join(f"        {item}\n" for item in items)
    scale = ["y_mean, y_std = float(y_train.mean()), float(y_train.std()) or 1.0  # the target's scale"]
    return [
        *(scale if not facts.classify else []),
        f"keras.utils.set_random_seed({spec.train.seed})  # the same initial weights, dropout and shuffling",
        "model = keras.Sequential(\n    [\n" + listed + "    ]\n)",
        "model.summary()",
    ]


def _train_lines(spec: RunSpec, facts: _Facts) -> list[str]:
    t = spec.train
    lines = []
    learning_rate = _num(t.learning_rate)
    if t.schedule != "constant":
        lines.append(f"steps_per_epoch = math.ceil(len(x_train) / {t.batch_size})")
        if t.schedule == "exponential":
            lines.append(f"# The learning rate falls smoothly, by a factor of {_num(t.decay_rate)} per epoch")
            args = [learning_rate, "decay_steps=steps_per_epoch", f"decay_rate={_num(t.decay_rate)}"]
            lines.append(f"learning_rate = {_call('keras.optimizers.schedules.ExponentialDecay', args)}")
        else:
            lines.append(f"# The learning rate falls along a cosine to 0 over the {t.epochs} epochs")
            args = [learning_rate, f"decay_steps={t.epochs} * steps_per_epoch"]
            lines.append(f"learning_rate = {_call('keras.optimizers.schedules.CosineDecay', args)}")
        learning_rate = "learning_rate"
    args = [f"learning_rate={learning_rate}"]
    if t.optimizer == "sgd" and t.momentum:
        args.append(f"momentum={_num(t.momentum)}")
    if t.optimizer == "adamw":
        args.append(f"weight_decay={_num(t.weight_decay)}")
    name = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad"}[t.optimizer]
    metric = "mae" if facts.task == "regression" else "accuracy"
    compile_args = [
        f"optimizer={_call(f'keras.optimizers.{name}', args, 4)}",
        f"loss={_q(facts.loss)}",
        f'metrics=["{metric}"]',
    ]
    power = {"mse": " ** 2", "mae": "", "huber": ""}.get(facts.loss) if not facts.classify else None
    if power is not None:  # the loss of the standardised target, as kfcore.training.train.loss_weight weighs it
        compile_args.append(f"loss_weights=[1 / y_std{power}]")
    lines.append(_call("model.compile", compile_args))
    fit = ["x_train", "y_train", f"batch_size={t.batch_size}", f"epochs={t.epochs}"]
    if facts.n_val:
        fit.append("validation_data=(x_val, y_val)")
    if t.early_stopping:
        monitor = "val_loss" if facts.n_val else "loss"
        stop = [f'monitor="{monitor}"', f"patience={t.patience}"]
        if t.restore_best_weights:
            stop.append("restore_best_weights=True")
        lines.append(f"early_stopping = {_call('keras.callbacks.EarlyStopping', stop)}")
        fit.append("callbacks=[early_stopping]")
    lines.append(_call("model.fit", fit))
    return lines


def _evaluate_lines(facts: _Facts) -> list[str]:
    metric = "mae" if facts.task == "regression" else "accuracy"
    return [
        "scores = model.evaluate(x_test, y_test, verbose=0, return_dict=True)",
        "print(f\"test loss: {scores['loss']:.4f}\")",
        f"print(f\"test {metric}: {{scores['{metric}']:.4f}}\")",
        'model.save("model.keras")',
    ]
