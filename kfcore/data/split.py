"""The train / validation / test split: deterministic, stratified where the classes allow it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from kfcore.data.dataset import DataError, Dataset, Splits
from kfcore.spec import SplitSpec

if TYPE_CHECKING:
    pass


def split_dataset(ds: Dataset, split: SplitSpec) -> Splits:
    """Train / validation / test split, deterministic given split.seed.

    Fractions are of the whole dataset (test 0.2, validation 0.1 -> 70/10/20). A dataset with its own
    test set keeps it (split.test is ignored) and takes the validation fraction of ds.x. Classification
    splits are stratified whenever every class has enough members, else plainly shuffled.
    """
    n = len(ds.y)
    classify = ds.task != "regression"
    n_val = split_count(split.validation, n)
    # The split is made on sample numbers, then the samples are taken: the same partition train_test_split makes of
    # the arrays themselves (the exported script splits those), and the numbers are kept.
    i_rest, y_rest, i_test = np.arange(n), ds.y, None
    if ds.x_test is not None and ds.y_test is not None:
        x_test, y_test = ds.x_test, ds.y_test
        stratified = True
    else:
        if split.test <= 0:
            raise DataError(
                f"{ds.name} has no test set of its own and the test fraction is 0: set a test fraction above 0 "
                "(0.2 is usual) so the model is scored on data it never trained on"
            )
        n_test = split_count(split.test, n)
        if n - n_test - n_val < 2:
            raise DataError(_too_few_message(ds.name, n, n_test, n_val))
        i_rest, i_test, y_rest, y_test, stratified = _split_off(i_rest, ds.y, n_test, split.seed, classify)
        x_test = ds.x[i_test]
    if n_val == 0:
        return Splits(
            ds.x[i_rest],
            y_rest,
            None,
            None,
            x_test,
            y_test,
            stratified=classify and stratified,
            train_index=i_rest,
            test_index=i_test,
        )
    if len(y_rest) - n_val < 2:
        raise DataError(_too_few_message(ds.name, n, 0, n_val))
    i_train, i_val, y_train, y_val, val_stratified = _split_off(i_rest, y_rest, n_val, split.seed, classify)
    return Splits(
        ds.x[i_train],
        y_train,
        ds.x[i_val],
        y_val,
        x_test,
        y_test,
        stratified=classify and stratified and val_stratified,
        train_index=i_train,
        val_index=i_val,
        test_index=i_test,
    )


# -- splitting ------------------------------------------------------------------------------------


def split_count(fraction: float, n: int) -> int:
    """Samples a fraction of n stands for: at least one when the fraction is above 0."""
    return 0 if fraction <= 0 else max(1, round(fraction * n))


def _too_few_message(name: str, n: int, n_test: int, n_val: int) -> str:
    return (
        f"{name} has {n} samples: after {n_test} for testing and {n_val} for validation fewer than 2 are left to "
        "train on; lower the test and validation fractions or use more data"
    )


def _split_off(
    x: np.ndarray, y: np.ndarray, n_out: int, seed: int, classify: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """Split n_out samples off (x, y): (x_keep, x_out, y_keep, y_out, stratified)."""
    from sklearn.model_selection import train_test_split

    stratify = classify and can_stratify(y, n_out, len(y) - n_out)
    x_keep, x_out, y_keep, y_out = train_test_split(
        x, y, test_size=n_out, random_state=seed, shuffle=True, stratify=y if stratify else None
    )
    return x_keep, x_out, y_keep, y_out, stratify


def can_stratify(y: np.ndarray, n_out: int, n_keep: int) -> bool:
    # scikit-learn's own preconditions: two members per class, and room for every class on both sides.
    counts = np.bincount(y)
    counts = counts[counts > 0]
    return bool(counts.min() >= 2 and n_out >= len(counts) and n_keep >= len(counts))
