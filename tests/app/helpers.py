"""What every AppTest file needs: the entrypoint's path, a fresh app (optionally opened from a link), and a page
switch that fails on any exception."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def go(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_app(query: dict[str, str] | None = None, timeout_s: float = 30) -> AppTest:
    """A new session on the entrypoint, opened with these query parameters (?run=…, ?spec=…), after its first run."""
    at = AppTest.from_file(APP, default_timeout=timeout_s)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    return at
