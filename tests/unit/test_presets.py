"""Presets: each builds on the data it is meant for, and is refused with a reason where it does not fit."""

import pytest

from kfcore.model.presets import PRESETS
from kfcore.model.shapes import ShapeError, infer_shapes


@pytest.mark.parametrize(
    ("key", "input_shape"),
    [
        ("mlp", (4,)),
        ("mlp", (8, 8, 1)),
        ("convnet", (8, 8, 1)),
        ("convnet", (28, 28, 1)),
        ("convnet", (32, 32, 3)),
        ("playground", (2,)),
    ],
)
def test_presets_build_on_the_data_they_are_meant_for(key, input_shape):
    report = infer_shapes(PRESETS[key].build(), input_shape, "multiclass", 10)
    assert report.total_params > 0


def test_the_convnet_preset_is_refused_on_tabular_data_with_a_reason():
    with pytest.raises(ShapeError, match="needs image input"):
        infer_shapes(PRESETS["convnet"].build(), (4,), "multiclass", 3)


def test_a_preset_gives_fresh_layers_each_time():
    first = PRESETS["mlp"].build()
    first[0].units = 3
    assert PRESETS["mlp"].build()[0].units == 64
