"""Uploads load in a spawned child under an address-space cap: its arrays come back intact, its refusals come
back as the loader's message, and a file that needs more than the cap kills only the child's attempt."""

from __future__ import annotations

import os

import numpy as np
import pytest

from kfcore.data import DataError, load_dataset
from kfcore.data.sandbox import load_capped
from kfcore.runs.limits import Limits
from kfcore.spec import DataSpec

LIMITS = Limits(memory_budget_mb=2048)


def test_capped_load_returns_the_same_dataset_as_loading_in_process(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{'pqr'[i % 3]},{'cat' if i % 2 else 'dog'}\n" for i in range(300)))
    spec = DataSpec(source="csv", name="mixed", path=str(path), target="y")
    here, there = load_dataset(spec, limits=LIMITS), load_capped(spec, LIMITS)
    assert np.array_equal(here.x, there.x) and np.array_equal(here.y, there.y) and there.x.dtype == np.float32
    assert (there.task, there.class_names, there.feature_names, there.notes, there.x_test) == (
        here.task,
        here.class_names,
        here.feature_names,
        here.notes,
        None,
    )


def test_own_test_set_and_images_come_back(tmp_path):
    path = tmp_path / "imgs.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x=rng.integers(0, 255, (20, 6, 6), np.uint8),
        y=np.arange(20) % 2,
        x_test=rng.integers(0, 255, (4, 6, 6), np.uint8),
        y_test=np.arange(4) % 2,
    )
    spec = DataSpec(source="npz", path=str(path))
    here, there = load_dataset(spec, limits=LIMITS), load_capped(spec, LIMITS)
    assert there.x.shape == (20, 6, 6, 1) and np.array_equal(here.x_test, there.x_test)
    assert np.array_equal(here.y_test, there.y_test)


def test_loader_refusal_comes_back_as_its_message(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("a,y\n1,2\n")
    with pytest.raises(DataError, match="one.csv has 1 usable rows"):
        load_capped(DataSpec(source="csv", path=str(path), target="y"), LIMITS)


def test_a_file_needing_more_than_the_cap_is_refused_and_the_caller_lives(tmp_path):
    path = tmp_path / "big.npz"
    np.savez(path, x=np.zeros((4000, 2000)), y=np.arange(4000) % 2)  # 64 MB of float64: within the budget's checks
    before = os.getpid()
    with pytest.raises(DataError) as e:
        load_capped(DataSpec(source="npz", path=str(path)), LIMITS, cap_mb=40)
    assert str(e.value) == (
        "the file needs more memory than this server allows for one upload (40 MB); upload a "
        "smaller file (a sample of the rows, or smaller images)"
    )
    assert os.getpid() == before and load_capped(DataSpec(source="npz", path=str(path)), LIMITS).x.shape == (4000, 2000)
