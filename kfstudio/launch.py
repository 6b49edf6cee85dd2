"""The `kfstudio` command: `streamlit run` on the installed app with the studio's Streamlit settings.

Streamlit reads its settings from ./.streamlit/config.toml, which an installed command cannot count on (it runs from
any folder), so the settings file shipped in this package (the repository's .streamlit/config.toml links to it) is
passed as command-line options; options given to `kfstudio` (`--server.port 8502`) come after and win.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SETTINGS = HERE / "streamlit.toml"


def settings_options(path: Path = SETTINGS) -> list[str]:
    """The settings file as Streamlit's `--section.option=value` arguments."""
    options = []
    for section, values in tomllib.loads(path.read_text()).items():
        for name, value in values.items():
            options.append(f"--{section}.{name}={_text(value)}")
    return options


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def main(argv: list[str] | None = None) -> None:
    from streamlit.web import cli

    args = sys.argv[1:] if argv is None else argv
    sys.argv = ["streamlit", "run", str(HERE / "app.py"), *settings_options(), *args]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
