"""kfcore.model.shapes against Keras's own numbers: every row's output shape and parameter counts, the totals,
the refusals and their messages, and that the module stays free of TensorFlow."""

import math
import subprocess
import sys

import pytest

from kfcore.model.shapes import ShapeError, head, infer_shapes
from kfcore.spec import LayerSpec, OutputSpec, RunSpec

D = LayerSpec  # short alias for the tables below


def dense(units, activation="relu", **kw):
    return D("Dense", units=units, activation=activation, **kw)


def conv(filters, kernel_size=3, **kw):
    return D("Conv2D", filters=filters, kernel_size=kernel_size, activation="relu", **kw)


def pool(pool_size=2, **kw):
    return D("MaxPooling2D", pool_size=pool_size, **kw)


BN, GAP, FLAT = D("BatchNormalization"), D("GlobalAveragePooling2D"), D("Flatten")

# id -> (layers, input shape, task, n_classes, output override)
CASES = {
    "tab_mlp": ([dense(16), dense(8, "tanh")], (4,), "multiclass", 3, None),
    "tab_binary": ([dense(8)], (4,), "binary", 2, None),
    "tab_regression_dropout": ([dense(8), D("Dropout", rate=0.2), dense(4)], (4,), "regression", 0, None),
    "tab_no_hidden": ([], (4,), "multiclass", 3, None),
    "tab_batchnorm": ([dense(16), BN, D("Dropout", rate=0.5)], (4,), "multiclass", 3, None),
    "tab_batchnorm_first": ([BN, dense(5)], (4,), "binary", 2, None),
    "tab_flatten_noop": ([FLAT, dense(4)], (4,), "regression", 0, None),
    "tab_regularized": ([dense(8, l1=0.01, l2=0.02, initializer="he_normal")], (4,), "multiclass", 3, None),
    "tab_one_feature": ([dense(3)], (1,), "regression", 0, None),
    "tab_output_override": ([dense(6)], (4,), "multiclass", 3, OutputSpec("sigmoid", "categorical_crossentropy")),
    "img8_mlp_auto_flatten": ([dense(32), dense(16)], (8, 8, 1), "multiclass", 10, None),
    "img28_flatten_mlp": ([FLAT, dense(64), D("Dropout", rate=0.3)], (28, 28, 1), "multiclass", 10, None),
    "img8_no_hidden": ([], (8, 8, 1), "multiclass", 10, None),
    "img_rank2_auto_flatten": ([dense(4)], (6, 5), "binary", 2, None),
    "conv_valid_pool": ([conv(4), pool(), dense(16)], (28, 28, 1), "multiclass", 10, None),
    "conv_same_strides": (
        [conv(4, strides=2, padding="same"), conv(8, [3, 1], strides=[1, 2])],
        (8, 8, 1),
        "binary",
        2,
        None,
    ),
    "conv_pair_kernel_rgb": ([conv(6, [2, 3]), pool([2, 1], strides=[1, 1])], (8, 8, 3), "multiclass", 5, None),
    "conv_bn_gap": ([conv(8, padding="same"), BN, conv(8), GAP, dense(4)], (8, 8, 1), "multiclass", 10, None),
    "pool_same_bigger_than_input": ([pool(3, padding="same"), pool(4, padding="same")], (8, 8, 1), "binary", 2, None),
    "pool_strided_odd": (
        [pool(3, strides=2), conv(2, 2, strides=[2, 1], padding="same")],
        (9, 7, 2),
        "regression",
        0,
        None,
    ),
    "conv_dropout_flatten": (
        [conv(3, 5), D("Dropout", rate=0.25), FLAT, dense(10)],
        (28, 28, 1),
        "regression",
        0,
        None,
    ),
    "conv_defaults_then_dense": ([D("Conv2D"), D("Dense")], (6, 6, 1), "multiclass", 4, None),
    "avg_pool_and_layer_norm_image": (
        [
            conv(4, padding="same"),
            D("AveragePooling2D", pool_size=2),
            D("LayerNormalization"),
            D("AveragePooling2D", pool_size=[3, 1], strides=1, padding="same"),
        ],
        (8, 8, 1),
        "multiclass",
        10,
        None,
    ),
    "layer_norm_tabular": ([dense(8), D("LayerNormalization", epsilon=1e-5), dense(4)], (4,), "binary", 2, None),
}


def _n(variables) -> int:
    return sum(math.prod(v.shape) for v in variables)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rows_match_keras(case):
    from kfcore.model.build import build_model, keras_names

    layers, input_shape, task, n_classes, output = case
    report = infer_shapes(layers, input_shape, task, n_classes, output)
    spec = RunSpec(layers=layers, output=output or OutputSpec())
    model = build_model(spec, input_shape, task, n_classes)

    assert [layer.name for layer in model.layers] == keras_names(report)
    for row, layer in zip(report.rows, model.layers, strict=True):
        assert row.kind == type(layer).__name__, row
        assert row.output_shape == tuple(layer.output.shape[1:]), row
        assert row.params == layer.count_params(), row
        assert row.trainable == _n(layer.trainable_weights), row
    assert report.total_params == model.count_params()
    assert report.trainable_params == _n(model.trainable_weights)
    assert report.non_trainable_params == _n(model.non_trainable_weights)


def test_rows_name_layers_and_mark_automatic_ones():
    report = infer_shapes([dense(8), D("Dropout", rate=0.1)], (8, 8, 1), "multiclass", 10)
    assert [(r.index, r.name, r.implicit) for r in report.rows] == [
        (None, "Flatten (automatic)", True),
        (0, "Dense 1", False),
        (1, "Dropout 2", False),
        (None, "Output (Dense 10, softmax)", False),
    ]
    tab = infer_shapes([], (4,), "binary", 2)
    assert [(r.name, r.implicit, r.output_shape, r.params) for r in tab.rows] == [
        ("Normalization", True, (4,), 0),
        ("Output (Dense 1, sigmoid)", False, (1,), 5),
    ]


def test_normalize_flag_overrides_the_default():
    assert [r.kind for r in infer_shapes([], (4,), "regression", 0, normalize=False).rows] == ["Dense", "Rescaling"]
    rows = infer_shapes([], (8, 8, 1), "regression", 0, normalize=True).rows
    assert [r.kind for r in rows] == ["Normalization", "Flatten", "Dense", "Rescaling"]


def test_head():
    assert head("multiclass", 7, None) == (7, "softmax", "sparse_categorical_crossentropy")
    assert head("binary", 2, OutputSpec()) == (1, "sigmoid", "binary_crossentropy")
    assert head("regression", 0, None) == (1, "linear", "mse")
    assert head("regression", 0, OutputSpec(loss="huber")) == (1, "linear", "huber")
    assert head("multiclass", 3, OutputSpec("softmax", "categorical_crossentropy"))[2] == "categorical_crossentropy"
    with pytest.raises(ValueError, match="unknown task"):
        head("auto", 3, None)


def _refusal(layers, input_shape):
    with pytest.raises(ShapeError) as err:
        infer_shapes(layers, input_shape, "multiclass", 3)
    return err.value


def test_conv_on_tabular_is_refused():
    err = _refusal([D("Dropout", rate=0.1), conv(8)], (4,))
    assert err.layer_index == 1
    assert str(err) == (
        "layer 2 (Conv2D): needs image input of shape (height, width, channels), but gets "
        "tabular input of 4 features; remove it or choose an image dataset"
    )


def test_gap_on_tabular_is_refused():
    err = _refusal([dense(16), GAP], (4,))
    assert err.layer_index == 1
    assert str(err).startswith("layer 2 (GlobalAveragePooling2D): needs image input")
    assert "tabular input of 4 features" in str(err)


def test_conv_after_flatten_says_where_the_image_went():
    err = _refusal([conv(4), FLAT, pool()], (8, 8, 1))
    assert err.layer_index == 2
    assert "flat input of 144 features because layer 2 (Flatten) already flattened the image" in str(err)
    assert "move it before that layer" in str(err)


def test_conv_after_dense_on_an_image_names_the_automatic_flatten():
    err = _refusal([dense(8), conv(4)], (8, 8, 1))
    assert "flat input of 8 features because the automatic Flatten before layer 1 (Dense)" in str(err)


def test_unknown_layer_and_empty_input_are_refused():
    assert _refusal([D("LSTM")], (4,)).layer_index == 0
    assert _refusal([], (0,)).layer_index is None


def test_pooling_below_1x1_is_refused():
    err = _refusal([pool(), pool(), pool()], (4, 4, 1))
    assert err.layer_index == 2
    assert str(err).startswith("layer 3 (MaxPooling2D): its 2x2 pool")
    assert "1x1 input would leave 0x0" in str(err)
    assert 'padding "same", a smaller pool or fewer pooling layers' in str(err)


def test_kernel_bigger_than_input_is_refused():
    err = _refusal([conv(4, 5)], (3, 3, 1))
    assert err.layer_index == 0
    assert '5x5 kernel (padding "valid") on a 3x3 input would leave 0x0, below 1x1' in str(err)
    assert 'padding "same", a smaller kernel' in str(err)
    # The same kernel with padding "same" fits.
    assert infer_shapes([conv(4, 5, padding="same")], (3, 3, 1), "binary", 2).rows[0].output_shape == (3, 3, 4)


def test_build_model_refuses_with_the_same_error():
    from kfcore.model.build import build_model

    with pytest.raises(ShapeError, match=r"layer 1 \(Conv2D\): needs image input"):
        build_model(RunSpec(layers=[conv(4)]), (4,), "binary", 2)


def test_no_tensorflow_on_import():
    code = (
        "import sys, kfcore.model.shapes, kfcore.model.build\n"
        "from kfcore.spec import LayerSpec\n"
        "kfcore.model.shapes.infer_shapes([LayerSpec('Conv2D', filters=2, kernel_size=3)], (8, 8, 1), 'multiclass', 3)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
