"""The server's shared resources, one per store directory: the run store, the executor (the worker pool or Ray), the
predictor, the limits."""

from __future__ import annotations

import gc
import os
import threading
import time
from pathlib import Path

import streamlit as st

from kfcore.runs.executors import Executor, ExecutorError, executor_from_env
from kfcore.runs.jobs import Predictor
from kfcore.runs.limits import Limits
from kfcore.runs.store import RunStore
from ui import auth

# Start the warm training worker this long after the first page view: its TensorFlow import would
# otherwise slow the first page on a 2-core machine (measured: 0.3-0.4 s of a 2.3 s landing).
PRESTART_DELAY_S = 3.0
WARM_IMPORTS_DELAY_S = PRESTART_DELAY_S  # see warm_imports
GC_INTERVAL_S = 30.0  # one full collection per this many seconds at most, for the whole server
_gc_lock = threading.Lock()
_last_gc = [time.monotonic()]


def store_root() -> str:
    return str(Path(os.environ.get("KF_HOME") or ".kf").resolve())


# Keyed by the store directory: the cache is process-wide, and tests (or a second studio) use other roots.
@st.cache_resource(show_spinner=False)
def _store(root: str) -> RunStore:
    return RunStore(root)


@st.cache_resource(show_spinner=False, on_release=lambda made: made[0] is not None and made[0].shutdown())
def _jobs(root: str) -> tuple[Executor | None, str | None]:
    """The executor (executor_from_env), or why there is none: a wrong KF_EXECUTOR, an unreachable Ray cluster.
    The reason is kept too, so page views do not each wait seconds for the cluster again; Train shows it."""
    try:
        return executor_from_env(_store(root), prestart_delay=PRESTART_DELAY_S), None
    except ExecutorError as e:
        return None, str(e)


def store() -> RunStore:
    return _store(store_root())


def jobs() -> Executor:
    """The executor: the local worker pool, or Ray (kfcore.runs.executors); created on the first page view so the
    pool imports TensorFlow before the first Train. ExecutorError (its reason) when it cannot be made."""
    executor, problem = _jobs(store_root())
    if executor is None:
        raise ExecutorError(problem)
    return executor


@st.cache_resource(show_spinner=False, on_release=lambda p: p.shutdown())
def predictor() -> Predictor:
    """The process that makes 'Try it' predictions (it imports TensorFlow, never this one); started on first use."""
    return Predictor()


@st.cache_resource(show_spinner=False)
def warm_imports() -> threading.Thread:
    """Import, once and in the background a few seconds after the first page view, what a finished run's downloads
    need: the exported script splits the data with scikit-learn, whose import made the first Runs or Evaluate page
    of a server wait 0.7-2.4 s (measured on this 2-core machine, the longer while a sweep trained)."""

    def load() -> None:
        time.sleep(WARM_IMPORTS_DELAY_S)
        import sklearn.model_selection  # noqa: F401  (the import is the point)

        import kfcore.export.script  # noqa: F401

    thread = threading.Thread(target=load, name="kf-warm-imports", daemon=True)
    thread.start()
    return thread


def limits() -> Limits:
    """This server's limits (Limits.from_env: a malformed variable keeps its mode's default, never lifts it)."""
    return Limits.from_env()


def limits_problem() -> str | None:
    """What is wrong with this server's limit variables, or None (the Train page shows it)."""
    return "; ".join(limits().problems) or None


def hosted() -> bool:
    return limits().hosted


def accounts() -> bool:
    """Whether runs belong to signed-in accounts: hosted mode with an [auth] section in the secrets."""
    return hosted() and auth.configured()


def shutdown_jobs() -> None:
    """Stop every cached executor (the pool's workers, Ray's actors) and the predictor (tests call this; a server's die with it)."""
    _jobs.clear()
    predictor.clear()


def collect_garbage_now_and_then() -> None:
    """A full garbage collection at most every GC_INTERVAL_S. Streamlit's own collection after every script
    run is off (.streamlit/config.toml): at ~65 ms a run, live-chart refreshes in 8 sessions kept the server's
    core busy. This keeps the heap as flat for a fraction of the cost."""
    now = time.monotonic()
    if now - _last_gc[0] < GC_INTERVAL_S or not _gc_lock.acquire(blocking=False):
        return
    try:
        _last_gc[0] = now
        gc.collect()
    finally:
        _gc_lock.release()
