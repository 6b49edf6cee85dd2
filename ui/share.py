"""Export and share: links that reopen an experiment or a run, and downloads of a run's model, metrics and script.

An experiment link carries the whole RunSpec in ?spec= (RunSpec.to_url), as TensorFlow Playground's URL
carries its state; ui/state/address.py restores it when a session starts. A run link is the Evaluate page with
?run=ID, which the same start-up code already reads to pick the run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from kfcore.data import uploads
from kfcore.runs.store import RunRecord, StoreFullError

if TYPE_CHECKING:
    from kfcore.export.formats import Exported
from kfcore.spec import RunSpec, SpecError
from ui import state
from ui.text import plain

# The url paths st.navigation gives the pages (file stems); Home, the default page, has none.
PAGE_PATHS = ("data", "model", "train", "evaluate", "runs")


def app_root(url: str | None, page_paths: tuple[str, ...] = PAGE_PATHS) -> str:
    """The app's own address without the page part: http://host:8501/evaluate -> http://host:8501 ("" unknown)."""
    if not url:
        return ""
    url = url.split("?")[0].split("#")[0].rstrip("/")
    for path in page_paths:
        if url.endswith(f"/{path}"):
            return url[: -len(path) - 1]
    return url


def _root() -> str:
    return app_root(st.context.url)  # None without a browser (AppTest): the links stay relative


def spec_link(spec: RunSpec) -> str:
    """Opens the Train page with this experiment's data, layers and hyperparameters in any new session."""
    token = state.spec_token(spec)
    return f"{_root()}/train" + (f"?spec={token}" if token else "")


def run_link(run_id: str) -> str:
    """Opens this run's Evaluate page."""
    return f"{_root()}/evaluate?run={run_id}"


def share_popover() -> None:
    """The sidebar's Share control: the experiment as a link and, once it has finished, the current run."""
    with st.popover("Share", icon=":material/share:", width="stretch", key="share"):
        st.markdown("**This experiment**")
        st.caption("Opens the same data, layers and hyperparameters in any browser, ready to train.")
        st.code(spec_link(state.spec()), language=None, wrap_lines=True)
        record = state.current_run()
        if record is not None and record.status == "finished":
            st.markdown(f"**Run {plain(record.name)}**")
            st.caption("Opens this run's results on the Evaluate page.")
            st.code(run_link(record.id), language=None, wrap_lines=True)


def file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:60] or "run"


@st.cache_data(show_spinner="Writing the script…", max_entries=32)
def _script(spec_json: str, run_name: str) -> tuple[str | None, str | None]:
    """(script, None), or (None, why it cannot be written): the data is gone, the spec no longer parses."""
    # numpy and pandas (the data, the recipe): only a page with downloads pays for them, never the landing page
    from kfcore.data import DataError
    from kfcore.export import script as export
    from kfcore.model.shapes import ShapeError

    try:
        spec = RunSpec.from_json(spec_json)
        spec.data = uploads.resolve(spec.data, state.store().uploads_dir)  # read here; the script names files only
        return export.python_script(spec, run_name), None
    except (SpecError, DataError, ShapeError, OSError, ValueError) as e:
        return None, str(e)


def downloads(record: RunRecord) -> None:
    """Three download buttons: the trained .keras model, the metrics per epoch (CSV), a standalone script."""
    from kfcore.export import script as export  # see _script

    stem = file_stem(record.name)
    store = state.store()
    model = Path(record.model_path) if record.model_path else None
    has_model = model is not None and model.exists()
    try:
        spec = RunSpec.from_dict(record.spec)
        script, problem = _script(spec.to_json(), record.name)
        spec.data = uploads.resolve(spec.data, state.store().uploads_dir)
    except SpecError as e:
        script, problem = None, str(e)
    # A script that reads a file comes zipped with it, side by side, as `kfcore export` writes them.
    bundled = script is not None and bool(export.data_files(spec))
    script_data: Any = (lambda: export.script_zip(spec, record.name)) if bundled else script or ""
    cols = st.columns(3)
    # A model with a recipe (a table's) comes zipped with it, as `kfcore export --format keras` writes them.
    with_recipe = has_model and len(export.model_files(model)) > 1
    cols[0].download_button(
        "Model (.keras)",
        data=(lambda: export.files_zip(export.model_files(model))) if with_recipe else (lambda: model.read_bytes()),
        file_name=f"{stem}-model.zip" if with_recipe else f"{stem}.keras",
        mime="application/zip" if with_recipe else "application/octet-stream",
        key="download_model",
        icon=":material/download:",
        on_click="ignore",
        disabled=not has_model,
        width="stretch",
    )
    cols[1].download_button(
        "Metrics (.csv)",
        data=lambda: export.metrics_csv(store.epochs(record.id)),  # written on the click, not on every render
        file_name=f"{stem}-metrics.csv",
        mime="text/csv",
        key="download_metrics",
        icon=":material/table:",
        on_click="ignore",
        width="stretch",
    )
    cols[2].download_button(
        "Export as Python",
        data=script_data,
        file_name=f"{stem}.zip" if bundled else f"{stem}.py",
        mime="application/zip" if bundled else "text/x-python",
        key="download_script",
        icon=":material/code:",
        on_click="ignore",
        disabled=script is None,
        width="stretch",
    )
    # No help= tooltips: one makes Streamlit draw a button twice, which browser automation cannot tell apart.
    notes = [
        "The script trains this run again with tf.keras alone, top to bottom like a keras-io example"
        + (", zipped with the data file it reads from beside itself." if bundled else ".")
    ]
    if not has_model:
        notes.append("This run saved no model file.")
    elif with_recipe:
        notes.append(
            "The model comes with recipe.json, which turns raw rows into its input "
            "(`python -m kfcore predict` applies both)."
        )
    if problem:
        notes.append(f"No script for this run: {plain(problem)}")
    st.caption(" ".join(notes))
    more_formats(record)


# The picker's options beyond the three buttons: (format, quantisation, label).
EXPORT_CHOICES = {
    "savedmodel": ("savedmodel", None, "SavedModel (TensorFlow Serving)"),
    "tflite": ("tflite", None, "TFLite / LiteRT, float32"),
    "tflite-dynamic": ("tflite", "dynamic", "TFLite / LiteRT, dynamic-range quantised"),
    "onnx": ("onnx", None, "ONNX"),
    "card": ("card", None, "Model card (one HTML file)"),
    "bundle": ("bundle", None, "Run bundle (import it into another KF Studio)"),
    "tensorboard": ("tensorboard", None, "TensorBoard event files"),
}


def more_formats(record: RunRecord) -> None:
    """A format picker and Export, then the download. The export runs in a child process (it imports TensorFlow;
    this process never does) with its steps shown, and is kept in the run's folder: the next download is at once."""
    from kfcore.export import formats  # see _script

    row = st.container(horizontal=True, vertical_alignment="bottom")
    choice = row.selectbox(
        "More formats", list(EXPORT_CHOICES), key="export_format", format_func=lambda k: EXPORT_CHOICES[k][2]
    )
    fmt, quantize, label = EXPORT_CHOICES[choice]
    done = formats.cached(formats.cache_dir(state.store(), record.id, fmt, quantize))
    if done is None and row.button("Export", key="export_run", icon=":material/deployed_code:"):
        done = _export(record, fmt, quantize, label)
    if done is not None:
        name = formats.download_name(done, file_stem(record.name), fmt)
        row.download_button(
            f"Download {name}",
            data=lambda: formats.download_bytes(done),
            file_name=name,
            mime="text/html" if name.endswith(".html") else "application/zip",
            key="download_export",
            icon=":material/download:",
            on_click="ignore",
        )
        for note in done.notes:
            st.caption(plain(note))
    st.caption(f"How to load it: {plain(formats.FORMATS[fmt])}")


def _export(record: RunRecord, fmt: str, quantize: str | None, label: str) -> Exported | None:
    from kfcore.export import formats  # see _script

    try:
        with st.status(f"Exporting {label}…", expanded=True) as status:
            for event in formats.prepared(state.store(), record.id, fmt, quantize):
                if isinstance(event, str):
                    status.write(plain(event[:1].upper() + event[1:]) + "…")
                else:
                    status.update(label=f"Exported {label}", state="complete", expanded=False)
                    return event
    except (formats.ExportError, StoreFullError) as e:
        st.error(f"The {label} export failed: {plain(e)}", icon=":material/error:")
    return None
