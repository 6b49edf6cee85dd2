"""Hosted mode in a real browser: the owner cookie that makes a run (and an upload) "this browser's" across reloads.

A server of its own with KF_HOSTED=1. One browser context trains a tiny run, reloads the tab and still
finds the run on Runs (the page set the `kf_owner` cookie, the reloaded session read it back); a second
context, another person, does not see it on Runs, and its run link shows it read-only with Fork.
AppTest cannot send cookies, so only a browser can check this. Screenshots land in artifacts/browser/.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from kfcore.spec import RunSpec
from tests.browser.conftest import (
    VIEWPORT,
    choose,
    exceptions,
    goto,
    nav,
    shot,
    start_server,
    stop_server,
    wait_idle,
)

TINY = RunSpec.from_dict(
    {
        "data": {"source": "builtin", "name": "iris"},
        "layers": [{"type": "Dense", "units": 8, "activation": "relu"}],
        "train": {"epochs": 2},
    }
)
RUN_DEADLINE_S = 60  # the worker imports TensorFlow first


@pytest.fixture(scope="module")
def hosted_server():
    home = Path(tempfile.mkdtemp(prefix="kf-hosted-"))
    server = start_server(home=home, extra_env={"KF_HOSTED": "1"})
    try:
        yield server
    finally:
        stop_server(server)
        shutil.rmtree(home, ignore_errors=True)


def owner_cookie(context) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == "kf_owner"), None)


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def assert_no_exception(page) -> None:
    found = exceptions(page)
    assert not found, f"exception on {page.url}: {found}"


@pytest.mark.timeout(90)
def test_a_run_stays_with_its_browser_across_reloads_and_is_read_only_to_another(browser, hosted_server):
    store = hosted_server.store()
    mine = browser.new_context(base_url=hosted_server.url, viewport=VIEWPORT)
    other = browser.new_context(base_url=hosted_server.url, viewport=VIEWPORT)
    try:
        # 1. One browser trains a tiny run (the experiment comes from a share link); the page set its cookie.
        page = mine.new_page()
        goto(page, f"/train?spec={TINY.to_url()}")
        token = owner_cookie(mine)
        assert token and re.fullmatch(r"[0-9a-f]{32}", token), mine.cookies()
        assert "Server limits" in main_text(page)
        page.locator(".st-key-train button").click()
        page.wait_for_function("() => new URLSearchParams(location.search).get('run')")
        run_id = page.evaluate("() => new URLSearchParams(location.search).get('run')")
        assert store.get(run_id).owner == token  # the session's owner is the cookie's token
        name = store.get(run_id).name

        # 2. Reload the tab on Runs (while the run trains): a new session, the same owner through the cookie.
        nav(page, "Runs")
        page.reload()
        wait_idle(page)
        assert_no_exception(page)
        assert owner_cookie(mine) == token
        assert page.locator(".st-key-manage_run input").input_value().startswith(name)

        # 3. Another person: Runs lists nothing; the run link shows the finished run read-only, with Fork.
        theirs = other.new_page()
        goto(theirs, "/runs")
        assert "No runs yet" in main_text(theirs)
        assert owner_cookie(other) not in (None, token)
        goto(page, f"/train?run={run_id}")  # the run's own page says when it has finished
        expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("finished", timeout=RUN_DEADLINE_S * 1000)
        assert store.get(run_id).status == "finished", store.get(run_id).error
        goto(theirs, f"/evaluate?run={run_id}")
        assert_no_exception(theirs)
        assert theirs.locator(".st-key-eval_run input").input_value().startswith(name)
        assert "Shared run — fork it to change it" in theirs.locator(".st-key-shared_run").inner_text()
        assert theirs.locator(".st-key-rename_run, .st-key-delete_run").count() == 0
        shot(theirs, "hosted-shared-run")
        theirs.locator(".st-key-fork_run button").click()
        wait_idle(theirs)
        assert "Forked" in theirs.locator(".st-key-shared_run").inner_text()
        nav(theirs, "Runs")
        assert "No runs yet" in main_text(theirs)  # forking copies the experiment, not the run

        # 4. Back in the first browser, the run is still its own to rename.
        goto(page, "/runs")
        assert page.locator(".st-key-rename_run input").input_value() == name
        assert store.get(run_id).owner == token
    finally:
        mine.close()
        other.close()


@pytest.mark.timeout(90)
def test_an_upload_is_its_browsers_and_its_share_link_shows_no_server_path(browser, hosted_server, tmp_path):
    table = tmp_path / "flowers.csv"
    table.write_text("a,b,class\n" + "\n".join(f"{i % 5},{(i * 3) % 7},{'x' if i % 3 else 'y'}" for i in range(60)))
    root = str(Path(hosted_server.store_dir).resolve())
    mine = browser.new_context(base_url=hosted_server.url, viewport=VIEWPORT)
    other = browser.new_context(base_url=hosted_server.url, viewport=VIEWPORT)
    try:
        page = mine.new_page()
        goto(page, "/data")
        choose(page, "dataset", "Upload a file (upload)")
        page.locator(".st-key-upload input[type=file]").set_input_files(str(table))
        expect(page.locator(".st-key-target_column input")).to_have_value("class")
        expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("flowers")
        wait_idle(page)
        page.locator(".st-key-share button").first.click()
        link = page.locator('[data-testid="stPopoverBody"] code').first.inner_text().strip()
        assert link.startswith(f"{hosted_server.url}/train?spec=")
        assert root not in link and root not in page.content()
        shot(page, "hosted-upload")

        theirs = other.new_page()  # another person, given the link
        theirs.goto(link)
        expect(theirs.locator('[data-testid="stApp"]')).to_contain_text(
            "'flowers.csv' was uploaded from another browser"
        )
        assert_no_exception(theirs)
        assert root not in theirs.content()
        assert "flowers" not in theirs.locator('[data-testid="stSidebar"]').inner_text()

        again = mine.new_page()  # the same browser (its cookie), in a new tab
        again.goto(link)
        expect(again.locator('[data-testid="stSidebar"]')).to_contain_text("flowers")
        wait_idle(again)
        assert "another browser" not in again.locator('[data-testid="stApp"]').inner_text()
    finally:
        mine.close()
        other.close()
