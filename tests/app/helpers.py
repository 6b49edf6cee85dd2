"""What every AppTest file needs: the entrypoint's path, a fresh app (optionally opened from a link), a page
switch that fails on any exception, the text a reader sees of a Markdown body and the ?spec= the page writes."""

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


def address_token(at: AppTest) -> str | None:
    """The ?spec= the page's address-bar script writes (None: it removes the parameter)."""
    bodies = [h.proto.body for h in at.sidebar.get("html") if "replaceState" in h.proto.body]
    assert len(bodies) == 1, bodies
    found = re.search(r'const u = new URL\(location.href\), t = ("[A-Za-z0-9_-]+"|null);', bodies[0])
    assert found, bodies[0]
    return None if found[1] == "null" else found[1].strip('"')


def cookie_scripts(at: AppTest) -> list[str]:
    """The sidebar's scripts that set the owner cookie (the address-bar script is another one)."""
    return [h.proto.body for h in at.sidebar.get("html") if "document.cookie" in h.proto.body]
