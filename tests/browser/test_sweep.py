"""The Sweep page in Chromium against a real server: vary the learning rate of a tiny experiment, start the sweep,
and see the trials' curves overlaid and the results table fill as the workers train them."""

from __future__ import annotations

from playwright.sync_api import expect

from kfcore.spec import RunSpec
from tests.browser.conftest import exceptions, goto, shot, wait_idle, wait_until

TINY = {
    "data": {"source": "builtin", "name": "xor", "n": 60},
    "split": {"test": 0.2, "validation": 0.2, "seed": 0},
    "layers": [{"type": "Dense", "units": 4}],
    "train": {"epochs": 3, "batch_size": 16, "seed": 0},
}


def vary_learning_rate(page, spec: dict, rates: str) -> None:
    """Open the Sweep page on `spec` and make the learning rate take `rates` ("0.003, 0.05")."""
    goto(page, f"/sweep?spec={RunSpec.from_dict(spec).to_url()}")
    page.locator(".st-key-sw_vary input").click()
    page.get_by_role("option", name="Learning rate", exact=True).click()
    wait_idle(page)
    values = page.locator(".st-key-sw_values_train_learning_rate input")
    values.fill(rates)
    values.press("Enter")
    wait_idle(page)


def test_a_sweep_started_on_the_page_fills_its_table_and_overlays_the_curves(page, app_server):
    vary_learning_rate(page, TINY, "0.003, 0.05")
    expect(page.locator('[data-testid="stMain"]')).to_contain_text("2 trials (2 settings)")
    page.locator(".st-key-sweep_start button").click()
    status = page.locator(".st-key-sweep_status")
    expect(status).to_contain_text("2 of 2 trials ended", timeout=180_000)
    store = app_server.store()
    (sweep,) = [s for s in store.sweeps() if s.definition["base"]["data"]["name"] == "xor"]
    trials = wait_until(lambda: [t for t in store.trials(sweep.id) if t.status == "finished"], 10, "finished trials")
    assert len(trials) == 2
    grid = page.locator('.st-key-sweep_table_box [data-testid="stDataFrame"]')
    expect(grid).to_be_visible()
    expect(grid.locator('[role="row"]')).to_have_count(3)  # the header and one row per trial
    expect(grid).to_contain_text("finished")
    traces = page.evaluate("() => document.querySelector('.st-key-sweep_curves .js-plotly-plot').data.map(t => t.name)")
    assert {"learning_rate=0.003 · validation", "learning_rate=0.05 · validation"} <= set(traces), traces
    dims = page.evaluate(
        "() => document.querySelector('.st-key-sweep_parcoords .js-plotly-plot').data[0].dimensions.map(d => d.label)"
    )
    assert dims == ["learning_rate", "val_loss"]
    assert not exceptions(page)
    shot(page, "sweep")


def test_a_stopped_sweep_resumes_from_the_page_and_follows_its_trials_to_the_end(page, app_server):
    # Resume is clicked inside the sweep's live part: that part must start polling again, or the page freezes on
    # "1 of 3 trials ended · running" while the trials finish (it did, before the fix).
    spec = {**TINY, "data": {**TINY["data"], "n": 80}, "train": {**TINY["train"], "epochs": 300}}
    vary_learning_rate(page, spec, "0.001, 0.003, 0.01")
    page.locator(".st-key-sweep_start button").click()
    page.locator(".st-key-sweep_stop button").click()
    expect(page.get_by_text("of its trials never ran")).to_be_visible(timeout=60_000)
    page.locator(".st-key-sweep_resume button").click()
    expect(page.locator(".st-key-sweep_status")).to_contain_text("3 of 3 trials ended", timeout=180_000)
    expect(page.locator(".st-key-sweep_resume")).to_have_count(0)
    store = app_server.store()
    (sweep,) = [s for s in store.sweeps() if s.definition["base"]["data"].get("n") == 80]
    assert sorted(t.status for t in store.trials(sweep.id)).count("finished") >= 2
    assert not exceptions(page)
