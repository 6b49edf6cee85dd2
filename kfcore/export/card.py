"""A run's model card: one self-contained HTML file that reads offline (Plotly's JS is inlined, nothing is fetched).

It says what the model is and how it was made: the data and its recipe, the layers, the hyperparameters,
the hardware, the curves, the confusion matrix and per-class metrics, and how to load each export. Every
piece of user text (run, column and class names) is HTML-escaped; the figures are kfcore.present.plots' own.
Pure: no TensorFlow, no Streamlit.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from kfcore.present import plots, runview
from kfcore.runs.store import RunRecord

CARD_FILE = "card.html"

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #1f2937; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #e5e7eb; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #e5e7eb; padding: 4px 8px; }
th { background: #f9fafb; text-align: left; } code, pre { background: #f3f4f6; border-radius: 4px; }
pre { padding: 0.6em; overflow-x: auto; } .muted { color: #6b7280; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pairs(values: dict[str, Any]) -> str:
    return _table(
        ("setting", "value"), [(k, json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in values.items()]
    )


def _figure(fig: Any) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else _e(value)


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def model_card(
    record: RunRecord, history: Sequence[dict[str, Any]], recipe: dict[str, Any] | None, loading: dict[str, str]
) -> str:
    """The card's HTML. recipe: the run's recipe.json as a dict (None without one); loading: format -> one line
    on how to load that export (kfcore.export.formats.FORMATS)."""
    from plotly.offline import get_plotlyjs

    spec, info, evaluation = record.spec, record.info, record.evaluation or {}
    task = evaluation.get("task") or info.get("task", "")
    parts = [
        f"<h1>{_e(record.name)}</h1>",
        f"<p class='muted'>KF Studio run {_e(record.id)} · {_e(record.status)} · "
        f"{_e(runview.format_duration(record.duration))} of training</p>",
    ]

    parts.append("<h2>Test results</h2>")
    parts.append(
        _table(("metric", "value"), [(k, _number(v)) for k, v in record.test.items()])
        if record.test
        else "<p>No test results recorded.</p>"
    )
    if task == "regression":
        parts.append(
            _table(
                ("metric", "value"),
                [(k, _number(evaluation[k])) for k in ("mae", "rmse", "r2", "n_test") if k in evaluation],
            )
        )

    parts.append("<h2>Data</h2>")
    parts.append(_pairs({**spec.get("data", {}), **{f"split {k}": v for k, v in spec.get("split", {}).items()}}))
    sizes: dict[str, Any] = {k: info[k] for k in ("n_train", "n_val", "n_test") if k in info}
    if sizes:
        parts.append(
            _pairs(
                {
                    "task": task,
                    **sizes,
                    "input shape": info.get("input_shape"),
                    "classes": ", ".join(map(str, info.get("class_names") or [])) or "—",
                }
            )
        )
    if recipe:
        parts.append("<h3>Recipe (fitted on the training rows; recipe.json beside the model applies it)</h3>")
        parts.append(
            _table(
                ("column", "kind", "preparation"),
                [
                    (
                        c.get("name"),
                        c.get("kind"),
                        json.dumps({k: v for k, v in c.items() if k not in ("name", "kind")}),
                    )
                    for c in recipe.get("columns", [])
                ],
            )
        )
        parts.append(_pairs({f"target {k}": v for k, v in recipe.get("target", {}).items()}))

    parts.append("<h2>Layers</h2>")
    layers = spec.get("layers", [])
    parts.append(
        _table(
            ("#", "layer", "settings"),
            [
                (i + 1, layer.get("type"), json.dumps({k: v for k, v in layer.items() if k != "type"}))
                for i, layer in enumerate(layers)
            ],
        )
    )
    params, trainable = _count(info.get("params", 0)), _count(info.get("trainable_params", 0))
    parts.append(
        f"<p>{params} parameters ({trainable} trainable); the output layer has "
        f"{_e(info.get('output_units', '?'))} units, loss {_e(info.get('loss', '?'))}.</p>"
    )

    parts.append("<h2>Hyperparameters</h2>")
    parts.append(_pairs(spec.get("train", {})))
    parts.append("<h2>Hardware</h2>")
    parts.append(_pairs(record.hardware) if record.hardware else "<p>Not recorded.</p>")

    parts.append("<h2>Curves</h2>")
    if history:
        for metric in ("loss", runview.metric_for(task)):
            parts.append(_figure(plots.training_curve(history, metric, best_epoch=evaluation.get("best_epoch"))))
    else:
        parts.append("<p>No epochs recorded.</p>")

    if "confusion_matrix" in evaluation:
        names = [str(n) for n in evaluation.get("class_names", [])]
        parts.append("<h2>Confusion matrix (test split)</h2>")
        parts.append(_figure(plots.confusion_matrix(evaluation["confusion_matrix"], names)))
        per_class = evaluation.get("per_class", [])
        parts.append("<h2>Per-class metrics (test split)</h2>")
        parts.append(
            _table(
                ("class", "precision", "recall", "F1", "support"),
                [
                    (c["class"], _number(c["precision"]), _number(c["recall"]), _number(c["f1"]), c["support"])
                    for c in per_class
                ],
            )
        )
        if per_class:
            parts.append(_figure(plots.per_class_scores(per_class)))

    parts.append("<h2>How to load each export</h2>")
    parts.append(
        "<p>Each comes from <code>python -m kfcore export RUN_ID --format FORMAT --out DIR</code> or the "
        "Evaluate and Runs pages.</p>"
    )
    parts.append(_table(("format", "how to load it"), list(loading.items())))

    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Model card: {_e(record.name)}</title><style>{_STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>{''.join(parts)}</body></html>"
    )
