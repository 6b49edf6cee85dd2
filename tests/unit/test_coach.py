"""The coach reads a finished run's results and offers one change per finding."""

import pytest

from kfcore.training import coach

SPEC = {"data": {"source": "builtin", "name": "iris"}, "train": {"epochs": 10, "learning_rate": 0.001}}


def history(losses, val_losses=None):
    rows = []
    for i, loss in enumerate(losses):
        row = {"epoch": i + 1, "loss": loss}
        if val_losses is not None:
            row["val_loss"] = val_losses[i]
        rows.append(row)
    return rows


def keys(findings):
    return [f.key for f in findings]


def test_a_regression_worse_than_the_mean_is_said_plainly_with_one_change():
    found = coach.read_results(SPEC, history([9, 8, 7, 6, 5, 4, 3.5, 3, 2.5, 2]), {"task": "regression", "r2": -0.4})
    assert keys(found)[0] == "worse_than_mean" and "worse than always guessing the average" in found[0].message
    assert found[0].change == {"train.epochs": 20}  # the loss was still falling: train longer
    assert "still_improving" not in keys(found)  # said once, not twice


def test_accuracy_near_chance_with_a_flat_loss_asks_for_a_bigger_learning_rate():
    ev = {"task": "classification", "accuracy": 0.36, "confusion_matrix": [[10, 0, 0], [10, 0, 0], [10, 0, 0]]}
    found = coach.read_results(SPEC, history([1.10, 1.099, 1.098, 1.098] * 2 + [1.097, 1.097]), ev)
    assert keys(found) == ["near_chance"]
    assert "33%" in found[0].message and found[0].change == {"train.learning_rate": 0.01}


def test_overfitting_names_the_epoch_it_began_and_offers_early_stopping():
    losses = [1.0, 0.7, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1]
    val = [1.0, 0.8, 0.6, 0.65, 0.7, 0.8, 0.9, 1.0]
    found = coach.read_results(SPEC, history(losses, val), {"task": "classification", "accuracy": 0.9})
    assert keys(found) == ["overfitting"] and "from epoch 3" in found[0].message
    assert found[0].change == {"train.early_stopping": True, "train.restore_best_weights": True}
    with_stopping = {**SPEC, "train": {**SPEC["train"], "early_stopping": True}}
    assert coach.read_results(with_stopping, history(losses, val), {"task": "classification"}) == []


def test_a_loss_that_went_up_asks_for_a_smaller_learning_rate():
    spec = {**SPEC, "train": {"epochs": 5, "learning_rate": 0.3}}
    found = coach.read_results(spec, history([0.7, 0.9, 1.4, 2.0, 3.1]), {"task": "classification", "accuracy": 0.9})
    assert keys(found) == ["loss_rose"] and found[0].change == {"train.learning_rate": 0.03}


def test_a_run_still_improving_at_its_last_epoch_is_offered_more_epochs_within_the_servers_cap():
    found = coach.read_results(
        SPEC,
        history(
            [1, 0.8, 0.6, 0.5, 0.4, 0.33, 0.28, 0.24, 0.2, 0.17], [1, 0.85, 0.7, 0.6, 0.5, 0.45, 0.41, 0.38, 0.35, 0.33]
        ),
        {"task": "classification", "accuracy": 0.9},
        max_epochs=15,
    )
    assert keys(found) == ["still_improving"] and found[0].change == {"train.epochs": 15}
    # Training longer goes on from where the run ended (its weights and optimizer state), not from scratch.
    assert found[0].action == "Continue 5 more epochs" and found[0].continue_epochs == 5
    assert (
        coach.read_results(
            SPEC,
            history([1, 0.5, 0.4, 0.39, 0.39, 0.39, 0.39, 0.39, 0.39, 0.39]),
            {"task": "classification", "accuracy": 0.9},
        )
        == []
    )


def test_a_cosine_run_is_trained_anew_for_longer_and_a_continued_run_is_read_from_its_own_first_epoch():
    improving = [1, 0.8, 0.6, 0.5, 0.4, 0.33, 0.28, 0.24, 0.2, 0.17]
    cosine = {**SPEC, "train": {**SPEC["train"], "schedule": "cosine"}}
    (found,) = coach.read_results(cosine, history(improving), {"task": "classification", "accuracy": 0.9})
    # Its rate decayed to 0 at its last epoch: continuing would not train, so a new run with more epochs.
    assert (found.action, found.change, found.continue_epochs) == ("Train 20 epochs", {"train.epochs": 20}, None)
    continued = [{**row, "epoch": row["epoch"] + 30} for row in history([0.7, 0.9, 1.4, 2.0, 3.1])]
    spec = {**SPEC, "train": {"epochs": 5, "learning_rate": 0.3}}
    (rose,) = coach.read_results(spec, continued, {"task": "classification", "accuracy": 0.9})
    assert "in epoch 31," in rose.message  # its epochs are numbered after its parent's


def test_apply_changes_only_the_named_settings_of_a_copy():
    changed = coach.apply(SPEC, {"train.learning_rate": 0.01})
    assert changed["train"] == {"epochs": 10, "learning_rate": 0.01} and SPEC["train"]["learning_rate"] == 0.001
    assert changed["data"] == SPEC["data"]


@pytest.mark.parametrize("lr, words", [(1e-6, "near_chance")])
def test_a_real_run_at_a_tiny_learning_rate_is_read_as_near_chance(lr, words):
    from kfcore.spec import parse_spec
    from kfcore.training.train import train

    spec = parse_spec({"data": {"source": "builtin", "name": "iris"}, "train": {"epochs": 3, "learning_rate": lr}})
    result = train(spec)
    found = coach.read_results(spec.to_dict(), result.history, result.evaluation)
    assert words in keys(found)
    assert next(f for f in found if f.key == words).change == {"train.learning_rate": 1e-5}
