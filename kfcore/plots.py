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

TRAIN_COLOR = "#2563eb"
VALIDATION_COLOR = "#ea580c"
PREVIOUS_COLOR = "#9ca3af"
BEST_COLOR = "#16a34a"
SPLIT_COLORS = {"train": TRAIN_COLOR, "validation": VALIDATION_COLOR, "test": "#7c3aed"}
# Colour-blind-safe categorical palette (Okabe–Ito, then Tableau for more than eight classes).
CLASS_COLORS = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
    "#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1", "#FF9DA7",
)
METRIC_LABELS = {"loss": "Loss", "accuracy": "Accuracy", "mae": "Mean absolute error"}
MAX_SCATTER_POINTS = 3000


def class_color(i: int) -> str:
    return CLASS_COLORS[i % len(CLASS_COLORS)]


def _layout(fig: go.Figure, title: str | None, height: int, **kwargs: Any) -> go.Figure:
    layout: dict[str, Any] = {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}} if title else None,
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        "template": "plotly_white",
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
    }
    fig.update_layout(**{**layout, **kwargs})
    return fig


def class_balance(counts: dict[str, int], title: str = "Samples per class") -> go.Figure:
    """Bar per class with its sample count, so an imbalanced set is obvious at a glance."""
    names = list(counts)
    values = [int(counts[n]) for n in names]
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
    fig.update_xaxes(title=name)
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
    fx, fy = list(feature_names)[:2] if len(feature_names) >= 2 else ("x1", "x2")
    fig = go.Figure()
    if class_names:
        for k, name in enumerate(class_names):
            mask = y == k
            fig.add_trace(
                go.Scattergl(
                    x=x[mask, 0],
                    y=x[mask, 1],
                    mode="markers",
                    name=str(name),
                    marker={"color": class_color(k), "size": 6, "line": {"width": 0.5, "color": "white"}},
                )
            )
    else:
        fig.add_trace(
            go.Scattergl(
                x=x[:, 0], y=x[:, 1], mode="markers", name="target",
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
    labels = [str(class_names[r]) for r in range(len(rows))] if class_names else [""] * len(rows)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(
        autorange="reversed", scaleanchor="x", constrain="domain", tickvals=centres, ticktext=labels,
        showgrid=False, zeroline=False,
    )
    return _layout(fig, title, min(560, 70 + 36 * len(rows)), plot_bgcolor="white")


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float | None]]:
    xs, ys = [], []
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
) -> go.Figure:
    """One metric per epoch: train solid, validation in a second colour, the previous run dashed grey.

    history: the store's epoch rows ({"epoch": 1, "loss": ..., "val_loss": ...}). epochs fixes the x axis
    to the planned length, so the chart does not rescale as the run grows; best_epoch gets a star on the
    validation curve (the training curve without validation).
    """
    label = METRIC_LABELS.get(metric, metric)
    fig = go.Figure()
    if previous:
        for key, part, dash in ((metric, "train", "dash"), (f"val_{metric}", "validation", "dot")):
            xs, ys = _series(previous, key)
            if xs:
                fig.add_trace(
                    go.Scatter(
                        x=xs, y=ys, mode="lines", name=f"previous · {part}", legendgroup="previous",
                        line={"color": PREVIOUS_COLOR, "dash": dash, "width": 2},
                        hovertemplate=f"previous {part}, epoch %{{x}}: %{{y:.4f}}<extra></extra>",
                    )
                )
    for key, part, color in ((metric, "train", TRAIN_COLOR), (f"val_{metric}", "validation", VALIDATION_COLOR)):
        xs, ys = _series(history, key)
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs, y=ys, mode="lines+markers", name=part, line={"color": color, "width": 2.5},
                    marker={"size": 5}, hovertemplate=f"{part}, epoch %{{x}}: %{{y:.4f}}<extra></extra>",
                )
            )
    if best_epoch is not None:
        key = f"val_{metric}" if any(f"val_{metric}" in r for r in history) else metric
        xs, ys = _series([r for r in history if int(r["epoch"]) == best_epoch], key)
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs, y=ys, mode="markers", name="best epoch",
                    marker={"symbol": "star", "size": 15, "color": BEST_COLOR, "line": {"width": 1, "color": "white"}},
                    hovertemplate="best epoch %{x}: %{y:.4f}<extra></extra>",
                )
            )
    last = max([int(r["epoch"]) for r in list(history) + list(previous or [])] + [epochs or 1, 1])
    fig.update_xaxes(title="epoch", range=[0.8, last + 0.2], dtick=max(1, math.ceil(last / 10)))
    fig.update_yaxes(title=label)
    if not fig.data:  # before the first epoch: an empty frame that says what is coming, not a bare grid
        fig.update_yaxes(showticklabels=False, showgrid=False, range=[0, 1])
        fig.add_annotation(text="waiting for the first epoch…", x=0.5, y=0.5, xref="paper", yref="paper",
                           showarrow=False, font={"color": PREVIOUS_COLOR, "size": 13})
    return _layout(fig, title or label, 340, hovermode="x unified",
                   legend={"orientation": "h", "yanchor": "top", "y": -0.22, "xanchor": "left", "x": 0})
