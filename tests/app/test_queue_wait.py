"""A queued run says on the Train page and in the sidebar how many runs are ahead of it, about how long it waits
and what holds a worker (AppTest; no worker starts, so the queue stays as the test lays it out)."""

from __future__ import annotations

import os
import time

from kfcore.runs.jobs import JobManager
from kfcore.runs.store import RunStore
from tests.app.helpers import go, open_app, shown


def test_a_queued_run_shows_the_runs_ahead_its_wait_and_a_paused_run_holding_the_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("KF_HOME", str(tmp_path / "kf"))
    monkeypatch.setenv("KF_MAX_CONCURRENT", "1")
    monkeypatch.delenv("KF_HOSTED", raising=False)
    monkeypatch.setattr(JobManager, "_ensure_workers", lambda self, want=None: None)  # the queue stays put
    store = RunStore(tmp_path / "kf")
    spec = {"data": {"source": "builtin", "name": "digits"}, "train": {"epochs": 10}}
    running = store.create_run(spec, name="ahead")
    time.sleep(0.01)  # created after it: behind it in the queue
    ours = store.create_run(spec, name="mine")
    store.claim_next(pid=os.getpid())  # alive: the page's recovery leaves it running
    store.set_info(running, {}, {"epochs": 10, "n_train": 100})
    for e in (1, 2, 3):
        store.append_epoch(running, e, {"loss": 1.0 / e, "epoch_time": 4.0})

    at = go(open_app({"run": ours}, timeout_s=60), "app_pages/train.py")
    info = [shown(i.value) for i in at.info]
    assert any("**mine**: queued — 1 run ahead of yours, about 28 s" in i for i in info), info  # 7 epochs × 4 s
    assert any("queued — 1 run ahead of yours, about 28 s" in shown(m.value) for m in at.sidebar.markdown)

    store.set_paused(running, True)
    at.run()
    info = [shown(i.value) for i in at.info]
    assert any(
        "queued — next in line; a paused run holds a training worker until it is resumed or stopped" in i for i in info
    ), info
