"""Evaluation maths on small hand-checked inputs."""

import numpy as np
import pytest

from kfcore.training import evaluate


def test_confusion_matrix_and_per_class_metrics_match_hand_counts():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array([[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.6, 0.1, 0.3], [0, 0, 1]])
    rep = evaluate.classification_report(y_true, probs, ["a", "b", "c"])
    assert rep["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert rep["accuracy"] == pytest.approx(4 / 6)
    b = rep["per_class"][1]
    assert b["precision"] == pytest.approx(2 / 3) and b["recall"] == 1.0 and b["f1"] == pytest.approx(0.8)
    assert rep["confusion_matrix_normalised"][2] == [0.5, 0.0, 0.5]
    # mistakes sorted by confidence, most confident first
    assert [(m["index"], m["true"], m["predicted"]) for m in rep["mistakes"]] == [(1, 0, 1), (4, 2, 0)]
    assert rep["mistakes"][0]["confidence"] == pytest.approx(0.7)


def test_binary_sigmoid_output_becomes_two_columns():
    probs, pred = evaluate.probabilities_to_classes(np.array([[0.2], [0.9]]))
    assert probs.shape == (2, 2) and pred.tolist() == [0, 1]


def test_regression_report():
    rep = evaluate.regression_report(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert rep["mae"] == pytest.approx(1 / 3)
    assert rep["rmse"] == pytest.approx(np.sqrt(1 / 3))
    assert rep["r2"] == pytest.approx(1 - 1 / 2)


def test_decision_boundary_grid_covers_data_and_follows_the_model():
    x = np.array([[-1.0, -2.0], [1.0, 2.0]])
    grid = evaluate.decision_boundary(lambda g: (g[:, 0:1] > 0).astype(float), x, resolution=10)
    assert len(grid["values"]) == 10 and len(grid["values"][0]) == 10
    assert grid["x"][0] < -1 and grid["x"][-1] > 1 and grid["y"][0] < -2
    assert grid["values"][0][0] == 0.0 and grid["values"][0][-1] == 1.0
    assert grid["kind"] == "probability"


def test_per_class_accuracy_marks_absent_classes():
    cm = evaluate.confusion_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), 3)
    view = evaluate.epoch_validation_view(cm)
    assert view["per_class_val_accuracy"] == [0.5, 1.0, None]
    assert view["val_confusion"] == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]


def test_the_epoch_confusion_matrix_is_kept_only_up_to_fifty_classes():
    many = np.eye(evaluate.MAX_CONFUSION_CLASSES + 1, dtype=np.int64)
    assert "val_confusion" not in evaluate.epoch_validation_view(many)
    assert evaluate.epoch_validation_view(many)["per_class_val_accuracy"] == [1.0] * len(many)
    assert len(evaluate.epoch_validation_view(many[:-1, :-1])["val_confusion"]) == evaluate.MAX_CONFUSION_CLASSES
