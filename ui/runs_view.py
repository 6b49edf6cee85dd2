"""The Runs page's parts: the filterable table of every run, the comparison of selected runs, and managing one.

The selected runs live in the `compare_runs` multiselect's state; ticking rows in the table writes there too.
The table's widget key changes with the rows it shows (and when the multiselect is edited), so its ticks
are always drawn from `compare_runs` and never point at rows that a filter has since moved.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from kfcore.data import uploads
from kfcore.export.bundle import BundleError, import_bundle
from kfcore.present import compare, plots, runview
from kfcore.runs.store import STATUSES, RunRecord, StoreFullError
from kfcore.spec import RunSpec, SpecError
from ui import datasets, pages, share, state
from ui.text import plain

ss = st.session_state


def summaries(records: list[RunRecord]) -> list[dict[str, Any]]:
    """The table's rows. Reading every epoch of every run was most of this page's time (a sweep's trials hold
    hundreds each): an ended run's epochs no longer change, so their facts are read once per server."""
    store = state.store()
    return [
        compare.summary_row(
            r,
            _ended_facts(str(store.root), r) if r.is_final else compare.epoch_facts(r, store.epochs(r.id)),
        )
        for r in records
    ]


@st.cache_data(max_entries=20_000, show_spinner=False, hash_funcs={RunRecord: lambda r: r.id})
def _ended_facts(store_root: str, record: RunRecord) -> compare.EpochFacts:
    return compare.epoch_facts(record, state.store().epochs(record.id))


def filters(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    a, b = st.columns([2, 1])
    text = a.text_input(
        "Filter", key="runs_filter", placeholder="name, dataset or layer, e.g. conv mnist", label_visibility="collapsed"
    )
    statuses = b.multiselect(
        "Status", STATUSES, key="runs_status", placeholder="any status", label_visibility="collapsed"
    )
    return [r for r in rows if compare.matches(r, text, statuses)]


def _numbers(values: list[Any]) -> pd.Series:
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")  # a missing value shows as a blank cell


def _table_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    def metric(kind: str, key: str) -> pd.Series:
        return _numbers([r[key] if r[f"{key}_metric"] == kind else None for r in rows])

    names = {r["id"]: r["name"] for r in rows}
    frame = pd.DataFrame(
        {
            "Name": [r["name"] for r in rows],
            # The run this one changed or continued (the coach's retrain), by name when it is listed, else by id.
            "From": [None if not r["parent"] else names.get(r["parent"], r["parent"]) for r in rows],
            "Dataset": [r["dataset"] for r in rows],
            "Layers": [r["layers"] for r in rows],
            "Parameters": _numbers([r["params"] for r in rows]),
            "Epochs": [r["epochs"] for r in rows],
            "Best val acc.": metric("accuracy", "best_val"),
            "Test acc.": metric("accuracy", "test"),
            "Best val MAE": metric("mae", "best_val"),
            "Test MAE": metric("mae", "test"),
            "Time": _numbers([r["time_s"] for r in rows]),
            "Device": [r["device"] for r in rows],
            "Status": [r["status"] for r in rows],
            "Created (UTC)": pd.to_datetime([r["created"] for r in rows], unit="s", utc=True).tz_convert(None),
        }
    )
    return frame.dropna(axis=1, how="all")  # no MAE columns without a regression run, and so on


COLUMNS = {
    "From": st.column_config.TextColumn(help="The run this one changed or continued"),
    "Parameters": st.column_config.NumberColumn(format="localized"),
    "Best val acc.": st.column_config.NumberColumn(format="percent", help="The best validation accuracy of any epoch"),
    "Test acc.": st.column_config.NumberColumn(format="percent"),
    "Best val MAE": st.column_config.NumberColumn(format="%.4g", help="The lowest validation MAE of any epoch"),
    "Test MAE": st.column_config.NumberColumn(format="%.4g"),
    "Time": st.column_config.NumberColumn(format="%.1f s", help="Training time, seconds"),
    "Created (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
}


def _on_table_select() -> None:
    rows = ss[ss.runs_table_key]["selection"]["rows"]
    visible = ss.get("runs_visible", [])
    ss.compare_runs = [visible[i] for i in rows if i < len(visible)]


def _on_compare_change() -> None:
    ss.runs_table_version = ss.get("runs_table_version", 0) + 1  # redraw the table's ticks from the multiselect


def table(rows: list[dict[str, Any]], every: list[dict[str, Any]]) -> list[str]:
    """The runs table of `rows` (sortable by any column, multi-row selection) and the `compare_runs` picker
    over `every` run; returns the chosen ids."""
    names = {r["id"]: r["name"] for r in every}
    ss.compare_runs = [i for i in ss.get("compare_runs", []) if i in names]  # deleted runs drop out
    visible = [r["id"] for r in rows]
    ss.runs_visible = visible
    digest = hashlib.sha1(" ".join(visible).encode()).hexdigest()[:10]
    ss.runs_table_key = f"runs_table_{digest}_{ss.get('runs_table_version', 0)}"
    chosen = [visible.index(i) for i in ss.compare_runs if i in visible]
    with st.container(key="runs_table"):
        if rows:
            st.dataframe(
                _table_frame(rows),
                key=ss.runs_table_key,
                hide_index=True,
                column_config=COLUMNS,
                on_select=_on_table_select,
                selection_mode="multi-row",
                selection_default={"selection": {"rows": chosen, "columns": []}},
            )
        else:
            st.caption("No run matches the filter.")
    return st.multiselect(
        "Compare",
        list(names),
        key="compare_runs",
        format_func=lambda i: names[i],
        on_change=_on_compare_change,
        placeholder="tick rows in the table, or choose runs here",
    )


# -- comparing ------------------------------------------------------------------------------------


def _labels(records: list[RunRecord]) -> list[str]:
    names = [r.name for r in records]
    return [f"{r.name} ({r.id[:6]})" if names.count(r.name) > 1 else r.name for r in records]


def comparison(records: list[RunRecord]) -> None:
    labels = _labels(records)
    store = state.store()
    runs = []
    for label, r in zip(labels, records, strict=True):
        history = store.epochs(r.id)
        runs.append((label, history, runview.best_epoch(history)))
    metrics = {runview.metric_for(r.info.get("task", "")) for r in records if r.info}
    left, right = st.columns(2)
    left.plotly_chart(plots.compare_curves(runs, "loss"), key="compare_loss")
    if len(metrics) > 1:
        right.info("These runs solve different tasks (classification and regression): only their losses compare.")
    else:
        right.plotly_chart(plots.compare_curves(runs, metrics.pop() if metrics else "accuracy"), key="compare_metric")
    diff = compare.config_diff([r.spec for r in records])
    st.markdown("**What differs** (only the settings that are not the same in every run)")
    if not diff:
        st.caption("Nothing: these runs share every setting (a repeated run differs only by chance, if at all).")
        return
    frame = pd.DataFrame({"setting": [path for path, _ in diff]})
    files = {f"data.{k}" for k in uploads.FILE_FIELDS}  # a data file by its name: never a server path
    for k, label in enumerate(labels):
        frame[label] = [
            "–" if values[k] is None else Path(values[k]).name if path in files else str(values[k])
            for path, values in diff
        ]
    st.dataframe(frame, hide_index=True, key="config_diff")


# -- one run --------------------------------------------------------------------------------------


def pick(records: list[RunRecord], chosen: list[str]) -> RunRecord:
    """The `manage_run` selector: follows the last run chosen for comparison, else the newest run."""
    ids = [r.id for r in records]
    default = chosen[-1] if chosen else ids[0]
    if ss.get("manage_default") != default or ss.get("manage_run") not in ids:
        ss.manage_run, ss.manage_default = default, default
    by_id = {r.id: r for r in records}
    run_id = st.selectbox("Run", ids, key="manage_run", format_func=lambda i: f"{by_id[i].name} · {by_id[i].status}")
    return by_id[run_id]


SHARED = "shared run — fork it to change it"
IMPORTED = "imported run — fork it to change it"


def _refuse_shared(record: RunRecord, what: str) -> bool:
    """True (with a message) when this session may not change the run: another browser's, on a hosted server.
    Checked here, where runs are changed, not only by hiding the buttons: a stale page can still call these."""
    if state.owns(record):
        return False
    ss.runs_message = (
        "error",
        f"{plain(record.name)} is a shared run: it cannot be {what} here; fork it to change it.",
    )
    return True


def _rename(run_id: str) -> None:
    record = state.store().get(run_id, with_evaluation=False)
    name = ss.get("rename_run", "").strip()
    if record is None or not name or _refuse_shared(record, "renamed"):
        return
    try:
        state.store().rename(run_id, name)
    except StoreFullError as e:
        ss.runs_message = ("error", f"The run was not renamed: {e}.")


def _ask_delete(run_id: str | None) -> None:
    ss.pending_delete = run_id


def _delete(run_id: str) -> None:
    record = state.store().get(run_id, with_evaluation=False)
    ss.pending_delete = None
    if record is None or (not state.may_delete(record) and _refuse_shared(record, "deleted")):
        return
    if not record.is_final:
        ss.runs_message = ("error", f"{plain(record.name)} is still {record.status}: stop it on the Train page first.")
        return
    try:
        state.store().delete(run_id)
    except StoreFullError as e:
        ss.runs_message = ("error", f"The run was not deleted: {e}.")
        return
    for key in ("run_id", "previous_run_id"):
        if ss.get(key) == run_id:
            ss[key] = None
    ss.runs_message = ("success", f"Deleted {plain(record.name)}.")


def _load(run_id: str) -> None:
    """Load into editor; for another owner's run, Fork: the same, and the next Train makes a run of one's own."""
    record = state.store().get(run_id, with_evaluation=False)
    if record is None:
        return
    name = plain(record.name)
    try:
        spec = RunSpec.from_dict(record.spec)
    except SpecError as e:
        ss.runs_message = ("error", f"{name} cannot be loaded: its spec is not valid any more ({plain(e)}).")
        return
    refusal = state.data_refusal(spec, via=record)  # a run vouches for its own data to whoever it is shared with
    if refusal:
        ss.runs_message = ("error", f"{name} cannot be loaded: {plain(refusal)}")
        return
    gone = [p for p in uploads.files(spec.data) if not datasets.local_path(p).exists()]
    if gone:
        ss.runs_message = (
            "error",
            f"{name} cannot be loaded: its data file {plain(Path(gone[0]).name)} is no "
            "longer on this server. Upload the file again on the Data page.",
        )
        return
    if not state.owns(record):
        state.adopt_uploads(record)  # the fork's runs read the run's upload: the worker checks their owner
    state.load_spec(spec)
    if ss.get("run_id") != run_id:  # retrain against it: it becomes the run the next one is drawn over
        ss.previous_run_id, ss.run_id = ss.get("run_id"), run_id
    if state.owns(record):
        ss.runs_message = (
            "loaded",
            f"Loaded **{name}** into the editor: tweak it on Data, Model or Train and "
            "train again; its curves show dashed behind the new run's.",
        )
    else:
        ss.runs_message = (
            "loaded",
            f"Forked **{name}** into your editor: tweak it on Data, Model or Train; "
            "your next Train makes a run of your own, drawn over this one's dashed curves.",
        )


def _message() -> None:
    message = ss.pop("runs_message", None)
    if message:
        kind, text = message
        (st.error if kind == "error" else st.success)(text)
        if kind == "loaded":
            cols = st.columns(3)
            for col, (page, label) in zip(
                cols, (("data", "Data"), ("model", "Model"), ("train", "Train")), strict=True
            ):
                col.page_link(pages.page(page), label=f"Open {label}", icon=":material/arrow_forward:")


def manage(record: RunRecord) -> None:
    """Rename, Load into editor and Delete for one's own run; only Fork for another browser's (hosted mode)."""
    own = state.owns(record)
    # One row whose buttons are as wide as their labels (a quarter column cut "Load into editor" short at 1024 px).
    row = st.container(horizontal=True, vertical_alignment="bottom")
    # No help= tooltips on these buttons: one makes Streamlit draw a button twice (browser tests click by key).
    if own:
        ss.rename_run = record.name
        row.text_input("Name", key="rename_run", on_change=_rename, args=(record.id,), max_chars=80)
        row.button("Load into editor", key="load_run", icon=":material/edit:", on_click=_load, args=(record.id,))
        row.button(
            "Delete",
            key="delete_run",
            icon=":material/delete:",
            on_click=_ask_delete,
            args=(record.id,),
            disabled=not record.is_final,
        )
    else:
        row.markdown(f"**{plain(record.name)}**")
        row.button("Fork into editor", key="load_run", icon=":material/fork_right:", on_click=_load, args=(record.id,))
        row.caption(f":material/lock: {IMPORTED if record.imported else SHARED}")
        if state.may_delete(record):  # an imported run: read-only, but its importer may remove it
            row.button("Delete", key="delete_run", icon=":material/delete:", on_click=_ask_delete, args=(record.id,))
    if state.may_delete(record) and ss.get("pending_delete") == record.id:
        with st.container(border=True, key="delete_confirmation"):
            st.warning(
                f"Delete **{plain(record.name)}** for good, with its model and metrics?", icon=":material/warning:"
            )
            row = st.container(horizontal=True)
            row.button("Delete for good", key="confirm_delete", type="primary", on_click=_delete, args=(record.id,))
            row.button("Keep it", key="cancel_delete", on_click=_ask_delete, args=(None,))
    _message()
    st.caption(plain(runview.status_line(record, state.store().epochs(record.id))))
    if record.status == "finished":
        share.downloads(record)
        st.caption("A link to this run's results:")
        st.code(share.run_link(record.id), language=None, wrap_lines=True)


def import_box() -> None:
    """Import a run bundle (exported from any KF Studio) as a read-only run of this session's owner, to look at,
    download and fork. The bundle is written into the store and checked there like an upload (kfcore.export.bundle)."""
    message = ss.pop("import_message", None)
    if message:
        (st.error if message[0] == "error" else st.success)(message[1])
    with st.expander("Import a run bundle", icon=":material/upload_file:", expanded=not state.visible_runs()):
        refusal = state.sign_in_first()
        if refusal:
            st.info(refusal, icon=":material/login:")
            return
        file = st.file_uploader(
            "Run bundle (.zip, from More formats › Run bundle, or python -m kfcore export --format bundle)",
            type=["zip"],
            key="import_bundle",
            max_upload_size=datasets.upload_limit_mb(),
        )
        if file is not None and st.button("Import", key="import_run", icon=":material/input:"):
            _import(file.name, file.getvalue())
            st.rerun()  # the table above was drawn before the run existed


def _import(file_name: str, content: bytes) -> None:
    store = state.store()
    folder = store.root / "imports"
    path = folder / f"{uuid.uuid4().hex}.zip"
    try:
        with store.writing():
            folder.mkdir(exist_ok=True)
            path.write_bytes(content)
        run_id = import_bundle(path, store, owner=ss.get("owner"), max_upload_mb=state.limits().max_upload_mb)
    except BundleError as e:
        ss.import_message = (
            "error",
            f"{plain(file_name)} was not imported: {plain(str(e).replace(path.name, file_name))}",
        )
        return
    except StoreFullError as e:
        ss.import_message = ("error", f"{plain(file_name)} was not imported: {e}.")
        return
    finally:
        path.unlink(missing_ok=True)
    record = store.get(run_id, with_evaluation=False)
    ss.previous_run_id, ss.run_id = ss.get("run_id"), run_id
    ss.import_message = (
        "success",
        f"Imported **{plain(record.name if record else run_id)}** as a read-only run: "
        "look at it on Evaluate, download it, or fork it into the editor to change it.",
    )


def shared_notice(record: RunRecord) -> None:
    """On Evaluate, for another browser's run (reached through its link) or an imported one: it is read-only here;
    Fork copies its experiment into this browser's editor. Nothing for one's own runs."""
    if state.owns(record):
        return
    with st.container(border=True, key="shared_run"):
        row = st.container(horizontal=True, vertical_alignment="center")
        row.caption(
            f":material/lock: {(IMPORTED if record.imported else SHARED).capitalize()}: you can look and "
            "download, not rename or delete it."
        )
        row.button("Fork into editor", key="fork_run", icon=":material/fork_right:", on_click=_load, args=(record.id,))
        _message()
