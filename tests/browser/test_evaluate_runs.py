"""Evaluate, Runs, export and share in a real browser against a real `streamlit run app.py` server.

Two runs are trained into the server's store first, the way the CLI trains them. Then: click a cell of
the real Plotly confusion matrix and see its test samples; tick two runs on Runs and see their curves
overlaid and what differs; download the generated Python script and run it with no access to this
repository, reaching the run's test accuracy; and open a share link in a fresh browser context to find
the same experiment. Screenshots land in artifacts/browser/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.browser.conftest import choose, exceptions, goto, nav, set_slider, shot, wait_idle

# Where the centre of cell (true i, predicted j) of the confusion matrix is on the screen, from Plotly's axes.
CELL_XY_JS = """
([el, i, j]) => {
  const xa = el._fullLayout.xaxis, ya = el._fullLayout.yaxis, r = el.getBoundingClientRect();
  return [r.left + xa._offset + xa.l2p(j), r.top + ya._offset + ya.l2p(i)];
}
"""

# Where test sample k's dot is on the predicted-vs-actual chart (trace 1: x actual, y predicted).
DOT_XY_JS = """
([el, k]) => {
  const xa = el._fullLayout.xaxis, ya = el._fullLayout.yaxis, r = el.getBoundingClientRect();
  const t = el._fullData[1];
  return [r.left + xa._offset + xa.l2p(t.x[k]), r.top + ya._offset + ya.l2p(t.y[k])];
}
"""


def assert_no_exception(page) -> None:
    found = exceptions(page)
    assert not found, f"exception on {page.url}: {found}"


def selected(page, key: str) -> str:
    return page.locator(f".st-key-{key} input").input_value()


def test_clicking_a_confusion_matrix_cell_lists_its_samples(page, runs):
    record = runs["bt digits"]
    cm = record.evaluation["confusion_matrix"]
    goto(page, f"/evaluate?run={record.id}")
    assert_no_exception(page)
    assert selected(page, "eval_run").startswith("bt digits")
    # A cell other than the one the page opens on (the commonest mistake): the diagonal cell of digit 4.
    i = j = 4
    assert (selected(page, "cm_true"), selected(page, "cm_pred")) != ("4", "4")
    chart = page.locator(".st-key-confusion .js-plotly-plot").first
    chart.scroll_into_view_if_needed()
    x, y = page.evaluate(CELL_XY_JS, [chart.element_handle(), i, j])
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_function(
        "() => document.querySelector('.st-key-cm_true input').value === '4' && "
        "document.querySelector('.st-key-cm_pred input').value === '4'"
    )
    wait_idle(page)
    assert_no_exception(page)
    cell = page.locator(".st-key-cell_samples")
    assert f"{cm[i][j]} test samples of class 4 predicted as 4" in cell.inner_text().replace("*", "")
    assert cell.locator('[data-testid="stImageContainer"]').count() == min(cm[i][j], 48)
    caption = cell.locator('[data-testid="stImageCaption"]').first.inner_text().strip()
    assert re.fullmatch(r"#\d+ · says .+ \(\d+%\)", caption), caption  # in words: what the model said, how sure
    shot(page, "evaluate_confusion_cell")

    # The same page for a tabular run: the cell's rows with their probabilities.
    goto(page, f"/evaluate?run={runs['bt iris'].id}")
    assert_no_exception(page)
    assert page.locator(".st-key-confusion .js-plotly-plot").count() == 1
    shot(page, "evaluate_tabular")


def test_clicking_a_dot_of_a_regression_run_lists_that_sample(page, runs):
    goto(page, f"/evaluate?run={runs['reg diabetes'].id}")
    assert_no_exception(page)
    assert page.locator(".st-key-reg_samples input").input_value() == ""
    assert page.locator('[data-testid="stMain"]').get_by_text("The ten largest errors").count() == 1
    chart = page.locator(".st-key-chart_predicted .js-plotly-plot").first
    chart.scroll_into_view_if_needed()
    # The dot the page lists first (the largest error) sits far from the diagonal, clear of the crowd.
    errors = page.evaluate(
        """(el) => { const t = el._fullData[1];
        return Array.from(t.x, (x, k) => Math.abs(t.y[k] - x)); }""",
        chart.element_handle(),
    )
    k = max(range(len(errors)), key=errors.__getitem__)
    x, y = page.evaluate(DOT_XY_JS, [chart.element_handle(), k])
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_function("() => document.querySelector('.st-key-reg_samples input').value !== ''")
    wait_idle(page)
    assert page.locator(".st-key-reg_samples input").input_value() == str(k)
    assert "1 chosen sample" in page.locator('[data-testid="stMain"]').inner_text()
    assert_no_exception(page)
    shot(page, "evaluate_regression_dot")


def test_two_runs_compare_on_the_runs_page(page, runs):
    goto(page, "/runs")
    page.locator(".st-key-runs_filter input").fill("bt ")
    page.keyboard.press("Enter")
    wait_idle(page)
    grid = page.locator('.st-key-runs_table [data-testid="stDataFrame"]').first
    box = grid.bounding_box()
    for row in (0, 1):  # the row-selection checkboxes of the two filtered runs (35 px rows under a 35 px header)
        page.mouse.click(box["x"] + 18, box["y"] + 35 + 35 * row + 17)
        wait_idle(page)
    assert set(page.locator(".st-key-compare_runs").inner_text().split("\n")) >= {"bt iris", "bt digits"}
    traces = page.evaluate("() => document.querySelector('.st-key-compare_loss .js-plotly-plot').data.map(t => t.name)")
    assert {"bt iris · validation", "bt digits · validation", "bt iris · best epoch"} <= set(traces)
    main = page.locator('[data-testid="stMain"]').inner_text()
    assert "What differs" in main and "Comparing 2 runs" in main
    assert_no_exception(page)
    shot(page, "runs_compare")


def test_the_exported_script_runs_alone_and_reaches_the_runs_test_accuracy(page, runs, tmp_path):
    record = runs["bt iris"]
    goto(page, f"/evaluate?run={record.id}")
    button = page.locator(".st-key-download_script button")
    button.scroll_into_view_if_needed()
    with page.expect_download() as info:
        button.click()
    script = tmp_path / info.value.suggested_filename
    info.value.save_as(script)
    assert script.name == "bt_iris.py" and "model.fit(" in script.read_text()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KF_HOME")}
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-3000:]
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", out.stdout).group(1))
    assert abs(accuracy - record.test["accuracy"]) <= 0.05, (accuracy, record.test)

    # The trained model and the metrics per epoch come down the same way.
    for key, check in (
        ("download_model", lambda b: b[:2] == b"PK"),  # a .keras file is a zip archive
        ("download_metrics", lambda b: b.decode().startswith("epoch,")),
    ):
        with page.expect_download() as info:
            page.locator(f".st-key-{key} button").click()
        assert check(Path(info.value.path()).read_bytes()), key


def test_a_share_link_opens_the_same_experiment_in_a_fresh_browser(page, browser, app_server, runs):
    goto(page, "/runs")
    choose(page, "manage_run", "bt iris · finished")
    page.locator(".st-key-load_run button").click()
    wait_idle(page)
    nav(page, "Train")
    set_slider(page, "epochs", 7)
    page.locator(".st-key-share button").first.click()
    link = page.locator('[data-testid="stPopoverBody"] code').first.inner_text().strip()
    assert link.startswith(f"{app_server.url}/train?spec=")

    fresh = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        other = fresh.new_page()
        other.set_default_timeout(30_000)
        other.goto(link)
        wait_idle(other)
        assert_no_exception(other)
        sidebar = other.locator('[data-testid="stSidebar"]').inner_text()
        assert "iris · Dense(12, relu)" in sidebar
        assert int(other.locator(".st-key-epochs input[type=range]").input_value()) == 7
        shot(other, "share_link_restored")
    finally:
        fresh.close()
