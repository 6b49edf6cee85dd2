"""Figure builders: what each chart draws, from plain data, without Streamlit."""

import numpy as np
import pytest

from kfcore.present import plots

HISTORY = [
    {"epoch": 1, "loss": 1.0, "val_loss": 1.1, "accuracy": 0.5, "val_accuracy": 0.45},
    {"epoch": 2, "loss": 0.6, "val_loss": 0.7, "accuracy": 0.7, "val_accuracy": 0.66},
    {"epoch": 3, "loss": 0.4, "val_loss": 0.75, "accuracy": 0.8, "val_accuracy": 0.64},
]
PREVIOUS = [{"epoch": e, "loss": 1.5 - 0.1 * e, "val_loss": 1.6 - 0.1 * e} for e in range(1, 6)]


def by_name(fig):
    return {t.name: t for t in fig.data}


def test_training_curve_draws_train_solid_and_validation_in_another_colour():
    fig = plots.training_curve(HISTORY, "loss")
    traces = by_name(fig)
    assert list(traces) == ["train", "validation"]
    assert list(traces["train"].y) == [1.0, 0.6, 0.4] and list(traces["validation"].y) == [1.1, 0.7, 0.75]
    assert traces["train"].line.dash is None and traces["validation"].line.dash is None
    assert traces["train"].line.color != traces["validation"].line.color
    assert fig.layout.yaxis.title.text == "Loss"


def test_previous_run_is_drawn_dashed_grey_under_the_current_one():
    fig = plots.training_curve(HISTORY, "loss", previous=PREVIOUS)
    names = [t.name for t in fig.data]
    assert names == ["previous · train", "previous · validation", "train", "validation"]
    prev_train, prev_val = fig.data[0], fig.data[1]
    assert prev_train.line.dash == "dash" and prev_val.line.dash == "dot"
    assert prev_train.line.color == prev_val.line.color == plots.PREVIOUS_COLOR
    assert list(prev_train.x) == [1, 2, 3, 4, 5]


def test_metric_curve_uses_the_metric_and_its_validation_twin():
    fig = plots.training_curve(HISTORY, "accuracy", previous=PREVIOUS)
    # The previous run logged no accuracy: nothing to draw for it, no empty legend entries.
    assert [t.name for t in fig.data] == ["train", "validation"]
    assert list(by_name(fig)["validation"].y) == [0.45, 0.66, 0.64]
    assert fig.layout.yaxis.title.text == "Accuracy"


def test_x_axis_spans_the_planned_epochs_so_the_chart_does_not_rescale_while_growing():
    fig = plots.training_curve(HISTORY[:1], "loss", epochs=20)
    assert fig.layout.xaxis.range[1] == pytest.approx(20.4)
    assert plots.training_curve(HISTORY, "loss", previous=PREVIOUS).layout.xaxis.range[1] == pytest.approx(5.4)
    assert fig.layout.xaxis.tick0 == 1  # epoch 1 is labelled whatever the tick step


def test_best_epoch_is_starred_on_the_validation_curve():
    fig = plots.training_curve(HISTORY, "loss", best_epoch=2)
    best = by_name(fig)["best epoch"]
    assert list(best.x) == [2] and list(best.y) == [0.7] and best.marker.symbol == "star"
    without_val = [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.5}]
    assert list(by_name(plots.training_curve(without_val, "loss", best_epoch=2))["best epoch"].y) == [0.5]


def test_an_empty_history_says_it_waits_for_the_first_epoch():
    fig = plots.training_curve([], "loss", epochs=10)
    assert not fig.data
    assert "waiting for the first epoch" in fig.layout.annotations[0].text


def test_non_finite_values_are_left_out_of_a_curve():
    history = [{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": float("nan")}, {"epoch": 3, "loss": 0.5}]
    assert list(plots.training_curve(history, "loss").data[0].x) == [1, 3]


def test_class_balance_has_a_bar_per_class_with_its_share():
    fig = plots.class_balance({"cat": 30, "dog": 10})
    bar = fig.data[0]
    assert list(bar.x) == ["cat", "dog"] and list(bar.y) == [30, 10]
    assert list(bar.text) == ["75%", "25%"]


def test_split_bar_stacks_the_three_splits_with_their_sizes():
    fig = plots.split_bar({"train": 70, "validation": 10, "test": 20})
    assert [t.x[0] for t in fig.data] == [70, 10, 20]
    assert fig.layout.barmode == "stack"
    assert "test" in fig.data[2].text[0] and "20%" in fig.data[2].text[0]


def test_scatter_draws_one_trace_per_class_and_thins_large_sets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10_000, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    fig = plots.scatter_2d(x, y, ["left", "right"], ["a", "b"], max_points=500)
    assert [t.name for t in fig.data] == ["left", "right"]
    assert sum(len(t.x) for t in fig.data) == 500
    assert fig.layout.xaxis.title.text == "a" and fig.layout.yaxis.title.text == "b"


def test_scatter_of_a_regression_set_colours_points_by_value():
    x = np.array([[0.0, 1.0], [1.0, 0.0]])
    fig = plots.scatter_2d(x, np.array([0.5, 2.5]), [])
    assert list(fig.data[0].marker.color) == [0.5, 2.5]


def test_sample_grid_lays_out_one_row_per_class_labelled_with_its_name():
    x = np.zeros((30, 8, 8, 1), dtype=np.float32)
    y = np.repeat(np.arange(3), 10)
    x[y == 1] = 1.0  # class 1 is all ink
    fig = plots.sample_grid(x, y, ["zero", "one", "two"], per_class=4)
    z = np.array(fig.data[0].z, dtype=float)
    gap = 1
    assert z.shape == (3 * 8 + 2 * gap, 4 * 8 + 3 * gap)
    assert np.nanmin(z[8 + gap : 16 + gap, :8]) == 1.0 and np.nanmax(z[:8, :8]) == 0.0
    assert list(fig.layout.yaxis.ticktext) == ["zero", "one", "two"]


def test_sample_grid_of_colour_images_is_an_rgb_picture():
    x = np.full((4, 32, 32, 3), 0.5, dtype=np.float32)
    fig = plots.sample_grid(x, np.array([0, 0, 1, 1]), ["a", "b"], per_class=2)
    assert fig.data[0].type == "image"
    assert np.asarray(fig.data[0].z).shape[-1] == 3


def test_target_histogram_bins_a_regression_target():
    fig = plots.target_histogram(np.linspace(0, 1, 50), name="price")
    assert fig.data[0].type == "histogram" and fig.layout.xaxis.title.text == "price"


@pytest.mark.parametrize(
    "build",
    [
        lambda: plots.training_curve(HISTORY, "loss", previous=PREVIOUS, best_epoch=2),
        lambda: plots.compare_curves([("a", HISTORY, 2), ("b", PREVIOUS, None)], "loss"),
        lambda: plots.predicted_vs_actual(np.array([1.0, 2.0]), np.array([1.5, 2.5])),
    ],
    ids=["training_curve", "compare_curves", "predicted_vs_actual"],
)
def test_legends_sit_at_the_foot_of_the_figure_so_a_wrapped_one_cannot_climb_onto_the_axis_title(build):
    # Anchored to the plot area (paper y < 0) a legend that wrapped shrank the plot and covered "epoch";
    # in container coordinates it grows upwards from the figure's bottom edge and Plotly makes room for it.
    legend = build().layout.legend
    assert (legend.yref, legend.y, legend.yanchor, legend.orientation) == ("container", 0, "bottom", "h")
