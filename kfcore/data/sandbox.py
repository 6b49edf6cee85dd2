"""Load a user's file in a spawned process under a hard memory cap (RLIMIT_AS), never in the caller's.

The readers in kfcore.data refuse what their size checks can see; a file that gets past them anyway
exhausts only this child, which dies or raises MemoryError, instead of taking the web server (and every
session on it) down. The parsed arrays come back through a pipe straight into arrays allocated here:
no pickled copy of them is ever held.

This module imports nothing heavy at the top: the child caps itself before numpy and pandas grow it.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import resource
import signal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from kfcore.data import Dataset
    from kfcore.runs.limits import Limits
    from kfcore.spec import DataSpec

LOAD_TIMEOUT_S = 300.0  # a file the size checks let through parses in well under a minute
_ARRAYS = ("x", "y", "x_test", "y_test")
_MEMORY_DEATHS = (-signal.SIGKILL, -signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS)


def upload_cap_mb(limits: Limits) -> int:
    """The memory one upload's loader may take beyond the interpreter's own: the budget of one run."""
    return limits.memory_budget_mb


def too_big_message(cap_mb: int) -> str:
    return (
        f"the file needs more memory than this server allows for one upload ({cap_mb:,} MB); upload a smaller file "
        "(a sample of the rows, or smaller images)"
    )


def load_capped(data: DataSpec, limits: Limits, timeout: float = LOAD_TIMEOUT_S, cap_mb: int | None = None) -> Dataset:
    """load_dataset(data, limits=limits) in a child process whose address space is capped at cap_mb (default
    upload_cap_mb) above its start-up size. Raises DataError: the loader's own message, or too_big_message when
    the child ran out of memory or was killed."""
    import numpy as np

    from kfcore.data import DataError, Dataset

    cap_mb = cap_mb or upload_cap_mb(limits)
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=_child_main,
        args=(send, dataclasses.asdict(data), dataclasses.asdict(limits), cap_mb),
        name="kf-load",
        daemon=True,
    )
    child.start()
    send.close()  # only the child writes: a dead child then reads as EOF here
    try:
        if not receive.poll(timeout):
            raise DataError(f"reading the file took more than {timeout:.0f} s and was stopped; upload a smaller file")
        kind, payload = receive.recv()
        if kind == "memory":
            raise DataError(too_big_message(cap_mb))
        if kind == "error":
            raise DataError(payload)
        fields, layouts = payload
        arrays: dict[str, Any] = {}
        for name, layout in layouts.items():
            if layout is None:
                arrays[name] = None
                continue
            shape, dtype = layout
            arrays[name] = np.empty(shape, np.dtype(dtype))
            receive.recv_bytes_into(arrays[name].reshape(-1).view(np.uint8))
        return Dataset(**fields, **arrays)
    except (EOFError, ConnectionError):
        child.join(5)
        if child.exitcode in _MEMORY_DEATHS:  # the kernel's OOM kill, or a native allocation the cap refused
            raise DataError(too_big_message(cap_mb)) from None
        raise DataError(
            f"the process reading the file stopped unexpectedly (exit code {child.exitcode}); try again, or upload "
            "another file"
        ) from None
    finally:
        receive.close()
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join()


def _vm_size_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _child_main(conn: Connection, data: dict[str, Any], limits: dict[str, Any], cap_mb: int) -> None:
    import numpy as np
    import pandas  # noqa: F401 - imported before the cap is set: the cap is for the file, not the libraries

    from kfcore.data import DataError, DataMemoryError, load_dataset
    from kfcore.runs.limits import Limits
    from kfcore.spec import DataSpec

    ceiling = _vm_size_bytes() + cap_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    try:
        ds = load_dataset(DataSpec(**data), limits=Limits(**limits))
    except (DataMemoryError, MemoryError):
        conn.send(("memory", None))
        return
    except DataError as e:
        conn.send(("error", str(e)))
        return
    except Exception as e:  # a reader bug: still a message on the page, never a traceback
        conn.send(("error", f"could not read the file ({type(e).__name__}: {str(e)[:300]})"))
        return
    arrays = {name: getattr(ds, name) for name in _ARRAYS}
    fields = {f.name: getattr(ds, f.name) for f in dataclasses.fields(ds) if f.name not in _ARRAYS}
    layouts = {k: None if a is None else (a.shape, a.dtype.str) for k, a in arrays.items()}
    conn.send(("ok", (fields, layouts)))
    for a in arrays.values():
        if a is not None:
            # An ndarray is a buffer (numpy's stubs do not say so); tobytes() would copy it in the capped child
            conn.send_bytes(np.ascontiguousarray(a).reshape(-1).view(np.uint8))  # type: ignore[arg-type]
    conn.close()
    os._exit(0)  # skip interpreter teardown: the parent has all it needs
