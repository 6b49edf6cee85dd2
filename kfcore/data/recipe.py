"""The data recipe of a table: what each column is and how it becomes model input, fitted on the training rows only.

A Recipe is plain data (to_dict / from_dict, saved as recipe.json beside a run's model.keras): per column its kind
(number, category, boolean, date, dropped) and its preparation (the training median that fills a gap, the training
categories that are one-hot encoded, the date parts), plus the target's handling. The loader fits it (kfcore.data),
the trainer saves it, `kfcore predict` applies it to raw rows, the Data page lists it, and the exported script runs
the very functions below (`numbers`, `prepare`: copied verbatim, so the script and kfcore share one rule).

At predict time a category never seen in training is all zeros and a missing value takes the training median (a
number, a date part) or the '(missing)' category when training had one, else all zeros: never an error.
Pure numpy and pandas, so the web process can apply a recipe too (kfcore.data imports this module lazily).
"""

from __future__ import annotations

import inspect
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RECIPE_FILE = "recipe.json"  # saved beside a run's model.keras
KINDS = ("number", "category", "boolean", "date", "dropped")
MAX_CATEGORIES = 100  # text columns with more distinct values (names, IDs, free text) are dropped, not one-hot encoded
MIN_NUMERIC_SHARE = (
    0.9  # a text column whose filled cells are at least this share numbers is a number column with typos
)
# A text column with (nearly) one value per row names the rows (an ID, a name): one-hot encoding it gives every
# training row its own feature, which predicts nothing about new rows and made test losses explode.
ID_LIKE_SHARE = 0.9
ID_LIKE_MIN_ROWS = 8
MISSING_CATEGORY = "(missing)"
DATE_PARTS = ("year", "dayofyear")  # pandas' .dt names: a date as two numbers a model can weigh
_ISO_DATE = r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
# Numbers as spreadsheets write them: "12,345.6" (comma groups thousands) or "12.345,6" / "0,123" (decimal comma).
_THOUSANDS = r"[+-]?(?:[1-9]\d{0,2}(?:,\d{3})+|\d+)(?:\.\d+)?"
_DECIMAL_COMMA = r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?"
NUMBER_FORMATS = {
    "thousands": "commas as thousands separators ('12,345.6' is 12345.6)",
    "decimal_comma": "a decimal comma ('0,123' is 0.123; dots group thousands)",
}


class RecipeError(ValueError):
    """A recipe file that cannot be read, or rows that do not fit it, with a message for the user."""


# -- applying a recipe: these two functions are copied verbatim into the exported script ---------------------------


def numbers(cells, fmt):
    """Cells as float64 numbers: NaN where a cell is empty, not a number or infinite; `fmt` says how commas are used
    ("thousands": '12,345.6', "decimal_comma": '12.345,6', None: no commas)."""
    if pd.api.types.is_numeric_dtype(cells) and not pd.api.types.is_bool_dtype(cells):
        values = cells.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    else:
        text = cells.astype(object).where(cells.notna(), "").astype(str).str.strip()
        if fmt == "thousands":
            text = text.str.replace(",", "", regex=False)
        elif fmt == "decimal_comma":
            text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    values[~np.isfinite(values)] = np.nan
    return values


def prepare(df, columns):
    """The model's input (float32, one row per row of df) from raw rows, column by column as the recipe says."""
    blocks = []
    for column in columns:
        if column["kind"] == "dropped":
            continue
        if column["name"] in df.columns:
            cells = df[column["name"]]
        else:  # a column the rows lack is missing in every row
            cells = pd.Series([None] * len(df), index=df.index, dtype=object)
        if column["kind"] == "number":
            values = numbers(cells, column["format"])
            blocks.append(np.where(np.isnan(values), column["fill"], values)[:, None])
        elif column["kind"] == "date":
            text = cells.astype(object).where(cells.notna(), "").astype(str).str.strip()
            when = pd.to_datetime(text, format="ISO8601", errors="coerce")
            for part, fill in zip(column["parts"], column["fill"], strict=True):
                values = getattr(when.dt, part).to_numpy(dtype=np.float64, na_value=np.nan)
                blocks.append(np.where(np.isnan(values), fill, values)[:, None])
        else:  # category or boolean: a 0/1 column per training category; an unseen one is all zeros
            text = cells.astype(object).where(cells.notna(), column["missing"]).astype(str).to_numpy()
            blocks.append(np.stack([text == c for c in column["categories"]], axis=1))
    return np.concatenate([b.astype("float32") for b in blocks], axis=1)


# -- the recipe as data ---------------------------------------------------------------------------------------------


@dataclass
class Recipe:
    """How a table's columns become model input (`columns`, file order) and what its target is (`target`)."""

    columns: list[dict[str, Any]]
    target: dict[str, Any] = field(default_factory=dict)  # column, format (text read as numbers), task, classes, scale
    fitted_on: dict[str, Any] | None = None  # the split whose training rows it was fitted on; None: all rows

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for c in self.columns:
            if c["kind"] == "number":
                names.append(c["name"])
            elif c["kind"] == "date":
                names.extend(f"{c['name']}.{part}" for part in c["parts"])
            elif c["kind"] != "dropped":
                names.extend(f"{c['name']}={v}" for v in c["categories"])
        return names

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """The float32 model input of raw rows (extra columns, the target among them, are ignored)."""
        return prepare(df, self.columns)

    def describe(self) -> list[dict[str, str]]:
        """One row per column for a table: its name, kind and preparation, in words."""
        rows = [{"column": c["name"], "kind": c["kind"], "preparation": _preparation(c)} for c in self.columns]
        target = self.target
        if target:
            if target.get("task") == "regression":
                how = "predicted as a number" + (" (standardised inside the model)" if target.get("scale") else "")
            else:
                how = f"{len(target.get('classes', []))} classes: " + ", ".join(map(str, target.get("classes", [])[:8]))
            rows.append({"column": target["column"], "kind": "target", "preparation": how})
        return rows

    @classmethod
    def of_numbers(cls, names: list[str], x_train: np.ndarray, target: dict[str, Any]) -> Recipe:
        """The recipe of an all-numeric table given as arrays (a built-in set, an NPZ): each column a number, a gap
        filled with its training median; so `kfcore predict` takes its rows as a CSV with these column names."""
        fills = np.median(x_train, axis=0)
        columns = [
            {"name": n, "kind": "number", "format": None, "fill": float(f)} for n, f in zip(names, fills, strict=True)
        ]
        return cls(columns=columns, target=target)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "target": self.target, "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recipe:
        try:
            columns = [dict(c) for c in d["columns"]]
            if any(c["kind"] not in KINDS for c in columns):
                raise ValueError("unknown column kind")
            return cls(columns=columns, target=dict(d.get("target") or {}), fitted_on=d.get("fitted_on"))
        except (KeyError, TypeError, ValueError) as e:
            raise RecipeError(f"this recipe is damaged ({e}); train the run again") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise RecipeError(f"there is no recipe at {Path(path).name}; this run did not save one") from None
        except (OSError, ValueError) as e:
            raise RecipeError(f"could not read the recipe {Path(path).name} ({e})") from None


def _preparation(c: dict[str, Any]) -> str:
    if c["kind"] == "number":
        fmt = f"read with {NUMBER_FORMATS[c['format']]}; " if c.get("format") else ""
        return f"{fmt}gaps filled with the training median {round(c['fill'], 6)}; standardised in the model"
    if c["kind"] == "date":
        return f"as {' and '.join(c['parts'])}; gaps filled with the training medians; standardised in the model"
    if c["kind"] == "dropped":
        return f"dropped: {c['why']}"
    shown = ", ".join(c["categories"][:8]) + (f" … ({len(c['categories'])})" if len(c["categories"]) > 8 else "")
    return f"one-hot over the training values {shown}; an unseen value is all zeros"


# -- fitting ---------------------------------------------------------------------------------------------------------


def fit(df: pd.DataFrame, rows: np.ndarray | None = None) -> tuple[Recipe, list[str]]:
    """The recipe of df's columns fitted on `rows` (positions; None: all rows), and notes for the user on what it does.

    Kinds, medians and categories come from the training rows alone; the notes count gaps over the whole table.
    """
    train = df if rows is None else df.iloc[rows]
    columns: list[dict[str, Any]] = []
    notes: list[str] = []
    encoded: list[str] = []
    for name in df.columns:
        s, t = df[name], train[name]
        column: dict[str, Any] = {"name": name}
        mostly = None  # a text column's numbers, when it holds mostly numbers
        if pd.api.types.is_bool_dtype(t) or _booleans(t):
            column.update(kind="boolean", **_categories(t))
        elif pd.api.types.is_numeric_dtype(t) or (mostly := mostly_numbers(t)) is not None:
            fmt = None
            if mostly is not None:
                _, _, fmt = mostly
                stray = _not_numbers(s, fmt)
                if fmt:
                    notes.append(f"read '{name}' as numbers written with {NUMBER_FORMATS[fmt]}")
                if stray:
                    notes.append(
                        f"'{name}' holds numbers, but {len(stray)} cells are not numbers ({examples(stray)}); "
                        "treated them as missing rather than turning the column into categories"
                    )
            fill = numbers(t, fmt)
            if np.isnan(fill).all():
                column.update(kind="dropped", why="it has no values")
            else:
                column.update(kind="number", format=fmt, fill=float(np.nanmedian(fill)))
                n_missing = int(np.isnan(numbers(s, fmt)).sum())
                if n_missing:
                    notes.append(
                        f"filled {n_missing} missing values in '{name}' with the median {round(column['fill'], 6)}"
                    )
        elif _dates(t):
            when = pd.to_datetime(t.astype(str).str.strip(), format="ISO8601", errors="coerce")
            fills = [
                float(np.nanmedian(getattr(when.dt, p).to_numpy(dtype=np.float64, na_value=np.nan))) for p in DATE_PARTS
            ]
            column.update(kind="date", parts=list(DATE_PARTS), fill=fills)
            notes.append(f"read '{name}' as dates (like {t.dropna().iloc[0]!s}): year and day of year")
        else:
            n_filled, n_distinct = int(t.notna().sum()), int(t.nunique())
            cats = _categories(t)
            if n_filled >= ID_LIKE_MIN_ROWS and n_distinct >= ID_LIKE_SHARE * n_filled:
                column.update(
                    kind="dropped",
                    why=f"{n_distinct} different text values in {n_filled} rows, one per "
                    "row (an ID or a name?), which says nothing about new rows",
                )
            elif len(cats["categories"]) > MAX_CATEGORIES:
                column.update(
                    kind="dropped",
                    why=f"{len(cats['categories'])} different text values (an ID, a name or "
                    "free text?) are too many to one-hot encode",
                )
            else:
                column.update(kind="category", **cats)
        if column["kind"] == "dropped":
            notes.append(f"dropped column '{name}': {column['why']}")
        elif column["kind"] in ("category", "boolean"):
            n_missing = int(s.isna().sum())
            if n_missing and MISSING_CATEGORY in column["categories"]:
                notes.append(f"{n_missing} missing values in '{name}' became their own category '{MISSING_CATEGORY}'")
            if column["kind"] == "category":
                encoded.append(f"'{name}' ({len(column['categories'])} values)")
        columns.append(column)
    if encoded:
        notes.append(f"one-hot encoded the text columns {', '.join(encoded)}")
    return Recipe(columns=columns), notes


def _categories(t: pd.Series) -> dict[str, Any]:
    text = t.astype(object).where(t.notna(), MISSING_CATEGORY).astype(str)
    return {"categories": sorted(set(text)), "missing": MISSING_CATEGORY}


def _booleans(t: pd.Series) -> bool:
    """A column pandas left as text only because of gaps: True/False cells and empty ones."""
    filled = t.dropna()
    return t.dtype == object and len(filled) > 0 and all(isinstance(v, bool) for v in filled)


def _dates(t: pd.Series) -> bool:
    """Text whose filled cells are (nearly) all ISO dates, '2024-03-01' or '2024-03-01 12:30'."""
    filled = t.dropna().astype(str).str.strip()
    if len(filled) == 0:
        return False
    return bool(filled.iloc[:5000].str.fullmatch(_ISO_DATE).mean() >= MIN_NUMERIC_SHARE)


def _not_numbers(s: pd.Series, fmt: str | None) -> list[str]:
    """The filled cells of a text column of numbers that are not numbers ('?', '12a')."""
    parsed = numbers(s, fmt)
    return s[np.isnan(parsed) & s.notna().to_numpy()].astype(str).str.strip().tolist()


def mostly_numbers(s: pd.Series) -> tuple[np.ndarray, list[str], str | None] | None:
    """A text column whose filled cells are mostly numbers: (float64 values with NaN where a cell was empty or
    not a number, the cells that were not numbers, the NUMBER_FORMATS key when they are written with commas);
    None for a numeric, boolean or really textual column."""
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return None
    filled = s.notna().to_numpy()
    if not filled.any():
        return None
    text = s[filled].astype(str).str.strip()
    fmt = number_format(text)
    plain = normalise_numbers(text, fmt)
    head = pd.to_numeric(plain.iloc[:1000], errors="coerce")  # a cheap look first: most text columns are just text
    if head.notna().mean() < MIN_NUMERIC_SHARE / 2:
        return None
    parsed = pd.to_numeric(plain, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = ~np.isnan(parsed)
    if ok.mean() < MIN_NUMERIC_SHARE:
        return None
    values = np.full(len(s), np.nan)
    values[filled] = parsed
    return values, text[~ok].tolist(), fmt


def number_format(text: pd.Series) -> str | None:
    """How numbers in these (stripped, filled) text cells use commas: "thousands" ("12,345.6"), "decimal_comma"
    ("0,123", "12.345,6"), or None (no commas, or not numbers). Cells that fit both ("1,234") are read as
    thousands: a decimal comma rarely has exactly three digits after it in every cell."""
    sample = text.iloc[:5000]
    if not sample.str.contains(",", regex=False).any():
        return None
    thousands = sample.str.fullmatch(_THOUSANDS).mean()
    decimal = sample.str.fullmatch(_DECIMAL_COMMA).mean()
    if max(thousands, decimal) < MIN_NUMERIC_SHARE:
        return None
    return "thousands" if thousands >= decimal else "decimal_comma"


def normalise_numbers(text: pd.Series, fmt: str | None) -> pd.Series:
    """Text cells in `fmt` (number_format) rewritten as plain numbers ("12,345.6" -> "12345.6", "0,5" -> "0.5")."""
    if fmt == "thousands":
        return text.str.replace(",", "", regex=False)
    if fmt == "decimal_comma":
        return text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return text


def examples(cells: list[str], k: int = 3) -> str:
    distinct = list(dict.fromkeys(cells))
    shown = ", ".join(repr(c) for c in distinct[:k])
    return f"e.g. {shown}" + (f" and {len(distinct) - k} more" if len(distinct) > k else "")


def source_of(*functions: str) -> str:
    """The source of these functions of this module (numbers, prepare), for the exported script to run verbatim."""
    module = sys.modules[__name__]
    return "\n\n\n".join(inspect.getsource(getattr(module, f)).rstrip() for f in functions)
