"""What every AppTest file needs: the entrypoint's path, a fresh app (optionally opened from a link), a page
switch that fails on any exception, and the text a reader sees of a Markdown body."""

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui.text import WORD_JOINER

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


def shown(markdown: str) -> str:
    """What a reader sees of a Markdown body (st.error, st.caption, …) whose user text went through ui.text.plain:
    the backslash escapes resolved and the invisible word joiners gone."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(WORD_JOINER, "")
