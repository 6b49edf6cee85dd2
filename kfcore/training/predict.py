"""Predictions for raw table rows from what a run saved: its model.keras and the recipe.json beside it.

`kfcore predict` and the Evaluate page's typed rows use it: the rows are read as the loader reads a table
(kfcore.data.read_csv, the same column-name rule), the recipe turns them into the model's input, and the
outputs come back as a `predicted` column (and `p_<class>` columns for classification). TensorFlow is only
imported by predict_frame, when the model is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kfcore.data.recipe import RECIPE_FILE, Recipe, RecipeError
from kfcore.training.evaluate import probabilities_to_classes

if TYPE_CHECKING:
    import pandas as pd


def recipe_of(run_dir: str | Path) -> Recipe:
    """The recipe a run saved, or RecipeError saying why there is none (a run on images or a built-in set)."""
    path = Path(run_dir) / RECIPE_FILE
    if not path.exists():
        raise RecipeError(
            "this run saved no data recipe: only runs trained on a table predict from raw rows, not "
            "runs on images (train it again if it was trained before recipes were saved)"
        )
    return Recipe.load(path)


def check_columns(recipe: Recipe, columns: list[str]) -> list[str]:
    """The recipe's used columns the rows lack (they count as missing in every row); RecipeError when all are."""
    used = [c["name"] for c in recipe.columns if c["kind"] != "dropped"]
    lacking = [c for c in used if c not in columns]
    if len(lacking) == len(used):
        shown = ", ".join(repr(c) for c in used[:12])
        raise RecipeError(
            f"the rows have none of the columns the run learned from ({shown}); give a CSV with "
            "those columns in its header"
        )
    return lacking


def outputs_frame(recipe: Recipe, outputs: np.ndarray) -> pd.DataFrame:
    """The model's outputs as columns: p_<class> per class and `predicted` (a class name or a value)."""
    import pandas as pd

    classes = recipe.target.get("classes") or []
    if recipe.target.get("task") == "regression" or not classes:
        return pd.DataFrame({"predicted": np.asarray(outputs, dtype=np.float64).reshape(-1)})
    probs, predicted = probabilities_to_classes(np.asarray(outputs))
    table = pd.DataFrame({f"p_{c}": probs[:, i] for i, c in enumerate(classes)})
    table["predicted"] = [classes[int(k)] for k in predicted]
    return table


def predict_frame(model_path: str | Path, recipe: Recipe, rows: pd.DataFrame) -> pd.DataFrame:
    """rows (raw; the target column, if there, is ignored) with the outputs_frame columns added."""
    import pandas as pd

    x = recipe.transform(rows)
    model = load_model(model_path)
    outputs = model.predict(x, batch_size=1024, verbose=0) if len(x) else np.zeros((0, 1), np.float32)
    result = outputs_frame(recipe, outputs)
    result.index = rows.index
    return pd.concat([rows.drop(columns=[c for c in result.columns if c in rows.columns]), result], axis=1)


def load_model(model_path: str | Path) -> Any:
    from kfcore.training.hardware import quiet_native_stderr

    with quiet_native_stderr():  # TensorFlow's start-up chatter is not the user's business
        import keras

    return keras.saving.load_model(str(model_path), safe_mode=True, compile=False)
