"""A real Ray cluster on this machine for the tests: a head node and a second node joined to it.

`ray stop` stops every Ray process on the machine (it has no way to name one cluster), and other people's
clusters may run here. So each node is `ray start --block` in a session of its own under a private --temp-dir,
and stopping the cluster ends exactly those sessions, then any process left whose command line names that temp
dir (Ray's workers carry it): nothing else is touched.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

# Token authentication (Ray's default for a local cluster; a driver must ask for it too) with a token of this test
# process's own: the default one in ~/.ray is shared by every Ray started on the machine, and regenerated. Ray reads
# it once per process, so it is set when this module is imported, before anything here connects.
os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
START_S = 120.0  # a busy 2-core machine takes tens of seconds to bring up two nodes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    address: str
    temp_dir: Path
    node_pids: list[int]  # the `ray start --block` processes; every Ray process of the cluster runs below one

    def processes(self) -> dict[int, str]:
        """The cluster's processes (below its nodes), each with its command line (a worker's: "ray::…")."""
        found: dict[int, str] = {}
        for pid in self.node_pids:
            found.update(descendants(pid))
        return found


def descendants(pid: int) -> dict[int, str]:
    """The processes below `pid` (from /proc), each with its command line."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            try:
                found[child] = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            todo.append(child)
    return found


def busiest(pids: list[int]) -> int:
    """Of these processes, the one using the most CPU over half a second."""

    def cpu(pid: int) -> int:
        try:
            fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0
        return int(fields[11]) + int(fields[12])

    before = {pid: cpu(pid) for pid in pids}
    time.sleep(0.5)
    return max(pids, key=lambda pid: cpu(pid) - before[pid])


def _ray_cli() -> list[str]:
    ray = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    return [ray]


def _wait_started(node: subprocess.Popen, log: Path, deadline: float, what: str) -> None:
    """Wait for `ray start --block` to say the node runs (it prints this once the node has joined)."""
    while "Ray runtime started" not in log.read_text(errors="replace"):
        if time.monotonic() > deadline or node.poll() is not None:
            pytest.fail(f"{what} did not start within {START_S:.0f} s: {log.read_text(errors='replace')[-800:]}")
        time.sleep(0.5)


def _ours(temp_dir: Path) -> list[int]:
    """The pids of live processes whose command line names our temp dir."""
    pids = []
    names = (f"{temp_dir}/".encode(), f"{temp_dir}\0".encode())  # the dir itself, not one whose name starts so
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                if any(name in (entry / "cmdline").read_bytes() for name in names):
                    pids.append(int(entry.name))
    return pids


@contextmanager
def ray_cluster(head_cpus: int = 2, node_cpus: int = 1) -> Iterator[Cluster]:
    """Start the two nodes, yield the cluster once both are alive, stop them (and only them) at the end."""
    pytest.importorskip("ray", reason="ray is not installed: pip install -r requirements.txt")
    temp_dir = Path(tempfile.mkdtemp(prefix="kfxe", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--block", "--temp-dir", str(temp_dir), "--disable-usage-stats"]
    nodes = []
    try:
        deadline = time.monotonic() + START_S
        # Both at once: the second node keeps trying to reach the head's address until it is up.
        for args in (
            ["--head", "--port", str(port), "--num-cpus", str(head_cpus), "--include-dashboard=false"],
            ["--address", address, "--num-cpus", str(node_cpus)],
        ):
            with open(temp_dir / f"node{len(nodes)}.log", "wb") as out:
                nodes.append(
                    subprocess.Popen(
                        [*_ray_cli(), "start", *args, *common],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        for i, what in enumerate(("the Ray head node", "the second Ray node")):
            _wait_started(nodes[i], temp_dir / f"node{i}.log", deadline, what)
        yield Cluster(address, temp_dir, [node.pid for node in nodes])
    finally:
        for node in reversed(nodes):
            with suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGTERM)
        for node in nodes:
            with suppress(subprocess.TimeoutExpired):
                node.wait(5)
        for sig in (signal.SIGTERM, signal.SIGKILL):  # what a node left behind: its workers, their helpers
            for pid in _ours(temp_dir):
                with suppress(ProcessLookupError):
                    os.kill(pid, sig)
            time.sleep(0.5)
        shutil.rmtree(temp_dir, ignore_errors=True)
