"""Runs side by side: one summary row per run for the Runs table, and the spec fields in which runs differ.

Pure functions over RunRecords, the store's epoch rows and spec dicts; the Runs page draws what they return.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from kfcore.present import runview
from kfcore.runs.store import RunRecord
from kfcore.spec import RunSpec, SpecError

MISSING = None  # the value of a field one run's spec does not have (a layer the other run lacks)


def normalised_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with every default filled in, so a field left out and the same field at its default compare equal."""
    try:
        return RunSpec.from_dict(spec).to_dict()
    except SpecError:
        return spec  # an old or hand-made spec: compare it as it was stored


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists as one level of dotted paths: {"train.epochs": 10, "layers[0].units": 64}."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and prefix.split(".")[-1] == "layers":  # a layer stack: one path per layer field
        out = {f"{prefix}.count": len(value)}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def config_diff(specs: Sequence[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """(field path, one value per spec) for each field whose value is not the same in every spec, in spec order.

    A field that only some specs have (a third layer, an output override) counts as different; the others
    get MISSING for it.
    """
    flat = [flatten(normalised_spec(s)) for s in specs]
    paths: list[str] = []
    for f in flat:
        paths += [p for p in f if p not in paths]
    rows = []
    for path in paths:
        values = [f.get(path, MISSING) for f in flat]
        if any(v != values[0] for v in values[1:]):
            rows.append((path, values))
    return rows


def dataset_name(spec: dict[str, Any]) -> str:
    data = spec.get("data", {})
    return str(data.get("name") or data.get("source") or "?")


def layers_short(spec: dict[str, Any]) -> str:
    try:
        return RunSpec.from_dict(spec).layers_short()
    except SpecError:
        return f"{len(spec.get('layers', []))} layers"


def best_validation(history: Sequence[dict[str, Any]], task: str) -> tuple[str, float] | None:
    """(metric, best value) over the epochs: the highest validation accuracy, or the lowest validation MAE."""
    metric = runview.metric_for(task)
    values = [float(r[f"val_{metric}"]) for r in history if r.get(f"val_{metric}") is not None]
    if not values:
        return None
    return metric, (min(values) if metric == "mae" else max(values))


class EpochFacts(NamedTuple):
    """What the Runs table takes from a run's epochs: how many, and the best validation (metric, value)."""

    epochs: int
    best: tuple[str, float] | None


def epoch_facts(record: RunRecord, history: Sequence[dict[str, Any]]) -> EpochFacts:
    """A run's epochs boiled down for its Runs row; an ended run's never change, so a page may keep them."""
    return EpochFacts(len(history), best_validation(history, record.info.get("task", "")))


def summary_row(record: RunRecord, facts: EpochFacts) -> dict[str, Any]:
    """One row of the Runs table: what the run was, how it did, how long it took and where."""
    best = facts.best
    head = runview.headline_metric(record.test)
    return {
        "id": record.id,
        "name": record.name,
        "parent": record.parent,
        "dataset": dataset_name(record.spec),
        "layers": layers_short(record.spec),
        "params": record.info.get("params"),
        "epochs": f"{facts.epochs} of {runview.planned_epochs(record)}",
        "best_val": best[1] if best else None,
        "best_val_metric": best[0] if best else "",
        "test": head[1] if head else None,
        "test_metric": head[0] if head else "",
        "time_s": record.duration,
        "device": record.hardware.get("device", ""),
        "status": record.status,
        "created": record.created,
    }


def matches(row: dict[str, Any], text: str, statuses: Sequence[str] = ()) -> bool:
    """Whether a summary row passes the Runs page's filters: words in name, dataset or layers, and a status."""
    if statuses and row["status"] not in statuses:
        return False
    haystack = " ".join(str(row[k]) for k in ("name", "dataset", "layers", "id")).lower()
    return all(word in haystack for word in text.lower().split())
