"""A live run's pictures (kfcore.snapshot, the store's live table) and the figures drawn from them (kfcore.present.plots):
the boundary over the plane, the Playground network, the layer stack, learning-rate markers and a continued run's
curve joined to its parent's."""

import json
import sqlite3

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion

from kfcore.model.shapes import infer_shapes
from kfcore.present import plots
from kfcore.runs.store import RunStore
from kfcore.spec import LayerSpec
from kfcore.training import evaluate, snapshot


def dense(*units, activation="tanh"):
    return [LayerSpec("Dense", units=u, activation=activation) for u in units]


# -- which models get the Playground diagram ------------------------------------------------------


@pytest.mark.parametrize(
    "layers, input_shape, task, classes, sizes",
    [
        (dense(8, 8), (2,), "binary", 2, [2, 8, 8, 1]),
        (dense(8), (4,), "multiclass", 3, [4, 8, 3]),
        ([], (2,), "regression", 0, [2, 1]),
        (dense(9), (2,), "binary", 2, None),  # a layer too wide
        (dense(*[4] * 7), (2,), "binary", 2, None),  # too deep
        (dense(4), (30,), "binary", 2, None),  # too many inputs
        (dense(4), (8, 8, 1), "multiclass", 10, None),  # an image
        ([*dense(4), LayerSpec("Dropout", rate=0.1)], (2,), "binary", 2, None),  # not only Dense
    ],
)
def test_small_dense_says_which_networks_playground_draws(layers, input_shape, task, classes, sizes):
    report = infer_shapes(layers, input_shape, task, classes)
    assert snapshot.small_dense(report, input_shape) == sizes
    figure = plots.network_diagram(report, input_shape)
    assert (figure is None) == (sizes is None)


# -- the picture a worker takes -------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(0)
    m = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Normalization(mean=[1.0, -1.0], variance=[4.0, 1.0]),
            keras.layers.Dense(3, activation="tanh"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    return m


def test_a_picture_is_the_models_own_predictions_weights_and_unit_outputs_bounded_in_size(model):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    view = snapshot.LiveView(x, y, "binary", dense=True)
    assert view.due()
    shot = view.take(model, 7)
    assert not view.due()  # at most one picture every INTERVAL_S
    assert shot["epoch"] == 7 and len(shot["points"]) == snapshot.MAX_POINTS
    assert "points" not in view.take(model, 8)  # the points travel with the first picture only

    _, _, grid = evaluate.plane_grid(x, snapshot.GRID)
    expected = model.predict(grid, verbose=0).reshape(snapshot.GRID, snapshot.GRID)
    boundary = shot["boundary"]
    assert boundary["kind"] == "probability"
    np.testing.assert_allclose(boundary["values"], expected, atol=1e-4)
    kernels = [w for w in model.get_weights() if w.ndim == 2]
    for stored, kernel in zip(shot["weights"], kernels, strict=True):
        np.testing.assert_allclose(stored, kernel, atol=1e-4)
    thumbs = np.asarray(shot["units"][-1][0])  # the output unit's thumbnail: the boundary, every third point
    np.testing.assert_allclose(thumbs, expected[:: snapshot.THUMB_STRIDE, :: snapshot.THUMB_STRIDE], atol=1e-3)
    assert [len(layer) for layer in shot["units"]] == [3, 1]
    assert len(json.dumps(shot)) < 100_000


def test_a_regression_picture_is_its_surface_in_the_targets_units():
    import keras

    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1), keras.layers.Rescaling(10.0, offset=5.0)])
    x = np.array([[0, 0], [1, 1]], dtype=np.float32)
    shot = snapshot.LiveView(x, np.array([1.0, 2.0]), "regression", dense=False).take(m, 1)
    assert shot["boundary"]["kind"] == "value" and "weights" not in shot
    _, _, grid = evaluate.plane_grid(x, snapshot.GRID)
    np.testing.assert_allclose(
        np.asarray(shot["boundary"]["values"]).reshape(-1), m.predict(grid, verbose=0)[:, 0], rtol=1e-4, atol=1e-3
    )
    fig = plots.live_boundary(shot, [])
    assert fig.layout.title.text == "Prediction surface at epoch 1" and fig.data[0].showscale is not False


def test_a_model_on_other_data_takes_no_picture_unless_it_is_a_small_dense_net():
    x = np.zeros((10, 5), dtype=np.float32)
    assert not snapshot.LiveView(x, np.zeros(10), "binary", dense=False).enabled
    assert snapshot.LiveView(x, np.zeros(10), "binary", dense=True).enabled


# -- the store ------------------------------------------------------------------------------------


def test_the_store_keeps_a_runs_latest_picture_and_its_first_points(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run({})
    assert store.picture(run_id) is None
    store.set_picture(run_id, {"epoch": 1, "boundary": {"values": [[0.1]]}, "points": [[0.0, 1.0, 1]]})
    store.set_picture(run_id, {"epoch": 5, "boundary": {"values": [[0.9]]}})
    assert store.picture(run_id) == {"epoch": 5, "boundary": {"values": [[0.9]]}, "points": [[0.0, 1.0, 1]]}
    store.delete(run_id)
    assert store.picture(run_id) is None


def test_a_store_made_before_the_live_table_gains_it(tmp_path):
    RunStore(tmp_path)
    with sqlite3.connect(tmp_path / "runs.sqlite") as con:
        con.execute("DROP TABLE live")
    store = RunStore(tmp_path)
    run_id = store.create_run({})
    store.set_picture(run_id, {"epoch": 2})
    assert store.picture(run_id)["epoch"] == 2


# -- the figures ----------------------------------------------------------------------------------


def rows(n, start=1, extra=None):
    return [
        {"epoch": e, "loss": 1.0 / e, "val_loss": 1.2 / e, "learning_rate": 0.01, **(extra or {}).get(e, {})}
        for e in range(start, start + n)
    ]


def test_a_learning_rate_change_is_a_marker_line_with_the_new_rate():
    history = rows(6, extra={4: {"lr_changed": True, "learning_rate": 0.005}})
    fig = plots.training_curve(history, "loss", epochs=6)
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert [s.x0 for s in lines] == [3.5]
    assert [a.text for a in fig.layout.annotations] == ["learning rate → 0.005"]
    assert not plots.training_curve(rows(6), "loss").layout.shapes


def test_a_continued_run_is_drawn_on_from_its_parents_curve_with_the_join_marked():
    parent, child = rows(5), rows(3, start=6)
    fig = plots.training_curve(child, "loss", epochs=8, parent=parent)
    train = next(t for t in fig.data if t.name == "train")
    assert list(train.x) == list(range(1, 9))  # one curve: the parent's epochs, then the child's
    assert [s.x0 for s in fig.layout.shapes] == [5.5] and fig.layout.annotations[0].text == "continued"
    assert fig.layout.xaxis.range[1] == pytest.approx(8.4)


def test_a_long_curve_drops_its_markers():
    assert next(t for t in plots.training_curve(rows(10), "loss").data).mode == "lines+markers"
    assert next(t for t in plots.training_curve(rows(plots.MAX_MARKED_EPOCHS + 1), "loss").data).mode == "lines"


def test_the_live_boundary_draws_the_picture_under_the_training_points():
    picture = {
        "epoch": 12,
        "points": [[0, 0, 0], [1, 1, 1], [1, 0, 1]],
        "boundary": {"x": [0, 1], "y": [0, 1], "values": [[0.1, 0.8], [0.3, 0.9]], "kind": "probability"},
    }
    fig = plots.live_boundary(picture, ["no", "<b>yes</b>"])
    assert fig.layout.title.text == "Decision boundary at epoch 12"
    assert fig.data[0].type == "heatmap" and [list(r) for r in fig.data[0].z] == [[0.1, 0.8], [0.3, 0.9]]
    assert [len(t.x) for t in fig.data[1:]] == [1, 2] and fig.data[2].name == "&lt;b&gt;yes&lt;/b&gt;"


def test_the_network_diagram_draws_each_weight_by_sign_and_size_and_each_units_output():
    report = infer_shapes(dense(2), (2,), "binary", 2)
    w1 = [[1.0, -0.1], [0.5, -2.0]]
    w2 = [[0.2], [-0.3]]
    t = 3
    units = [[np.full((t, t), 0.5).tolist(), np.full((t, t), -1.0).tolist()], [np.full((t, t), 0.75).tolist()]]
    picture = {
        "epoch": 3,
        "weights": [w1, w2],
        "units": units,
        "boundary": {"x": [0, 1], "y": [0, 1], "values": [[0, 1], [1, 0]], "kind": "probability"},
    }
    fig = plots.network_diagram(report, (2,), picture, feature_names=["a", "b"])
    assert fig.layout.title.text == "Network at epoch 3"
    edges = [t for t in fig.data if t.type == "scatter" and t.mode == "lines"]
    drawn = {(tr.line.color, tr.line.width): sum(v is None for v in tr.x) for tr in edges}
    assert sum(drawn.values()) == 2 * 2 + 2 * 1  # every connection once
    # The strongest weight (-2.0) in the widest negative bin; the positive 1.0 and 0.5 in the positive colour.
    assert drawn[(plots.NEGATIVE, 0.6 + 1.6 * (plots.WIDTH_BINS - 1))] == 1
    assert sum(n for (color, _), n in drawn.items() if color == plots.POSITIVE) == 3
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len(heatmaps) == 2 + 2 + 1  # inputs, hidden units, output: each its output over the plane
    assert np.asarray(heatmaps[-1].z).max() == pytest.approx(0.5)  # a probability of 0.75 shaded at 2p - 1
    assert np.asarray(heatmaps[3].z).min() == pytest.approx(-1.0)  # a unit scaled by its largest magnitude
    hovers = next(
        t
        for t in fig.data
        if t.type == "scatter" and t.mode == "markers" and t.text is not None and "weight" in t.text[0]
    )
    assert sorted(hovers.text) == sorted(f"weight {v:.3f}" for v in (1.0, -0.1, 0.5, -2.0, 0.2, -0.3))


def test_before_its_first_picture_the_network_is_drawn_in_grey():
    fig = plots.network_diagram(infer_shapes(dense(3), (2,), "binary", 2), (2,))
    assert fig.layout.title.text == "Network"
    assert {t.line.color for t in fig.data if t.type == "scatter" and t.mode == "lines"} == {plots.IMPLICIT_COLOR}
    assert not [t for t in fig.data if t.type == "heatmap"]


def test_the_layer_stack_shows_every_layer_with_its_output_shape_and_parameters():
    layers = [LayerSpec("Conv2D", filters=4, kernel_size=3), *dense(16)]
    report = infer_shapes(layers, (8, 8, 1), "multiclass", 10)
    fig = plots.layer_blocks(report)
    texts = [a.text for a in fig.layout.annotations if a.text]
    for row in report.rows:
        assert f"output {'×'.join(map(str, row.output_shape))} · {row.params:,} params" in texts
    assert fig.layout.title.text == f"Layer stack · {report.total_params:,} parameters"


def test_row_normalised_matches_scikit_learn():
    y_true = np.array([0, 0, 1, 2, 2, 2, 1])
    y_pred = np.array([0, 1, 1, 2, 0, 2, 1])
    cm = evaluate.confusion_matrix(y_true, y_pred, 4)  # class 3 has no samples: its row stays 0
    expected = np.zeros((4, 4))
    expected[:3, :3] = sk_confusion(y_true, y_pred, normalize="true")
    np.testing.assert_allclose(evaluate.row_normalised(cm), expected)


def test_a_continued_runs_per_class_accuracy_spans_its_own_epochs():
    history = [{"epoch": e, "per_class_val_accuracy": [0.5, 0.6]} for e in range(101, 111)]
    fig = plots.per_class_accuracy(history, ["a", "b"])
    assert list(fig.layout.xaxis.range) == pytest.approx([100.6, 110.4])
