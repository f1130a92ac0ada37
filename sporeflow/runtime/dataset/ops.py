"""The nodes that transform rows: map (operations on columns) and batch (stacking rows).

Both have a fast path for the common shape `source -> map(deterministic ops)* -> batch`: when
the source holds arrays (NumpySlices, MNIST, CIFAR-10, digits) and every operation has a
`_batched` form (Rescale, Normalize, HWC2CHW, TypeCast, OneHot, ...), a batch is gathered with
one fancy index per column and each operation runs once on the whole batch. The result is
identical to the row-by-row path; on an error the batch is replayed row by row so the message
still names the row.
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import DatasetError
from . import config
from .engine import BatchInfo, Dataset, _as_list, _positive_int, rng_for, to_array

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

    def _apply(self, row: tuple, i: int) -> tuple:
        """One row through the operations; errors name row `i` and the input columns."""
        args = tuple(row[j] for j in self._in_idx)
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
        return tuple(kept[:self._pos] + out + kept[self._pos:])

    @property
    def _batchable(self) -> bool:
        """Every operation is deterministic and has a whole-batch form (`op._batched`)."""
        return all(getattr(op, "_batched", None) is not None for op in self.operations)

    def _apply_batch(self, batch: tuple) -> tuple:
        """A batch (leading axis = rows) through the operations' batched forms."""
        args = tuple(batch[j] for j in self._in_idx)
        for op in self.operations:
            res = op._batched(*args)
            args = res if isinstance(res, tuple) else (res,)
        if len(args) != len(self.output_columns):
            raise DatasetError("map: column count mismatch")  # the row replay reports it properly
        kept = [batch[j] for j in self._kept_idx]
        return tuple(kept[:self._pos] + [to_array(a) for a in args] + kept[self._pos:])

    def _rows(self, epoch, seed):
        rng = rng_for(seed, self._depth, epoch, 3)
        try:
            for i, row in enumerate(self.children[0]._rows(epoch, seed)):
                config._set_thread_rng(rng)  # per row: maps below this one install their own
                yield self._apply(row, i)
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

    def _fast_chain(self):
        """(array-backed source, [batchable maps]) when this batch can be gathered whole, else None."""
        maps, node = [], self.children[0]
        while isinstance(node, MapDataset) and node._batchable:
            maps.append(node)
            node = node.children[0]
        if isinstance(self.batch_size, int) and getattr(node, "_gather", None) is not None and \
                node._gather(np.arange(0)) is not None:
            return node, maps[::-1]
        return None

    def _gathered(self, epoch, seed, source, maps):
        """Fast path: one gather per column, each map's operations once per batch."""
        idx = source._indices(epoch, seed)
        bs = self.batch_size
        for nbatch, s in enumerate(range(0, len(idx), bs)):
            chunk = idx[s:s + bs]
            if len(chunk) < bs and self.drop_remainder:
                return
            batch = source._gather(chunk)
            if maps:
                try:
                    for m in maps:
                        batch = m._apply_batch(batch)
                except Exception:  # noqa: BLE001 (replayed row by row, which raises with the row named)
                    rows = []
                    for k, i in enumerate(chunk):
                        row = source._row(int(i))
                        for m in maps:
                            row = m._apply(row, s + k)
                        rows.append(row)
                    batch = self._stack(rows, s)
            if self.per_batch_map is not None:
                batch = self._apply_per_batch_map(batch, BatchInfo(nbatch, epoch))
            yield batch

    def _rows(self, epoch, seed):
        fast = self._fast_chain()
        if fast is not None:
            yield from self._gathered(epoch, seed, *fast)
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


