"""Hosted sign-in end to end: Chromium, a hosted server with [auth] secrets, and a real OpenID Connect provider
(oidc-provider-mock, in a thread of this process) whose sign-in form takes the user's subject.

Alice signs in and trains a tiny run; in a fresh browser she signs in again and finds it (the owner is her account,
not a cookie); Bob sees none of her runs and her run's link read-only; signing out brings "Sign in" back and Train
refuses. The server gets its own secrets file (STREAMLIT_SECRETS_FILES), never the repository's .streamlit/.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from kfcore.runs.limits import account_owner_token
from kfcore.spec import RunSpec
from tests.browser.conftest import VIEWPORT, exceptions, goto, nav, shot, start_server, stop_server, wait_idle

TINY = RunSpec.from_dict(
    {
        "data": {"source": "builtin", "name": "iris"},
        "layers": [{"type": "Dense", "units": 8, "activation": "relu"}],
        "train": {"epochs": 2},
    }
)
RUN_DEADLINE_MS = 90_000  # the worker imports TensorFlow first, on a shared 2-core machine
SIGN_IN_FIRST = "Sign in (in the sidebar) to train or upload data"


@pytest.fixture(scope="module")
def provider():
    """A real OpenID Connect provider on a free port of 127.0.0.1; its issuer is its own URL."""
    mock = pytest.importorskip("oidc_provider_mock")
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, mock.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture(scope="module")
def accounts_server(provider):
    home = Path(tempfile.mkdtemp(prefix="kf-accounts-"))
    home.mkdir(exist_ok=True)
    secrets_file = home / "secrets.toml"
    # Streamlit fills in {port}: the server's port is chosen when it starts.
    secrets_file.write_text(f"""[auth]
redirect_uri = "http://127.0.0.1:{{port}}/oauth2callback"
cookie_secret = "{secrets.token_hex(32)}"
client_id = "kf-studio"
client_secret = "{secrets.token_hex(16)}"
server_metadata_url = "{provider}/.well-known/openid-configuration"
""")
    server = start_server(home=home, extra_env={"KF_HOSTED": "1", "STREAMLIT_SECRETS_FILES": str(secrets_file)})
    try:
        yield server
    finally:
        stop_server(server)
        shutil.rmtree(home, ignore_errors=True)


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def assert_no_exception(page) -> None:
    found = exceptions(page)
    assert not found, f"exception on {page.url}: {found}"


def sign_in(context, server, subject: str):
    """A page of `context` signed in as `subject`: Sign in, the provider's form, back on the app's home page."""
    from playwright.sync_api import expect

    page = context.new_page()
    goto(page, "/")
    page.locator(".st-key-sign_in button").click()
    page.locator('input[name="sub"]').fill(subject)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{server.url}/**")
    wait_idle(page)
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text(f"Signed in as {subject}")
    assert_no_exception(page)
    return page


@pytest.mark.timeout(240)
def test_runs_belong_to_the_signed_in_account_across_browsers_and_sign_out_ends_it(browser, accounts_server, provider):
    from playwright.sync_api import expect

    store = accounts_server.store()
    alice_owner = account_owner_token(provider, "alice")
    contexts = [browser.new_context(base_url=accounts_server.url, viewport=VIEWPORT) for _ in range(3)]
    first, second, bob = contexts
    try:
        # 1. Not signed in: Sign in in the sidebar, Train refuses and says why, no owner cookie.
        visitor = second.new_page()
        goto(visitor, f"/train?spec={TINY.to_url()}")
        expect(visitor.locator(".st-key-sign_in button")).to_be_visible()
        expect(visitor.locator(".st-key-train button")).to_be_disabled()
        expect(visitor.locator('[data-testid="stMain"]')).to_contain_text(SIGN_IN_FIRST)
        visitor.close()

        # 2. Alice signs in and trains a tiny run: it is her account's, and no owner cookie was set.
        page = sign_in(first, accounts_server, "alice")
        goto(page, f"/train?spec={TINY.to_url()}")
        page.locator(".st-key-train button").click()
        page.wait_for_function("() => new URLSearchParams(location.search).get('run')")
        run_id = page.evaluate("() => new URLSearchParams(location.search).get('run')")
        assert store.get(run_id).owner == alice_owner
        assert "kf_owner" not in {c["name"] for c in first.cookies()}
        name = store.get(run_id).name
        expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("finished", timeout=RUN_DEADLINE_MS)
        assert store.get(run_id).status == "finished", store.get(run_id).error
        nav(page, "Runs")
        assert page.locator(".st-key-rename_run input").input_value() == name

        # 3. Another browser, Alice again: the same run, hers to rename.
        again = sign_in(second, accounts_server, "alice")
        goto(again, "/runs")
        assert_no_exception(again)
        assert again.locator(".st-key-rename_run input").input_value() == name

        # 4. Bob: none of Alice's runs, and her run's link is read-only.
        theirs = sign_in(bob, accounts_server, "bob")
        goto(theirs, "/runs")
        assert "No runs yet" in main_text(theirs)
        goto(theirs, f"/evaluate?run={run_id}")
        assert_no_exception(theirs)
        assert theirs.locator(".st-key-eval_run input").input_value().startswith(name)
        assert "Shared run — fork it to change it" in theirs.locator(".st-key-shared_run").inner_text()
        assert theirs.locator(".st-key-rename_run, .st-key-delete_run").count() == 0
        shot(theirs, "accounts-shared-run")

        # 5. Alice signs out in the second browser (the provider confirms): Sign in is back, Train refuses.
        again.locator(".st-key-sign_out button").click()
        again.get_by_role("button", name="End session").click()
        again.wait_for_url(re.compile(re.escape(accounts_server.url) + r"/(\?.*)?$"))
        wait_idle(again)
        expect(again.locator(".st-key-sign_in button")).to_be_visible()
        expect(again.locator('[data-testid="stSidebar"]')).not_to_contain_text("Signed in as")
        goto(again, "/runs")
        assert "No runs yet" in main_text(again)
        goto(again, f"/train?spec={TINY.to_url()}")
        expect(again.locator(".st-key-train button")).to_be_disabled()
        expect(again.locator('[data-testid="stMain"]')).to_contain_text(SIGN_IN_FIRST)
        shot(again, "accounts-signed-out")
        assert store.get(run_id).owner == alice_owner and len(store.list_runs()) == 1
    finally:
        for context in contexts:
            context.close()
