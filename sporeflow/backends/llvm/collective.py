"""Collectives in LLVM-compiled steps: the generated code calls out, at the node's place in the
step, to one C-callable callback (`sporeflow_collective(id, in, out)`, through host_callback.py) that runs the node's
reference implementation (ir/comm.py: non-blocking MPI with a deadline) on the buffers.

Why a callback rather than MPI's C API from the IR: the MPI handle types differ between MPI
ABIs (int in MPICH, pointers in Open MPI) and a timeout needs MPI_Test polling with a clock;
the callback reuses the interpreter's exact code path, so both backends give the same bits and
the same CommTimeoutError. The split all-reduce works on the step's own buffers: the start
copies its operand into its output slot and starts MPI there in place (the slot stays live
until the wait node reads it, so nothing else is planned into it); the wait completes it and
copies it into the wait's output. Its cost is one Python call per collective (~10 us), small beside a
bucket's all-reduce. An error inside the callback cannot unwind through native frames: it is
kept, later collectives of that call are skipped, and the executable raises it on return.
"""
from __future__ import annotations

import ctypes

from ...ir import comm
from ...ir.graph import Node
from .host_callback import HostCallback, keep, pending, view

# ops that work on the step's buffers themselves (the operand is not copied first)
_ON_BUFFERS = {
    "all_reduce_start": lambda src, dst, a: comm.start_all_reduce(src, dst, a["op"], a["group"]),
    "all_reduce_wait": lambda src, dst, a: comm.wait_all_reduce(src, dst),
}


def _run(call_id: int, src: int, dst: int) -> int:
    if pending():      # an earlier collective of this call failed: skip the rest
        return 1
    opdef, attrs, tin, tout = _CALLBACK.records[call_id]
    try:
        on_buffers = _ON_BUFFERS.get(opdef.name)
        if on_buffers is not None:
            on_buffers(view(src, tin), view(dst, tout), attrs)
        else:
            res = opdef.run([view(src, tin).copy()], attrs, [tin], [tout])[0]
            view(dst, tout)[...] = res
    except BaseException as e:   # noqa: BLE001  (re-raised by host_callback.raise_pending on return)
        keep(e)
        return 1
    return 0


_CALLBACK = HostCallback("sporeflow_collective",
                         ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p), _run)


def lower_collective(fx, node: Node, ins, outs) -> None:
    tin, tout = node.inputs[0].type, node.outputs[0].type
    call_id = _CALLBACK.record((node.op, tuple(sorted(node.attrs.items())), tin, tout),
                               (node.opdef, dict(node.attrs), tin, tout))
    b = fx.b
    b.module.declare(f"declare i32 @{_CALLBACK.name}(i64, ptr, ptr)")
    b.op(f"call i32 @{_CALLBACK.name}(i64 {call_id}, ptr {ins[0]}, ptr {outs[0]})")


RULES = {name: lower_collective for name in ("all_reduce", "all_gather", "broadcast", "reduce_scatter",
                                             "all_reduce_start", "all_reduce_wait")}
