"""A new browser's first visit to a hosted studio (KF_HOSTED=1): the landing that also sets the `kf_owner` cookie.

    python bench/bench_hosted_landing.py [--repeats 22] [--checkout DIR]

One `streamlit run app.py` of the checkout (default: this one) with its own store; each repeat opens / in a
fresh browser context (no cookie, new session) and stops the clock when the script has finished and nothing
is loading (tests/browser/conftest.wait_idle with no quiet window), then checks that the cookie was set. The
first two loads warm the server up and are left out. Run it on two checkouts, interleaved, to compare them.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, start_server, stop_server, wait_idle  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=22)
    parser.add_argument("--checkout", type=Path, default=REPO, help="the tree whose app.py is served")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="kf-bench-hosted-"))
    server = start_server(home=home, extra_env={"KF_HOSTED": "1"}, cwd=args.checkout)
    times = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            for _ in range(args.repeats):
                context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
                page = context.new_page()
                start = time.perf_counter()
                page.goto("/")
                wait_idle(page, quiet_ms=0)
                times.append(time.perf_counter() - start)
                assert any(c["name"] == "kf_owner" for c in context.cookies()), "no owner cookie was set"
                context.close()
    finally:
        stop_server(server)
        shutil.rmtree(home, ignore_errors=True)
    measured = times[2:]
    print(
        f"{args.checkout}: hosted first-visit landing median {statistics.median(measured):.3f} s, "
        f"min {min(measured):.3f} s, n={len(measured)}"
    )


if __name__ == "__main__":
    main()
