"""The dataset pipeline: a tree of Dataset nodes, each a lazy generator of rows.

A row is a tuple of numpy arrays, one per column. `node._rows(epoch, seed)` yields one pass;
every random choice (source shuffle, shuffle buffer, random augmentations in map) draws from a
generator keyed by (seed, the node's depth in the pipeline, epoch), so a pipeline is
reproducible for a given seed and every epoch is shuffled differently. The epoch index comes
from the dataset being iterated: each epoch a consumer starts advances it (set_epoch resets it,
e.g. to resume training at an epoch with bit-identical data order).

This module holds the Dataset base (the pipeline methods, iteration, introspection); the nodes
are in ops.py (map, batch), structure.py (shuffle, repeat, take, skip, project, rename, zip,
concat) and sources.py / readers.py / digits.py. Iteration runs in a background thread that
prefetches into a bounded queue (iterator.py).
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from ...errors import DatasetError
from . import config
from ...frontend.tensor import Tensor
from .iterator import PipelineIterator

Row = tuple


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) % (2 ** 63), *[int(k) for k in keys]])


def _as_list(x, what: str) -> list[str] | None:
    if x is None:
        return None
    if isinstance(x, str):
        return [x]
    if isinstance(x, (list, tuple)) and all(isinstance(c, str) for c in x):
        return list(x)
    raise TypeError(f"{what} must be a str or a list of str, got {x!r}")


def _positive_int(v, what: str, allow_minus_one: bool = False) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or (v < 1 and not (allow_minus_one and v == -1)):
        raise ValueError(f"{what} must be a positive int{' or -1' if allow_minus_one else ''}, got {v!r}")
    return int(v)


def to_array(x: Any) -> np.ndarray:
    """A column value -> numpy array (Tensors via asnumpy; never np.array(copy=False), see
    mindspore-api.md section 11 on NumPy 2)."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, Tensor):
        return x.asnumpy()
    return np.asarray(x)


def _check_kwargs(op: str, kwargs: dict, accepted: set) -> None:
    """Options MindSpore has that only tune its worker processes are accepted; others raise."""
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise TypeError(f"{op}() got unexpected keyword argument(s) {unknown}")


class BatchInfo:
    """Passed to a callable batch_size and to per_batch_map (MindSpore's BatchInfo)."""

    def __init__(self, batch_num: int, epoch_num: int):
        self._batch_num, self._epoch_num = batch_num, epoch_num

    def get_batch_num(self) -> int:
        return self._batch_num

    def get_epoch_num(self) -> int:
        return self._epoch_num


class Dataset:
    """Base of every dataset node. Pipeline methods return a new node; nothing runs until an
    iterator is created."""

    def __init__(self, children: Sequence["Dataset"] = ()):
        self.children = list(children)
        self._depth = 1 + max((c._depth for c in self.children), default=0)
        self._next_epoch = 0
        self._size_cache: int | None = None

    # -- subclass interface -------------------------------------------------------------------
    def _col_names(self) -> list[str]:
        raise NotImplementedError

    def _rows(self, epoch: int, seed: int) -> Iterator[Row]:
        raise NotImplementedError

    def _size(self) -> int | None:
        """Rows per pass; None when it can only be found by iterating; -1 when infinite."""
        return None

    # -- pipeline ----------------------------------------------------------------------------
    def map(self, operations, input_columns=None, output_columns=None, num_parallel_workers=None,
            python_multiprocessing=False, cache=None, callbacks=None, **kwargs) -> "Dataset":
        """Apply `operations` (a callable or a list, applied in order) to `input_columns` (default:
        the first column); the results become `output_columns` (default: input_columns), placed
        where the first input column was. num_parallel_workers/python_multiprocessing are accepted
        and ignored: the pipeline runs in one background thread. column_order (MindSpore 1.x)
        selects and orders the columns afterwards."""
        column_order = kwargs.pop("column_order", None)
        _check_kwargs("map", kwargs, {"max_rowsize", "offload"})
        if callbacks is not None:
            raise NotImplementedError("map(callbacks=...) is not supported by sporeflow")
        out = MapDataset(self, operations, input_columns, output_columns)
        return out.project(column_order) if column_order is not None else out

    def batch(self, batch_size, drop_remainder: bool = False, num_parallel_workers=None, per_batch_map=None,
              input_columns=None, output_columns=None, pad_info=None, **kwargs) -> "Dataset":
        """Stack `batch_size` consecutive rows per column (np.stack); every row of a column must
        have the same shape, else DatasetError names the row, the column and both shapes."""
        _check_kwargs("batch", kwargs, {"python_multiprocessing", "max_rowsize"})
        return BatchDataset(self, batch_size, drop_remainder, per_batch_map, input_columns, output_columns, pad_info)

    def shuffle(self, buffer_size: int) -> "Dataset":
        return ShuffleDataset(self, buffer_size)

    def repeat(self, count=None) -> "Dataset":
        return RepeatDataset(self, count)

    def take(self, count: int = -1) -> "Dataset":
        return TakeDataset(self, count)

    def skip(self, count: int) -> "Dataset":
        return SkipDataset(self, count)

    def project(self, columns) -> "Dataset":
        return ProjectDataset(self, columns)

    def rename(self, input_columns, output_columns) -> "Dataset":
        return RenameDataset(self, input_columns, output_columns)

    def zip(self, datasets) -> "Dataset":
        others = list(datasets) if isinstance(datasets, (list, tuple)) else [datasets]
        return ZipDataset([self, *others])

    def concat(self, datasets) -> "Dataset":
        others = list(datasets) if isinstance(datasets, (list, tuple)) else [datasets]
        return ConcatDataset([self, *others])

    def split(self, sizes, randomize: bool = True):
        raise NotImplementedError(f"split is supported on source datasets (GeneratorDataset over a random-access "
                                  f"source, NumpySlicesDataset, MnistDataset, ...), not after {type(self).__name__}; "
                                  "split first, then map/batch each part")

    def __add__(self, other: "Dataset") -> "Dataset":
        return self.concat(other)

    # -- iteration -----------------------------------------------------------------------------
    def create_tuple_iterator(self, columns=None, num_epochs: int = -1, output_numpy: bool = False,
                              do_copy: bool = False):
        """An iterator over `num_epochs` epochs (-1: unlimited) yielding lists of Tensors (numpy
        arrays with output_numpy=True). Each `for` over it runs one epoch."""
        return PipelineIterator(self, _as_list(columns, "columns"), num_epochs, output_numpy, as_dict=False)

    def create_dict_iterator(self, num_epochs: int = -1, output_numpy: bool = False, do_copy: bool = False):
        """As create_tuple_iterator, yielding {column name: value}."""
        return PipelineIterator(self, None, num_epochs, output_numpy, as_dict=True)

    def __iter__(self):
        return iter(self.create_tuple_iterator(num_epochs=1))

    def set_epoch(self, epoch: int) -> "Dataset":
        """(sporeflow) Make the next epoch iterated from this dataset use the data order of epoch
        `epoch` (0-based). Resuming training at initial_epoch=k with set_epoch(k) sees the same
        batches an uninterrupted run would."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"set_epoch: epoch must be a non-negative int, got {epoch!r}")
        self._next_epoch = epoch
        return self

    def reset(self) -> None:
        """Accepted for compatibility: each iterator epoch starts the pipeline afresh."""

    # -- introspection ---------------------------------------------------------------------------
    def get_col_names(self) -> list[str]:
        return list(self._col_names())

    def get_dataset_size(self) -> int:
        """Rows (or batches) per epoch; -1 for an infinitely repeated dataset. Sources of unknown
        length are counted by running one pass, as MindSpore does."""
        if self._size_cache is None:
            n = self._size()
            if n is None:
                n = sum(1 for _ in self._rows(0, config.get_seed()))
            self._size_cache = n
        return self._size_cache

    def _first_row(self) -> Row:
        gen = self._rows(0, config.get_seed())
        try:
            for row in gen:
                return row
        finally:
            gen.close()
        raise DatasetError(f"{type(self).__name__} is empty; it has no row to take shapes and types from")

    def output_shapes(self, estimate: bool = False) -> list[list[int]]:
        return [list(a.shape) for a in self._first_row()]

    def output_types(self) -> list[np.dtype]:
        return [a.dtype for a in self._first_row()]

    def get_batch_size(self) -> int:
        for c in self.children:
            return c.get_batch_size()
        return 1

    def get_repeat_count(self) -> int:
        for c in self.children:
            return c.get_repeat_count()
        return 1

    def device_que(self, *args, **kwargs):
        raise NotImplementedError("device_que (dataset sinking to a device queue) is not supported by sporeflow; "
                                  "iterate the dataset instead")

    def __repr__(self) -> str:
        inner = ", ".join(repr(c) for c in self.children)
        return f"{type(self).__name__}({inner})"


from .ops import BatchDataset, MapDataset  # noqa: E402  (they subclass Dataset)
from .structure import (ConcatDataset, ProjectDataset, RenameDataset, RepeatDataset, ShuffleDataset,  # noqa: E402
                        SkipDataset, TakeDataset, ZipDataset)
