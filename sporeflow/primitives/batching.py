"""vmap rules: shared factories (JAX's defvectorized / defbroadcasting / defreducer) and the
rules of the data-movement, linear-algebra and nn primitives.

Rule signature (registry.OpDef): `batch(args, dims, **attrs) -> (outputs, out_dims)`, where
dims[i] is the physical axis of args[i] that carries the batch, or None when args[i] is not
batched. The vmap pass only calls a rule when at least one input is batched. Rules emit `lax`
ops only, so a batched graph is an ordinary graph (vmap(vmap(f)), grad(vmap(f)) work).

Conventions: "logical" axes are the axes the op sees per example; "physical" axes include the
batch axis. Rules prefer to leave the batch axis where it is and only move it to the front when
an op's semantics need it (JAX's bdim_at_front).
"""
from __future__ import annotations

from typing import Callable, Sequence

from .common import lax
from ..core.batching import (axis_size, broadcast_batch, materialize, merge, moveaxis,  # noqa: F401
                             phys, reshape, split, transpose)


# ---- rule factories ----------------------------------------------------------------------
def unbatched(name: str) -> Callable:
    """Ops without tensor inputs (iota, constant) are never batched; the pass binds them as they
    are. The rule exists so that every primitive has one, and re-binds the op unchanged."""
    def rule(args, dims, **attrs):
        assert all(d is None for d in dims), f"{name}: has no batched inputs"
        outs = lax.multi(name, *args, **attrs)
        return outs, [None] * len(outs)
    rule.__name__ = f"batch_{name}"
    return rule


def vectorized(name: str) -> Callable:
    """Unary elementwise ops: the op applies to the batched value as it is."""
    def rule(args, dims, **attrs):
        return lax.multi(name, *args, **attrs), [dims[0]]
    rule.__name__ = f"batch_{name}"
    return rule


def broadcasting(name: str) -> Callable:
    """n-ary ops with numpy broadcasting. The batch axis of every batched operand must line up:
    when all batched operands share one axis and rank (and unbatched ones are short enough not
    to reach it) the op applies as is; otherwise batched operands move their batch axis to the
    front and lower-rank ones get size-1 axes after it, so numpy broadcasting aligns them."""
    def rule(args, dims, **attrs):
        ranks = [a.ndim - (d is not None) for a, d in zip(args, dims)]
        r = max(ranks)
        bdims = {d for d in dims if d is not None}
        if len(bdims) == 1:
            d0 = next(iter(bdims))
            if all(rk == r if d is not None else rk <= r - d0 for rk, d in zip(ranks, dims)):
                return lax.multi(name, *args, **attrs), [d0]
        new = []
        for a, d, rk in zip(args, dims, ranks):
            if d is not None:
                a = moveaxis(a, d, 0)
                a = reshape(a, (a.shape[0],) + (1,) * (r - rk) + tuple(a.shape[1:]))
            new.append(a)
        return lax.multi(name, *new, **attrs), [0]
    rule.__name__ = f"batch_{name}"
    return rule


def reducer(name: str) -> Callable:
    """Reductions over `axes`: shift the axes past the batch axis."""
    def rule(args, dims, axes, keepdims, **attrs):
        x, d = args[0], dims[0]
        paxes = tuple(sorted(phys(a, d) for a in axes))
        out = lax.multi(name, x, axes=paxes, keepdims=keepdims, **attrs)
        return out, [d if keepdims else d - sum(a < d for a in axes)]
    rule.__name__ = f"batch_{name}"
    return rule


def arg_reducer(name: str) -> Callable:
    """argmax/argmin over one `axis`."""
    def rule(args, dims, axis, keepdims):
        x, d = args[0], dims[0]
        out = lax.multi(name, x, axis=phys(axis, d), keepdims=keepdims)
        return out, [d if keepdims else d - (axis < d)]
    rule.__name__ = f"batch_{name}"
    return rule


def front_then(name: str, shift: Callable[[dict, int], dict]) -> Callable:
    """Move the (single) input's batch axis to the front and rewrite the attributes for the extra
    leading axis with `shift(attrs, size)`; the output is batched at 0."""
    def rule(args, dims, **attrs):
        x = moveaxis(args[0], dims[0], 0)
        return lax.multi(name, x, **shift(attrs, x.shape[0])), [0]
    rule.__name__ = f"batch_{name}"
    return rule


def insert_at(name: str, fields: dict) -> Callable:
    """Per-axis attribute tuples (slice, pad): insert an entry for the batch axis where it is.
    `fields` maps attribute name -> value for the batch axis (a callable gets the batch size)."""
    def rule(args, dims, **attrs):
        x, d = args[0], dims[0]
        new = dict(attrs)
        for f, v in fields.items():
            v = v(x.shape[d]) if callable(v) else v
            new[f] = tuple(attrs[f][:d]) + (v,) + tuple(attrs[f][d:])
        return lax.multi(name, x, **new), [d]
    rule.__name__ = f"batch_{name}"
    return rule


# ---- shape ops ----------------------------------------------------------------------------------
batch_reshape = front_then("reshape", lambda a, n: {"shape": (n,) + tuple(a["shape"])})


def batch_transpose(args, dims, perm):
    x, d = args[0], dims[0]
    return [lax.transpose(x, perm=(d,) + tuple(phys(p, d) for p in perm))], [0]


def batch_broadcast_to(args, dims, shape):
    x = moveaxis(args[0], dims[0], 0)
    n, src = x.shape[0], tuple(x.shape[1:])
    x = reshape(x, (n,) + (1,) * (len(shape) - len(src)) + src)
    return [lax.broadcast_to(x, shape=(n,) + tuple(shape))], [0]


batch_slice = insert_at("slice", {"start": 0, "limit": lambda n: n, "strides": 1})
batch_pad = insert_at("pad", {"lo": 0, "hi": 0, "interior": 0})


def batch_rev(args, dims, axes):
    return [lax.rev(args[0], axes=tuple(phys(a, dims[0]) for a in axes))], [dims[0]]


def batch_concatenate(args, dims, axis):
    n = axis_size(args, dims)
    xs = [materialize(a, d, n) for a, d in zip(args, dims)]
    return [lax.concatenate(*xs, axis=axis + 1)], [0]


def _flat_indices(x, idx, axis: int):
    """Both x and idx batched at 0: fold the batch into x's `axis` so that one `take` along
    axis 0 of the folded x gathers per example. Returns (x folded to [B*A, rest...], offset
    indices [B, I...]). Indices are clipped per example first (take clips into range)."""
    n, a = x.shape[0], x.shape[axis + 1]
    xf = merge(moveaxis(x, axis + 1, 1), 0)
    it = idx.dtype
    idx = lax.maximum(lax.minimum(idx, lax.full(idx.shape, max(a - 1, 0), it)), lax.full(idx.shape, 0, it))
    off = lax.mul(lax.iota(shape=(n,) + (1,) * (idx.ndim - 1), axis=0, dtype=it),
                  lax.full((n,) + (1,) * (idx.ndim - 1), a, it))
    return xf, lax.add(idx, lax.broadcast_to(off, shape=tuple(idx.shape)))


def batch_take(args, dims, axis):
    (x, idx), (dx, di) = args, dims
    if di is None:                                    # only x: gather along the shifted axis
        x = moveaxis(x, dx, 0)
        return [lax.take(x, idx, axis=axis + 1)], [0]
    if dx is None:                                    # only idx: its batch axis passes through
        return [lax.take(x, idx, axis=axis)], [axis + di]
    x, idx = moveaxis(x, dx, 0), moveaxis(idx, di, 0)
    xf, fi = _flat_indices(x, idx, axis)
    out = lax.take(xf, fi, axis=0)                    # [B, I..., pre..., post...]
    ni = idx.ndim - 1
    perm = (0,) + tuple(range(1 + ni, 1 + ni + axis)) + tuple(range(1, 1 + ni)) + \
        tuple(range(1 + ni + axis, out.ndim))
    return [transpose(out, perm)], [0]


def batch_scatter_add(args, dims, axis):
    (x, idx, upd), (dx, di, du) = args, dims
    n = axis_size(args, dims)
    x, upd = materialize(x, dx, n), materialize(upd, du, n)
    if di is None:                                    # shared indices: scatter along axis + 1
        return [lax.scatter_add(x, idx, upd, axis=axis + 1)], [0]
    idx = moveaxis(idx, di, 0)
    xf, fi = _flat_indices(x, idx, axis)
    ni = idx.ndim - 1                                 # upd [B, pre, I, post] -> [B, I, pre, post]
    perm = (0,) + tuple(range(1 + axis, 1 + axis + ni)) + tuple(range(1, 1 + axis)) + \
        tuple(range(1 + axis + ni, upd.ndim))
    out = lax.scatter_add(xf, fi, transpose(upd, perm), axis=0)   # [B*A, pre, post]
    out = split(out, 0, n)                                        # [B, A, pre, post]
    return [moveaxis(out, 1, axis + 1)], [0]


# ---- linear algebra and nn --------------------------------------------------------------------
def batch_matmul(args, dims, transpose_a, transpose_b):
    """Both batched: a leading batch dim on each. One batched: fold the batch into that operand's
    free axis (rows of a, columns of b) so the op stays one GEMM, e.g. per-example x @ W."""
    (a, b), (da, db) = args, dims
    if da is not None and db is not None:
        a, b = moveaxis(a, da, 0), moveaxis(b, db, 0)
        k = a.shape[-2] if transpose_a else a.shape[-1]
        if k == 1 and a.dtype is b.dtype:   # per-example outer products (per-sample weight grads):
            m = a.shape[-1] if transpose_a else a.shape[-2]   # a broadcast multiply, not B GEMMs of K=1
            n = b.shape[-2] if transpose_b else b.shape[-1]
            col = reshape(a, tuple(a.shape[:-2]) + (m, 1))
            row = reshape(b, tuple(b.shape[:-2]) + (1, n))
            return [lax.mul(col, row)], [0]
        return [lax.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)], [0]
    r = (a.ndim if da is None else a.ndim - 1)
    if da is not None:
        free = r - 1 if transpose_a else r - 2
        n = a.shape[da]
        a = merge(moveaxis(a, da, free), free)
        out = lax.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)
        return [split(out, r - 2, n)], [r - 2]
    free = r - 2 if transpose_b else r - 1
    n = b.shape[db]
    b = merge(moveaxis(b, db, free), free)
    out = lax.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)
    return [split(out, r - 1, n)], [r - 1]


def batch_conv2d(args, dims, stride, padding, dilation, groups):
    """x batched: fold into N. w batched: fold into the output channels (group-major, so
    `groups` is unchanged and x is not copied). Both: fold into channels, groups * B."""
    (x, w), (dx, dw) = args, dims
    attrs = dict(stride=stride, padding=padding, dilation=dilation)
    if dw is None:
        x = moveaxis(x, dx, 0)
        n = x.shape[0]
        out = lax.conv2d(merge(x, 0), w, groups=groups, **attrs)
        return [split(out, 0, n)], [0]
    w = moveaxis(w, dw, 0)
    n, o = w.shape[0], w.shape[1]
    if dx is None:
        g = groups                                    # w [B, O, ...] -> [g, B, O/g, ...] -> [g*B*O/g, ...]
        wg = reshape(w, (n, g, o // g) + tuple(w.shape[2:]))
        wg = reshape(transpose(wg, (1, 0) + tuple(range(2, wg.ndim))), (n * o,) + tuple(w.shape[2:]))
        out = lax.conv2d(x, wg, groups=g, **attrs)    # [N, g*B*O/g, Ho, Wo]
        s = out.shape
        out = reshape(out, (s[0], g, n, o // g) + tuple(s[2:]))
        out = reshape(transpose(out, (0, 2, 1, 3, 4, 5)), (s[0], n, o) + tuple(s[2:]))
        return [out], [1]
    x = moveaxis(x, dx, 1)                            # [N, B, C, H, W] -> [N, B*C, H, W]
    out = lax.conv2d(merge(x, 1), merge(w, 0), groups=groups * n, **attrs)
    return [split(out, 1, n)], [1]


def pool(name: str) -> Callable:
    """Pooling and its gradient: fold the batch into N (unbatched operands broadcast first)."""
    def rule(args, dims, **attrs):
        n = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
        out = lax.multi(name, *[merge(materialize(a, d, n), 0) for a, d in zip(args, dims)], **attrs)[0]
        return [split(out, 0, n)], [0]
    rule.__name__ = f"batch_{name}"
    return rule
