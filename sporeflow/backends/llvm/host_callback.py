"""Calls from generated code back into Python: one C-callable symbol per purpose (collectives,
print), each call site naming its record by an integer id. An error inside the callback cannot
unwind through native frames: it is kept (`pending`) and the executable raises it when the
native call returns (`raise_pending`)."""
from __future__ import annotations

import ctypes
from typing import Callable, Hashable

import numpy as np

from ...ir.types import TensorType

_PENDING: list[BaseException] = []


def view(ptr: int, t: TensorType) -> np.ndarray:
    """The storage array of a tensor of type t at address ptr (no copy)."""
    n = t.size * np.dtype(t.dtype.storage).itemsize
    if n == 0:
        return np.empty(t.shape, t.dtype.storage)
    return np.frombuffer((ctypes.c_uint8 * n).from_address(ptr), t.dtype.storage).reshape(t.shape)


def keep(e: BaseException) -> None:
    """Record an error raised inside a callback (re-raised by raise_pending)."""
    _PENDING.append(e)


def pending() -> bool:
    return bool(_PENDING)


def raise_pending() -> None:
    """Re-raise, in Python, the first error a callback met during the native call."""
    if _PENDING:
        e = _PENDING[0]
        _PENDING.clear()
        raise e


class HostCallback:
    """A symbol `name` the generated code calls with a record id first; `record(key, value)`
    gives a call site its id (one per distinct key)."""

    def __init__(self, name: str, ctype, fn: Callable):
        self.name, self._ctype, self._fn = name, ctype, fn
        self._c = None
        self.records: list = []
        self._ids: dict[Hashable, int] = {}

    def record(self, key: Hashable, value) -> int:
        if self._c is None:      # the symbol is registered with LLVM once, at the first call site
            import llvmlite.binding as llvm
            self._c = self._ctype(self._fn)
            llvm.add_symbol(self.name, ctypes.cast(self._c, ctypes.c_void_p).value)
        if key not in self._ids:
            self._ids[key] = len(self.records)
            self.records.append(value)
        return self._ids[key]
