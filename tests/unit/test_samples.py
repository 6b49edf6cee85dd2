"""The samples behind a run's numbers: a confusion cell's samples, the rebuilt test split, thumbnails, uploads."""

import io

import numpy as np
import pytest

from kfcore import data
from kfcore.data import load_dataset, split_dataset
from kfcore.present import samples
from kfcore.present.samples import Predictions, SampleError
from kfcore.spec import DataSpec, SplitSpec

Y = np.array([0, 0, 1, 1, 2, 2, 0])
PROBS = np.array(
    [[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.6, 0.1, 0.3], [0, 0, 1], [0.3, 0.6, 0.1]]
)


def test_a_cell_lists_its_samples_most_confident_first():
    pred = Predictions(Y, PROBS)
    assert samples.cell(pred, 0, 1).tolist() == [1, 6]  # 0.7 before 0.6
    assert samples.cell(pred, 1, 1).tolist() == [2, 3]
    assert samples.cell(pred, 2, 1).tolist() == []
    assert samples.cell(pred, 0, 1, limit=1).tolist() == [1]


def test_a_binary_sigmoid_output_makes_two_columns_of_probabilities():
    pred = Predictions(np.array([0, 1, 1]), np.array([[0.2], [0.9], [0.4]]))
    assert pred.probs.shape == (3, 2) and pred.predicted.tolist() == [0, 1, 0]
    assert samples.cell(pred, 1, 0).tolist() == [2]


def test_the_commonest_mistake_is_the_default_cell():
    assert samples.most_confused([[5, 1, 0], [4, 6, 0], [0, 2, 9]]) == (1, 0)
    assert samples.most_confused([[3, 0], [0, 3]]) == (0, 0)


def test_a_click_on_the_matrix_is_read_from_customdata_or_else_the_class_names():
    names = ["cat", "dog", "emu"]
    assert samples.cell_from_selection([{"x": "dog", "y": "cat", "customdata": [2, 0, 7]}], names) == (2, 0)
    assert samples.cell_from_selection([{"x": "dog", "y": "cat"}], names) == (0, 1)
    assert samples.cell_from_selection([{"x": 1, "y": 0}], ["0", "1"]) == (0, 1)
    assert samples.cell_from_selection([], names) is None
    assert samples.cell_from_selection([{"x": "yak", "y": "cat", "customdata": [9, 9]}], names) is None


def test_the_rebuilt_test_split_is_the_one_training_made(tmp_path):
    ds = load_dataset(DataSpec(name="iris"))
    split = SplitSpec(test=0.2, validation=0.1, seed=3)
    real = split_dataset(ds, split)
    rebuilt = samples.rebuild_split(ds, split)
    assert np.array_equal(rebuilt.x_test, real.x_test) and np.array_equal(rebuilt.y_test, real.y_test)
    assert np.array_equal(ds.x[rebuilt.train_index], real.x_train)
    assert samples.mismatch(rebuilt.y_test, real.y_test) is None


def test_a_run_saves_where_its_samples_are_and_they_are_found_without_splitting_again(tmp_path, monkeypatch):
    from kfcore.spec import parse_spec
    from kfcore.training.train import train

    spec = parse_spec({"data": {"source": "builtin", "name": "iris"}, "split": {"seed": 5}, "train": {"epochs": 1}})
    train(spec, model_path=tmp_path / "model.keras")
    saved = samples.load_predictions(tmp_path)
    ds = load_dataset(spec.data)
    real = split_dataset(ds, spec.split)
    assert np.array_equal(saved.test_index, real.test_index) and saved.fingerprint == data.fingerprint(ds)

    def no_split(*_a, **_k):
        raise AssertionError("the saved sample numbers were not used")

    monkeypatch.setattr(samples, "split_dataset", no_split)
    rebuilt = samples.rebuild_split(ds, spec.split, saved)
    assert np.array_equal(rebuilt.x_test, real.x_test) and np.array_equal(ds.x[rebuilt.train_index], real.x_train)
    assert samples.mismatch(rebuilt.y_test, saved.y_true) is None
    # Other data under the same name (a file replaced): the fingerprint differs and the split is made anew.
    changed = load_dataset(DataSpec(name="wine"))
    monkeypatch.undo()
    assert samples.mismatch(samples.rebuild_split(changed, spec.split, saved).y_test, saved.y_true) is not None


def test_changed_data_is_reported_instead_of_showing_wrong_samples():
    assert "scored on 3" in samples.mismatch(np.array([0, 1]), np.array([0, 1, 1]))
    assert "different test labels" in samples.mismatch(np.array([0, 1, 1]), np.array([0, 1, 0]))
    assert samples.mismatch(np.array([1.5, 2.0], np.float32), np.array([1.5, 2.0], np.float32)) is None


def test_saved_predictions_load_and_a_missing_file_says_why(tmp_path):
    with pytest.raises(SampleError, match="saved no per-sample predictions"):
        samples.load_predictions(tmp_path)
    np.savez_compressed(tmp_path / "predictions.npz", y_true=Y, outputs=PROBS.astype(np.float32))
    pred = samples.load_predictions(tmp_path)
    assert pred.y_true.tolist() == Y.tolist() and pred.outputs.shape == (7, 3)
    (tmp_path / "predictions.npz").write_bytes(b"not a zip")
    with pytest.raises(SampleError, match="cannot be read"):
        samples.load_predictions(tmp_path)


def test_regression_predictions_are_the_outputs_as_values():
    pred = Predictions(np.array([1.0, 2.0], np.float32), np.array([[1.5], [1.0]], np.float32))
    assert pred.is_regression and pred.predicted.tolist() == [1.5, 1.0]


def test_selected_dots_become_sample_numbers_and_the_diagonal_is_ignored():
    points = [
        {"curve_number": 1, "point_index": 4, "customdata": 4},
        {"curve_number": 0, "point_index": 1},  # the perfect-prediction line
        {"curve_number": 1, "point_index": 9, "customdata": [9]},
        {"curve_number": 1, "point_index": 4, "customdata": 4},  # twice: once
        {"curve_number": 1, "customdata": 99},  # not a test sample
        {"curve_number": 1, "point_index": 2},
    ]  # no customdata: the point's index
    assert samples.samples_from_selection(points, n_samples=20) == [4, 9, 2]
    assert samples.samples_from_selection([], 20) == [] and samples.samples_from_selection(None, 20) == []


def test_typed_sample_numbers_are_read_leniently_and_bad_ones_explained():
    assert samples.parse_sample_numbers(" 3, 17 #42;3 ", 50) == [3, 17, 42]
    assert samples.parse_sample_numbers("", 50) == []
    with pytest.raises(SampleError, match=r"'x1' is not a sample number; type whole numbers from 0 to 49"):
        samples.parse_sample_numbers("3, x1", 50)
    with pytest.raises(SampleError, match=r"there is no sample 50: the test set has 50 \(0 to 49\)"):
        samples.parse_sample_numbers("50", 50)
    with pytest.raises(SampleError, match="not a sample number"):
        samples.parse_sample_numbers("-1", 50)


def test_largest_errors_come_first_among_all_or_the_chosen_and_are_capped():
    y = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    pred = np.array([0.5, 3.0, 2.0, 0.0, 4.1])  # errors 0.5, 2, 0, 3, 0.1
    assert samples.largest_errors(y, pred).tolist() == [3, 1, 0, 4, 2]
    assert samples.largest_errors(y, pred, limit=2).tolist() == [3, 1]
    assert samples.largest_errors(y, pred, among=[4, 0, 2]).tolist() == [0, 4, 2]


def test_grey_thumbnails_are_ink_on_paper_and_enlarged_with_hard_edges():
    img = np.zeros((8, 8, 1), np.float32)
    img[0, 0, 0] = 1.0
    thumb = samples.thumbnail(img, size=64)
    assert thumb.shape == (64, 64) and thumb.dtype == np.uint8
    assert thumb[:8, :8].max() == 0 and thumb[8:, 8:].min() == 255  # the stroke is dark, the paper white
    colour = samples.thumbnail(np.full((4, 4, 3), 0.5, np.float32), size=16)
    assert colour.shape == (16, 16, 3)


def png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def test_a_dark_digit_on_white_paper_becomes_a_light_digit_on_dark_like_mnist():
    paper = np.full((40, 40), 250, np.uint8)
    paper[10:30, 18:22] = 10  # a dark "1"
    x = samples.image_input(png(paper), (8, 8, 1), dark_background=True)
    assert x.shape == (1, 8, 8, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert x[0, 4, 4, 0] > 0.5 and x[0, 0, 0, 0] < 0.1  # the stroke is bright, the background dark


def test_a_colour_model_gets_an_rgb_input_and_a_non_picture_is_refused():
    x = samples.image_input(png(np.zeros((10, 12, 3), np.uint8)), (32, 32, 3), dark_background=False)
    assert x.shape == (1, 32, 32, 3)
    with pytest.raises(SampleError, match="not a picture"):
        samples.image_input(b"hello", (8, 8, 1), dark_background=True)
