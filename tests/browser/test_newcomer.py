"""The newcomer's path in a real browser against a real `streamlit run app.py` server with its own store.

Home says what the studio is for and on what it trains; every page renders without an exception; then
pick a built-in dataset, add a layer, set the epochs, press Train and watch the loss curve gain points
live, move a slider while it trains (the run still finishes), reload and find the finished run; and a
long run is stopped with Stop. Screenshots land in artifacts/browser/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from kfcore.spec import RunSpec
from tests.browser.conftest import (
    cancel_active_runs,
    chart_points,
    choose,
    current_run_id,
    exceptions,
    goto,
    nav,
    set_slider,
    shot,
    wait_idle,
    wait_until,
)

PAGES = [
    ("home", "/", "KF Studio"),
    ("data", "/data", "Data"),
    ("model", "/model", "Model"),
    ("train", "/train", "Train"),
    ("evaluate", "/evaluate", "Evaluate"),
    ("runs", "/runs", "Runs"),
    ("sweep", "/sweep", "Sweep"),
]
RUN_DEADLINE_S = 120  # a run on a busy 2-core machine, worker start included
# Small data trains hundreds of epochs a second (kfcore/training/fastloop.py): circle with 5,000 points at batch 8 takes
# about 0.05-0.1 s an epoch on 2 cores, so 100 epochs give 5-10 s of live curve to watch and move a slider in.
NEWCOMER_EPOCHS = 100
NEWCOMER_POINTS = 5000
# A run we stop long before it ends: small data trains hundreds of epochs a second, so the slider's 100 would be
# over before Stop is pressed; a link sets more.
LONG_EPOCHS = 10_000


@pytest.fixture(autouse=True)
def no_run_outlives_its_test(app_server):
    yield
    cancel_active_runs(app_server)  # KF_MAX_CONCURRENT=1: a leftover run would queue the next test's


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def sidebar_text(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def assert_no_exception(page) -> None:
    found = exceptions(page)
    assert not found, f"exception on {page.url}: {found}"


# -- landing page and every page ---------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_landing_page_says_what_the_studio_is_for_and_shows_the_hardware(page):
    goto(page, "/")
    assert page.locator("h1").first.inner_text().strip() == "KF Studio"
    text = main_text(page)
    assert "neural network" in text and "train" in text.lower(), text
    assert "This machine" in text and re.search(r"(CPU|GPU): \S+", text), text
    assert re.search(r"(CPU|GPU): \S+", sidebar_text(page))
    assert page.locator(".st-key-start button").is_enabled()
    assert_no_exception(page)
    shot(page, "01-home")
    page.locator(".st-key-start button").click()  # the way in: Start leads to the Data page
    page.wait_for_function("() => location.pathname === '/data'")
    wait_idle(page)
    assert page.locator(".st-key-dataset input").input_value() == "digits (built-in)"


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("name", "path", "title"), PAGES, ids=[p[0] for p in PAGES])
def test_every_page_renders_without_an_exception(page, name, path, title):
    goto(page, path)  # a deep link: a fresh session lands on the page itself, inside the app's frame
    assert page.locator("h1").first.inner_text().strip() == title
    assert_no_exception(page)
    assert "Device" in sidebar_text(page) and page.locator('[data-testid="stSidebarNav"] a').count() == len(PAGES)
    shot(page, f"page-{name}")


# -- the newcomer path ---------------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_newcomer_trains_watches_the_curve_grow_and_finds_the_run_after_a_reload(page, app_server):
    goto(page, "/")
    page.locator(".st-key-start button").click()
    page.wait_for_function("() => location.pathname === '/data'")
    wait_idle(page)

    # 1. Data: a built-in set.
    choose(page, "dataset", "circle (built-in)")
    set_slider(page, "n_points", NEWCOMER_POINTS)
    assert "circle" in sidebar_text(page)
    assert_no_exception(page)
    shot(page, "02-data-circle")

    # 2. Model: add a layer to the default one.
    nav(page, "Model")
    assert page.locator(".st-key-layer1").count() == 1 and page.locator(".st-key-layer2").count() == 0
    choose(page, "add_layer_type", "Dense")
    page.locator(".st-key-add_layer button").click()
    wait_idle(page)
    assert page.locator(".st-key-layer2").count() == 1
    assert "Hidden layers (2)" in main_text(page)
    assert not page.locator('[data-testid="stAlertContentError"]').count()
    shot(page, "03-model-two-layers")

    # 3. Train: set the epochs, press Train.
    nav(page, "Train")
    set_slider(page, "epochs", NEWCOMER_EPOCHS)
    set_slider(page, "batch_size", 0)  # the first option, 8
    lr_before = page.locator(".st-key-learning_rate input[type=range]").input_value()
    train = page.locator(".st-key-train button")
    assert train.is_enabled()
    train.click()
    run_id = current_run_id(page)
    store = app_server.store()

    # 4. The curve gains points while the run goes; a slider moved mid-run does not disturb it.
    first = chart_points(page, at_least=2, timeout_s=RUN_DEADLINE_S)
    assert not store.get(run_id, with_evaluation=False).is_final, f"run {run_id} ended before the curve was watched"
    shot(page, "04-train-live")
    assert first < NEWCOMER_EPOCHS - 3, f"the run was at epoch {first} before the slider could be moved"
    set_slider(page, "learning_rate", int(lr_before) + 1)  # 0.001 → 0.003 while it trains
    expect(page.locator(".st-key-stop button")).to_be_enabled()  # Stop is live while the run trains
    later = chart_points(page, at_least=first + 1, timeout_s=RUN_DEADLINE_S)  # still growing after the rerun
    record = wait_until(
        lambda: (r := store.get(run_id, with_evaluation=False)).is_final and r,
        RUN_DEADLINE_S,
        f"run {run_id} finishing",
    )
    assert record.status == "finished", (record.status, record.error)
    assert first < later <= NEWCOMER_EPOCHS
    assert len(store.epochs(run_id)) == NEWCOMER_EPOCHS
    assert record.spec["train"]["learning_rate"] == pytest.approx(0.001)  # the run kept its own settings

    # 5. The finished run on screen: every point, the results, Train usable again. (The fragment may
    # draw the last epoch while the worker still evaluates; the full rerun after that enables Train.)
    expect(page.locator(".st-key-train button")).to_be_enabled()
    wait_idle(page)
    assert chart_points(page, at_least=NEWCOMER_EPOCHS) == NEWCOMER_EPOCHS
    assert_no_exception(page)
    assert "Test accuracy" in main_text(page)
    assert page.locator(".st-key-learning_rate input[type=range]").input_value() == str(int(lr_before) + 1)
    shot(page, "05-train-finished")

    # 6. Reload: the URL names the run, and the page shows it finished.
    page.reload()
    wait_idle(page)
    assert f"run={run_id}" in page.url
    assert chart_points(page, at_least=NEWCOMER_EPOCHS) == NEWCOMER_EPOCHS  # the reloaded chart: every epoch
    assert "Test accuracy" in main_text(page)
    assert "finished — test accuracy" in sidebar_text(page), sidebar_text(page)
    assert_no_exception(page)
    shot(page, "06-train-reloaded")


@pytest.mark.timeout(240)
def test_stop_cancels_a_long_run(page, app_server):
    long_run = RunSpec()  # the defaults: digits, one Dense layer
    long_run.train.epochs = LONG_EPOCHS
    goto(page, f"/train?spec={long_run.to_url()}")
    page.locator(".st-key-train button").click()
    run_id = current_run_id(page)
    store = app_server.store()
    chart_points(page, at_least=2, timeout_s=RUN_DEADLINE_S)
    stop = page.locator(".st-key-stop button")
    assert stop.is_enabled()
    stop.click()
    record = wait_until(lambda: (r := store.get(run_id, with_evaluation=False)).is_final and r, 30, "the run stopping")
    assert record.status == "cancelled", (record.status, record.error)
    done = len(store.epochs(run_id))
    assert 2 <= done < LONG_EPOCHS
    expect(page.locator('[data-testid="stMain"]')).to_contain_text("was stopped after")
    expect(page.locator(".st-key-train button")).to_be_enabled()
    wait_idle(page)
    assert f"was stopped after {done} of {LONG_EPOCHS} epochs" in main_text(page)
    assert not page.locator(".st-key-stop button").is_enabled()
    # The sidebar's status polls on its own (once a second while it showed the run training): it catches up.
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text(f"cancelled after {done} of {LONG_EPOCHS} epochs")
    assert_no_exception(page)
    shot(page, "07-train-stopped")
