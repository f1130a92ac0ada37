"""The dataset pipeline: a tree of Dataset nodes, each a lazy generator of rows.

A row is a tuple of numpy arrays, one per column. `node._rows(epoch, seed)` yields one pass;
every random choice (source shuffle, shuffle buffer, random augmentations in map) draws from a
generator keyed by (seed, the node's depth in the pipeline, epoch), so a pipeline is
reproducible for a given seed and every epoch is shuffled differently. The epoch index comes
from the dataset being iterated: each epoch a consumer starts advances it (set_epoch resets it,
e.g. to resume training at an epoch with bit-identical data order).

Iteration runs in a background thread that prefetches into a bounded queue (iterator.py).
"""
from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import numpy as np

from ...errors import DatasetError
from . import config

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
    from ...frontend.tensor import Tensor
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, Tensor):
        return x.asnumpy()
    return np.asarray(x)


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
        and ignored: the pipeline runs in one background thread."""
        return MapDataset(self, operations, input_columns, output_columns)

    def batch(self, batch_size, drop_remainder: bool = False, num_parallel_workers=None, per_batch_map=None,
              input_columns=None, output_columns=None, pad_info=None, **kwargs) -> "Dataset":
        """Stack `batch_size` consecutive rows per column (np.stack); every row of a column must
        have the same shape, else DatasetError names the row, the column and both shapes."""
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
        from .iterator import PipelineIterator
        return PipelineIterator(self, _as_list(columns, "columns"), num_epochs, output_numpy, as_dict=False)

    def create_dict_iterator(self, num_epochs: int = -1, output_numpy: bool = False, do_copy: bool = False):
        """As create_tuple_iterator, yielding {column name: value}."""
        from .iterator import PipelineIterator
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


# ------------------------------------------------------------------------------------------------
# one-child operations
# ------------------------------------------------------------------------------------------------
def _op_name(op) -> str:
    return getattr(op, "__name__", None) or type(op).__name__


class MapDataset(Dataset):
    def __init__(self, child: Dataset, operations, input_columns, output_columns):
        super().__init__([child])
        ops = list(operations) if isinstance(operations, (list, tuple)) else [operations]
        if not ops:
            raise ValueError("map: operations is empty")
        for op in ops:
            if not callable(op):
                raise TypeError(f"map: operation {op!r} is not callable")
        self.operations = ops
        cols = child.get_col_names()
        self.input_columns = _as_list(input_columns, "input_columns") or cols[:1]
        for c in self.input_columns:
            if c not in cols:
                raise ValueError(f"map: input column '{c}' is not a column of the dataset; columns: {cols}")
        self.output_columns = _as_list(output_columns, "output_columns") or list(self.input_columns)
        self._in_idx = [cols.index(c) for c in self.input_columns]
        first = min(self._in_idx)
        kept = [c for i, c in enumerate(cols) if i not in self._in_idx]
        pos = sum(1 for i in range(first) if i not in self._in_idx)
        self._out_cols = kept[:pos] + self.output_columns + kept[pos:]
        if len(set(self._out_cols)) != len(self._out_cols):
            raise ValueError(f"map: output columns {self.output_columns} clash with the other columns {kept}")
        self._kept_idx = [i for i in range(len(cols)) if i not in self._in_idx]
        self._pos = pos

    def _col_names(self):
        return self._out_cols

    def _size(self):
        return self.children[0].get_dataset_size()

    def _rows(self, epoch, seed):
        rng = rng_for(seed, self._depth, epoch, 3)
        try:
            for i, row in enumerate(self.children[0]._rows(epoch, seed)):
                args = tuple(row[j] for j in self._in_idx)
                config._set_thread_rng(rng)  # per row: maps below this one install their own
                for op in self.operations:
                    try:
                        res = op(*args)
                    except DatasetError as e:
                        raise DatasetError(f"map: {_op_name(op)} failed on row {i}, column(s) {self.input_columns}: "
                                           f"{e}") from e
                    except Exception as e:
                        e.add_note(f"(sporeflow dataset: raised by map operation {_op_name(op)} on row {i}, "
                                   f"input columns {self.input_columns})")
                        raise
                    args = res if isinstance(res, tuple) else (res,)
                if len(args) != len(self.output_columns):
                    raise DatasetError(f"map: the operations returned {len(args)} column(s) on row {i} but "
                                       f"output_columns has {len(self.output_columns)}: {self.output_columns}")
                kept = [row[j] for j in self._kept_idx]
                out = [to_array(a) for a in args]
                yield tuple(kept[:self._pos] + out + kept[self._pos:])
        finally:
            config._set_thread_rng(None)


class BatchDataset(Dataset):
    def __init__(self, child, batch_size, drop_remainder, per_batch_map, input_columns, output_columns, pad_info):
        super().__init__([child])
        if pad_info is not None:
            raise NotImplementedError("batch(pad_info=...) is not supported by sporeflow; pad the rows in a map first")
        if not callable(batch_size):
            batch_size = _positive_int(batch_size, "batch: batch_size")
        self.batch_size = batch_size
        self.drop_remainder = bool(drop_remainder)
        self.per_batch_map = per_batch_map
        cols = child.get_col_names()
        self.input_columns = _as_list(input_columns, "input_columns")
        self.output_columns = _as_list(output_columns, "output_columns")
        if per_batch_map is not None and not callable(per_batch_map):
            raise TypeError("batch: per_batch_map must be callable")
        if self.input_columns:
            for c in self.input_columns:
                if c not in cols:
                    raise ValueError(f"batch: input column '{c}' is not a column of the dataset; columns: {cols}")
        self._cols = list(cols)
        if per_batch_map is not None and self.input_columns and self.output_columns:
            first = cols.index(self.input_columns[0])
            kept = [c for c in cols if c not in self.input_columns]
            pos = sum(1 for c in cols[:first] if c not in self.input_columns)
            self._cols = kept[:pos] + self.output_columns + kept[pos:]

    def _col_names(self):
        return self._cols

    def get_batch_size(self):
        return self.batch_size if isinstance(self.batch_size, int) else -1

    def _size(self):
        if callable(self.batch_size):
            return None
        n = self.children[0].get_dataset_size()
        if n < 0:
            return n
        return n // self.batch_size if self.drop_remainder else math.ceil(n / self.batch_size)

    def _stack(self, rows: list, start: int) -> tuple:
        names = self.children[0].get_col_names()
        out = []
        for j, name in enumerate(names):
            first = rows[0][j]
            for k, r in enumerate(rows):
                if r[j].shape != first.shape:
                    raise DatasetError(f"batch: column '{name}' of row {start + k} has shape {r[j].shape}, but row "
                                       f"{start} (the first of its batch) has {first.shape}; rows of a column must "
                                       "have one shape to be batched (resize or pad them in a map)")
                if r[j].dtype != first.dtype and r[j].dtype.kind != first.dtype.kind:
                    raise DatasetError(f"batch: column '{name}' of row {start + k} has dtype {r[j].dtype}, but row "
                                       f"{start} has {first.dtype}")
            out.append(np.stack([r[j] for r in rows]))
        return tuple(out)

    def _apply_per_batch_map(self, batch: tuple, info: BatchInfo) -> tuple:
        names = self.children[0].get_col_names()
        in_cols = self.input_columns or names
        idx = [names.index(c) for c in in_cols]
        res = self.per_batch_map(*[list(batch[i]) for i in idx], info)
        res = res if isinstance(res, tuple) else (res,)
        out_cols = self.output_columns or in_cols
        if len(res) != len(out_cols):
            raise DatasetError(f"batch: per_batch_map returned {len(res)} column(s), expected {len(out_cols)}: "
                               f"{out_cols}")
        res = [np.stack([to_array(x) for x in r]) if isinstance(r, list) else to_array(r) for r in res]
        if out_cols == in_cols and not self.output_columns:
            batch = list(batch)
            for i, r in zip(idx, res):
                batch[i] = r
            return tuple(batch)
        first = min(idx)
        kept = [batch[i] for i in range(len(names)) if i not in idx]
        pos = sum(1 for i in range(first) if i not in idx)
        return tuple(kept[:pos] + res + kept[pos:])

    def _gathered(self, epoch, seed):
        """Fast path for batch() directly on an array-backed source: one gather per column."""
        child = self.children[0]
        idx = child._indices(epoch, seed)
        bs = self.batch_size
        for nbatch, s in enumerate(range(0, len(idx), bs)):
            chunk = idx[s:s + bs]
            if len(chunk) < bs and self.drop_remainder:
                return
            batch = child._gather(chunk)
            if self.per_batch_map is not None:
                batch = self._apply_per_batch_map(batch, BatchInfo(nbatch, epoch))
            yield batch

    def _rows(self, epoch, seed):
        child = self.children[0]
        if isinstance(self.batch_size, int) and getattr(child, "_gather", None) is not None and \
                child._gather(np.arange(0)) is not None:
            yield from self._gathered(epoch, seed)
            return
        buf, start, nbatch = [], 0, 0
        size = self.batch_size if isinstance(self.batch_size, int) else self.batch_size(BatchInfo(0, epoch))
        for i, row in enumerate(self.children[0]._rows(epoch, seed)):
            buf.append(row)
            if len(buf) == size:
                yield self._finish(buf, start, nbatch, epoch)
                start, buf, nbatch = i + 1, [], nbatch + 1
                if callable(self.batch_size):
                    size = _positive_int(self.batch_size(BatchInfo(nbatch, epoch)), "batch: batch_size(BatchInfo)")
        if buf and not self.drop_remainder:
            yield self._finish(buf, start, nbatch, epoch)

    def _finish(self, rows, start, nbatch, epoch):
        batch = self._stack(rows, start)
        if self.per_batch_map is not None:
            batch = self._apply_per_batch_map(batch, BatchInfo(nbatch, epoch))
        return batch


class ShuffleDataset(Dataset):
    """Buffered shuffle: keep `buffer_size` rows, emit a random one, refill with the next row.
    A buffer as large as the dataset gives a full shuffle."""

    def __init__(self, child, buffer_size):
        super().__init__([child])
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 2:
            raise ValueError(f"shuffle: buffer_size must be an int larger than 1, got {buffer_size!r}")
        self.buffer_size = buffer_size

    def _col_names(self):
        return self.children[0].get_col_names()

    def _size(self):
        return self.children[0].get_dataset_size()

    def _rows(self, epoch, seed):
        rng = rng_for(seed, self._depth, epoch, 2)
        buf = []
        for row in self.children[0]._rows(epoch, seed):
            if len(buf) < self.buffer_size:
                buf.append(row)
                continue
            k = int(rng.integers(len(buf)))
            yield buf[k]
            buf[k] = row
        for k in rng.permutation(len(buf)):
            yield buf[k]


class RepeatDataset(Dataset):
    def __init__(self, child, count):
        super().__init__([child])
        self.count = -1 if count is None else _positive_int(count, "repeat: count", allow_minus_one=True)

    def _col_names(self):
        return self.children[0].get_col_names()

    def get_repeat_count(self):
        return self.count

    def _size(self):
        n = self.children[0].get_dataset_size()
        return -1 if self.count == -1 or n < 0 else n * self.count

    def _rows(self, epoch, seed):
        r = 0
        while self.count == -1 or r < self.count:
            # each repetition is its own pass of the child: a different shuffle per repetition
            sub = epoch * self.count + r if self.count > 0 else (epoch << 32) + r
            yield from self.children[0]._rows(sub, seed)
            r += 1


class TakeDataset(Dataset):
    def __init__(self, child, count):
        super().__init__([child])
        self.count = _positive_int(count, "take: count", allow_minus_one=True)

    def _col_names(self):
        return self.children[0].get_col_names()

    def _size(self):
        n = self.children[0].get_dataset_size()
        if self.count == -1:
            return n
        return self.count if n < 0 else min(n, self.count)

    def _rows(self, epoch, seed):
        if self.count == -1:
            yield from self.children[0]._rows(epoch, seed)
            return
        gen = self.children[0]._rows(epoch, seed)
        try:
            for i, row in enumerate(gen):
                yield row
                if i + 1 >= self.count:
                    return
        finally:
            gen.close()


class SkipDataset(Dataset):
    def __init__(self, child, count):
        super().__init__([child])
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"skip: count must be a non-negative int, got {count!r}")
        self.count = count

    def _col_names(self):
        return self.children[0].get_col_names()

    def _size(self):
        n = self.children[0].get_dataset_size()
        return n if n < 0 else max(0, n - self.count)

    def _rows(self, epoch, seed):
        for i, row in enumerate(self.children[0]._rows(epoch, seed)):
            if i >= self.count:
                yield row


class ProjectDataset(Dataset):
    def __init__(self, child, columns):
        super().__init__([child])
        self.columns = _as_list(columns, "project: columns")
        cols = child.get_col_names()
        for c in self.columns:
            if c not in cols:
                raise ValueError(f"project: column '{c}' is not a column of the dataset; columns: {cols}")
        self._idx = [cols.index(c) for c in self.columns]

    def _col_names(self):
        return self.columns

    def _size(self):
        return self.children[0].get_dataset_size()

    def _rows(self, epoch, seed):
        for row in self.children[0]._rows(epoch, seed):
            yield tuple(row[i] for i in self._idx)


class RenameDataset(Dataset):
    def __init__(self, child, input_columns, output_columns):
        super().__init__([child])
        ins, outs = _as_list(input_columns, "input_columns"), _as_list(output_columns, "output_columns")
        if len(ins) != len(outs):
            raise ValueError(f"rename: {len(ins)} input columns but {len(outs)} output columns")
        cols = child.get_col_names()
        for c in ins:
            if c not in cols:
                raise ValueError(f"rename: column '{c}' is not a column of the dataset; columns: {cols}")
        mapping = dict(zip(ins, outs))
        self._cols = [mapping.get(c, c) for c in cols]
        if len(set(self._cols)) != len(self._cols):
            raise ValueError(f"rename: the new column names {self._cols} are not unique")

    def _col_names(self):
        return self._cols

    def _size(self):
        return self.children[0].get_dataset_size()

    def _rows(self, epoch, seed):
        return self.children[0]._rows(epoch, seed)


class ZipDataset(Dataset):
    def __init__(self, datasets):
        for d in datasets:
            if not isinstance(d, Dataset):
                raise TypeError(f"zip: expected Datasets, got {type(d).__name__}")
        super().__init__(datasets)
        cols = [c for d in datasets for c in d.get_col_names()]
        if len(set(cols)) != len(cols):
            raise ValueError(f"zip: the datasets share column names {cols}; rename them first")
        self._cols = cols

    def _col_names(self):
        return self._cols

    def _size(self):
        sizes = [d.get_dataset_size() for d in self.children]
        finite = [s for s in sizes if s >= 0]
        return min(finite) if finite else -1

    def _rows(self, epoch, seed):
        gens = [d._rows(epoch, seed) for d in self.children]
        try:
            for rows in zip(*gens):
                yield tuple(a for r in rows for a in r)
        finally:
            for g in gens:
                g.close()


class ConcatDataset(Dataset):
    def __init__(self, datasets):
        for d in datasets:
            if not isinstance(d, Dataset):
                raise TypeError(f"concat: expected Datasets, got {type(d).__name__}")
        super().__init__(datasets)
        cols = datasets[0].get_col_names()
        for d in datasets[1:]:
            if d.get_col_names() != cols:
                raise ValueError(f"concat: column names differ: {cols} vs {d.get_col_names()}")
        self._cols = cols

    def _col_names(self):
        return self._cols

    def _size(self):
        sizes = [d.get_dataset_size() for d in self.children]
        return -1 if any(s < 0 for s in sizes) else sum(sizes)

    def _rows(self, epoch, seed):
        for d in self.children:
            yield from d._rows(epoch, seed)

