"""Module-level `dataset.zip` and `dataset.concat` (MindSpore's names; this module shadows the
builtin `zip`, so it holds nothing else)."""
from __future__ import annotations

from .engine import Dataset
from .structure import ConcatDataset, ZipDataset


def zip(datasets) -> Dataset:  # noqa: A001 (MindSpore's name: mindspore.dataset.zip)
    """Rows of each dataset side by side: `ds.zip((a, b))` == `a.zip(b)`; column names must differ."""
    sets = list(datasets) if isinstance(datasets, (list, tuple)) else [datasets]
    if len(sets) < 2 or not all(isinstance(d, Dataset) for d in sets):
        raise TypeError("dataset.zip: expected a tuple of two or more datasets")
    return ZipDataset(sets)


def concat(datasets) -> Dataset:
    """The rows of each dataset one after the other: `ds.concat([a, b])` == `a.concat(b)` == `a + b`."""
    sets = list(datasets) if isinstance(datasets, (list, tuple)) else [datasets]
    if len(sets) < 2 or not all(isinstance(d, Dataset) for d in sets):
        raise TypeError("dataset.concat: expected a list of two or more datasets")
    return ConcatDataset(sets)
