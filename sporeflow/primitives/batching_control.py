"""vmap rules that build subgraphs: cond, while_loop, scan, and random draws from batched keys.

cond with a batched predicate becomes a `select` between both branches, each run on the whole
batch (as JAX does): both branches execute, so an expensive or failing branch costs or fails
for every example, and a NaN/Inf produced by the branch not taken can still reach gradients
through the select (the usual `where` gradient caveat). With an unbatched predicate the cond
stays a cond whose branches are batched.

while_loop with a batched predicate runs while *any* example's predicate holds; examples
that are done keep their carry (each update goes through a select on their own predicate).
"""
from __future__ import annotations

from ..ir.dtypes import int32
from ..ir.types import TensorType
from .batching import axis_size, materialize, moveaxis, reshape
from .common import lax
from ..core.trace import inline
from ..passes import vmap as V


def _vmap():
    return V


def _canon(args, dims, size, want):
    """Arguments with their batch axis at 0 where `want` is not None (broadcast if needed)."""
    return [materialize(a, d, size, 0) if w is not None else a for a, d, w in zip(args, dims, want)]


def _fixpoint(graph, fixed_dims: list, carry_dims: list, size: int, n_carry: int):
    """Loop carries (the graph's first inputs, then `fixed_dims`): a carry is batched if it enters
    batched or the body makes it batched. Iterate until the set of batched carries is stable."""
    V = _vmap()
    dims = list(carry_dims)
    while True:
        _, out = V.batch_graph(graph, dims + fixed_dims, size)
        new = [0 if (d is not None or o is not None) else None for d, o in zip(dims, out[:n_carry])]
        if new == dims:
            return dims, out
        dims = new


# ---- random ---------------------------------------------------------------------------------
def random(name: str):
    """A batched key gives each example its own bits: a scan over the keys (the draw is a pure
    function of (key, index), so per-example draws are exactly what a loop would produce)."""
    def rule(args, dims, **attrs):
        V = _vmap()
        keys = moveaxis(args[0], dims[0], 0)
        n = keys.shape[0]
        body = V.trace_graph(lambda k: lax.multi(name, k, **attrs), [TensorType((2,), keys.dtype)],
                             f"{name}_per_key")
        return lax.multi("scan", keys, body=body, num_carry=0, length=n, reverse=False), [0]
    rule.__name__ = f"batch_{name}"
    return rule


# ---- cond ------------------------------------------------------------------------------------
def batch_cond(args, dims, then_branch, else_branch):
    V = _vmap()
    size = axis_size(args, dims)
    pred, ops, pd, odims = args[0], list(args[1:]), dims[0], list(dims[1:])
    gt, dt = V.batch_graph(then_branch, odims, size)
    ge, de = V.batch_graph(else_branch, odims, size)
    if pd is None:
        if dt != de:   # an output batched in one branch only: batch it in both
            want = [0 if (a is not None or b is not None) else None for a, b in zip(dt, de)]
            gt, dt = V.batch_graph(then_branch, odims, size, want)
            ge, de = V.batch_graph(else_branch, odims, size, want)
        return lax.multi("cond", pred, *ops, then_branch=gt, else_branch=ge), dt
    t_outs, e_outs = inline(gt, ops), inline(ge, ops)
    p = moveaxis(pred, pd, 0)
    outs = []
    for t, e, a, b in zip(t_outs, e_outs, dt, de):
        t, e = materialize(t, a, size), materialize(e, b, size)
        outs.append(lax.select(reshape(p, (size,) + (1,) * (t.ndim - 1)), t, e))
    return outs, [0] * len(outs)


# ---- while_loop ---------------------------------------------------------------------------------
def batch_while(args, dims, cond_graph, body_graph):
    V = _vmap()
    size, n = axis_size(args, dims), len(args)
    cdims, _ = _fixpoint(body_graph, [], [0 if d is not None else None for d in dims], size, n)
    _, pdims = V.batch_graph(cond_graph, cdims, size)
    if pdims[0] is None:      # every example takes the same number of steps
        carry = _canon(args, dims, size, cdims)
        cg, _ = V.batch_graph(cond_graph, cdims, size)
        bg, _ = V.batch_graph(body_graph, cdims, size, cdims)
        return lax.multi("while_loop", *carry, cond_graph=cg, body_graph=bg), cdims
    # batched predicate: every carry batched; run while any example continues, mask the updates
    carry = _canon(args, dims, size, [0] * n)
    cg, _ = V.batch_graph(cond_graph, [0] * n, size, [0])
    bg, _ = V.batch_graph(body_graph, [0] * n, size, [0] * n)
    types = [c._type for c in carry]

    def any_cond(*xs):
        p = lax.convert(inline(cg, xs)[0], int32)
        return [lax.gt(lax.reduce_max(p, axes=(0,), keepdims=False), lax.full((), 0, int32))]

    def masked_body(*xs):
        p = inline(cg, xs)[0]
        new = inline(bg, xs)
        return [lax.select(reshape(p, (size,) + (1,) * (x.ndim - 1)), nx, x) for nx, x in zip(new, xs)]
    cond2 = V.trace_graph(any_cond, types, "cond_graph")
    body2 = V.trace_graph(masked_body, types, "body_graph")
    return lax.multi("while_loop", *carry, cond_graph=cond2, body_graph=body2), [0] * n


# ---- scan ------------------------------------------------------------------------------------------
def batch_scan(args, dims, body, num_carry, length, reverse):
    """Batched xs move their batch axis to 1 (so each step's slice is batched at 0); carries are
    batched at 0 when they enter batched or become batched; stacked ys are batched at 1."""
    V = _vmap()
    size, nc = axis_size(args, dims), num_carry
    carry, xs, cd, xd = args[:nc], args[nc:], dims[:nc], dims[nc:]
    xs = [x if d is None else moveaxis(x, d, 1) for x, d in zip(xs, xd)]
    x_step = [None if d is None else 0 for d in xd]
    cdims, out = _fixpoint(body, x_step, [0 if d is not None else None for d in cd], size, nc)
    ydims = [None if d is None else 0 for d in out[nc:]]
    g, _ = V.batch_graph(body, cdims + x_step, size, cdims + ydims)
    carry = _canon(carry, cd, size, cdims)
    outs = lax.multi("scan", *carry, *xs, body=g, num_carry=nc, length=length, reverse=reverse)
    return outs, cdims + [None if d is None else 1 for d in ydims]


# ---- custom_vjp -------------------------------------------------------------------------------------
def batch_custom_vjp(args, dims, fwd, bwd):
    """Batch the forward and the user's backward graph alike. Every operand is made batched (at
    axis 0): the backward graph takes operands, outputs and cotangents, and whether a later
    grad's cotangents are batched is not known here, so all of its inputs are taken batched."""
    V = _vmap()
    size = axis_size(args, dims)
    ops = [materialize(a, d, size) for a, d in zip(args, dims)]
    fb, _ = V.batch_graph(fwd, [0] * len(args), size, [0] * len(fwd.outputs))
    bb, _ = V.batch_graph(bwd, [0] * len(bwd.inputs), size, [0] * len(bwd.outputs))
    return lax.multi("custom_vjp", *ops, fwd=fb, bwd=bb), [0] * len(fwd.outputs)
