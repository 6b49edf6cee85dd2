"""Every chart that shows user text (class labels, column and run names) hands it to Plotly as text: Plotly draws
<a href>, <b>, <br> … in labels, legends and hovers, so a label "<a href=…>" must arrive as entities."""

import numpy as np

from kfcore.present import plots

LINK = '<a href="http://127.0.0.1:9/">kf</a>'
IMG = "<img src=http://127.0.0.1:9/i.png> &amp;"
NAMES = [LINK, IMG]


def strings(node) -> list[str]:
    """Every string in a figure's JSON (labels, names, templates, axis titles)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, (list, tuple)):
        return [s for v in node for s in strings(v)]
    if isinstance(node, np.ndarray) and node.dtype.kind in "OU":
        return [s for v in node.tolist() for s in strings(v)]
    return []


def assert_text_only(fig) -> None:
    found = strings(fig.to_plotly_json())
    assert not [s for s in found if "<a" in s or "<img" in s], "user text reached Plotly as HTML"
    assert any("&lt;a href" in s for s in found), "the label is shown, as text"
    assert not [s for s in found if "&amp;" in s and "&amp;amp;" not in s], "an entity in a name stays literal"


def test_every_chart_with_class_names_feature_names_or_run_names_escapes_them():
    x2 = np.array([[0, 0], [1, 1], [0.5, 0.2], [0.1, 0.9]], dtype=np.float32)
    y = np.array([0, 1, 0, 1])
    history = [
        {"epoch": 1, "loss": 0.9, "val_loss": 1.0, "per_class_val_accuracy": [0.5, 0.6]},
        {"epoch": 2, "loss": 0.7, "val_loss": 0.8, "per_class_val_accuracy": [0.7, 0.8]},
    ]
    boundary = {
        "x": [-1.0, 0.0, 1.0],
        "y": [-1.0, 1.0],
        "values": [[0.1, 0.5, 0.9], [0.2, 0.4, 0.8]],
        "kind": "probability",
    }
    per_class = [{"class": n, "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2} for n in NAMES]
    figures = {
        "class balance": plots.class_balance({LINK: 3, IMG: 2}),
        "scatter": plots.scatter_2d(x2, y, NAMES, NAMES),
        "sample grid": plots.sample_grid(np.zeros((4, 8, 8, 1)), y, NAMES),
        "confusion matrix": plots.confusion_matrix([[1, 1], [0, 2]], NAMES, selected=(0, 1)),
        "per class": plots.per_class_scores(per_class),
        "per class over epochs": plots.per_class_accuracy(history, NAMES),
        "decision boundary": plots.decision_boundary(boundary, NAMES, x2, y, x2[:2], y[:2], NAMES),
        "compare": plots.compare_curves([(LINK, history, 2), (IMG, history, None)], "loss"),
        "probabilities": plots.class_probabilities([0.3, 0.7], NAMES),
        "target histogram": plots.target_histogram(np.arange(5.0), name=LINK),
        "predicted vs actual": plots.predicted_vs_actual(np.arange(3.0), np.arange(3.0), target=LINK),
    }
    for what, fig in figures.items():
        try:
            assert_text_only(fig)
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}") from None


def test_ordinary_names_are_unchanged():
    fig = plots.class_balance({"cat": 3, "dog": 2})
    assert list(fig.data[0].x) == ["cat", "dog"]
