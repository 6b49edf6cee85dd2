"""Design advice: models that build and train but cannot learn well, said before anyone waits for them.

Errors (a shape that cannot build, a limit) stop a run; these only warn, because a person may be exploring
on purpose ("what does a softmax hidden layer do?"). Each message names the layer, what goes wrong and
what to change.
"""

from __future__ import annotations

from kfcore.layers import KINDS
from kfcore.model.shapes import head
from kfcore.spec import LayerSpec, RunSpec

SATURATING = ("sigmoid", "tanh")
DEEP_SATURATING = 4  # from this many sigmoid/tanh layers in a row, gradients fade noticeably


def model_advice(spec: RunSpec, task: str, n_classes: int) -> list[str]:
    """Warnings about `spec`'s model for this data (task "multiclass", "binary" or "regression")."""
    notes: list[str] = []
    for i, layer in enumerate(spec.layers):  # what each layer's kind says about the layer alone
        if layer.type in KINDS:
            notes += KINDS[layer.type].advice(layer.values(), i + 1)
    weighted = [layer for layer in spec.layers if _weighted(layer)]
    if len(weighted) >= 2 and all((layer.activation or "linear") == "linear" for layer in weighted):
        reach = "fit a flat plane through the data" if task == "regression" else "draw straight boundaries"
        notes.append(
            f"Every hidden layer is linear, so together they are one linear map: the model can only {reach}. "
            "Give them relu (or tanh) to learn curves."
        )
    run = longest_run(spec, SATURATING)
    if run >= DEEP_SATURATING:
        notes.append(
            f"{run} sigmoid/tanh layers in a row: their gradients shrink layer by layer, so the first "
            "ones barely learn; relu (or BatchNormalization between them) trains faster."
        )
    units, activation, _ = head(task, n_classes, spec.output)
    if activation == "softmax" and units == 1:
        notes.append(
            "The output layer is a single softmax unit, which always outputs 1: the model cannot learn. "
            "Remove the output activation override (a yes/no task uses one sigmoid unit)."
        )
    return notes


def longest_run(spec: RunSpec, activations: tuple[str, ...]) -> int:
    """The most weighted layers in a row with one of `activations` (Dropout and BatchNormalization between
    them do not break the run)."""
    best = current = 0
    for layer in spec.layers:
        if _weighted(layer):
            current = current + 1 if layer.activation in activations else 0
            best = max(best, current)
    return best


def _weighted(layer: LayerSpec) -> bool:
    """A layer with weights and an activation (Dense, Conv2D): normalisation and dropout between them do not count."""
    return layer.type in KINDS and KINDS[layer.type].weighted
