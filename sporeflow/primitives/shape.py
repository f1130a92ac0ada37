"""Shape primitives: reshape, transpose, broadcast, slice, pad, concatenate, rev, gather
(`take`) and its adjoint `scatter_add`, iota, constant. Indices are clipped into range
(as JAX's gather does) so no backend ever reads out of bounds."""
from __future__ import annotations

import numpy as np

from ..ir.dtypes import as_dtype
from ..ir.registry import Kind, NOT_DIFFERENTIABLE, def_op
from ..ir.types import TensorType
from .ad_util import linear_jvp, primal, zeros_if_none
from .common import check_allowed, check_arity, fail, lax
from . import batching as B


def _reshape_infer(ts, attrs):
    check_arity(ts, 1)
    shape = tuple(attrs["shape"])
    if any(d < 0 for d in shape) or int(np.prod(shape)) != ts[0].size:
        fail(f"cannot reshape to {shape}", ts)
    return TensorType(shape, ts[0].dtype)


reshape = def_op("reshape", infer=_reshape_infer, impl=lambda x, shape: np.reshape(x, shape),
                 kind=Kind.INJECTIVE, attr_names=("shape",), compute_in_f32=False,
                 vjp=lambda ins, outs, douts, shape: [lax.reshape(douts[0], shape=ins[0].shape)],
                 jvp=linear_jvp("reshape"), batch=B.batch_reshape)


def _transpose_infer(ts, attrs):
    check_arity(ts, 1)
    perm = tuple(attrs["perm"])
    if sorted(perm) != list(range(ts[0].ndim)):
        fail(f"perm {perm} is not a permutation of rank {ts[0].ndim}", ts)
    return TensorType(tuple(ts[0].shape[p] for p in perm), ts[0].dtype)


transpose = def_op("transpose", infer=_transpose_infer, impl=lambda x, perm: np.transpose(x, perm),
                   kind=Kind.INJECTIVE, attr_names=("perm",), compute_in_f32=False,
                   vjp=lambda ins, outs, douts, perm: [lax.transpose(douts[0], perm=tuple(np.argsort(perm)))],
                   jvp=linear_jvp("transpose"), batch=B.batch_transpose)


def _broadcast_infer(ts, attrs):
    check_arity(ts, 1)
    shape, src = tuple(attrs["shape"]), ts[0].shape
    if len(src) > len(shape) or min(shape, default=0) < 0 or any(s not in (1, d) for s, d in zip(src[::-1], shape[::-1])):
        fail(f"cannot broadcast to {shape}", ts)
    return TensorType(shape, ts[0].dtype)


broadcast_to = def_op("broadcast_to", infer=_broadcast_infer, impl=lambda x, shape: np.broadcast_to(x, shape),
                      kind=Kind.BROADCAST, attr_names=("shape",), compute_in_f32=False,
                      vjp=lambda ins, outs, douts, shape: [lax.sum_to_shape(douts[0], ins[0].shape)],
                      jvp=linear_jvp("broadcast_to"), batch=B.batch_broadcast_to)


def _slice_infer(ts, attrs):
    check_arity(ts, 1)
    start, limit, strides = attrs["start"], attrs["limit"], attrs["strides"]
    shp = ts[0].shape
    if not (len(start) == len(limit) == len(strides) == len(shp)):
        fail(f"start/limit/strides need {len(shp)} entries each", ts)
    out = []
    for s, l, st, d in zip(start, limit, strides, shp):
        if not (0 <= s <= l <= d) or st < 1:
            fail(f"bad slice start={start} limit={limit} strides={strides}", ts)
        out.append(-(-(l - s) // st))
    return TensorType(tuple(out), ts[0].dtype)


def _slice_vjp(ins, outs, douts, start, limit, strides):
    """The adjoint of a strided slice is a zero pad (interior padding undoes the stride)."""
    g, shp = douts[0], ins[0].shape
    if 0 in g.shape:
        return [lax.zeros_like(ins[0])]
    hi = [d - s - (n - 1) * st - 1 for d, s, n, st in zip(shp, start, g.shape, strides)]
    return [lax.pad(g, lo=tuple(start), hi=tuple(hi), interior=tuple(st - 1 for st in strides), value=0.0)]


slice_ = def_op("slice", infer=_slice_infer, vjp=_slice_vjp, jvp=linear_jvp("slice"),
                impl=lambda x, start, limit, strides: x[tuple(slice(s, l, st) for s, l, st in zip(start, limit, strides))],
                kind=Kind.INJECTIVE, attr_names=("start", "limit", "strides"), compute_in_f32=False,
                batch=B.batch_slice)


def _pad_infer(ts, attrs):
    check_arity(ts, 1)
    lo, hi, interior = attrs["lo"], attrs["hi"], attrs["interior"]
    shp = ts[0].shape
    if not (len(lo) == len(hi) == len(interior) == len(shp)) or min((*lo, *hi, *interior, 0)) < 0:
        fail(f"bad padding lo={lo} hi={hi} interior={interior}", ts)
    return TensorType(tuple(l + h + d + max(d - 1, 0) * i for l, h, i, d in zip(lo, hi, interior, shp)),
                      ts[0].dtype)


def _pad_impl(x, lo, hi, interior, value):
    out_shape = tuple(l + h + d + max(d - 1, 0) * i for l, h, i, d in zip(lo, hi, interior, x.shape))
    out = np.full(out_shape, value, dtype=x.dtype)
    out[tuple(slice(l, l + (d - 1) * (i + 1) + 1 if d else l, i + 1)
              for l, i, d in zip(lo, interior, x.shape))] = x
    return out


def _pad_vjp(ins, outs, douts, lo, hi, interior, value):
    """The adjoint of pad slices the padding away (the fill value is an attribute: no gradient)."""
    shp = ins[0].shape
    limit = tuple(l + (d - 1) * (i + 1) + 1 if d else l for l, i, d in zip(lo, interior, shp))
    return [lax.slice(douts[0], start=tuple(lo), limit=limit, strides=tuple(i + 1 for i in interior))]


pad = def_op("pad", infer=_pad_infer, impl=_pad_impl, kind=Kind.INJECTIVE, vjp=_pad_vjp,
             jvp=linear_jvp("pad", value=0.0),
             attr_names=("lo", "hi", "interior", "value"),
             doc="pad with a constant: lo/hi elements at each end and `interior` between elements", batch=B.batch_pad)


def _concat_infer(ts, attrs):
    if not ts:
        fail("needs at least one input")
    ax = attrs["axis"]
    r = ts[0].ndim
    if not 0 <= ax < r:
        fail(f"axis {ax} out of range for rank {r}", ts)
    for t in ts:
        if t.dtype is not ts[0].dtype or t.ndim != r or any(
                a != b for i, (a, b) in enumerate(zip(t.shape, ts[0].shape)) if i != ax):
            fail(f"inputs must agree in dtype and in every dim but axis {ax}", ts)
    shape = list(ts[0].shape)
    shape[ax] = sum(t.shape[ax] for t in ts)
    return TensorType(tuple(shape), ts[0].dtype)


def _concat_vjp(ins, outs, douts, axis):
    g, res, off = douts[0], [], 0
    for x in ins:
        start = tuple(off if i == axis else 0 for i in range(g.ndim))
        limit = tuple(off + x.shape[axis] if i == axis else d for i, d in enumerate(g.shape))
        res.append(lax.slice(g, start=start, limit=limit, strides=(1,) * g.ndim))
        off += x.shape[axis]
    return res


def _concat_jvp(primals, tangents, axis):
    out = primal("concatenate", primals, {"axis": axis})
    if all(t is None for t in tangents):
        return out, [None]
    return out, [lax.concatenate(*[zeros_if_none(t, p) for t, p in zip(tangents, primals)], axis=axis)]


concatenate = def_op("concatenate", infer=_concat_infer, impl=lambda *xs, axis: np.concatenate(xs, axis),
                     kind=Kind.INJECTIVE, attr_names=("axis",), compute_in_f32=False,
                     vjp=_concat_vjp, jvp=_concat_jvp, batch=B.batch_concatenate)


def _rev_infer(ts, attrs):
    check_arity(ts, 1)
    if any(not 0 <= a < ts[0].ndim for a in attrs["axes"]) or len(set(attrs["axes"])) != len(attrs["axes"]):
        fail(f"axes {attrs['axes']} must be distinct and in range", ts)
    return ts[0]


rev = def_op("rev", infer=_rev_infer, impl=lambda x, axes: np.flip(x, tuple(axes)) if axes else x,
             kind=Kind.INJECTIVE, attr_names=("axes",), compute_in_f32=False, doc="reverse along axes",
             vjp=lambda ins, outs, douts, axes: [lax.rev(douts[0], axes=axes)], jvp=linear_jvp("rev"),
             batch=B.batch_rev)


def _take_infer(ts, attrs):
    check_arity(ts, 2)
    check_allowed(ts[1:], "int")
    x, idx = ts
    ax = attrs["axis"]
    if not 0 <= ax < x.ndim:
        fail(f"axis {ax} out of range", ts)
    if x.shape[ax] == 0 and idx.size:
        fail(f"cannot gather from axis {ax} of size 0", ts)
    return TensorType(x.shape[:ax] + idx.shape + x.shape[ax + 1:], x.dtype)


take = def_op("take", infer=_take_infer, impl=lambda x, idx, axis: np.take(x, idx, axis=axis, mode="clip"),
              kind=Kind.INJECTIVE, attr_names=("axis",), compute_in_f32=False,
              vjp=lambda ins, outs, douts, axis: [
                  lax.scatter_add(lax.zeros_like(ins[0]), ins[1], douts[0], axis=axis), None],
              jvp=linear_jvp("take"),
              doc="gather x[..., idx, ...] along `axis`; indices clipped into range", batch=B.batch_take)


def _scatter_add_infer(ts, attrs):
    check_arity(ts, 3)
    check_allowed(ts[1:2], "int")
    x, idx, upd = ts
    ax = attrs["axis"]
    if not 0 <= ax < x.ndim:
        fail(f"axis {ax} out of range", ts)
    want = x.shape[:ax] + idx.shape + x.shape[ax + 1:]
    if x.shape[ax] == 0 and idx.size:
        fail(f"cannot scatter into axis {ax} of size 0", ts)
    if upd.shape != want or upd.dtype is not x.dtype:
        fail(f"updates must be {x.dtype.short}{list(want)}", ts)
    return x


def _scatter_add_impl(x, idx, upd, axis):
    out = np.array(x, copy=True)
    idx = np.clip(idx, 0, x.shape[axis] - 1)
    moved = np.moveaxis(out, axis, 0)
    u = np.moveaxis(upd.reshape(x.shape[:axis] + (idx.size,) + x.shape[axis + 1:]), axis, 0)
    np.add.at(moved, idx.reshape(-1), u)
    return out


scatter_add = def_op("scatter_add", infer=_scatter_add_infer, impl=_scatter_add_impl, kind=Kind.OPAQUE,
                     attr_names=("axis",), jvp=linear_jvp("scatter_add", (0, 2)),
                     vjp=lambda ins, outs, douts, axis: [douts[0], None, lax.take(douts[0], ins[1], axis=axis)],
                     doc="x with updates added at idx along axis (the adjoint of take)",
                     batch=B.batch_scatter_add)


def _iota_infer(ts, attrs):
    check_arity(ts, 0)
    shape = tuple(attrs["shape"])
    if not 0 <= attrs["axis"] < len(shape) or min(shape) < 0:
        fail(f"iota needs a non-negative axis < rank and dims >= 0, got shape={shape} axis={attrs['axis']}")
    return TensorType(shape, as_dtype(attrs["dtype"]))


def _iota_impl(shape, axis, dtype):
    shape = tuple(shape)
    r = np.arange(shape[axis]).reshape([-1 if i == axis else 1 for i in range(len(shape))])
    dt = as_dtype(dtype)
    return np.broadcast_to(r, shape).astype(np.float32 if dt.is_half else dt.storage)


iota = def_op("iota", infer=_iota_infer, impl=_iota_impl, kind=Kind.INJECTIVE, vjp=NOT_DIFFERENTIABLE,
              attr_names=("shape", "axis", "dtype"), doc="0, 1, 2, ... along `axis`, broadcast to `shape`",
              batch=B.unbatched("iota"))


def _const_infer(ts, attrs):
    check_arity(ts, 0)
    v = attrs["value"]
    return TensorType(v.array.shape, v.dtype)


constant = def_op("constant", infer=_const_infer, impl=lambda value: value.array, kind=Kind.INJECTIVE,
                  vjp=NOT_DIFFERENTIABLE, attr_names=("value",), compute_in_f32=False,
                  doc="a literal array (held in storage format)", batch=B.unbatched("constant"))
