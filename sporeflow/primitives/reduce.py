"""Reductions over a set of axes (kind REDUCE)."""
from __future__ import annotations

import numpy as np

from ..ir.dtypes import int32
from ..ir.registry import Amp, Kind, NOT_DIFFERENTIABLE, def_op
from ..ir.types import TensorType
from .ad_util import linear_jvp, primal
from .common import check_allowed, check_arity, fail, lax, normalize_axis
from . import batching as B


def _reduced_shape(shape, axes, keepdims):
    return tuple(1 if i in axes else d for i, d in enumerate(shape) if keepdims or i not in axes)


def _reduce_infer(allowed, identity=False):
    """`identity`: the reduction has one (sum: 0), so an empty axis is allowed."""
    def infer(ts, attrs):
        check_arity(ts, 1)
        check_allowed(ts, allowed)
        axes = attrs["axes"]
        if len(set(axes)) != len(axes) or any(not 0 <= a < ts[0].ndim for a in axes):
            fail(f"axes {axes} invalid for rank {ts[0].ndim} (need distinct, non-negative, in range)", ts)
        if not identity and any(ts[0].shape[a] == 0 for a in axes):
            fail("reduction over an empty axis has no identity", ts)
        return TensorType(_reduced_shape(ts[0].shape, set(axes), attrs["keepdims"]), ts[0].dtype)
    return infer


def _np_reduce(fn):
    def impl(x, axes, keepdims):
        r = fn(x, axis=tuple(axes), keepdims=keepdims)
        return r.astype(x.dtype, copy=False)  # np.sum widens small ints to int64; the IR keeps the dtype
    return impl


def _keep(x_shape, y, axes, keepdims):
    """y (reduced over `axes`) reshaped to keepdims form, so it broadcasts against x."""
    kept = _reduced_shape(x_shape, set(axes), True)
    return y if keepdims or tuple(y.shape) == kept else lax.reshape(y, shape=kept)


def _sum_vjp(ins, outs, douts, axes, keepdims):
    return [lax.broadcast_to(_keep(ins[0].shape, douts[0], axes, keepdims), shape=ins[0].shape)]


def _extremum_weights(x, y, axes, keepdims):
    """Where x attains the max/min: 1/count on each tied position (ties split evenly)."""
    hit = lax.convert(lax.eq(x, _keep(x.shape, y, axes, keepdims)), x.dtype)
    return lax.div(hit, lax.reduce_sum(hit, axes=axes, keepdims=True))


def _extremum_vjp(ins, outs, douts, axes, keepdims):
    w = _extremum_weights(ins[0], lax.stop_gradient(outs[0]), axes, keepdims)
    return [lax.mul(w, _keep(ins[0].shape, douts[0], axes, keepdims))]


def _extremum_jvp(name):
    def jvp(primals, tangents, axes, keepdims):
        out = primal(name, primals, {"axes": axes, "keepdims": keepdims})
        if tangents[0] is None:
            return out, [None]
        w = _extremum_weights(primals[0], lax.stop_gradient(out[0]), axes, keepdims)
        return out, [lax.reduce_sum(lax.mul(w, tangents[0]), axes=axes, keepdims=keepdims)]
    return jvp


reduce_sum = def_op("reduce_sum", infer=_reduce_infer("numeric", identity=True), impl=_np_reduce(np.sum), kind=Kind.REDUCE,
                    monoid="sum", amp=Amp.NEVER, attr_names=("axes", "keepdims"), vjp=_sum_vjp, jvp=linear_jvp("reduce_sum"),
                    batch=B.reducer("reduce_sum"))
reduce_max = def_op("reduce_max", infer=_reduce_infer("numeric"), impl=_np_reduce(np.max), kind=Kind.REDUCE,
                    monoid="max", attr_names=("axes", "keepdims"), vjp=_extremum_vjp, jvp=_extremum_jvp("reduce_max"),
                    doc="max over axes; its gradient splits evenly between tied maxima",
                    batch=B.reducer("reduce_max"))
reduce_min = def_op("reduce_min", infer=_reduce_infer("numeric"), impl=_np_reduce(np.min), kind=Kind.REDUCE,
                    monoid="min", attr_names=("axes", "keepdims"), vjp=_extremum_vjp, jvp=_extremum_jvp("reduce_min"),
                    doc="min over axes; its gradient splits evenly between tied minima",
                    batch=B.reducer("reduce_min"))


def _arg_infer(ts, attrs):
    check_arity(ts, 1)
    check_allowed(ts, "numeric")
    ax = normalize_axis(attrs["axis"], ts[0].ndim)
    if ax != attrs["axis"]:
        fail(f"axis must be non-negative, got {attrs['axis']}", ts)
    if ts[0].ndim == 0 or ts[0].shape[ax] == 0:
        fail("argmax/argmin needs rank >= 1 and a non-empty axis", ts)
    return TensorType(_reduced_shape(ts[0].shape, {ax}, attrs["keepdims"]), int32)


def _arg_impl(fn):
    def impl(x, axis, keepdims):
        r = np.asarray(fn(x, axis=axis)).astype(np.int32)
        return np.expand_dims(r, axis) if keepdims else r
    return impl


argmax = def_op("argmax", infer=_arg_infer, impl=_arg_impl(np.argmax), kind=Kind.REDUCE,
                vjp=NOT_DIFFERENTIABLE, attr_names=("axis", "keepdims"), doc="first index of the max, int32",
                batch=B.arg_reducer("argmax"))
argmin = def_op("argmin", infer=_arg_infer, impl=_arg_impl(np.argmin), kind=Kind.REDUCE,
                vjp=NOT_DIFFERENTIABLE, attr_names=("axis", "keepdims"), doc="first index of the min, int32",
                batch=B.arg_reducer("argmin"))
