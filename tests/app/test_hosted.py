"""Hosted mode (KF_HOSTED=1) through Streamlit's AppTest: runs belong to the browser that made them, another
browser's run is read-only and can only be forked, the limits are listed and enforced, and a share link may
not name a file on the server.

AppTest cannot send cookies, so "this browser" is the token a session makes for itself (at.session_state
["owner"]); the cookie that carries it across reloads is tested in tests/browser/test_hosted.py, and here by
standing in for the cookie reader (ui.state.cookie_owner).
"""

import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kfcore.runs.limits import Limits, can_modify, describe, new_owner_token, valid_owner_token
from kfcore.runs.store import RunRecord, RunStore
from kfcore.spec import RunSpec
from tests.app.helpers import cookie_scripts, go, open_app, shown

REPO = Path(__file__).resolve().parents[2]
EVALUATE, RUNS, TRAIN = "app_pages/evaluate.py", "app_pages/runs.py", "app_pages/train.py"
THEIR_SPEC = RunSpec.from_dict(
    {
        "data": {"source": "builtin", "name": "wine"},
        "layers": [{"type": "Dense", "units": 24, "activation": "tanh"}],
        "train": {"epochs": 17, "learning_rate": 0.003},
    }
).to_dict()


@pytest.fixture
def kf_home(tmp_path, monkeypatch):
    home = tmp_path / "kf"
    monkeypatch.setenv("KF_HOME", str(home))
    monkeypatch.setenv("KF_HOSTED", "1")
    yield home
    from ui import state

    state.shutdown_jobs()  # no worker process outlives its test


def new_app(query: dict[str, str] | None = None) -> AppTest:
    at = open_app(query)
    assert not at.exception, [e.value for e in at.exception]
    return at


def add_run(home: Path, owner: str | None, name: str, spec: dict | None = None, finished: bool = True) -> str:
    """A run in the store as another browser (or this one) would have left it: finished, or still training."""
    store = RunStore(home)
    run_id = store.create_run(spec or THEIR_SPEC, name=name, owner=owner)
    store.start_in_process(run_id)  # "running" in this (live) process: no worker claims it, recovery keeps it
    if finished:
        store.finish(run_id, {"accuracy": 0.9, "loss": 0.3}, {}, None)
    return run_id


def runs_table(at: AppTest):
    return next(d for d in at.dataframe if d.proto.id.split("-")[-1].startswith("runs_table")).value


def texts(elements) -> str:
    return " ".join(e.value for e in elements)


# -- owner --------------------------------------------------------------------------------------------


def test_owner_tokens_are_opaque_fixed_length_hex_and_only_the_owner_may_change_a_run_when_hosted():
    token = new_owner_token()
    assert re.fullmatch(r"[0-9a-f]{32}", token) and token != new_owner_token()
    assert valid_owner_token(token) == token
    for bad in (None, "", token[:-1], token + "0", token.upper(), "../../etc/passwd", "x" * 32, f"{token[:31]};"):
        assert valid_owner_token(bad) is None
    record = RunRecord(id="r", name="r", spec={}, status="finished", created=0.0, owner=token)
    hosted, local = Limits(hosted=True), Limits()
    assert can_modify(record, token, hosted) and not can_modify(record, "someone-else", hosted)
    assert not can_modify(record, None, hosted)
    assert not can_modify(RunRecord(id="c", name="c", spec={}, status="finished", created=0.0), None, hosted)
    assert can_modify(record, "anyone", local)


def test_a_new_browser_gets_a_token_and_the_script_that_keeps_it_in_a_cookie(kf_home):
    at = new_app()
    owner = at.session_state["owner"]
    assert valid_owner_token(owner) and at.session_state["owner_cookie_ok"] is False
    scripts = [h.proto.body for h in at.sidebar.get("html")]
    assert any(f'document.cookie = "kf_owner={owner}; path=/; max-age=31536000; SameSite=Lax"' in s for s in scripts)
    go(at, TRAIN)
    assert at.session_state["owner"] == owner  # one owner for the whole session


def test_a_browser_that_comes_back_with_its_cookie_is_the_same_owner_and_finds_its_live_run(kf_home, monkeypatch):
    from ui import state

    token = new_owner_token()
    theirs = add_run(kf_home, "someone-else", "their live run", finished=False)
    time.sleep(0.01)
    mine = add_run(kf_home, token, "my live run", finished=False)
    monkeypatch.setattr(state.owner, "cookie_owner", lambda: token)  # what st.context.cookies gives a real browser
    at = new_app()
    assert at.session_state["owner"] == token and at.session_state["owner_cookie_ok"] is True
    assert not cookie_scripts(at)  # the cookie is there already: no script
    assert at.session_state["run_id"] == mine
    RunStore(kf_home).mark_cancelled(mine)
    monkeypatch.undo()
    monkeypatch.setenv("KF_HOME", str(kf_home))
    monkeypatch.setenv("KF_HOSTED", "1")
    other = new_app()  # no cookie: a different person, who must not pick up anyone's live run
    assert other.session_state["owner"] != token and other.session_state["run_id"] is None
    assert "none yet" in texts(other.sidebar.markdown)
    assert RunStore(kf_home).get(theirs).status == "running"


# -- Runs and Evaluate ----------------------------------------------------------------------------------


def test_the_runs_page_lists_only_this_browsers_runs(kf_home):
    add_run(kf_home, "someone-else", "their run")
    add_run(kf_home, None, "command-line run")
    at = new_app()
    go(at, RUNS)
    assert any("No runs yet" in i.value for i in at.info)
    add_run(kf_home, at.session_state["owner"], "my run")
    go(at, RUNS)
    assert list(runs_table(at)["Name"]) == ["my run"]
    assert at.multiselect(key="compare_runs").options == ["my run"]
    assert at.text_input(key="rename_run").value == "my run" and not at.button(key="delete_run").disabled
    go(at, EVALUATE)
    assert at.selectbox(key="eval_run").options == ["my run · wine · test accuracy 90.0%"]
    assert "shared run" not in texts(at.caption).lower() and not [b for b in at.button if b.key == "fork_run"]


def test_a_run_link_to_another_browsers_run_is_read_only_and_fork_loads_it_into_the_editor(kf_home):
    theirs = add_run(kf_home, "someone-else", "their run")
    at = new_app({"run": theirs})
    go(at, EVALUATE)
    assert at.selectbox(key="eval_run").value == theirs
    assert "Shared run — fork it to change it" in texts(at.caption)
    assert not [w for w in at.text_input if w.key == "rename_run"]
    assert not [b for b in at.button if b.key in ("delete_run", "confirm_delete")]
    go(at, "app_pages/data.py")
    at.selectbox(key="dataset").select("iris").run()
    assert at.session_state["spec"].data.name == "iris"
    go(at, EVALUATE)
    at.button(key="fork_run").click().run()
    assert not at.exception
    assert at.session_state["spec"].to_dict() == THEIR_SPEC
    assert any("Forked **their run**" in s.value for s in at.success)
    go(at, TRAIN)
    assert at.slider(key="epochs").value == 17
    at.button(key="train").click().run()
    assert not at.error, [e.value for e in at.error]
    mine = RunStore(kf_home).get(at.session_state["run_id"])
    assert mine.id != theirs and mine.owner == at.session_state["owner"] and mine.spec == THEIR_SPEC
    assert at.session_state["previous_run_id"] == theirs  # drawn dashed behind the fork
    store = RunStore(kf_home)
    assert store.get(theirs).owner == "someone-else" and store.get(theirs).name == "their run"


def test_another_browsers_live_run_opened_by_its_link_cannot_be_stopped_and_does_not_block_train(kf_home):
    theirs = add_run(kf_home, "someone-else", "their live run", finished=False)
    at = new_app({"run": theirs})
    assert at.session_state["run_id"] == theirs
    assert "shared run" in texts(at.sidebar.caption)
    go(at, TRAIN)
    assert at.button(key="stop").disabled and not at.button(key="train").disabled
    assert RunStore(kf_home).get(theirs).status == "running"


def _change_runs(theirs: str, their_live: str) -> None:
    """An app script that calls the Runs page's rename and delete functions and Stop's directly, on another
    browser's runs and on its own, as a stale page or a forged widget event would."""
    import streamlit as st

    from ui import runs_view, state

    state.init_session()
    ss = st.session_state
    mine = state.store().create_run({"data": {"source": "builtin", "name": "iris"}}, name="mine", owner=ss.owner)
    state.store().mark_cancelled(mine)
    results = {}
    for run_id in (theirs, mine):
        ss.rename_run = "renamed"
        runs_view._rename(run_id)
        renamed = state.store().get(run_id).name
        runs_view._ask_delete(run_id)
        runs_view._delete(run_id)
        results[run_id] = (renamed, state.store().get(run_id) is not None, ss.pop("runs_message", None))
    ss.results, ss.mine = results, mine
    ss.run_id = their_live
    state.stop_training()


def test_rename_delete_and_stop_refuse_another_browsers_run(kf_home):
    theirs = add_run(kf_home, "someone-else", "their run")
    their_live = add_run(kf_home, "someone-else", "their live run", finished=False)
    at = AppTest.from_function(_change_runs, args=(theirs, their_live), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not RunStore(kf_home).cancel_requested(their_live)
    results = at.session_state["results"]
    name, kept, (kind, message) = results[theirs]
    assert name == "their run" and kept and kind == "error" and "shared run" in message
    name, kept, (kind, message) = results[at.session_state["mine"]]
    assert name == "renamed" and not kept and kind == "success"
    assert RunStore(kf_home).get(theirs).name == "their run"


# -- limits ----------------------------------------------------------------------------------------------


def test_the_train_page_lists_the_server_limits_and_the_epochs_slider_stops_at_the_cap(kf_home, monkeypatch):
    monkeypatch.setenv("KF_MAX_EPOCHS", "37")
    at = go(new_app(), TRAIN)
    assert at.slider(key="epochs").max == 37
    note = texts(at.caption)
    assert "Server limits" in note and "37 epochs per run" in note and "5,000,000 parameters" in note
    assert "15 minutes per run" in note and "2 runs queued or training per browser" in note
    assert describe(Limits()) == []


def test_a_second_run_over_the_per_browser_cap_is_refused_with_the_limit_named(kf_home, monkeypatch):
    monkeypatch.setenv("KF_MAX_RUNS_PER_SESSION", "1")
    at = new_app()
    add_run(kf_home, at.session_state["owner"], "my first run", finished=False)  # e.g. from another tab
    go(at, TRAIN)
    assert not at.button(key="train").disabled
    at.button(key="train").click().run()
    assert any(
        "you already have 1 run(s) queued or training" in e and "limit per session" in e
        for e in (shown(x.value) for x in at.error)
    ), [e.value for e in at.error]
    assert len(RunStore(kf_home).list_runs()) == 1


def test_a_share_link_that_names_a_file_on_the_server_is_refused(kf_home):
    spec = RunSpec.from_dict({"data": {"source": "csv", "name": "passwords", "path": "/etc/passwd", "target": "x"}})
    at = new_app({"spec": spec.to_url()})
    assert any(
        "share link could not be opened" in e and "'passwd'" in e and "upload the file" in e
        for e in (shown(x.value) for x in at.error)
    ), [e.value for e in at.error]
    assert at.session_state["spec"].to_dict() == RunSpec().to_dict()


def test_a_run_link_whose_run_names_a_file_on_the_server_keeps_it_out_of_the_editor(kf_home):
    theirs = add_run(
        kf_home, None, "cli run", {"data": {"source": "csv", "name": "pw", "path": "/etc/passwd", "target": "x"}}
    )
    at = new_app({"run": theirs})
    assert at.session_state["run_id"] == theirs
    assert at.session_state["spec"].to_dict() == RunSpec().to_dict()
    go(at, EVALUATE)
    at.button(key="fork_run").click().run()
    assert any("cannot be loaded" in e and "'passwd'" in e for e in (shown(x.value) for x in at.error))
    assert at.session_state["spec"].to_dict() == RunSpec().to_dict()


def test_with_keras_downloads_off_the_data_page_offers_none_and_a_link_to_mnist_is_refused(kf_home, monkeypatch):
    monkeypatch.setenv("KF_KERAS_DOWNLOADS", "0")
    at = new_app()
    go(at, "app_pages/data.py")
    options = " | ".join(at.selectbox(key="dataset").options)  # the labels: "iris (built-in)", …
    assert "iris (built-in)" in options and "digits (built-in)" in options and "Upload a file" in options
    assert "Keras download" not in options and "mnist" not in options, options
    spec = RunSpec.from_dict({"data": {"source": "keras", "name": "mnist"}})
    at = new_app({"spec": spec.to_url()})
    assert any(
        "share link could not be opened" in e and "KF_KERAS_DOWNLOADS=0" in e and "built-in" in e
        for e in (shown(x.value) for x in at.error)
    ), [e.value for e in at.error]
    assert at.session_state["spec"].to_dict() == RunSpec().to_dict()


def test_keras_downloads_stay_on_by_default_when_hosted(kf_home):
    at = new_app()
    go(at, "app_pages/data.py")
    options = at.selectbox(key="dataset").options
    assert {"mnist (Keras download)", "fashion mnist (Keras download)", "cifar10 (Keras download)"} <= set(options)


# -- uploads are private -----------------------------------------------------------------------------------

FLOWERS = "a,b,class\n" + "\n".join(f"{i % 5},{(i * 3) % 7},{'x' if i % 3 else 'y'}" for i in range(60)) + "\n"


def page_text(at: AppTest) -> str:
    """Everything the session's page holds (text, labels, options, links, code), sidebar included."""
    out: list[str] = []

    def walk(node) -> None:
        if getattr(node, "proto", None) is not None:
            out.append(str(node.proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def share_token(at: AppTest) -> str:
    """The ?spec= token of the sidebar's Share link."""
    match = re.search(r"/train\?spec=([A-Za-z0-9_-]+)", page_text(at))
    assert match, "no share link on the page"
    return match.group(1)


def as_browser(monkeypatch, token: str, query: dict[str, str] | None = None) -> AppTest:
    """A new session of the browser whose cookie holds `token`."""
    from ui import state

    monkeypatch.setattr(state.owner, "cookie_owner", lambda: token)
    return new_app(query)


@pytest.fixture
def no_workers(monkeypatch):
    """These tests queue runs but never train them: no worker process (TensorFlow's import costs seconds)."""
    from kfcore.runs.jobs import JobManager

    monkeypatch.setattr(JobManager, "_ensure_workers", lambda self, want=None: None)


def test_a_share_link_to_an_upload_opens_for_its_owner_only_and_shows_no_server_path(kf_home, monkeypatch, no_workers):
    alice = new_owner_token()
    at = as_browser(monkeypatch, alice)
    go(at, "app_pages/data.py")
    at.selectbox(key="dataset").select("upload").run()
    at.file_uploader(key="upload").set_value(("flowers.csv", FLOWERS.encode(), "text/csv")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    ref = at.session_state["spec"].data.path
    assert re.fullmatch(r"[0-9a-f]{16}/flowers\.csv", ref)
    token = share_token(at)
    assert RunSpec.from_url(token).data.path == ref
    assert str(kf_home) not in page_text(at) and str(kf_home.resolve()) not in page_text(at)

    bob = as_browser(monkeypatch, new_owner_token(), {"spec": token})
    assert any(
        "share link could not be opened" in e
        and "'flowers.csv' was uploaded from another browser" in e
        and "upload your own copy" in e
        for e in (shown(x.value) for x in bob.error)
    ), [e.value for e in bob.error]
    assert bob.session_state["spec"].to_dict() == RunSpec().to_dict()
    assert str(kf_home) not in page_text(bob)

    again = as_browser(monkeypatch, alice, {"spec": token})  # the owner's own link, in a new tab
    assert not again.error, [e.value for e in again.error]
    assert again.session_state["spec"].data.path == ref
    go(again, "app_pages/data.py")
    assert not again.error and again.selectbox(key="target_column").value == "class"
    assert str(kf_home) not in page_text(again)


def test_a_run_link_to_a_shared_upload_run_shows_it_and_forks_but_reaches_no_other_upload(
    kf_home, monkeypatch, no_workers
):
    from kfcore.runs.jobs import execute_run
    from kfcore.runs.limits import check_data_access
    from ui import share

    store = RunStore(kf_home)
    alice, bob = new_owner_token(), new_owner_token()
    for ref in ("0123456789abcdef/flowers.csv", "fedcba9876543210/secret.csv"):
        (store.uploads_dir / ref).parent.mkdir(parents=True)
        (store.uploads_dir / ref).write_text(FLOWERS)
        store.add_upload(alice, ref, ref.split("/")[1])
    spec = RunSpec.from_dict(
        {
            "data": {"source": "csv", "name": "flowers", "path": "0123456789abcdef/flowers.csv", "target": "class"},
            "layers": [{"type": "Dense", "units": 4, "activation": "relu"}],
            "train": {"epochs": 1},
        }
    )
    shared = store.create_run(spec.to_dict(), name="alice's flowers", owner=alice)
    store.start_in_process(shared)
    assert execute_run(store, shared).status == "finished"  # a tiny run: real predictions for the samples

    at = as_browser(monkeypatch, bob, {"run": shared})
    go(at, EVALUATE)
    assert at.selectbox(key="eval_run").value == shared
    assert not [w.value for w in at.warning if "cannot" in w.value], [w.value for w in at.warning]
    assert at.selectbox(key="cm_true").options  # the samples of a confusion cell, from alice's file
    assert str(kf_home) not in page_text(at)
    script, problem = share._script(spec.to_json(), "alice's flowers")  # the page's "Export as Python" download
    assert problem is None and "# Put flowers.csv next to this script" in script and str(kf_home) not in script

    at.button(key="fork_run").click().run()
    assert any("Forked **alice's flowers**" in shown(s.value) for s in at.success), [e.value for e in at.error]
    assert at.session_state["spec"].data.path == "0123456789abcdef/flowers.csv"
    go(at, "app_pages/data.py")
    assert not at.error and at.selectbox(key="target_column").value == "class"
    go(at, TRAIN)
    at.button(key="train").click().run()
    assert not at.error, [e.value for e in at.error]
    fork = store.get(at.session_state["run_id"])
    assert fork.owner == bob
    check_data_access(spec.data, Limits.from_env(), store, fork.owner)  # what the worker asks before training it

    edited = RunSpec.from_url(share_token(at))
    edited.data.path = "fedcba9876543210/secret.csv"  # the fork's link, pointed at alice's other upload
    again = as_browser(monkeypatch, bob, {"spec": edited.to_url()})
    assert any("'secret.csv' was uploaded from another browser" in shown(e.value) for e in again.error)
    assert again.session_state["spec"].data.path != edited.data.path  # the tab keeps bob's queued fork instead


def test_a_malformed_limit_variable_is_named_on_the_train_page_and_its_default_stays(kf_home, monkeypatch):
    monkeypatch.setenv("KF_MAX_EPOCHS", "lots")
    monkeypatch.setenv("KF_MAX_UPLOAD_MB", "-1")
    at = go(new_app(), TRAIN)
    errors = [shown(e.value) for e in at.error]
    assert any(
        "limit settings are misconfigured: KF_MAX_EPOCHS='lots' is not a whole number, so its default of 200 applies"
        in e
        and "KF_MAX_UPLOAD_MB='-1'" in e
        for e in errors
    ), errors
    assert at.slider(key="epochs").max == 200  # hosted mode's cap, not lifted by the typo
    assert "200 epochs per run" in texts(at.caption) and "50 MB per upload" in texts(at.caption)
    go(at, "app_pages/model.py")
    assert not at.error, [e.value for e in at.error]  # a sound model under the defaults: nothing to refuse


def test_the_model_page_refuses_a_model_over_a_limit_with_the_trainers_own_words(kf_home, monkeypatch):
    """The Model page asks kfcore.training.train.assess, as prepare() does before training: the same refusal, word for word."""
    from kfcore.runs.limits import LimitError
    from kfcore.training.train import prepare

    monkeypatch.setenv("KF_MAX_PARAMS", "1000")
    at = new_app()
    spec = at.session_state["spec"]
    with pytest.raises(LimitError) as refused:
        prepare(spec, limits=Limits.from_env())
    go(at, "app_pages/model.py")
    errors = [shown(e.value) for e in at.error]
    assert f"This model cannot train on this server: {refused.value}" in errors, errors
    layers = list(at.dataframe[0].value["Layer"])  # the model is sound: its table stays, input to output
    assert layers[0] == "Input" and layers[-1].startswith("Output")
