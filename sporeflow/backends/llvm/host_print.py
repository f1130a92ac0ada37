"""The print primitive in LLVM-compiled steps: the generated code calls out, at the node's place
in the step, to one C-callable callback (`sporeflow_print(id, ins)`, `ins` an array of pointers
to the printed tensors) that formats them as MindSpore does and writes them to sys.stdout (so
Python's redirections and pytest's capture see it); the next token (token + 1) is computed in
native code. A C printf would bypass sys.stdout and could not print bfloat16 or MindSpore's
layout. An error inside the callback cannot unwind through native frames: it is kept and the
executable raises it on return."""
from __future__ import annotations

import ctypes
import sys

import numpy as np

from ...ir.graph import Node
from ...ir.types import TensorType
from ...ir.dtypes import to_compute
from ...primitives.debug import format_parts

_CALLBACK_T = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p)
_SYMBOL = "sporeflow_print"
_CALLS: list[tuple] = []          # id -> (parts, printed types)
_IDS: dict[tuple, int] = {}
_PENDING: list[BaseException] = []
_callback = None


def _array(ptr: int, t: TensorType) -> np.ndarray:
    n = t.size * np.dtype(t.dtype.storage).itemsize
    if n == 0:
        return np.empty(t.shape, t.dtype.storage)
    raw = np.frombuffer((ctypes.c_uint8 * n).from_address(ptr), t.dtype.storage).reshape(t.shape)
    return to_compute(raw.copy(), t.dtype)


def _run(call_id: int, ins: int) -> None:
    parts, types = _CALLS[call_id]
    try:
        ptrs = (ctypes.c_void_p * max(len(types), 1)).from_address(ins)
        arrays = [_array(ptrs[k], t) for k, t in enumerate(types)]
        sys.stdout.write(format_parts(parts, arrays, [t.dtype for t in types]) + "\n")
        sys.stdout.flush()
    except BaseException as e:   # noqa: BLE001  (re-raised by raise_pending on return to Python)
        _PENDING.append(e)


def _ensure_symbol() -> None:
    global _callback
    if _callback is None:
        import llvmlite.binding as llvm
        _callback = _CALLBACK_T(_run)
        llvm.add_symbol(_SYMBOL, ctypes.cast(_callback, ctypes.c_void_p).value)


def raise_pending() -> None:
    """Re-raise, in Python, the first error a print met during the native call."""
    if _PENDING:
        e = _PENDING[0]
        _PENDING.clear()
        raise e


def lower_print(fx, node: Node, ins, outs) -> None:
    _ensure_symbol()
    types = tuple(v.type for v in node.inputs[1:])
    key = (tuple(node.attrs["parts"]), types)
    if key not in _IDS:
        _IDS[key] = len(_CALLS)
        _CALLS.append(key)
    b = fx.b
    b.module.declare(f"declare void @{_SYMBOL}(i64, ptr)")
    b.emit(f"call void @{_SYMBOL}(i64 {_IDS[key]}, ptr {fx.ptr_array(list(ins[1:]))})")
    token = b.load("i32", ins[0])
    b.store("i32", b.op(f"add i32 {token}, 1"), outs[0])


RULES = {"print": lower_print}
