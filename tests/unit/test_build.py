"""kfcore.model.build: the spec's settings land in the Keras layers, dtypes under mixed precision, and
tiny models predict the right output shape for every task."""

import keras
import numpy as np
import pytest

from kfcore.model.build import build_model, keras_names
from kfcore.model.shapes import infer_shapes
from kfcore.spec import LayerSpec, OutputSpec, RunSpec


def _spec(*layers, output=None):
    return RunSpec(layers=list(layers), output=output or OutputSpec())


def test_settings_land_in_the_layers():
    spec = _spec(
        LayerSpec(
            "Conv2D",
            filters=4,
            kernel_size=[3, 2],
            strides=[1, 2],
            padding="same",
            activation="elu",
            l2=0.01,
            initializer="he_normal",
        ),
        LayerSpec("MaxPooling2D", pool_size=2, strides=1),
        LayerSpec("Dense", units=5, activation="tanh", l1=0.001, initializer="lecun_uniform"),
        LayerSpec("Dropout", rate=0.3),
        LayerSpec("Dense", units=3, activation="swish"),
    )
    model = build_model(spec, (8, 8, 1), "multiclass", 4)
    conv = model.get_layer("layer_1_conv2d").get_config()
    assert (conv["filters"], conv["kernel_size"], conv["strides"], conv["padding"]) == (4, (3, 2), (1, 2), "same")
    assert conv["activation"] == "elu"
    assert conv["kernel_initializer"]["class_name"] == "HeNormal"
    assert conv["kernel_regularizer"]["config"] == {"l1": 0.0, "l2": 0.01}

    pool = model.get_layer("layer_2_maxpooling2d").get_config()
    assert (pool["pool_size"], pool["strides"]) == ((2, 2), (1, 1))

    dense = model.get_layer("layer_3_dense").get_config()
    assert (dense["units"], dense["activation"]) == (5, "tanh")
    assert dense["kernel_initializer"]["class_name"] == "LecunUniform"
    assert dense["kernel_regularizer"]["config"] == {"l1": 0.001, "l2": 0.0}

    assert model.get_layer("layer_4_dropout").get_config()["rate"] == 0.3
    plain = model.get_layer("layer_5_dense").get_config()
    assert plain["activation"] == "silu"  # Keras 3 serialises "swish" under its other name
    assert plain["kernel_regularizer"] is None
    assert plain["kernel_initializer"]["class_name"] == "GlorotUniform"  # Keras's default when none is set

    out = model.get_layer("output").get_config()
    assert (out["units"], out["activation"]) == (4, "softmax")
    assert not model.compiled  # the trainer compiles


def test_output_override_and_stable_names():
    spec = _spec(LayerSpec("Dense", units=4), output=OutputSpec(activation="sigmoid"))
    first = build_model(spec, (3,), "multiclass", 3)
    second = build_model(spec, (3,), "multiclass", 3)
    assert first.get_layer("output").get_config()["activation"] == "sigmoid"
    names = [layer.name for layer in first.layers]
    assert names == [layer.name for layer in second.layers] == ["normalization", "layer_1_dense", "output"]
    assert names == keras_names(infer_shapes(spec.layers, (3,), "multiclass", 3, spec.output))


def test_normalization_uses_the_given_statistics():
    model = build_model(_spec(), (2,), "regression", 0, norm_mean=[1.0, 2.0], norm_var=[4.0, 9.0])
    norm = model.get_layer("normalization")
    np.testing.assert_allclose(np.asarray(norm(np.array([[3.0, 5.0]], "float32"))), [[1.0, 1.0]], rtol=1e-5)
    default = build_model(_spec(), (2,), "regression", 0).get_layer("normalization")
    np.testing.assert_allclose(np.asarray(default(np.array([[3.0, 5.0]], "float32"))), [[3.0, 5.0]], rtol=1e-5)


@pytest.fixture
def mixed_policy():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def _policies(model):
    return {layer.name: layer.dtype_policy.name for layer in model.layers}


def test_output_stays_float32_under_global_mixed_policy(mixed_policy):
    spec = _spec(LayerSpec("Dense", units=4), LayerSpec("BatchNormalization"))
    model = build_model(spec, (3,), "multiclass", 3)
    assert _policies(model) == {
        "normalization": "float32",
        "layer_1_dense": "mixed_float16",
        "layer_2_batchnormalization": "mixed_float16",
        "output": "float32",
    }
    assert model.predict(np.zeros((2, 3), "float32"), verbose=0).dtype == np.float32


def test_mixed_precision_flag_without_global_policy():
    assert keras.mixed_precision.global_policy().name == "float32"
    spec = _spec(LayerSpec("Conv2D", filters=2, kernel_size=3), LayerSpec("Dense", units=4))
    model = build_model(spec, (5, 5, 1), "binary", 2, mixed_precision=True)
    assert _policies(model) == {
        "layer_1_conv2d": "mixed_float16",
        "flatten_before_layer_2": "mixed_float16",
        "layer_2_dense": "mixed_float16",
        "output": "float32",
    }
    assert model.predict(np.zeros((2, 5, 5, 1), "float32"), verbose=0).dtype == np.float32
    plain = build_model(spec, (5, 5, 1), "binary", 2)
    assert set(_policies(plain).values()) == {"float32"}


@pytest.mark.parametrize(
    "task, n_classes, input_shape, layers, out_shape",
    [
        ("multiclass", 3, (4,), [LayerSpec("Dense", units=8)], (5, 3)),
        ("binary", 2, (4,), [LayerSpec("Dense", units=8), LayerSpec("Dropout", rate=0.5)], (5, 1)),
        ("regression", 0, (4,), [], (5, 1)),
        (
            "multiclass",
            10,
            (8, 8, 1),
            [LayerSpec("Conv2D", filters=2, kernel_size=3), LayerSpec("MaxPooling2D", pool_size=2)],
            (5, 10),
        ),
        (
            "regression",
            0,
            (8, 8, 3),
            [LayerSpec("Conv2D", filters=2, kernel_size=3), LayerSpec("GlobalAveragePooling2D")],
            (5, 1),
        ),
    ],
)
def test_tiny_models_predict_the_right_shape(task, n_classes, input_shape, layers, out_shape):
    model = build_model(_spec(*layers), input_shape, task, n_classes)
    x = np.random.default_rng(0).random((5, *input_shape), dtype=np.float32)
    y = model.predict(x, verbose=0)
    assert y.shape == out_shape and np.isfinite(y).all()
    if task == "multiclass":
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    if task == "binary":
        assert ((y > 0) & (y < 1)).all()
