"""kfcore's tables against scikit-learn pipelines on the very same rows: a ridge regression (impute, one-hot, scale)
and a logistic regression, trained on the run's training rows and scored on its test rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from kfcore.data import load_dataset, split_dataset
from kfcore.spec import parse_spec
from kfcore.training.train import train


def _spec(path, target, layers, **train_):
    return parse_spec(
        {
            "data": {"source": "csv", "path": str(path), "target": target},
            "split": {"test": 0.2, "validation": 0.1, "seed": 0},
            "layers": layers,
            "train": {"seed": 0, **train_},
        }
    )


def _oracle(df: pd.DataFrame, spec, numbers: list[str], categories: list[str], model) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's (test predictions, test targets) on the rows kfcore trained and tested on."""
    ds = load_dataset(spec.data, split=spec.split)
    splits = split_dataset(ds, spec.split)
    prep = ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numbers),
            (
                "categories",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"), OneHotEncoder(handle_unknown="ignore")
                ),
                categories,
            ),
        ]
    )
    pipe = make_pipeline(prep, model)
    target = spec.data.target
    train_rows, test_rows = df.iloc[splits.train_index], df.iloc[splits.test_index]
    pipe.fit(train_rows[numbers + categories], train_rows[target])
    return pipe.predict(test_rows[numbers + categories]), test_rows[target].to_numpy()


# -- the tables, and both sides' scores on them (bench/bench_recipe.py prints the same comparisons) ----------------


def houses(tmp_path, n: int = 600) -> dict:
    """Prices from sizes, rooms and two categorical columns, with gaps: kfcore's R² and a ridge pipeline's."""
    rng = np.random.default_rng(7)
    df = pd.DataFrame(
        {
            "size": rng.normal(50, 10, n),
            "rooms": rng.integers(1, 6, n).astype(float),
            "area": rng.choice(["centre", "suburb", "village", "coast"], n),
            "kind": rng.choice(["flat", "house"], n),
        }
    )
    effect = df["area"].map({"centre": 40, "suburb": 10, "village": -20, "coast": 25}) + (df["kind"] == "house") * 15
    df["price"] = 3 * df["size"] + 8 * df["rooms"] + effect + rng.normal(0, 10, n)
    df.loc[::15, "size"] = np.nan
    df.loc[::23, "area"] = None
    path = tmp_path / "houses.csv"
    df.to_csv(path, index=False)
    spec = _spec(
        path,
        "price",
        [{"type": "Dense", "units": 16, "activation": "relu"}],
        epochs=60,
        batch_size=32,
        learning_rate=0.01,
    )
    predicted, truth = _oracle(df, spec, ["size", "rooms"], ["area", "kind"], Ridge(alpha=1.0))
    result = train(spec)
    assert result.status == "finished", result.error
    return {"kfcore": result.evaluation["r2"], "sklearn": r2_score(truth, predicted), "metric": "R²"}


def spending(tmp_path, n: int = 3000) -> dict:
    """A few thousand rows with ISO dates and thousands separators: kfcore's R² and a ridge pipeline's."""
    rng = np.random.default_rng(11)
    day = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 8 * 365, n), unit="D")
    income = rng.normal(40_000, 9_000, n)
    hours = rng.normal(38, 6, n)
    years = (day - pd.Timestamp("2015-01-01")).days / 365.0
    spend = 0.05 * income + 30 * hours + 150 * years + rng.normal(0, 300, n)
    df = pd.DataFrame(
        {"day": day.strftime("%Y-%m-%d"), "income": [f"{v:,.2f}" for v in income], "hours": hours, "spend": spend}
    )
    path = tmp_path / "spend.csv"
    df.to_csv(path, index=False)
    spec = _spec(
        path,
        "spend",
        [{"type": "Dense", "units": 16, "activation": "relu"}],
        epochs=20,
        batch_size=64,
        learning_rate=0.01,
    )
    ds = load_dataset(spec.data, split=spec.split)
    assert [c["kind"] for c in ds.recipe.columns] == ["date", "number", "number"]
    # The oracle reads the same cells its own way: the income as plain numbers, the date as year and day of year.
    plain = df.assign(income=income, year=day.year.astype(float), doy=day.dayofyear.astype(float))
    predicted, truth = _oracle(plain, spec, ["year", "doy", "income", "hours"], [], Ridge(alpha=1.0))
    result = train(spec)
    assert result.status == "finished", result.error
    return {"kfcore": result.evaluation["r2"], "sklearn": r2_score(truth, predicted), "metric": "R²"}


def plans(tmp_path, n: int = 900) -> dict:
    """3 classes from numbers with gaps, a category with gaps and an ID column: accuracies and kfcore's test loss."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, n), rng.normal(0, 1, n)
    shop = rng.choice(["north", "south", "east", "west"], n)
    bonus = pd.Series(shop).map({"north": 1.5, "south": -1.0, "east": 0.0, "west": 0.5}).to_numpy()
    scores = np.stack([2 * a + bonus, -a + 2 * b, -2 * b - bonus], axis=1) + rng.gumbel(0, 0.5, (n, 3))
    df = pd.DataFrame(
        {
            "customer": [f"cust-{i:05d}" for i in range(n)],
            "a": a,
            "b": b,
            "shop": shop,
            "plan": np.array(["gold", "silver", "bronze"])[scores.argmax(axis=1)],
        }
    )
    df.loc[::7, "a"] = np.nan
    df.loc[::11, "b"] = np.nan
    df.loc[::13, "shop"] = None
    path = tmp_path / "plans.csv"
    df.to_csv(path, index=False)
    spec = _spec(
        path,
        "plan",
        [{"type": "Dense", "units": 16, "activation": "relu"}],
        epochs=40,
        batch_size=32,
        learning_rate=0.01,
    )
    ds = load_dataset(spec.data, split=spec.split)
    assert ds.recipe.columns[0]["kind"] == "dropped"  # the ID column
    predicted, truth = _oracle(df, spec, ["a", "b"], ["shop"], LogisticRegression(max_iter=1000))
    result = train(spec)
    assert result.status == "finished", result.error
    return {
        "kfcore": result.test["accuracy"],
        "sklearn": accuracy_score(truth, predicted),
        "metric": "accuracy",
        "loss": result.test["loss"],
    }


def test_regression_with_categorical_columns_is_within_0_1_r2_of_a_ridge_pipeline(tmp_path):
    scores = houses(tmp_path)
    assert scores["sklearn"] > 0.8  # the oracle itself fits: the table is learnable
    assert scores["kfcore"] >= scores["sklearn"] - 0.1, scores


def test_regression_on_a_few_thousand_rows_with_dates_and_thousands_separators_is_within_0_1_r2_of_ridge(tmp_path):
    scores = spending(tmp_path)
    assert scores["sklearn"] > 0.7
    assert scores["kfcore"] >= scores["sklearn"] - 0.1, scores


def test_classification_with_gaps_categories_and_an_id_reaches_a_logistic_regression_pipeline(tmp_path):
    scores = plans(tmp_path)
    assert scores["sklearn"] > 0.7
    assert scores["kfcore"] >= scores["sklearn"] - 0.04, scores
    assert np.isfinite(scores["loss"]) and scores["loss"] < 0.8  # chance is ln 3 = 1.10
