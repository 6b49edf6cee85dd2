"""How a stored run is worded and measured for people: status lines, progress, ETA, best epoch."""

import time

import pytest

from kfcore.present import runview
from kfcore.runs.store import RunRecord


def record(status="running", **kw) -> RunRecord:
    kw.setdefault("spec", {"train": {"epochs": 10}})
    kw.setdefault("created", time.time())
    return RunRecord(id=kw.pop("id", "r1"), name="run 1", status=status, **kw)


def epochs(n: int, epoch_time: float = 2.0) -> list[dict]:
    return [{"epoch": e, "loss": 1.0 / e, "val_loss": 1.2 / e, "epoch_time": epoch_time} for e in range(1, n + 1)]


def test_queued_runs_show_their_place_in_the_queue(tmp_path):
    from kfcore.runs.store import RunStore

    store = RunStore(tmp_path)
    first, second, third = (store.create_run({}) for _ in range(3))
    store.claim_next(pid=1)  # the first starts training; the others wait
    assert store.queue_position(third) == 2 and store.queue_position(second) == 1
    assert store.queue_position(first) is None
    assert runview.status_line(store.get(third), [], 2) == "queued (position 2)"


def test_a_running_run_says_which_epoch_of_how_many():
    r = record(info={"epochs": 10, "n_train": 100}, progress={"epoch": 4, "step": 5, "steps": 10})
    assert runview.status_line(r, epochs(3)) == "running — epoch 4 of 10"
    assert runview.status_line(record(), []).startswith("running — starting")


def test_progress_counts_finished_epochs_plus_the_part_of_the_current_one():
    r = record(
        info={"epochs": 10, "n_train": 100}, progress={"epoch": 4, "step": 5, "steps": 10, "samples_per_s": 50.0}
    )
    p = runview.progress(r, epochs(3))
    assert p.fraction == pytest.approx(0.35) and (p.epoch, p.step, p.steps) == (4, 5, 10)
    assert p.eta_s == pytest.approx(6.5 * 2.0)  # 6.5 epochs left at 2 s each
    assert p.samples_per_s == 50.0


def test_during_the_first_epoch_there_is_no_eta_it_would_extrapolate_the_tracing():
    # Issue 12: the first epoch's pace includes tracing the graph; the old ETA here was 1.75 epochs at that pace.
    r = record(
        info={"epochs": 2, "n_train": 1000}, progress={"epoch": 1, "step": 1, "steps": 4, "samples_per_s": 500.0}
    )
    assert runview.progress(r, []).eta_s is None


def test_the_eta_leaves_the_first_epoch_out_once_steady_epochs_are_known():
    history = [{"epoch": 1, "loss": 1.0, "epoch_time": 14.0}] + [
        {"epoch": e, "loss": 1.0 / e, "epoch_time": 0.5} for e in (2, 3)
    ]
    r = record(info={"epochs": 10, "n_train": 100}, progress={"epoch": 3, "step": None})
    assert runview.progress(r, history).eta_s == pytest.approx(7 * 0.5)
    # Only the first done, the second under way: its sample rate, not the first epoch's time.
    r = record(
        info={"epochs": 10, "n_train": 1000}, progress={"epoch": 2, "step": 2, "steps": 4, "samples_per_s": 2000.0}
    )
    assert runview.progress(r, history[:1]).eta_s == pytest.approx(8.5 * 0.5)


def test_an_epoch_row_in_progress_is_not_counted_twice():
    # After an epoch event the progress row names the epoch just done, with no step.
    r = record(info={"epochs": 4}, progress={"epoch": 2, "step": None, "samples_per_s": 10.0})
    p = runview.progress(r, epochs(2))
    assert p.fraction == pytest.approx(0.5) and p.step is None and p.epoch == 3


def test_final_runs_are_worded_with_their_outcome():
    assert runview.status_line(record("finished", test={"loss": 0.1, "accuracy": 0.972}), epochs(3)) == (
        "finished — test accuracy 97.2%"
    )
    assert runview.status_line(record("finished", test={"loss": 2.0, "mae": 3.25}), []) == "finished — test mae 3.25"
    assert runview.status_line(record("failed", error="the loss became nan"), []) == "failed — the loss became nan"
    assert runview.status_line(record("cancelled"), epochs(3)) == "cancelled after 3 of 10 epochs"
    assert runview.progress(record("finished"), epochs(4)).fraction == 1.0  # early stopping still ends at 100%


def test_best_epoch_is_the_lowest_validation_loss_else_the_lowest_loss():
    history = [
        {"epoch": 1, "loss": 0.9, "val_loss": 0.8},
        {"epoch": 2, "loss": 0.5, "val_loss": 0.6},
        {"epoch": 3, "loss": 0.3, "val_loss": 0.7},
    ]
    assert runview.best_epoch(history) == 2
    assert runview.best_epoch([{k: v for k, v in h.items() if k != "val_loss"} for h in history]) == 3
    assert runview.best_epoch([]) is None


def test_durations_read_naturally():
    assert [runview.format_duration(s) for s in (None, 8.4, 125, 3720)] == ["–", "8 s", "2 min 05 s", "1 h 02 min"]


def test_metric_for_regression_is_mae_else_accuracy():
    assert runview.metric_for("regression") == "mae" and runview.metric_for("binary") == "accuracy"


def test_metrics_read_short_on_a_card():
    assert runview.format_metric("accuracy", 0.9721) == "97.2%"
    assert runview.format_metric("loss", 28448.3712) == "28,448"  # was cut off as "28448.…"
    assert runview.format_metric("mae", 0.012345) == "0.01235"
    assert runview.METRIC_NAMES["mae"] == "mean absolute error"


def test_a_paused_run_and_the_queue_behind_it_say_that_it_holds_a_worker(tmp_path):
    from kfcore.runs.store import RunStore

    store = RunStore(tmp_path)
    running, queued = store.create_run({"train": {"epochs": 10}}), store.create_run({})
    store.claim_next(pid=1)
    assert store.paused_count() == 0
    store.set_paused(running, True)
    assert store.paused_count() == 1
    assert runview.status_line(store.get(running), epochs(3)) == (
        "paused after 3 of 10 epochs — it holds a training worker until resumed or stopped"
    )
    assert runview.status_line(store.get(queued), [], 1, store.paused_count()) == (
        "queued (position 1); a paused run holds a training worker until it is resumed or stopped"
    )
    store.set_paused(running, False)
    assert store.paused_count() == 0 and store.get(running).paused is None


def test_the_wait_for_a_worker_is_the_earliest_a_worker_comes_free_after_the_runs_before():
    assert runview.estimate_wait(1, [30.0], [10.0], 0) == 40.0  # the training run, then the one queued before
    assert runview.estimate_wait(2, [30.0], [10.0], 0) == 10.0  # the free worker takes the first, then ours
    assert runview.estimate_wait(2, [30.0], [], 0) == 0.0  # a worker is free: it only waits to be claimed
    assert runview.estimate_wait(2, [30.0], [], 1) == 30.0  # the paused run holds the other worker
    assert runview.estimate_wait(1, [30.0], [], 1) is None  # paused runs hold every worker: no time tells
    assert runview.estimate_wait(1, [None], [], 0) is None


def test_a_queued_run_says_how_many_runs_are_ahead_about_how_long_and_what_holds_a_worker(tmp_path, monkeypatch):
    from kfcore.runs.store import RunStore

    clock = [1000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    store = RunStore(tmp_path)
    done = store.create_run({"train": {"epochs": 10}})
    store.claim_next(pid=1)
    clock[0] += 20.0  # 10 epochs in 20 s: 2 s an epoch paces the runs that have not started
    store.finish(done, {"accuracy": 0.9}, {}, None)
    running = store.create_run({"train": {"epochs": 10}})
    clock[0] += 1
    queued = store.create_run({"train": {"epochs": 5}})
    clock[0] += 1
    ours = store.create_run({"train": {"epochs": 3}})
    store.claim_next(pid=1)
    store.set_info(running, {}, {"epochs": 10, "n_train": 100})
    for e, logs in enumerate(epochs(3, epoch_time=3.0), start=1):
        store.append_epoch(running, e, logs)
    wait = runview.queue_wait(store, store.get(ours), workers=1)
    assert (wait.ahead, wait.paused, wait.seconds) == (2, 0, pytest.approx(7 * 3.0 + 5 * 2.0))  # ETA, then 5 × 2 s
    assert runview.status_line(store.get(ours), [], wait=wait) == "queued — 2 runs ahead of yours, about 31 s"
    wait = runview.queue_wait(store, store.get(queued), workers=2)
    assert runview.status_line(store.get(queued), [], wait=wait) == (
        "queued — 1 run ahead of yours, starting any moment"
    )
    store.set_paused(running, True)
    wait = runview.queue_wait(store, store.get(ours), workers=1)
    assert runview.status_line(store.get(ours), [], wait=wait) == (
        "queued — 1 run ahead of yours; a paused run holds a training worker until it is resumed or stopped"
    )
