"""Every page holds its layout at 1024, 1280 and 1440 px wide: nothing a reader needs is cut off or covered.

Measured in Chromium from element boxes, not judged from pixels: no button label or metric value is cut short
(its text overflows its box: scrollWidth > clientWidth, which is what an ellipsis hides), the Model page's
layer table shows its Output shape and Parameters columns whole (the grid needs no horizontal scrolling),
no chart's legend overlaps its x-axis title or its own title, and the Train page's result cards share one line.
Screenshots: artifacts/browser/layout-<page>-<width>.png.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import exceptions, goto, shot

WIDTHS = (1024, 1280, 1440)

# Elements in the main area whose text is wider than their box (1 px of rounding allowed): button labels
# and metric values/labels, with the ellipsis Streamlit gives them that is exactly what hides the overflow.
CLIPPED_JS = """
() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const boxes = main.querySelectorAll('button, [data-testid="stMetricValue"], [data-testid="stMetricLabel"]');
  const out = [];
  for (const box of boxes) {
    if (!box.offsetParent) continue;  // hidden (a closed popover, a collapsed expander)
    for (const el of [box, ...box.querySelectorAll('*')]) {
      if (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 2) {  // 1 px: an icon's screen-reader text
        out.push(`${box.getAttribute('data-testid') || box.tagName}: "${box.innerText.trim()}"`
                 + ` (${el.scrollWidth} px of text in ${el.clientWidth} px)`);
        break;
      }
    }
  }
  return out;
}
"""

# Each drawn chart's legend against its x-axis title and its title: boxes that overlap.
LEGEND_JS = """
() => {
  const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const out = [];
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    if (plot.closest('[data-stale="true"]')) continue;
    const legend = plot.querySelector('.legend');
    if (!legend) continue;
    const lb = legend.getBoundingClientRect();
    for (const sel of ['.xtitle', '.gtitle']) {
      const other = plot.querySelector(sel);
      if (other && hit(lb, other.getBoundingClientRect()))
        out.push(`"${plot.querySelector('.gtitle')?.textContent}": legend covers ${sel}`);
    }
  }
  return out;
}
"""

# The layer table's grid: how wide its columns are against the room it has (the glide grid scrolls sideways when
# the columns do not fit, and then the right-hand columns are cut off), and the header texts it draws.
GRID_JS = """
() => {
  const grid = document.querySelector('[data-testid="stMain"] [data-testid="stDataFrame"]');  // the page's only table
  const scroller = grid.querySelector('.dvn-scroller');
  const headers = Array.from(grid.querySelectorAll('th, [role="columnheader"]'), h => h.textContent.trim());
  return {scroll: scroller.scrollWidth, room: scroller.clientWidth, headers};
}
"""


# Each metric card in the main area by its label: the top of its box (cards on one line share it).
METRIC_TOPS_JS = """
() => Object.fromEntries(Array.from(document.querySelectorAll('[data-testid="stMain"] [data-testid="stMetric"]'),
  m => [m.querySelector('[data-testid="stMetricLabel"]').innerText.trim(), Math.round(m.getBoundingClientRect().top)]))
"""


@pytest.fixture
def sized(browser, app_server, request):
    context = browser.new_context(base_url=app_server.url, viewport={"width": request.param, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    try:
        yield pg, request.param
    finally:
        context.close()


def check(page, name: str, width: int) -> None:
    assert not exceptions(page), exceptions(page)
    shot(page, f"layout-{name}-{width}")
    assert page.evaluate(CLIPPED_JS) == [], f"{name} at {width} px"
    assert page.evaluate(LEGEND_JS) == [], f"{name} at {width} px"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sized", WIDTHS, indirect=True, ids=[f"{w}px" for w in WIDTHS])
def test_every_page_holds_its_layout(sized, runs):
    page, width = sized
    digits, again = runs["bt digits"], runs["digits again"]
    for name, path in (
        ("home", "/"),
        ("data", "/data"),
        ("model", "/model"),
        ("train", f"/train?run={digits.id}&prev={again.id}"),
        ("evaluate", f"/evaluate?run={digits.id}"),
        ("evaluate-regression", f"/evaluate?run={runs['reg diabetes'].id}"),
        ("runs", "/runs"),
    ):
        goto(page, path)
        if name == "model":
            grid_header = page.locator('[data-testid="stMain"] [data-testid="stDataFrame"] th').first
            grid_header.wait_for(state="attached")  # the grid is drawn lazily
            grid = page.evaluate(GRID_JS)
            assert grid["scroll"] <= grid["room"] + 1, f"the layer table is cut off at {width} px: {grid}"
            assert {"Layer", "Output shape", "Parameters"} <= set(grid["headers"]), grid
        if name == "train":  # the previous run overlaid: its legend entries are the ones that wrapped
            names = page.evaluate(
                "() => document.querySelector('.st-key-chart_loss .js-plotly-plot').data.map(t => t.name)"
            )
            assert "previous · train" in names, names
            # The result cards share one line (at 1024 px they broke 2 + 2, and "Time" could stand alone).
            tops = page.evaluate(METRIC_TOPS_JS)
            assert {"Test accuracy", "Test loss", "Best epoch", "Time"} <= set(tops), tops
            assert len(set(tops.values())) == 1, f"the result cards wrap at {width} px: {tops}"
        check(page, name, width)
