"""The Train page's live controls, against a run the store says is training (this test process holds its lease, so
no worker trains it): Pause, Resume, Step and "Apply to this run" send their commands; a paused run says it holds
a worker; the pictures appear beside the curves; Continue starts a child of a finished or stopped run, and a run
stopped before its first epoch says it has nothing to continue from."""

import os

import pytest

from kfcore.runs.store import RunStore
from kfcore.spec import RunSpec
from tests.app.helpers import go, open_app

SPEC = {
    "data": {"source": "builtin", "name": "spiral"},
    "layers": [{"type": "Dense", "units": 4, "activation": "tanh"}],
    "train": {"epochs": 100, "learning_rate": 0.03},
}
INFO = {"epochs": 100, "task": "binary", "input_shape": [2], "class_names": ["0", "1"], "n_train": 10}
PICTURE = {
    "epoch": 2,
    "points": [[0.0, 0.0, 0], [1.0, 1.0, 1]],
    "boundary": {"x": [0.0, 1.0], "y": [0.0, 1.0], "values": [[0.2, 0.7], [0.4, 0.9]], "kind": "probability"},
    "weights": [[[0.5] * 4] * 2, [[0.1]] * 4],
    "biases": [[0.0] * 4, [0.0]],
}


@pytest.fixture
def kf_home(tmp_path, monkeypatch):
    home = tmp_path / "kf"
    monkeypatch.setenv("KF_HOME", str(home))
    yield home
    from ui import state

    state.shutdown_jobs()


@pytest.fixture
def store(kf_home):
    return RunStore(kf_home)


def training_run(store, **train):
    spec = RunSpec.from_dict({**SPEC, "train": {**SPEC["train"], **train}}).to_dict()
    run_id = store.create_run(spec, name="live one")
    assert store.claim_next(os.getpid()).id == run_id  # running, with this process's lease
    store.set_info(run_id, {}, INFO)
    for epoch in (1, 2):
        store.append_epoch(run_id, epoch, {"loss": 1.0 / epoch, "learning_rate": 0.03})
    return run_id


def train_page(run_id):
    at = open_app({"run": run_id})
    return go(at, "app_pages/train.py")


def test_pause_resume_step_and_a_new_rate_are_sent_to_the_running_run(store):
    run_id = training_run(store)
    at = train_page(run_id)
    assert not at.button(key="pause").disabled and at.button(key="resume").disabled and at.button(key="step").disabled
    assert "next run" in " ".join(c.value for c in at.caption)  # the Hyperparameters say whose they are
    at.button(key="pause").click().run()
    assert store.take_commands(run_id) == [("pause", None)]

    store.set_paused(run_id, True)  # the worker obeyed
    at.run()
    assert at.button(key="pause").disabled and not at.button(key="resume").disabled
    assert not at.button(key="step").disabled
    assert any("paused after 2 of 100 epochs" in p.proto.text for p in at.get("progress")), "no paused status"
    assert "holds a training worker" in " ".join(m.value for m in at.sidebar.markdown)
    at.button(key="step").click().run()
    at.number_input(key="live_lr").set_value(0.005).run()
    at.button(key="apply_lr").click().run()
    at.button(key="resume").click().run()
    assert store.take_commands(run_id) == [("step", None), ("learning_rate", 0.005), ("resume", None)]
    assert not at.exception
    store.mark_cancelled(run_id)


def test_the_pictures_are_drawn_beside_the_curves(store):
    run_id = training_run(store)
    store.set_picture(run_id, PICTURE)
    at = train_page(run_id)
    ids = [c.proto.id for c in at.get("plotly_chart")]
    assert any("chart_boundary" in i for i in ids) and any("chart_network" in i for i in ids), ids
    store.mark_cancelled(run_id)


def test_a_rate_that_follows_a_schedule_cannot_be_changed_while_it_trains(store):
    run_id = training_run(store, schedule="cosine")
    at = train_page(run_id)
    assert "live_lr" not in [n.key for n in at.number_input]
    assert any("follows the cosine schedule" in c.value for c in at.caption)
    store.mark_cancelled(run_id)


def test_continue_starts_a_child_of_a_stopped_run_that_saved_its_state(store):
    run_id = training_run(store)
    store.mark_cancelled(run_id)
    at = train_page(run_id)
    assert not [b for b in at.button if b.key == "continue"]  # no saved state: nothing to continue from
    assert any("saved no model to continue from" in c.value for c in at.caption)

    (store.run_dir(run_id)).mkdir(parents=True, exist_ok=True)
    (store.run_dir(run_id) / "model.keras").write_bytes(b"state")  # what Stop saves once an epoch ran
    at.run()
    at.number_input(key="continue_epochs").set_value(30).run()
    at.button(key="continue").click().run()
    assert not at.exception
    child = store.get(at.session_state["run_id"])
    assert child.id != run_id and child.parent == run_id and child.continues
    assert child.spec["train"]["epochs"] == 30
    store.request_cancel(child.id)
