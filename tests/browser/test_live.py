"""A live run in a real browser: train a spiral and watch its boundary redraw, Pause (the epochs stop growing), Step
(exactly one more), change the learning rate (a marker on the curve), Resume, Stop; Continue 20 epochs (the curve
runs on from its parent's); on Evaluate the epoch slider changes the validation matrix. Screenshots at 1280 px.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from kfcore.spec import RunSpec
from tests.browser.conftest import (
    cancel_active_runs,
    current_run_id,
    exceptions,
    goto,
    nav,
    set_slider,
    shot,
    wait_idle,
    wait_until,
)
from tests.browser.test_newcomer import LONG_EPOCHS, RUN_DEADLINE_S

SPIRAL = {
    "data": {"source": "builtin", "name": "spiral"},
    "layers": [
        {"type": "Dense", "units": 8, "activation": "tanh"},
        {"type": "Dense", "units": 8, "activation": "tanh"},
    ],
    "train": {"epochs": LONG_EPOCHS, "batch_size": 10, "learning_rate": 0.03},
}
BOUNDARY_EPOCH_JS = """
() => {
  for (const box of document.querySelectorAll('.st-key-chart_boundary')) {
    if (box.getAttribute('data-stale') === 'true') continue;
    const title = box.querySelector('.gtitle');
    const m = title && title.textContent.match(/at epoch (\\d+)/);
    if (m) return parseInt(m[1]);
  }
  return -1;
}
"""
LOSS_CHART = '.st-key-chart_loss:not([data-stale="true"])'  # a redraw keeps the old chart beside the new, hidden
# The counts the confusion matrix shows, row by row, from its cells' markers (customdata: true, predicted, count).
MATRIX_JS = """
() => {
  const el = document.querySelector('.st-key-confusion .js-plotly-plot');
  const cells = el && el.data && el.data.find(d => d.name === 'cells');
  return cells ? cells.customdata.map(c => c[2]).join(',') : '';
}
"""


@pytest.fixture(autouse=True)
def no_run_outlives_its_test(app_server):
    yield
    cancel_active_runs(app_server)


def flat(matrix: list[list[int]]) -> str:
    return ",".join(str(v) for row in matrix for v in row)


def boundary_epoch(page, above: int = -1) -> int:
    """The epoch the live boundary's title shows, once it shows one after `above` (auto-waiting in the page)."""
    found = page.wait_for_function(
        f"() => {{ const e = ({BOUNDARY_EPOCH_JS})(); return e > {above} ? e + 1 : 0; }}",
        polling=100,
        timeout=RUN_DEADLINE_S * 1000,
    )
    return int(found.json_value()) - 1


@pytest.mark.timeout(420)
def test_pause_step_rate_resume_stop_continue_and_scrub_the_matrix(page, app_server):
    page.set_viewport_size({"width": 1280, "height": 1000})
    store = app_server.store()
    main = page.locator('[data-testid="stMain"]')
    goto(page, f"/model?spec={RunSpec.from_dict(SPIRAL).to_url()}")  # the network as the user edits it
    expect(page.locator(".st-key-model_diagram .js-plotly-plot")).to_have_count(1)
    expect(page.locator(".st-key-model_diagram")).to_contain_text("layer 2")
    shot(page, "live-00-model")
    goto(page, f"/train?spec={RunSpec.from_dict(SPIRAL).to_url()}")
    page.locator(".st-key-train button").click()
    run_id = current_run_id(page)

    # The boundary redraws while it trains: its title's epoch moves on.
    first = boundary_epoch(page)
    boundary_epoch(page, above=first)
    expect(page.locator('.st-key-chart_network:not([data-stale="true"]) .js-plotly-plot')).to_have_count(1)
    shot(page, "live-01-training")

    pause = page.get_by_role("button", name="Pause")
    pause.click()
    record = wait_until(
        lambda: (r := store.get(run_id, with_evaluation=False)).paused is not None and r, 30, "the run pausing"
    )
    done = len(store.epochs(run_id))
    expect(main).to_contain_text(f"paused after {done} of {LONG_EPOCHS} epochs", timeout=15_000)
    assert boundary_epoch(page, above=done - 1) == done  # its picture is the epoch it paused at
    assert len(store.epochs(run_id)) == done and record.status == "running"  # the epochs stopped growing
    shot(page, "live-02-paused")

    page.get_by_role("button", name="Step").click()
    expect(main).to_contain_text(f"paused after {done + 1} of {LONG_EPOCHS}")
    assert boundary_epoch(page, above=done) == done + 1
    assert len(store.epochs(run_id)) == done + 1  # exactly one more

    rate = page.get_by_role("spinbutton", name="Learning rate of this run")
    # No wait for idle while a run is live: its panel reruns twice a second, so a busy machine never looks idle.
    # Each click's rerun carries the widgets' values, and the store keeps the commands in order.
    rate.fill("0.1")
    rate.press("Enter")
    page.get_by_role("button", name="Apply to this run").click()
    page.get_by_role("button", name="Step").click()  # the new rate acts from the next epoch: its marker with it
    expect(page.locator(LOSS_CHART)).to_contain_text("learning rate → 0.1")
    rows = store.epochs(run_id)
    assert len(rows) == done + 2 and rows[-1].get("lr_changed") and rows[-1]["learning_rate"] == pytest.approx(0.1)
    shot(page, "live-03-rate-changed")

    page.get_by_role("button", name="Resume").click()
    wait_until(
        lambda: store.get(run_id, with_evaluation=False).paused is None and len(store.epochs(run_id)) > done + 2,
        30,
        "the run training on after Resume",
    )
    page.locator(".st-key-stop button").click()
    record = wait_until(lambda: (r := store.get(run_id, with_evaluation=False)).is_final and r, 30, "the run stopping")
    assert record.status == "cancelled", (record.status, record.error)
    parent_epochs = len(store.epochs(run_id))
    expect(main).to_contain_text("was stopped after")

    page.get_by_role("button", name="Continue").click()
    child_id = current_run_id(page, previous=run_id)
    child = wait_until(
        lambda: (r := store.get(child_id, with_evaluation=False)).is_final and r,
        RUN_DEADLINE_S,
        "the continued run finishing",
    )
    assert child.status == "finished" and child.parent == run_id, (child.status, child.error)
    assert [e["epoch"] for e in store.epochs(child_id)] == list(range(parent_epochs + 1, parent_epochs + 21))
    expect(page.locator(LOSS_CHART)).to_contain_text("continued")
    train_x = page.wait_for_function(f"""() => {{
        const el = document.querySelector('{LOSS_CHART} .js-plotly-plot');
        const train = el && el.data && el.data.find(d => d.name === 'train');
        return train && train.x.length && train.x[train.x.length - 1] === {parent_epochs + 20} && Array.from(train.x);
    }}""").json_value()
    assert train_x[0] == 1 and train_x[-1] == parent_epochs + 20  # parent's epochs, then the child's: one curve
    wait_idle(page)
    assert not exceptions(page)
    shot(page, "live-04-continued")

    # Evaluate opens on the continued run: the slider scrubs its epochs' validation matrices.
    matrices = {e["epoch"]: e["val_confusion"] for e in store.epochs(child_id)}
    end = parent_epochs + 20
    other = next((e for e in sorted(matrices) if matrices[e] != matrices[end]), None)
    assert other is not None, "every epoch of the continued run had the same validation matrix: nothing to scrub"
    nav(page, "Evaluate")
    page.get_by_text("Validation matrix by epoch").click()
    expect(main).to_contain_text(f"after epoch {end} of {end}")
    page.wait_for_function(f"() => ({MATRIX_JS})() === {json.dumps(flat(matrices[end]))}")
    set_slider(page, "cm_epoch", other)
    expect(main).to_contain_text(f"after epoch {other} of {end}")
    page.wait_for_function(f"() => ({MATRIX_JS})() === {json.dumps(flat(matrices[other]))}")
    assert not exceptions(page)
    shot(page, "live-05-evaluate-epoch")
