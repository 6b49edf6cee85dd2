"""Evaluation and comparison figures: what each draws, from plain data, without Streamlit."""

import numpy as np
import pytest

from kfcore.present import plots

CM = [[5, 1, 0], [2, 6, 0], [0, 1, 7]]
NAMES = ["cat", "dog", "emu"]


def test_confusion_matrix_has_true_classes_down_and_predictions_across_with_counts_in_the_cells():
    fig = plots.confusion_matrix(CM, NAMES)
    heat, cells = fig.data
    assert heat.type == "heatmap" and list(heat.x) == NAMES and list(heat.y) == NAMES
    assert [list(r) for r in heat.text] == [["5", "1", "0"], ["2", "6", "0"], ["0", "1", "7"]]
    assert fig.layout.yaxis.title.text == "true class" and fig.layout.xaxis.title.text == "predicted class"
    assert list(fig.layout.yaxis.range) == [2.5, -0.5]  # the first class on top
    assert fig.layout.xaxis.type == fig.layout.yaxis.type == "category"  # "0".."9" stay names, not numbers


def test_every_confusion_cell_is_clickable_and_carries_its_true_and_predicted_class():
    cells = plots.confusion_matrix(CM, NAMES).data[1]
    assert cells.type == "scatter" and len(cells.x) == 9
    k = 1 * 3 + 0  # true dog, predicted cat
    assert (cells.y[k], cells.x[k]) == ("dog", "cat")
    assert list(cells.customdata[k]) == [1, 0, 2]
    assert plots.confusion_matrix(CM, NAMES).data[0].hoverinfo == "skip"  # the markers, not the heatmap, answer


def test_normalised_matrix_shows_shares_and_the_chosen_cell_is_outlined():
    norm = [[5 / 6, 1 / 6, 0], [0.25, 0.75, 0], [0, 0.125, 0.875]]
    fig = plots.confusion_matrix(norm, NAMES, normalised=True, counts=CM, selected=(1, 0))
    assert fig.data[0].text[1][1] == "75%" and fig.data[0].zmax == 1.0
    assert list(fig.data[1].customdata[3]) == [1, 0, 2]  # hover still tells the sample count
    (shape,) = fig.layout.shapes
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (-0.5, 0.5, 0.5, 1.5)


def test_per_class_scores_are_three_bars_per_class():
    per_class = [
        {"class": n, "precision": p, "recall": r, "f1": f, "support": 3}
        for n, p, r, f in zip(NAMES, (1, 0.5, 0.9), (0.8, 0.6, 1), (0.89, 0.55, 0.95), strict=True)
    ]
    fig = plots.per_class_scores(per_class)
    assert [t.name for t in fig.data] == ["precision", "recall", "F1"]
    assert list(fig.data[1].y) == [0.8, 0.6, 1] and list(fig.data[0].x) == NAMES


def test_per_class_accuracy_draws_a_line_per_class_over_the_epochs():
    history = [
        {"epoch": 1, "per_class_val_accuracy": [0.5, None, 1.0]},
        {"epoch": 2, "per_class_val_accuracy": [0.75, 0.5, 1.0]},
    ]
    fig = plots.per_class_accuracy(history, NAMES)
    lines = {t.name: t for t in fig.data}
    assert list(lines) == NAMES
    assert list(lines["cat"].y) == [0.5, 0.75] and list(lines["dog"].x) == [2]  # an absent class is skipped
    assert lines["cat"].line.color == plots.class_color(0)


def test_decision_boundary_shows_the_model_under_train_circles_and_test_diamonds():
    boundary = {
        "x": [-1.0, 0.0, 1.0],
        "y": [-1.0, 1.0],
        "values": [[0.1, 0.5, 0.9], [0.2, 0.4, 0.8]],
        "kind": "probability",
    }
    x = np.array([[0, 0], [1, 1], [-1, 0.5]], dtype=np.float32)
    fig = plots.decision_boundary(boundary, ["0", "1"], x, np.array([0, 1, 1]), x[:2], np.array([1, 0]))
    assert fig.data[0].type == "heatmap" and (fig.data[0].zmin, fig.data[0].zmax) == (0, 1)
    points = {t.name: t for t in fig.data[1:]}
    assert list(points) == ["train · 0", "train · 1", "test · 0", "test · 1"]
    assert len(points["train · 1"].x) == 2 and points["test · 0"].marker.symbol == "diamond"
    assert points["train · 0"].marker.symbol == "circle"


def test_a_multiclass_boundary_colours_predicted_classes():
    boundary = {"x": [0.0, 1.0], "y": [0.0, 1.0], "values": [[0, 1], [2, 2]], "kind": "class"}
    fig = plots.decision_boundary(boundary, NAMES, np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2)), np.zeros(0))
    assert (fig.data[0].zmin, fig.data[0].zmax) == (-0.5, 2.5)


def test_predicted_vs_actual_has_the_perfect_line_and_one_dot_per_sample():
    fig = plots.predicted_vs_actual(np.array([1.0, 2.0, 3.0]), np.array([[1.5], [2.0], [2.0]]))
    line, dots = fig.data
    assert list(line.x) == list(line.y) == [0.0, 3.0]
    assert list(dots.y) == [1.5, 2.0, 2.0] and list(dots.x) == [1.0, 2.0, 3.0]


def test_residual_histogram_bins_predicted_minus_actual_around_zero():
    fig = plots.residual_histogram(np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0]))
    assert list(fig.data[0].x) == [0.5, 0.0, -1.0]
    assert fig.layout.shapes[0].x0 == 0


def test_compare_curves_overlays_each_runs_validation_curve_and_stars_its_best_epoch():
    a = [
        {"epoch": 1, "val_loss": 1.0, "loss": 1.1},
        {"epoch": 2, "val_loss": 0.5, "loss": 0.6},
        {"epoch": 3, "val_loss": 0.7, "loss": 0.4},
    ]
    b = [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.8}]  # trained without validation
    fig = plots.compare_curves([("wide", a, 2), ("deep", b, 2)], "loss")
    traces = {t.name: t for t in fig.data}
    assert list(traces) == ["wide · validation", "wide · best epoch", "deep · train", "deep · best epoch"]
    assert list(traces["wide · validation"].y) == [1.0, 0.5, 0.7]
    assert (traces["wide · best epoch"].x[0], traces["wide · best epoch"].y[0]) == (2, 0.5)
    assert traces["deep · train"].line.dash == "dot"
    assert traces["wide · validation"].line.color != traces["deep · train"].line.color


def test_class_probabilities_highlight_the_predicted_class():
    fig = plots.class_probabilities([0.1, 0.7, 0.2], NAMES)
    bar = fig.data[0]
    assert list(bar.y) == NAMES and list(bar.text) == ["10.0%", "70.0%", "20.0%"]
    assert bar.marker.color[1] == plots.TRAIN_COLOR and bar.marker.color[0] == plots.PREVIOUS_COLOR


@pytest.mark.parametrize("n", [2, 10, plots.MAX_LABELLED_CLASSES])
def test_confusion_matrix_stays_a_readable_size(n):
    fig = plots.confusion_matrix(np.eye(n).tolist(), [str(i) for i in range(n)])
    assert 380 <= fig.layout.height <= 520
    assert fig.data[0].texttemplate == "%{text}" and len(fig.data[0].text) == n


def test_a_matrix_of_many_classes_drops_the_cell_numbers_grows_taller_and_keeps_them_on_hover():
    n = 100
    fig = plots.confusion_matrix((np.eye(n) * 3).tolist(), [f"class {i}" for i in range(n)])
    heat, cells = fig.data
    assert heat.text is None and heat.texttemplate is None
    assert 520 < fig.layout.height <= 900
    assert len(cells.customdata) == n * n and list(cells.customdata[n + 1]) == [1, 1, 3]
