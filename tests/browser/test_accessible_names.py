"""Icon-only buttons have names a screen reader reads and Playwright's get_by_role finds: the layer editor's move,
duplicate and remove buttons are named by what they do, not by their icon ("arrow_upward icon"), and the name
follows the layer's place after a redraw."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import goto, wait_idle


@pytest.mark.timeout(120)
def test_the_layer_editors_icon_buttons_are_named_by_what_they_do(page):
    goto(page, "/model")
    main = page.locator('[data-testid="stMain"]')
    expect(main.get_by_role("button", name="Duplicate layer 1", exact=True)).to_be_visible()
    expect(main.get_by_role("button", name="Move layer 1 up", exact=True)).to_be_disabled()
    expect(main.get_by_role("button", name="Move layer 1 down", exact=True)).to_be_disabled()
    expect(main.get_by_role("button", name="Remove layer 1", exact=True)).to_be_enabled()
    main.get_by_role("button", name="Duplicate layer 1", exact=True).click()
    wait_idle(page)
    # The new card's buttons are named too (the names are given again as Streamlit draws them).
    expect(main.get_by_role("button", name="Move layer 2 up", exact=True)).to_be_enabled()
    expect(main.get_by_role("button", name="Move layer 1 down", exact=True)).to_be_enabled()
    assert main.get_by_role("button", name="arrow_upward icon").count() == 0
    main.get_by_role("button", name="Remove layer 2", exact=True).click()
    wait_idle(page)
    expect(main.get_by_role("button", name="Remove layer 2", exact=True)).to_have_count(0)
    expect(main.get_by_role("button", name="Remove layer 1", exact=True)).to_have_count(1)
