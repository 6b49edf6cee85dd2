"""A run's history as TensorBoard event files, so `tensorboard --logdir DIR` shows it next to other work.

Keras' TensorBoard callback writes logs/train and logs/validation with the same tag for both (epoch_loss);
these files follow that layout, so a KF Studio run and a plain Keras run overlay in TensorBoard. The
writer is tf.summary: this runs in the CLI or a worker process, never the web process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

TENSORBOARD_DIR = "tensorboard"
# Per-epoch fields that are bookkeeping, not a curve.
_SKIPPED = {"epoch", "time"}


def scalars(history: Sequence[dict[str, Any]], class_names: Sequence[str] = ()) -> dict[str, dict[str, list]]:
    """{"train"|"validation": {tag: [(epoch, value), ...]}}: every finite number of each epoch, val_x under
    validation as epoch_x, per-class lists as one tag per class."""
    import math

    runs: dict[str, dict[str, list]] = {"train": {}, "validation": {}}
    for row in history:
        step = int(row["epoch"])
        for key, value in row.items():
            if key in _SKIPPED:
                continue
            part, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
                if name.startswith("per_class_val_"):  # per_class_val_accuracy: the validation split's
                    part, name = "validation", name[len("per_class_val_") :]
                for i, v in enumerate(value):
                    label = class_names[i] if i < len(class_names) else str(i)
                    runs[part].setdefault(f"epoch_{name}_per_class/{label}", []).append((step, float(v)))
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                runs[part].setdefault(f"epoch_{name}", []).append((step, float(value)))
    return {part: tags for part, tags in runs.items() if tags}


def write_events(history: Sequence[dict[str, Any]], out: Path, class_names: Sequence[str] = ()) -> Path:
    """Event files under out/tensorboard/{train,validation}; returns that folder."""
    from kfcore.training.hardware import quiet_native_stderr

    root = out / TENSORBOARD_DIR
    with quiet_native_stderr():  # TensorFlow's start-up chatter (it probes for GPUs at the first op)
        import tensorflow as tf

        for part, tags in scalars(history, class_names).items():
            writer = tf.summary.create_file_writer(str(root / part))
            with writer.as_default():
                for tag, points in tags.items():
                    for step, value in points:
                        tf.summary.scalar(tag, value, step=step)
            writer.close()
    return root
