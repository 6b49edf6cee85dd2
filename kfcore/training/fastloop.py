"""Several epochs per compiled call for data that fits in memory: the same math as `model.fit`, without its
per-epoch overhead (iterator set-up, a separate validation call and `predict`, callbacks), which dominates on
small data (spiral: ~6 epochs/s through `fit`, hundreds in-graph).

Same math means the same updates in the same order: each batch goes through the model's own `train_step` (so
loss weights, regularisers, loss scaling, dropout's seed generator and batch-norm statistics behave exactly as
in `fit`), the batches are those `fit` makes (its seeded shuffle, see `fit_permutation`, its partial last
batch), and the metrics are reset where `fit` resets them.
Validation is one forward pass over the whole (small) validation set: its loss and metrics (`scores`, equal to
`evaluate`'s to float rounding), per-class accuracy and confusion matrix all come from it, in the same call.

Supported: every optimizer and schedule, dropout, batch norm, regression and classification, early stopping
(driven through Keras' own EarlyStopping callback, one epoch per call so it sees every epoch's weights).
Not supported (the caller keeps `fit`): a distribution strategy. Imports TensorFlow: call it from the worker only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from kfcore.training.evaluate import epoch_validation_view

# At or under this many bytes of training + validation arrays a run takes the fast path: such data is a few
# hundred steps an epoch at most, where fit's ~80-150 ms of per-epoch overhead is most of the time; above it an
# epoch is long enough that fit's overhead is noise, and fit streams batch progress inside the epoch.
FAST_PATH_MAX_BYTES = 32 * 2**20
TARGET_CALL_S = 0.15  # epochs per call are sized to this: progress a few times a second, Stop acts at once
MAX_EPOCHS_PER_CALL = 100


def fits_fast_path(*arrays: np.ndarray | None) -> bool:
    """True when the arrays (training and validation inputs and targets) are small enough for the fast path."""
    return sum(a.nbytes for a in arrays if a is not None) <= FAST_PATH_MAX_BYTES


def fit_permutation(n: int) -> np.ndarray:
    """The order `fit(shuffle=True)` visits n samples in, under the seed `keras.utils.set_random_seed` set.

    Keras' array adapter (keras/src/trainers/data_adapters/array_data_adapter.py) draws it with
    `tf.random.shuffle` inside a `tf.data` map; with a global seed that op's seed is fixed by the traced function,
    so every epoch of a seeded `fit` visits the same permutation. Drawing it through the same pipeline gives the
    same numbers; tests/unit/test_fastloop.py pins the weights against `fit`.
    """
    import tensorflow as tf

    def permutation(_: Any) -> Any:
        return tf.random.shuffle(tf.range(n, dtype=tf.int64))

    return next(iter(tf.data.Dataset.range(1).map(permutation))).numpy()


def scores(model: Any, y: Any, outputs: Any) -> dict[str, Any]:
    """The compiled loss and metrics of `outputs` against targets `y`, named as `evaluate` names them, in one pass
    over outputs already computed (`evaluate`'s mean of batch means weighted by batch size is the overall mean).
    Resets the model's metrics. Works eagerly and inside a tf.function."""
    model.reset_metrics()
    result = dict(model.compute_metrics(None, y, outputs))
    result["loss"] = model.compute_loss(y=y, y_pred=outputs, training=False)
    return result


def run_epochs(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    val: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    epochs: int,
    batch_size: int,
    n_classes: int,
    on_epoch: Callable[[dict[str, Any]], None],
    should_stop: Callable[[], bool],
    early_stopping: Any = None,
    started: float | None = None,
    val_batch: int | None = None,
    pace: Callable[[Any], int | None] | None = None,
) -> int:
    """Train a compiled model for up to `epochs` epochs; returns how many ran.

    val is (inputs, targets as compiled, integer labels) or None; the labels are read only for a classifier's
    (n_classes >= 2) per-class accuracy and confusion matrix. on_epoch gets each epoch's logs, named as `fit`
    names them (loss, accuracy | mae, val_*, learning_rate), plus kfcore.training.evaluate.epoch_validation_view's
    fields, epoch (1-based), epoch_time, samples_per_s and elapsed. should_stop is polled between calls and
    ends the loop; so does `early_stopping` (a keras EarlyStopping callback). `elapsed` counts from `started`
    (a time.perf_counter() reading; default: now). val_batch caps how many validation samples one forward pass
    takes (kfcore.runs.limits sizes it to the memory budget); default: all at once. pace (kfcore.training.train.train's) is
    called with the model before every call: its limit caps that call's epochs (0 ends the loop), so commands act
    between calls, at an epoch boundary, without slowing calls down when none is sent.
    """
    import tensorflow as tf

    n = len(x)
    steps = max(1, math.ceil(n / batch_size))
    order = tf.constant(fit_permutation(n))
    xs, ys = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    # Optimizer and metric variables must exist before the loop is traced (none may be created inside a loop);
    # Keras' own trainer builds them the same way before a distributed fit.
    model._symbolic_build(data_batch=(xs[:batch_size], ys[:batch_size]))
    model.optimizer.build(model.trainable_variables)
    metric_names = list(model.get_metrics_result())
    classify = n_classes >= 2 and val is not None
    if val is not None:
        xv, yv, labels = (tf.convert_to_tensor(a) for a in val)
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int64)

    n_val = len(val[0]) if val is not None else 0

    def predict(inputs: Any) -> Any:
        if val_batch is None or n_val <= val_batch:
            return model(inputs, training=False)
        parts = math.ceil(n_val / val_batch)

        def part(i: Any, outs: Any) -> Any:
            return i + 1, outs.write(i, model(inputs[i * val_batch : (i + 1) * val_batch], training=False))

        outs = tf.TensorArray(model.outputs[0].dtype, size=parts, infer_shape=False)
        out = tf.while_loop(lambda i, _: i < parts, part, (tf.constant(0), outs))[1].concat()
        return tf.ensure_shape(out, [None, *model.outputs[0].shape[1:]])  # the loop forgets the shape

    def metrics() -> list[Any]:
        result = model.get_metrics_result()
        return [tf.cast(result[k], tf.float32) for k in metric_names]

    def one_epoch() -> tuple[list[Any], Any]:
        model.reset_metrics()  # fit resets at every epoch's start, and evaluate before validating

        def train_batch(s: Any) -> Any:
            idx = order[s * batch_size : tf.minimum((s + 1) * batch_size, n)]
            model.train_step((tf.gather(xs, idx), tf.gather(ys, idx)))
            return (s + 1,)

        tf.while_loop(lambda s: s < steps, train_batch, (tf.constant(0),))
        values = metrics() + [tf.cast(model.optimizer.learning_rate, tf.float32)]
        cm = tf.zeros([0, 0], tf.int64)
        if val is not None:
            out = predict(xv)
            result = scores(model, yv, out)
            values += [tf.cast(result[k], tf.float32) for k in metric_names]
            if classify:
                pred = tf.argmax(out, axis=1) if out.shape[-1] > 1 else tf.cast(out[:, 0] > 0.5, tf.int64)
                cm = tf.math.confusion_matrix(labels, pred, num_classes=n_classes, dtype=tf.int64)
        return values, cm

    names = metric_names + ["learning_rate"] + ([f"val_{k}" for k in metric_names] if val is not None else [])

    @tf.function(jit_compile=False, autograph=False)  # as fit on CPU ("auto" is off there); batches vary in size
    def chunk(count: Any) -> tuple[Any, Any]:
        def epoch(i: Any, logs: Any, cms: Any) -> Any:
            values, cm = one_epoch()
            return i + 1, logs.write(i, tf.stack(values)), cms.write(i, cm)

        logs = tf.TensorArray(tf.float32, size=count, element_shape=[len(names)])
        cms = tf.TensorArray(tf.int64, size=count, element_shape=None, infer_shape=False)
        _, logs, cms = tf.while_loop(lambda i, *_: i < count, epoch, (tf.constant(0), logs, cms))
        return logs.stack(), cms.stack()

    if early_stopping is not None:
        early_stopping.set_model(model)
        early_stopping.on_train_begin()
    t0 = time.perf_counter() if started is None else started
    done, per_call = 0, 1  # the first call runs one epoch, so it is on screen as soon as the loop is traced
    model.stop_training = False
    while done < epochs and not should_stop():
        limit = pace(model) if pace is not None else None
        if limit == 0:
            break
        count = min(per_call, epochs - done, limit or epochs)
        start = time.perf_counter()
        logs, cms = (a.numpy() for a in chunk(tf.constant(count, tf.int32)))
        each = (time.perf_counter() - start) / count
        for i in range(count):
            row: dict[str, Any] = {"epoch": done + 1, **dict(zip(names, map(float, logs[i]), strict=True))}
            if classify:
                row.update(epoch_validation_view(cms[i]))
            row.update(epoch_time=each, samples_per_s=n / max(each, 1e-9), elapsed=start - t0 + each * (i + 1))
            done += 1
            on_epoch(row)
            if early_stopping is not None:
                early_stopping.on_epoch_end(done - 1, row)
        if model.stop_training:
            break
        # Early stopping must see every epoch's weights (it keeps the best): one epoch a call, still in-graph.
        if early_stopping is None:
            per_call = max(1, min(MAX_EPOCHS_PER_CALL, int(TARGET_CALL_S / max(each, 1e-6))))
    if early_stopping is not None:
        early_stopping.on_train_end()
    return done
