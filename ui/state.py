"""Session state and shared resources for the pages: the RunSpec being edited, the current run, the store.

st.session_state holds kfcore objects only: "spec" (the RunSpec every page edits), "run_id" and
"previous_run_id" (the current run and the comparable one drawn dashed behind it: same data, picked on Train), "owner" (who this session is;
"owner_cookie_ok": whether the browser already keeps it in its cookie) and "layer_ids" (a stable id per
layer, parallel to spec.layers, so per-layer widgets keep their values when layers move).

The address bar is the experiment: ?run=…&prev=… name the current run (written through st.query_params, so a
new run is a new history entry) and ?spec=… (spec_token) the experiment being edited, which write_address_bar()
puts there after every full run with history.replaceState: Streamlit's own query-parameter writes push a history
entry each (its frontend's handlePageInfoChanged calls pushState), and a slider must not flood the history.
A session's first run restores both (a reload, a bookmark, a fresh browser); later runs follow the address only
when they come from back/forward (Streamlit marks those runs as history navigation).

Who owns what: locally every session may change every run (one user). In hosted mode (KF_HOSTED=1)
"owner" is the browser's, not one tab's: a random token kept in the `kf_owner` cookie, read when a
session starts (st.context.cookies) and, when the browser sent none, set from the page by a one-line
script in the sidebar. A session sees its owner's runs; another owner's run, reached through its link,
is read-only (can_modify): it can be forked into the editor, never renamed, deleted or stopped. Where the
server has sign-in (ui.auth), "owner" is the signed-in account instead, and None (may look, not train) before.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import threading
import time
import uuid
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from kfcore import coach, runview, uploads
from kfcore.jobs import JobManager, Predictor
from kfcore.limits import (
    LimitError,
    Limits,
    can_modify,
    check_data_access,
    grant_data_access,
    new_owner_token,
    valid_owner_token,
)
from kfcore.spec import LAYER_DEFAULTS, LayerSpec, RunSpec, SpecError, parse_spec
from kfcore.store import RunRecord, RunStore, StoreFullError
from ui import auth
from ui.text import plain

# Start the warm training worker this long after the first page view: its TensorFlow import would
# otherwise slow the first page on a 2-core machine (measured: 0.3-0.4 s of a 2.3 s landing).
PRESTART_DELAY_S = 3.0
GC_INTERVAL_S = 30.0  # one full collection per this many seconds at most, for the whole server
_gc_lock = threading.Lock()
_last_gc = [time.monotonic()]


def store_root() -> str:
    return str(Path(os.environ.get("KF_HOME") or ".kf").resolve())


# Keyed by the store directory: the cache is process-wide, and tests (or a second studio) use other roots.
@st.cache_resource(show_spinner=False)
def _store(root: str) -> RunStore:
    return RunStore(root)


@st.cache_resource(show_spinner=False, on_release=lambda manager: manager.shutdown())
def _jobs(root: str) -> JobManager:
    return JobManager(_store(root), prestart_delay=PRESTART_DELAY_S)


def store() -> RunStore:
    return _store(store_root())


def jobs() -> JobManager:
    """The worker pool; created on the first page view so TensorFlow is imported before the first Train."""
    return _jobs(store_root())


@st.cache_resource(show_spinner=False, on_release=lambda p: p.shutdown())
def predictor() -> Predictor:
    """The process that makes 'Try it' predictions (it imports TensorFlow, never this one); started on first use."""
    return Predictor()


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
    """Stop every cached JobManager's workers and the predictor (tests call this; a server's die with it)."""
    _jobs.clear()
    predictor.clear()


# -- session ------------------------------------------------------------------------------------


def init_session() -> None:
    """Fill session state on a session's first run, picking up the run the URL (or a live worker) names."""
    ss = st.session_state
    if "spec" not in ss:
        _init_owner()
        ss.spec = RunSpec()
        ss.run_id = ss.previous_run_id = None
        _restore_runs()
        _new_layer_ids()
        _restore_shared_spec()
    else:
        _follow_browser()
    jobs()
    _sync_url()


# -- owner ----------------------------------------------------------------------------------------

OWNER_COOKIE = "kf_owner"
OWNER_COOKIE_MAX_AGE_S = 365 * 24 * 3600


def _init_owner() -> None:
    """ss.owner: a new id per session locally; in hosted mode the browser's token from its cookie, or a new one
    (then remember_owner() sets the cookie, so the next session of this browser gets the same owner); in hosted
    mode with sign-in (ui.auth), the signed-in account's token, or None for a visitor who has not signed in."""
    ss = st.session_state
    if not hosted():
        ss.owner, ss.owner_cookie_ok = uuid.uuid4().hex, True
        return
    if accounts():  # the account is the owner (None until signed in); the cookie is neither read nor set
        ss.owner, ss.owner_cookie_ok = auth.signed_in_owner(), True
        return
    sent = cookie_owner()
    ss.owner, ss.owner_cookie_ok = sent or new_owner_token(), sent is not None


def cookie_owner() -> str | None:
    """The owner token the browser sent with this session's first request, if it has the right form (anything
    else is ignored, never parsed). st.context.cookies are those of the websocket's opening request."""
    return valid_owner_token(st.context.cookies.get(OWNER_COOKIE))


def remember_owner() -> None:
    """In hosted mode, when the browser came without a valid owner cookie, set it from the page. st.html runs the
    script in the page itself (no iframe), so the cookie is the app's own; the token is 32 hex digits we made.
    The script then removes itself: the token is the browser's key to its runs and must not stay in the page's
    HTML, where a screenshot, a copied page or a DOM-reading extension would take it along."""
    ss = st.session_state
    if ss.get("owner_cookie_ok", True):
        return
    token = valid_owner_token(ss.get("owner"))
    if token is None:
        return
    st.html(f"""<script>document.cookie = "{OWNER_COOKIE}={token}; path=/; max-age={OWNER_COOKIE_MAX_AGE_S}; """
            """SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");"""
            """document.currentScript?.remove();</script>""", unsafe_allow_javascript=True, width="content")


def owns(record: RunRecord | None) -> bool:
    """Whether this session may rename, delete or stop the run (always locally; its own runs when hosted)."""
    return record is not None and can_modify(record, st.session_state.get("owner"), limits())


def visible_runs() -> list[RunRecord]:
    """The runs this session lists: every run locally, only its owner's when hosted (none before signing in)."""
    if not hosted():
        return store().list_runs()
    owner = st.session_state.get("owner")
    return store().list_runs(owner=owner) if owner is not None else []


def sign_in_first() -> str | None:
    """Why this session may not train or upload yet (a hosted server with sign-in, nobody signed in), or None."""
    return auth.SIGN_IN_FIRST if hosted() and st.session_state.get("owner") is None else None


def data_refusal(candidate: RunSpec, via: RunRecord | None = None) -> str | None:
    """Why a spec's data may not be read here (hosted mode: only built-ins and this browser's uploads, or those of
    `via`, a run it opened by its link), or None."""
    try:
        check_data_access(candidate.data, limits(), store(), st.session_state.get("owner"), via)
    except LimitError as e:
        return str(e)
    return None


def adopt_uploads(forked: RunRecord) -> None:
    """After a fork of another browser's run: this browser may read that run's uploads, to train the fork."""
    grant_data_access(store(), st.session_state.owner, forked)


def _restore_runs() -> None:
    ss = st.session_state
    runs = store()
    current = runs.get(st.query_params.get("run", ""), with_evaluation=False)
    if current is None:  # a new tab while something trains: show that run (one's own, when hosted) rather than nothing
        active = [r for r in visible_runs() if not r.is_final]
        current = active[0] if active else None
    if current is None:
        return
    ss.run_id = current.id
    try:
        restored = RunSpec.from_dict(current.spec)
        if data_refusal(restored) is None:  # another owner's run may name a file this session must not read
            ss.spec = restored
    except SpecError:
        pass
    previous = runs.get(st.query_params.get("prev", ""), with_evaluation=False)
    ss.previous_run_id = previous.id if previous else None


def _follow_browser() -> None:
    """Back/forward: take the run and the experiment of the history entry the browser went to. Only then: other
    reruns may send an address that is a few edits old (the script that writes it lags the widgets)."""
    ctx = get_script_run_ctx()
    if ctx is None or not ctx.is_history_navigation:
        return
    ss = st.session_state
    current = store().get(st.query_params.get("run", ""), with_evaluation=False)
    if current is not None and current.id != ss.run_id:
        previous = store().get(st.query_params.get("prev", ""), with_evaluation=False)
        ss.run_id, ss.previous_run_id = current.id, previous.id if previous else None
    token = st.query_params.get("spec")
    if token != spec_token(ss.spec):
        if token:
            _restore_shared_spec()
        else:  # an entry of the default experiment
            load_spec(RunSpec())


def spec_token(candidate: RunSpec) -> str | None:
    """The experiment as the address bar and share links carry it (uploads by reference), None for the defaults."""
    if candidate.to_dict() == RunSpec().to_dict():
        return None
    return dataclasses.replace(candidate, data=uploads.as_refs(candidate.data, store().uploads_dir)).to_url()


def write_address_bar() -> None:
    """Put the experiment into the address bar without a new history entry (see the module's docstring). The
    script runs in the page itself; a counter makes every full run draw it anew, so it also runs after Streamlit
    rewrote the address (a new run, another page)."""
    ss = st.session_state
    ss.address_writes = ss.get("address_writes", 0) + 1
    token = json.dumps(spec_token(ss.spec))  # base64url or null: nothing in it needs escaping in a script
    with st.sidebar:
        st.html(f"""<script data-n="{ss.address_writes}">(() => {{ const u = new URL(location.href), t = {token};"""
                """ if (t) u.searchParams.set("spec", t); else u.searchParams.delete("spec");"""
                """ if (u.href !== location.href) history.replaceState(history.state, "", u); })();"""
                """document.currentScript?.remove();</script>""", unsafe_allow_javascript=True, width="content")


def _restore_shared_spec() -> None:
    """A share link (?spec=…) sets the experiment; a damaged one says why and leaves the spec as it was."""
    token = st.query_params.get("spec")
    if not token:
        return
    try:
        shared = RunSpec.from_url(token)
    except SpecError as e:
        st.error(f"This share link could not be opened: {plain(e)}", icon=":material/link_off:")
        return
    refusal = data_refusal(shared)  # a link may name any path on the server
    if refusal:
        st.error(f"This share link could not be opened: {plain(refusal)}", icon=":material/link_off:")
        return
    load_spec(shared)


# Widget state of the Data page that belongs to the spec being replaced (an upload, its target column).
_EDITOR_KEYS = ("data_choice", "data_error", "uploaded", "upload_file_id", "upload_attempt", "target_column",
                "upload_task", "preset_error", "train_error")


def load_spec(new: RunSpec) -> None:
    """Make `new` the experiment every page edits (a share link, a run loaded from the Runs page)."""
    ss = st.session_state
    for key in _EDITOR_KEYS:
        ss.pop(key, None)
    ss.spec = new
    _new_layer_ids()


def _sync_url() -> None:
    """?run=&prev= through Streamlit; ?spec= is write_address_bar's (the browser's copy may be stale: ignored)."""
    ss = st.session_state
    want = {k: v for k, v in (("run", ss.run_id), ("prev", ss.previous_run_id)) if v}
    if {k: v for k, v in st.query_params.items() if k != "spec"} != want:
        st.query_params.from_dict(want)


def spec() -> RunSpec:
    return st.session_state.spec


def current_run() -> RunRecord | None:
    run_id = st.session_state.get("run_id")
    return store().get(run_id, with_evaluation=False) if run_id else None


def is_active(record: RunRecord | None) -> bool:
    return record is not None and not record.is_final


# -- housekeeping -------------------------------------------------------------------------------


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


# -- training -----------------------------------------------------------------------------------


def start_training(parent: str | None = None) -> None:
    """Train button: queue the spec as it is now; the run before becomes the dashed 'previous'. `parent`: the run
    this one continues or changes (the coach's retrain)."""
    ss = st.session_state
    ss.train_error = sign_in_first()
    if ss.train_error:
        return
    try:
        checked = parse_spec(ss.spec.to_dict())
    except SpecError as e:
        ss.train_error = str(e)
        return
    try:
        run_id = jobs().submit(checked, owner=ss.owner, parent=parent)
    except (LimitError, StoreFullError) as e:
        ss.train_error = str(e)
        return
    ss.train_error = None
    before, ss.run_id = ss.get("run_id"), run_id
    ss.previous_run_id = next((r.id for r in comparable_runs(run_id, also=before)), None)


def comparable_runs(run_id: str, also: str | None = None) -> list[RunRecord]:
    """The finished runs (this session's to see) whose curves may be drawn dashed behind this run's, newest first;
    `also`: the run the session was on before (a shared run opened by its link and forked), first when it compares."""
    record = store().get(run_id, with_evaluation=False)
    if record is None:
        return []
    before = store().get(also, with_evaluation=False) if also else None
    candidates = ([before] if before is not None else []) + [r for r in visible_runs() if before is None
                                                             or r.id != before.id]
    return [r for r in candidates
            if r.id != run_id and r.status == "finished" and runview.comparable(record.spec, r.spec)]


def reset_hyperparameters() -> None:
    """The Train page's "Reset to defaults": the optimizer, schedule, epochs, batch, seed and split as a new
    experiment has them; data and layers stay."""
    defaults = RunSpec()
    spec().train, spec().split = defaults.train, defaults.split


def run_differs(record: RunRecord) -> tuple[bool, bool]:
    """(other data, other hyperparameters): how the experiment being edited differs from this run's."""
    ran, now = record.spec, spec().to_dict()
    other_data = not runview.comparable(ran, now)
    return other_data, (ran.get("train"), ran.get("split")) != (now["train"], now["split"])


def retrain(parent: RunRecord, change: dict) -> None:
    """The coach's "apply and retrain": the parent's spec with only `change` applied becomes the experiment and
    trains as a child run of the parent (the lineage is kept in the store)."""
    ss = st.session_state
    try:
        child = parse_spec(coach.apply(parent.spec, change))
    except SpecError as e:
        ss.train_error = str(e)
        return
    load_spec(child)
    start_training(parent=parent.id)


def stop_training() -> None:
    """Stop button: cancel the current run, if it is this session's to stop (a shared run is not)."""
    if owns(current_run()):
        try:
            jobs().cancel(st.session_state.run_id)
        except StoreFullError as e:
            st.session_state.train_error = str(e)


def command_run(command: str, value: float | None = None) -> None:
    """Pause, Resume, Step and "Apply to this run": a command for the current run's worker (kfcore.store), if it
    is this session's run; what stands in the way (it just ended, a schedule owns its rate) goes to live_error."""
    ss = st.session_state
    record = current_run()
    if not owns(record):
        return
    try:
        store().send_command(record.id, command, value)
        ss.live_error = None
    except (ValueError, StoreFullError) as e:
        ss.live_error = str(e)


def continue_training(epochs: int) -> None:
    """Continue: the current (finished or stopped) run trains `epochs` more as a child run, which becomes the
    current run; its curves are drawn joined to its parent's, so no earlier run is drawn dashed behind them."""
    ss = st.session_state
    record = current_run()
    ss.train_error = sign_in_first()
    if ss.train_error or not owns(record):
        return
    try:
        child = jobs().submit_continue(record.id, int(epochs), owner=ss.owner)
    except (ValueError, LimitError, StoreFullError) as e:
        ss.train_error = str(e)
        return
    ss.run_id, ss.previous_run_id = child, None


def epochs_max(epochs: int) -> int:
    """The Epochs slider's maximum: the server's cap in hosted mode (or the spec's value, when a shared spec is
    over it: the slider shows it and Train says which limit it is over), else 100 or more."""
    cap = limits().max_epochs
    return max(cap, epochs) if cap else max(100, epochs)


# -- layers, each with a stable id --------------------------------------------------------------


def _next_id() -> int:
    st.session_state.next_layer_id = st.session_state.get("next_layer_id", 0) + 1
    return st.session_state.next_layer_id


def _new_layer_ids() -> None:
    st.session_state.layer_ids = [_next_id() for _ in st.session_state.spec.layers]


def layer_ids() -> list[int]:
    if len(st.session_state.get("layer_ids", [])) != len(spec().layers):
        _new_layer_ids()
    return st.session_state.layer_ids


def layer_by_id(lid: int) -> LayerSpec:
    return spec().layers[layer_ids().index(lid)]


def new_layer(kind: str) -> LayerSpec:
    return LayerSpec(type=kind, **LAYER_DEFAULTS[kind])


def add_layer(kind: str) -> None:
    ids = layer_ids()
    spec().layers.append(new_layer(kind))
    ids.append(_next_id())


def remove_layer(lid: int) -> None:
    ids = layer_ids()
    i = ids.index(lid)
    del spec().layers[i], ids[i]


def duplicate_layer(lid: int) -> None:
    ids = layer_ids()
    i = ids.index(lid)
    spec().layers.insert(i + 1, LayerSpec(**spec().layers[i].to_dict()))
    ids.insert(i + 1, _next_id())


def move_layer(lid: int, delta: int) -> None:
    ids, layers = layer_ids(), spec().layers
    i = ids.index(lid)
    j = min(max(i + delta, 0), len(ids) - 1)
    layers[i], layers[j] = layers[j], layers[i]
    ids[i], ids[j] = ids[j], ids[i]


def change_layer_type(lid: int, kind: str) -> None:
    ids = layer_ids()
    spec().layers[ids.index(lid)] = new_layer(kind)


def set_layers(layers: list[LayerSpec]) -> None:
    spec().layers = layers
    _new_layer_ids()
