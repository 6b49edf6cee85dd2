"""Where the pages are: by absolute path, so links work whichever file Streamlit runs as the entry script (the
repository's app.py, or kfstudio/app.py for the installed `kfstudio` command), which relative paths depend on."""

from __future__ import annotations

from pathlib import Path

PAGES = Path(__file__).resolve().parent.parent / "app_pages"


def page(name: str) -> Path:
    """The page script `name` ("data", "train", …), for st.Page, st.page_link and st.switch_page."""
    return PAGES / f"{name}.py"
