"""`pip install .` gives a working `kfcore` command (tests/wheel.py; the `kfstudio` one: tests/browser/test_package.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.wheel import installed_venv, outside_env


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    return installed_venv(tmp_path_factory.mktemp("package"))


@pytest.mark.timeout(300)
def test_the_wheel_installs_a_kfcore_command_that_trains_and_lists_runs(venv, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "data": {"source": "builtin", "name": "xor", "n": 60},
                "layers": [{"type": "Dense", "units": 4}],
                "train": {"epochs": 2},
            }
        )
    )
    store = tmp_path / "store"
    trained = subprocess.run(
        [venv / "bin" / "kfcore", "train", str(spec), "--store", str(store)],
        cwd=tmp_path,
        env=outside_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert trained.returncode == 0, trained.stderr
    listed = subprocess.run(
        [venv / "bin" / "kfcore", "runs", "--store", str(store)],
        cwd=tmp_path,
        env=outside_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0 and "finished" in listed.stdout, listed.stdout + listed.stderr
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import kfcore; print(kfcore.__file__)"],
        cwd=tmp_path,
        env=outside_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(venv) in where, where  # the installed copy, not the checkout
