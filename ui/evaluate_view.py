"""The Evaluate page's parts: the run picker, test metrics, the clickable confusion matrix and the samples in a
cell, per-class scores, the decision boundary, regression plots and 'Try it'.

How a click becomes samples: plots.confusion_matrix puts an invisible marker on every cell; Streamlit reports
a click on one as a point selection (on_select), whose customdata [true, predicted] the callback writes into
the two selectboxes `cm_true` and `cm_pred`. Those selectboxes are the one source of the chosen cell, so a
click, a keyboard user and a test all choose a cell the same way.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from kfcore.data import DataError, Dataset, with_recipe
from kfcore.present import plots, runview, samples
from kfcore.present.samples import Predictions, SampleError, TestSplit
from kfcore.runs.jobs import PredictError
from kfcore.runs.store import RunRecord
from kfcore.spec import RunSpec, SpecError, SplitSpec
from kfcore.training import evaluate
from ui import datasets, state
from ui.text import plain

ss = st.session_state
IMAGE_TYPES = ("png", "jpg", "jpeg", "bmp", "gif", "webp")
SAMPLE = "A test sample"
UPLOAD = "Upload an image"
TYPE = "Type feature values"


@dataclass
class RunData:
    """What a run's samples need: its saved predictions, its data and rebuilt split, or why they are missing."""

    predictions: Predictions | None = None
    dataset: Dataset | None = None
    split: TestSplit | None = None
    problem: str | None = None


# -- choosing the run -----------------------------------------------------------------------------


def pick_run() -> RunRecord | None:
    """The `eval_run` selector over finished runs: the current run by default, else the newest; follows new runs.
    In hosted mode the runs are this browser's, plus the current run when it is another's opened by its link."""
    finished = [r for r in state.visible_runs() if r.status == "finished"]
    current_record = state.current_run()
    if (
        current_record is not None
        and current_record.status == "finished"
        and current_record.id not in {r.id for r in finished}
    ):
        finished.insert(0, current_record)
    if not finished:
        return None
    ids = [r.id for r in finished]
    current = ss.get("run_id")
    default = current if current in ids else ids[0]
    if ss.get("eval_default") != default or ss.get("eval_run") not in ids:
        ss.eval_run, ss.eval_default = default, default
    by_id = {r.id: r for r in finished}
    run_id = st.selectbox("Run", ids, key="eval_run", format_func=lambda i: _run_label(by_id[i]))
    record = state.current_run()
    if record is not None and record.id not in ids:
        st.caption(
            f":material/info: The current run, **{plain(record.name)}**, is {record.status}: only finished runs "
            "can be evaluated."
        )
    return state.store().get(run_id)


def _run_label(r: RunRecord) -> str:
    head = runview.headline_metric(r.test)
    score = f" · test {head[0]} {runview.format_metric(*head)}" if head else ""
    data = r.spec.get("data", {})
    return f"{r.name} · {data.get('name') or data.get('source')}{score}"


def headline(record: RunRecord, history: list[dict]) -> None:
    ev = record.evaluation or {}
    best = ev.get("best_epoch")
    epochs = runview.best_epoch_text(best, history)
    if ev.get("task") == "regression":
        items = [
            ("Test MAE", f"{ev['mae']:.4g}"),
            ("Test RMSE", f"{ev['rmse']:.4g}"),
            ("R²", f"{ev['r2']:.3f}"),
            ("Test loss", f"{record.test.get('loss', float('nan')):.4g}"),
            ("Best epoch", epochs),
        ]
    else:
        items = [
            ("Test accuracy", runview.format_metric("accuracy", record.test.get("accuracy", ev.get("accuracy", 0)))),
            ("Test loss", f"{record.test.get('loss', float('nan')):.4f}"),
            ("Macro F1", f"{ev.get('macro_f1', 0):.3f}"),
            ("Mistakes", f"{ev.get('n_mistakes', 0)} of {ev.get('n_test', 0)}"),
            ("Best epoch", epochs),
        ]
    # Cards as wide as their values, wrapping onto a second row where the page is narrow: in five equal columns
    # at 1024 px "23 of 360" was cut to "23 o…".
    with st.container(horizontal=True, gap="large"):
        for label, value in items:
            st.metric(label, value, width="content")


# -- the samples behind the numbers ---------------------------------------------------------------


@st.cache_resource(show_spinner=False, max_entries=4)
def _run_dataset(data_key: str, split_key: str, _ds: Dataset) -> Dataset:
    """The data as the run saw it: a table's recipe fitted on the run's training rows (once per data and split)."""
    return with_recipe(_ds, SplitSpec(**json.loads(split_key)))


@st.cache_resource(show_spinner="Rebuilding the test split…", max_entries=4)
def _split(run_id: str, data_key: str, split_key: str, _ds: Dataset, _saved: Predictions) -> TestSplit:
    return samples.rebuild_split(_ds, SplitSpec(**json.loads(split_key)), _saved)


def run_data(record: RunRecord) -> RunData:
    """The run's predictions, data and test split, checked against each other; never raises."""
    try:
        predictions = samples.load_predictions(state.store().run_dir(record.id))
    except SampleError as e:
        return RunData(problem=str(e))
    try:
        spec = RunSpec.from_dict(record.spec)
        # Hosted: a run may not make this process read a file outside uploads; it vouches for its own upload.
        refusal = state.data_refusal(spec, via=record)
        if refusal:
            return RunData(predictions, problem=f"the run's samples cannot be shown: {refusal}")
        data_key, split_key = json.dumps(asdict(spec.data), sort_keys=True), json.dumps(asdict(spec.split))
        ds = _run_dataset(data_key, split_key, datasets.dataset(spec.data))
        split = _split(record.id, data_key, split_key, ds, predictions)
    except (SpecError, DataError) as e:
        return RunData(predictions, problem=f"the run's data cannot be loaded now, so its samples cannot be shown: {e}")
    problem = samples.mismatch(split.y_test, predictions.y_true)
    return RunData(predictions, ds, None if problem else split, problem)


def _on_cell_click() -> None:
    event = ss.get("confusion") or {}
    cell = samples.cell_from_selection(event.get("selection", {}).get("points", []), ss.get("cm_names", []))
    if cell is not None:
        ss.cm_true, ss.cm_pred = ss.cm_names[cell[0]], ss.cm_names[cell[1]]


def confusion(record: RunRecord, rd: RunData, history: list[dict]) -> None:
    """The test confusion matrix, or with the toggle on the validation matrix of any stored epoch (a slider scrubs
    them); a cell's samples are always the final model's test samples in it."""
    ev = record.evaluation or {}
    names = [str(n) for n in ev["class_names"]]
    if ss.get("cm_run") != record.id or ss.get("cm_true") not in names or ss.get("cm_pred") not in names:
        i, j = samples.most_confused(ev["confusion_matrix"])  # open on the commonest mistake
        ss.cm_true, ss.cm_pred, ss.cm_run = names[i], names[j], record.id
    ss.cm_names = names
    by_epoch = {int(r["epoch"]): r["val_confusion"] for r in history if r.get("val_confusion")}
    left, right = st.columns([1, 1.15], gap="large")
    with left:
        st.subheader("Confusion matrix")
        normalised = st.toggle("Row-normalised (share of each true class)", key="cm_normalise")
        over_time = bool(by_epoch) and st.toggle(
            "Validation matrix by epoch",
            key="cm_by_epoch",
            help="The validation samples' matrix after each epoch, instead of the final model's test matrix",
        )
        counts, epoch = ev["confusion_matrix"], None
        if over_time:
            first, last = min(by_epoch), max(by_epoch)
            if ss.get("cm_epoch_run") != record.id or not first <= ss.get("cm_epoch", -1) <= last:
                ss.cm_epoch, ss.cm_epoch_run = last, record.id  # a run opens on its last epoch
            epoch = st.slider("Epoch", first, last, key="cm_epoch") if last > first else first
            epoch = max(e for e in by_epoch if e <= epoch)  # an epoch without a stored matrix shows the one before
            counts = by_epoch[epoch]
        matrix = (
            (evaluate.row_normalised(counts).round(4).tolist() if over_time else ev["confusion_matrix_normalised"])
            if normalised
            else counts
        )
        selected = (names.index(ss.cm_true), names.index(ss.cm_pred))
        fig = plots.confusion_matrix(matrix, names, normalised, counts=counts, selected=selected, title=None)
        st.plotly_chart(
            fig, key="confusion", on_select=_on_cell_click, selection_mode="points", config={"displayModeBar": False}
        )
        st.caption(
            f"Validation samples after epoch {epoch} of {last}. Click a cell to list the final model's test "
            "samples in it."
            if over_time
            else "Click a cell to list its test samples."
        )
    with right:
        st.subheader("Samples in the cell")
        a, b = st.columns(2)
        a.selectbox("True class", names, key="cm_true")
        b.selectbox("Predicted class", names, key="cm_pred")
        i, j = names.index(ss.cm_true), names.index(ss.cm_pred)
        if over_time:
            n = int(counts[i][j])
            st.caption(
                f"After epoch {epoch}: {n} validation sample{'s' if n != 1 else ''} in this cell; the final "
                f"model puts {int(ev['confusion_matrix'][i][j])} test samples in it."
            )
        with st.container(key="cell_samples"):
            cell_samples(rd, names, i, j, ev["confusion_matrix"])


def cell_samples(rd: RunData, names: list[str], i: int, j: int, cm: list[list[int]]) -> None:
    count = int(cm[i][j])
    verdict = "right" if i == j else "wrong"
    st.markdown(
        f"**{count}** test sample{'s' if count != 1 else ''} of class **{plain(names[i])}** predicted as "
        f"**{plain(names[j])}** ({verdict}){', the most confident first' if count > 1 else ''}."
    )
    if rd.problem or rd.split is None or rd.predictions is None:
        st.warning(plain(rd.problem or "The samples cannot be shown."), icon=":material/warning:")
        return
    idx = samples.cell(rd.predictions, i, j)
    if not len(idx):
        return
    if count > len(idx):
        st.caption(f"Showing the first {len(idx)} of {count}.")
    probs = rd.predictions.probs
    if rd.split.x_test.ndim == 4:
        # Words, not "#17 · 79% (8 9%)": what the model says, and for a mistake what the sample is.
        captions = [
            f"#{k} · says {plain(names[j])} ({probs[k, j]:.0%})"
            + (f" · is {plain(names[i])} ({probs[k, i]:.0%})" if i != j else "")
            for k in idx
        ]  # Markdown too: "#12" is no heading without a space
        st.image([samples.thumbnail(rd.split.x_test[k]) for k in idx], caption=captions, width=76)
        with st.expander("Every class probability of these samples"):
            st.dataframe(_probability_table(idx, probs, names), hide_index=True, column_config=_percent_columns(names))
    else:
        table = _probability_table(idx, probs, names)  # probabilities first: the features may be many
        features = pd.DataFrame(rd.split.x_test[idx], columns=_feature_names(rd))
        table = pd.concat([table, features], axis=1)
        st.dataframe(table, hide_index=True, column_config=_percent_columns(names), key="cell_table")


def _feature_names(rd: RunData) -> list[str]:
    n = rd.split.x_test.shape[1]
    names = list(rd.dataset.feature_names) if rd.dataset else []
    return names if len(names) == n else [f"x{k + 1}" for k in range(n)]


def _probability_table(idx: np.ndarray, probs: np.ndarray, names: list[str]) -> pd.DataFrame:
    table = pd.DataFrame({"sample": idx.astype(int)})
    for c, name in enumerate(names):
        table[f"P({name})"] = probs[idx, c]
    return table


def _percent_columns(names: list[str]) -> dict[str, Any]:
    return {
        f"P({n})": st.column_config.ProgressColumn(
            f"P({n})", format="percent", min_value=0.0, max_value=1.0, width="medium"
        )
        for n in names
    }


# -- per class, 2-D, regression -------------------------------------------------------------------


def per_class(record: RunRecord, history: list[dict]) -> None:
    ev = record.evaluation or {}
    st.subheader("Per class")
    left, right = st.columns([1, 1.4], gap="large")
    table = pd.DataFrame(ev["per_class"])
    score = st.column_config.NumberColumn(format="percent")
    left.dataframe(
        table,
        hide_index=True,
        key="per_class_table",
        column_config={
            "precision": score,
            "recall": score,
            "f1": st.column_config.NumberColumn("F1", format="percent"),
            "support": st.column_config.NumberColumn("test samples"),
        },
    )
    right.plotly_chart(plots.per_class_scores(ev["per_class"]), key="chart_per_class")
    if any(r.get("per_class_val_accuracy") for r in history):
        st.plotly_chart(plots.per_class_accuracy(history, ev["class_names"]), key="chart_per_class_epochs")


def boundary(record: RunRecord, rd: RunData) -> None:
    ev = record.evaluation or {}
    st.subheader("Decision boundary")
    if rd.split is None or rd.dataset is None:
        st.warning(plain(rd.problem or "The data cannot be shown."), icon=":material/warning:")
        return
    x_train = rd.dataset.x[rd.split.train_index]
    left, right = st.columns([2.2, 1], gap="large")
    left.plotly_chart(
        plots.decision_boundary(
            ev["decision_boundary"],
            ev["class_names"],
            x_train,
            rd.split.y_train,
            rd.split.x_test,
            rd.split.y_test,
            rd.dataset.feature_names,
            title=None,
        ),
        key="chart_boundary",
    )
    right.caption(
        "The background is what the model predicts at each point of the plane, as TensorFlow Playground "
        "draws it: the class colours where it is sure, pale where it is not. Circles are the points it "
        "trained on, diamonds the test points it never saw; a diamond on the other colour is a mistake."
    )


def _on_points_selected() -> None:
    """Points clicked, boxed or lassoed on predicted-vs-actual become the typed list of samples below it."""
    event = ss.get("chart_predicted") or {}
    y = ss.get("reg_truth")
    if y is None:
        return
    picked = samples.samples_from_selection(event.get("selection", {}).get("points", []), len(y[0]))
    if picked:  # a lasso can take thousands: the box lists the worst MAX_LISTED, the page says how many there were
        ss.reg_samples = ", ".join(str(k) for k in samples.largest_errors(*y, among=picked))
        ss.reg_selection = (ss.reg_samples, len(picked))


def regression(record: RunRecord, rd: RunData) -> None:
    st.subheader("Predictions on the test set")
    if rd.predictions is None:
        st.warning(plain(rd.problem or "This run saved no predictions."), icon=":material/warning:")
        return
    y, pred = rd.predictions.y_true, rd.predictions.predicted
    if ss.get("reg_run") != record.id:  # another run: its own samples, starting from its largest errors
        ss.reg_run, ss.reg_samples, ss.reg_selection = record.id, "", ("", 0)
    ss.reg_truth = (y, pred)
    left, right = st.columns(2, gap="large")
    left.plotly_chart(
        plots.predicted_vs_actual(y, pred),
        key="chart_predicted",
        on_select=_on_points_selected,
        selection_mode=("points", "box", "lasso"),
    )
    left.caption("Click a dot, or drag a box or lasso around several, to list those samples below.")
    right.plotly_chart(plots.residual_histogram(y, pred), key="chart_residuals")
    st.text_input(
        "Samples",
        key="reg_samples",
        placeholder="empty: the ten largest errors",
        help="Test-sample numbers, separated by commas; filled in by selecting dots in the chart.",
    )
    try:
        typed = samples.parse_sample_numbers(ss.reg_samples, len(y))
    except SampleError as e:
        st.error(f"{plain(e)}. The ten largest errors are shown meanwhile.", icon=":material/error:")
        typed = []
    if typed:
        shown = samples.largest_errors(y, pred, among=typed)
        written, selected = ss.get("reg_selection", ("", 0))
        chosen = selected if ss.reg_samples == written else len(typed)  # typed over: what is typed counts
        more = f" (the {len(shown)} largest errors of {chosen} selected)" if chosen > len(shown) else ""
        st.markdown(f"**{len(shown)} chosen sample{'s' if len(shown) != 1 else ''}**, the largest error first{more}")
    else:
        shown = samples.largest_errors(y, pred, limit=10)
        st.markdown("**The ten largest errors**")
    table = pd.DataFrame(
        {"sample": shown, "actual": y[shown], "predicted": pred[shown], "error": pred[shown] - y[shown]}
    )
    if rd.split is not None:
        table = pd.concat([table, pd.DataFrame(rd.split.x_test[shown], columns=_feature_names(rd))], axis=1)
    else:
        st.caption(plain(rd.problem or "The features of these samples cannot be shown."))
    st.dataframe(table, hide_index=True, key="worst_table")


# -- Try it ---------------------------------------------------------------------------------------


def try_it(record: RunRecord, rd: RunData) -> None:
    """Predict one input in the predictor process: a test sample, an uploaded picture, or typed features."""
    ev = record.evaluation or {}
    shape = tuple(record.info.get("input_shape") or ())
    image = len(shape) == 3
    st.subheader("Try it")
    if rd.split is None:
        st.warning(plain(rd.problem or "The run's data cannot be loaded."), icon=":material/warning:")
        return
    options = [SAMPLE, UPLOAD if image else TYPE]
    if ss.get("try_source") not in options:
        ss.try_source = SAMPLE
    if ss.get("try_index", 0) >= len(rd.split.y_test):
        ss.try_index = 0
    source = st.segmented_control("Input", options, key="try_source") or SAMPLE
    left, right = st.columns([1.2, 1], gap="large")
    truth = None
    with left:
        if source == UPLOAD:
            file = st.file_uploader("A picture (PNG or JPEG)", type=list(IMAGE_TYPES), key="try_upload")
            if file is None:
                st.caption(
                    "It is turned grey or colour and shrunk to the model's "
                    f"{shape[0]}×{shape[1]} input, as the training images were."
                )
                return
            try:
                x = samples.image_input(
                    file.getvalue(),
                    shape,
                    dark_background=float(rd.split.x_test.mean()) < 0.5,
                    class_folders=record.spec.get("data", {}).get("source") == "images",
                )
            except SampleError as e:
                st.error(plain(e), icon=":material/error:")
                return
            st.image(samples.thumbnail(x[0], 128), caption="What the model sees")
        else:
            n = len(rd.split.y_test)
            k = int(st.number_input(f"Test sample (0 to {n - 1})", min_value=0, max_value=n - 1, key="try_index"))
            if source == TYPE and rd.dataset is not None and rd.dataset.recipe is not None:
                x = _typed_row(rd, k)
                st.caption(
                    f"Starts from test sample {k}'s row as the file has it; change any value. A category "
                    "is one the run trained on; an empty cell is filled as in training."
                )
            elif source == TYPE:
                base = pd.DataFrame(rd.split.x_test[k : k + 1], columns=_feature_names(rd))
                x = st.data_editor(base, hide_index=True, key="try_features").to_numpy(dtype=np.float32)
                st.caption(f"Starts from test sample {k}; change any value.")
            else:
                x = rd.split.x_test[k : k + 1]
                truth = rd.split.y_test[k]
                if image:
                    st.image(samples.thumbnail(x[0], 128), caption=f"Test sample {k}")
                else:
                    st.dataframe(pd.DataFrame(x, columns=_feature_names(rd)), hide_index=True, key="try_row")
                names = ev.get("class_names") or []
                shown = plain(names[int(truth)]) if names else f"{truth:.4g}"
                st.markdown(f"True {'class' if names else 'value'}: **{shown}**")
        if not np.isfinite(x).all():
            st.error("Every feature needs a number.", icon=":material/error:")
            return
        digest = hashlib.sha1(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest() + record.id
        if st.button("Predict", key="try_predict", type="primary", icon=":material/bolt:"):
            with st.spinner("Predicting in a worker process (the first time loads TensorFlow)…"):
                try:
                    ss.try_result = (digest, state.predictor().predict(record.model_path or "", x.astype(np.float32)))
                except PredictError as e:
                    st.error(plain(e), icon=":material/error:")
    with right:
        result = ss.get("try_result")
        if result and result[0] == digest:
            _prediction(np.asarray(result[1]), ev, truth)
        else:
            st.caption("Press **Predict** to see what the model says.")


def _typed_row(rd: RunData, k: int) -> np.ndarray:
    """A raw row to edit (the table's columns, categories picked from the training ones), as the model's input."""
    from kfcore.data.recipe import numbers

    recipe, frame = rd.dataset.recipe, rd.dataset.frame
    row = frame.iloc[[int(rd.split.test_index[k])]] if rd.split.test_index is not None else frame.iloc[[0]]
    base, config = pd.DataFrame(index=[0]), {}
    for column in recipe.columns:
        name, kind = column["name"], column["kind"]
        cell = row[name].reset_index(drop=True)
        if kind == "number":
            base[name] = numbers(cell, column["format"])
            config[name] = st.column_config.NumberColumn(name)
        elif kind in ("category", "boolean"):
            options = [c for c in column["categories"] if c != column["missing"]]
            value = None if cell.isna().iloc[0] else str(cell.iloc[0])
            base[name] = pd.Series([value if value in options else None], dtype=object)
            config[name] = st.column_config.SelectboxColumn(name, options=options)
        elif kind == "date":
            base[name] = cell.astype(object).where(cell.notna(), None)
            config[name] = st.column_config.TextColumn(name, help="a date as 2024-03-01")
    edited = st.data_editor(base, hide_index=True, column_config=config, key="try_features")
    return recipe.transform(edited)


def _prediction(outputs: np.ndarray, ev: dict[str, Any], truth: Any) -> None:
    names = ev.get("class_names") or []
    if not names:
        value = float(outputs.reshape(-1)[0])
        delta = None if truth is None else f"{value - float(truth):+.4g} vs actual"
        st.metric("Predicted value", f"{value:.4g}", delta=delta, delta_color="off")
        return
    probs = Predictions(y_true=np.zeros(1, dtype=np.int64), outputs=outputs).probs[0]
    top = int(np.argmax(probs))
    if truth is None:
        mark = ""
    else:
        mark = " — right" if top == int(truth) else f" — wrong, it is {plain(names[int(truth)])}"
    st.markdown(f"Prediction: **{plain(names[top])}** ({probs[top]:.1%}){mark}")
    st.plotly_chart(plots.class_probabilities(probs, names), key="chart_try")
