"""The fast loop (several epochs per compiled call) against Keras `fit`: same seed, same weights, same logs."""

import keras
import numpy as np
import pytest

from kfcore.training import fastloop
from kfcore.training.train import train
from tests.unit.helpers import spec_with

FAST_BASE = {
    "data": {"source": "builtin", "name": "iris"},
    "split": {"test": 0.2, "validation": 0.2, "seed": 0},
    "layers": [{"type": "Dense", "units": 8, "activation": "tanh"}],
    "train": {"optimizer": "adam", "learning_rate": 0.02, "epochs": 6, "batch_size": 16, "seed": 3},
}


def _spec(**over):
    return spec_with(FAST_BASE, **over)


def _weights(path):
    return keras.models.load_model(path).get_weights()


def _both(tmp_path, spec):
    fast = train(spec, fast=True, model_path=tmp_path / "fast" / "model.keras")
    fit = train(spec, fast=False, model_path=tmp_path / "fit" / "model.keras")
    assert fast.status == fit.status == "finished", (fast.error, fit.error)
    assert fast.info["fast_loop"] and not fit.info["fast_loop"]
    return fast, fit


def _assert_same(tmp_path, fast, fit):
    assert len(fast.history) == len(fit.history)
    for a, b in zip(fast.history, fit.history, strict=True):
        timing = {"epoch_time", "samples_per_s", "elapsed"}
        assert set(a) == set(b)
        assert a.get("val_confusion") == b.get("val_confusion")
        for key in set(a) - timing - {"val_confusion"}:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), (a["epoch"], key)
    for a, b in zip(
        _weights(tmp_path / "fast" / "model.keras"), _weights(tmp_path / "fit" / "model.keras"), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert fast.test == pytest.approx(fit.test, rel=1e-4)


CASES = {
    "adam, three classes": {},
    "sgd momentum + exponential decay": {"train": {"optimizer": "sgd", "momentum": 0.9, "schedule": "exponential"}},
    "adamw + cosine decay": {"train": {"optimizer": "adamw", "schedule": "cosine"}},
    "rmsprop, dropout, batch norm": {
        "train": {"optimizer": "rmsprop"},
        "layers": [
            {"type": "Dense", "units": 16, "activation": "relu"},
            {"type": "BatchNormalization"},
            {"type": "Dropout", "rate": 0.3},
        ],
    },
    "adagrad, partial last batch": {"train": {"optimizer": "adagrad", "batch_size": 7}},
    "binary spiral, batch 10": {"data": {"name": "spiral", "n": 200}, "train": {"batch_size": 10}},
    "regression (loss weights, rescaled output)": {"data": {"name": "diabetes"}},
    "no validation split": {"split": {"test": 0.2, "validation": 0.0, "seed": 0}},
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_loop_gives_the_same_weights_and_logs_as_fit(tmp_path, case):
    fast, fit = _both(tmp_path, _spec(**CASES[case]))
    _assert_same(tmp_path, fast, fit)


def test_early_stopping_stops_at_the_same_epoch_and_restores_the_same_best_weights(tmp_path):
    spec = _spec(train={"epochs": 60, "learning_rate": 0.2, "early_stopping": True, "patience": 2})
    fast, fit = _both(tmp_path, spec)
    assert len(fit.history) < 60  # it did stop early, so restoring the best weights was exercised
    assert fast.best_epoch == fit.best_epoch
    _assert_same(tmp_path, fast, fit)


def test_fit_permutation_is_the_order_fit_visits_the_samples_in():
    # A model whose single weight learns the sum of x over the batches it has seen: SGD with lr 1 on
    # loss = -w * x adds x to w, so reading w after each step reveals the batch order.
    keras.utils.set_random_seed(5)
    x = np.arange(1, 13, dtype=np.float32).reshape(-1, 1)
    inputs = keras.Input((1,))
    layer = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss=lambda y, p: -keras.ops.mean(p))
    seen = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(float(layer.kernel[0, 0])))
    model.fit(x, np.zeros(12), batch_size=1, epochs=2, shuffle=True, verbose=0, callbacks=[record])
    steps = np.diff(np.concatenate([[0.0], seen]))
    visited = [int(round(s)) - 1 for s in steps]
    keras.utils.set_random_seed(5)
    order = fastloop.fit_permutation(12).tolist()
    assert visited == order + order


def test_small_data_takes_the_fast_loop_and_big_data_fit():
    small = np.zeros((1000, 64), np.float32)
    big = np.zeros((fastloop.FAST_PATH_MAX_BYTES // 4 + 1,), np.float32)
    assert fastloop.fits_fast_path(small, None, small)
    assert not fastloop.fits_fast_path(big)
    assert train(_spec(train={"epochs": 1})).info["fast_loop"]


def test_cancel_between_calls_stops_the_fast_loop():
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 3

    result = train(_spec(train={"epochs": 10000}), should_stop=stop, fast=True)
    assert result.status == "cancelled"


@pytest.mark.parametrize(
    "loss, y",
    [("sparse_categorical_crossentropy", np.arange(50) % 3), ("mse", np.linspace(-2.0, 2.0, 50).astype(np.float32))],
)
def test_scores_from_outputs_are_what_evaluate_reports(loss, y):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="tanh", kernel_regularizer="l2")(inputs)
    out = keras.layers.Dense(
        3 if loss.startswith("sparse") else 1, activation="softmax" if loss.startswith("sparse") else None
    )(hidden)
    model = keras.Model(inputs, out)
    model.compile("adam", loss=loss, metrics=["accuracy" if loss.startswith("sparse") else "mae"], loss_weights=[0.3])
    expected = model.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)
    got = fastloop.scores(model, y, model.predict(x, batch_size=7, verbose=0))
    assert set(got) == set(expected)
    assert {k: float(v) for k, v in got.items()} == pytest.approx(expected, rel=1e-5)


def test_validation_in_memory_capped_passes_gives_the_same_logs():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(60, 3)).astype(np.float32), rng.integers(0, 3, 60)
    xv, yv = rng.normal(size=(23, 3)).astype(np.float32), rng.integers(0, 3, 23)

    def rows(val_batch):
        keras.utils.set_random_seed(2)
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
        model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        out = []
        fastloop.run_epochs(model, x, y, (xv, yv, yv), 3, 8, 3, out.append, lambda: False, val_batch=val_batch)
        return out

    whole, capped = rows(None), rows(5)
    for a, b in zip(whole, capped, strict=True):
        assert a["val_confusion"] == b["val_confusion"] and sum(map(sum, a["val_confusion"])) == 23
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-6)
        assert a["val_accuracy"] == pytest.approx(b["val_accuracy"])
