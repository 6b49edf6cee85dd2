"""The data recipe: column kinds, preparation fitted on the training rows only, raw rows at predict time, and a
saved-then-loaded recipe that gives bit-identical outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kfcore.data import load_dataset, split_dataset, with_recipe
from kfcore.data import recipe as krecipe
from kfcore.data.recipe import Recipe, RecipeError
from kfcore.spec import DataSpec, SplitSpec


def _table(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    age = rng.integers(18, 80, n).astype(float)
    age[n * 3 // 4 :] += 40  # the last quarter is older: its median is not the training rows'
    age[::9] = np.nan
    shop = rng.choice(["north", "south", "east"], n).astype(object)
    shop[::11] = None
    return pd.DataFrame(
        {
            "age": age,
            "price": [f"{1 + i % 7},{i % 10}" for i in range(n)],  # decimal commas: "3,5" is 3.5
            "shop": shop,
            "member": [bool(i % 3) for i in range(n)],
            "joined": [f"20{10 + i % 12}-{1 + i % 12:02d}-{1 + i % 28:02d}" if i % 13 else None for i in range(n)],
            "customer": [f"c{i:05d}" for i in range(n)],  # one per row: an ID
            "notes": [f"note {i % 130}" for i in range(n)],  # 130 values: free text, too many to encode
            "empty": [np.nan] * n,
        }
    )


def test_each_column_gets_its_kind_and_the_fill_values_come_from_the_training_rows_only():
    df = _table()
    rows = np.arange(160)  # the first 160 rows train
    recipe, notes = krecipe.fit(df, rows)
    kinds = {c["name"]: c["kind"] for c in recipe.columns}
    assert kinds == {
        "age": "number",
        "price": "number",
        "shop": "category",
        "member": "boolean",
        "joined": "date",
        "customer": "dropped",
        "notes": "dropped",
        "empty": "dropped",
    }
    by_name = {c["name"]: c for c in recipe.columns}
    assert by_name["age"]["fill"] == np.nanmedian(df["age"].to_numpy()[rows])
    assert by_name["age"]["fill"] != np.nanmedian(df["age"].to_numpy())  # not the median of all rows
    assert by_name["price"]["format"] == "decimal_comma"
    assert by_name["shop"]["categories"] == ["(missing)", "east", "north", "south"]
    assert by_name["joined"]["parts"] == ["year", "dayofyear"]
    assert any("read 'joined' as dates" in n for n in notes)
    assert "dropped column 'customer'" in " ".join(notes) and "dropped column 'notes'" in " ".join(notes)
    x = recipe.transform(df)
    assert x.dtype == np.float32 and x.shape == (200, len(recipe.feature_names)) and np.isfinite(x).all()
    assert recipe.feature_names[:2] == ["age", "price"] and "joined.year" in recipe.feature_names
    assert x[4, 1] == pytest.approx(5.4)  # "5,4"
    joined = recipe.feature_names.index("joined.year")
    assert x[1, joined : joined + 2].tolist() == [2011.0, 33.0]  # 2011-02-02: day 33 of the year


def test_a_category_only_outside_the_training_rows_is_not_a_feature_and_encodes_as_all_zeros():
    df = pd.DataFrame({"colour": ["red", "blue"] * 10 + ["green"], "n": range(21)})
    recipe, _ = krecipe.fit(df, np.arange(20))
    assert recipe.feature_names == ["colour=blue", "colour=red", "n"]
    assert recipe.transform(df.iloc[[20]]).tolist() == [[0.0, 0.0, 20.0]]


def test_raw_rows_at_predict_time_with_unseen_values_gaps_and_a_missing_column_are_handled():
    recipe, _ = krecipe.fit(_table(), np.arange(150))
    new = pd.DataFrame(
        {
            "age": [None, 30],
            "price": ["?", "2,5"],
            "shop": ["west", None],
            "member": [None, True],
            "joined": ["not a date", "2020-12-31"],
            "target": ["ignored", "too"],
        }
    )  # no 'customer' etc.
    x = recipe.transform(new)
    names = recipe.feature_names
    assert x.shape == (2, len(names)) and np.isfinite(x).all()
    by_name = {c["name"]: c for c in recipe.columns}
    assert x[0, names.index("age")] == by_name["age"]["fill"] and x[0, names.index("price")] == np.float32(
        by_name["price"]["fill"]
    )
    shop = [i for i, n in enumerate(names) if n.startswith("shop=")]
    assert x[0, shop].tolist() == [0, 0, 0, 0]  # 'west' was never seen in training
    assert x[1, names.index("shop=(missing)")] == 1  # a gap is the '(missing)' category training had
    assert x[1, names.index("joined.dayofyear")] == 366  # 2020 is a leap year


def test_a_recipe_saved_then_loaded_gives_bit_identical_outputs(tmp_path):
    df = _table()
    recipe, _ = krecipe.fit(df, np.arange(0, 200, 3))
    recipe.target = {"column": "y", "task": "regression", "scale": [1.5, 0.25]}
    recipe.save(tmp_path / "recipe.json")
    again = Recipe.load(tmp_path / "recipe.json")
    assert again == recipe
    assert recipe.transform(df).tobytes() == again.transform(df).tobytes()
    via_json = Recipe.from_dict(json.loads(json.dumps(recipe.to_dict())))
    assert via_json.transform(df).tobytes() == recipe.transform(df).tobytes()


def test_a_damaged_or_absent_recipe_file_says_so(tmp_path):
    with pytest.raises(RecipeError, match="there is no recipe"):
        Recipe.load(tmp_path / "recipe.json")
    (tmp_path / "recipe.json").write_text('{"columns": [{"name": "a", "kind": "wat"}]}')
    with pytest.raises(RecipeError, match="this recipe is damaged"):
        Recipe.load(tmp_path / "recipe.json")


def test_a_csv_is_fitted_on_its_runs_training_rows_and_refitted_for_another_split(tmp_path):
    path = tmp_path / "t.csv"
    df = _table(120)
    df["y"] = np.arange(120) % 2
    df.to_csv(path, index=False)
    spec = DataSpec(source="csv", name=None, path=str(path), target="y")
    ds = load_dataset(spec)  # the split a new run gets
    assert ds.recipe.fitted_on == {"test": 0.2, "validation": 0.1, "seed": 0}
    other = SplitSpec(test=0.3, validation=0.0, seed=5)
    refit = with_recipe(ds, other)
    train = split_dataset(ds, other).train_index
    assert refit.recipe.fitted_on == {"test": 0.3, "validation": 0.0, "seed": 5}
    assert refit.recipe.columns[0]["fill"] == np.nanmedian(df["age"].to_numpy()[train])
    assert np.array_equal(refit.x, load_dataset(spec, split=other).x)
    assert with_recipe(refit, other) is refit  # already fitted for it: nothing is redone
    assert any("read 'joined' as dates" in n for n in refit.notes)
    assert sum("read 'joined' as dates" in n for n in refit.notes) == 1  # the old recipe's notes were replaced
