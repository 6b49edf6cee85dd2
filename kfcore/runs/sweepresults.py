"""A sweep's results from its trials in the store: one row per trial, the best one, and per-setting seed statistics.

The CLI's lines, the Sweep page's table and its figures (kfcore.sweepplots) all read these rows, so "best" and
"within noise" mean the same everywhere.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from kfcore.runs.store import FINAL_STATUSES, RunRecord
from kfcore.runs.sweep import Sweep, trial_values


def metric_of(epochs: list[dict[str, Any]], metric: str) -> float | None:
    """A trial's score: its last epoch's `metric`; without a validation split, the training one (loss for val_loss).
    None before its first epoch."""
    if not epochs:
        return None
    last = epochs[-1]
    value = last.get(metric, last.get(metric.removeprefix("val_")))
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def trial_row(sweep: Sweep, record: RunRecord, epochs: list[dict[str, Any]]) -> dict[str, Any]:
    """What one trial is: its id, swept values, status (with why, when it did not finish), score and test metrics."""
    row: dict[str, Any] = {
        "run_id": record.id,
        "values": trial_values(sweep, record.spec),
        "status": record.status,
        "epochs": len(epochs),
        sweep.metric: metric_of(epochs, sweep.metric),
        "test": record.test,
    }
    if record.error:
        row["error"] = record.error
    return row


def scored(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """The trials that have a result to compare: ended, with a score (a training trial's latest epoch is none)."""
    return [r for r in rows if r["status"] in FINAL_STATUSES and r.get(metric) is not None]


def best(sweep: Sweep, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The finished trial with the best score (lowest loss, highest accuracy); None when none finished."""
    scored = [r for r in rows if r["status"] == "finished" and r[sweep.metric] is not None]
    if not scored:
        return None
    pick = min if sweep.mode == "min" else max
    return pick(scored, key=lambda r: r[sweep.metric])


def summary(sweep: Sweep, sweep_id: str, rows: list[dict[str, Any]], backend: str) -> dict[str, Any]:
    """The CLI's last line: counts by status and the best trial."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {
        "summary": {
            "sweep_id": sweep_id,
            "backend": backend,
            "search": sweep.search,
            "metric": sweep.metric,
            "trials": len(rows),
            **counts,
        },
        "best": best(sweep, rows),
    }


@dataclass(frozen=True)
class SeedStats:
    """One setting over its seeds: the score's mean, standard deviation (0 for one seed), min and max."""

    setting: dict[str, Any]
    run_ids: tuple[str, ...]
    n: int
    mean: float
    sd: float
    low: float
    high: float

    def overlaps(self, other: SeedStats) -> bool:
        """Whether the two settings' ±1 sd intervals overlap: the difference between them is within the noise."""
        return self.mean - self.sd <= other.mean + other.sd and other.mean - other.sd <= self.mean + self.sd


def setting_key(values: dict[str, Any]) -> str:
    """A setting's identity: its values without the seed."""
    return json.dumps({k: v for k, v in values.items() if k != "train.seed"}, sort_keys=True)


def seed_stats(sweep: Sweep, rows: list[dict[str, Any]]) -> list[SeedStats]:
    """Per setting, the statistics of its finished seeds' scores, best first (sample sd, n−1)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] == "finished" and r[sweep.metric] is not None:
            groups.setdefault(setting_key(r["values"]), []).append(r)
    stats = []
    for key, group in groups.items():
        scores = [r[sweep.metric] for r in group]
        mean = sum(scores) / len(scores)
        sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1)) if len(scores) > 1 else 0.0
        stats.append(
            SeedStats(
                json.loads(key), tuple(r["run_id"] for r in group), len(scores), mean, sd, min(scores), max(scores)
            )
        )
    return sorted(stats, key=lambda s: s.mean, reverse=sweep.mode == "max")
