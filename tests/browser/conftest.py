"""Browser tests: a real `streamlit run app.py` server on a free localhost port with its own store,
driven in Debian's Chromium through the `playwright` package (see ../../../shared/browser-testing.md).

Fixtures: `app_server` (session; .url, .store_dir, .pid, .store()), `browser` (session),
`page` (a fresh context + page per test, base URL = the server, viewport 1440x1000), `runs` (session;
SPECS trained into the server's store).
Helpers: `wait_idle`, `goto` (a fresh load: a new Streamlit session), `nav` (the sidebar link: same
session), `shot` (a screenshot into artifacts/browser/), `exceptions`, `cancel_active_runs`,
`chart_points` (points on a live curve, optionally awaited), `choose` (a selectbox option), `set_slider`,
`current_run_id`, `wait_until` (a condition outside the page, e.g. the store);
`start_server`/`stop_server` for a server of your own (bench/bench_ui.py uses them too).

Never `playwright install`: the browser is /usr/bin/chromium, and the tests skip without it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1440, "height": 1000}
SERVER_START_S = 60  # the first start imports Streamlit and Plotly cold
IDLE_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AppServer:
    url: str
    store_dir: Path
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def store(self):
        from kfcore.runs.store import RunStore

        return RunStore(self.store_dir, recover=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = SERVER_START_S) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        try:  # the pause between polls, cut short if the server exits
            process.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            pass
    raise TimeoutError(f"streamlit at {url} was not healthy within {timeout_s} s")


def start_server(
    app: str = "app.py", home: Path | None = None, extra_env: dict[str, str] | None = None, cwd: Path = REPO
) -> AppServer:
    """Start `streamlit run <app>` on a free port with KF_HOME=<home> and wait until it is healthy."""
    home = home or Path(tempfile.mkdtemp(prefix="kf-browser-"))
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "KF_HOME": str(home),
        "KF_MAX_CONCURRENT": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **(extra_env or {}),
    }
    log_path = home / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        app,
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = AppServer(url=f"http://127.0.0.1:{port}", store_dir=home, process=process, log_path=log_path)
    try:
        wait_healthy(server.url, process)
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: AppServer, timeout_s: float = 10) -> None:
    """Terminate the server (its training workers notice their parent is gone), then kill it if it lingers."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=timeout_s)


@pytest.fixture(scope="session")
def app_server():
    home = Path(tempfile.mkdtemp(prefix="kf-browser-"))
    server = start_server(home=home)
    try:
        yield server
    finally:
        stop_server(server)
        if os.environ.get("KF_KEEP_BROWSER_STORE"):
            print(f"\nbrowser test store kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium); browser tests skipped")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -r requirements-dev.txt)")
    expect.set_options(timeout=IDLE_TIMEOUT_S * 1000)  # as long as the pages' own waits, not Playwright's 5 s
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, app_server):
    context = browser.new_context(base_url=app_server.url, viewport=VIEWPORT)
    pg = context.new_page()
    pg.set_default_timeout(IDLE_TIMEOUT_S * 1000)
    try:
        yield pg
    finally:
        context.close()


SPECS = {
    "bt iris": {
        "data": {"source": "builtin", "name": "iris"},
        "layers": [{"type": "Dense", "units": 12, "activation": "relu"}],
        "train": {"epochs": 20, "learning_rate": 0.01},
    },
    "bt digits": {
        "data": {"source": "builtin", "name": "digits"},
        "layers": [{"type": "Dense", "units": 32, "activation": "relu"}],
        "train": {"epochs": 3},
    },
    # Same data as "bt digits", so it may be drawn dashed behind it (only comparable runs are); not "bt …".
    "digits again": {
        "data": {"source": "builtin", "name": "digits"},
        "layers": [{"type": "Dense", "units": 16, "activation": "relu"}],
        "train": {"epochs": 3},
    },
    "reg diabetes": {
        "data": {"source": "builtin", "name": "diabetes"},  # not "bt …": the Runs test filters on it
        "layers": [{"type": "Dense", "units": 16, "activation": "relu"}],
        "train": {"epochs": 3, "learning_rate": 0.03},
    },
}
# What `python -m kfcore train SPEC --store DIR` does for each spec, in one process (TensorFlow imported once).
TRAIN = """
import json, sys
from kfcore.runs.jobs import execute_run
from kfcore.spec import RunSpec
from kfcore.runs.store import RunStore
store = RunStore(sys.argv[1], recover=False)
ids = {}
for name, spec in json.loads(sys.argv[2]).items():
    run_id = store.create_run(RunSpec.from_dict(spec).to_dict(), name=name)
    store.start_in_process(run_id)
    result = execute_run(store, run_id)
    assert result.status == "finished", (name, result.error)
    ids[name] = run_id
print(json.dumps(ids))
"""


@pytest.fixture(scope="session")
def runs(app_server):
    """SPECS trained into the shared server's store once (the way the CLI trains them): name -> RunRecord."""
    out = subprocess.run(
        [sys.executable, "-c", TRAIN, str(app_server.store_dir), json.dumps(SPECS)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    ids = json.loads(out.stdout.strip().splitlines()[-1])
    store = app_server.store()
    return {name: store.get(run_id) for name, run_id in ids.items()}


# -- helpers ----------------------------------------------------------------------------------------

# True once the app has been connected, not running a script and showing no loading skeleton for
# `quiet` ms in a row, counted from this call (`token`). A live run_every fragment reruns every half
# second, so the state flickers running/notRunning; a short quiet window rides through that instead of
# catching a flicker, and it also covers the gap between a click and the rerun it triggers. Skeletons:
# Streamlit loads the code of many widgets (buttons, number inputs, toggles, charts) lazily, so on a
# fresh page they are grey placeholders for a moment after the script has finished.
_IDLE_JS = """
([quiet, token]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const now = performance.now();
  if (window.__kfIdleToken !== token) { window.__kfIdleToken = token; window.__kfBusySince = now; }
  const idle = app && app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED'
    && !document.querySelector('[data-testid="stSkeleton"], [data-testid="stAppSkeleton"]');
  if (!idle) { window.__kfBusySince = now; return false; }
  return now - window.__kfBusySince >= quiet;
}
"""


def wait_idle(page, timeout_s: float = IDLE_TIMEOUT_S, quiet_ms: int = 300) -> None:
    """Wait until the script has finished and stayed finished for `quiet_ms` (robust to fragment reruns)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_s * 1000)
    page.wait_for_function(_IDLE_JS, arg=[quiet_ms, uuid.uuid4().hex], polling=50, timeout=timeout_s * 1000)


def goto(page, path: str = "/", timeout_s: float = IDLE_TIMEOUT_S) -> None:
    """Load `path` (e.g. "/", "/train", "/train?run=…") afresh: a new Streamlit session; wait until idle."""
    page.goto(path)
    wait_idle(page, timeout_s)


def nav(page, title: str, timeout_s: float = IDLE_TIMEOUT_S) -> None:
    """Open a page through the sidebar navigation (keeps the session), e.g. nav(page, "Train")."""
    link = page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first
    target = urllib.parse.urlsplit(link.get_attribute("href") or "/").path
    link.click()
    page.wait_for_function("p => location.pathname === p", arg=target, timeout=timeout_s * 1000)
    wait_idle(page, timeout_s)


def shot(page, name: str, full_page: bool = True) -> Path:
    """Save a screenshot as artifacts/browser/<name>.png (git-ignored) and return its path.

    Streamlit scrolls inside <main data-testid="stMain">, not the document, so a full-page shot
    grows the viewport to the main area's height for the moment of the screenshot.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 0")
    if full_page and size and height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": min(height, 8000)})
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        try:
            page.screenshot(path=str(path))
        finally:
            page.set_viewport_size(size)
    else:
        page.screenshot(path=str(path))
    return path


def exceptions(page) -> list[str]:
    """The text of every exception element on the page (Streamlit's st.exception / uncaught errors)."""
    return page.locator('[data-testid="stException"]').all_inner_texts()


def cancel_active_runs(app_server: AppServer, timeout_s: float = 30) -> None:
    """Ask every queued or running run in the server's store to stop, and wait until they are final."""
    store = app_server.store()
    for r in store.list_runs():
        if not r.is_final:
            store.request_cancel(r.id)
    wait_until(lambda: all(r.is_final for r in store.list_runs()), timeout_s, "the active runs stopping")


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.2):
    """Wait for a condition outside the page (the run store), the one polling loop these tests keep: what the
    page shows is awaited with Playwright's auto-waiting `expect` / wait_for_function instead. Returns its value."""
    done = threading.Event()  # never set: its wait() is the pause between polls
    end = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() >= end:
            raise TimeoutError(f"{what} did not happen within {timeout_s} s")
        done.wait(interval_s)
    return value


# The number of points on the live loss chart's "train" curve (-1: no chart drawn yet). While the
# fragment reruns, Streamlit keeps the old chart (data-stale="true", hidden) beside the new one: skip it.
CHART_POINTS_JS = """
(key) => {
  let best = -1;
  for (const box of document.querySelectorAll('.st-key-' + key)) {
    if (box.getAttribute('data-stale') === 'true') continue;
    for (const el of box.querySelectorAll('.js-plotly-plot')) {
      const train = (el.data || []).find(d => d.name === 'train');
      best = Math.max(best, train ? train.x.length : 0);
    }
  }
  return best;
}
"""


def chart_points(page, key: str = "chart_loss", at_least: int | None = None, timeout_s: float = IDLE_TIMEOUT_S) -> int:
    """The points on the live curve `key`; with `at_least`, first wait (in the page) until it has that many."""
    if at_least is not None:
        # Return the count that met the wait: a second read can land while a rerun redraws the chart (none shown).
        found = page.wait_for_function(
            f"([key, n]) => {{ const c = ({CHART_POINTS_JS})(key); return c >= n ? c + 1 : 0; }}",
            arg=[key, at_least],
            polling=100,
            timeout=timeout_s * 1000,
        )
        return int(found.json_value()) - 1
    return page.evaluate(CHART_POINTS_JS, key)


def choose(page, key: str, option: str) -> None:
    """Pick `option` (its shown label) in the selectbox `key`."""
    page.locator(f".st-key-{key} input").click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)
    from playwright.sync_api import expect

    expect(page.locator(f".st-key-{key} input")).to_have_value(option)


def set_slider(page, key: str, position: int, attempts: int = 4) -> None:
    """Move slider `key` to `position` (its value; a select_slider's option index) with the keyboard.

    A rerun that lands between key presses can redraw the slider and drop presses, so read the value
    back and go on until it is right.
    """
    for _ in range(attempts):
        thumb = page.locator(f".st-key-{key} input[type=range]")
        now, low, high = int(thumb.input_value()), int(thumb.get_attribute("min")), int(thumb.get_attribute("max"))
        if now == position:
            return
        thumb.focus()
        if position in (low, high):
            page.keyboard.press("Home" if position == low else "End")
        else:
            for _ in range(abs(position - now)):
                page.keyboard.press("ArrowRight" if position > now else "ArrowLeft")
        wait_idle(page)
    from playwright.sync_api import expect

    expect(page.locator(f".st-key-{key} input[type=range]")).to_have_value(str(position))


def current_run_id(page, previous: str | None = None, timeout_s: float = IDLE_TIMEOUT_S) -> str:
    """The run the page shows, from its URL (?run=…); with `previous`, wait until it names another run."""
    page.wait_for_function(
        "prev => { const r = new URLSearchParams(location.search).get('run'); return r && r !== prev; }",
        arg=previous or "",
        timeout=timeout_s * 1000,
    )
    return page.evaluate("() => new URLSearchParams(location.search).get('run')")
