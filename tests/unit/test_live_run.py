"""A live run: pause, step, resume and a learning-rate change obeyed at epoch boundaries, and continue from a
finished run's saved state; none of them changes the math of an uninterrupted run of the same length."""

import threading
import time

import keras
import numpy as np
import pytest

from kfcore.runs.jobs import continue_run, execute_run
from kfcore.runs.limits import Limits
from kfcore.runs.store import RunStore
from kfcore.spec import parse_spec


def _spec(epochs=6, **train):
    return parse_spec(
        {
            "data": {"source": "builtin", "name": "iris"},
            "split": {"test": 0.2, "validation": 0.2, "seed": 0},
            "layers": [{"type": "Dense", "units": 8, "activation": "tanh"}],
            "train": {
                "optimizer": "adam",
                "learning_rate": 0.02,
                "epochs": epochs,
                "batch_size": 16,
                "seed": 3,
                **train,
            },
        }
    ).to_dict()


def _run(store, run_id, on_event=None, limits=None):
    assert store.start_in_process(run_id)
    return execute_run(store, run_id, on_event=on_event, limits=limits or Limits())


def _weights(store, run_id):
    return keras.models.load_model(store.get(run_id).model_path).get_weights()


def _assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "store")


@pytest.fixture
def uninterrupted(store):
    run_id = store.create_run(_spec(6))
    assert _run(store, run_id).status == "finished"
    return run_id


def test_pause_step_resume_keeps_the_weights_of_an_uninterrupted_run(store, uninterrupted):
    run_id = store.create_run(_spec(6))
    seen = {}

    def on_event(event):
        if event["event"] != "epoch":
            return
        if event["epoch"] == 1:  # the first call trains one epoch: the next boundary is right after it
            store.send_command(run_id, "pause")
            store.send_command(run_id, "step")
        elif event["epoch"] == 2:  # the stepped epoch: the run is paused, waiting for the next command
            seen["paused"] = store.get(run_id, with_evaluation=False).paused
            seen["at"] = time.monotonic()
            threading.Timer(0.6, store.send_command, (run_id, "resume")).start()
        elif event["epoch"] == 3:
            seen["waited"] = time.monotonic() - seen["at"]

    result = _run(store, run_id, on_event)
    assert result.status == "finished", result.error
    assert seen["paused"] is not None and seen["waited"] >= 0.5
    assert store.get(run_id).paused is None  # resumed
    assert [e["epoch"] for e in store.epochs(run_id)] == [1, 2, 3, 4, 5, 6]
    _assert_same_weights(_weights(store, run_id), _weights(store, uninterrupted))


def test_continue_for_n_epochs_ends_where_one_run_of_the_total_length_ends(store, uninterrupted):
    parent = store.create_run(_spec(3))
    assert _run(store, parent).status == "finished"
    child = continue_run(store, parent, 3)
    record = store.get(child)
    assert record.parent == parent and record.continues and record.spec["train"]["epochs"] == 3
    assert _run(store, child).status == "finished"
    epochs = store.epochs(child)
    assert [e["epoch"] for e in epochs] == [4, 5, 6]  # numbered after the parent's, so the curves join
    whole = store.epochs(uninterrupted)
    assert epochs[0]["loss"] == pytest.approx(whole[3]["loss"], rel=1e-4)  # not a fresh start
    _assert_same_weights(_weights(store, child), _weights(store, uninterrupted))


def test_continue_refuses_unknown_and_unfinished_runs_and_bad_epochs(store):
    with pytest.raises(ValueError, match="no run with id"):
        continue_run(store, "nope", 3)
    queued = store.create_run(_spec(3))
    with pytest.raises(ValueError, match="queued: only a finished or stopped run"):
        continue_run(store, queued, 3)
    assert _run(store, queued).status == "finished"
    with pytest.raises(ValueError, match="epochs"):
        continue_run(store, queued, 0)
    with pytest.raises(ValueError, match="limit of 5"):
        continue_run(store, queued, 9, limits=Limits(max_epochs=5))


def test_a_learning_rate_change_acts_at_the_next_epoch_and_is_marked(store):
    run_id = store.create_run(_spec(4))

    def on_event(event):
        if event["event"] == "epoch" and event["epoch"] == 1:
            store.send_command(run_id, "learning_rate", 0.005)

    assert _run(store, run_id, on_event).status == "finished"
    epochs = store.epochs(run_id)
    assert [e["learning_rate"] for e in epochs] == pytest.approx([0.02, 0.005, 0.005, 0.005])
    assert [bool(e.get("lr_changed")) for e in epochs] == [False, True, False, False]


def test_commands_are_refused_with_a_reason(store):
    run_id = store.create_run(_spec(4, schedule="exponential"))
    with pytest.raises(ValueError, match="not running"):
        store.send_command(run_id, "pause")
    assert store.start_in_process(run_id)
    with pytest.raises(ValueError, match="unknown command"):
        store.send_command(run_id, "explode")
    with pytest.raises(ValueError, match="above 0"):
        store.send_command(run_id, "learning_rate", -1.0)
    with pytest.raises(ValueError, match="exponential schedule"):
        store.send_command(run_id, "learning_rate", 0.01)
    store.send_command(run_id, "pause")
    store.send_command(run_id, "resume")
    assert store.take_commands(run_id) == [("pause", None), ("resume", None)]
    assert store.take_commands(run_id) == []


def test_a_run_paused_past_the_limit_is_stopped_with_the_reason(store):
    run_id = store.create_run(_spec(4))

    def on_event(event):
        if event["event"] == "epoch" and event["epoch"] == 1:
            store.send_command(run_id, "pause")

    result = _run(store, run_id, on_event, Limits(max_paused_seconds=0.5))
    record = store.get(run_id)
    assert result.status == "cancelled" and record.status == "failed"  # the trainer stopped; the store says why
    assert "paused" in record.error and "limit" in record.error
    assert len(store.epochs(run_id)) == 1 and record.paused is None


def test_through_fit_pace_acts_before_each_epoch_and_a_resumed_run_ends_where_the_whole_one_does(tmp_path):
    from kfcore.training.train import Resume, train

    whole = train(parse_spec(_spec(4)), fast=False, model_path=tmp_path / "whole.keras")
    parent = train(parse_spec(_spec(2)), fast=False, model_path=tmp_path / "parent.keras")
    calls = []

    def pace(model, hold):
        calls.append(float(model.optimizer.learning_rate))
        return None

    child = train(
        parse_spec(_spec(2)),
        fast=False,
        model_path=tmp_path / "child.keras",
        pace=pace,
        resume=Resume(str(tmp_path / "parent.keras"), 2),
    )
    assert whole.status == parent.status == child.status == "finished", child.error
    assert len(calls) == 2 and [h["epoch"] for h in child.history] == [3, 4]
    _assert_same_weights(
        keras.models.load_model(tmp_path / "child.keras").get_weights(),
        keras.models.load_model(tmp_path / "whole.keras").get_weights(),
    )

    def stop_now(model, hold):
        return 0

    assert train(parse_spec(_spec(2)), fast=False, pace=stop_now).status == "cancelled"
    assert train(parse_spec(_spec(2)), fast=True, pace=stop_now).status == "cancelled"


def test_stop_while_paused_cancels_the_run(store):
    run_id = store.create_run(_spec(4))

    def on_event(event):
        if event["event"] == "epoch" and event["epoch"] == 1:
            store.send_command(run_id, "pause")
            threading.Timer(0.5, store.request_cancel, (run_id,)).start()

    _run(store, run_id, on_event)
    record = store.get(run_id)
    assert record.status == "cancelled" and len(store.epochs(run_id)) == 1 and record.paused is None


def _saved_weights(store, run_id):
    return keras.models.load_model(store.run_dir(run_id) / "model.keras").get_weights()


def test_a_stopped_run_saves_the_state_of_its_last_epoch_and_continues_from_it(store, uninterrupted):
    run_id = store.create_run(_spec(6))

    def on_event(event):
        if event["event"] == "epoch" and event["epoch"] == 1:
            store.request_cancel(run_id)

    assert _run(store, run_id, on_event).status == "cancelled"
    done = len(store.epochs(run_id))
    assert 1 <= done < 6
    same_length = store.create_run(_spec(done))
    assert _run(store, same_length).status == "finished"
    _assert_same_weights(_saved_weights(store, run_id), _weights(store, same_length))  # no epoch trained unrecorded

    child = continue_run(store, run_id, 6 - done)
    assert _run(store, child).status == "finished"
    assert [e["epoch"] for e in store.epochs(child)] == list(range(done + 1, 7))
    _assert_same_weights(_weights(store, child), _weights(store, uninterrupted))


def test_a_run_stopped_before_its_first_epoch_says_it_has_nothing_to_continue_from(store):
    run_id = store.create_run(_spec(3))
    assert store.request_cancel(run_id) == "cancelled"
    with pytest.raises(ValueError, match="stopped before it saved a model"):
        continue_run(store, run_id, 3)


def test_continue_refuses_a_cosine_schedule_and_a_new_rate_on_a_decaying_one(store):
    cosine = store.create_run(_spec(2, schedule="cosine"))
    exponential = store.create_run(_spec(2, schedule="exponential", decay_rate=0.9))
    assert _run(store, cosine).status == _run(store, exponential).status == "finished"
    with pytest.raises(ValueError, match="cosine decay planned over its own epochs"):
        continue_run(store, cosine, 2)
    with pytest.raises(ValueError, match="exponential schedule"):
        continue_run(store, exponential, 2, learning_rate=0.01)
    child = continue_run(store, exponential, 2)  # decaying on from its step count: no restart, no jump
    assert _run(store, child).status == "finished"
    rates = [e["learning_rate"] for e in store.epochs(exponential) + store.epochs(child)]
    steps = store.get(exponential).info["steps_per_epoch"]
    assert steps > 1 and rates == pytest.approx([0.02 * 0.9**e for e in range(1, 5)], rel=1e-4)  # per epoch


def test_a_continued_run_trains_at_the_rate_its_parent_was_changed_to(store):
    run_id = store.create_run(_spec(3))

    def on_event(event):
        if event["event"] == "epoch" and event["epoch"] == 1:
            store.send_command(run_id, "learning_rate", 0.005)

    assert _run(store, run_id, on_event).status == "finished"
    child = continue_run(store, run_id, 2)
    assert store.get(child).spec["train"]["learning_rate"] == pytest.approx(0.005)
    assert store.get(continue_run(store, run_id, 2, learning_rate=0.1)).spec["train"]["learning_rate"] == 0.1


def test_a_live_run_on_2d_data_stores_its_picture_and_a_paused_one_shows_the_epoch_it_waits_at(store):
    spec = _spec(4)
    spec["data"] = {"source": "builtin", "name": "spiral"}
    run_id = store.create_run(spec)
    seen = {}

    def on_event(event):
        if event["event"] == "epoch" and event["epoch"] == 1:
            store.send_command(run_id, "pause")
            store.send_command(run_id, "step")
        elif event["event"] == "epoch" and event["epoch"] == 2:  # paused after the stepped epoch: look, then resume

            def look():
                seen["picture"] = store.picture(run_id)["epoch"]
                store.send_command(run_id, "resume")

            threading.Timer(0.5, look).start()

    assert _run(store, run_id, on_event).status == "finished"
    assert seen["picture"] == 2
    picture = store.picture(run_id)
    assert picture["epoch"] == 4  # the trained model's, whatever the rate allowed before
    assert [len(layer) for layer in picture["units"]] == [8, 1] and len(picture["points"]) > 0
    assert np.asarray(picture["boundary"]["values"]).shape == (40, 40)
