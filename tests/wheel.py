"""A fresh virtual environment with KF Studio installed from its wheel, for the tests of `pip install .`.

The wheel is built from a copy of the sources without build isolation (the build would download setuptools; this
environment's is new enough) and installed without its dependencies, which the environment sees from this one's
site-packages: nothing is downloaded. Commands run from outside the checkout import only the installed copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["kfcore", "kfstudio", "ui", "app_pages", "pyproject.toml", "README.md", "requirements.txt"]


def installed_venv(tmp: Path) -> Path:
    src = tmp / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(src),
            "-w",
            str(tmp / "dist"),
        ],
        check=True,
        cwd=tmp,
    )
    env_dir = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)], check=True)
    wheel = next((tmp / "dist").glob("kf_studio-*.whl"))
    subprocess.run([env_dir / "bin" / "python", "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True)
    return env_dir


def outside_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would point at the checkout or its store."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KF_HOME")}
    return {**env, **extra}
