"""SequentialCell and CellList. Children are named by index ('0', '1', ...), so their parameters
are '0.weight', '1.bias', as in MindSpore."""
from __future__ import annotations

from collections import OrderedDict

from ...cell import Cell


def _view(cls, items) -> Cell:
    """A container over existing cells that leaves their parameter names alone (slicing must not
    rename the parameters of the cells it shares)."""
    obj = cls.__new__(cls)
    Cell.__init__(obj, auto_prefix=False)
    for name, c in items:
        setattr(obj, name, c)
    return obj


class SequentialCell(Cell):
    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            items = list(args[0].items())
        elif len(args) == 1 and isinstance(args[0], (list, tuple)):
            items = [(str(i), c) for i, c in enumerate(args[0])]
        else:
            items = [(str(i), c) for i, c in enumerate(args)]
        for name, c in items:
            if not isinstance(c, Cell):
                raise TypeError(f"SequentialCell: item {name!r} is a {type(c).__name__}, not a Cell")
            setattr(self, name, c)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return _view(SequentialCell, list(self._cells.items())[i])
        return list(self._cells.values())[i]

    def __len__(self) -> int:
        return len(self._cells)

    def __iter__(self):
        return iter(self._cells.values())

    def append(self, cell: Cell) -> "SequentialCell":
        setattr(self, str(len(self._cells)), cell)
        return self

    def construct(self, x):
        for c in self._cells.values():
            x = c(x)
        return x


class CellList(Cell):
    def __init__(self, *args):
        super().__init__()
        cells = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple)) else args
        for c in cells:
            self.append(c)

    def append(self, cell: Cell) -> "CellList":
        if not isinstance(cell, Cell):
            raise TypeError(f"CellList: can only hold Cells, got {type(cell).__name__}")
        setattr(self, str(len(self._cells)), cell)
        return self

    def extend(self, cells) -> "CellList":
        for c in cells:
            self.append(c)
        return self

    def insert(self, index: int, cell: Cell) -> None:
        raise NotImplementedError("CellList.insert is not supported yet (parameter names are index-based); "
                                  "build a new CellList instead")

    def __getitem__(self, i):
        if isinstance(i, slice):
            return _view(CellList, list(self._cells.items())[i])
        return list(self._cells.values())[i]

    def __len__(self) -> int:
        return len(self._cells)

    def __iter__(self):
        return iter(self._cells.values())

    def construct(self, *inputs):
        raise NotImplementedError("CellList has no construct; iterate over it inside your Cell")
