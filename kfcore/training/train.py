"""train(spec, on_event): the one training function behind the dashboard, the CLI, the tests and the bench.

It loads and splits the data, builds the model, fits it in one `fit` call while streaming events
(started, progress, epoch, finished / failed / cancelled), evaluates on the test split and saves the
model. Nothing here knows about Streamlit or the run store.
"""

from __future__ import annotations

import dataclasses
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np

from kfcore.data import DataError, Dataset, Splits, fingerprint, load_dataset, split_dataset, with_recipe
from kfcore.data.recipe import RECIPE_FILE, Recipe
from kfcore.model.shapes import ShapeError, ShapeReport, head, infer_shapes
from kfcore.runs.limits import LimitError, Limits, check_run, run_batches
from kfcore.runs.store import disk_full
from kfcore.spec import RunSpec, SpecError
from kfcore.training import evaluate, fastloop, snapshot

Event = dict[str, Any]
EventHandler = Callable[[Event], None]

PROGRESS_INTERVAL_S = 0.25  # batch progress events at most 4 times a second
TARGET_EXECUTION_S = 0.2  # aim for one compiled multi-step call per ~0.2 s: smooth progress, fast cancel
CPU_FLOPS_ESTIMATE = 3e10  # rough sustained float32 FLOP/s on 2 CPU cores (measured 2e10 for a small MLP, 9e10 for a convnet); only picks K


@dataclass(frozen=True)
class Resume:
    """A continued run's start: its parent's saved model (weights and optimizer state) and the parent's epochs."""

    model_path: str
    epochs_done: int


# See train(): a live run's commands, obeyed at epoch boundaries; called with the model and `hold`, which a pace calls
# before it waits paused (the run's picture then shows the epoch it waits at).
Pace = Callable[[Any, Callable[[], None]], "int | None"]


class Cancelled(Exception):
    """Raised from a callback to leave `fit` at once when the user presses Stop."""


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite; `where` says when ("at batch 3", "in epoch 2"). One message for both loops."""

    def __init__(self, loss: float, where: str):
        super().__init__(
            f"the loss became {loss} {where}: training diverged. Lower the learning rate (try 10× "
            "smaller), or add BatchNormalization / regularisation, then train again"
        )


@dataclass
class TrainResult:
    status: str  # finished | failed | cancelled
    error: str | None = None
    test: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    model_path: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


def prepare(
    spec: RunSpec, dataset: Dataset | None = None, limits: Limits | None = None
) -> tuple[Dataset, Splits, ShapeReport]:
    """Everything that can refuse a spec before TensorFlow is touched: data, split, shapes, limits.

    Raises DataError, ShapeError or LimitError with a message for the user.
    """
    limits = limits or Limits.from_env()
    ds = dataset if dataset is not None else load_dataset(spec.data, limits=limits, split=spec.split)
    ds = with_recipe(ds, spec.split)  # a table's recipe fitted on this run's training rows (a no-op when it is)
    splits = split_dataset(ds, spec.split)
    report, over = assess(spec, ds, len(splits.x_train), limits)
    if over is not None:
        raise over
    return ds, splits, report


def assess(spec: RunSpec, ds: Dataset, n_train: int, limits: Limits) -> tuple[ShapeReport, LimitError | None]:
    """The shape report of spec's model on ds, and the limit the run is over (None: none) with a training split of
    n_train samples. Touches no array, so a page can ask it on every rerun. Raises ShapeError."""
    report = infer_shapes(spec.layers, ds.input_shape, ds.task, ds.n_classes, spec.output)
    n_rows = len(ds.x) + (len(ds.x_test) if ds.x_test is not None else 0)
    try:
        check_run(spec, report, n_rows, n_train * math.prod(ds.input_shape), limits)
    except LimitError as e:  # the model is sound, just over a limit: its report still stands
        return report, e
    return report, None


def estimate_flops_per_sample(report: ShapeReport) -> float:
    """Forward FLOPs per sample, from the shape report: 2 per weight for Dense, per position for Conv2D."""
    flops = 0.0
    for row in report.rows:
        flops += 2.0 * row.params * row.positions if row.kind == "Conv2D" else 2.0 * row.params
        flops += row.values_per_sample  # activations, pooling, normalisation: one op per output
    return flops


def choose_steps_per_execution(report: ShapeReport, batch_size: int, steps_per_epoch: int, on_gpu: bool = False) -> int:
    """How many batches one compiled call runs. Same batches and updates as K=1, far less Python overhead;
    K is sized so a call takes about TARGET_EXECUTION_S and progress and cancel stay responsive."""
    train_flops_per_step = 3.0 * estimate_flops_per_sample(report) * batch_size
    step_s = train_flops_per_step / (CPU_FLOPS_ESTIMATE * (20 if on_gpu else 1)) + 5e-5
    return max(1, min(steps_per_epoch, int(TARGET_EXECUTION_S / step_s)))


def _make_optimizer(keras: Any, spec: RunSpec, steps_per_epoch: int) -> Any:
    t = spec.train
    lr: Any = t.learning_rate
    if t.schedule == "exponential":
        lr = keras.optimizers.schedules.ExponentialDecay(
            t.learning_rate, decay_steps=steps_per_epoch, decay_rate=t.decay_rate
        )
    elif t.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(t.learning_rate, decay_steps=max(1, t.epochs * steps_per_epoch))
    if t.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=t.momentum)
    if t.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=t.weight_decay)
    return {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "adagrad": keras.optimizers.Adagrad}[
        t.optimizer
    ](learning_rate=lr)


def target_scale(y_train: np.ndarray) -> tuple[float, float]:
    """(mean, std) of a regression target on the training split: the model learns (y - mean) / std, which keeps
    its output near 1 whatever the units (diabetes' targets run 25-346; unscaled, the defaults learned nothing)."""
    return float(y_train.mean()), float(y_train.std()) or 1.0


def loss_weight(loss: str, std: float) -> float:
    """The weight that makes a regression loss in the target's units the loss on the standardised target:
    mse / std², mae and huber / std; 1 for any other loss."""
    return {"mse": 1.0 / std**2, "mae": 1.0 / std, "huber": 1.0 / std}.get(loss, 1.0)


@overload
def _targets(y: np.ndarray, loss: str, n_classes: int) -> np.ndarray: ...
@overload
def _targets(y: None, loss: str, n_classes: int) -> None: ...
def _targets(y: np.ndarray | None, loss: str, n_classes: int) -> np.ndarray | None:
    """The labels as the loss takes them: one-hot for categorical cross-entropy, a column for binary."""
    if y is None:
        return None
    if loss == "categorical_crossentropy":
        return np.eye(n_classes, dtype=np.float32)[y]
    if loss == "binary_crossentropy":
        return y.astype(np.float32).reshape(-1, 1)
    return y


def train(
    spec: RunSpec,
    on_event: EventHandler | None = None,
    should_stop: Callable[[], bool] | None = None,
    model_path: str | Path | None = None,
    dataset: Dataset | None = None,
    steps_per_execution: int | None = None,
    stream: bool = True,
    limits: Limits | None = None,
    fast: bool | None = None,
    pace: Pace | None = None,
    resume: Resume | None = None,
) -> TrainResult:
    """Train `spec` and report events to `on_event`; never raises for anything a user can cause.

    should_stop is polled a few times a second; returning True cancels the run within about a second.
    stream=False turns off progress/epoch-detail work (benchmarks measure its cost this way).
    fast picks the training loop: True kfcore.training.fastloop (several epochs per compiled call, same math), False
    Keras `fit`; None (the default) the fast loop when the data is small enough and no distribution is on.
    pace (a live run's commands, kfcore.runs.jobs) is called with the model and `hold` at every epoch boundary where
    a command may act: it may change the optimizer's rate or wait (paused, calling hold() first); it returns how many
    epochs may run before it
    is called again (None: any number, 0: stop now). resume: continue a parent run from its saved model.
    """
    emit = on_event or (lambda e: None)
    stop = should_stop or (lambda: False)
    try:
        return _train(spec, emit, stop, model_path, dataset, steps_per_execution, stream, limits, fast, pace, resume)
    except Cancelled:
        emit({"event": "cancelled"})
        return TrainResult(status="cancelled")
    except (SpecError, DataError, ShapeError, LimitError, NonFiniteLoss) as e:
        emit({"event": "failed", "error": str(e)})
        return TrainResult(status="failed", error=str(e))
    except MemoryError:
        msg = "ran out of memory: choose a smaller batch size, fewer units or filters, or a smaller dataset"
        emit({"event": "failed", "error": msg})
        return TrainResult(status="failed", error=msg)
    except Exception as e:  # a bug or an unforeseen TensorFlow error: say what it was, keep the trace for us
        if disk_full(e):  # the caller's storage, not the run, is at fault: the caller says so (kfcore.runs.jobs)
            raise
        msg = f"training stopped by an internal error ({type(e).__name__}: {str(e)[:300]}); please report it"
        emit({"event": "failed", "error": msg, "traceback": traceback.format_exc()})
        return TrainResult(status="failed", error=msg)


def _train(
    spec: RunSpec,
    emit: EventHandler,
    stop: Callable[[], bool],
    model_path: str | Path | None,
    dataset: Dataset | None,
    steps_per_execution: int | None,
    stream: bool,
    limits: Limits | None,
    fast: bool | None,
    pace: Pace | None,
    resume: Resume | None,
) -> TrainResult:
    t0 = time.perf_counter()
    limits = limits or Limits.from_env()
    ds, splits, report = prepare(spec, dataset, limits)
    batches = run_batches(report, spec.train.batch_size, int(splits.x_train.size), limits)

    from kfcore.training import hardware

    strategy, hw = hardware.configure()  # imports TensorFlow with its start-up chatter silenced

    import keras

    from kfcore.model.build import build_model

    keras.utils.set_random_seed(spec.train.seed)

    units, _, loss = head(ds.task, ds.n_classes, spec.output)
    n_train = len(splits.x_train)
    batch = spec.train.batch_size
    steps_per_epoch = max(1, math.ceil(n_train / batch))
    k = steps_per_execution or choose_steps_per_execution(report, batch, steps_per_epoch, on_gpu=bool(hw["gpus"]))

    norm_mean = norm_var = None
    if splits.x_train.ndim == 2:  # tabular: the model standardises its own inputs, so the saved model takes raw data
        norm_mean = splits.x_train.mean(axis=0)
        norm_var = splits.x_train.var(axis=0)

    scale = target_scale(splits.y_train) if ds.task == "regression" else (0.0, 1.0)

    def build_and_compile() -> Any:
        model = build_model(
            spec,
            ds.input_shape,
            ds.task,
            ds.n_classes,
            norm_mean,
            norm_var,
            mixed_precision=keras.mixed_precision.global_policy().name == "mixed_float16",
            target_scale=scale,
        )
        metrics = ["mae"] if ds.task == "regression" else ["accuracy"]
        weights = [loss_weight(loss, scale[1])] if ds.task == "regression" else None
        model.compile(
            optimizer=_make_optimizer(keras, spec, steps_per_epoch),
            loss=loss,
            metrics=metrics,
            loss_weights=weights,
            steps_per_execution=k,
        )
        return model

    if strategy is not None:
        with strategy.scope():
            model = build_and_compile()
    else:
        model = build_and_compile()
    if resume is not None:  # the parent's .keras holds its weights and its optimizer's variables (step count too)
        model.optimizer.build(model.trainable_variables)
        model.load_weights(resume.model_path)
        if spec.train.schedule == "constant":  # the parent's rate came back with its state: the child's own applies
            model.optimizer.learning_rate.assign(spec.train.learning_rate)

    y_train = _targets(splits.y_train, loss, ds.n_classes)
    y_val = _targets(splits.y_val, loss, ds.n_classes)
    y_test = _targets(splits.y_test, loss, ds.n_classes)
    has_val = splits.x_val is not None and len(splits.x_val) > 0
    if fast is None:
        fast = strategy is None and fastloop.fits_fast_path(splits.x_train, y_train, splits.x_val, y_val)

    info = {
        "dataset": ds.name,
        "task": ds.task,
        "class_names": ds.class_names,
        "input_shape": list(ds.input_shape),
        "n_train": n_train,
        "n_val": len(splits.x_val) if splits.x_val is not None else 0,
        "n_test": len(splits.x_test),
        "params": report.total_params,
        "trainable_params": report.trainable_params,
        "epochs": spec.train.epochs,
        "steps_per_epoch": steps_per_epoch,
        "steps_per_execution": k,
        "fast_loop": fast,
        "loss": loss,
        "output_units": units,
        "target_scale": list(scale) if ds.task == "regression" else None,
        "jit_compile": str(getattr(model, "jit_compile", "auto")),
        "notes": ds.notes,
    }
    hw["xla"] = f"jit_compile={info['jit_compile']}"
    emit({"event": "started", "hardware": hw, "info": info})

    history: list[dict[str, Any]] = []
    offset = resume.epochs_done if resume is not None else 0
    # The fast loop polls should_stop between its calls itself: a stop checked while it hands over a call's epochs
    # would leave the model ahead of the last epoch recorded (and saved for a continue).
    record = _EpochRecorder(emit, stop, history, offset, check_stop=not fast)
    view = (
        snapshot.LiveView(
            splits.x_train, splits.y_train, ds.task, snapshot.small_dense(report, ds.input_shape) is not None
        )
        if stream
        else None
    )

    def picture(m: Any, force: bool = False) -> None:
        if view is not None and view.enabled and (force or view.due()):
            emit({"event": "picture", **view.take(m, history[-1]["epoch"] if history else offset)})

    def paced(m: Any) -> int | None:  # both loops: a pace of 0 cancels the run
        picture(m)
        limit = pace(m, lambda: picture(m, force=True)) if pace is not None else None
        if limit == 0:
            raise Cancelled
        return limit

    early = None
    if spec.train.early_stopping:
        early = keras.callbacks.EarlyStopping(
            monitor="val_loss" if has_val else "loss",
            patience=spec.train.patience,
            restore_best_weights=spec.train.restore_best_weights,
        )
    try:
        if fast:
            classes = ds.n_classes if ds.task != "regression" and stream else 0
            val = (splits.x_val, y_val, splits.y_val) if has_val else None
            fastloop.run_epochs(
                model,
                splits.x_train,
                y_train,
                val,  # type: ignore[arg-type]  # has_val: all three set
                spec.train.epochs,
                batch,
                classes,
                record,
                stop,
                early,
                started=t0,
                val_batch=batches.validation,
                pace=paced,
            )
        else:
            callbacks: list[Any] = [
                _streaming_callback(
                    keras,
                    emit,
                    stop,
                    spec.train.epochs,
                    steps_per_epoch,
                    n_train,
                    batch,
                    t0,
                    record,
                    (splits.x_val, y_val, splits.y_val) if has_val else None,
                    ds.n_classes if ds.task != "regression" and stream else 0,
                    stream,
                    batches.validation,
                    paced,
                )
            ]
            if early is not None:
                callbacks.append(early)
            model.fit(
                splits.x_train,
                y_train,
                epochs=spec.train.epochs,
                batch_size=batch,
                callbacks=callbacks,  # which validate: one predict gives val_loss, val metrics and the confusion matrix
                verbose=0,
                shuffle=True,
            )
        if stop():
            raise Cancelled
    except Cancelled:
        if model_path is not None and history:  # a stopped run keeps the state it reached: it can be continued
            Path(model_path).parent.mkdir(parents=True, exist_ok=True)
            model.save(model_path)
        raise
    picture(model, force=True)  # the trained model's picture, whatever the rate allowed before

    monitor = "val_loss" if has_val else "loss"
    scores = [h.get(monitor, math.inf) for h in history]
    best_epoch = history[int(np.argmin(scores))]["epoch"] if history else None
    eval_batch = batches.evaluate
    outputs = model.predict(splits.x_test, batch_size=eval_batch, verbose=0)  # one pass: outputs, then scores
    test = {k_: float(v) for k_, v in fastloop.scores(model, y_test, outputs).items()}
    if ds.task == "regression":
        evaluation = evaluate.regression_report(splits.y_test, outputs)
    else:
        evaluation = evaluate.classification_report(splits.y_test, outputs, ds.class_names)
        if len(ds.input_shape) == 1 and ds.input_shape[0] == 2:
            evaluation["decision_boundary"] = evaluate.decision_boundary(
                lambda g: model.predict(g, batch_size=batches.boundary, verbose=0),
                np.concatenate([splits.x_train, splits.x_test]),
            )
    evaluation["best_epoch"] = best_epoch
    evaluation["epochs_run"] = len(history)
    evaluation["stopped_early"] = len(history) < spec.train.epochs

    saved = None
    if model_path is not None:
        Path(model_path).parent.mkdir(parents=True, exist_ok=True)
        model.save(model_path)
        recipe = ds.recipe
        if recipe is None and splits.x_train.ndim == 2 and len(ds.feature_names) == ds.input_shape[0]:
            recipe = Recipe.of_numbers(
                ds.feature_names, splits.x_train, {"column": "target", "task": ds.task, "classes": ds.class_names}
            )
        if recipe is not None:  # raw rows in: kfcore predict (and for a CSV the exported script) apply it first
            recipe = dataclasses.replace(recipe, target={**recipe.target, "scale": info["target_scale"]})
            recipe.save(Path(model_path).with_name(RECIPE_FILE))
        np.savez_compressed(
            Path(model_path).with_name("predictions.npz"),
            y_true=splits.y_test,
            outputs=np.asarray(outputs, dtype=np.float32),
            train_index=np.array([]) if splits.train_index is None else splits.train_index,
            test_index=np.array([]) if splits.test_index is None else splits.test_index,
            fingerprint=np.array(fingerprint(ds)),
        )
        saved = str(model_path)
    elapsed = time.perf_counter() - t0
    emit(
        {
            "event": "finished",
            "test": test,
            "best_epoch": best_epoch,
            "elapsed": elapsed,
            "evaluation": evaluation,
            "model_path": saved,
        }
    )
    return TrainResult(
        status="finished",
        test=test,
        evaluation=evaluation,
        history=history,
        best_epoch=best_epoch,
        model_path=saved,
        info=info,
    )


def _streaming_callback(keras: Any, *args: Any) -> Any:
    # The Keras base class is mixed in here, at run time, so importing this module never imports TensorFlow.
    cls = type("StreamingCallback", (_StreamingMixin, keras.callbacks.Callback), {})
    callback = cls()
    callback.setup(*args)
    return callback


class _StreamingMixin:
    """Turns Keras callbacks into events: progress a few times a second, every epoch's logs, cancel, NaN."""

    def setup(
        self, emit, stop, epochs, steps_per_epoch, n_train, batch, t0, record, val, n_classes, stream, val_batch, pace
    ):
        """val: (inputs, targets as compiled, integer labels) or None; n_classes: the confusion matrix's (0: none)."""
        self.emit, self.stop, self.epochs, self.steps = emit, stop, epochs, steps_per_epoch
        self.n_train, self.batch, self.t0, self.record, self.history = n_train, batch, t0, record, record.history
        self.val, self.n_classes, self.stream, self.val_batch = val, n_classes, stream, val_batch
        self.pace = pace
        self.last_progress = 0.0
        self.epoch_start = self.train_end = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.pace(self.model)
        self.epoch_start = self.train_end = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.train_end = now
        loss = float(logs["loss"]) if logs and "loss" in logs else 0.0
        if not math.isfinite(loss):
            raise NonFiniteLoss(loss, f"at batch {batch + 1}")
        if now - self.last_progress < PROGRESS_INTERVAL_S:
            return
        self.last_progress = now
        if self.stop():
            raise Cancelled
        if self.stream:
            done = min(batch + 1, self.steps)
            elapsed = now - self.epoch_start
            self.emit(
                {
                    "event": "progress",
                    "epoch": len(self.history) + 1,
                    "epochs": self.epochs,
                    "step": done,
                    "steps": self.steps,
                    "loss": loss,
                    "samples_per_s": done * self.batch / max(elapsed, 1e-9),
                    "elapsed": now - self.t0,
                }
            )

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        logs = logs if logs is not None else {}
        confusion = None
        if self.val is not None:
            # Validation here rather than fit's own: fit would run a second pass over the validation set for the
            # confusion matrix. Written into `logs`, which the callbacks after this one (EarlyStopping) read.
            x_val, y_val, labels = self.val
            outputs = self.model.predict(x_val, batch_size=self.val_batch, verbose=0)
            logs.update({f"val_{k}": float(v) for k, v in fastloop.scores(self.model, y_val, outputs).items()})
            if self.n_classes:
                _, pred = evaluate.probabilities_to_classes(outputs)
                confusion = evaluate.confusion_matrix(labels, pred, self.n_classes)
        row: dict[str, Any] = {"epoch": epoch + 1}
        for key, value in (logs or {}).items():
            row[key] = float(value)
        try:
            row["learning_rate"] = float(self.model.optimizer.learning_rate)
        except (TypeError, ValueError):
            pass
        train_time = max(self.train_end - self.epoch_start, 1e-9)
        row["epoch_time"] = now - self.epoch_start
        row["samples_per_s"] = self.n_train / train_time
        row["elapsed"] = now - self.t0
        if confusion is not None:
            row.update(evaluate.epoch_validation_view(confusion))
        self.record(row)


class _EpochRecorder:
    """Where both training loops hand each epoch's row: NaN check, history, the epoch event, cancel."""

    def __init__(
        self,
        emit: EventHandler,
        stop: Callable[[], bool],
        history: list[dict[str, Any]],
        epoch_offset: int = 0,
        check_stop: bool = True,
    ) -> None:
        self.emit, self.stop, self.history, self.epoch_offset = emit, stop, history, epoch_offset
        self.check_stop = check_stop

    def __call__(self, row: dict[str, Any]) -> None:
        row["epoch"] += self.epoch_offset  # a continued run's epochs follow its parent's, so the curves join
        loss = row.get("loss", 0.0)
        if not math.isfinite(loss):
            raise NonFiniteLoss(loss, f"in epoch {row['epoch']}")
        self.history.append(row)
        self.emit({"event": "epoch", **row})
        if self.check_stop and self.stop():
            raise Cancelled
