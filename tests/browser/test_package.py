"""`pip install .` gives a `kfstudio` command that serves the dashboard: started from a folder outside the checkout
(tests/wheel.py), its home page renders in Chromium and its links lead to the Data page, which shows the default set."""

from __future__ import annotations

import subprocess

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import IDLE_TIMEOUT_S, VIEWPORT, exceptions, free_port, wait_healthy
from tests.wheel import installed_venv, outside_env


@pytest.mark.timeout(300)
def test_the_installed_kfstudio_command_serves_the_dashboard(browser, tmp_path):
    venv = installed_venv(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [venv / "bin" / "kfstudio", "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=tmp_path,
        env=outside_env(KF_HOME=str(tmp_path / "store")),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_healthy(url, server)
        context = browser.new_context(base_url=url, viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(IDLE_TIMEOUT_S * 1000)
        page.goto("/")
        expect(page.get_by_role("heading", name="KF Studio").first).to_be_visible()
        page.get_by_role("link", name="1 · Data").first.click()
        expect(page.locator('[data-testid="stMain"]')).to_contain_text("1,797 handwritten digits")
        assert not exceptions(page)
        context.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    text = (tmp_path / "server.log").read_text()
    assert "Traceback" not in text, text
