"""Nodes that reorder, repeat, cut or combine rows without changing them: shuffle, repeat, take,
skip, project, rename, zip, concat."""
from __future__ import annotations

from .engine import Dataset, _as_list, _positive_int, rng_for


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

