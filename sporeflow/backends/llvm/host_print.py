"""The print primitive in LLVM-compiled steps: the generated code calls out, at the node's place
in the step, to one C-callable callback (`sporeflow_print(id, ins)`, `ins` an array of pointers
to the printed tensors) that formats them as MindSpore does and writes them to sys.stdout (so
Python's redirections and pytest's capture see it); the next token (token + 1) is computed in
native code. A C printf would bypass sys.stdout and could not print bfloat16 or MindSpore's
layout. The callback plumbing (symbol, record ids, errors kept until the native call returns) is
host_callback.py's."""
from __future__ import annotations

import ctypes
import sys

from ...ir.dtypes import to_compute
from ...ir.graph import Node
from ...primitives.debug import format_parts
from .host_callback import HostCallback, keep, view


def _run(call_id: int, ins: int) -> None:
    parts, types = _CALLBACK.records[call_id]
    try:
        ptrs = (ctypes.c_void_p * max(len(types), 1)).from_address(ins)
        arrays = [to_compute(view(ptrs[k], t).copy(), t.dtype) for k, t in enumerate(types)]
        sys.stdout.write(format_parts(parts, arrays, [t.dtype for t in types]) + "\n")
        sys.stdout.flush()
    except BaseException as e:   # noqa: BLE001  (re-raised by host_callback.raise_pending on return)
        keep(e)


_CALLBACK = HostCallback("sporeflow_print", ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p), _run)


def lower_print(fx, node: Node, ins, outs) -> None:
    key = (tuple(node.attrs["parts"]), tuple(v.type for v in node.inputs[1:]))
    call_id = _CALLBACK.record(key, key)
    b = fx.b
    b.module.declare(f"declare void @{_CALLBACK.name}(i64, ptr)")
    b.emit(f"call void @{_CALLBACK.name}(i64 {call_id}, ptr {fx.ptr_array(list(ins[1:]))})")
    token = b.load("i32", ins[0])
    b.store("i32", b.op(f"add i32 {token}, 1"), outs[0])


RULES = {"print": lower_print}
