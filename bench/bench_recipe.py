"""kfcore on tables against scikit-learn pipelines on the same rows (the oracle tests' tables, printed).

    python bench/bench_recipe.py

Each line: the table, kfcore's test score, scikit-learn's (ridge for regression, logistic regression for classes;
impute, one-hot, scale), and for classification kfcore's test loss.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.test_recipe_oracle import houses, plans, spending  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, table in (
            ("houses: 600 rows, 2 categorical columns", houses),
            ("spending: 3,000 rows, ISO dates, thousands separators", spending),
            ("plans: 900 rows, 3 classes, gaps, a category, an ID", plans),
        ):
            s = table(Path(tmp))
            loss = f", kfcore test loss {s['loss']:.4f}" if "loss" in s else ""
            print(f"{name}: {s['metric']} kfcore {s['kfcore']:.4f}, scikit-learn {s['sklearn']:.4f}{loss}", flush=True)


if __name__ == "__main__":
    main()
