"""Plotly figure builders: plain data in, a go.Figure out; no Streamlit, no TensorFlow, no I/O.

Pages draw these with st.plotly_chart and tests inspect their traces, so every chart the studio shows
is made (and checked) here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from kfcore.model.shapes import ShapeReport
from kfcore.runs.sweepresults import scored as scored_trials
from kfcore.training.snapshot import small_dense

TRAIN_COLOR = "#2563eb"
VALIDATION_COLOR = "#ea580c"
PREVIOUS_COLOR = "#9ca3af"
BEST_COLOR = "#16a34a"
LR_COLOR = "#be185d"  # a learning-rate change's marker line
SPLIT_COLORS = {"train": TRAIN_COLOR, "validation": VALIDATION_COLOR, "test": "#7c3aed"}
# Colour-blind-safe categorical palette (Okabe–Ito, then Tableau for more than eight classes).
CLASS_COLORS = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#4E79A7",
    "#F28E2B",
    "#E15759",
    "#76B7B2",
    "#59A14F",
    "#EDC948",
    "#B07AA1",
    "#FF9DA7",
)
METRIC_LABELS = {"loss": "Loss", "accuracy": "Accuracy", "mae": "Mean absolute error"}
MAX_SCATTER_POINTS = 3000
# Beyond this many epochs a curve is drawn without a marker per epoch: a live run of thousands of epochs redrawn twice
# a second as thousands of SVG markers kept the browser too busy to take a click.
MAX_MARKED_EPOCHS = 300


# Every figure uses plotly_white. As the process default it is attached once, when a figure is serialised;
# naming it in each layout made plotly validate and deep-copy the whole template per figure (~8 ms, half of
# a training curve's cost, paid on every live poll).
pio.templates.default = "plotly_white"


def class_color(i: int) -> str:
    return CLASS_COLORS[i % len(CLASS_COLORS)]


def _text(value: Any) -> str:
    """User text (a class label, a column or run name) as Plotly text that shows literally: Plotly draws a subset of
    HTML in every label (<a href> a link, <b>, <br>) and decodes entities, so < > & go in as entities."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Legends sit at the foot of the figure (container coordinates), growing upwards as they wrap: Plotly pushes the
# bottom margin to fit them, so they never cover the x-axis title. Anchored to the plot area instead (paper y < 0),
# a wrapped legend shrank the plot and climbed onto the axis title; above the plot it covered the chart's title and
# the selection toolbar.
LEGEND_BELOW = {"orientation": "h", "yanchor": "bottom", "y": 0, "yref": "container", "xanchor": "left", "x": 0}


def _layout(fig: go.Figure, title: str | None, height: int, **kwargs: Any) -> go.Figure:
    layout: dict[str, Any] = {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}} if title else None,
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        "legend": LEGEND_BELOW,
    }
    fig.update_layout(**{**layout, **kwargs})
    return fig


def class_balance(counts: dict[str, int], title: str = "Samples per class") -> go.Figure:
    """Bar per class with its sample count, so an imbalanced set is obvious at a glance."""
    names = [_text(n) for n in counts]
    values = [int(v) for v in counts.values()]
    total = sum(values) or 1
    fig = go.Figure(
        go.Bar(
            x=names,
            y=values,
            marker_color=[class_color(i) for i in range(len(names))],
            text=[f"{v / total:.0%}" for v in values],
            textposition="outside",
            hovertemplate="%{x}: %{y} samples<extra></extra>",
        )
    )
    fig.update_xaxes(type="category", title=None)
    fig.update_yaxes(title="samples", rangemode="tozero")
    return _layout(fig, title, 300, showlegend=False)


def target_histogram(y: np.ndarray, name: str = "target", title: str = "Target distribution") -> go.Figure:
    """Histogram of a regression target."""
    fig = go.Figure(go.Histogram(x=np.asarray(y, dtype=np.float64), nbinsx=30, marker_color=TRAIN_COLOR))
    fig.update_xaxes(title=_text(name))
    fig.update_yaxes(title="samples")
    return _layout(fig, title, 300, showlegend=False, bargap=0.05)


def split_bar(sizes: dict[str, int], title: str = "Train / validation / test split") -> go.Figure:
    """One stacked horizontal bar: how many samples each split gets."""
    total = sum(sizes.values()) or 1
    fig = go.Figure()
    for name, n in sizes.items():
        fig.add_trace(
            go.Bar(
                y=[""],
                x=[n],
                name=f"{name} ({n:,})",
                orientation="h",
                marker_color=SPLIT_COLORS.get(name, PREVIOUS_COLOR),
                text=[f"{name}<br>{n:,} · {n / total:.0%}"],
                textposition="inside",
                insidetextanchor="middle",
                textangle=0,
                hovertemplate=f"{name}: {n:,} samples<extra></extra>",
            )
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, 130, barmode="stack", showlegend=False)


def scatter_2d(
    x: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    feature_names: Sequence[str] = ("x1", "x2"),
    title: str = "The data",
    max_points: int = MAX_SCATTER_POINTS,
) -> go.Figure:
    """The points of a 2-D set coloured by class (or by value for regression), at most max_points of them."""
    x = np.asarray(x)
    y = np.asarray(y)
    if len(x) > max_points:  # an even thinning keeps the picture and the browser fast
        keep = np.linspace(0, len(x) - 1, max_points).astype(int)
        x, y = x[keep], y[keep]
    fx, fy = [_text(f) for f in feature_names][:2] if len(feature_names) >= 2 else ("x1", "x2")
    fig = go.Figure()
    if class_names:
        for k, name in enumerate(class_names):
            mask = y == k
            fig.add_trace(
                go.Scattergl(
                    x=x[mask, 0],
                    y=x[mask, 1],
                    mode="markers",
                    name=_text(name),
                    marker={"color": class_color(k), "size": 6, "line": {"width": 0.5, "color": "white"}},
                )
            )
    else:
        fig.add_trace(
            go.Scattergl(
                x=x[:, 0],
                y=x[:, 1],
                mode="markers",
                name="target",
                marker={"color": y.astype(np.float64), "colorscale": "Viridis", "showscale": True, "size": 6},
            )
        )
    fig.update_xaxes(title=fx, zeroline=False)
    fig.update_yaxes(title=fy, zeroline=False, scaleanchor="x", scaleratio=1)
    return _layout(fig, title, 380)


def _pick_samples(y: np.ndarray, n_classes: int, per_class: int, rows: int) -> list[list[int]]:
    """Indices laid out one row per class (the first per_class of each), or plain rows for regression."""
    if n_classes:
        return [list(np.flatnonzero(y == k)[:per_class]) for k in range(min(n_classes, rows))]
    flat = list(range(min(len(y), rows * per_class)))
    return [flat[i : i + per_class] for i in range(0, len(flat), per_class)]


def sample_grid(
    x: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    per_class: int = 8,
    max_rows: int = 10,
    title: str = "Samples, one row per class",
) -> go.Figure:
    """A mosaic of example images, one row per class, labelled with the class name.

    x: (N, H, W, C) in [0, 1]. Grey images are drawn dark-on-light (ink on paper), colour ones as they are.
    """
    x = np.asarray(x)
    rows = [r for r in _pick_samples(np.asarray(y), len(class_names), per_class, max_rows) if r] or [[]]
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    gap = max(1, h // 8)
    cols = max(len(r) for r in rows) or 1
    height, width = len(rows) * (h + gap) - gap, cols * (w + gap) - gap
    colour = c == 3
    mosaic = np.full((height, width, 3) if colour else (height, width), np.nan if not colour else 1.0)
    for r, idx in enumerate(rows):
        for j, i in enumerate(idx):
            tile = x[i] if colour else x[i, :, :, 0]
            mosaic[r * (h + gap) : r * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = tile
    if colour:
        trace: go.BaseTraceType = go.Image(z=np.clip(mosaic * 255, 0, 255).astype(np.uint8), hoverinfo="skip")
    else:
        trace = go.Heatmap(z=mosaic, colorscale="Greys", zmin=0, zmax=1, showscale=False, hoverinfo="skip")
    fig = go.Figure(trace)
    centres = [r * (h + gap) + (h - 1) / 2 for r in range(len(rows))]
    labels = [_text(class_names[r]) for r in range(len(rows))] if class_names else [""] * len(rows)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(
        autorange="reversed",
        scaleanchor="x",
        constrain="domain",
        tickvals=centres,
        ticktext=labels,
        showgrid=False,
        zeroline=False,
    )
    return _layout(fig, title, min(560, 70 + 36 * len(rows)), plot_bgcolor="white")


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float | None]]:
    xs: list[int] = []
    ys: list[float | None] = []
    for row in history:
        if key in row and row[key] is not None and math.isfinite(float(row[key])):
            xs.append(int(row["epoch"]))
            ys.append(float(row[key]))
    return xs, ys


def training_curve(
    history: Sequence[dict[str, Any]],
    metric: str,
    previous: Sequence[dict[str, Any]] | None = None,
    epochs: int | None = None,
    best_epoch: int | None = None,
    title: str | None = None,
    parent: Sequence[dict[str, Any]] | None = None,
) -> go.Figure:
    """One metric per epoch: train solid, validation in a second colour, the previous run dashed grey.

    history: the store's epoch rows ({"epoch": 1, "loss": ..., "val_loss": ...}). epochs fixes the x axis
    to the planned length, so the chart does not rescale as the run grows; best_epoch gets a star on the
    validation curve (the training curve without validation). parent: the epochs of the run this one continues
    (numbered before this run's): its curves run on into this run's, a dotted line marks the join. A row with
    `lr_changed` (the learning rate was changed while the run trained) gets a marker line with the new rate.
    """
    label = METRIC_LABELS.get(metric, metric)
    fig = go.Figure()
    joined = int(parent[-1]["epoch"]) if parent else None
    if parent:
        history = [*parent, *history]
    if previous:
        for key, part, dash in ((metric, "train", "dash"), (f"val_{metric}", "validation", "dot")):
            xs, ys = _series(previous, key)
            if xs:
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=ys,
                        mode="lines",
                        name=f"previous · {part}",
                        legendgroup="previous",
                        line={"color": PREVIOUS_COLOR, "dash": dash, "width": 2},
                        hovertemplate=f"previous {part}, epoch %{{x}}: %{{y:.4f}}<extra></extra>",
                    )
                )
    for key, part, color in ((metric, "train", TRAIN_COLOR), (f"val_{metric}", "validation", VALIDATION_COLOR)):
        xs, ys = _series(history, key)
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines+markers" if len(xs) <= MAX_MARKED_EPOCHS else "lines",
                    name=part,
                    line={"color": color, "width": 2.5},
                    marker={"size": 5},
                    hovertemplate=f"{part}, epoch %{{x}}: %{{y:.4f}}<extra></extra>",
                )
            )
    if best_epoch is not None:
        key = f"val_{metric}" if any(f"val_{metric}" in r for r in history) else metric
        xs, ys = _series([r for r in history if int(r["epoch"]) == best_epoch], key)
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="markers",
                    name="best epoch",
                    marker={"symbol": "star", "size": 15, "color": BEST_COLOR, "line": {"width": 1, "color": "white"}},
                    hovertemplate="best epoch %{x}: %{y:.4f}<extra></extra>",
                )
            )
    if joined is not None:
        fig.add_vline(
            x=joined + 0.5,
            line={"color": "#111827", "width": 1.5, "dash": "dot"},
            annotation={"text": "continued", "font": {"size": 11, "color": "#111827"}},
            annotation_position="bottom left",
        )  # clear of a rate marker's label at the top
    for row in history:
        if row.get("lr_changed") and row.get("learning_rate") is not None:
            fig.add_vline(
                x=int(row["epoch"]) - 0.5,
                line={"color": LR_COLOR, "width": 1.5, "dash": "dash"},
                annotation={
                    "text": f"learning rate → {float(row['learning_rate']):g}",
                    "font": {"size": 11, "color": LR_COLOR},
                },
                annotation_position="top left",
            )  # inside the plot: most changes come late in a run
    last = max([int(r["epoch"]) for r in list(history) + list(previous or [])] + [epochs or 1, 1])
    fig.update_xaxes(title="epoch", range=[0.6, last + 0.4], tick0=1, dtick=max(1, math.ceil(last / 10)))
    fig.update_yaxes(title=label)
    if not fig.data:  # before the first epoch: an empty frame that says what is coming, not a bare grid
        fig.update_yaxes(showticklabels=False, showgrid=False, range=[0, 1])
        fig.add_annotation(
            text="waiting for the first epoch…",
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
            showarrow=False,
            font={"color": PREVIOUS_COLOR, "size": 13},
        )
    return _layout(fig, title or label, 340, hovermode="x unified")


# -- evaluation -----------------------------------------------------------------------------------

CELL_HIGHLIGHT_COLOR = "#f59e0b"
MAX_LABELLED_CLASSES = 25  # a confusion matrix prints its numbers in the cells up to this many classes


def _cell_text(value: float, normalised: bool) -> str:
    return f"{value:.0%}" if normalised else f"{int(value)}"


def confusion_matrix(
    cm: Sequence[Sequence[float]],
    class_names: Sequence[str],
    normalised: bool = False,
    counts: Sequence[Sequence[int]] | None = None,
    selected: tuple[int, int] | None = None,
    title: str | None = "Confusion matrix",
) -> go.Figure:
    """Rows are the true class, columns the predicted one; every cell is clickable and outlined when selected.

    cm holds counts, or row fractions when normalised (then counts gives the sample numbers for hover).
    Plotly cannot select heatmap cells, so an invisible square marker sits on each cell centre; it carries
    [true, predicted, count] as customdata, which a click hands to the page (kfcore.present.samples.cell_from_selection).
    """
    m = np.asarray(cm, dtype=np.float64)
    n = len(class_names)
    names = [_text(c) for c in class_names]
    counts_m = np.asarray(counts if counts is not None else m).astype(np.int64)
    labelled = n <= MAX_LABELLED_CLASSES  # beyond that the numbers no longer fit their cells: hover tells them
    heat = go.Heatmap(
        z=m,
        x=names,
        y=names,
        colorscale="Blues",
        zmin=0,
        zmax=1.0 if normalised else max(1.0, float(m.max())),
        text=[[_cell_text(v, normalised) for v in row] for row in m] if labelled else None,
        texttemplate="%{text}" if labelled else None,
        hoverinfo="skip",
        showscale=False,
        xgap=2 if labelled else 1,
        ygap=2 if labelled else 1,
    )
    rows, cols = np.divmod(np.arange(n * n), n)
    cells = go.Scatter(
        x=[names[j] for j in cols],
        y=[names[i] for i in rows],
        mode="markers",
        name="cells",
        showlegend=False,
        marker={"symbol": "square", "size": max(12, min(48, 360 // max(n, 1))), "color": "rgba(0,0,0,0)"},
        customdata=np.stack([rows, cols, counts_m.reshape(-1)], axis=1).tolist(),
        hovertemplate="true <b>%{y}</b>, predicted <b>%{x}</b>: %{customdata[2]} samples"
        "<br>click to list them<extra></extra>",
    )
    fig = go.Figure([heat, cells])
    if selected is not None:
        i, j = selected
        fig.add_shape(
            type="rect",
            x0=j - 0.5,
            x1=j + 0.5,
            y0=i - 0.5,
            y1=i + 0.5,
            line={"color": CELL_HIGHLIGHT_COLOR, "width": 4},
        )
    # Fixed ranges: the markers would otherwise pad the axes; square cells keep the grid readable.
    fig.update_xaxes(
        title="predicted class",
        type="category",
        range=[-0.5, n - 0.5],
        showgrid=False,
        tickangle=0 if labelled else None,
        constrain="domain",
    )
    fig.update_yaxes(
        title="true class",
        type="category",
        range=[n - 0.5, -0.5],
        showgrid=False,
        scaleanchor="x",
        constrain="domain",
        constraintoward="top",
    )
    height = max(380, min(520, 140 + 40 * n)) if labelled else min(900, 300 + 12 * n)
    return _layout(fig, title, height, hoverdistance=-1, plot_bgcolor="white")


def per_class_scores(
    per_class: Sequence[dict[str, Any]], title: str = "Precision, recall and F1 per class"
) -> go.Figure:
    """Grouped bars, three per class: of the samples predicted as the class, how many were (precision); of the
    class's samples, how many were found (recall); and their harmonic mean (F1)."""
    names = [_text(c["class"]) for c in per_class]
    fig = go.Figure()
    for key, label, color in (
        ("precision", "precision", TRAIN_COLOR),
        ("recall", "recall", VALIDATION_COLOR),
        ("f1", "F1", BEST_COLOR),
    ):
        fig.add_trace(
            go.Bar(
                x=names,
                y=[c[key] for c in per_class],
                name=label,
                marker_color=color,
                hovertemplate=f"%{{x}}: {label} %{{y:.1%}}<extra></extra>",
            )
        )
    fig.update_xaxes(type="category", title=None)
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%")
    return _layout(fig, title, 320, barmode="group", bargap=0.25)


def per_class_accuracy(
    history: Sequence[dict[str, Any]], class_names: Sequence[str], title: str = "Validation accuracy per class"
) -> go.Figure:
    """One line per class: the fraction of its validation samples classified right, epoch by epoch."""
    fig = go.Figure()
    for k, name in enumerate(map(_text, class_names)):
        xs, ys = [], []
        for row in history:
            values = row.get("per_class_val_accuracy") or []
            if k < len(values) and values[k] is not None:
                xs.append(int(row["epoch"]))
                ys.append(float(values[k]))
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines+markers",
                    name=name,
                    marker={"size": 5},
                    line={"color": class_color(k), "width": 2},
                    hovertemplate=f"{name}, epoch %{{x}}: %{{y:.1%}}<extra></extra>",
                )
            )
    numbers = [int(r["epoch"]) for r in history] or [1]
    first, last = min(numbers), max(numbers)  # a continued run's epochs follow its parent's
    fig.update_xaxes(
        title="epoch", range=[first - 0.4, last + 0.4], tick0=first, dtick=max(1, math.ceil((last - first + 1) / 10))
    )
    fig.update_yaxes(title="accuracy", range=[-0.02, 1.02], tickformat=".0%")
    return _layout(fig, title, 340)


def _boundary_colorscale(k: int) -> list[list[Any]]:
    """Playground's look: the two class colours, pale, meeting in white where the model is unsure."""
    return (
        [[0.0, class_color(0)], [0.5, "#ffffff"], [1.0, class_color(1)]]
        if k == 2
        else [[i / max(k - 1, 1), class_color(i)] for i in range(k)]
    )


def decision_boundary(
    boundary: dict[str, Any],
    class_names: Sequence[str],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    feature_names: Sequence[str] = ("x1", "x2"),
    title: str | None = "Decision boundary",
) -> go.Figure:
    """What the model predicts over the plane, as TensorFlow Playground draws it, with the data on top.

    boundary: kfcore.training.evaluate.decision_boundary's dict (x, y, values; kind "probability" of class 1 or
    "class"). Training points are filled circles, test points diamonds with a dark outline.
    """
    fig = go.Figure(_plane_heatmap(boundary, class_names))
    for part, x, y, symbol, outline in (
        ("train", x_train, y_train, "circle", "white"),
        ("test", x_test, y_test, "diamond", "#111827"),
    ):
        x, y = np.asarray(x), np.asarray(y)
        if len(x) > MAX_SCATTER_POINTS:
            keep = np.linspace(0, len(x) - 1, MAX_SCATTER_POINTS).astype(int)
            x, y = x[keep], y[keep]
        for c, name in enumerate(map(_text, class_names)):
            mask = y == c
            fig.add_trace(
                go.Scatter(
                    x=x[mask, 0],
                    y=x[mask, 1],
                    mode="markers",
                    name=f"{part} · {name}",
                    legendgroup=part,
                    marker={
                        "color": class_color(c),
                        "symbol": symbol,
                        "size": 7 if part == "train" else 9,
                        "line": {"width": 1.2, "color": outline},
                    },
                    hovertemplate=f"{part}, class {name}: (%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
                )
            )
    _plane_axes(fig, boundary, feature_names)
    return _layout(fig, title, 520, legend={"orientation": "v", "yanchor": "top", "y": 1, "xanchor": "left", "x": 1.02})


def _plane_heatmap(boundary: dict[str, Any], class_names: Sequence[str]) -> go.Heatmap:
    """The model's output over the plane: class colours (white where a binary model is unsure), or for a regression
    surface (kind "value") a continuous scale with its bar."""
    z = np.asarray(boundary["values"], dtype=np.float64)
    if boundary.get("kind") == "value":
        return go.Heatmap(
            x=boundary["x"],
            y=boundary["y"],
            z=z,
            colorscale="Viridis",
            opacity=0.6,
            colorbar={"thickness": 10, "len": 0.8},
            hovertemplate="predicted %{z:.3g}<extra></extra>",
        )
    k = max(2, len(class_names))
    probability = boundary.get("kind") == "probability"
    return go.Heatmap(
        x=boundary["x"],
        y=boundary["y"],
        z=z,
        colorscale=_boundary_colorscale(k),
        opacity=0.45,
        zmin=0 if probability else -0.5,
        zmax=1 if probability else k - 0.5,
        showscale=False,
        hovertemplate=("P(" + _text(class_names[-1]) + ") = %{z:.2f}<extra></extra>")
        if probability
        else "predicted class %{z}<extra></extra>",
    )


def _plane_axes(fig: go.Figure, boundary: dict[str, Any], feature_names: Sequence[str]) -> None:
    fx, fy = [_text(f) for f in feature_names][:2] if len(feature_names) >= 2 else ("x1", "x2")
    fig.update_xaxes(
        title=fx, range=[boundary["x"][0], boundary["x"][-1]], zeroline=False, showgrid=False, constrain="domain"
    )
    fig.update_yaxes(
        title=fy,
        range=[boundary["y"][0], boundary["y"][-1]],
        zeroline=False,
        showgrid=False,
        scaleanchor="x",
        scaleratio=1,
        constrain="domain",
    )


def live_boundary(
    picture: dict[str, Any],
    class_names: Sequence[str],
    feature_names: Sequence[str] = ("x1", "x2"),
    title: str = "Decision boundary",
) -> go.Figure:
    """A live run's latest picture of the plane (kfcore.training.snapshot): its boundary (or a regression's surface) under
    the training points, titled with the epoch it shows, redrawn as the run trains."""
    boundary = picture["boundary"]
    fig = go.Figure(_plane_heatmap(boundary, class_names))
    points = np.asarray(picture.get("points") or np.zeros((0, 3)), dtype=np.float64).reshape(-1, 3)
    if boundary.get("kind") == "value":
        z = np.asarray(boundary["values"], dtype=np.float64)
        fig.add_trace(
            go.Scatter(
                x=points[:, 0],
                y=points[:, 1],
                mode="markers",
                name="training points",
                showlegend=False,
                marker={
                    "color": points[:, 2],
                    "colorscale": "Viridis",
                    "cmin": float(z.min()),
                    "cmax": float(z.max()),
                    "size": 6,
                    "line": {"width": 1, "color": "white"},
                },
                hovertemplate="target %{marker.color:.3g}: (%{x:.2f}, %{y:.2f})<extra></extra>",
            )
        )
    else:
        for c, name in enumerate(map(_text, class_names)):
            mask = points[:, 2] == c
            fig.add_trace(
                go.Scatter(
                    x=points[mask, 0],
                    y=points[mask, 1],
                    mode="markers",
                    name=name,
                    marker={"color": class_color(c), "size": 6, "line": {"width": 1, "color": "white"}},
                    hovertemplate=f"class {name}: (%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
                )
            )
    fig.update_traces(zsmooth="best", selector={"type": "heatmap"})  # Playground's smooth shading
    _plane_axes(fig, boundary, feature_names)
    heading = f"{title if boundary.get('kind') != 'value' else 'Prediction surface'} at epoch {picture['epoch']}"
    return _layout(fig, heading, 340)


def predicted_vs_actual(
    y_true: np.ndarray, y_pred: np.ndarray, target: str = "target", title: str = "Predicted vs actual"
) -> go.Figure:
    """One dot per test sample; on the diagonal the prediction is exact, above it too high, below too low."""
    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    lo = float(min(y_true.min(initial=0), y_pred.min(initial=0)))
    hi = float(max(y_true.max(initial=1), y_pred.max(initial=1)))
    fig = go.Figure(
        [
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                name="perfect prediction",
                line={"color": PREVIOUS_COLOR, "dash": "dash"},
                hoverinfo="skip",
            ),
            go.Scatter(
                x=y_true,
                y=y_pred,
                mode="markers",
                name="test samples",
                customdata=np.arange(len(y_true)),
                marker={"color": TRAIN_COLOR, "size": 7, "opacity": 0.75, "line": {"width": 0.5, "color": "white"}},
                hovertemplate="sample %{customdata}: actual %{x:.4g}, predicted %{y:.4g}<extra></extra>",
            ),
        ]
    )
    fig.update_xaxes(title=f"actual {_text(target)}", range=[lo, hi])
    fig.update_yaxes(title=f"predicted {_text(target)}", range=[lo, hi], scaleanchor="x", scaleratio=1)
    return _layout(fig, title, 420)


def residual_histogram(
    y_true: np.ndarray, y_pred: np.ndarray, title: str = "Residuals (predicted − actual)"
) -> go.Figure:
    """How far off the predictions are, and whether they lean high or low: a histogram around a line at 0."""
    residuals = np.asarray(y_pred, dtype=np.float64).reshape(-1) - np.asarray(y_true, dtype=np.float64).reshape(-1)
    fig = go.Figure(
        go.Histogram(
            x=residuals,
            nbinsx=30,
            marker_color=VALIDATION_COLOR,
            name="residuals",
            hovertemplate="%{x}: %{y} samples<extra></extra>",
        )
    )
    fig.add_vline(x=0, line={"color": "#111827", "width": 1.5, "dash": "dash"})
    fig.update_xaxes(title="predicted − actual")
    fig.update_yaxes(title="samples")
    return _layout(fig, title, 400, showlegend=False, bargap=0.05)


def compare_curves(
    runs: Sequence[tuple[str, Sequence[dict[str, Any]], int | None]],
    metric: str,
    title: str | None = None,
    max_points: int | None = None,
) -> go.Figure:
    """Several runs' curves of one metric overlaid, one colour per run, each run's best epoch starred.

    runs: (name, epoch rows, best epoch) per run. The validation curve is drawn where the run has one
    (solid), else its training curve (dotted), so every run shows its generalisation when it can.
    max_points: draw at most about this many epochs per run (evenly spaced, the last kept): a sweep page
    redrawn every second overlays many long runs.
    """
    label = METRIC_LABELS.get(metric, metric)
    fig = go.Figure()
    last = 1
    for k, (run_name, history, best) in enumerate(runs):
        name = _text(run_name)
        validated = any(f"val_{metric}" in r for r in history)
        key = f"val_{metric}" if validated else metric
        xs, ys = _series(history, key)
        if not xs:
            continue
        if max_points and len(xs) > max_points:
            keep = sorted({round(i * (len(xs) - 1) / (max_points - 1)) for i in range(max_points)})
            xs, ys = [xs[i] for i in keep], [ys[i] for i in keep]
        last = max(last, max(xs))
        part = "validation" if validated else "train"
        color = class_color(k)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers",
                name=f"{name} · {part}",
                legendgroup=name,
                line={"color": color, "width": 2.5, "dash": None if validated else "dot"},
                marker={"size": 4},
                hovertemplate=f"{name} {part}, epoch %{{x}}: %{{y:.4f}}<extra></extra>",
            )
        )
        if best is not None and best in xs:
            fig.add_trace(
                go.Scatter(
                    x=[best],
                    y=[ys[xs.index(best)]],
                    mode="markers",
                    name=f"{name} · best epoch",
                    legendgroup=name,
                    showlegend=False,
                    marker={"symbol": "star", "size": 16, "color": color, "line": {"width": 1, "color": "white"}},
                    hovertemplate=f"{name} best epoch %{{x}}: %{{y:.4f}}<extra></extra>",
                )
            )
    fig.update_xaxes(title="epoch", range=[0.6, last + 0.4], tick0=1, dtick=max(1, math.ceil(last / 10)))
    fig.update_yaxes(title=label)
    return _layout(fig, title or f"{label} (validation), best epoch starred", 360, hovermode="closest")


def class_probabilities(
    probs: Sequence[float], class_names: Sequence[str], title: str = "Class probabilities"
) -> go.Figure:
    """Horizontal bars, one per class, the predicted class in colour and the rest grey."""
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    names = [_text(c) for c in class_names]
    top = int(np.argmax(p)) if len(p) else -1
    fig = go.Figure(
        go.Bar(
            x=p,
            y=names,
            orientation="h",
            text=[f"{v:.1%}" for v in p],
            textposition="outside",
            cliponaxis=False,
            marker_color=[TRAIN_COLOR if i == top else PREVIOUS_COLOR for i in range(len(p))],
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    fig.update_xaxes(range=[0, 1.15], tickformat=".0%", title=None)
    fig.update_yaxes(type="category", autorange="reversed", title=None)
    return _layout(fig, title, min(420, 80 + 26 * len(names)), showlegend=False)


def sweep_parcoords(
    rows: Sequence[dict[str, Any]],
    paths: Sequence[str],
    metric: str,
    ranges: dict[str, tuple[float, float]] | None = None,
) -> go.Figure:
    """A sweep's trials as parallel coordinates: one axis per swept hyperparameter, the score last, each line an
    ended trial coloured by its score. A trial still training is left out: its latest epoch is no score yet, and
    the chart (WebGL) then stays the same between trials' ends instead of being redrawn every second (measured: it
    was most of a browser's CPU while a sweep trained, bench/bench_sweep_ui.py).
    rows: kfcore.runs.sweepresults trial rows; a text value (an optimizer)
    gets an axis of its choices. ranges: the filters beside the chart (path or metric → (low, high)), drawn as
    each axis's brushed range (Streamlit receives no parcoords brushing, so the filters are the way in)."""
    ranges = ranges or {}
    scored = scored_trials(list(rows), metric)
    dimensions = []
    for path in [*paths, metric]:
        values = [r[metric] if path == metric else r["values"].get(path) for r in scored]
        label = _text(path.removeprefix("train.").removeprefix("split."))
        if any(isinstance(v, str) or isinstance(v, bool) for v in values):
            choices = sorted({str(v) for v in values})
            dimensions.append(
                {
                    "label": label,
                    "values": [choices.index(str(v)) for v in values],
                    "tickvals": list(range(len(choices))),
                    "ticktext": [_text(c) for c in choices],
                }
            )
            continue
        dimension: dict[str, Any] = {"label": label, "values": values}
        if values and min(values) == max(values):  # one value (the first trial to end): one tick, in the middle
            dimension.update(range=_around(values[0]), tickvals=[values[0]], ticktext=[f"{values[0]:.4g}"])
        if path in ranges:
            dimension["constraintrange"] = list(ranges[path])
        dimensions.append(dimension)
    scores = [r[metric] for r in scored]
    line: dict[str, Any] = {
        "color": scores,
        "colorscale": "Viridis_r" if metric.endswith("loss") else "Viridis",
        "showscale": True,
        "colorbar": {"title": {"text": _text(metric)}},
    }
    if scores and min(scores) == max(scores):
        line["cmin"], line["cmax"] = _around(scores[0])
    fig = go.Figure(go.Parcoords(dimensions=dimensions, line=line))
    return _layout(
        fig, f"Trials by hyperparameter, coloured by {metric}", 340, margin={"l": 60, "r": 40, "t": 95, "b": 20}
    )


def _around(value: float) -> list[float]:
    """An axis range with a lone value in its middle (Plotly's own for a zero-width range labels it 0.001000001)."""
    pad = abs(value) / 2 or 1.0
    return [value - pad, value + pad]


def seed_bands(
    settings: Sequence[tuple[str, Sequence[Sequence[dict[str, Any]]]]], metric: str, title: str | None = None
) -> go.Figure:
    """Per setting of a repeated sweep, the mean curve over its seeds with the min–max band around it: where two
    bands overlap, the difference between those settings is within the seed-to-seed noise.
    settings: (label, the epoch rows of each seed's trial) per setting."""
    fig = go.Figure()
    for k, (setting, histories) in enumerate(settings):
        name, color = _text(setting), class_color(k)
        by_epoch: dict[int, list[float]] = {}
        for history in histories:
            for row in history:
                value = row.get(metric, row.get(metric.removeprefix("val_")))
                if isinstance(value, (int, float)) and math.isfinite(value):
                    by_epoch.setdefault(int(row["epoch"]), []).append(float(value))
        epochs = sorted(by_epoch)
        if not epochs:
            continue
        low = [min(by_epoch[e]) for e in epochs]
        high = [max(by_epoch[e]) for e in epochs]
        mean = [sum(by_epoch[e]) / len(by_epoch[e]) for e in epochs]
        fig.add_trace(
            go.Scatter(
                x=epochs + epochs[::-1],
                y=high + low[::-1],
                fill="toself",
                fillcolor=color,
                opacity=0.2,
                line={"width": 0},
                name=f"{name} · min–max",
                legendgroup=name,
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=mean,
                mode="lines",
                name=f"{name} · mean of {len(histories)} seeds",
                legendgroup=name,
                line={"color": color, "width": 2.5},
                hovertemplate=f"{name}, epoch %{{x}}: mean %{{y:.4f}}<extra></extra>",
            )
        )
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title=METRIC_LABELS.get(metric.removeprefix("val_"), metric))
    return _layout(fig, title or f"{metric}: mean over seeds, band from min to max", 360, hovermode="closest")


# -- the network ------------------------------------------------------------------------------------
# TensorFlow Playground's diagram for a small dense network (inputs, units and outputs as nodes, each connection as
# wide and as coloured as its latest weight, on 2-D data each unit's output over the plane inside its node) and, for
# any other model, a block diagram of the layer stack with output shapes and parameters.

NEGATIVE, POSITIVE = CLASS_COLORS[0], CLASS_COLORS[1]  # the boundary's colours: a unit reads like the plane
UNIT_SCALE = [[0.0, NEGATIVE], [0.5, "#ffffff"], [1.0, POSITIVE]]
IMPLICIT_COLOR = "#9ca3af"
WIDTH_BINS = 4  # connections are drawn in this many widths per sign: a trace per (sign, width), not per edge
NODE = 0.3  # half a node's side, in column units


def network_diagram(
    report: ShapeReport,
    input_shape: tuple[int, ...],
    picture: dict[str, Any] | None = None,
    feature_names: Sequence[str] = (),
    title: str | None = "Network",
) -> go.Figure | None:
    """The Playground diagram of report's model, drawn with picture's weights and unit outputs where it has them
    (before the first picture: the architecture in grey); None when the model is no small dense network."""
    sizes = small_dense(report, input_shape)
    if sizes is None:
        return None
    picture = picture or {}
    weights = picture.get("weights") or []
    units = picture.get("units") or []
    columns = len(sizes)
    # Columns two apart, each centred on y = 0.
    pos = [[(c * 2.0, (n - 1) / 2 - i) for i in range(n)] for c, n in enumerate(sizes)]
    fig = go.Figure()
    _connections(fig, pos, weights)
    thumbs = _thumbnails(picture, sizes, units)
    names = (
        [_text(f) for f in feature_names][: sizes[0]]
        if len(feature_names) >= sizes[0]
        else [f"x{i + 1}" for i in range(sizes[0])]
    )
    for c, col in enumerate(pos):
        for i, (x, y) in enumerate(col):
            z = thumbs[c][i] if c < len(thumbs) and i < len(thumbs[c]) else None
            if z is not None:
                t = len(z)
                fig.add_trace(
                    go.Heatmap(
                        z=z,
                        x=np.linspace(x - NODE, x + NODE, t),
                        y=np.linspace(y - NODE, y + NODE, t),
                        colorscale=UNIT_SCALE,
                        zmin=-1,
                        zmax=1,
                        showscale=False,
                        hoverinfo="skip",
                    )
                )
        hover = (
            names
            if c == 0
            else [f"{'output' if c == columns - 1 else f'layer {c}'} unit {i + 1}" for i in range(len(col))]
        )
        xs, ys = [p[0] for p in col], [p[1] for p in col]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                showlegend=False,
                text=hover,
                hovertemplate="%{text}<extra></extra>",
                marker={"symbol": "square", "size": 1, "color": "rgba(0,0,0,0)"},
            )
        )
        for x, y in col:
            fig.add_shape(
                type="rect",
                x0=x - NODE,
                x1=x + NODE,
                y0=y - NODE,
                y1=y + NODE,
                line={"color": "#374151", "width": 1},
                fillcolor="rgba(0,0,0,0)" if thumbs[c] else "#e5e7eb",
                layer="above",
            )
    top = (max(sizes) - 1) / 2 + 0.75
    labels = ["inputs", *(f"layer {c}<br>{n} units" for c, n in enumerate(sizes[1:-1], start=1)), "output"]
    for c, label in enumerate(labels):
        fig.add_annotation(x=c * 2.0, y=top, text=label, showarrow=False, font={"size": 11, "color": "#374151"})
    for i, name in enumerate(names):
        fig.add_annotation(
            x=-NODE - 0.05, y=pos[0][i][1], text=name, showarrow=False, xanchor="right", font={"size": 11}
        )
    fig.update_xaxes(visible=False, range=[-1.4, (columns - 1) * 2.0 + 0.6])
    # No scale anchor: a column is as wide as the figure allows, so the labels of four columns fit in 300 px.
    fig.update_yaxes(visible=False, range=[-(max(sizes) - 1) / 2 - 0.6, top + 0.5])
    epoch = picture.get("epoch")
    heading = f"{title} at epoch {epoch}" if title and epoch is not None else title
    return _layout(fig, heading, max(240, 56 + 38 * max(sizes)), showlegend=False, plot_bgcolor="white")


def _connections(fig: go.Figure, pos: list[list[tuple[float, float]]], weights: list[Any]) -> None:
    """Every connection between neighbouring columns, as wide and as coloured as its weight (grey before any)."""
    segments: dict[tuple[int, int], tuple[list[float | None], list[float | None]]] = {}
    mids: tuple[list[float], list[float], list[str]] = ([], [], [])
    scale = max((float(np.abs(np.asarray(w)).max()) for w in weights if np.size(w)), default=0.0) or 1.0
    for c in range(len(pos) - 1):
        w = np.asarray(weights[c]) if c < len(weights) else None
        for i, (x0, y0) in enumerate(pos[c]):
            for j, (x1, y1) in enumerate(pos[c + 1]):
                value = float(w[i, j]) if w is not None and w.shape == (len(pos[c]), len(pos[c + 1])) else None
                key = (
                    (0, 0)
                    if value is None
                    else (1 if value >= 0 else -1, min(WIDTH_BINS - 1, int(abs(value) / scale * WIDTH_BINS)))
                )
                xs, ys = segments.setdefault(key, ([], []))
                xs += [x0 + 0.3, x1 - 0.3, None]
                ys += [y0, y1, None]
                if value is not None:
                    mids[0].append((x0 + x1) / 2)
                    mids[1].append((y0 + y1) / 2)
                    mids[2].append(f"weight {value:.3f}")
    for (sign, width), (xs, ys) in sorted(segments.items()):
        color = IMPLICIT_COLOR if sign == 0 else POSITIVE if sign > 0 else NEGATIVE
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                hoverinfo="skip",
                showlegend=False,
                line={"color": color, "width": 1 if sign == 0 else 0.6 + 1.6 * width},
                opacity=0.8,
            )
        )
    if mids[0]:
        fig.add_trace(
            go.Scatter(
                x=mids[0],
                y=mids[1],
                text=mids[2],
                mode="markers",
                showlegend=False,
                hovertemplate="%{text}<extra></extra>",
                marker={"size": 6, "color": "rgba(0,0,0,0)"},
            )
        )


def _thumbnails(picture: dict[str, Any], sizes: list[int], units: list[Any]) -> list[list[Any]]:
    """Per column, per node, its output over the plane scaled to [-1, 1] (empty columns without a picture): the
    inputs are the plane's own coordinates, a unit's output is scaled by its largest magnitude, a probability
    output is centred at 0.5, as Playground shades them."""
    boundary = picture.get("boundary")
    if not boundary or not units or len(units) != len(sizes) - 1:
        return [[] for _ in sizes]
    t = len(units[0][0])
    xs = np.linspace(-1.0, 1.0, t)
    inputs = [np.tile(xs, (t, 1)).tolist(), np.tile(xs[:, None], (1, t)).tolist()]
    columns: list[list[Any]] = [inputs if sizes[0] == 2 else []]
    for c, layer in enumerate(units):
        out = []
        for values in layer:
            v = np.asarray(values, dtype=np.float64)
            if c == len(units) - 1 and boundary.get("kind") in ("probability", "class"):
                v = 2.0 * v - 1.0  # a probability: 0.5 is white
            else:
                v = v / (float(np.abs(v).max()) or 1.0)
            out.append(np.round(v, 3).tolist())
        columns.append(out)
    return columns


def layer_blocks(report: ShapeReport, title: str | None = "Layer stack") -> go.Figure:
    """The model's layers top to bottom as boxes with their output shape and parameters; the layers the studio adds
    (normalisation, an automatic Flatten, the output's rescaling) in grey."""
    rows = report.rows
    fig = go.Figure()
    n = len(rows)
    for k, row in enumerate(rows):
        y = n - 1 - k
        color = "#f3f4f6" if row.implicit else "#dbeafe"
        fig.add_shape(
            type="rect",
            x0=0,
            x1=10,
            y0=y - 0.38,
            y1=y + 0.38,
            fillcolor=color,
            line={"color": IMPLICIT_COLOR if row.implicit else "#2563eb", "width": 1},
        )
        shape = "×".join("?" if s is None else str(s) for s in row.output_shape)
        fig.add_annotation(
            x=0.3,
            y=y,
            text=f"<b>{_text(row.name)}</b>",
            showarrow=False,
            xanchor="left",
            font={"size": 12, "color": "#6b7280" if row.implicit else "#111827"},
        )
        fig.add_annotation(
            x=9.7,
            y=y,
            text=f"output {shape} · {row.params:,} params",
            showarrow=False,
            xanchor="right",
            font={"size": 12, "color": "#374151"},
        )
        if k:
            fig.add_annotation(
                x=5,
                y=y + 0.38,
                ax=5,
                ay=y + 0.62,
                xref="x",
                yref="y",
                axref="x",
                ayref="y",
                showarrow=True,
                arrowhead=2,
                arrowsize=1,
                arrowwidth=1.2,
                arrowcolor="#6b7280",
                text="",
            )
    fig.add_trace(
        go.Scatter(
            x=[5] * n,
            y=list(range(n)),
            mode="markers",
            hoverinfo="skip",
            showlegend=False,
            marker={"size": 1, "color": "rgba(0,0,0,0)"},
        )
    )
    fig.update_xaxes(visible=False, range=[-0.2, 10.2])
    fig.update_yaxes(visible=False, range=[-0.6, n - 0.4])
    heading = f"{title} · {report.total_params:,} parameters" if title else None
    return _layout(fig, heading, 60 + 44 * n, showlegend=False, plot_bgcolor="white")
