"""Collective primitives over the ranks of a communication group (MindSpore's ops.AllReduce,
AllGather, Broadcast, ReduceScatter). They are ordinary IR nodes, so they compile into the
train step; executing one talks to the other processes through ir/comm.py (MPI via mpi4py).

Each rank runs the same graph; a node's result depends on every rank's input. Autodiff treats
the loss as the sum of every rank's loss (data parallelism), which gives MindSpore's rules:
the grad of all_reduce(sum) is all_reduce(sum) of the cotangents, all_gather and
reduce_scatter(sum) are each other's transposes, and broadcast's grad is the all-reduced
cotangent on the root (zero elsewhere). Attributes: `group` (the group name, resolved at trace
time so the IR is explicit), `op` ('sum'|'max'|'min'|'prod'), `root`.
"""
from __future__ import annotations

from ..errors import NoRuleError
from ..ir import comm
from ..ir.registry import Amp, Kind, def_op
from ..ir.types import TensorType
from .ad_util import zeros_if_none
from .batching import moveaxis
from .common import check_allowed, check_arity, fail, lax


def _group_size(attrs) -> int:
    if not comm.initialized():
        fail("the communication world is not initialised; call sporeflow.communication.init() first")
    return comm.size(attrs["group"])


def _check_op(attrs, ts) -> None:
    if attrs["op"] not in comm.REDUCE_OPS:
        fail(f"op must be one of {comm.REDUCE_OPS}, got {attrs['op']!r}", ts)


# ---- all_reduce -------------------------------------------------------------------------------
def _all_reduce_infer(ts, attrs):
    check_arity(ts, 1)
    check_allowed(ts, "any")
    _check_op(attrs, ts)
    _group_size(attrs)
    return ts[0]


def _ar_sum(x, group):
    return lax.all_reduce(x, op="sum", group=group)


def _extremum_mask(x, y):
    return lax.cast(lax.eq(x, y), dtype=x.dtype)


def _all_reduce_vjp(ins, outs, douts, op, group):
    (x,), (y,), (d,) = ins, outs, douts
    if d is None:
        return [None]
    g = _ar_sum(d, group)
    if op == "sum":
        return [g]
    if op in ("max", "min"):   # the cotangent flows to the rank(s) holding the extremum
        return [lax.mul(g, _extremum_mask(x, y))]
    return [lax.div(lax.mul(g, y), x)]          # prod: d(prod)/dx_r = prod / x_r


def _all_reduce_jvp(primals, tangents, op, group):
    (x,), (t,) = primals, tangents
    y = lax.all_reduce(x, op=op, group=group)
    if t is None:
        return [y], [None]
    if op == "sum":
        return [y], [_ar_sum(t, group)]
    if op in ("max", "min"):   # ties share the tangent equally
        m = _extremum_mask(x, y)
        return [y], [lax.div(_ar_sum(lax.mul(t, m), group), _ar_sum(m, group))]
    return [y], [lax.mul(y, _ar_sum(lax.div(t, x), group))]


def _elementwise_batch(name):
    def batch(args, dims, **attrs):   # elementwise across ranks: any batch axis stays where it is
        return [lax.multi(name, args[0], **attrs)[0]], [dims[0]]
    return batch


all_reduce = def_op(
    "all_reduce", infer=_all_reduce_infer, impl=lambda x, op, group: comm.all_reduce(x, op, group),
    kind=Kind.OPAQUE, amp=Amp.FOLLOW, attr_names=("op", "group"), compute_in_f32=True, pure=False,
    vjp=_all_reduce_vjp, jvp=_all_reduce_jvp, batch=_elementwise_batch("all_reduce"),
    doc="elementwise reduction (sum/max/min/prod) of x over every rank of the group; every rank gets it")


# ---- all_gather -------------------------------------------------------------------------------
def _all_gather_infer(ts, attrs):
    check_arity(ts, 1)
    if ts[0].ndim == 0:
        fail("needs a tensor of rank >= 1 (it concatenates along axis 0)", ts)
    n = _group_size(attrs)
    return TensorType((ts[0].shape[0] * n,) + ts[0].shape[1:], ts[0].dtype)


def _all_gather_vjp(ins, outs, douts, group):
    d = douts[0]
    return [None if d is None else lax.reduce_scatter(d, op="sum", group=group)]


def _all_gather_jvp(primals, tangents, group):
    y = lax.all_gather(primals[0], group=group)
    return [y], [None if tangents[0] is None else lax.all_gather(tangents[0], group=group)]


def _axis0_batch(name):
    """all_gather / reduce_scatter act on axis 0: keep the batch axis off it (at 1)."""
    def batch(args, dims, **attrs):
        x, d = args[0], dims[0]
        if d == 0:
            x, d = moveaxis(x, 0, 1), 1
        return [lax.multi(name, x, **attrs)[0]], [d]
    return batch


all_gather = def_op(
    "all_gather", infer=_all_gather_infer, impl=lambda x, group: comm.all_gather(x, group),
    kind=Kind.OPAQUE, amp=Amp.FOLLOW, attr_names=("group",), compute_in_f32=False, pure=False,
    vjp=_all_gather_vjp, jvp=_all_gather_jvp, batch=_axis0_batch("all_gather"),
    doc="concatenation along axis 0 of x from every rank, in rank order")


# ---- reduce_scatter ---------------------------------------------------------------------------
def _reduce_scatter_infer(ts, attrs):
    check_arity(ts, 1)
    _check_op(attrs, ts)
    n = _group_size(attrs)
    if ts[0].ndim == 0 or ts[0].shape[0] % n:
        fail(f"axis 0 must divide evenly over the group's {n} ranks", ts)
    return TensorType((ts[0].shape[0] // n,) + ts[0].shape[1:], ts[0].dtype)


def _reduce_scatter_vjp(ins, outs, douts, op, group):
    if op != "sum":
        raise NoRuleError(f"reduce_scatter: no gradient for op={op!r} (only 'sum')")
    d = douts[0]
    return [None if d is None else lax.all_gather(d, group=group)]


def _reduce_scatter_jvp(primals, tangents, op, group):
    y = lax.reduce_scatter(primals[0], op=op, group=group)
    if tangents[0] is None:
        return [y], [None]
    if op != "sum":
        raise NoRuleError(f"reduce_scatter: no forward-mode rule for op={op!r} (only 'sum')")
    return [y], [lax.reduce_scatter(tangents[0], op="sum", group=group)]


reduce_scatter = def_op(
    "reduce_scatter", infer=_reduce_scatter_infer, impl=lambda x, op, group: comm.reduce_scatter(x, op, group),
    kind=Kind.OPAQUE, amp=Amp.FOLLOW, attr_names=("op", "group"), compute_in_f32=True, pure=False,
    vjp=_reduce_scatter_vjp, jvp=_reduce_scatter_jvp, batch=_axis0_batch("reduce_scatter"),
    doc="all_reduce, then rank r keeps block r of axis 0 (axis 0 split evenly over the ranks)")


# ---- broadcast --------------------------------------------------------------------------------
def _broadcast_infer(ts, attrs):
    check_arity(ts, 1)
    n = _group_size(attrs)
    if not 0 <= attrs["root"] < n:
        fail(f"root rank {attrs['root']} is not in the group's {n} ranks", ts)
    return ts[0]


def _broadcast_vjp(ins, outs, douts, root, group):
    d = douts[0]
    if d is None:
        return [None]
    g = _ar_sum(d, group)   # emitted on every rank (a mask, not a branch, keeps the collectives equal)
    return [lax.mul(g, lax.full((), 1 if comm.rank(group) == root else 0, g.dtype))]


def _broadcast_jvp(primals, tangents, root, group):
    y = lax.broadcast(primals[0], root=root, group=group)
    t = tangents[0]
    return [y], [None if t is None else lax.broadcast(zeros_if_none(t, primals[0]), root=root, group=group)]


broadcast = def_op(
    "broadcast", infer=_broadcast_infer, impl=lambda x, root, group: comm.broadcast(x, root, group),
    kind=Kind.OPAQUE, amp=Amp.FOLLOW, attr_names=("root", "group"), compute_in_f32=False, pure=False,
    vjp=_broadcast_vjp, jvp=_broadcast_jvp, batch=_elementwise_batch("broadcast"),
    doc="every rank gets the root rank's x")
