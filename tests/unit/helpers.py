"""Shared by the unit tests: waiting on worker processes, a small real disk to fill."""

import errno
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def wait_for(predicate, timeout: float = 120.0, what: str = "the condition"):
    """Poll `predicate` until it returns something truthy (and return that), or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def small_disk(path: Path, size: str = "2m") -> Iterator[Path]:
    """A real, tiny filesystem (tmpfs) at `path` to fill up; skips the test where mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> Path:
    """Fill the filesystem under `path` to the last byte with one file; delete it to give the space back."""
    filler = path / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return filler
                chunk = chunk[: len(chunk) // 2]


class FullDiskConnection(sqlite3.Connection):
    """A store connection whose writes fail as SQLite's do on a full disk while `full` is set; reads too with
    `reads_too` (SQLite cannot even make its shared-memory file: "disk I/O error")."""

    full = reads_too = False

    def execute(self, sql, *args):
        if FullDiskConnection.reads_too:
            raise sqlite3.OperationalError("disk I/O error")
        if FullDiskConnection.full and sql.split()[0].upper() in ("INSERT", "UPDATE", "DELETE", "BEGIN"):
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, *args)


def spec_with(base: dict, **over):
    """parse_spec of `base` with sections replaced or merged: spec_with(BASE, train={"epochs": 2}) keeps BASE's other
    train fields; a non-dict value replaces the section."""
    from kfcore.spec import parse_spec

    d = dict(base)
    for key, value in over.items():
        d[key] = {**d[key], **value} if isinstance(value, dict) else value
    return parse_spec(d)
