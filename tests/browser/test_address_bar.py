"""The address bar is the experiment, in Chromium: edits land in ?spec= without history entries of their own; a
reload, a fresh browser and back/forward bring the experiment of that address back."""

from __future__ import annotations

import re
import urllib.parse

from playwright.sync_api import expect

from kfcore.spec import RunSpec
from tests.browser.conftest import VIEWPORT, choose, exceptions, goto, nav, set_slider


def address_spec(page) -> RunSpec:
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["spec"][0]
    return RunSpec.from_url(token)


def epochs_thumb(page):
    return page.locator(".st-key-epochs input[type=range]")


def test_the_address_bar_keeps_the_experiment_through_reload_a_fresh_browser_and_back_forward(
    page, browser, app_server
):
    goto(page, "/train")
    expect(page).not_to_have_url(re.compile(r"spec="))  # the defaults keep the address bare
    entries = page.evaluate("history.length")
    set_slider(page, "epochs", 17)
    expect(page).to_have_url(re.compile(r"/train\?(.*&)?spec="))
    assert address_spec(page).train.epochs == 17
    assert page.evaluate("history.length") == entries  # seven key presses, seven reruns, no new entry

    page.reload()
    expect(epochs_thumb(page)).to_have_value("17")

    fresh = browser.new_context(base_url=app_server.url, viewport=VIEWPORT)
    try:
        other = fresh.new_page()
        other.goto(page.url)
        expect(epochs_thumb(other)).to_have_value("17")
    finally:
        fresh.close()

    nav(page, "Data")  # a page change is a history entry; the experiment follows into its address
    expect(page).to_have_url(re.compile(r"/data\?(.*&)?spec="))
    choose(page, "dataset", "iris (built-in)")
    expect(page).to_have_url(re.compile(r"/data\?(.*&)?spec="))
    assert (address_spec(page).data.name, address_spec(page).train.epochs) == ("iris", 17)
    sidebar = page.locator('[data-testid="stSidebar"]')
    expect(sidebar).to_contain_text("iris")

    page.go_back()  # the Train entry: digits, 17 epochs
    expect(page).to_have_url(re.compile(r"/train\?"))
    expect(sidebar).to_contain_text("digits")
    expect(epochs_thumb(page)).to_have_value("17")
    page.go_forward()  # the Data entry: iris
    expect(page).to_have_url(re.compile(r"/data\?"))
    expect(sidebar).to_contain_text("iris")
    assert not exceptions(page)
