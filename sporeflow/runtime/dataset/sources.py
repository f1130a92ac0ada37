"""Source datasets over Python data: GeneratorDataset and NumpySlicesDataset.

Random-accessible sources (with __getitem__ and __len__) are shuffled by default
(shuffle=None means True, as in MindSpore), with a permutation drawn per epoch from the
pipeline seed; iterable and callable sources are read in order. Every row is checked against
the column names, and a value that is not a rectangular array gets a DatasetError naming the
row and the column.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ...context import data_parallel
from ...errors import DatasetError
from ...ir import comm
from ...ir import dtypes as D
from .engine import Dataset, _as_list, rng_for, to_array
from . import config


def _check_sampling(num_samples, num_shards, shard_id, sampler, name: str) -> None:
    if sampler is not None:
        raise NotImplementedError(f"{name}: sampler= is not supported by sporeflow; use shuffle=, num_samples=, "
                                  "num_shards=/shard_id=")
    if num_samples is not None and (isinstance(num_samples, bool) or not isinstance(num_samples, int) or
                                    num_samples < 0):
        raise ValueError(f"{name}: num_samples must be a non-negative int or None, got {num_samples!r}")
    if (num_shards is None) != (shard_id is None):
        raise ValueError(f"{name}: num_shards and shard_id must be given together")
    if num_shards is not None:
        if not isinstance(num_shards, int) or num_shards < 1 or not isinstance(shard_id, int) or \
                not 0 <= shard_id < num_shards:
            raise ValueError(f"{name}: need num_shards >= 1 and 0 <= shard_id < num_shards, got {num_shards}, {shard_id}")


def _value_array(v: Any, row: int, column: str, source: str) -> np.ndarray:
    try:
        a = to_array(v)
    except Exception as e:  # noqa: BLE001 (np.asarray of ragged data etc.)
        raise DatasetError(f"{source}: row {row}, column '{column}': cannot make an array of the value ({e})") from None
    if a.dtype == object:
        raise DatasetError(f"{source}: row {row}, column '{column}': the value is not a rectangular numeric array "
                           f"(got an object array of shape {a.shape}, e.g. a ragged list)")
    return a


class SourceDataset(Dataset):
    """A random-access source: subclasses give _num_rows() and _row(i) -> tuple of arrays."""
    _name = "SourceDataset"

    def __init__(self, column_names: list[str], num_samples=None, shuffle=None, num_shards=None, shard_id=None,
                 sampler=None):
        super().__init__()
        _check_sampling(num_samples, num_shards, shard_id, sampler, self._name)
        if num_shards is None and sampler is None and data_parallel() and comm.initialized():
            num_shards, shard_id = comm.size(), comm.rank()    # data parallel: this rank's share
        self._columns = list(column_names)
        self._shuffle = True if shuffle is None else bool(shuffle)
        self._num_samples = num_samples or None
        self._num_shards, self._shard_id = num_shards, shard_id

    def _num_rows(self) -> int:
        raise NotImplementedError

    def _row(self, i: int) -> tuple:
        raise NotImplementedError

    def _col_names(self):
        return self._columns

    def _gather(self, idx: np.ndarray) -> tuple | None:
        """Whole batch of rows `idx` at once, or None when rows must be read one by one. Sources
        over arrays override this, so batch() right after them is one fancy-index per column."""
        return None

    def _sample(self, idx: np.ndarray) -> np.ndarray:
        """This shard's part of the row order `idx`, cut to num_samples."""
        if self._num_shards is not None:
            idx = idx[self._shard_id::self._num_shards]
        if self._num_samples is not None:
            idx = idx[:self._num_samples]
        return idx

    def _indices(self, epoch: int, seed: int) -> np.ndarray:
        n = self._num_rows()
        return self._sample(rng_for(seed, self._depth, epoch, 1).permutation(n) if self._shuffle else np.arange(n))

    def _size(self):
        n = self._num_rows()
        if self._num_shards is not None:
            n = len(range(self._shard_id, n, self._num_shards))
        return n if self._num_samples is None else min(n, self._num_samples)

    def _rows(self, epoch, seed):
        for i in self._indices(epoch, seed):
            yield self._row(int(i))

    def __repr__(self):
        return f"{self._name}(columns={self._columns})"

    def split(self, sizes, randomize: bool = True) -> list["SourceDataset"]:
        """Split into disjoint datasets of `sizes` rows (ints summing to the size, or fractions
        summing to 1; rounding leftovers go to the first split). randomize draws the rows with the
        pipeline seed; otherwise the splits are consecutive."""
        n = self._size()
        if n is None:
            raise NotImplementedError(f"split needs a random-accessible source (__getitem__ and __len__); "
                                      f"{self._name} reads an iterable")
        if not isinstance(sizes, (list, tuple)) or not sizes:
            raise TypeError(f"split: sizes must be a non-empty list, got {sizes!r}")
        if all(isinstance(v, int) and not isinstance(v, bool) for v in sizes):
            if sum(sizes) != n or min(sizes) < 1:
                raise ValueError(f"split: integer sizes {sizes} must be positive and sum to the dataset size {n}")
            counts = list(sizes)
        elif all(isinstance(v, float) for v in sizes):
            if abs(sum(sizes) - 1.0) > 1e-6 or min(sizes) <= 0:
                raise ValueError(f"split: fractional sizes {sizes} must be positive and sum to 1")
            counts = [int(np.floor(f * n)) for f in sizes]
            counts[0] += n - sum(counts)
            if min(counts) < 1:
                raise ValueError(f"split: sizes {sizes} of {n} rows leave an empty split ({counts})")
        else:
            raise TypeError(f"split: sizes must be all ints or all floats, got {sizes!r}")
        base = self._sample(np.arange(self._num_rows()))
        if randomize:
            base = rng_for(config.get_seed(), self._depth, 0x5B1, 0).permutation(base)
        bounds = np.cumsum([0] + counts)
        return [SubsetDataset(self, base[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


class SubsetDataset(SourceDataset):
    """Rows `indices` of another source (what split() returns); shuffled like its parent."""
    _name = "SubsetDataset"

    def __init__(self, parent: SourceDataset, indices: np.ndarray):
        super().__init__(parent.get_col_names(), shuffle=parent._shuffle)
        self._parent, self._idx = parent, np.asarray(indices, dtype=np.int64)

    def _num_rows(self):
        return int(self._idx.shape[0])

    def _row(self, i):
        return self._parent._row(int(self._idx[i]))

    def _gather(self, idx):
        return self._parent._gather(self._idx[idx])


class GeneratorDataset(SourceDataset):
    """Rows from Python: `source` is random-accessible (__getitem__ + __len__), an iterable, or a
    callable returning an iterator (called once per epoch). Each item is a tuple with one value
    per column (a single value for one column). num_parallel_workers / python_multiprocessing
    are accepted and ignored (one background thread runs the pipeline)."""
    _name = "GeneratorDataset"

    def __init__(self, source, column_names=None, column_types=None, schema=None, num_samples=None,
                 num_parallel_workers=1, shuffle=None, sampler=None, num_shards=None, shard_id=None,
                 python_multiprocessing=True, max_rowsize=None, **kwargs):
        for k in ("batch_sampler", "collate_fn"):
            if kwargs.pop(k, None) is not None:
                raise NotImplementedError(f"GeneratorDataset: {k}= is not supported by sporeflow; use .batch() "
                                          "(with per_batch_map to combine rows your own way)")
        if kwargs:
            raise TypeError(f"GeneratorDataset got unexpected keyword argument(s) {sorted(kwargs)}")
        names = _as_list(column_names, "GeneratorDataset: column_names")
        if schema is not None:
            raise NotImplementedError("GeneratorDataset: schema= is not supported by sporeflow; pass column_names")
        if not names:
            raise ValueError("GeneratorDataset: column_names is required (a str or a list of str)")
        if len(set(names)) != len(names):
            raise ValueError(f"GeneratorDataset: column names {names} are not unique")
        self._random_access = hasattr(source, "__getitem__") and hasattr(source, "__len__")
        if not self._random_access:
            if not (callable(source) or hasattr(source, "__iter__")):
                raise TypeError("GeneratorDataset: source must be random-accessible (__getitem__ and __len__), "
                                f"iterable, or a callable returning an iterator; got {type(source).__name__}")
            if shuffle:
                raise ValueError("GeneratorDataset: shuffle=True needs a random-accessible source (__getitem__ and "
                                 "__len__); use .shuffle(buffer_size) for an iterable source")
            shuffle = False
        super().__init__(names, num_samples, shuffle, num_shards, shard_id, sampler)
        self.source = source
        self._types = None
        if column_types is not None:
            types = list(column_types)
            if len(types) != len(names):
                raise ValueError(f"GeneratorDataset: {len(types)} column_types for {len(names)} columns")
            self._types = [D.as_dtype(t).storage if D.as_dtype(t) is not D.bfloat16 else None for t in types]
            if None in self._types:
                raise NotImplementedError("GeneratorDataset: bfloat16 columns are not supported in the data pipeline; "
                                          "cast in the network")
        self._consumed = False

    def _num_rows(self):
        return len(self.source)

    def _convert(self, item, row: int) -> tuple:
        n = len(self._columns)
        if isinstance(item, tuple) or (isinstance(item, list) and n > 1):
            values = tuple(item)
        else:
            values = (item,)
        if len(values) != n:
            raise DatasetError(f"GeneratorDataset: row {row} has {len(values)} column(s) but column_names has {n}: "
                               f"{self._columns}")
        out = tuple(_value_array(v, row, c, self._name) for v, c in zip(values, self._columns))
        if self._types is not None:
            out = tuple(a.astype(t) if a.dtype != t else a for a, t in zip(out, self._types))
        return out

    def _row(self, i):
        try:
            item = self.source[i]
        except Exception as e:
            e.add_note(f"(sporeflow dataset: raised by the GeneratorDataset source at row {i})")
            raise
        return self._convert(item, i)

    def _size(self):
        return super()._size() if self._random_access else None

    def _iterate(self) -> Iterator:
        if callable(self.source) and not hasattr(self.source, "__iter__"):
            return iter(self.source())
        if iter(self.source) is self.source:  # a one-shot iterator (e.g. a generator object)
            if self._consumed:
                raise DatasetError("GeneratorDataset: the source is a one-shot iterator that was already consumed "
                                   "(by an earlier epoch or get_dataset_size); pass the generator function itself "
                                   "or a re-iterable object")
            self._consumed = True
        return iter(self.source)

    def _rows(self, epoch, seed):
        if self._random_access:
            yield from super()._rows(epoch, seed)
            return
        it = self._iterate()
        kept = 0
        row = -1
        while True:
            try:
                item = next(it)
            except StopIteration:
                return
            except Exception as e:
                e.add_note(f"(sporeflow dataset: raised by the GeneratorDataset source at row {row + 1})")
                raise
            row += 1
            if self._num_shards is not None and row % self._num_shards != self._shard_id:
                continue
            yield self._convert(item, row)
            kept += 1
            if self._num_samples is not None and kept >= self._num_samples:
                return


class ArraySource(SourceDataset):
    """A source over in-memory columns `self._arrays` (equal first axes): row i is their slices
    [i], and a batch is one fancy-index per column."""

    def _num_rows(self):
        return self._arrays[0].shape[0]

    def _row(self, i):
        return tuple(np.asarray(a[i]) for a in self._arrays)

    def _gather(self, idx):
        return tuple(a[idx] for a in self._arrays)


class NumpySlicesDataset(ArraySource):
    """Rows are slices along axis 0 of `data`: a list (one column), a tuple of arrays (one column
    each), a dict {name: array}, or an array/Tensor (one column). Default column names are
    column_0, column_1, ..."""
    _name = "NumpySlicesDataset"

    def __init__(self, data, column_names=None, num_samples=None, num_parallel_workers=1, shuffle=None,
                 sampler=None, num_shards=None, shard_id=None):
        if isinstance(data, dict):
            default, cols = [str(k) for k in data], list(data.values())
        elif isinstance(data, tuple):
            default, cols = None, list(data)
        else:
            default, cols = None, [data]
        names = _as_list(column_names, "NumpySlicesDataset: column_names") or default or \
            [f"column_{i}" for i in range(len(cols))]
        if len(names) != len(cols):
            raise ValueError(f"NumpySlicesDataset: {len(names)} column names for {len(cols)} columns")
        arrays = [_value_array(c, 0, n, self._name + " (whole column)") for c, n in zip(cols, names)]
        for a, n in zip(arrays, names):
            if a.ndim == 0:
                raise DatasetError(f"NumpySlicesDataset: column '{n}' is a scalar; it needs a first axis to slice")
            if a.shape[0] != arrays[0].shape[0]:
                raise DatasetError(f"NumpySlicesDataset: column '{n}' has {a.shape[0]} rows but column '{names[0]}' "
                                   f"has {arrays[0].shape[0]}")
        super().__init__(names, num_samples, shuffle, num_shards, shard_id, sampler)
        self._arrays = arrays
