"""The coach: what a finished run's results say, in plain words, with the one change to try next.

kfcore.model.advice reads the layer stack before training; this reads what training did (the epochs' losses, the
test scores) afterwards. Each finding names what happened and offers exactly one setting to change, so "apply
and retrain" changes only that and the new run can be compared with its parent. Pure functions: the Train and
Evaluate pages and the tests call them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

OVERFIT_RISE = 0.10  # validation loss this much above its best, while the training loss kept falling
STILL_IMPROVING = 0.01  # the last epochs still lowered the monitored loss by more than this share
PLATEAU = 0.02  # a training loss that moved less than this share from epoch 1 did not learn
CHANCE_MARGIN = 0.05  # accuracy within this of guessing the most common class is "near chance"
MAX_EPOCHS_SUGGESTED = 500


@dataclass(frozen=True)
class Finding:
    """One thing the results say, and the change that answers it (dotted spec paths -> new values)."""

    key: str  # stable name for tests and widget keys: "worse_than_mean", "overfitting", ...
    message: str
    action: str  # the button's words: "Train 20 epochs", "Continue 10 more epochs"
    change: dict[str, Any] = field(default_factory=dict)
    # Set where more epochs are the answer: the button continues this run that many epochs from its saved state
    # (kfcore.runs.jobs.continue_run) rather than training a new run from scratch with `change`.
    continue_epochs: int | None = None


def _series(history: Sequence[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in history if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]


def read_results(
    spec: dict[str, Any], history: Sequence[dict[str, Any]], evaluation: dict[str, Any], max_epochs: int | None = None
) -> list[Finding]:
    """What a finished run's history and evaluation say, the most important first (at most one about the
    learning rate, since two would contradict each other)."""
    train = spec.get("train", {})
    schedule = str(train.get("schedule") or "constant")
    epochs = int(train.get("epochs") or len(history) or 1)
    first_epoch = int(history[0].get("epoch", 1)) if history else 1  # a continued run's go on from its parent's
    lr = float(train.get("learning_rate") or 0.001)
    cap = min(max_epochs or MAX_EPOCHS_SUGGESTED, MAX_EPOCHS_SUGGESTED)
    loss = _series(history, "loss")
    val = _series(history, "val_loss")
    findings: list[Finding] = []

    r2 = evaluation.get("r2")
    if evaluation.get("task") == "regression" and isinstance(r2, (int, float)) and r2 < 0:
        findings.append(
            Finding(
                "worse_than_mean",
                f"Test R² is {r2:.2f}: the model predicts worse than always guessing the average target. It has not "
                "learned the data yet.",
                *_more_epochs(epochs, cap, schedule) if _improving(loss) else _learning_rate(lr, loss),
            )
        )
    accuracy, chance = evaluation.get("accuracy"), _chance(evaluation)
    if isinstance(accuracy, (int, float)) and chance is not None and accuracy <= chance + CHANCE_MARGIN:
        findings.append(
            Finding(
                "near_chance",
                f"Test accuracy {accuracy:.0%} is close to what guessing the most common class gets ({chance:.0%}): the "
                "model has learned little.",
                *_more_epochs(epochs, cap, schedule) if _improving(loss) else _learning_rate(lr, loss),
            )
        )

    overfit = overfitting_epoch(history)
    if overfit is not None and not train.get("early_stopping"):
        findings.append(
            Finding(
                "overfitting",
                f"Over-fitting from epoch {overfit}: the validation loss rose again while the training loss kept "
                "falling, so the model started memorising the training rows. Early stopping keeps the best epoch.",
                "Turn on early stopping",
                {"train.early_stopping": True, "train.restore_best_weights": True},
            )
        )

    if len(loss) >= 2 and not any(f.change.get("train.learning_rate") for f in findings):
        first, last = loss[0], loss[-1]
        if last > first * (1 + PLATEAU):
            findings.append(
                Finding(
                    "loss_rose",
                    f"The training loss went up ({first:.4g} in epoch {first_epoch}, {last:.4g} at the end): the steps are too big "
                    "for this model.",
                    *_learning_rate(lr, loss),
                )
            )
        elif abs(last - first) <= PLATEAU * abs(first):
            findings.append(
                Finding(
                    "loss_flat",
                    f"The training loss hardly moved from epoch {first_epoch} ({first:.4g} to {last:.4g}).",
                    *_learning_rate(lr, loss),
                )
            )

    monitored = val or loss
    if (
        overfit is None
        and not any(f.change.get("train.epochs") for f in findings)
        and len(history) >= epochs
        and _improving(monitored)
        and epochs < cap
    ):
        findings.append(
            Finding(
                "still_improving",
                f"The {'validation' if val else 'training'} loss was still falling in the last epochs: training "
                "stopped before the model was done.",
                *_more_epochs(epochs, cap, schedule),
            )
        )
    return findings


def overfitting_epoch(history: Sequence[dict[str, Any]]) -> int | None:
    """The epoch after which the validation loss rose (by OVERFIT_RISE of its best) while the training loss kept
    falling; None when it did not, or there is no validation loss."""
    rows = [
        r for r in history if isinstance(r.get("val_loss"), (int, float)) and isinstance(r.get("loss"), (int, float))
    ]
    if len(rows) < 4:
        return None
    best = min(range(len(rows)), key=lambda i: rows[i]["val_loss"])
    after = rows[best + 1 :]
    if not after:
        return None
    best_val, last = rows[best]["val_loss"], rows[-1]
    rose = last["val_loss"] > best_val * (1 + OVERFIT_RISE) + 1e-12
    train_fell = last["loss"] < rows[best]["loss"]
    return int(rows[best]["epoch"]) if rose and train_fell else None


def _improving(values: Sequence[float]) -> bool:
    """Whether the last third of the epochs (at least 2) still lowered the values by more than STILL_IMPROVING."""
    if len(values) < 3:
        return False
    k = max(2, len(values) // 3)
    before, last = values[-k - 1], values[-1]
    return last < before * (1 - STILL_IMPROVING) and last <= min(values)


def _chance(evaluation: dict[str, Any]) -> float | None:
    """The accuracy of always guessing the test split's most common class."""
    matrix = evaluation.get("confusion_matrix")
    if not matrix:
        return None
    rows = [sum(r) for r in matrix]
    total = sum(rows)
    return max(rows) / total if total else None


def _more_epochs(epochs: int, cap: int, schedule: str) -> tuple[str, dict[str, Any], int | None]:
    """Train longer: continue the run from where it ended (as many epochs again, at least 5), or, where a cosine
    decay ended with it (its rate is 0 there), train a new run for that many in all."""
    more = min(cap, max(epochs * 2, epochs + 5))
    if schedule == "cosine":
        return f"Train {more} epochs", {"train.epochs": more}, None
    extra = min(cap, more - epochs)
    return f"Continue {extra} more epochs", {"train.epochs": more}, extra


def _learning_rate(lr: float, loss: Sequence[float]) -> tuple[str, dict[str, Any]]:
    """Lower the learning rate when the loss rose or jumped about; raise it when the loss barely moved."""
    rose = len(loss) >= 2 and (loss[-1] > loss[0] or max(loss) > loss[0] * (1 + PLATEAU))
    new = lr / 10 if rose or lr >= 0.1 else lr * 10
    new = float(f"{new:.3g}")
    return f"Use learning rate {new:g}", {"train.learning_rate": new}


def apply(spec: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """A copy of a spec dict with a Finding's change applied (dotted paths into its sections)."""
    out: dict[str, Any] = {
        k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in spec.items()
    }
    for path, value in change.items():
        section, name = path.split(".", 1)
        out.setdefault(section, {})[name] = value
    return out
