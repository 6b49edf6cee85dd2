"""Design advice: warnings for models that build but cannot learn well, and silence for sound ones."""

import pytest

from kfcore.model.advice import model_advice
from kfcore.model.presets import PRESETS
from kfcore.spec import RunSpec


def spec_with(layers: list[dict], output: dict | None = None) -> RunSpec:
    return RunSpec.from_dict({"layers": layers, **({"output": output} if output else {})})


@pytest.mark.parametrize("key", list(PRESETS))
def test_the_presets_and_the_default_get_no_advice(key):
    spec = RunSpec()
    spec.layers = PRESETS[key].build()
    assert model_advice(spec, "multiclass", 10) == []
    assert model_advice(RunSpec(), "binary", 2) == []
    assert model_advice(RunSpec(), "regression", 0) == []


def test_a_one_unit_softmax_hidden_layer_is_named_as_a_dead_end():
    notes = model_advice(
        spec_with(
            [
                {"type": "Dense", "units": 16, "activation": "relu"},
                {"type": "Dense", "units": 1, "activation": "softmax"},
            ]
        ),
        "multiclass",
        3,
    )
    assert len(notes) == 1 and notes[0].startswith("Layer 2: Dense(1, softmax) always outputs 1")
    assert "relu" in notes[0]


def test_a_wider_softmax_hidden_layer_gets_a_milder_note():
    notes = model_advice(spec_with([{"type": "Dense", "units": 8, "activation": "softmax"}]), "multiclass", 3)
    assert len(notes) == 1 and "Layer 1: softmax in a hidden layer" in notes[0] and "8 outputs" in notes[0]


def test_all_linear_layers_collapse_to_one_linear_map_but_one_linear_layer_is_fine():
    two = spec_with(
        [
            {"type": "Dense", "units": 8, "activation": "linear"},
            {"type": "Dropout", "rate": 0.1},
            {"type": "Dense", "units": 8, "activation": "linear"},
        ]
    )
    assert any("one linear map" in n for n in model_advice(two, "binary", 2))
    assert model_advice(spec_with([{"type": "Dense", "units": 8, "activation": "linear"}]), "binary", 2) == []
    mixed = spec_with(
        [{"type": "Dense", "units": 8, "activation": "linear"}, {"type": "Dense", "units": 8, "activation": "relu"}]
    )
    assert model_advice(mixed, "binary", 2) == []


def test_a_deep_stack_of_sigmoid_layers_is_flagged_and_a_short_one_is_not():
    deep = [{"type": "Dense", "units": 16, "activation": "sigmoid"}] * 3 + [
        {"type": "BatchNormalization"},
        {"type": "Dense", "units": 16, "activation": "tanh"},
    ]
    assert any(n.startswith("4 sigmoid/tanh layers in a row") for n in model_advice(spec_with(deep), "binary", 2))
    assert model_advice(spec_with(deep[:3]), "binary", 2) == []
    broken = deep[:2] + [{"type": "Dense", "units": 16, "activation": "relu"}] + deep[:2]
    assert model_advice(spec_with(broken), "binary", 2) == []


def test_a_single_softmax_output_unit_cannot_learn_but_softmax_over_classes_is_the_default():
    notes = model_advice(
        spec_with([{"type": "Dense", "units": 8, "activation": "relu"}], output={"activation": "softmax"}), "binary", 2
    )
    assert len(notes) == 1 and "single softmax unit" in notes[0] and "sigmoid" in notes[0]
    assert (
        model_advice(
            spec_with([{"type": "Dense", "units": 8, "activation": "relu"}], output={"activation": "softmax"}),
            "multiclass",
            4,
        )
        == []
    )
