"""Images by folder in a real browser: upload a ZIP with a folder of images per class on the Data page, pick the size
and colour, see the per-class grid and counts, train 2 epochs on it and find the run finished. Screenshots land in
artifacts/browser/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    cancel_active_runs,
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
from tests.imagezips import class_zip, pets

RUN_DEADLINE_S = 180  # a worker's TensorFlow start on a busy 2-core machine, then 2 epochs on 24 small images


@pytest.fixture(autouse=True)
def no_run_outlives_its_test(app_server):
    yield
    cancel_active_runs(app_server)


@pytest.mark.timeout(360)
def test_a_zip_of_class_folders_uploads_previews_and_trains_two_epochs(page, app_server, tmp_path):
    zipped = class_zip(tmp_path / "pets.zip", pets(12))
    goto(page, "/data")
    choose(page, "dataset", "Upload a file (upload)")
    page.locator(".st-key-upload input[type=file]").set_input_files(str(zipped))
    main = page.locator('[data-testid="stMain"]')
    expect(main.get_by_role("heading", name="pets")).to_be_visible(timeout=60_000)
    wait_idle(page)
    choose(page, "image_size", "28×28 pixels")
    page.locator(".st-key-image_colour").get_by_text("colour", exact=True).click()
    wait_idle(page)
    expect(main.locator('[data-testid="stMetric"]').filter(has_text="Image size")).to_contain_text("28×28×3")
    expect(main.locator('[data-testid="stMetric"]').filter(has_text="Classes")).to_contain_text("2")
    expect(page.locator(".st-key-chart_samples .js-plotly-plot")).to_be_visible()
    expect(page.locator(".st-key-chart_balance .js-plotly-plot")).to_be_visible()
    assert not exceptions(page)
    shot(page, "images-data")

    nav(page, "Train")
    set_slider(page, "epochs", 2)
    page.locator(".st-key-train button").click()
    run_id = current_run_id(page)
    store = app_server.store()
    record = wait_until(
        lambda: (r := store.get(run_id, with_evaluation=False)).is_final and r,
        RUN_DEADLINE_S,
        f"run {run_id} finishing",
    )
    assert record.status == "finished", (record.status, record.error)
    assert len(store.epochs(run_id)) == 2
    data = record.spec["data"]
    assert (data["source"], data["image_size"], data["color"]) == ("images", 28, True)
    expect(page.locator(".st-key-train button")).to_be_enabled()
    expect(main).to_contain_text("Test accuracy")
    assert not exceptions(page)
    shot(page, "images-trained")
