"""RunSpec: defaults, validation messages, JSON and URL round trips."""

import json

import pytest

from kfcore.spec import LayerSpec, RunSpec, SpecError, parse_spec

CONTRACT = {
    "data": {"source": "builtin", "name": "digits"},
    "split": {"test": 0.2, "validation": 0.1, "seed": 0},
    "layers": [{"type": "Dense", "units": 64, "activation": "relu"}],
    "train": {"optimizer": "adam", "learning_rate": 0.001, "epochs": 10, "batch_size": 32, "seed": 0},
}


def test_contract_shape_parses_and_keeps_its_fields():
    spec = parse_spec(CONTRACT)
    d = spec.to_dict()
    for section, values in CONTRACT.items():
        if isinstance(values, dict):
            for key, value in values.items():
                assert d[section][key] == value
    assert d["layers"] == CONTRACT["layers"]


def test_json_round_trip_is_lossless():
    spec = parse_spec(
        {
            **CONTRACT,
            "layers": [
                {"type": "Conv2D", "filters": 8, "kernel_size": [3, 5], "padding": "same", "l2": 0.01},
                {"type": "MaxPooling2D", "pool_size": 2},
                {"type": "Dropout", "rate": 0.25},
                {"type": "Dense", "units": 16, "activation": "tanh", "initializer": "he_normal", "l1": 0.001},
            ],
            "train": {"optimizer": "sgd", "momentum": 0.9, "schedule": "cosine", "early_stopping": True},
        }
    )
    assert RunSpec.from_json(spec.to_json()) == spec
    assert json.loads(spec.to_json())["layers"][0]["kernel_size"] == [3, 5]


def test_url_round_trip_is_compact_and_url_safe():
    spec = parse_spec(CONTRACT)
    token = spec.to_url()
    assert RunSpec.from_url(token) == spec
    assert len(token) < 600
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_url_holds_only_the_hyperparameters_that_differ_from_the_defaults():
    import base64
    import zlib

    spec = RunSpec()
    spec.train.epochs, spec.split.validation = 17, 0.2
    token = spec.to_url()
    sent = json.loads(zlib.decompress(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))))
    assert sent["train"] == {"epochs": 17} and sent["split"] == {"validation": 0.2}
    assert RunSpec.from_url(token) == spec
    full = base64.urlsafe_b64encode(zlib.compress(json.dumps(spec.to_dict(), separators=(",", ":")).encode(), 9))
    assert len(token) < len(full.rstrip(b"=")) - 40


@pytest.mark.parametrize("token", ["", "not-a-link", "eNo9kN1OwzAMRt"])
def test_damaged_url_is_refused_with_reason(token):
    with pytest.raises(SpecError, match="link"):
        RunSpec.from_url(token)


@pytest.mark.parametrize(
    "patch, field, words",
    [
        ({"layers": [{"type": "Dense", "units": 0}]}, "layers[0].units", "from 1"),
        ({"layers": [{"type": "Dense", "units": 8, "activation": "relux"}]}, "layers[0].activation", "choose one of"),
        ({"layers": [{"type": "Conv3D"}]}, "layers[0].type", "unknown layer type"),
        ({"layers": [{"type": "Dense", "unit": 8}]}, "layers[0] (Dense).unit", "unknown field"),
        ({"layers": [{"type": "Dropout", "rate": 1.5}]}, "layers[0].rate", "0.99"),
        ({"layers": [{"type": "MaxPooling2D", "pool_size": 0}]}, "layers[0].pool_size", "whole number"),
        ({"train": {"optimizer": "adamax"}}, "train.optimizer", "sgd, adam, adamw, rmsprop, adagrad"),
        ({"train": {"learning_rate": 0}}, "train.learning_rate", "above 0"),
        ({"train": {"epochs": 2.5}}, "train.epochs", "whole number"),
        ({"train": {"batch_size": "32"}}, "train.batch_size", "whole number"),
        ({"split": {"test": 0.6, "validation": 0.5}}, "split", "too little to train on"),
        ({"data": {"source": "ftp"}}, "data.source", "builtin, keras, csv, npz, idx"),
        ({"data": {"source": "csv", "path": "x.csv"}}, "data.target", "column to predict"),
        ({"data": {"source": "idx", "images": "a"}}, "data.labels", "labels file"),
        ({"data": {"source": "builtin", "name": "circle", "noise": 0.9}}, "data.noise", "0.5"),
        ({"output": {"loss": "hinge"}}, "output.loss", "choose one of"),
    ],
)
def test_invalid_specs_are_refused_naming_field_and_allowed_values(patch, field, words):
    with pytest.raises(SpecError) as err:
        parse_spec({**CONTRACT, **patch})
    assert any(path == field for path, _ in err.value.problems), err.value.problems
    assert words in str(err.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SpecError) as err:
        parse_spec({"layers": [{"type": "Dense", "units": -1}], "train": {"epochs": 0, "optimizer": "x"}})
    assert len(err.value.problems) == 3


@pytest.mark.parametrize("bad", ["[]", "42", "null", '{"layers": {}}', "{not json"])
def test_non_object_json_is_refused_not_crashed(bad):
    with pytest.raises(SpecError):
        RunSpec.from_json(bad)


def test_short_layer_descriptions():
    assert LayerSpec("Dense", units=64, activation="relu").short() == "Dense(64, relu)"
    assert LayerSpec("Conv2D", filters=32, kernel_size=3).short() == "Conv2D(32, 3x3)"
    assert parse_spec(CONTRACT).layers_short() == "Dense(64, relu)"


# -- crafted specs and links: refused with a reason before the parser can be exhausted ---------------------------


def _token(raw: bytes) -> str:
    import base64
    import zlib

    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


def test_deeply_nested_json_is_refused_before_parsing_not_a_recursion_error():
    with pytest.raises(SpecError, match="nests 100,000 levels deep"):
        RunSpec.from_json("[" * 100_000 + "]" * 100_000)
    nested_field = {**CONTRACT, "train": {"epochs": json.loads("[" * 30 + "]" * 30)}}
    with pytest.raises(SpecError, match="nests 32 levels"):
        RunSpec.from_json(json.dumps(nested_field))


def test_brackets_inside_strings_do_not_count_as_nesting():
    spec = {**CONTRACT, "data": {"source": "csv", "path": "[[[[[[[[[[[[[[[[[[[[.csv", "target": "{{{{"}}
    assert RunSpec.from_json(json.dumps(spec)).data.path.startswith("[[[")


def test_an_integer_of_thousands_of_digits_is_refused_with_the_bound():
    with pytest.raises(SpecError, match="5,000 digits"):
        RunSpec.from_json('{"train": {"epochs": ' + "9" * 5000 + "}}")


def test_a_nul_byte_or_other_control_character_in_a_path_is_refused_naming_the_field():
    with pytest.raises(SpecError) as err:
        RunSpec.from_json(json.dumps({"data": {"source": "csv", "path": "a\x00b.csv", "target": "y"}}))
    assert [p for p, _ in err.value.problems] == ["data.path"] and "control characters" in str(err.value)


def test_error_messages_quote_a_huge_value_cut_short():
    with pytest.raises(SpecError) as err:
        parse_spec({**CONTRACT, "train": {"optimizer": "x" * 100_000}})
    assert len(str(err.value)) < 300


def test_a_link_nesting_deeply_or_inflating_like_a_bomb_is_refused_with_a_reason():
    token = _token(b"[" * 100_000 + b"]" * 100_000)
    assert len(token) < 1000  # a short link: the attack needs no long URL
    with pytest.raises(SpecError, match="shared link nests"):
        RunSpec.from_url(token)
    with pytest.raises(SpecError, match="inflates to more than"):
        RunSpec.from_url(_token(b" " * (4 << 20)))
    with pytest.raises(SpecError, match="digits"):
        RunSpec.from_url(_token(b'{"train": {"seed": ' + b"1" * 10_000 + b"}}"))
