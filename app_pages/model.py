"""Model: the layer stack as an editable list, with each layer's output shape and parameter count, live."""

import streamlit as st

from kfcore.model.presets import PRESETS
from kfcore.model.shapes import ShapeError
from kfcore.present import plots
from kfcore.runs.limits import LimitError
from kfcore.spec import LAYER_TYPES
from ui import datasets, layer_editor, state
from ui.pages import page
from ui.text import plain

ss = st.session_state
EDITOR_PX, TABLE_PX = 440, 400  # the layer table's three columns need about 380 px


def apply_preset(key: str) -> None:
    preset = PRESETS[key]
    _, problem = datasets.check_model(preset.build())
    if isinstance(problem, ShapeError):
        ss.preset_error = f"The {preset.name} does not fit this data: {plain(problem)}"
        return
    ss.preset_error = None
    state.set_layers(preset.build())


st.title("Model")
st.caption(
    "Input → your layers → an output layer the studio adds for the task (softmax over the classes, "
    "a sigmoid unit for yes/no, a linear unit for numbers). Tabular inputs are standardised automatically."
)

spec = state.spec()
report, problem = datasets.check_model()
bad_index = problem.layer_index if isinstance(problem, ShapeError) else None
# Two panes side by side where both fit (about 1400 px and wider), else stacked: squeezed into columns at 1024 px,
# the preset and Add layer labels were cut short and the table hid its Output shape and Parameters columns.
panes = st.container(horizontal=True, gap="large")
left, right = panes.container(width=EDITOR_PX), panes.container(width=TABLE_PX)

with left:
    st.markdown("**Start from a preset**")
    with st.container(horizontal=True):  # the buttons wrap onto a second row rather than cut their labels
        for preset in PRESETS.values():
            st.button(
                preset.name,
                key=f"preset_{preset.key}",
                on_click=apply_preset,
                args=(preset.key,),
                help=preset.description,
            )
    for preset in PRESETS.values():
        st.caption(f"**{preset.name}**: {preset.description}")
    if ss.get("preset_error"):
        st.error(ss.preset_error, icon=":material/error:")

    st.markdown(f"**Hidden layers** ({len(spec.layers)})")
    ids = state.layer_ids()
    for i, (lid, layer) in enumerate(zip(ids, spec.layers, strict=True)):
        layer_editor.card(i, lid, layer, len(ids), str(problem) if bad_index == i else None)
    if not spec.layers:
        st.caption("No hidden layers: the inputs go straight to the output layer (a linear or logistic model).")

    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.selectbox("New layer", LAYER_TYPES, key="add_layer_type")
        st.button(
            "Add layer",
            key="add_layer",
            icon=":material/add:",
            type="primary",
            on_click=lambda: state.add_layer(ss.add_layer_type),
        )

with right:
    st.markdown("**The model, layer by layer**")
    if problem is not None:
        verdict = "cannot train on this server" if isinstance(problem, LimitError) else "cannot be built"
        st.error(f"This model {verdict}: {plain(problem)}", icon=":material/error:")
    for note in datasets.model_advice():
        st.warning(note, icon=":material/lightbulb:")
    if report is not None:
        ds = datasets.dataset()
        rows = [{"Layer": "Input", "Output shape": "×".join(map(str, ds.input_shape)), "Parameters": 0}]
        rows += [
            {"Layer": r.name, "Output shape": "×".join(str(s) for s in r.output_shape), "Parameters": r.params}
            for r in report.rows
        ]
        st.dataframe(
            rows,
            hide_index=True,
            key="layer_table",
            column_config={"Parameters": st.column_config.NumberColumn(format="localized")},
        )
        a, b = st.columns(2)
        a.metric("Parameters", f"{report.total_params:,}")
        b.metric("Trainable", f"{report.trainable_params:,}")
        st.caption(
            f"On **{plain(ds.name)}**: input {'×'.join(map(str, ds.input_shape))}, "
            f"{'regression' if ds.task == 'regression' else f'{ds.n_classes} classes'}."
        )
        # A small dense network as Playground draws it (its weights appear once it trains), any other as blocks.
        diagram = plots.network_diagram(report, ds.input_shape, feature_names=ds.feature_names) or plots.layer_blocks(
            report
        )
        st.plotly_chart(diagram, key="model_diagram", config={"displayModeBar": False})
    st.page_link(page("train"), label="Train this model", icon=":material/model_training:")
