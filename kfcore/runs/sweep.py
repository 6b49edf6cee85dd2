"""Sweeps: one run spec and the hyperparameters that vary, read, checked and counted before anything runs.

A sweep file is `{"base": <run spec>, "grid": {"train.learning_rate": [0.003, 0.03], "layers.0.units": [8, 32]}}`
(every combination), or `"random"` / `"optuna"` with `"samples": N`, whose values are lists (choices) or ranges
`{"min": …, "max": …, "log": true}`; `"repeats": N` trains each setting with N seeds (a sweep over train.seed);
`"early_stop": "asha"` stops trials whose metric lags at a rung. Paths are dotted paths into the spec's JSON; each
path and value is checked against RunSpec, so a typo is refused naming it. Running them is kfcore.runs.sweeprun's job.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from kfcore.layers import KINDS
from kfcore.runs.limits import Limits
from kfcore.spec import RunSpec, SpecError, load_json

SEARCHES = ("grid", "random", "optuna")
EARLY_STOPS = ("asha",)
METRICS = ("val_loss", "loss", "val_accuracy", "accuracy")
# ASHA's rungs: a trial is judged after GRACE epochs, then every time it has trained ETA times as long; at each rung
# only the best 1/ETA of the trials that reached it go on (Li et al. 2020; Ray Tune's ASHAScheduler, same numbers).
ASHA_GRACE = 1
ASHA_ETA = 3
_KEYS = ("base", "name", "grid", "random", "optuna", "samples", "repeats", "early_stop", "metric", "seed")
_SECTIONS = ("data", "split", "train")
MAX_VALUES = 100  # choices per hyperparameter: more is a typo, not a sweep


class SweepError(ValueError):
    """A sweep that cannot run, saying which key or path is wrong and what to do."""


@dataclass(frozen=True)
class Range:
    """A continuous (or whole-number) range a random or Optuna search draws from."""

    min: float
    max: float
    log: bool = False
    integer: bool = False  # the field is a whole number (units, epochs, batch size): draws are rounded

    def to_dict(self) -> dict[str, Any]:
        kind = int if self.integer else float
        return {"min": kind(self.min), "max": kind(self.max), **({"log": True} if self.log else {})}

    def draw(self, rng: random.Random) -> float | int:
        lo, hi = (math.log(self.min), math.log(self.max)) if self.log else (self.min, self.max)
        value = rng.uniform(lo, hi)
        value = math.exp(value) if self.log else value
        return min(int(self.max), max(int(self.min), round(value))) if self.integer else value


@dataclass(frozen=True)
class Sweep:
    base: RunSpec
    search: str = "grid"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)  # dotted path -> tuple of values, or a Range
    samples: int = 1  # random / optuna: how many settings are drawn
    repeats: int = 1  # seeds per setting
    early_stop: str | None = None
    metric: str = "val_loss"
    seed: int = 0  # the random search's draws
    name: str | None = None

    @property
    def mode(self) -> str:
        return "min" if self.metric.endswith("loss") else "max"

    @property
    def settings(self) -> int:
        """How many distinct settings: every combination (grid) or the samples drawn (random, optuna)."""
        if self.search == "grid":
            return math.prod(len(v) for v in self.params.values())
        return self.samples

    @property
    def trial_count(self) -> int:
        return self.settings * self.repeats

    @property
    def swept(self) -> list[str]:
        """The paths that vary between trials, the seed last when repeats vary it."""
        return list(self.params) + (["train.seed"] if self.repeats > 1 else [])

    def seeds(self) -> list[int]:
        return [self.base.train.seed + i for i in range(self.repeats)]

    def to_dict(self) -> dict[str, Any]:
        """The sweep as a file says it (parse_sweep reads it back)."""
        out: dict[str, Any] = {
            "base": self.base.to_dict(),
            self.search: {path: v.to_dict() if isinstance(v, Range) else list(v) for path, v in self.params.items()},
        }
        if self.search != "grid":
            out["samples"] = self.samples
        for key, value, default in (
            ("repeats", self.repeats, 1),
            ("early_stop", self.early_stop, None),
            ("metric", self.metric, "val_loss"),
            ("seed", self.seed, 0),
            ("name", self.name, None),
        ):
            if value != default:
                out[key] = value
        return out


def load_sweep(text: str | bytes) -> Sweep:
    """A sweep file's text, bounded like a spec's before it is parsed; SweepError says what is wrong."""
    try:
        raw = load_json(text, "sweep file")
    except SpecError as e:
        raise SweepError(str(e)) from None
    return parse_sweep(raw)


def parse_sweep(raw: Any) -> Sweep:
    if not isinstance(raw, dict):
        raise SweepError(
            'a sweep file is a JSON object: {"base": <run spec>, "grid": {"train.learning_rate": [0.003, 0.03]}}'
        )
    unknown = [k for k in raw if k not in _KEYS]
    if unknown:
        raise SweepError(f"unknown key {unknown[0]!r} in the sweep file; its keys are {', '.join(_KEYS)}")
    if "base" not in raw:
        raise SweepError('the sweep file has no "base": give the run spec the trials start from')
    try:
        base = RunSpec.from_dict(raw["base"])
    except SpecError as e:
        raise SweepError(f"base: {e}") from None
    searches = [s for s in SEARCHES if s in raw]
    if len(searches) > 1:
        raise SweepError(f"the sweep file has both {searches[0]!r} and {searches[1]!r}: give one search")
    search = searches[0] if searches else "grid"
    space = raw.get(search, {})
    if not isinstance(space, dict):
        raise SweepError(f'"{search}" maps dotted paths to values, e.g. {{"train.learning_rate": [0.003, 0.03]}}')
    repeats = _whole(raw, "repeats", 1, 1, 100)
    samples = _whole(raw, "samples", 0 if search != "grid" else 1, 1, 100_000)
    if search != "grid" and "samples" not in raw:
        raise SweepError(f'a {search} search needs "samples": how many settings to draw (e.g. "samples": 8)')
    if search == "grid" and "samples" in raw:
        raise SweepError('"samples" is for a random or optuna search; a grid tries every combination')
    early_stop = raw.get("early_stop")
    if early_stop is not None and early_stop not in EARLY_STOPS:
        raise SweepError(f'"early_stop" is {_shown(early_stop)}: the one early stopping is "asha" (or leave it out)')
    metric = raw.get("metric", "val_loss")
    if metric not in METRICS:
        raise SweepError(f'"metric" is {_shown(metric)}: pick one of {", ".join(METRICS)}')
    if early_stop and base.train.epochs <= ASHA_GRACE and not any(p == "train.epochs" for p in space):
        raise SweepError(
            f"ASHA judges trials after {ASHA_GRACE} epoch(s): train more epochs than that, or leave early_stop out"
        )
    if search == "optuna" and repeats > 1:
        raise SweepError(
            '"repeats" works with a grid or random search: Optuna picks each trial from the ones '
            "before it; sweep with optuna, then repeat the best setting with a grid"
        )
    params = {path: _values(base, search, path, values) for path, values in space.items()}
    if repeats > 1 and "train.seed" in params:
        raise SweepError('"repeats" and "train.seed" both vary the seed: keep one of them')
    if not params and repeats == 1:
        raise SweepError(f'nothing varies: give "{search}" a hyperparameter with several values, or "repeats"')
    seed = _whole(raw, "seed", 0, 0, 2**31 - 1)
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise SweepError('"name" is a text of at most 200 characters')
    return Sweep(base, search, params, samples if search != "grid" else 1, repeats, early_stop, metric, seed, name)


def _shown(value: Any) -> str:
    return json.dumps(value)[:60]


def _whole(raw: dict, key: str, default: int, lo: int, hi: int) -> int:
    value = raw.get(key, default)
    if key not in raw:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SweepError(f'"{key}" is {_shown(value)}: give a whole number from {lo} to {hi:,}')
    return value


def _field(base: dict[str, Any], path: str) -> Any:
    """The base spec's value at a dotted path (a layer field the layer's kind has but leaves unset: its default).
    SweepError names the path and says what is there."""
    parts = path.split(".")
    if parts[0] == "layers":
        if len(parts) != 3 or not parts[1].isdigit():
            raise SweepError(f"{path!r}: a layer's field is layers.<index>.<field>, e.g. layers.0.units")
        index, name = int(parts[1]), parts[2]
        if index >= len(base["layers"]):
            raise SweepError(f"{path!r}: the base spec has {len(base['layers'])} layer(s), numbered from 0")
        layer = base["layers"][index]
        fields = {f.name: f for f in KINDS[layer["type"]].fields}
        if name not in fields:
            raise SweepError(
                f"{path!r}: a {layer['type']} layer has no field {name!r}; its fields are {', '.join(fields)}"
            )
        return layer.get(name, fields[name].default)
    if parts[0] not in _SECTIONS or len(parts) != 2:
        raise SweepError(
            f"{path!r} is not a hyperparameter path: use train.<field>, split.<field>, data.<field> "
            "or layers.<index>.<field> (e.g. train.learning_rate, layers.0.units)"
        )
    section = base[parts[0]]
    names = [f.name for f in dataclasses.fields(getattr(RunSpec(), parts[0]))]
    if parts[1] not in names:
        raise SweepError(f"{path!r}: {parts[0]} has no field {parts[1]!r}; its fields are {', '.join(names)}")
    return section.get(parts[1])


def set_path(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of a spec dict with the value at a dotted path replaced."""
    out = json.loads(json.dumps(spec))
    parts = path.split(".")
    node = out
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[parts[-1]] = value
    return out


def get_path(spec: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a spec dict, None when it is unset (a layer field left at its default)."""
    node: Any = spec
    for part in path.split("."):
        if isinstance(node, list):
            node = node[int(part)] if part.isdigit() and int(part) < len(node) else None
        elif isinstance(node, dict):
            node = node.get(part)
        if node is None:
            return None
    return node


def _check(base: dict[str, Any], path: str, value: Any) -> None:
    try:
        RunSpec.from_dict(set_path(base, path, value))
    except SpecError as e:
        raise SweepError(f"{path!r} = {_shown(value)}: {e}") from None


def _values(base: RunSpec, search: str, path: str, values: Any) -> Any:
    spec = base.to_dict()
    current = _field(spec, path)
    if isinstance(values, dict):
        if search == "grid":
            raise SweepError(
                f"{path!r}: a grid takes a list of values; a range {{min, max}} is for a random or optuna search"
            )
        return _range(spec, path, values, current)
    if not isinstance(values, list) or not values:
        raise SweepError(
            f'{path!r}: give a list of values (e.g. [0.003, 0.03]) or a range {{"min": 0.001, "max": 0.1, "log": true}}'
        )
    if len(values) > MAX_VALUES:
        raise SweepError(f"{path!r} has {len(values):,} values; at most {MAX_VALUES} per hyperparameter")
    if len({json.dumps(v) for v in values}) != len(values):
        raise SweepError(f"{path!r} lists a value twice: each value once")
    for value in values:
        _check(spec, path, value)
    return tuple(values)


def _range(spec: dict[str, Any], path: str, values: dict, current: Any) -> Range:
    extra = [k for k in values if k not in ("min", "max", "log")]
    if extra or "min" not in values or "max" not in values:
        raise SweepError(f'{path!r}: a range is {{"min": …, "max": …}} with an optional "log": true')
    lo, hi, log = values["min"], values["max"], values.get("log", False)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi))
    if not numbers or not isinstance(log, bool):
        raise SweepError(f"{path!r}: a range's min and max are numbers and log is true or false")
    if not isinstance(current, (int, float)) or isinstance(current, bool):
        raise SweepError(f"{path!r} is not a number: give it a list of choices instead of a range")
    if not lo < hi:
        raise SweepError(f"{path!r}: the range's min ({lo}) must be below its max ({hi})")
    if log and lo <= 0:
        raise SweepError(f"{path!r}: a log range needs a min above 0 (it is {lo})")
    integer = isinstance(current, int)
    for value in (lo, hi):
        _check(spec, path, int(value) if integer else value)
    return Range(float(lo), float(hi), log, integer)


def check_count(sweep: Sweep, limits: Limits | None = None) -> None:
    """Refuse a sweep of more trials than this server takes (KF_MAX_TRIALS), before any is made."""
    limits = limits or Limits.from_env()
    if limits.max_trials and sweep.trial_count > limits.max_trials:
        raise SweepError(
            f"this sweep makes {describe_count(sweep)}, over this server's limit of "
            f"{limits.max_trials:,} trials per sweep (KF_MAX_TRIALS): give fewer values, samples or "
            "repeats"
        )


def describe_count(sweep: Sweep) -> str:
    """'12 trials (6 settings × 2 seeds)' — how the count comes about, for the page and refusals."""
    trials = f"{sweep.trial_count:,} trial{'s' if sweep.trial_count != 1 else ''}"
    if sweep.search == "grid":
        sizes = [str(len(v)) for v in sweep.params.values()]
        how = " × ".join(sizes) + " settings" if len(sizes) > 1 else f"{sweep.settings} settings"
    else:
        how = f"{sweep.samples} {sweep.search} samples"
    return f"{trials} ({how} × {sweep.repeats} seeds)" if sweep.repeats > 1 else f"{trials} ({how})"


def settings(sweep: Sweep) -> list[dict[str, Any]]:
    """The settings a grid or random search tries, in order (each a {path: value}); an Optuna search has none
    ahead of time: it picks each from the results before it."""
    if sweep.search == "grid":
        paths = list(sweep.params)
        return [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*sweep.params.values())]
    if sweep.search == "random":
        rng = random.Random(sweep.seed)
        return [
            {path: v.draw(rng) if isinstance(v, Range) else rng.choice(v) for path, v in sweep.params.items()}
            for _ in range(sweep.samples)
        ]
    raise ValueError("an optuna search picks its settings as it goes (kfcore.runs.sweeprun)")


def with_seeds(sweep: Sweep, setting: dict[str, Any]) -> list[dict[str, Any]]:
    """One trial's values per seed of a setting (the setting itself when it is not repeated)."""
    if sweep.repeats == 1:
        return [setting]
    return [{**setting, "train.seed": seed} for seed in sweep.seeds()]


def trial_spec(sweep: Sweep, values: dict[str, Any]) -> RunSpec:
    spec = sweep.base.to_dict()
    for path, value in values.items():
        spec = set_path(spec, path, value)
    return RunSpec.from_dict(spec)


def trial_name(sweep_name: str, values: dict[str, Any]) -> str:
    """'sweep 1 · learning_rate=0.003 units=8' — short enough for the Runs table, the values in it."""
    parts = " ".join(f"{path.rsplit('.', 1)[-1]}={_short(v)}" for path, v in values.items())
    return f"{sweep_name} · {parts}"[:120]


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def trial_values(sweep: Sweep, spec: dict[str, Any]) -> dict[str, Any]:
    """A trial's swept values, read back from its spec (the one record of them)."""
    return {path: get_path(spec, path) for path in sweep.swept}


def max_epochs(sweep: Sweep) -> int:
    """The most epochs any trial trains (ASHA's horizon)."""
    values = sweep.params.get("train.epochs")
    if values is None:
        return sweep.base.train.epochs
    return int(values.max) if isinstance(values, Range) else max(values)


def asha_rungs(max_epochs: int) -> list[int]:
    """The epochs at which ASHA judges a trial: GRACE, GRACE·ETA, GRACE·ETA², … below the last epoch."""
    rungs, rung = [], ASHA_GRACE
    while rung < max_epochs:
        rungs.append(rung)
        rung *= ASHA_ETA
    return rungs


def asha_stops(value: float, earlier: list[float], mode: str) -> bool:
    """Whether a trial whose metric on reaching a rung is `value` stops there, given the values the trials before
    it recorded at that rung: it goes on while within the best 1/ETA of them (Ray Tune's ASHA rule: the first
    trial at a rung always goes on)."""
    if not earlier:
        return False
    sign = -1.0 if mode == "min" else 1.0
    cutoff = float(np.percentile([sign * v for v in earlier], (1 - 1 / ASHA_ETA) * 100))
    return sign * value < cutoff
