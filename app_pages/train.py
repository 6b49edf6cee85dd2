"""Train: hyperparameters, Train and Stop, and the run's curves growing live (training runs in a worker)."""

import streamlit as st

from kfcore.spec import OPTIMIZERS, SCHEDULES
from ui import coach_view, datasets, limits, live, state
from ui.pages import page
from ui.text import plain
from ui.widgets import bound, field

LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512, 1024)
SCHEDULE_LABELS = {"constant": "constant", "exponential": "exponential decay per epoch", "cosine": "cosine decay"}

ss = st.session_state
spec = state.spec()
t = spec.train

st.title("Train")
left, right = st.columns([1, 2], gap="medium")  # at 1024 px the settings still need ~230 px

with left, st.container(border=True):
    st.markdown("**Hyperparameters**")
    st.caption(
        "For the next run you train; Pause, Step and the learning rate beside Train act on the run training now."
    )
    bound(st.selectbox, "Optimizer", "optimizer", t.optimizer, field("train", "optimizer"), options=OPTIMIZERS)
    if t.optimizer == "sgd":
        bound(
            st.slider,
            "Momentum",
            "momentum",
            t.momentum,
            field("train", "momentum", float),
            min_value=0.0,
            max_value=0.99,
            step=0.01,
        )
    if t.optimizer == "adamw":
        bound(
            st.select_slider,
            "Weight decay",
            "weight_decay",
            t.weight_decay,
            field("train", "weight_decay", float),
            options=(0.0, 1e-4, 4e-4, 1e-3, 4e-3, 1e-2, 4e-2, 0.1),
            format_func=lambda v: f"{v:g}",
        )
    bound(
        st.select_slider,
        "Learning rate (log scale)",
        "learning_rate",
        t.learning_rate,
        field("train", "learning_rate", float),
        options=LEARNING_RATES,
        format_func=lambda v: f"{v:g}",
    )
    bound(
        st.selectbox,
        "Learning-rate schedule",
        "schedule",
        t.schedule,
        field("train", "schedule"),
        options=SCHEDULES,
        format_func=SCHEDULE_LABELS.get,
    )
    if t.schedule == "exponential":
        bound(
            st.slider,
            "Decay per epoch",
            "decay_rate",
            t.decay_rate,
            field("train", "decay_rate", float),
            min_value=0.5,
            max_value=1.0,
            step=0.01,
            help="The learning rate is multiplied by this every epoch.",
        )
    bound(
        st.select_slider,
        "Batch size",
        "batch_size",
        t.batch_size,
        field("train", "batch_size", int),
        options=BATCH_SIZES,
    )
    bound(
        st.slider,
        "Epochs",
        "epochs",
        t.epochs,
        field("train", "epochs", int),
        min_value=1,
        max_value=state.epochs_max(t.epochs),
    )
    bound(
        st.slider,
        "Validation fraction",
        "validation_split",
        spec.split.validation,
        field("split", "validation", float),
        min_value=0.0,
        max_value=0.4,
        step=0.05,
        help="Held out from training to draw the validation curves; 0 turns them off.",
    )
    bound(
        st.number_input,
        "Seed",
        "seed",
        t.seed,
        field("train", "seed", int),
        min_value=0,
        max_value=2**31 - 1,
        help="Same seed, same settings: the same run, weight for weight.",
    )
    bound(
        st.toggle,
        "Early stopping",
        "early_stopping",
        t.early_stopping,
        field("train", "early_stopping", bool),
        help="Stop when the validation loss has not improved for a few epochs.",
    )
    if t.early_stopping:
        bound(
            st.number_input,
            "Patience (epochs)",
            "patience",
            t.patience,
            field("train", "patience", int),
            min_value=1,
            max_value=1000,
        )
        bound(
            st.toggle,
            "Keep the best epoch's weights",
            "restore_best_weights",
            t.restore_best_weights,
            field("train", "restore_best_weights", bool),
        )
    st.button(
        "Reset to defaults",
        key="reset_hyperparameters",
        icon=":material/restart_alt:",
        on_click=state.reset_hyperparameters,
    )

with right:
    record = state.current_run()
    active = state.is_active(record) and state.owns(record)  # a shared run training elsewhere blocks nothing here
    report, problem = datasets.check_model()
    if problem is None:
        ds = datasets.dataset()
        sizes = datasets.current_split_sizes()
        st.markdown(
            f"**{plain(ds.name)}** ({sizes['train']:,} train · {sizes['validation']:,} validation · "
            f"{sizes['test']:,} test)"
            f" → {plain(spec.layers_short())} → output · **{report.total_params:,}** parameters"
        )
        for note in datasets.model_advice():
            st.warning(note, icon=":material/lightbulb:")
    else:
        st.error(f"This experiment cannot train yet: {plain(problem)}", icon=":material/error:")
        st.page_link(page("model"), label="Fix the model", icon=":material/account_tree:")
    buttons = st.container(horizontal=True)
    # No help= on these two: a tooltip makes Streamlit draw the button twice, and `.st-key-train button`
    # must find exactly one for browser automation.
    sign_in = state.sign_in_first()
    buttons.button(
        "Train",
        key="train",
        type="primary",
        icon=":material/play_arrow:",
        on_click=state.start_training,
        disabled=problem is not None or active or sign_in is not None,
    )
    buttons.button("Stop", key="stop", icon=":material/stop:", on_click=state.stop_training, disabled=not active)
    live.controls(buttons, record)
    live.continue_controls(record)
    if sign_in:
        st.info(sign_in, icon=":material/login:")
    elif ss.get("train_error"):
        st.error(plain(ss.train_error), icon=":material/error:")
    limits.server_note()
    if record is not None:
        other_data, other_settings = state.run_differs(record)
        if other_data and record.is_final:
            st.info(
                f"The results below are of **{plain(record.name)}**, trained on other data than this experiment "
                "now uses; press **Train** for results on this data.",
                icon=":material/info:",
            )
        elif other_data or other_settings:
            st.caption(
                ":material/schedule: Your changes apply to the next run"
                + (", not to the one training now." if active else ".")
            )
    live.run_panel()
    if record is not None and record.status == "finished":  # outside the live panel: its buttons rerun the page
        coach_view.findings(record, state.store().epochs(record.id), "train")
