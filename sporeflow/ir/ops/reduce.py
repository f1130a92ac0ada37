"""Reductions over a set of axes (kind REDUCE)."""
from __future__ import annotations

import numpy as np

from ..dtypes import int32
from ..registry import Amp, Kind, NOT_DIFFERENTIABLE, def_op
from ..types import TensorType
from .common import check_allowed, check_arity, fail, normalize_axis
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


reduce_sum = def_op("reduce_sum", infer=_reduce_infer("numeric", identity=True), impl=_np_reduce(np.sum), kind=Kind.REDUCE,
                    amp=Amp.NEVER, attr_names=("axes", "keepdims"), batch=B.reducer("reduce_sum"))
reduce_max = def_op("reduce_max", infer=_reduce_infer("numeric"), impl=_np_reduce(np.max), kind=Kind.REDUCE,
                    attr_names=("axes", "keepdims"), batch=B.reducer("reduce_max"))
reduce_min = def_op("reduce_min", infer=_reduce_infer("numeric"), impl=_np_reduce(np.min), kind=Kind.REDUCE,
                    attr_names=("axes", "keepdims"), batch=B.reducer("reduce_min"))


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
