"""The dashboard's render time while a sweep trains (issue 13): target median < 0.5 s.

    python bench/bench_sweep_ui.py [--trials 8] [--watch 40] [--navigations 6] [--out FILE]

A real `streamlit run app.py` (its own store, KF_MAX_CONCURRENT=1 as in the browser tests) in Debian's Chromium.
The Sweep page starts a sweep of a tiny experiment (xor, 400 points, 40 epochs, the learning rate over
`--trials` values) on the local pool. First, before the sweep, `--navigations` full page runs as a baseline on the
same server and machine load; then, while its trials train one after another:
(a) every re-render of the Sweep page's live fragment (it re-reads the store every second: status, filters, overlaid
    curves, parallel coordinates, the table) for `--watch` seconds, timed in the page from the app's script state
    turning "running" to "notRunning" (a MutationObserver stamping performance.now());
(b) `--navigations` full page runs, alternating Runs and Sweep through the sidebar, from the click to the page's
    script finished and drawn (nav + wait_idle, as the browser tests wait).
Medians, 90th percentiles and maxima. The sweep is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kfcore.spec import RunSpec  # noqa: E402  (after the path set-up)
from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    goto,
    nav,
    start_server,
    stop_server,
    wait_idle,
)

SPEC = {
    "data": {"source": "builtin", "name": "xor", "n": 400},
    "split": {"test": 0.2, "validation": 0.2, "seed": 0},
    "layers": [{"type": "Dense", "units": 8}],
    "train": {"epochs": 600, "batch_size": 8, "seed": 0},
}
RENDERS_JS = """
(() => {
  const runs = window.__kfRenders = [];
  let since = null;
  const app = () => document.querySelector('[data-testid="stApp"]');
  new MutationObserver(() => {
    const a = app();
    if (!a) return;
    const state = a.getAttribute('data-test-script-state');
    if (state === 'running' && since === null) since = performance.now();
    if (state === 'notRunning' && since !== null) { runs.push((performance.now() - since) / 1000); since = null; }
  }).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-test-script-state']});
})()
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> str:
    return (
        f"median **{statistics.median(values):.3f} s**, p90 {pct(values, 0.9):.3f} s, max {max(values):.3f} s "
        f"({len(values)} renders)"
    )


def navigate(page, n: int) -> list[float]:
    """n full page runs through the sidebar, Runs then Sweep and so on: seconds from the click to drawn."""
    times = []
    for k in range(n):
        started = time.perf_counter()
        nav(page, "Runs" if k % 2 == 0 else "Sweep")
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--watch", type=float, default=30.0, help="seconds of live renders to time")
    parser.add_argument("--navigations", type=int, default=6)
    parser.add_argument("--out", help="write the markdown fragment here too")
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    server = start_server(home=Path(tempfile.mkdtemp(prefix="kf-bench-sweep-")))
    rates = ", ".join(f"{0.001 * 1.6**i:.4g}" for i in range(args.trials))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_context(base_url=server.url, viewport=VIEWPORT).new_page()
            page.set_default_timeout(60_000)
            goto(page, f"/sweep?spec={RunSpec.from_dict(SPEC).to_url()}")
            idle = navigate(page, args.navigations)
            if args.navigations % 2:
                nav(page, "Sweep")
            page.locator(".st-key-sw_vary input").click()
            page.get_by_role("option", name="Learning rate", exact=True).click()
            wait_idle(page)
            values = page.locator(".st-key-sw_values_train_learning_rate input")
            values.fill(rates)
            values.press("Enter")
            wait_idle(page)
            page.locator(".st-key-sweep_start button").click()
            expect(page.locator(".st-key-sweep_status")).to_contain_text("running")
            store = server.store()
            (sweep,) = store.sweeps()
            deadline = time.monotonic() + 120  # the first trial training: the worker imported TensorFlow
            while not any(store.epochs(t.id) for t in store.trials(sweep.id)) and time.monotonic() < deadline:
                time.sleep(0.2)
            page.evaluate(RENDERS_JS)
            time.sleep(args.watch)
            live = page.evaluate("() => window.__kfRenders")
            ended_live = sum(t.is_final for t in store.trials(sweep.id))
            navigations = navigate(page, args.navigations)
            trials = store.trials(sweep.id)
            for t in trials:
                if not t.is_final:
                    store.request_cancel(t.id)
            browser.close()
    finally:
        stop_server(server)
    lines = [
        f"### Render time while a sweep trains (`python bench/bench_sweep_ui.py --trials {args.trials} --watch "
        f"{args.watch:g} --navigations {args.navigations}`)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; a {args.trials}-trial sweep (xor, 400 points, "
        f"600 epochs each) on the local pool, one trial training at a time; {ended_live} trials had ended by the "
        "end of the watch.",
        "",
        f"- Sweep page, live fragment re-render while trials train: {summary(live)}",
        f"- Full page runs (sidebar, Runs ⇄ Sweep) while trials train: {summary(navigations)}",
        f"- The same full page runs before the sweep started (baseline, same load): {summary(idle)}",
        "- Target: median < 0.5 s.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
