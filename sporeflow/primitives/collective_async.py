"""The all-reduce split in two, so the reduction can run while other work computes.

`all_reduce_start(x)` starts the reduction of x over the group (MPI Iallreduce, in place in
its output buffer) and returns at once; `all_reduce_wait(buf)` blocks, with the communication
deadline, until it is complete and returns the reduced tensor. The value of the start's output
is all_reduce(x) once complete; only the wait may read it (passes/overlap.py makes the pair out
of an all_reduce and schedules them: the start right after its operand exists, the wait just
before the first reader). Their rules follow from that: the start has all_reduce's rules, the
wait is the identity.

Both are impure (a collective, never folded, merged or dropped). Half-precision and bool
all-reduces are not split (MPI has no float16 sum; bool is reduced as uint8 logic), so the
start sees only the dtypes it reduces in place.
"""
from __future__ import annotations

import numpy as np

from ..ir import comm
from ..ir.registry import Amp, Kind, def_op
from .collective import _all_reduce_infer, _all_reduce_jvp, _all_reduce_vjp, _elementwise_batch
from .common import check_arity, lax


def _start_impl(x, op, group):
    return comm.start_all_reduce(x, np.empty(x.shape, x.dtype), op, group)


def _start_jvp(primals, tangents, op, group):
    (y,), (t,) = _all_reduce_jvp(primals, tangents, op, group)
    return [y], [t]


all_reduce_start = def_op(
    "all_reduce_start", infer=_all_reduce_infer, impl=_start_impl,
    kind=Kind.OPAQUE, amp=Amp.FOLLOW, attr_names=("op", "group"), compute_in_f32=False, pure=False,
    vjp=_all_reduce_vjp, jvp=_start_jvp, batch=_elementwise_batch("all_reduce_start"),
    doc="start all_reduce(x) without waiting; its result may be read only by all_reduce_wait")


def _wait_infer(ts, attrs):
    check_arity(ts, 1)
    return ts[0]


def _wait_jvp(primals, tangents, op, group):
    return [lax.all_reduce_wait(primals[0], op=op, group=group)], [tangents[0]]


all_reduce_wait = def_op(
    "all_reduce_wait", infer=_wait_infer, impl=lambda buf, op, group: comm.wait_all_reduce(buf),
    kind=Kind.OPAQUE, amp=Amp.FOLLOW, attr_names=("op", "group"), compute_in_f32=False, pure=False,
    vjp=lambda ins, outs, douts, op, group: [douts[0]], jvp=_wait_jvp,
    batch=_elementwise_batch("all_reduce_wait"),
    doc="wait (with the communication deadline) for the all_reduce_start that produced buf; returns it")
