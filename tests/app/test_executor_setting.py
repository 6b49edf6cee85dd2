"""A server whose executor cannot be made (a wrong KF_EXECUTOR or Ray setting): the pages still draw, and Train says
what is wrong and what to do instead of a traceback; nothing is queued."""

from kfcore.runs.store import RunStore
from tests.app.helpers import go, open_app, shown

TRAIN = "app_pages/train.py"


def test_a_wrong_executor_setting_is_explained_on_train_and_queues_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("KF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KF_HOSTED", raising=False)
    monkeypatch.setenv("KF_EXECUTOR", "ray")
    monkeypatch.setenv("KF_RAY_NUM_GPUS", "1.5")
    from ui import state

    try:
        at = open_app()
        assert not at.exception, [e.value for e in at.exception]
        go(at, TRAIN)
        at.button(key="train").click().run()
        assert not at.exception, [e.value for e in at.exception]
        errors = [shown(e.value) for e in at.error]
        assert any("KF_RAY_NUM_GPUS=1.5" in e and "a share of one GPU" in e for e in errors), errors
        assert at.session_state["run_id"] is None
        assert RunStore(tmp_path / "home").list_runs() == []
    finally:
        state.shutdown_jobs()
