"""The dashboard's performance targets (issue 3), measured in Debian's Chromium against real servers.

    python bench/bench_ui.py [--repeats 5] [--epochs 40] [--latency-runs 2] [--retrains 20] [--out FILE]

(a) Landing: a fresh `streamlit run app.py` (its own store) is polled until /_stcore/health says ok;
    from that moment, a fresh browser context (empty cache, new session) opens / and the clock stops
    when Home's script has finished and is drawn (script state notRunning, connected, the Start
    button present, no loading skeleton). Target < 2 s. The same is measured for a one-line Streamlit
    app (st.title) under the same config as the baseline, interleaved, `--repeats` times each; medians.
    "warm" is a second fresh context on the same, already-visited server. The server process must
    never import TensorFlow: its /proc/<pid>/maps is checked for libtensorflow / _pywrap_tensorflow
    after landing and again after (c)'s twenty trainings (a worker's maps, which do hold TensorFlow,
    show that the check can see it).
(b) Epoch-to-screen latency: the default digits MLP trains `--epochs` epochs while the Train page is
    open; for every epoch, the time from the store's epoch row (`time`, written by the worker) to the
    moment the page's loss chart first shows that epoch's point (an in-page 20 ms timer reads the
    chart's Plotly data and stamps Date.now(), the same wall clock). Target < 1 s; median and max over
    all epochs of `--latency-runs` runs.
(c) Web server memory: VmRSS of the server process before and after `--retrains` consecutive
    retrains (iris, 2 epochs; press Train, wait until it has finished and the page shows it, repeat).
    Target: within ±50 MB.

Runs with KF_MAX_CONCURRENT=1, like the browser tests. Writes a markdown fragment with --out.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser.conftest import (  # noqa: E402  (after the path set-up)
    CHART_POINTS_JS,
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    choose,
    current_run_id,
    goto,
    nav,
    set_slider,
    start_server,
    stop_server,
    wait_idle,
)

TF_MARKERS = ("libtensorflow", "_pywrap_tensorflow")
LANDED_JS = """
(ready) => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED'
    && !!document.querySelector(ready)
    && !document.querySelector('[data-testid="stSkeleton"], [data-testid="stAppSkeleton"]');
}
"""
# Milestones of a page load, stamped in the page (wall-clock seconds): the document parsed, the first
# script run seen starting, then finishing. Installed before any of the page's own scripts run.
MARKS_JS = """
(() => {
  const marks = window.__kfMarks = {};
  const mark = k => { if (!(k in marks)) marks[k] = Date.now() / 1000; };
  const check = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app) return;
    const state = app.getAttribute('data-test-script-state');
    if (state === 'running') mark('started');
    if (state === 'notRunning' && marks.started) mark('finished');
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true, attributes: true,
                                                 attributeFilter: ['data-test-script-state']});
  document.addEventListener('DOMContentLoaded', () => mark('dom'));
})();
"""
PHASES = ("dom", "started", "finished")
# Stamps, in the page, the wall-clock second at which each epoch's point first appears on the loss chart.
RECORDER_JS = """
() => {
  const count = CHART_POINTS;
  window.__kfSeen = {};
  let last = 0;
  window.__kfTimer = setInterval(() => {
    const n = count('chart_loss');
    if (n > last) {
      const t = Date.now() / 1000;
      for (let i = last + 1; i <= n; i++) window.__kfSeen[i] = t;
      last = n;
    }
  }, 20);
}
""".replace("CHART_POINTS", CHART_POINTS_JS.strip())
BARE_APP = 'import streamlit as st\n\nst.title("Hello")\n'
RUN_DEADLINE_S = 180


# -- the server process ----------------------------------------------------------------------------


def maps_tensorflow(pid: int) -> bool:
    text = Path(f"/proc/{pid}/maps").read_text()
    return any(m in text for m in TF_MARKERS)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def worker_has_tensorflow(pid: int) -> bool:
    found = False
    for child in children(pid):
        try:
            found = found or maps_tensorflow(child)
        except OSError:
            pass
    return found


# -- (a) landing -----------------------------------------------------------------------------------


def landing(browser, app: str, ready: str) -> dict:
    home = Path(tempfile.mkdtemp(prefix="kf-bench-ui-"))
    server = start_server(app=app, home=home)  # returns the moment /_stcore/health answered ok
    t0 = time.time()
    try:
        times, phases = [], {}
        for _ in range(2):  # cold: the first visitor after the start; warm: a second fresh context
            start = time.time() if times else t0
            context = browser.new_context(viewport=VIEWPORT)
            context.add_init_script(MARKS_JS)
            page = context.new_page()
            page.goto(server.url + "/")
            page.wait_for_function(LANDED_JS, arg=ready, polling="raf", timeout=60_000)
            times.append(time.time() - start)
            if len(times) == 1:
                marks = page.evaluate("() => window.__kfMarks")
                phases = {k: marks[k] - t0 for k in PHASES if k in marks}
            context.close()
        return {"cold": times[0], "warm": times[1], "phases": phases, "tensorflow": maps_tensorflow(server.pid)}
    finally:
        stop_server(server)
        shutil.rmtree(home, ignore_errors=True)


def bench_landing(browser, repeats: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="kf-bench-bare-"))
    bare = folder / "bare_app.py"
    bare.write_text(BARE_APP)
    app, base = [], []
    try:
        for _ in range(repeats):  # interleaved, so drifting load hits both alike
            app.append(landing(browser, "app.py", ".st-key-start button"))
            base.append(landing(browser, str(bare), "h1"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"app": app, "bare": base}


# -- (b) epoch-to-screen latency ---------------------------------------------------------------------


def bench_latency(browser, epochs: int, runs: int) -> dict:
    home = Path(tempfile.mkdtemp(prefix="kf-bench-ui-"))
    server = start_server(home=home)
    store = server.store()
    latencies: list[list[float]] = []
    try:
        for _ in range(runs):
            context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
            page = context.new_page()
            goto(page, "/train")
            set_slider(page, "epochs", epochs)
            page.evaluate(RECORDER_JS)
            page.locator(".st-key-train button").click()
            run_id = current_run_id(page)
            end = time.monotonic() + RUN_DEADLINE_S
            while not (record := store.get(run_id, with_evaluation=False)).is_final:
                if time.monotonic() > end:
                    raise TimeoutError(f"run {run_id} did not finish in {RUN_DEADLINE_S} s")
                time.sleep(0.2)
            if record.status != "finished":
                raise RuntimeError(f"run {run_id} {record.status}: {record.error}")
            page.wait_for_function(f"() => Object.keys(window.__kfSeen).length >= {epochs}", timeout=30_000)
            seen = {int(k): v for k, v in page.evaluate("() => window.__kfSeen").items()}
            rows = store.epochs(run_id)
            latencies.append([seen[row["epoch"]] - row["time"] for row in rows])
            context.close()
    finally:
        stop_server(server)
        shutil.rmtree(home, ignore_errors=True)
    return {"runs": latencies}


# -- (c) memory over retrains ------------------------------------------------------------------------


def bench_memory(browser, retrains: int) -> dict:
    home = Path(tempfile.mkdtemp(prefix="kf-bench-ui-"))
    server = start_server(home=home)
    store = server.store()
    try:
        context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
        page = context.new_page()
        goto(page, "/data")
        choose(page, "dataset", "iris (built-in)")
        nav(page, "Train")
        set_slider(page, "epochs", 2)
        time.sleep(1.0)  # let the server settle after the page loads before the first reading
        before = rss_mb(server.pid)
        after: list[float] = []
        durations: list[float] = []
        previous = None
        for _ in range(retrains):
            start = time.monotonic()
            page.locator(".st-key-train button").click()
            run_id = current_run_id(page, previous)
            end = time.monotonic() + RUN_DEADLINE_S
            while not (record := store.get(run_id, with_evaluation=False)).is_final:
                if time.monotonic() > end:
                    raise TimeoutError(f"run {run_id} did not finish in {RUN_DEADLINE_S} s")
                time.sleep(0.1)
            if record.status != "finished":
                raise RuntimeError(f"run {run_id} {record.status}: {record.error}")
            page.locator(".st-key-train button:not([disabled])").wait_for(timeout=30_000)
            wait_idle(page)
            durations.append(time.monotonic() - start)
            after.append(rss_mb(server.pid))
            previous = run_id
        context.close()
        return {
            "before": before,
            "after": after,
            "durations": durations,
            "tensorflow": maps_tensorflow(server.pid),
            "worker_tensorflow": worker_has_tensorflow(server.pid),
        }
    finally:
        stop_server(server)
        shutil.rmtree(home, ignore_errors=True)


# -- report ----------------------------------------------------------------------------------------


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    return {"cores": os.cpu_count(), "cpu": cpu, "load": " ".join(Path("/proc/loadavg").read_text().split()[:3])}


def run_meta(script: str) -> dict:
    """What every bench report starts with: the machine, its load now (load_before), when, the exact command
    and the Streamlit version."""
    import streamlit

    meta = {
        **machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": f"python bench/{script} " + " ".join(sys.argv[1:]),
        "streamlit": streamlit.__version__,
    }
    meta["load_before"] = meta.pop("load")
    return meta


def report(a: dict, b: dict, c: dict, args: argparse.Namespace, meta: dict) -> str:
    med = statistics.median
    cold = med(r["cold"] for r in a["app"])
    warm = med(r["warm"] for r in a["app"])
    bare_cold = med(r["cold"] for r in a["bare"])
    bare_warm = med(r["warm"] for r in a["bare"])
    tf_free = not any(r["tensorflow"] for r in a["app"]) and not c["tensorflow"]
    every = sorted(x for run in b["runs"] for x in run)
    p90 = every[min(len(every) - 1, int(0.9 * len(every)))]
    slow = sum(x >= 1 for x in every)

    def phase(runs: list[dict], key: str) -> str:
        values = [r["phases"][key] for r in runs if key in r["phases"]]
        return f"{med(values):.2f}" if values else "–"

    run_medians = ", ".join(f"{med(run):.2f}" for run in b["runs"])
    after = c["after"]
    picks = [i for i in (1, 10, 20) if i <= len(after)] or [len(after)]
    drift = after[-1] - c["before"]
    ok = lambda good: "yes" if good else "**no**"  # noqa: E731
    lines = [
        "| Target | Measured | Goal | Met |",
        "|---|---|---|---|",
        f"| (a) Landing: server healthy → Home drawn, first visitor (median of {args.repeats}) | "
        f"{cold:.2f} s (bare one-line app: {bare_cold:.2f} s, ratio {cold / bare_cold:.2f}×) | < 2 s | {ok(cold < 2)} |",
        f"| (a) Landing, a second fresh browser context (median of {args.repeats}) | "
        f"{warm:.2f} s (bare: {bare_warm:.2f} s, ratio {warm / bare_warm:.2f}×) | < 2 s | {ok(warm < 2)} |",
        f"| (a) Server process never imported TensorFlow (/proc/PID/maps, after landing and after (c)) | "
        f"{'no TensorFlow mapped' if tf_free else 'TensorFlow mapped'} (a worker's maps: "
        f"{'TensorFlow seen' if c['worker_tensorflow'] else 'not seen'}) | none | {ok(tf_free)} |",
        f"| (b) Epoch-to-screen latency ({len(every)} epochs, {len(b['runs'])} runs × {args.epochs}) | "
        f"median {med(every):.2f} s, p90 {p90:.2f} s, max {max(every):.2f} s; {slow} of {len(every)} ≥ 1 s "
        f"(run medians {run_medians}) | < 1 s | "
        f"{ok(max(every) < 1)} |",
        f"| (c) Server RSS over {len(after)} retrains (iris, 2 epochs) | before {c['before']:.0f} MB; "
        + "; ".join(f"after {i}: {after[i - 1]:.0f} MB" for i in picks)
        + f"; drift {drift:+.0f} MB (max {max(after):.0f} MB) | ±50 MB | {ok(abs(drift) <= 50)} |",
    ]
    table = "\n".join(lines)
    return f"""## UI performance (bench/bench_ui.py)

Measured {meta["date"]} with

    {meta["command"]}

Machine: {meta["cores"]} CPU cores (`nproc`), {meta["cpu"]}; Chromium {meta["chromium"]} (headless, /usr/bin/chromium),
Streamlit {meta["streamlit"]}, Python {platform.python_version()}. Load average before {meta["load_before"]},
after {meta["load_after"]} (this bench's own server, worker and browser included). Took {meta["elapsed"]:.0f} s.

{table}

How each figure is taken (details in the script's docstring):

- (a) The clock starts when `/_stcore/health` first answers `ok` (polled every 0.1 s) and stops when the page
  has finished Home's script and drawn it: `data-test-script-state="notRunning"`, connected, the Start button
  present, no loading skeleton. A fresh server per repeat; the bare baseline is `st.title("Hello")` under the
  same `.streamlit/config.toml`, interleaved with the app. Per repeat (app cold / bare cold, s):
  {", ".join(f"{x['cold']:.2f}/{y['cold']:.2f}" for x, y in zip(a["app"], a["bare"], strict=True))}.
  Where the first visitor's time goes (medians, s after healthy; app / bare): page parsed (DOMContentLoaded)
  {phase(a["app"], "dom")} / {phase(a["bare"], "dom")}, script run started {phase(a["app"], "started")} / \
{phase(a["bare"], "started")}, finished {phase(a["app"], "finished")} / {phase(a["bare"], "finished")}, \
drawn (the figure above) {cold:.2f} / {bare_cold:.2f}.
- (b) The worker stamps each epoch row with `time.time()` when it stores it; an in-page 20 ms timer stamps
  `Date.now()` when the loss chart's Plotly data first holds that epoch. The Train page's live fragment polls
  the store every 0.5 s, so about 0.25 s on average is the polling interval itself. Latencies of the first
  run (s): {", ".join(f"{x:.2f}" for x in b["runs"][0])}.
- (c) VmRSS of the `streamlit run` process from /proc/PID/status, read after the page showed each finished
  run. "before" is read with the Train page open on iris, before the first Train. Per-retrain wall time
  (click → finished on screen): median {statistics.median(c["durations"]):.1f} s, max {max(c["durations"]):.1f} s.
  RSS after every retrain (MB): {", ".join(f"{x:.0f}" for x in after)}.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="landing measurements per app (median)")
    parser.add_argument("--epochs", type=int, default=40, help="epochs per latency run (digits MLP)")
    parser.add_argument("--latency-runs", type=int, default=2)
    parser.add_argument("--retrains", type=int, default=20)
    parser.add_argument("--out", help="also write the markdown fragment to this file")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from playwright.sync_api import sync_playwright

    meta = run_meta("bench_ui.py")
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        meta["chromium"] = browser.version
        try:
            print("(a) landing …", file=sys.stderr)
            a = bench_landing(browser, args.repeats)
            print("(b) epoch-to-screen latency …", file=sys.stderr)
            b = bench_latency(browser, args.epochs, args.latency_runs)
            print(f"(c) memory over {args.retrains} retrains …", file=sys.stderr)
            c = bench_memory(browser, args.retrains)
        finally:
            browser.close()
    meta["load_after"] = machine()["load"]
    meta["elapsed"] = time.monotonic() - started
    text = report(a, b, c, args, meta)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
