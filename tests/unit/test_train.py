"""The trainer on small built-in data: events, reproducibility, NaN stop, cancel, early stopping, tasks."""

import math
import time

import pytest

from kfcore.training.train import train
from tests.unit.helpers import spec_with

TRAIN_BASE = {
    "data": {"source": "builtin", "name": "iris"},
    "split": {"test": 0.2, "validation": 0.2, "seed": 0},
    "layers": [{"type": "Dense", "units": 16, "activation": "relu"}],
    "train": {"optimizer": "adam", "learning_rate": 0.01, "epochs": 5, "batch_size": 16, "seed": 1},
}


def _spec(**over):
    return spec_with(TRAIN_BASE, **over)


def test_events_stream_in_order_with_keras_log_names(tmp_path):
    events = []
    result = train(_spec(), on_event=events.append, model_path=tmp_path / "m.keras")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "elapsed", "samples_per_s", "per_class_val_accuracy"):
        assert key in epochs[0], key
    assert len(epochs[-1]["per_class_val_accuracy"]) == 3
    assert result.status == "finished" and set(result.test) >= {"loss", "accuracy"}
    assert (tmp_path / "m.keras").exists() and (tmp_path / "predictions.npz").exists()
    started = events[0]
    assert started["info"]["n_train"] == 90 and started["info"]["n_test"] == 30
    assert started["hardware"]["device"].startswith(("CPU", "GPU"))
    assert result.evaluation["confusion_matrix"] and sum(map(sum, result.evaluation["confusion_matrix"])) == 30


def test_same_spec_and_seed_give_the_same_metrics():
    a, b = train(_spec()), train(_spec())
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert a.test == b.test
    c = train(_spec(train={"seed": 2}))
    assert [h["loss"] for h in c.history] != [h["loss"] for h in a.history]


def test_nan_loss_stops_with_advice_to_lower_the_learning_rate():
    events = []
    result = train(
        _spec(data={"name": "diabetes"}, train={"learning_rate": 10.0, "optimizer": "sgd", "epochs": 20}),
        on_event=events.append,
    )
    assert result.status == "failed"
    assert "lower the learning rate" in result.error.lower()
    assert events[-1]["event"] == "failed"


def test_cancel_stops_within_about_a_second():
    spec = _spec(
        data={"name": "digits"}, layers=[{"type": "Dense", "units": 256}], train={"epochs": 500, "batch_size": 8}
    )
    asked = []

    def on_event(e):
        if e["event"] in ("progress", "epoch") and not asked:
            asked.append(time.perf_counter())

    result = train(spec, on_event=on_event, should_stop=lambda: bool(asked))
    assert result.status == "cancelled"
    assert time.perf_counter() - asked[0] < 1.5


def test_early_stopping_ends_before_the_last_epoch():
    result = train(_spec(train={"epochs": 200, "early_stopping": True, "patience": 2, "learning_rate": 0.05}))
    assert result.status == "finished"
    assert len(result.history) < 200 and result.evaluation["stopped_early"]


def test_regression_reports_errors_and_r2():
    result = train(_spec(data={"name": "diabetes"}, train={"epochs": 30, "learning_rate": 0.05}))
    assert result.status == "finished"
    ev = result.evaluation
    assert ev["task"] == "regression" and ev["rmse"] >= ev["mae"] > 0 and math.isfinite(ev["r2"])
    assert "mae" in result.history[0]


def test_binary_2d_set_gets_a_decision_boundary():
    result = train(
        _spec(data={"name": "circle", "n": 200}, layers=[{"type": "Dense", "units": 8, "activation": "tanh"}])
    )
    grid = result.evaluation["decision_boundary"]
    assert grid["kind"] == "probability" and len(grid["values"]) == len(grid["y"])
    assert all(0.0 <= v <= 1.0 for row in grid["values"] for v in row)


def test_convnet_on_digit_images_trains():
    spec = _spec(
        data={"name": "digits"},
        layers=[
            {"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "same"},
            {"type": "MaxPooling2D", "pool_size": 2},
            {"type": "BatchNormalization"},
            {"type": "Flatten"},
            {"type": "Dropout", "rate": 0.2},
        ],
        train={"epochs": 3},
    )
    result = train(spec)
    assert result.status == "finished" and result.test["accuracy"] > 0.5


@pytest.mark.parametrize(
    "optimizer, schedule",
    [("sgd", "exponential"), ("adamw", "cosine"), ("rmsprop", "constant"), ("adagrad", "constant")],
)
def test_every_optimizer_and_schedule_trains(optimizer, schedule):
    result = train(
        _spec(
            train={
                "optimizer": optimizer,
                "schedule": schedule,
                "epochs": 3,
                "momentum": 0.9 if optimizer == "sgd" else 0.0,
            }
        )
    )
    assert result.status == "finished"
    lrs = [h["learning_rate"] for h in result.history]
    if schedule == "constant":
        assert lrs[0] == pytest.approx(lrs[-1])
    else:
        assert lrs[-1] < lrs[0]


def test_refusals_are_failed_events_not_exceptions():
    events = []
    result = train(_spec(layers=[{"type": "Conv2D", "filters": 4}]), on_event=events.append)
    assert result.status == "failed" and "Conv2D" in result.error and "image" in result.error
    assert events == [{"event": "failed", "error": result.error}]


def test_steps_per_execution_changes_speed_not_the_math():
    spec = _spec(data={"name": "digits"}, train={"epochs": 3, "batch_size": 32})
    one = train(spec, steps_per_execution=1, fast=False)  # steps_per_execution is the fit path's (big data's)
    many = train(spec, fast=False)
    assert many.info["steps_per_execution"] > 1 and one.info["steps_per_execution"] == 1
    assert [h["loss"] for h in many.history] == pytest.approx([h["loss"] for h in one.history], rel=1e-5)
    assert many.test["accuracy"] == pytest.approx(one.test["accuracy"], abs=1e-6)


def test_steps_per_execution_is_large_for_small_models_and_small_for_convnets():
    from kfcore.model.shapes import infer_shapes
    from kfcore.spec import LayerSpec
    from kfcore.training.train import choose_steps_per_execution

    mlp = infer_shapes([LayerSpec("Dense", units=64, activation="relu")], (784,), "multiclass", 10)
    assert 100 <= choose_steps_per_execution(mlp, 32, 1875) <= 1875
    assert choose_steps_per_execution(mlp, 32, 7) == 7  # never more than an epoch
    convnet = infer_shapes(
        [
            LayerSpec("Conv2D", filters=32, kernel_size=3),
            LayerSpec("MaxPooling2D", pool_size=2),
            LayerSpec("Conv2D", filters=64, kernel_size=3),
        ],
        (28, 28, 1),
        "multiclass",
        10,
    )
    assert choose_steps_per_execution(convnet, 128, 400) <= 5
