"""Hosted mode with sign-in (an [auth] section in the secrets, ui/auth.py) through Streamlit's AppTest: the owner is
the signed-in account, the same in every session; a visitor who has not signed in sees nobody's runs and may neither
train nor upload; the browser's owner cookie is neither read nor set.

AppTest seeds st.user (at.user) and st.secrets (at.secrets) but has no identity provider: the real sign-in, across
browsers and with sign-out, is tested in tests/browser/test_accounts.py.
"""

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kfcore.runs.limits import account_owner_token, new_owner_token
from kfcore.runs.store import RunStore
from tests.app.helpers import APP, cookie_scripts, go

RUNS, TRAIN, DATA = "app_pages/runs.py", "app_pages/train.py", "app_pages/data.py"
AUTH = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "s" * 32,
    "client_id": "kf",
    "client_secret": "x",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}
ISSUER = "https://id.example.org"
ALICE = {"is_logged_in": True, "iss": ISSUER, "sub": "alice-42", "name": "Alice *Example*", "email": "a@example.org"}
SPEC = {"data": {"source": "builtin", "name": "iris"}, "layers": [{"type": "Dense", "units": 8}]}


@pytest.fixture
def kf_home(tmp_path, monkeypatch):
    home = tmp_path / "kf"
    monkeypatch.setenv("KF_HOME", str(home))
    monkeypatch.setenv("KF_HOSTED", "1")
    yield home
    from ui import state

    state.shutdown_jobs()


def signed(user: dict | None, auth: dict | None = AUTH) -> AppTest:
    """A new session as `user` (None: a visitor who has not signed in) on a server with these [auth] secrets."""
    at = AppTest.from_file(APP, default_timeout=30)
    if auth is not None:
        at.secrets["auth"] = auth
    at.user = user if user is not None else {"is_logged_in": False}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def add_run(home: Path, owner: str | None, name: str) -> str:
    store = RunStore(home)
    run_id = store.create_run(SPEC, name=name, owner=owner)
    store.start_in_process(run_id)
    store.finish(run_id, {"accuracy": 0.9, "loss": 0.3}, {}, None)
    return run_id


def sidebar_buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.sidebar.button]


def test_an_accounts_owner_token_is_stable_per_identity_and_has_the_owner_token_form():
    token = account_owner_token(ISSUER, "alice-42")
    assert re.fullmatch(r"[0-9a-f]{32}", token) and token == account_owner_token(ISSUER, "alice-42")
    others = {
        account_owner_token(ISSUER, "bob"),
        account_owner_token("https://other.example.org", "alice-42"),
        account_owner_token(ISSUER + "a", "lice-42"),
        account_owner_token("", ISSUER + "alice-42"),
    }
    assert token not in others and len(others) == 4


def test_a_signed_in_session_is_its_account_in_every_session_and_never_sets_the_owner_cookie(kf_home, monkeypatch):
    from ui import state

    monkeypatch.setattr(state.owner, "cookie_owner", lambda: new_owner_token())  # a browser that has an owner cookie
    at = signed(ALICE)
    owner = account_owner_token(ISSUER, "alice-42")
    assert at.session_state["owner"] == owner and at.session_state["owner_cookie_ok"] is True
    assert not any("kf_owner" in h.proto.body for h in at.sidebar.get("html"))
    assert "Signed in as Alice *Example*" in [t.value for t in at.sidebar.text]  # as text, not Markdown
    assert sidebar_buttons(at) == ["Sign out"]
    add_run(kf_home, owner, "alice's run")
    add_run(kf_home, "someone-else", "their run")
    again = go(signed(ALICE), RUNS)  # another browser, the same account
    assert again.session_state["owner"] == owner
    assert again.text_input(key="rename_run").value == "alice's run"
    go(again, TRAIN)
    again.button(key="train").click().run()
    assert not again.error, [e.value for e in again.error]
    assert RunStore(kf_home).get(again.session_state["run_id"]).owner == owner
    bob = go(signed({**ALICE, "sub": "bob", "name": "Bob"}), RUNS)
    assert bob.session_state["owner"] not in (None, owner)
    assert any("No runs yet" in i.value for i in bob.info)


def test_a_visitor_who_has_not_signed_in_sees_no_runs_and_may_neither_train_nor_upload(kf_home, monkeypatch):
    from ui import state

    cookie = new_owner_token()
    add_run(kf_home, cookie, "the cookie's run")
    add_run(kf_home, None, "command-line run")
    monkeypatch.setattr(state.owner, "cookie_owner", lambda: cookie)  # with sign-in, the cookie owner is not used
    at = signed(None)
    assert at.session_state["owner"] is None
    assert sidebar_buttons(at) == ["Sign in"] and not cookie_scripts(at)
    go(at, RUNS)
    assert any("No runs yet" in i.value for i in at.info)
    go(at, TRAIN)
    assert at.button(key="train").disabled
    assert any("Sign in (in the sidebar) to train or upload data" in i.value for i in at.info)
    go(at, DATA)
    at.selectbox(key="dataset").select("upload").run()
    assert not at.get("file_uploader")
    assert any("Sign in (in the sidebar) to train or upload data" in i.value for i in at.info)
    assert len(RunStore(kf_home).list_runs()) == 2


def _forged_train() -> None:
    """Press Train's callback directly, as a stale page or a forged widget event would."""
    import streamlit as st

    from ui import state

    state.init_session()
    state.start_training()
    st.session_state.refused = st.session_state.train_error


def test_a_forged_train_without_signing_in_is_refused(kf_home):
    at = AppTest.from_function(_forged_train, default_timeout=30)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Sign in" in at.session_state["refused"] and RunStore(kf_home).list_runs() == []


def test_without_auth_secrets_hosted_mode_keeps_the_browser_cookie_owner(kf_home):
    at = signed(ALICE, auth=None)  # st.user says nothing without [auth]: the cookie decides, as before
    owner = at.session_state["owner"]
    assert owner != account_owner_token(ISSUER, "alice-42") and at.session_state["owner_cookie_ok"] is False
    assert any(f"kf_owner={owner}" in h.proto.body for h in at.sidebar.get("html"))
    assert "Sign in" not in sidebar_buttons(at) and "Sign out" not in sidebar_buttons(at)


def test_sign_in_on_a_server_whose_auth_secrets_are_incomplete_says_so_in_the_sidebar(kf_home):
    at = signed(None, auth={"client_id": "kf"})  # no redirect_uri, cookie_secret, …
    at.sidebar.button(key="sign_in").click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and errors[0].startswith("Sign-in is not available: ")
    assert "check its [auth] secrets" in errors[0]
