"""CSV files: the header read from a bounded head, the size checked before reading, the table fitted to its recipe
on the training rows."""

from __future__ import annotations

import gzip
import io
import zlib
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kfcore.data import bounded
from kfcore.data.dataset import DataError, Dataset, finish, mb, too_few_rows
from kfcore.data.split import split_dataset
from kfcore.runs.limits import Limits, data_budget_bytes, rows_problem
from kfcore.spec import DataSpec, SplitSpec

if TYPE_CHECKING:
    import pandas as pd


# -- CSV files ------------------------------------------------------------------------------------


def load_csv(spec: DataSpec, limits: Limits, split: SplitSpec | None) -> Dataset:
    import pandas as pd

    if not spec.path:
        raise DataError("a CSV source needs the path of the file to read")
    path = Path(spec.path)
    df = read_csv(path, limits)
    tidy_columns(df)
    columns = list(df.columns)
    target = (spec.target or "").strip()
    if target not in columns:
        shown = ", ".join(repr(c) for c in columns[:30]) + (
            f" … and {len(columns) - 30} more" if len(columns) > 30 else ""
        )
        problem = f"there is no column {target!r}" if target else "no target column is chosen"
        raise DataError(f"{path.name}: {problem}; the columns are: {shown}. Choose the column to predict")

    if len(df) == 0:
        raise DataError(f"{path.name} has a header row but no data rows; add one row per sample under the header")
    notes: list[str] = []
    n_rows = len(df)
    missing_target = df[target].isna()
    if missing_target.all():
        raise DataError(
            f"{path.name}: every value in the target column '{target}' is empty, so there is nothing to learn; "
            "choose the column that holds the values to predict"
        )
    if missing_target.any():
        notes.append(f"dropped {int(missing_target.sum())} rows whose target '{target}' is missing")
        df = df.loc[~missing_target].reset_index(drop=True)
    from kfcore.data import recipe as krecipe

    target_format, target_numbers = None, False
    if spec.task in ("auto", "regression"):
        # A number column with a few typos ('?', '12a') is still a number to predict, not thousands of text classes.
        mostly = krecipe.mostly_numbers(df[target])
        if mostly is not None:
            values, stray, target_format = mostly
            target_numbers = True
            keep = ~np.isnan(values)
            if target_format:
                notes.append(
                    f"read the target '{target}' as numbers written with {krecipe.NUMBER_FORMATS[target_format]}"
                )
            if stray:
                notes.append(
                    f"dropped {len(stray)} rows whose target '{target}' is not a number ({krecipe.examples(stray)})"
                )
            df = df.loc[keep].reset_index(drop=True)
            df[target] = values[keep]
    if len(df) < 2:
        dropped = n_rows - len(df)
        raise DataError(
            too_few_rows(path.name, len(df), dropped=f" ({dropped} rows had no usable '{target}')" if dropped else "")
        )

    y_col = df[target]
    if pd.api.types.is_bool_dtype(y_col):
        y = y_col.to_numpy(dtype=bool)
    elif pd.api.types.is_numeric_dtype(y_col):
        y = y_col.to_numpy()
    else:
        y = y_col.astype(str).to_numpy(dtype=object)
    name = spec.name or path.stem
    # The features come from the recipe, fitted once the split is known (with_recipe): a placeholder until then.
    dataset = finish(spec, name, "", np.zeros((len(y), 0), np.float32), y, f"the target column '{target}'", notes=notes)
    dataset.description = (
        f"CSV file {path.name}: {len(y):,} rows, {len(columns) - 1} columns → '{target}' ({dataset.task})"
    )
    dataset.frame = df.drop(columns=[target])
    dataset.target = {
        "column": target,
        "numbers": target_numbers,
        "format": target_format,
        "task": dataset.task,
        "classes": dataset.class_names,
    }
    return with_recipe(dataset, split)


def with_recipe(ds: Dataset, split: SplitSpec | None) -> Dataset:
    """A table's Dataset with its recipe fitted on the training rows of `split` and x made by it; ds itself when
    that is done already or ds has no table behind it (built-in sets, images, NPZ files).

    split None: the split a new run gets (SplitSpec()), or all rows when the table is too small to split (the
    run itself is then refused with the split's message)."""
    if ds.frame is None:
        return ds
    from kfcore.data import recipe as krecipe

    rows: np.ndarray | None = None
    try:
        rows = split_dataset(ds, split or SplitSpec()).train_index
    except DataError:
        if split is not None:
            raise
    fitted_on = None if rows is None else asdict(split or SplitSpec())
    if ds.recipe is not None and ds.recipe.fitted_on == fitted_on:
        return ds
    recipe, notes = krecipe.fit(ds.frame, rows)
    if not recipe.feature_names:
        why = (
            "all of them were dropped (see the notes)"
            if len(ds.frame.columns)
            else f"the file only has the target column '{ds.target['column']}'"
        )
        raise DataError(
            f"{ds.name}: no feature columns are left to learn from; {why}. Add columns that describe each row"
        )
    recipe.target, recipe.fitted_on = dict(ds.target), fitted_on
    kept = [n for n in ds.notes if n not in ds.recipe_notes]
    return replace(
        ds,
        x=recipe.transform(ds.frame),
        feature_names=recipe.feature_names,
        recipe=recipe,
        notes=kept + notes,
        recipe_notes=notes,
    )


def csv_columns(path: str | Path) -> list[str]:
    """The column names of a CSV file, read the same way the loader reads it (for a target picker).

    Only the file's head is read (at most MAX_HEADER_BYTES once decompressed), whatever the file's size."""
    path = Path(path)
    gzipped, head = _csv_head(path)
    return [str(c).strip() for c in _csv_header(path, gzipped, head)[0]]


MAX_HEADER_BYTES = 1 << 20  # a header row longer than this is not a table's column names
CSV_TEXT_SHARE = 4  # a CSV's text may be a quarter of a dataset's memory share: a cell "0," becomes an 8-byte float

# What a file that is not CSV text starts with (an .xlsx or .npz is a zip archive: checked separately).
_NOT_CSV = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
    b"\x93NUMPY": "a single NumPy array (.npy)",
    b"\xff\xfe": "UTF-16 text (Excel's 'Unicode Text')",
    b"\xfe\xff": "UTF-16 text",
}


def _where_not_utf8(path: Path, gzipped: bool) -> str:
    """' (line 3 has the byte 0xE9 …)' for the first byte that is not UTF-8, or '' when it cannot be found."""
    try:
        found = bounded.first_non_utf8(path, gzipped)  # streamed: the file was size-checked, but never held whole
    except (OSError, EOFError, zlib.error):
        return ""
    if found is None:
        return ""
    line, byte = found
    return f" (line {line} has the byte 0x{byte:02X}, which is not valid UTF-8)"


def _csv_head(path: Path) -> tuple[bool, bytes]:
    """(gzipped, the first MAX_HEADER_BYTES of the text) after refusing what is plainly not CSV text."""
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"  # a .csv.gz upload, whatever its name
        head = bounded.head(path, gzipped, MAX_HEADER_BYTES)
    except FileNotFoundError:
        raise DataError(f"the file {path.name} does not exist; upload it again") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"could not read {path.name} ({e}); the compressed file is damaged") from None
    except OSError as e:
        raise DataError(f"could not open {path.name} ({e.strerror or e})") from None
    if not head:
        raise DataError(f"{path.name} is empty; upload a CSV file with a header row and data rows")
    if head[:4] == b"PK\x03\x04":
        raise DataError(
            f"{path.name} is an Excel workbook or zip archive, not CSV; save it as 'CSV UTF-8' and upload that"
        )
    for magic, what in _NOT_CSV.items():
        if head.startswith(magic):
            raise DataError(f"{path.name} is {what}, not CSV text; export the table as 'CSV UTF-8' and upload that")
    if b"\0" in head[:4096]:  # the decompressed text: an IDX file or an archive gzipped under a .csv.gz name
        raise DataError(f"{path.name} holds binary data, not CSV text; export the table as 'CSV UTF-8'")
    if b"\n" not in head and b"\r" not in head and len(head) == MAX_HEADER_BYTES:
        raise DataError(
            f"the first line of {path.name} is over {mb(MAX_HEADER_BYTES)} long, too long for a header row of "
            "column names; check that the file has one line per row (a CSV header names each column once)"
        )
    return gzipped, head


def _csv_header(path: Path, gzipped: bool, head: bytes) -> tuple[list[str], str]:
    """(the columns, the separator) of the header in head: ',' unless one column's name holds ';' or a tab."""
    import pandas as pd

    complete = head[: max(head.rfind(b"\n"), head.rfind(b"\r")) + 1] or head  # whole lines: no character cut in half
    try:
        for sep in (",", ";", "\t"):
            columns = list(pd.read_csv(io.BytesIO(complete), sep=sep, nrows=0, encoding="utf-8").columns)
            # A semicolon- or tab-separated file (common from European Excel) reads as one wide column.
            if len(columns) != 1 or not any(other in str(columns[0]) for other in (";", "\t")):
                return columns, sep
    except UnicodeDecodeError:
        raise DataError(_not_utf8_message(path, gzipped)) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path.name} is empty; upload a CSV file with a header row and data rows") from None
    except pd.errors.ParserError as e:
        raise DataError(f"{path.name} is not valid CSV: {str(e).strip()}") from None
    return columns, sep


def _not_utf8_message(path: Path, gzipped: bool) -> str:
    return (
        f"{path.name} is not UTF-8 text{_where_not_utf8(path, gzipped)}; it is probably Latin-1 or Windows-1252, "
        "as older Excel saves it. Save it as 'CSV UTF-8' and upload that"
    )


def tidy_columns(df: pd.DataFrame) -> bool:
    """Strip spaces around df's column names in place (" age" is "age"), unless that would merge two columns;
    True when a name changed."""
    stripped = [str(c).strip() for c in df.columns]
    if len(set(stripped)) < len(stripped) or stripped == list(df.columns):
        return False
    df.columns = stripped
    return True


def read_csv(path: Path, limits: Limits | None = None) -> pd.DataFrame:
    """Read a CSV (or gzipped CSV, or ; / tab separated) file as a DataFrame, or raise a DataError that says why not.

    Its text (once decompressed, counted by streaming) and its rows are checked against limits (default: this
    process's) before pandas holds them."""
    import pandas as pd

    limits = limits or Limits.from_env()
    gzipped, head = _csv_head(path)
    _, sep = _csv_header(path, gzipped, head)
    text_limit = data_budget_bytes(limits) // CSV_TEXT_SHARE
    try:
        size = bounded.inflated_size(path, gzipped, text_limit)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"could not read {path.name} ({e})") from None
    if size > text_limit:  # counting a gzip stops at the limit: its size is only known to be over it
        found = f"more than {mb(text_limit)} of text once decompressed" if gzipped else f"{mb(size)} of text"
        raise DataError(
            f"{path.name} holds {found}; this server reads at most {mb(text_limit)} from one CSV (a sixteenth of "
            f"its {limits.memory_budget_mb:,} MB memory budget, KF_MEMORY_BUDGET_MB). Upload a sample of the rows"
        )
    nrows = limits.max_rows + 1 if limits.max_rows else None  # one past the limit is enough to refuse
    try:
        df = pd.read_csv(path, sep=sep, encoding="utf-8", compression="gzip" if gzipped else None, nrows=nrows)
    except UnicodeDecodeError:
        raise DataError(_not_utf8_message(path, gzipped)) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path.name} is empty; upload a CSV file with a header row and data rows") from None
    except pd.errors.ParserError as e:
        raise DataError(f"{path.name} is not valid CSV: {str(e).strip()}") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"could not read {path.name} ({e})") from None
    if nrows and len(df) >= nrows:
        raise DataError(f"{path.name}: {rows_problem(len(df), limits, counted_all=False)}")
    return df
