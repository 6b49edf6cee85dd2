"""The layer registry: every kind is found in its own module, and what it declares agrees with Keras and with
the exported script, so a new kind needs nothing outside its module (plus tests)."""

import pytest

from kfcore.layers import FIELD_NAMES, KINDS, LAYER_TYPES
from kfcore.spec import LAYER_DEFAULTS, LayerSpec, SpecError, parse_spec

EXAMPLES = {  # one non-default layer per kind, to exercise its optional fields too
    "Dense": {"units": 7, "activation": "tanh", "l1": 0.01, "l2": 0.02, "initializer": "he_normal"},
    "Dropout": {"rate": 0.25},
    "BatchNormalization": {},
    "LayerNormalization": {"epsilon": 1e-5},
    "Flatten": {},
    "Conv2D": {"filters": 3, "kernel_size": [3, 2], "strides": 2, "padding": "same", "activation": "elu"},
    "MaxPooling2D": {"pool_size": 3, "strides": 1, "padding": "same"},
    "AveragePooling2D": {"pool_size": [2, 1], "padding": "valid"},
    "GlobalAveragePooling2D": {},
}


def test_every_kind_is_discovered_in_the_editors_order_with_the_two_added_by_registry_alone():
    assert LAYER_TYPES == (
        "Dense",
        "Dropout",
        "BatchNormalization",
        "LayerNormalization",
        "Flatten",
        "Conv2D",
        "MaxPooling2D",
        "AveragePooling2D",
        "GlobalAveragePooling2D",
    )
    assert set(EXAMPLES) == set(KINDS)
    assert "epsilon" in FIELD_NAMES  # LayerNormalization's own field: declared only in its module


def test_a_layer_spec_refuses_a_field_no_kind_has():
    with pytest.raises(AttributeError, match="no field 'unit'"):
        LayerSpec("Dense", unit=3)
    with pytest.raises(SpecError, match="unknown field"):
        parse_spec({"layers": [{"type": "Dropout", "units": 3}]})


@pytest.mark.parametrize("name", LAYER_TYPES)
def test_parsing_fills_the_kinds_defaults_and_round_trips(name):
    spec = parse_spec({"layers": [{"type": name, **EXAMPLES[name]}, {"type": name}]})
    assert spec.layers[1].to_dict() == {"type": name, **LAYER_DEFAULTS[name]}
    assert parse_spec(spec.to_dict()) == spec


@pytest.mark.parametrize("name", LAYER_TYPES)
def test_the_exported_line_builds_the_same_keras_layer_as_the_trainer(name):
    import keras

    layer_kind = KINDS[name]
    values = LayerSpec(name, **EXAMPLES[name]).values()
    built = layer_kind.build(keras, values, "x", None)
    written = eval(layer_kind.code(values), {"layers": keras.layers, "keras": keras})  # noqa: S307
    a, b = built.get_config(), written.get_config()
    for key in ("name", "dtype"):
        a.pop(key, None)
        b.pop(key, None)
    assert a == b
