"""Property test: no spec JSON makes parsing, shape inference or the CLI's checks crash or hang.

Any input either parses into a RunSpec or is refused with a SpecError that names a field and says why.
"""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kfcore.data import DataError
from kfcore.model.shapes import ShapeError
from kfcore.spec import LAYER_TYPES, RunSpec, SpecError, parse_spec
from kfcore.training.train import prepare

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True), st.text(max_size=8)
)
sizes = st.one_of(st.integers(-2, 40), st.lists(st.integers(-2, 12), max_size=3), scalars)
layer = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(LAYER_TYPES), st.text(max_size=6))},
    optional={
        "units": st.one_of(st.integers(-5, 300), scalars),
        "activation": st.one_of(st.sampled_from(["relu", "tanh", "softmax", "nope"]), scalars),
        "rate": st.one_of(st.floats(-1, 2), scalars),
        "filters": st.one_of(st.integers(-1, 64), scalars),
        "kernel_size": sizes,
        "pool_size": sizes,
        "strides": sizes,
        "padding": st.sampled_from(["same", "valid", "full"]),
        "l1": st.one_of(st.floats(-1, 2), scalars),
        "l2": scalars,
        "bogus": scalars,
    },
)
section = st.dictionaries(
    st.sampled_from(
        [
            "optimizer",
            "learning_rate",
            "epochs",
            "batch_size",
            "seed",
            "momentum",
            "schedule",
            "early_stopping",
            "patience",
            "name",
            "source",
            "test",
            "validation",
            "n",
            "noise",
            "task",
            "target",
            "path",
        ]
    ),
    st.one_of(scalars, st.sampled_from(["adam", "sgd", "builtin", "iris", "circle", "csv"])),
    max_size=6,
)
spec_like = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.fixed_dictionaries(
        {},
        optional={
            "data": st.one_of(section, scalars),
            "split": st.one_of(section, scalars),
            "layers": st.one_of(st.lists(layer, max_size=5), scalars),
            "train": st.one_of(section, scalars),
            "output": st.one_of(section, scalars),
            "extra": scalars,
        },
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec_like)
def test_any_json_parses_or_is_refused_with_a_reason(value):
    text = json.dumps(value)
    try:
        spec = RunSpec.from_json(text)
    except SpecError as e:
        assert e.problems and all(msg for _, msg in e.problems)
        return
    assert RunSpec.from_json(spec.to_json()) == spec  # whatever parses round-trips


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(layer, max_size=5), st.sampled_from(["iris", "digits", "circle", "diabetes"]))
def test_any_valid_layer_stack_builds_or_is_refused_before_training(layers, name):
    try:
        spec = parse_spec({"data": {"source": "builtin", "name": name}, "layers": layers})
    except SpecError:
        return
    try:
        prepare(spec)
    except (ShapeError, DataError) as e:
        assert str(e)
