"""Session state and shared resources for the pages (services, session, owner, address, training, layers): the RunSpec being edited, the current run, the store.

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

from ui.state.address import load_spec, spec_token, write_address_bar
from ui.state.layers import (
    add_layer,
    change_layer_type,
    duplicate_layer,
    layer_by_id,
    layer_ids,
    move_layer,
    new_layer,
    remove_layer,
    set_layers,
)
from ui.state.owner import (
    OWNER_COOKIE,
    adopt_uploads,
    cookie_owner,
    data_refusal,
    may_delete,
    owns,
    remember_owner,
    sign_in_first,
    visible_runs,
)
from ui.state.services import (
    accounts,
    collect_garbage_now_and_then,
    hosted,
    jobs,
    limits,
    limits_problem,
    predictor,
    shutdown_jobs,
    store,
    store_root,
)
from ui.state.session import current_run, init_session, is_active, spec
from ui.state.training import (
    command_run,
    comparable_runs,
    continue_training,
    epochs_max,
    reset_hyperparameters,
    retrain,
    run_differs,
    start_training,
    stop_training,
)

__all__ = [
    "OWNER_COOKIE",
    "accounts",
    "add_layer",
    "adopt_uploads",
    "change_layer_type",
    "collect_garbage_now_and_then",
    "command_run",
    "comparable_runs",
    "continue_training",
    "cookie_owner",
    "current_run",
    "data_refusal",
    "duplicate_layer",
    "epochs_max",
    "hosted",
    "init_session",
    "is_active",
    "jobs",
    "layer_by_id",
    "layer_ids",
    "limits",
    "limits_problem",
    "load_spec",
    "may_delete",
    "move_layer",
    "new_layer",
    "owns",
    "predictor",
    "remember_owner",
    "remove_layer",
    "reset_hyperparameters",
    "retrain",
    "run_differs",
    "set_layers",
    "shutdown_jobs",
    "sign_in_first",
    "spec",
    "spec_token",
    "start_training",
    "stop_training",
    "store",
    "store_root",
    "visible_runs",
    "write_address_bar",
]
