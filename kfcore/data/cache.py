"""A process-wide cache of loaded datasets bounded by the bytes their arrays hold, not by how many there are.

The web process shares loaded datasets between all its sessions (read-only: nobody copies MNIST per rerun).
Counting entries bounds nothing: eight CIFAR-10s are about 6 GB. This cache keeps the most recently used
datasets within a byte budget (kfcore.runs.limits.data_cache_bytes) and drops the least recently used beyond it;
a dataset larger than the whole budget is still returned, just not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from kfcore.data import Dataset


def dataset_bytes(ds: Dataset) -> int:
    """The bytes a dataset's arrays hold (features and targets, its own test set included)."""
    arrays = (ds.x, ds.y, ds.x_test, ds.y_test)
    return sum(int(a.nbytes) for a in arrays if a is not None)


class DatasetCache:
    """Least-recently-used datasets within a byte budget; safe to share between threads (Streamlit sessions)."""

    def __init__(self) -> None:
        self._entries: OrderedDict[Hashable, tuple[Dataset, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}  # one load per key at a time: two sessions, one read

    def get_or_load(self, key: Hashable, load: Callable[[], Dataset], budget_bytes: int) -> Dataset:
        """The dataset cached under `key`, else `load()`'s, kept if it fits in budget_bytes (evicting the least
        recently used). An exception from load() propagates and nothing is cached."""
        if (hit := self._get(key)) is not None:
            return hit
        with self._lock:
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            if (hit := self._get(key)) is not None:  # another session loaded it while this one waited
                return hit
            try:
                ds = load()
                self._put(key, ds, budget_bytes)
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            return ds

    def _get(self, key: Hashable) -> Dataset | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def _put(self, key: Hashable, ds: Dataset, budget_bytes: int) -> None:
        size = dataset_bytes(ds)
        if size > budget_bytes:  # keeping it would only push out everything else
            return
        with self._lock:
            self._entries[key] = (ds, size)
            self._entries.move_to_end(key)
            while self._held() > budget_bytes:
                self._entries.popitem(last=False)

    def _held(self) -> int:
        return sum(size for _, size in self._entries.values())

    @property
    def nbytes(self) -> int:
        """The bytes the cached datasets hold now."""
        with self._lock:
            return self._held()

    def keys(self) -> list[Hashable]:
        """The cached keys, least recently used first."""
        with self._lock:
            return list(self._entries)
