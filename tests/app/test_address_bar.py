"""The address bar is the experiment: every edit lands in ?spec= (written in the page, never as a history entry),
a new session restores it, and back/forward follow it."""

from types import SimpleNamespace

import pytest

from kfcore.runs.store import RunStore
from kfcore.spec import RunSpec
from tests.app.helpers import address_token, go, open_app


@pytest.fixture
def kf_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KF_HOME", str(tmp_path))
    yield tmp_path
    from ui import state

    state.shutdown_jobs()


def test_the_default_experiment_keeps_the_address_bare_and_every_edit_writes_it(kf_home):
    at = open_app(timeout_s=60)
    assert address_token(at) is None
    go(at, "app_pages/train.py")
    at.slider(key="epochs").set_value(17).run()
    token = address_token(at)
    assert token and RunSpec.from_url(token).train.epochs == 17
    # Streamlit's own parameters stay as they were: a write there would be a history entry per slider tick.
    assert "spec" not in at.query_params
    go(at, "app_pages/data.py")
    at.selectbox(key="dataset").select("iris").run()
    restored = RunSpec.from_url(address_token(at))
    assert (restored.data.name, restored.train.epochs) == ("iris", 17)


def test_a_new_session_opened_from_the_address_restores_the_edited_experiment(kf_home):
    at = open_app(timeout_s=60)
    go(at, "app_pages/train.py")
    at.slider(key="epochs").set_value(23).run()
    again = open_app({"spec": address_token(at)}, timeout_s=60)  # a reload, a bookmark, another browser
    assert not again.error
    assert again.session_state["spec"].train.epochs == 23
    assert address_token(again) == address_token(at)


def back_to(at, monkeypatch, query: dict[str, str]) -> None:
    """A back/forward rerun: the browser sends that entry's address, and Streamlit marks the run as history
    navigation (what its frontend's popstate handler does; AppTest cannot send it, so the mark is patched in)."""
    from ui import state

    at.query_params.clear()
    for key, value in query.items():
        at.query_params[key] = value
    with monkeypatch.context() as mp:
        mp.setattr(state.address, "get_script_run_ctx", lambda: SimpleNamespace(is_history_navigation=True))
        at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_back_and_forward_bring_the_experiment_of_that_entry_and_a_lagging_address_changes_nothing(
    kf_home, monkeypatch
):
    at = open_app(timeout_s=60)
    go(at, "app_pages/train.py")
    at.slider(key="epochs").set_value(5).run()
    older = address_token(at)
    at.slider(key="epochs").set_value(40).run()
    # An ordinary rerun that carries an address a few edits old (the address-bar script lags): the edit stands.
    at.query_params["spec"] = older
    at.run()
    assert at.session_state["spec"].train.epochs == 40
    back_to(at, monkeypatch, {"spec": older})
    assert at.session_state["spec"].train.epochs == 5
    assert at.slider(key="epochs").value == 5
    back_to(at, monkeypatch, {})  # the first entry: the default experiment
    assert at.session_state["spec"].to_dict() == RunSpec().to_dict()


def test_back_to_an_entry_of_another_run_shows_that_run(kf_home, monkeypatch):
    store = RunStore(kf_home)
    first = store.create_run(RunSpec().to_dict(), name="first")
    second = store.create_run(RunSpec().to_dict(), name="second")
    for run_id in (first, second):
        store.start_in_process(run_id)
        store.finish(run_id, {"accuracy": 0.5, "loss": 1.0}, {}, "")
    at = open_app({"run": second, "prev": first}, timeout_s=60)
    assert at.session_state["run_id"] == second
    back_to(at, monkeypatch, {"run": first})
    assert at.session_state["run_id"] == first and at.query_params["run"] == first


def test_a_damaged_address_keeps_the_notice_and_writes_the_default_back(kf_home):
    at = open_app({"spec": RunSpec().to_url()[:-30] + "x"}, timeout_s=60)
    assert any("share link could not be opened" in e.value for e in at.error)
    assert at.session_state["spec"].to_dict() == RunSpec().to_dict()
    assert address_token(at) is None  # the address bar drops the damaged token: a reload does not meet it again
