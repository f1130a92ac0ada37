"""Shape primitives: reshape, transpose, broadcast, slice, pad, concatenate, rev, gather
(`take`) and its adjoint `scatter_add`, iota, constant. Indices are clipped into range
(as JAX's gather does) so no backend ever reads out of bounds."""
from __future__ import annotations

import numpy as np

from ..dtypes import as_dtype
from ..registry import Kind, NOT_DIFFERENTIABLE, def_op
from ..types import TensorType
from .common import check_allowed, check_arity, fail, normalize_axis
from . import batching as B


def _reshape_infer(ts, attrs):
    check_arity(ts, 1)
    shape = tuple(attrs["shape"])
    if any(d < 0 for d in shape) or int(np.prod(shape)) != ts[0].size:
        fail(f"cannot reshape to {shape}", ts)
    return TensorType(shape, ts[0].dtype)


reshape = def_op("reshape", infer=_reshape_infer, impl=lambda x, shape: np.reshape(x, shape),
                 kind=Kind.INJECTIVE, attr_names=("shape",), compute_in_f32=False, batch=B.batch_reshape)


def _transpose_infer(ts, attrs):
    check_arity(ts, 1)
    perm = tuple(attrs["perm"])
    if sorted(perm) != list(range(ts[0].ndim)):
        fail(f"perm {perm} is not a permutation of rank {ts[0].ndim}", ts)
    return TensorType(tuple(ts[0].shape[p] for p in perm), ts[0].dtype)


transpose = def_op("transpose", infer=_transpose_infer, impl=lambda x, perm: np.transpose(x, perm),
                   kind=Kind.INJECTIVE, attr_names=("perm",), compute_in_f32=False, batch=B.batch_transpose)


def _broadcast_infer(ts, attrs):
    check_arity(ts, 1)
    shape, src = tuple(attrs["shape"]), ts[0].shape
    if len(src) > len(shape) or any(s not in (1, d) for s, d in zip(src[::-1], shape[::-1])):
        fail(f"cannot broadcast to {shape}", ts)
    return TensorType(shape, ts[0].dtype)


broadcast_to = def_op("broadcast_to", infer=_broadcast_infer, impl=lambda x, shape: np.broadcast_to(x, shape),
                      kind=Kind.BROADCAST, attr_names=("shape",), compute_in_f32=False, batch=B.batch_broadcast_to)


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


slice_ = def_op("slice", infer=_slice_infer,
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


pad = def_op("pad", infer=_pad_infer, impl=_pad_impl, kind=Kind.INJECTIVE,
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


concatenate = def_op("concatenate", infer=_concat_infer, impl=lambda *xs, axis: np.concatenate(xs, axis),
                     kind=Kind.INJECTIVE, attr_names=("axis",), compute_in_f32=False, batch=B.batch_concatenate)


def _rev_infer(ts, attrs):
    check_arity(ts, 1)
    if any(not 0 <= a < ts[0].ndim for a in attrs["axes"]):
        fail(f"axes {attrs['axes']} out of range", ts)
    return ts[0]


rev = def_op("rev", infer=_rev_infer, impl=lambda x, axes: np.flip(x, tuple(axes)) if axes else x,
             kind=Kind.INJECTIVE, attr_names=("axes",), compute_in_f32=False, doc="reverse along axes",
             batch=B.batch_rev)


def _take_infer(ts, attrs):
    check_arity(ts, 2)
    check_allowed(ts[1:], "int")
    x, idx = ts
    ax = attrs["axis"]
    if not 0 <= ax < x.ndim:
        fail(f"axis {ax} out of range", ts)
    return TensorType(x.shape[:ax] + idx.shape + x.shape[ax + 1:], x.dtype)


take = def_op("take", infer=_take_infer, impl=lambda x, idx, axis: np.take(x, idx, axis=axis, mode="clip"),
              kind=Kind.INJECTIVE, attr_names=("axis",), compute_in_f32=False,
              doc="gather x[..., idx, ...] along `axis`; indices clipped into range", batch=B.batch_take)


def _scatter_add_infer(ts, attrs):
    check_arity(ts, 3)
    check_allowed(ts[1:2], "int")
    x, idx, upd = ts
    ax = attrs["axis"]
    if not 0 <= ax < x.ndim:
        fail(f"axis {ax} out of range", ts)
    want = x.shape[:ax] + idx.shape + x.shape[ax + 1:]
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
                     attr_names=("axis",), doc="x with updates added at idx along axis (the adjoint of take)",
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
