"""The web process's dataset cache: bounded by the bytes of the arrays it keeps, least recently used out first."""

import threading

import numpy as np
import pytest

from kfcore.data import DataError, Dataset, load_dataset
from kfcore.data.cache import DatasetCache, dataset_bytes
from kfcore.runs.limits import Limits, data_cache_bytes
from kfcore.spec import DataSpec

MB = 2**20


def sized(mb: float, name: str = "set") -> Dataset:
    """A dataset whose arrays hold `mb` MB: float32 features plus int64 targets."""
    n = int(mb * MB) // (4 * 63 + 8)
    return Dataset(name, "", np.zeros((n, 63), np.float32), np.zeros(n, np.int64), "multiclass", ["a", "b"])


def test_dataset_bytes_counts_every_array_a_dataset_holds():
    ds = load_dataset(DataSpec(name="digits"))
    assert dataset_bytes(ds) == ds.x.nbytes + ds.y.nbytes == 1797 * 64 * 4 + 1797 * 8
    own_test = Dataset(
        "t",
        "",
        np.zeros((10, 3), np.float32),
        np.zeros(10, np.int64),
        "binary",
        ["a", "b"],
        x_test=np.zeros((5, 3), np.float32),
        y_test=np.zeros(5, np.int64),
    )
    assert dataset_bytes(own_test) == 10 * 12 + 80 + 5 * 12 + 40


def test_the_cache_keeps_datasets_within_its_byte_budget_least_recently_used_out_first():
    cache, budget = DatasetCache(), 3 * MB
    loads = []

    def loader(key):
        def load():
            loads.append(key)
            return sized(0.9, key)

        return load

    for key in "abc":
        cache.get_or_load(key, loader(key), budget)
    assert cache.keys() == ["a", "b", "c"] and cache.nbytes <= budget
    assert cache.get_or_load("a", loader("a"), budget).name == "a"  # a hit: no load, and now the most recent
    cache.get_or_load("d", loader("d"), budget)  # 3.6 MB would not fit: b, the least recently used, goes
    assert cache.keys() == ["c", "a", "d"] and cache.nbytes <= budget
    assert loads == ["a", "b", "c", "d"]
    cache.get_or_load("b", loader("b"), budget)
    assert loads[-1] == "b" and cache.keys() == ["a", "d", "b"]


def test_eight_large_sets_are_not_all_kept_as_a_count_of_entries_would():
    cache, budget = DatasetCache(), 10 * MB
    for i in range(8):
        cache.get_or_load(i, lambda: sized(4.0), budget)
    assert len(cache.keys()) == 2 and cache.nbytes <= budget


def test_a_dataset_over_the_whole_budget_is_served_but_not_kept_and_evicts_nothing():
    cache, budget = DatasetCache(), 2 * MB
    cache.get_or_load("small", lambda: sized(1.0), budget)
    big = cache.get_or_load("big", lambda: sized(3.0, "big"), budget)
    assert big.name == "big" and dataset_bytes(big) > budget
    assert cache.keys() == ["small"]
    loads = []
    cache.get_or_load("big", lambda: loads.append(1) or sized(3.0), budget)
    assert loads == [1]  # read again: it was never kept


def test_a_failed_load_raises_and_leaves_nothing_behind():
    cache = DatasetCache()

    def broken():
        raise DataError("the download failed")

    with pytest.raises(DataError, match="the download failed"):
        cache.get_or_load("mnist", broken, MB)
    assert cache.keys() == [] and cache.get_or_load("mnist", lambda: sized(0.1, "now"), MB).name == "now"


def test_sessions_asking_at_once_for_the_same_dataset_share_one_load():
    cache, started, release = DatasetCache(), threading.Event(), threading.Event()
    loads, results = [], []

    def slow():
        loads.append(1)
        started.set()
        release.wait(10)
        return sized(0.1)

    threads = [threading.Thread(target=lambda: results.append(cache.get_or_load("k", slow, MB))) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait(10)
    release.set()
    for t in threads:
        t.join(10)
    assert loads == [1] and len(results) == 4 and all(r is results[0] for r in results)


def test_the_budget_is_half_of_one_runs_memory_budget():
    assert data_cache_bytes(Limits(memory_budget_mb=1500)) == 750 * MB
    by_default = Limits.from_env({})
    assert data_cache_bytes(by_default) == by_default.memory_budget_mb * MB // 2  # a quarter of the machine
