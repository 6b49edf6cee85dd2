"""Runs side by side: the Runs table's summary rows, its filter, and the config diff of selected runs."""

from kfcore.present import compare
from kfcore.runs.store import RunRecord

IRIS = {
    "data": {"source": "builtin", "name": "iris"},
    "layers": [{"type": "Dense", "units": 16, "activation": "relu"}],
    "train": {"epochs": 3},
}


def record(**kw) -> RunRecord:
    base = {
        "id": "abc123",
        "name": "run 1",
        "spec": IRIS,
        "status": "finished",
        "created": 100.0,
        "started": 100.0,
        "finished": 112.5,
    }
    return RunRecord(**{**base, **kw})


def test_flatten_gives_one_dotted_path_per_setting_and_one_per_layer_field():
    flat = compare.flatten({"train": {"epochs": 3}, "layers": [{"type": "Dense", "units": 8}, {"type": "Dropout"}]})
    assert flat == {
        "train.epochs": 3,
        "layers.count": 2,
        "layers[0].type": "Dense",
        "layers[0].units": 8,
        "layers[1].type": "Dropout",
    }


def test_config_diff_lists_only_the_fields_that_differ():
    other = {**IRIS, "train": {"epochs": 5, "learning_rate": 0.01}}
    diff = dict(compare.config_diff([IRIS, other]))
    assert diff == {"train.learning_rate": [0.001, 0.01], "train.epochs": [3, 5]}


def test_a_default_left_out_equals_the_same_default_written_down():
    explicit = {**IRIS, "train": {"epochs": 3, "optimizer": "adam", "batch_size": 32}}
    assert compare.config_diff([IRIS, explicit]) == []


def test_a_layer_only_one_run_has_is_a_difference_with_a_missing_value_for_the_other():
    deeper = {**IRIS, "layers": IRIS["layers"] + [{"type": "Dropout", "rate": 0.2}]}
    diff = dict(compare.config_diff([IRIS, deeper, IRIS]))
    assert diff["layers.count"] == [1, 2, 1]
    assert diff["layers[1].type"] == [None, "Dropout", None] and diff["layers[1].rate"] == [None, 0.2, None]


def test_summary_row_has_what_the_runs_table_shows():
    history = [
        {"epoch": 1, "val_accuracy": 0.5, "val_loss": 1.0},
        {"epoch": 2, "val_accuracy": 0.8, "val_loss": 0.6},
        {"epoch": 3, "val_accuracy": 0.7, "val_loss": 0.7},
    ]
    rec = record(
        info={"task": "multiclass", "params": 131, "epochs": 3},
        test={"accuracy": 0.9, "loss": 0.3},
        hardware={"device": "CPU: test (2 cores)"},
    )
    row = compare.summary_row(rec, compare.epoch_facts(rec, history))
    assert row["dataset"] == "iris" and row["layers"] == "Dense(16, relu)" and row["params"] == 131
    assert (row["best_val_metric"], row["best_val"]) == ("accuracy", 0.8)
    assert (row["test_metric"], row["test"]) == ("accuracy", 0.9)
    assert row["epochs"] == "3 of 3" and row["time_s"] == 12.5 and row["device"] == "CPU: test (2 cores)"


def test_regression_runs_rank_validation_by_the_lowest_error():
    assert compare.best_validation([{"val_mae": 3.0}, {"val_mae": 2.0}, {"val_mae": 2.5}], "regression") == ("mae", 2.0)
    assert compare.best_validation([{"loss": 1.0}], "multiclass") is None


def test_filter_matches_every_word_in_name_dataset_or_layers_and_the_status():
    rec = record(name="wide net")
    row = compare.summary_row(rec, compare.epoch_facts(rec, []))
    assert compare.matches(row, "IRIS dense") and compare.matches(row, "wide")
    assert not compare.matches(row, "mnist")
    assert compare.matches(row, "", ["finished", "failed"]) and not compare.matches(row, "", ["running"])


def test_an_unparseable_stored_spec_is_still_summarised_and_compared_as_stored():
    odd = {"data": {"name": "legacy"}, "layers": [{"type": "Mystery"}]}
    rec = record(spec=odd)
    row = compare.summary_row(rec, compare.epoch_facts(rec, []))
    assert row["layers"] == "1 layers" and row["dataset"] == "legacy"
    assert dict(compare.config_diff([odd, IRIS]))["data.name"] == ["legacy", "iris"]
