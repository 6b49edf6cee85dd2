"""Data: choose what the network learns from, and see what it looks like before training on it."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from kfcore.data import DataError, class_counts, csv_columns, propose_target, with_recipe
from kfcore.model.presets import PRESETS
from kfcore.present import plots
from kfcore.runs.store import StoreFullError
from kfcore.spec import DEFAULT_IMAGE_SIZE, IMAGE_SIZES, SYNTHETIC_SETS, TASKS
from ui import datasets, state
from ui.text import plain
from ui.widgets import bound, field

ss = st.session_state
COLOURS = ("grey", "colour")
spec = state.spec()


def choose_source(_spec, option: str) -> None:
    ss.data_choice = option
    ss.data_error = None
    if option == datasets.UPLOAD:
        return
    try:
        datasets.choose(datasets.spec_for(option, state.spec().data))
    except DataError as e:
        ss.data_error = f"{e} The previous dataset stays selected."
        ss.data_choice = None


def set_generator(name: str, value) -> None:
    try:
        datasets.choose(replace(state.spec().data, **{name: value}))
    except DataError as e:
        ss.data_error = str(e)


def upload_section() -> None:
    sign_in = state.sign_in_first()
    if sign_in:  # an upload belongs to its owner: no uploader before there is one
        st.info(sign_in, icon=":material/login:")
        return
    file = st.file_uploader(
        "CSV, NPZ, IDX or ZIP of image folders",
        type=list(datasets.UPLOAD_TYPES),
        key="upload",
        max_upload_size=datasets.upload_limit_mb(),
    )
    try:
        if file is None:  # removed, or back on the page: the current dataset's file (if any) is the one shown
            ss.pop("uploaded", None)
            ss.pop("upload_file_id", None)
        elif ss.get("upload_file_id") != file.file_id:
            ss.uploaded = datasets.keep_upload(file.name, file.getvalue())
            ss.upload_file_id = file.file_id
        path = ss.get("uploaded") or spec.data.path or spec.data.images
        if not path:
            st.caption(
                "A CSV needs a header row; you pick the column to predict. "
                "An NPZ holds arrays x and y (and optionally x_test, y_test). "
                "A ZIP holds one folder of images per class (cats/1.jpg, dogs/2.png). "
                "IDX: MNIST's images file, then its labels file."
            )
            return
        candidate = upload_candidate(path)
        if candidate is None:
            return
        if candidate != spec.data and candidate == ss.get("upload_attempt"):
            datasets.dataset(candidate)  # raises the error remembered from the attempt, without reloading
        elif candidate != spec.data:
            ss.upload_attempt = candidate
            datasets.choose(candidate)
            st.rerun()
    except (DataError, StoreFullError) as e:
        st.error(plain(e), icon=":material/error:")
        st.caption(f"The previous dataset, **{plain(spec.data.name)}**, stays selected.")


def upload_candidate(path: str):
    """The DataSpec the saved upload `path` and the choices beside it make; None while a choice is missing."""
    kind = datasets.upload_kind(path)
    target, options = None, {}
    if kind == "csv":
        columns = csv_columns(datasets.local_path(path))
        if ss.get("target_column") not in columns:  # a column named like a target, else the person chooses
            ss.target_column = spec.data.target if spec.data.target in columns else propose_target(columns)
        target = st.selectbox(
            "Column to predict", columns, key="target_column", index=None, placeholder="Choose the column to predict"
        )
        if target is None:
            st.info(
                "Which column should the network learn to predict? No column is named like a target "
                "(target, label, class, …), so choose it above.",
                icon=":material/ads_click:",
            )
            return None
    elif kind == "images":
        options = image_options()
    elif kind == "idx":
        options = idx_pair(path)
        if options is None:
            return None
        path = options.pop("images")
    if ss.get("upload_task") not in TASKS:
        ss.upload_task = spec.data.task
    task = st.selectbox(
        "Task", TASKS, key="upload_task", help="auto: classes for text or few whole numbers, else regression"
    )
    return datasets.upload_spec(path, target, task, **options)


def image_options() -> dict:
    """The size and colour a ZIP's images are read at (the spec's when it is this ZIP already)."""
    if ss.get("image_size") not in IMAGE_SIZES:
        ss.image_size = spec.data.image_size or DEFAULT_IMAGE_SIZE
    if ss.get("image_colour") not in COLOURS:
        ss.image_colour = COLOURS[bool(spec.data.color)]
    size = st.selectbox(
        "Image size",
        IMAGE_SIZES,
        key="image_size",
        format_func=lambda s: f"{s}×{s} pixels",
        help="Every image is centre-cropped to a square and resized to this; larger keeps more "
        "detail and trains slower.",
    )
    colour = st.radio(
        "Colour",
        COLOURS,
        key="image_colour",
        horizontal=True,
        help="Grey is one channel and trains faster; colour keeps red, green and blue.",
    )
    return {"image_size": size, "color": colour == COLOURS[1]}


def idx_pair(path: str) -> dict | None:
    """IDX images and labels arrive one upload at a time: the pair once both are here, else None (and a prompt)."""
    pair = ss.setdefault("idx_pair", {})
    if spec.data.source == "idx" and not pair:
        pair.update(images=spec.data.images, labels=spec.data.labels)
    pair[datasets.idx_role(path)] = path
    missing = [role for role in ("images", "labels") if not pair.get(role)]
    if missing:
        have = "labels" if missing == ["images"] else "images"
        st.info(
            f"This is an IDX {have} file; now upload its {missing[0]} file (e.g. "
            f"train-{missing[0]}-idx{3 if missing[0] == 'images' else 1}-ubyte.gz) above.",
            icon=":material/upload_file:",
        )
        return None
    return {"images": pair["images"], "labels": pair["labels"]}


st.title("Data")
st.caption("What the network learns from. Everything here is ready to train; uploads are checked before use.")
left, right = st.columns([1, 2], gap="large")

with left:
    choice = datasets.UPLOAD if ss.get("data_choice") == datasets.UPLOAD else datasets.source_of(spec.data)
    option = bound(
        st.selectbox,
        "Dataset",
        "dataset",
        choice,
        choose_source,
        options=datasets.options(),
        format_func=datasets.label,
    )
    if option == datasets.UPLOAD:  # a built-in's description is the one beside, under its name
        st.caption(datasets.SOURCES[option])
    if ss.get("data_error"):
        st.error(plain(ss.data_error), icon=":material/error:")
    if option == datasets.UPLOAD:
        upload_section()
    elif spec.data.name in SYNTHETIC_SETS:
        bound(
            st.slider,
            "Noise",
            "noise",
            spec.data.noise,
            lambda _s, v: set_generator("noise", v),
            min_value=0.0,
            max_value=0.5,
            step=0.05,
        )
        bound(
            st.slider,
            "Points",
            "n_points",
            spec.data.n,
            lambda _s, v: set_generator("n", v),
            min_value=100,
            max_value=5000,
            step=100,
        )

try:
    ds = datasets.dataset()
except DataError as e:
    right.error(plain(e), icon=":material/error:")
    st.stop()
try:
    ds = with_recipe(ds, spec.split)  # a table's recipe as this split's training rows fit it
except DataError:
    pass  # a split that cannot be made: the split chart below says why

with left:
    if ds.x_test is None:
        bound(
            st.slider,
            "Test fraction",
            "test_split",
            spec.split.test,
            field("split", "test", float),
            min_value=0.05,
            max_value=0.5,
            step=0.05,
            help="Held out until training ends; never trained on.",
        )
    else:
        st.caption("This set comes with its own official test set, used as is.")
    st.caption("The validation fraction is set on the Train page.")
    _, problem = datasets.check_model()
    if problem:
        st.warning(f"The current model does not fit this data: {plain(problem)}", icon=":material/warning:")
        if st.button("Use the Tutorial MLP (fits any data)", key="fix_model"):
            state.set_layers(PRESETS["mlp"].build())
            st.rerun()

with right:
    st.subheader(plain(ds.name))
    st.caption(plain(ds.description))
    n_rows = len(ds.y) + (0 if ds.y_test is None else len(ds.y_test))
    c = st.columns(3)
    c[0].metric("Rows", f"{n_rows:,}")
    c[1].metric("Image size" if ds.is_image else "Features", "×".join(map(str, ds.input_shape)))
    c[2].metric("Classes", ds.n_classes if ds.task != "regression" else "–")
    st.badge(
        {"multiclass": "multiclass classification", "binary": "binary classification"}.get(ds.task, ds.task),
        icon=":material/category:",
    )
    if ds.task_reason:
        change = " You can change the task on the left." if option == datasets.UPLOAD else ""
        st.caption(f"{plain(ds.task_reason)}.{change}")
    for note in ds.notes:
        st.caption(f":material/info: {plain(note)}")
    if ds.recipe is not None:
        st.markdown(
            "**Recipe** · how each column becomes model input, fitted on the training rows only; the "
            "saved model and the exported script apply it to raw rows"
        )
        st.dataframe(pd.DataFrame(ds.recipe.describe()), hide_index=True, key="recipe_table")
    try:
        st.plotly_chart(plots.split_bar(datasets.current_split_sizes()), key="chart_split")
    except DataError as e:
        st.error(plain(e), icon=":material/error:")
    a, b = st.columns(2)
    with a:
        if ds.task == "regression":
            st.plotly_chart(plots.target_histogram(ds.y), key="chart_balance")
        else:
            st.plotly_chart(plots.class_balance(class_counts(ds)), key="chart_balance")
    with b:
        if ds.is_image:
            st.plotly_chart(plots.sample_grid(ds.x, ds.y, ds.class_names), key="chart_samples")
        elif ds.input_shape == (2,):
            st.plotly_chart(plots.scatter_2d(ds.x, ds.y, ds.class_names, ds.feature_names), key="chart_scatter")
        else:
            st.caption("First rows")
            head = pd.DataFrame(ds.x[:10], columns=ds.feature_names or None)
            head.insert(0, "target", [ds.class_names[int(v)] for v in ds.y[:10]] if ds.class_names else ds.y[:10])
            st.dataframe(head, hide_index=True)
