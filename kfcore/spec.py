"""RunSpec: the one JSON-serialisable description of a run, validated, with JSON and URL round trips.

The dict shape (data / split / layers / train, plus an optional output) is a contract that pages,
share links, the CLI and tests rely on: extend it, never rename a field.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from kfcore.layers import ACTIVATIONS, FIELD_NAMES, INITIALIZERS, KINDS, LAYER_TYPES, PADDINGS, kind, pair

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LAYER_DEFAULTS",
    "LAYER_TYPES",
    "PADDINGS",
    "DataSpec",
    "LayerSpec",
    "OutputSpec",
    "RunSpec",
    "SpecError",
    "SplitSpec",
    "TrainSpec",
    "pair",
    "parse_spec",
]

SOURCES = ("builtin", "keras", "csv", "npz", "idx", "images")
SYNTHETIC_SETS = ("circle", "xor", "gauss", "spiral", "moons")
BUILTIN_SETS = ("digits", "iris", "wine", "breast_cancer", "diabetes") + SYNTHETIC_SETS
KERAS_SETS = ("mnist", "fashion_mnist", "cifar10")
TASKS = ("auto", "multiclass", "binary", "regression")
IMAGE_SIZES = (28, 32, 64, 96)  # an images source's square side: MNIST's, CIFAR's, and two for photos
DEFAULT_IMAGE_SIZE = 32

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("constant", "exponential", "cosine")
LOSSES = (
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "mse",
    "mae",
    "huber",
)

# Every layer kind's defaults, for callers that make a fresh layer of a kind (the editor's Add layer).
LAYER_DEFAULTS: dict[str, dict[str, Any]] = {
    name: {f.name: f.default for f in k.fields if f.default is not None} for name, k in KINDS.items()
}

MAX_URL_CHARS = 20_000
# Bounds checked before a spec's JSON is parsed, so a crafted link, file or form can only be refused, never
# exhaust the parser: a few KB hold any real spec; JSON nests 3 levels deep in a real one; 20 digits hold every
# integer a field accepts (Python refuses to parse integers of more than 4,300 digits with a ValueError).
MAX_SPEC_BYTES = 1 << 20
MAX_JSON_DEPTH = 16
MAX_INT_DIGITS = 20
MAX_TEXT_CHARS = 4096


class SpecError(ValueError):
    """A spec that cannot run; `problems` lists (field path, message) pairs, all of them at once."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{path}: {msg}" if path else msg for path, msg in problems))


@dataclass
class DataSpec:
    source: str = "builtin"
    name: str | None = "digits"
    path: str | None = None  # csv, npz, images (a ZIP of class folders)
    target: str | None = None  # csv: the column to predict
    images: str | None = None  # idx
    labels: str | None = None  # idx
    n: int = 500  # synthetic sets: number of points
    noise: float = 0.0  # synthetic sets: 0 (clean) to 0.5
    task: str = "auto"  # auto-infer, or force multiclass / binary / regression
    image_size: int | None = None  # images: each image resized to this square side (IMAGE_SIZES)
    color: bool | None = None  # images: RGB (True) or grey


@dataclass
class SplitSpec:
    test: float = 0.2
    validation: float = 0.1
    seed: int = 0


class LayerSpec:
    """One hidden layer: its kind (`type`) and the values of the kind's fields (kfcore.layers declares them).

    Every field any kind declares reads as an attribute, None when unset (`layer.units`); unknown names are
    refused, so a typo never passes silently. Equal when the kind and the set values are.
    """

    def __init__(self, type: str, **values: Any):
        self.__dict__["type"] = type
        self.__dict__["_values"] = {}
        for name, value in values.items():
            setattr(self, name, value)

    def __getattr__(self, name: str) -> Any:
        if name in FIELD_NAMES:
            return self.__dict__["_values"].get(name)
        raise AttributeError(f"a layer has no field {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "type":
            self.__dict__["type"] = value
        elif name not in FIELD_NAMES:
            raise AttributeError(f"a layer has no field {name!r}; the fields are {', '.join(FIELD_NAMES)}")
        elif value is None:
            self.__dict__["_values"].pop(name, None)
        else:
            self.__dict__["_values"][name] = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LayerSpec) and (self.type, self._values) == (other.type, other._values)

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self._values.items())
        return f"LayerSpec({self.type!r}{args})"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self._values}

    def values(self) -> dict[str, Any]:
        """Every field of the layer's kind, the kind's defaults filling those not set."""
        return kind(self.type).values(self._values)

    def short(self) -> str:
        """A few characters for tables: 'Dense(64, relu)', 'Conv2D(32, 3x3)'."""
        return kind(self.type).short(self.values()) if self.type in KINDS else str(self.type)


@dataclass
class TrainSpec:
    optimizer: str = "adam"
    learning_rate: float = 0.001
    epochs: int = 10
    batch_size: int = 32
    seed: int = 0
    momentum: float = 0.0  # sgd only
    weight_decay: float = 0.004  # adamw only
    schedule: str = "constant"
    decay_rate: float = 0.9  # exponential: learning rate multiplied by this each epoch
    early_stopping: bool = False
    patience: int = 3
    restore_best_weights: bool = True


@dataclass
class OutputSpec:
    """Optional override of the output layer's activation and the loss; derived from the task when None."""

    activation: str | None = None
    loss: str | None = None


@dataclass
class RunSpec:
    data: DataSpec = field(default_factory=DataSpec)
    split: SplitSpec = field(default_factory=SplitSpec)
    layers: list[LayerSpec] = field(default_factory=lambda: [LayerSpec("Dense", units=64, activation="relu")])
    train: TrainSpec = field(default_factory=TrainSpec)
    output: OutputSpec = field(default_factory=OutputSpec)

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "data": {k: v for k, v in asdict(self.data).items() if v is not None},
            "split": asdict(self.split),
            "layers": [layer.to_dict() for layer in self.layers],
            "train": asdict(self.train),
        }
        out = {k: v for k, v in asdict(self.output).items() if v is not None}
        if out:
            d["output"] = out
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def to_url(self) -> str:
        """A compact URL-safe string: compact JSON, deflated, base64url without padding.

        The split and train sections hold only what differs from the defaults (parse_spec fills the rest in), so
        an address bar that carries the experiment stays short; data and layers are always written whole."""
        d = self.to_dict()
        defaults = RunSpec().to_dict()
        for section in ("split", "train"):
            d[section] = {k: v for k, v in d[section].items() if v != defaults[section][k]}
            if not d[section]:
                del d[section]
        raw = json.dumps(d, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")

    @classmethod
    def from_dict(cls, d: Any) -> RunSpec:
        return parse_spec(d)

    @classmethod
    def from_json(cls, text: str | bytes) -> RunSpec:
        return parse_spec(load_json(text, "the spec"))

    @classmethod
    def from_url(cls, token: str) -> RunSpec:
        if not isinstance(token, str) or not token or len(token) > MAX_URL_CHARS:
            raise SpecError([("", "the shared link holds no readable experiment; ask for the link again")])
        try:
            inflate = zlib.decompressobj()
            raw = inflate.decompress(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), MAX_SPEC_BYTES)
        except (binascii.Error, zlib.error, ValueError):
            raise SpecError(
                [("", "the shared link is damaged or cut short; copy the whole link and try again")]
            ) from None
        if inflate.unconsumed_tail:  # a zlib bomb: more than any real spec inflates to
            raise SpecError(
                [
                    (
                        "",
                        f"the shared link inflates to more than {MAX_SPEC_BYTES // 1024:,} KB, far more than "
                        "any experiment needs; it is damaged or crafted. Ask for the link again",
                    )
                ]
            )
        return parse_spec(load_json(raw, "the shared link"))

    # -- conveniences -------------------------------------------------------------------------
    def copy(self) -> RunSpec:
        return parse_spec(self.to_dict())

    def layers_short(self) -> str:
        return " → ".join(layer.short() for layer in self.layers) or "(no hidden layers)"


def load_json(text: str | bytes, what: str) -> Any:
    """JSON text as Python values, refusing sizes, nesting and numbers no spec has before the parser sees them.

    Raises SpecError naming `what` ("the spec", "the shared link") and the bound that was crossed.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise SpecError([("", f"{what} is not UTF-8 text; save it as UTF-8 JSON")]) from None
    if not isinstance(text, str):
        raise SpecError([("", f"{what} must be JSON text, got {type(text).__name__}")])
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(
            [
                (
                    "",
                    f"{what} is {len(text):,} characters long, over the {MAX_SPEC_BYTES:,} any spec "
                    "needs; it is not a run spec",
                )
            ]
        )
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise SpecError(
            [
                (
                    "",
                    f"{what} nests {depth:,} levels deep; a run spec nests at most {MAX_JSON_DEPTH} "
                    "(sections, then layers); it is not a run spec",
                )
            ]
        )
    try:
        return json.loads(text, parse_int=_bounded_int)
    except SpecError:
        raise
    except (json.JSONDecodeError, ValueError, RecursionError) as e:
        raise SpecError([("", f"{what} is not valid JSON ({e}); fix the syntax and try again")]) from None


def json_depth(text: str) -> int:
    """The deepest nesting of [ and { in JSON text (brackets inside strings do not count), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise SpecError(
            [
                (
                    "",
                    f"a number in the spec has {len(digits.lstrip('-')):,} digits; no field takes more "
                    f"than {MAX_INT_DIGITS}",
                )
            ]
        )
    return int(digits)


def _shown(v: Any, limit: int = 60) -> str:
    """A value as an error message quotes it: its repr, cut short (a crafted spec may hold megabytes)."""
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- validation ---------------------------------------------------------------------------------


class _Checker:
    """Collects every problem in a spec so the user fixes them in one go, not one per try."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def fail(self, path: str, msg: str) -> None:
        self.problems.append((path, msg))

    def section(self, d: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if d is None:
            return {}
        if not isinstance(d, dict):
            self.fail(path, f"must be an object with the fields {', '.join(allowed)}, got {type(d).__name__}")
            return {}
        for k in d:
            if k not in allowed:
                self.fail(f"{path}.{str(k)[:40]}", f"unknown field; allowed here: {', '.join(allowed)}")
        return {k: v for k, v in d.items() if k in allowed}

    def integer(self, d: dict, key: str, path: str, default: int, lo: int, hi: int) -> int:
        v = d.get(key, default)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(f"{path}.{key}", f"must be a whole number from {lo} to {hi}, got {_shown(v)}")
            return default
        if not lo <= v <= hi:
            self.fail(f"{path}.{key}", f"must be from {lo} to {hi}, got {v}")
            return default
        return v

    def number(
        self, d: dict, key: str, path: str, default: float, lo: float, hi: float, lo_open: bool = False
    ) -> float:
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            self.fail(f"{path}.{key}", f"must be a number from {lo} to {hi}, got {_shown(v)}")
            return default
        if v < lo or v > hi or (lo_open and v == lo):
            bound = f"above {lo}" if lo_open else f"from {lo}"
            self.fail(f"{path}.{key}", f"must be {bound} to {hi}, got {v}")
            return default
        return float(v)

    def choice(self, d: dict, key: str, path: str, default: Any, options: tuple[Any, ...]) -> Any:
        v = d.get(key, default)
        if v is None and default is None:
            return None
        if v not in options:
            self.fail(f"{path}.{key}", f"unknown value {_shown(v)}; choose one of {', '.join(map(str, options))}")
            return default
        return v

    def text(self, d: dict, key: str, path: str) -> str | None:
        v = d.get(key)
        if v is None:
            return None
        if not isinstance(v, str) or not v.strip():
            self.fail(f"{path}.{key}", f"must be a non-empty text, got {_shown(v)}")
            return None
        if len(v) > MAX_TEXT_CHARS:
            self.fail(f"{path}.{key}", f"is {len(v):,} characters long; at most {MAX_TEXT_CHARS:,}")
            return None
        if any(ord(ch) < 32 for ch in v):  # a NUL in a path makes the OS calls raise; no name needs control bytes
            self.fail(f"{path}.{key}", f"holds control characters (such as a NUL byte): {_shown(v)}; remove them")
            return None
        return v

    def boolean(self, d: dict, key: str, path: str, default: bool) -> bool:
        v = d.get(key, default)
        if not isinstance(v, bool):
            self.fail(f"{path}.{key}", f"must be true or false, got {_shown(v)}")
            return default
        return v

    def field(self, d: dict, f: Any, path: str) -> Any:
        """A layer field by its declaration (kfcore.layers.Field): the checks its kind of value needs."""
        if f.kind == "int":
            return self.integer(d, f.name, path, f.default, int(f.lo), int(f.hi))
        if f.kind == "float":
            return self.number(d, f.name, path, f.default, f.lo, f.hi)
        if f.kind == "choice":
            return self.choice(d, f.name, path, f.default, f.options)
        return self.size(d, f.name, path, f.default)

    def size(self, d: dict, key: str, path: str, default: Any) -> Any:
        """A kernel/pool/stride size: a whole number ≥ 1, or a pair of them."""
        v = d.get(key, default)
        if v is None:
            return None
        ok_int = lambda x: isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= 1024  # noqa: E731
        if ok_int(v):
            return v
        if isinstance(v, (list, tuple)) and len(v) == 2 and all(ok_int(x) for x in v):
            return [int(x) for x in v]
        self.fail(f"{path}.{key}", f"must be a whole number from 1 to 1024 or a pair like [3, 3], got {_shown(v)}")
        return default


def parse_spec(d: Any) -> RunSpec:
    """Validate a dict (from JSON, a form or a URL) into a RunSpec, or raise SpecError naming every problem."""
    c = _Checker()
    if not isinstance(d, dict):
        raise SpecError(
            [("spec", f"must be a JSON object with the sections data, split, layers, train; got {type(d).__name__}")]
        )
    top = c.section(d, "spec", ("data", "split", "layers", "train", "output"))
    data = _parse_data(c, top.get("data"))
    split = _parse_split(c, top.get("split"))
    layers = _parse_layers(c, top.get("layers", [LayerSpec("Dense", units=64, activation="relu").to_dict()]))
    train = _parse_train(c, top.get("train"))
    o = c.section(top.get("output"), "output", ("activation", "loss"))
    output = OutputSpec(
        activation=c.choice(o, "activation", "output", None, ACTIVATIONS),
        loss=c.choice(o, "loss", "output", None, LOSSES),
    )
    if c.problems:
        raise SpecError(c.problems)
    return RunSpec(data=data, split=split, layers=layers, train=train, output=output)


def _parse_data(c: _Checker, raw: Any) -> DataSpec:
    names = [f.name for f in fields(DataSpec)]
    d = c.section(raw, "data", tuple(names))
    ds = DataSpec()
    ds.source = c.choice(d, "source", "data", "builtin", SOURCES)
    ds.task = c.choice(d, "task", "data", "auto", TASKS)
    ds.name = None
    if ds.source == "builtin":
        ds.name = c.choice(d, "name", "data", "digits", BUILTIN_SETS)
        ds.n = c.integer(d, "n", "data", 500, 20, 100_000)
        ds.noise = c.number(d, "noise", "data", 0.0, 0.0, 0.5)
    elif ds.source == "keras":
        ds.name = c.choice(d, "name", "data", "mnist", KERAS_SETS)
    elif ds.source in ("csv", "npz", "images"):
        ds.path = c.text(d, "path", "data")
        if "path" not in d:
            c.fail("data.path", f"a {ds.source} source needs the path of the file to read")
        if ds.source == "csv":
            ds.target = c.text(d, "target", "data")
            if "target" not in d:
                c.fail("data.target", "a csv source needs the name of the column to predict")
        if ds.source == "images":
            ds.image_size = c.choice(d, "image_size", "data", DEFAULT_IMAGE_SIZE, IMAGE_SIZES)
            ds.color = c.boolean(d, "color", "data", False)
        ds.name = c.text(d, "name", "data")
    elif ds.source == "idx":
        ds.images = c.text(d, "images", "data")
        ds.labels = c.text(d, "labels", "data")
        for key in ("images", "labels"):
            if key not in d:
                c.fail(f"data.{key}", f"an idx source needs the path of the {key} file (IDX format, gzip or raw)")
        ds.name = c.text(d, "name", "data")
    return ds


def _parse_split(c: _Checker, raw: Any) -> SplitSpec:
    d = c.section(raw, "split", ("test", "validation", "seed"))
    s = SplitSpec(
        test=c.number(d, "test", "split", 0.2, 0.0, 0.9),
        validation=c.number(d, "validation", "split", 0.1, 0.0, 0.9),
        seed=c.integer(d, "seed", "split", 0, 0, 2**31 - 1),
    )
    if s.test + s.validation > 0.9:
        c.fail(
            "split",
            f"test ({s.test}) and validation ({s.validation}) leave too little to train on; keep their sum at 0.9 or less",
        )
    return s


def _parse_layers(c: _Checker, raw: Any) -> list[LayerSpec]:
    if not isinstance(raw, list):
        c.fail("layers", f"must be a list of layers, got {type(raw).__name__}")
        return []
    if len(raw) > 64:
        c.fail("layers", f"at most 64 hidden layers, got {len(raw)}")
        return []
    out = []
    for i, item in enumerate(raw):
        path = f"layers[{i}]"
        if not isinstance(item, dict):
            c.fail(path, f'must be an object like {{"type": "Dense", "units": 64}}, got {_shown(item)}')
            continue
        kind = item.get("type")
        if not isinstance(kind, str) or kind not in LAYER_TYPES:
            c.fail(f"{path}.type", f"unknown layer type {_shown(kind)}; choose one of {', '.join(LAYER_TYPES)}")
            continue
        layer_kind = KINDS[kind]
        d = c.section(item, f"{path} ({kind})", ("type",) + tuple(f.name for f in layer_kind.fields))
        layer = LayerSpec(type=kind)
        for f in layer_kind.fields:
            if f.default is None and d.get(f.name) is None:
                continue  # an optional field left out: Keras's own default applies
            setattr(layer, f.name, c.field(d, f, path))
        out.append(layer)
    return out


def _parse_train(c: _Checker, raw: Any) -> TrainSpec:
    d = c.section(raw, "train", tuple(f.name for f in fields(TrainSpec)))
    return TrainSpec(
        optimizer=c.choice(d, "optimizer", "train", "adam", OPTIMIZERS),
        learning_rate=c.number(d, "learning_rate", "train", 0.001, 0.0, 10.0, lo_open=True),
        epochs=c.integer(d, "epochs", "train", 10, 1, 10_000),
        batch_size=c.integer(d, "batch_size", "train", 32, 1, 65_536),
        seed=c.integer(d, "seed", "train", 0, 0, 2**31 - 1),
        momentum=c.number(d, "momentum", "train", 0.0, 0.0, 0.999),
        weight_decay=c.number(d, "weight_decay", "train", 0.004, 0.0, 1.0),
        schedule=c.choice(d, "schedule", "train", "constant", SCHEDULES),
        decay_rate=c.number(d, "decay_rate", "train", 0.9, 0.0, 1.0, lo_open=True),
        early_stopping=c.boolean(d, "early_stopping", "train", False),
        patience=c.integer(d, "patience", "train", 3, 1, 1000),
        restore_best_weights=c.boolean(d, "restore_best_weights", "train", True),
    )
