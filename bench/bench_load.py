"""Many people at once (load target): N browser sessions each train a small model against one server.

    python bench/bench_load.py [--sessions 8] [--epochs 15] [--dataset iris] [--no-hosted]
                               [--max-concurrent 1] [--repeats 3] [--no-baseline] [--out docs/benchmarks-load.md]

Target: at least 8 browser sessions at once each train a small model; all finish, none is lost, page
renders stay under 2 s median while they run, and the server's memory stays bounded.

The whole measurement below is one pass. It runs --repeats times with the app as shipped, then once more as
a baseline with Streamlit's default `runner.postScriptGC = true` (a full gc.collect after every script run,
fragments included), the setting that kept the server's one core saturated until .streamlit/config.toml
turned it off. The report starts with a row per pass and the median across passes, then the last app
pass in detail.

One `streamlit run app.py` server (conftest's start_server: its own temporary KF_HOME, a free port) in
hosted mode (KF_HOSTED=1; --no-hosted leaves it unset) with KF_MAX_CONCURRENT=1 and per-session / total
run limits generous enough for the load (KF_MAX_RUNS_PER_SESSION=4, KF_MAX_RUNS_TOTAL=max(16, 2N)). One headless
Chromium; each session is its own browser context (its own cookies and Streamlit session: a separate
person), all driven round-robin from this one thread through Playwright's sync API.

1. Open: every session opens the Train page from a share link (/train?spec=RunSpec.to_url()) holding a
   tiny built-in experiment (iris by default, one Dense 16 layer, `--epochs` epochs) and waits until the
   page is idle. All sessions are open before anyone presses Train: without KF_HOSTED a fresh session
   shows whatever run is active (by design, for one user's tabs), which would disable its Train button.
2. Baseline: each session goes Train → Data → Train through the sidebar once, nothing training.
3. Train: every session presses Train, one after another as fast as the pages answer; the run id each
   got is read from its URL (?run=…).
4. Under load: while any of those runs is queued or running, the sessions take turns going to the other
   page (Train ↔ Data) through the sidebar link. A render is timed in the page: from the link's click
   (performance.now() in the same task as the click) until a MutationObserver first sees the new path,
   the new page's title (h1) ("drawn") and then `data-test-script-state="notRunning"` on
   [data-testid="stApp"], i.e. the script run the click started has finished (the render figure; one not
   finished within RENDER_TIMEOUT_S counts as longer than any in the median and p90). Exceptions
   ([data-testid="stException"]) and error alerts are counted after every visit.
5. After: one more baseline round once everything is final, then each session opens Train and must show
   its own run as finished in the sidebar.

Memory and CPU: a background thread reads, every second, VmRSS of the server process (/proc/<pid>/status)
and of its training workers, the load average, how many cores each of the server, its workers, the browser
(Playwright's driver and Chromium), this bench and everything else on the machine used (/proc/*/stat
against /proc/stat), and how long the server takes to answer /_stcore/health (its event loop's latency
with no browser in the way). RSS "before" is read with every session open just before the first Train,
"after" once all runs are final and the after-round is done. A late visitor (a fresh browser context
opening /train just after the Train presses, polled without blocking the renders) shows what a newcomer
sees mid-load: in hosted mode no one else's run, and how long a fresh load takes.

Runs: at the end RunStore(store).list_runs() must hold exactly the runs the sessions started, each
"finished" with every epoch stored, one per session owner. Lost = a submitted run that is missing or not
finished, or a session whose Train press yielded no run. The server log is scanned for tracebacks and
"database is locked". Everything is torn down in `finally` (browser, server, temporary store).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_ui import children, machine, rss_mb, run_meta  # noqa: E402  (after the path set-up)
from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    current_run_id,
    start_server,
    stop_server,
    wait_idle,
)

PAGES = {"Train": "/train", "Data": "/data"}
APP_SETTING = "app (.streamlit/config.toml)"
BASELINE_SETTING = "baseline: postScriptGC on"
OPEN_TIMEOUT_S = 120  # a fresh session on a loaded 2-core machine
RENDER_TIMEOUT_S = 30  # one page render; past this it counts as not finished (longer than any)
RUN_DEADLINE_S = 900  # all runs, queued one after another behind KF_MAX_CONCURRENT
TARGET_RENDER_S = 2.0
RSS_DRIFT_MB = 50  # "bounded": after the load, back within this of before (bench_ui's retrain target)

# Click the sidebar link to `path` and time, in the page, until the script run it started has finished.
# The observer fires on every DOM change, so the first moment all conditions hold is caught exactly
# (not at a polling interval). Result in window.__kfRender: ms, or stays null until then.
RENDER_JS = """
([path, title]) => {
  const link = [...document.querySelectorAll('[data-testid="stSidebarNav"] a')]
    .find(a => new URL(a.href, location.href).pathname === path);
  if (!link) return 'no sidebar link to ' + path;
  const r = window.__kfRender = {drawn: null, idle: null, runs: 0};
  const app = () => document.querySelector('[data-testid="stApp"]');
  const drawn = () => {
    const h1 = document.querySelector('[data-testid="stMain"] h1');
    return location.pathname === path && !!h1 && h1.textContent.trim().startsWith(title);
  };
  const t0 = performance.now();
  const obs = new MutationObserver(records => {
    const el = app();
    if (!el) return;
    // Every value the script state took in this batch, in order (one callback can hold several changes).
    // (React may set the same value again: a record, not a change; count only changes to running.)
    const changes = records.filter(m => m.target === el && m.attributeName === 'data-test-script-state');
    const states = changes.map(m => m.oldValue).slice(1);
    states.push(el.getAttribute('data-test-script-state'));
    let prev = changes.length ? changes[0].oldValue : states[0];
    for (const v of states) { if (v === 'running' && prev !== 'running') r.runs += 1; prev = v; }
    const now = performance.now() - t0;
    const connected = el.getAttribute('data-test-connection-state') === 'CONNECTED';
    if (r.drawn === null) {
      if (!drawn()) return;
      r.drawn = now;  // first drawn in this batch: only the state it ends in counts
      if (connected && states[states.length - 1] === 'notRunning') { r.idle = now; obs.disconnect(); }
    } else if (connected && states.includes('notRunning') && drawn()) {
      r.idle = now; obs.disconnect();
    }
  });
  obs.observe(document, {subtree: true, childList: true, attributes: true, characterData: true,
                         attributeOldValue: true});
  link.click();
  return null;
}
"""
# A fresh load of a page titled `title` has finished its first script run, with Train drawn.
LOADED_JS = """
(title) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const h1 = document.querySelector('[data-testid="stMain"] h1');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED'
    && !!h1 && h1.textContent.trim().startsWith(title) && !!document.querySelector('.st-key-train button');
}
"""
ERRORS_JS = """
() => ({
  exceptions: [...document.querySelectorAll('[data-testid="stException"]')].map(e => e.innerText.slice(0, 300)),
  alerts: [...document.querySelectorAll('[data-testid="stAlertContentError"]')].map(e => e.innerText.slice(0, 300)),
})
"""


@dataclass
class Session:
    index: int
    context: object
    page: object
    where: str = "Train"
    run_id: str | None = None
    submit_error: str | None = None
    press_s: float | None = None  # Train click → the run's id in the URL (the press was handled)
    adopted: str | None = None  # a run this fresh session showed before pressing Train (someone else's)
    exceptions: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    visits: int = 0
    failures: list[str] = field(default_factory=list)  # renders that did not finish, and why


@dataclass
class Sample:
    t: float  # monotonic, when the render finished
    session: int
    to: str
    seconds: float | None  # click → the script run finished; None: not within RENDER_TIMEOUT_S
    drawn: float | None  # click → the new page's title on screen
    runs: int  # script runs (page and fragments) the browser saw start in between
    phase: str  # "before", "load", "after"
    active: int  # runs queued or running when it finished


GROUPS = ("server", "workers", "browser", "bench", "others")


def proc_table() -> dict[int, tuple[int, int]]:
    """pid → (ppid, user + system jiffies) for every process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(stat.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return table


def descendants(table: dict[int, tuple[int, int]], root: int) -> set[int]:
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for kid in kids.get(todo.pop(), []):
            if kid not in found:
                found.add(kid)
                todo.append(kid)
    return found


def busy_jiffies() -> int:
    """Jiffies all CPUs spent not idle (not idle, not waiting for I/O) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]  # guest is in user
    return sum(values) - values[3] - values[4]


class Sampler(threading.Thread):
    """Every second: VmRSS of the server (and of its children together, the training workers), the load
    average, and how many cores each group used since the previous reading: the server process, its
    training workers, the browser (Playwright's driver and Chromium, this process's other descendants),
    this bench process, and everything else on the machine (other people's jobs)."""

    def __init__(self, pid: int, url: str, interval_s: float = 1.0):
        super().__init__(name="kf-bench-sampler", daemon=True)
        self.pid, self.url, self.interval_s = pid, url, interval_s
        self.samples: list[dict] = []
        self._halt = threading.Event()
        self._hz = os.sysconf("SC_CLK_TCK")
        self._last = (time.monotonic(), proc_table(), busy_jiffies())

    def memory(self) -> tuple[float, float]:
        """(server MB, its children's MB together)."""
        workers = 0.0
        for child in children(self.pid):
            try:
                workers += rss_mb(child)
            except (OSError, RuntimeError):
                pass
        return rss_mb(self.pid), workers

    def cores(self) -> dict[str, float]:
        now, table, busy = time.monotonic(), proc_table(), busy_jiffies()
        then, old, old_busy = self._last
        self._last = (now, table, busy)
        seconds = max(now - then, 1e-6) * self._hz
        server_tree = descendants(table, self.pid)
        mine = descendants(table, os.getpid()) - server_tree - {self.pid}
        groups = {"server": {self.pid}, "workers": server_tree, "browser": mine, "bench": {os.getpid()}}
        used = {
            name: sum(table[p][1] - old.get(p, (0, table[p][1]))[1] for p in pids if p in table) / seconds
            for name, pids in groups.items()
        }
        used["others"] = max(0.0, (busy - old_busy) / seconds - sum(used.values()))
        return used

    def health_s(self) -> float | None:
        """Seconds the server takes to answer /_stcore/health: its event loop's latency, without a browser."""
        t = time.monotonic()
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=10) as r:
                r.read()
        except OSError:
            return None
        return time.monotonic() - t

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                server, workers = self.memory()
                load1 = float(Path("/proc/loadavg").read_text().split()[0])
                self.samples.append(
                    {
                        "t": time.monotonic(),
                        "rss": server,
                        "workers_rss": workers,
                        "load1": load1,
                        **self.cores(),
                        "health": self.health_s(),
                    }
                )
            except (OSError, RuntimeError):
                pass
            self._halt.wait(self.interval_s)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def experiment(dataset: str, epochs: int) -> str:
    from kfcore.spec import parse_spec

    return parse_spec(
        {
            "data": {"source": "builtin", "name": dataset},
            "split": {"test": 0.2, "validation": 0.1, "seed": 0},
            "layers": [{"type": "Dense", "units": 16, "activation": "relu"}],
            "train": {"optimizer": "adam", "learning_rate": 0.01, "epochs": epochs, "batch_size": 32, "seed": 0},
        }
    ).to_url()


def check_errors(s: Session) -> None:
    found = s.page.evaluate(ERRORS_JS)
    s.exceptions += found["exceptions"]
    s.alerts += found["alerts"]
    s.visits += 1


def render(s: Session, to: str) -> tuple[float | None, float | None, int]:
    """Go to page `to` through the sidebar in session `s`. Returns seconds until the new page was drawn (its
    title shown) and until the script run the click started had finished (None: not within RENDER_TIMEOUT_S),
    and how many script runs (the page's and its fragments') the browser saw start meanwhile."""
    from playwright.sync_api import Error as PlaywrightError

    r = {"drawn": None, "idle": None, "runs": 0}
    try:
        problem = s.page.evaluate(RENDER_JS, [PAGES[to], to])
        if problem:
            raise RuntimeError(f"session {s.index}: {problem}")
        s.page.wait_for_function("() => window.__kfRender.idle !== null", polling=50, timeout=RENDER_TIMEOUT_S * 1000)
    except PlaywrightError as e:  # a timeout, or the page went away under us: count it, go on
        s.failures.append(f"to {to}: {str(e).splitlines()[0][:200]}")
    try:
        r = s.page.evaluate("() => window.__kfRender") or r
    except PlaywrightError:
        pass
    s.where = to
    check_errors(s)
    ms = lambda v: None if v is None else v / 1000  # noqa: E731
    return ms(r["drawn"]), ms(r["idle"]), r["runs"]


def active_runs(store, run_ids: list[str]) -> int:
    n = 0
    for run_id in run_ids:
        record = store.get(run_id, with_evaluation=False)
        n += record is not None and not record.is_final
    return n


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def round_of_renders(sessions: list[Session], samples: list[Sample], phase: str, store, run_ids: list[str]) -> None:
    """Each session goes to the other page and back."""
    for s in sessions:
        for _ in range(2):
            to = "Data" if s.where == "Train" else "Train"
            drawn, seconds, runs = render(s, to)
            samples.append(
                Sample(time.monotonic(), s.index, to, seconds, drawn, runs, phase, active_runs(store, run_ids))
            )


def open_session(browser, url: str, index: int, token: str) -> Session:
    context = browser.new_context(base_url=url, viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(OPEN_TIMEOUT_S * 1000)
    s = Session(index, context, page)
    page.goto(f"/train?spec={token}")
    wait_idle(page, timeout_s=OPEN_TIMEOUT_S)
    shown = page.evaluate("() => new URLSearchParams(location.search).get('run')")
    if shown:
        s.adopted = shown
    check_errors(s)
    return s


def press_train(s: Session) -> None:
    button = s.page.locator(".st-key-train button")
    if not button.is_enabled():
        s.submit_error = "Train was disabled" + (f" (the page showed run {s.adopted})" if s.adopted else "")
        return
    previous = s.page.evaluate("() => new URLSearchParams(location.search).get('run')")
    t = time.monotonic()
    button.click()
    try:
        s.run_id = current_run_id(s.page, previous, timeout_s=OPEN_TIMEOUT_S)
        s.press_s = time.monotonic() - t
    except Exception as e:  # noqa: BLE001
        wait_idle(s.page, timeout_s=OPEN_TIMEOUT_S)
        alerts = s.page.evaluate(ERRORS_JS)["alerts"]
        s.submit_error = "; ".join(alerts) or f"no run id in the URL ({type(e).__name__})"


class LateVisitor:
    """Someone new opens /train while the others' runs are queued: what does their fresh page show, and how
    long does it take? Non-blocking (a fresh load under load can take a minute): start() sets the navigation
    going, poll() between renders says when the page has finished its first script run."""

    # Stamps, in the page, performance.now() (ms since the navigation started) when the page first holds
    # LOADED_JS's condition for the Train page.
    STAMP_JS = """
    (() => {
      const loaded = LOADED;
      const obs = new MutationObserver(() => {
        if (window.__kfLoaded == null && location.pathname === '/train' && loaded('Train')) {
          window.__kfLoaded = performance.now(); obs.disconnect();
        }
      });
      obs.observe(document, {subtree: true, childList: true, attributes: true});
    })();
    """.replace("LOADED", LOADED_JS.strip())

    def __init__(self, browser, url: str):
        self.context = browser.new_context(base_url=url, viewport=VIEWPORT)
        self.context.add_init_script(self.STAMP_JS)
        self.page = self.context.new_page()
        self.url = url
        self.result: dict | None = None
        self.started = 0.0

    def start(self) -> None:
        self.page.goto("about:blank")
        self.started = time.monotonic()
        self.page.evaluate("u => { setTimeout(() => location.assign(u), 0); }", self.url + "/train")

    def poll(self, store, run_ids: list[str]) -> bool:
        from playwright.sync_api import Error as PlaywrightError

        if self.result is not None:
            return True
        try:
            loaded = self.page.evaluate("() => window.__kfLoaded ?? null")
        except PlaywrightError:  # between documents
            return False
        if loaded is None:
            return False
        page = self.page
        self.result = {
            "seconds": loaded / 1000,
            "active": active_runs(store, run_ids),
            "shows": page.evaluate("() => new URLSearchParams(location.search).get('run')"),
            "train_enabled": page.locator(".st-key-train button").is_enabled(),
            "stop_enabled": page.locator(".st-key-stop button").is_enabled(),
            "errors": page.evaluate(ERRORS_JS),
            # Where a fresh load's time goes: the HTML's response and the JS bundle parsed (DOMContentLoaded).
            "timing": page.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
                                        return {response: n.responseEnd / 1000, dcl: n.domContentLoadedEventEnd / 1000}; }"""),
        }
        self.close()
        return True

    def wait(self, store, run_ids: list[str], timeout_s: float = OPEN_TIMEOUT_S) -> dict:
        end = time.monotonic() + timeout_s
        while not self.poll(store, run_ids):
            if time.monotonic() > end:
                self.close()
                return {"seconds": None, "timeout": timeout_s}
            time.sleep(0.2)
        return self.result

    def close(self) -> None:
        try:
            self.context.close()
        except Exception:  # noqa: BLE001  (already closed)
            pass


def final_check(s: Session) -> str | None:
    """The session, on its Train page, shows its own run as finished; None if so, else what it shows."""
    if s.where != "Train":
        render(s, "Train")
    wait_idle(s.page, timeout_s=OPEN_TIMEOUT_S)
    shown = s.page.evaluate("() => new URLSearchParams(location.search).get('run')")
    sidebar = s.page.locator('[data-testid="stSidebar"]').inner_text()
    main = s.page.locator('[data-testid="stMain"]').inner_text()
    check_errors(s)
    if shown != s.run_id:
        return f"shows run {shown}, not its own {s.run_id}"
    if not re.search(r"finished", sidebar) or "Test accuracy" not in main:
        return "its run is not shown finished: " + sidebar.split("Current run")[-1].strip()[:120]
    return None


def server_log_problems(log: str) -> dict[str, int]:
    return {
        "tracebacks": log.count("Traceback (most recent call last)"),
        "database is locked": log.count("database is locked"),
        "error lines": sum(1 for line in log.splitlines() if re.search(r"\bERROR\b|Exception", line)),
    }


def run_bench(args: argparse.Namespace, meta: dict, server_env: dict[str, str] | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    from kfcore.runs.store import RunStore

    home = Path(tempfile.mkdtemp(prefix="kf-bench-load-"))
    env = {
        "KF_MAX_CONCURRENT": str(args.max_concurrent),
        "KF_MAX_RUNS_PER_SESSION": "4",
        "KF_MAX_RUNS_TOTAL": str(max(16, 2 * args.sessions)),
    }
    env.update(server_env or {})
    if args.hosted:
        env["KF_HOSTED"] = "1"
    else:
        os.environ.pop("KF_HOSTED", None)  # unset, not merely empty, for the server start_server spawns
    meta["env"] = " ".join(f"{k}={v}" for k, v in env.items())
    token = experiment(args.dataset, args.epochs)
    server = sampler = None
    samples: list[Sample] = []
    sessions: list[Session] = []
    out: dict = {"samples": samples, "sessions": sessions}
    started = time.monotonic()
    try:
        server = start_server(home=home, extra_env=env)
        sampler = Sampler(server.pid, server.url)
        sampler.start()
        store = RunStore(home, recover=False)
        out["rss_idle"] = sampler.memory()[0]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            meta["chromium"] = browser.version
            try:
                print(f"opening {args.sessions} sessions …", file=sys.stderr)
                t = time.monotonic()
                for i in range(args.sessions):
                    sessions.append(open_session(browser, server.url, i, token))
                out["open_s"] = time.monotonic() - t
                print("baseline renders …", file=sys.stderr)
                round_of_renders(sessions, samples, "before", store, [])
                time.sleep(1.0)
                out["rss_before"] = sampler.memory()[0]
                print("pressing Train in every session …", file=sys.stderr)
                t_train = time.monotonic()
                for s in sessions:
                    press_train(s)
                out["submit_s"] = time.monotonic() - t_train
                run_ids = [s.run_id for s in sessions if s.run_id]
                late = LateVisitor(browser, server.url)
                late.start()
                print(f"{len(run_ids)} runs submitted; renders under load …", file=sys.stderr)
                t_load = time.monotonic()
                deadline = t_load + RUN_DEADLINE_S
                turn = 0
                while run_ids and active_runs(store, run_ids) and time.monotonic() < deadline:
                    s = sessions[turn % len(sessions)]
                    turn += 1
                    to = "Data" if s.where == "Train" else "Train"
                    drawn, seconds, runs = render(s, to)
                    samples.append(
                        Sample(time.monotonic(), s.index, to, seconds, drawn, runs, "load", active_runs(store, run_ids))
                    )
                    late.poll(store, run_ids)
                    if len(samples) % 10 == 0:
                        done = len(run_ids) - active_runs(store, run_ids)
                        print(f"  {len(samples)} renders, {done}/{len(run_ids)} runs final", file=sys.stderr)
                out["load_s"] = time.monotonic() - t_load
                out["t_train"], out["t_load_end"] = t_train, time.monotonic()
                out["late"] = late.wait(store, run_ids)
                print("after round and final checks …", file=sys.stderr)
                round_of_renders(sessions, samples, "after", store, run_ids)
                out["final"] = {s.index: final_check(s) for s in sessions}
                time.sleep(2.0)
                out["rss_after"] = sampler.memory()[0]
                for s in sessions:
                    s.context.close()
            finally:
                browser.close()
        out["runs"] = store.list_runs()
        out["epochs"] = {r.id: len(store.epochs(r.id)) for r in out["runs"]}
        out["rss"] = list(sampler.samples)
    finally:  # each step even when the one before failed: no server or store may outlive the bench
        try:
            if sampler is not None:
                sampler.stop()
        finally:
            try:
                if server is not None:
                    stop_server(server)
                    out["log"] = server.log()
            finally:
                shutil.rmtree(home, ignore_errors=True)
    out["elapsed"] = time.monotonic() - started
    return out


def stats(values: list[float | None]) -> dict:
    """n, median, p90, max of render times, a render that never finished counting as longer than any."""
    finite = sorted(v for v in values if v is not None)
    ordered = finite + [math.inf] * (len(values) - len(finite))
    if not ordered:
        return {"n": 0, "median": None, "p90": None, "max": None, "timeouts": 0}
    return {
        "n": len(ordered),
        "median": statistics.median(ordered),
        "p90": pct(ordered, 0.9),
        "max": ordered[-1],
        "timeouts": len(values) - len(finite),
    }


def secs(v: float | None) -> str:
    if v is None:
        return "–"
    return f"> {RENDER_TIMEOUT_S:.0f} s" if math.isinf(v) else f"{v:.2f} s"


def stats_text(st: dict) -> str:
    text = f"median {secs(st['median'])}, p90 {secs(st['p90'])}, max {secs(st['max'])}"
    return text + (f" ({st['timeouts']} of {st['n']} not within {RENDER_TIMEOUT_S:.0f} s)" if st["timeouts"] else "")


def headline(out: dict, args: argparse.Namespace) -> dict:
    """The figures one pass is judged by, for the summary across passes."""
    runs = {r.id: r for r in out["runs"]}
    submitted = [s.run_id for s in out["sessions"] if s.run_id]
    finished = [
        rid
        for rid in submitted
        if rid in runs and runs[rid].status == "finished" and out["epochs"].get(rid) == args.epochs
    ]
    window = [r["server"] for r in out["rss"] if out["t_train"] <= r["t"] <= out["t_load_end"]]
    return {
        "load": stats([x.seconds for x in out["samples"] if x.phase == "load"]),
        "before": stats([x.seconds for x in out["samples"] if x.phase == "before"]),
        "finished": len(finished),
        "lost": args.sessions - len(finished),
        "drift": out["rss_after"] - out["rss_before"],
        "server_cpu": statistics.median(window) if window else float("nan"),
        "submit_s": out["submit_s"],
        "press": stats([x.press_s for x in out["sessions"]]),
    }


def summary(passes: list[tuple[str, dict]], args: argparse.Namespace, meta: dict) -> str:
    """One row per pass, then the median of the app's passes against the baseline pass run alongside."""
    rows = [
        "| Pass | Server setting | Renders under load | Median | p90 | No run active (same pass), median | "
        "Ratio load / no run | Pressing Train in all sessions (click → run id, median) | "
        "Server CPU (median, of one core) | Runs finished | Memory drift |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, (label, h) in enumerate(passes, 1):
        load, before = h["load"], h["before"]
        ratio = (
            f"{load['median'] / before['median']:.2f}×"
            if load["median"] and before["median"] and not math.isinf(load["median"])
            else "–"
        )
        rows.append(
            f"| {i} | {label} | {load['n']}"
            + (f" ({load['timeouts']} not within {RENDER_TIMEOUT_S:.0f} s)" if load["timeouts"] else "")
            + f" | {secs(load['median'])} | {secs(load['p90'])} | {secs(before['median'])} | {ratio} | "
            f"{h['submit_s']:.1f} s ({secs(h['press']['median'])}) | "
            f"{100 * h['server_cpu']:.0f} % | {h['finished']} of {args.sessions} | {h['drift']:+.0f} MB |"
        )
    app = [h["load"]["median"] for label, h in passes if label == APP_SETTING and h["load"]["median"] is not None]
    base = [h["load"]["median"] for label, h in passes if label == BASELINE_SETTING and h["load"]["median"] is not None]
    unmeasured = [h for label, h in passes if label == BASELINE_SETTING and h["load"]["median"] is None]
    lines = ["\n".join(rows), ""]
    if app:
        mid = statistics.median(app)
        verdict = "met" if mid < TARGET_RENDER_S else "**not met**"
        lines.append(
            f"**Median render under load over the {len(app)} pass{'es' if len(app) != 1 else ''} with the app's settings: "
            f"{secs(mid)}** (target < {TARGET_RENDER_S:.0f} s: {verdict})."
        )
        if base:
            b = statistics.median(base)
            ratio = "more than " + f"{RENDER_TIMEOUT_S / mid:.0f}×" if math.isinf(b) else f"{b / mid:.1f}×"
            lines.append(
                f"Baseline in the same run: the same code with Streamlit's default `runner.postScriptGC = "
                f"true`: median {secs(b)}; the app's setting is {ratio} faster."
            )
        for h in unmeasured:
            app_submit = statistics.median(h2["submit_s"] for label, h2 in passes if label == APP_SETTING)
            lines.append(
                f"Baseline in the same run (the same code with Streamlit's default `runner.postScriptGC = "
                f"true`): no render could be timed under load — pressing Train in the {args.sessions} "
                f"sessions took {h['submit_s']:.0f} s (click → run id median {secs(h['press']['median'])}), "
                f"and every submitted run had finished by then ({h['finished']} of {args.sessions} runs finished); "
                f"with the app's settings the same presses took "
                f"{app_submit:.1f} s ({h['submit_s'] / app_submit:.1f}× longer under the baseline)."
            )
    return "\n".join(lines)


def report(out: dict, args: argparse.Namespace, meta: dict) -> str:
    med = statistics.median
    nan = float("nan")
    n = args.sessions
    sessions: list[Session] = out["sessions"]
    samples: list[Sample] = out["samples"]
    runs = {r.id: r for r in out["runs"]}

    # Runs.
    submitted = [s.run_id for s in sessions if s.run_id]
    finished = [
        rid
        for rid in submitted
        if rid in runs and runs[rid].status == "finished" and out["epochs"].get(rid) == args.epochs
    ]
    missing = [rid for rid in submitted if rid not in runs]
    not_finished = {
        rid: f"{runs[rid].status}, {out['epochs'].get(rid)} epochs"
        for rid in submitted
        if rid in runs and rid not in finished
    }
    unasked = [rid for rid in runs if rid not in submitted]
    no_run = [s.index for s in sessions if not s.run_id]
    lost = len(missing) + len(not_finished) + len(no_run)
    owners = {runs[rid].owner for rid in submitted if rid in runs}
    wrong_final = {i: why for i, why in out["final"].items() if why}
    durations = [runs[rid].finished - runs[rid].started for rid in finished if runs[rid].started]
    waits = [runs[rid].started - runs[rid].created for rid in finished if runs[rid].started]
    times = [runs[rid] for rid in submitted if rid in runs]
    span = (max(r.finished or r.created for r in times) - min(r.created for r in times)) if times else nan
    presses = [s.press_s for s in sessions if s.press_s is not None]
    refused = "; ".join(f"session {s.index}: {s.submit_error}" for s in sessions if s.submit_error) or "never"
    adopted = [s.index for s in sessions if s.adopted]

    # Renders: under load = every render started while at least one run was queued or running.
    load = [x for x in samples if x.phase == "load"]
    idle, drawn = stats([x.seconds for x in load]), stats([x.drawn for x in load])
    by_page = {to: stats([x.seconds for x in load if x.to == to]) for to in PAGES}
    before = stats([x.seconds for x in samples if x.phase == "before"])
    after = stats([x.seconds for x in samples if x.phase == "after"])
    reruns = [x.runs for x in load]
    render_ok = idle["median"] is not None and idle["median"] < TARGET_RENDER_S

    # Memory, CPU, load.
    rss = out["rss"]
    window = [r for r in rss if out["t_train"] <= r["t"] <= out["t_load_end"]]
    peak = max(r["rss"] for r in rss)
    workers_peak = max(r["workers_rss"] for r in rss)
    load_peak = max(r["load1"] for r in rss)
    cpu = [r["server"] for r in window] or [nan]
    cores = {g: statistics.fmean(r[g] for r in window) if window else nan for g in GROUPS}
    health = stats([10.0 if r["health"] is None else r["health"] for r in window])  # None: no answer in 10 s
    drift = out["rss_after"] - out["rss_before"]

    # Errors.
    exceptions = [e for s in sessions for e in s.exceptions]
    alerts = [a for s in sessions for a in s.alerts]
    visits = sum(s.visits for s in sessions)
    log = server_log_problems(out.get("log", ""))
    late = out["late"]
    late_ok = late["seconds"] is not None
    late_own = late_ok and late["shows"] is None and late["train_enabled"]
    if late_ok:
        exceptions += late["errors"]["exceptions"]
        alerts += late["errors"]["alerts"]
        visits += 1
    if not late_ok:
        late_text = f"its page had not finished loading after {late['timeout']} s"
    else:
        late_text = (
            f"shows {'run ' + late['shows'] if late['shows'] else 'no run'}, Train "
            f"{'enabled' if late['train_enabled'] else 'disabled'}, Stop "
            f"{'enabled' if late['stop_enabled'] else 'disabled'}"
        )
        if late["shows"]:
            owner = runs[late["shows"]].owner if late["shows"] in runs else None
            who = next((s.index for s in sessions if s.run_id == late["shows"]), None)
            late_text += f" (session {who}'s run, owner {owner[:8] if owner else '?'}…)"
        late_text += f"; {late['active']} runs were still active when it had loaded"

    ok = lambda good: "yes" if good else "**no**"  # noqa: E731
    rows = [
        "| Target | Measured | Goal | Met |",
        "|---|---|---|---|",
        f"| Runs finished (status `finished`, all {args.epochs} epochs stored) | {len(finished)} of {n} sessions' "
        f"runs ({len(owners)} distinct owners) | {n} of {n} | {ok(len(finished) == n)} |",
        f"| Runs lost (Train gave no run, or the run is missing from the store or not finished) | {lost}"
        + (f" (no run: sessions {no_run}; missing {missing}; not finished {not_finished})" if lost else "")
        + f"; runs nobody asked for: {len(unasked)} | 0 | {ok(lost == 0 and not unasked)} |",
        f"| Each session's Train page shows its own run finished at the end | {n - len(wrong_final)} of {n}"
        + (f" ({'; '.join(f'session {i}: {w}' for i, w in wrong_final.items())})" if wrong_final else "")
        + f" | {n} of {n} | {ok(not wrong_final)} |",
        f"| Page render while runs were active: sidebar click → the script run it started has finished "
        f"({idle['n']} renders) | {stats_text(idle)} | median < {TARGET_RENDER_S:.0f} s | {ok(render_ok)} |",
        f"| … of which: click → the new page's title drawn | {stats_text(drawn)} | – | – |",
        f"| Server memory (VmRSS of `streamlit run`, every second) | {n} sessions open, before Train "
        f"{out['rss_before']:.0f} MB; peak {peak:.0f} MB; after {out['rss_after']:.0f} MB (drift {drift:+.0f} MB) | "
        f"after within ±{RSS_DRIFT_MB} MB of before | {ok(abs(drift) <= RSS_DRIFT_MB)} |",
        f'| Exceptions on pages ([data-testid="stException"], checked after each of {visits} page visits) | '
        f"{len(exceptions)} | 0 | {ok(not exceptions)} |",
        f"| A new visitor opening /train mid-load sees no one else's run | {late_text} | "
        + (
            f"no run shown, Train enabled | {ok(late_own)} |"
            if args.hosted
            else "informational: without KF_HOSTED a new tab shows an active run by design | – |"
        ),
    ]
    page_text = "; ".join(f"to {to}: {stats_text(v)} ({v['n']})" for to, v in by_page.items())
    every = ", ".join(secs(math.inf if x.seconds is None else x.seconds).removesuffix(" s") for x in load)
    alerts_text = "; ".join(sorted(set(alerts)))[:600] or "none"
    exc_text = "; ".join(sorted(set(exceptions)))[:600] or "none"
    failures = "; ".join(f"session {s.index} {f}" for s in sessions for f in s.failures)[:600]
    late_load = (
        f"{late['seconds']:.1f} s (HTML received at {late['timing']['response']:.1f} s, "
        f"DOMContentLoaded at {late['timing']['dcl']:.1f} s)"
        if late_ok
        else f"over {late['timeout']} s"
    )
    details = [
        f"Sessions: opened one after another from a share link in {out['open_s']:.1f} s, all before anyone "
        f"pressed Train; then each pressed Train ({out['submit_s']:.1f} s for all {n}; click → run id in the URL "
        f"median {med(presses) if presses else nan:.1f} s, max {max(presses) if presses else nan:.1f} s). "
        f"Sessions that opened showing a run: {adopted or 'none'}. Train refused: {refused}.",
        f"Runs: KF_MAX_CONCURRENT={args.max_concurrent}, so they queue and train one after another: "
        f"{span:.0f} s from the first created to the last finished. Queue wait (created → started) median "
        f"{med(waits) if waits else nan:.1f} s, max {max(waits) if waits else nan:.1f} s; training (started → "
        f"finished) median {med(durations) if durations else nan:.1f} s, max {max(durations) if durations else nan:.1f} s.",
        f"Renders under load by target page: {page_text}. Script runs (the page's and its live fragments') the "
        f"browser saw start during one render: median {med(reruns) if reruns else nan:.0f}, max "
        f"{max(reruns) if reruns else 0}. For comparison, with no run active: before Train {stats_text(before)} "
        f"({before['n']}); after all were final {stats_text(after)} ({after['n']})."
        + (f" Renders that did not finish: {failures}." if failures else ""),
        f"Every render under load, in order (s): {every or 'none'}.",
        f"The late visitor's fresh load (new browser context, /train, until its first script run had finished): "
        f"{late_load}.",
        f"CPU while runs were active, mean cores used (of {meta['cores']}): server {cores['server']:.2f}, training "
        f"worker {cores['workers']:.2f}, Chromium and Playwright's driver {cores['browser']:.2f}, this bench "
        f"{cores['bench']:.2f}, everything else on the machine {cores['others']:.2f}. The server process "
        f"(all threads; the GIL lets it use about one core) ran at median {100 * med(cpu):.0f} %, max "
        f"{100 * max(cpu):.0f} % of a core; it answered /_stcore/health (asked from this process every second, "
        f"no browser involved) in {stats_text(health)}. Memory {out['rss_idle']:.0f} MB right after start, before any session; "
        f"the training worker peaked at {workers_peak:.0f} MB (not in the server figure).",
        f"Errors: exception elements {len(exceptions)} ({exc_text}); error alerts (stAlertContentError) "
        f"{len(alerts)} ({alerts_text}). Server log: {log['tracebacks']} tracebacks, "
        f'{log["database is locked"]} "database is locked", {log["error lines"]} lines naming ERROR or Exception.',
    ]
    table = "\n".join(rows)
    details_text = "\n".join(f"- {d}" for d in details)
    hosted = "hosted mode" if args.hosted else "local mode (KF_HOSTED unset)"
    return f"""## Load: {n} browser sessions training at once (bench/bench_load.py)

Measured {meta["date"]} with

    {meta["command"]}

Machine: {meta["cores"]} CPU cores (`nproc`), {meta["cpu"]}; Chromium {meta.get("chromium", "?")} (headless, one
browser with {n} contexts, on the same machine as the server), Streamlit {meta["streamlit"]}, Python
{platform.python_version()}; code at {meta["revision"]}. Server: {hosted}, {meta["env"]}.
Load average before {meta["load_before"]}, after {meta["load_after"]}; highest 1-minute load seen during
the run {load_peak:.2f} (this bench's browser, server and worker included; everything else on the machine used
{cores["others"]:.2f} cores on average while runs were active). Each session trains {args.dataset}, Dense 16,
{args.epochs} epochs, batch 32. Took {out["elapsed"]:.0f} s in all.

{table}

{details_text}

How a render is timed: in the page, performance.now() when the sidebar link is clicked (same task as the
click); a MutationObserver then notes the first moment the path is the new page's and its h1 the new
title ("drawn"), and the first moment after that at which [data-testid="stApp"] says
`data-test-script-state="notRunning"` and CONNECTED (the render figure: the script run the click started
has finished, as the browser saw it). Sessions keep their Streamlit session throughout (sidebar links, no
reloads), as a person clicking around does, and every session's live fragments (0.5 s on Train, 1 s in the
sidebar) keep polling the store meanwhile. Chromium draws all {n} pages on the same cores, so the figures
include the browser's share of the CPU.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help="browser sessions, each training one run")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--dataset", default="iris", help="a built-in set: iris, circle, digits, …")
    parser.add_argument("--max-concurrent", type=int, default=1, help="KF_MAX_CONCURRENT for the server")
    parser.add_argument("--no-hosted", dest="hosted", action="store_false", help="leave KF_HOSTED unset")
    parser.add_argument("--repeats", type=int, default=3, help="passes with the app's settings (median reported)")
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the baseline pass with Streamlit's default post-script garbage collection",
    )
    parser.add_argument(
        "--out",
        default=str(REPO / "docs" / "benchmarks-load.md"),
        help="write the markdown report here ('' to only print it)",
    )
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    meta = run_meta("bench_load.py")
    meta["cores"] = len(os.sched_getaffinity(0))  # what `nproc` prints
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
    )
    meta["revision"] = (head.stdout.strip() or "?") + (" plus uncommitted changes" if dirty.stdout.strip() else "")
    passes: list[tuple[str, dict]] = []
    plan = [(APP_SETTING, {})] * args.repeats
    if args.baseline:
        plan.append((BASELINE_SETTING, {"STREAMLIT_RUNNER_POST_SCRIPT_GC": "true"}))
    last_app = None
    for i, (label, server_env) in enumerate(plan, 1):
        print(f"pass {i} of {len(plan)}: {label}", file=sys.stderr)
        pass_meta = dict(meta)
        out = run_bench(args, pass_meta, server_env)
        pass_meta["load_after"] = machine()["load"]
        passes.append((label, headline(out, args)))
        if label == APP_SETTING:
            last_app = report(out, args, pass_meta)
        meta = {**meta, "load_before": machine()["load"]}
    text = (
        f"## Load: {args.sessions} browser sessions training at once (bench/bench_load.py)\n\n"
        f"Measured {meta['date']} with `{meta['command']}`: {args.repeats} pass{'es' if args.repeats != 1 else ''} "
        "with the app's settings"
        + (", then one baseline pass" if args.baseline else "")
        + ", each on a fresh server and store.\n\n"
        + summary(passes, args, meta)
        + "\n\n"
        + (
            last_app.replace("## Load:", "### The last pass with the app's settings, in detail —", 1)
            if last_app
            else ""
        )
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
