"""Elementwise primitives: unary math, binary arithmetic, comparisons, logic, select, cast.

Binary ops broadcast with numpy rules (kind BROADCAST); both inputs share one dtype, the
frontend inserts the casts. Half-precision inputs are computed in float32 (OpDef.run).
"""
from __future__ import annotations

import math

import numpy as np

from ..dtypes import as_dtype, bool_
from ..registry import Amp, Kind, NOT_DIFFERENTIABLE, def_op
from ..types import TensorType
from .common import binary_infer, broadcast_shapes, check_allowed, check_arity, fail, unary_infer
from . import batching as B

_erf = np.frompyfunc(math.erf, 1, 1)


def _quiet(fn):
    """numpy reference without floating-point warnings (NaN/Inf are legitimate values)."""
    def run(*a, **k):
        with np.errstate(all="ignore"):
            return fn(*a, **k)
    run.__name__ = getattr(fn, "__name__", "impl")
    return run


# ---- unary float math -------------------------------------------------------------------
exp = def_op("exp", infer=unary_infer("float"), impl=_quiet(np.exp), kind=Kind.ELEMWISE, amp=Amp.NEVER,
             batch=B.vectorized("exp"))
log = def_op("log", infer=unary_infer("float"), impl=_quiet(np.log), kind=Kind.ELEMWISE, amp=Amp.NEVER,
             batch=B.vectorized("log"))
tanh = def_op("tanh", infer=unary_infer("float"), impl=_quiet(np.tanh), kind=Kind.ELEMWISE, amp=Amp.FOLLOW,
              batch=B.vectorized("tanh"))
sqrt = def_op("sqrt", infer=unary_infer("float"), impl=_quiet(np.sqrt), kind=Kind.ELEMWISE, amp=Amp.NEVER,
              batch=B.vectorized("sqrt"))
rsqrt = def_op("rsqrt", infer=unary_infer("float"), impl=_quiet(lambda x: 1.0 / np.sqrt(x)),
               kind=Kind.ELEMWISE, amp=Amp.NEVER, batch=B.vectorized("rsqrt"))
sin = def_op("sin", infer=unary_infer("float"), impl=_quiet(np.sin), kind=Kind.ELEMWISE, amp=Amp.NEVER,
             batch=B.vectorized("sin"))
cos = def_op("cos", infer=unary_infer("float"), impl=_quiet(np.cos), kind=Kind.ELEMWISE, amp=Amp.NEVER,
             batch=B.vectorized("cos"))
erf = def_op("erf", infer=unary_infer("float"), impl=lambda x: np.asarray(_erf(x), dtype=x.dtype),
             kind=Kind.ELEMWISE, amp=Amp.NEVER, batch=B.vectorized("erf"))
floor = def_op("floor", infer=unary_infer("float"), impl=np.floor, kind=Kind.ELEMWISE, vjp=NOT_DIFFERENTIABLE,
               batch=B.vectorized("floor"))
ceil = def_op("ceil", infer=unary_infer("float"), impl=np.ceil, kind=Kind.ELEMWISE, vjp=NOT_DIFFERENTIABLE,
              batch=B.vectorized("ceil"))
is_finite = def_op("is_finite", infer=unary_infer("float", out=bool_), impl=np.isfinite,
                   kind=Kind.ELEMWISE, vjp=NOT_DIFFERENTIABLE, batch=B.vectorized("is_finite"))

# ---- unary numeric ----------------------------------------------------------------------
neg = def_op("neg", infer=unary_infer("numeric"), impl=np.negative, kind=Kind.ELEMWISE, batch=B.vectorized("neg"))
abs_ = def_op("abs", infer=unary_infer("numeric"), impl=np.abs, kind=Kind.ELEMWISE, batch=B.vectorized("abs"))
sign = def_op("sign", infer=unary_infer("numeric"), impl=np.sign, kind=Kind.ELEMWISE, vjp=NOT_DIFFERENTIABLE,
              batch=B.vectorized("sign"))
logical_not = def_op("logical_not", infer=unary_infer("bool"), impl=np.logical_not, kind=Kind.ELEMWISE,
                     vjp=NOT_DIFFERENTIABLE, batch=B.vectorized("logical_not"))

# ---- binary arithmetic --------------------------------------------------------------------
add = def_op("add", infer=binary_infer("numeric"), impl=_quiet(np.add), kind=Kind.BROADCAST,
             batch=B.broadcasting("add"))
sub = def_op("sub", infer=binary_infer("numeric"), impl=_quiet(np.subtract), kind=Kind.BROADCAST,
             batch=B.broadcasting("sub"))
mul = def_op("mul", infer=binary_infer("numeric"), impl=_quiet(np.multiply), kind=Kind.BROADCAST,
             batch=B.broadcasting("mul"))
div = def_op("div", infer=binary_infer("float"), impl=_quiet(np.divide), kind=Kind.BROADCAST,
             batch=B.broadcasting("div"))
pow_ = def_op("pow", infer=binary_infer("float"), impl=_quiet(np.power), kind=Kind.BROADCAST, amp=Amp.NEVER,
              batch=B.broadcasting("pow"))
maximum = def_op("maximum", infer=binary_infer("numeric"), impl=np.maximum, kind=Kind.BROADCAST,
                 batch=B.broadcasting("maximum"))
minimum = def_op("minimum", infer=binary_infer("numeric"), impl=np.minimum, kind=Kind.BROADCAST,
                 batch=B.broadcasting("minimum"))

# ---- comparisons and logic (no gradient) --------------------------------------------------
for _name, _fn in (("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal),
                   ("gt", np.greater), ("ge", np.greater_equal)):
    def_op(_name, infer=binary_infer("any", out=bool_), impl=_quiet(_fn), kind=Kind.BROADCAST,
           vjp=NOT_DIFFERENTIABLE, doc=f"elementwise {_fn.__name__}, bool result", batch=B.broadcasting(_name))
for _name, _fn in (("logical_and", np.logical_and), ("logical_or", np.logical_or),
                   ("logical_xor", np.logical_xor)):
    def_op(_name, infer=binary_infer("bool"), impl=_fn, kind=Kind.BROADCAST, vjp=NOT_DIFFERENTIABLE,
           batch=B.broadcasting(_name))


# ---- select / cast --------------------------------------------------------------------------
def _select_infer(ts, attrs):
    check_arity(ts, 3)
    if ts[0].dtype is not bool_:
        fail("predicate must be bool", ts)
    if ts[1].dtype is not ts[2].dtype:
        fail("both branches must have the same dtype", ts)
    return TensorType(broadcast_shapes(*ts), ts[1].dtype)


select = def_op("select", infer=_select_infer, impl=np.where, kind=Kind.BROADCAST,
                doc="select(pred, on_true, on_false), broadcasting", batch=B.broadcasting("select"))


def _cast_infer(ts, attrs):
    check_arity(ts, 1)
    return TensorType(ts[0].shape, as_dtype(attrs["dtype"]))


def _cast_impl(x, dtype):
    dt = as_dtype(dtype)
    if dt.is_int and x.dtype.kind == "f":
        # saturate like LLVM's fptosi.sat: compare in float64 (int32/int64 bounds are not
        # representable in float32, so clipping there would overflow), NaN -> 0
        info = np.iinfo(dt.storage)
        xf = np.trunc(x.astype(np.float64))
        hi, lo = xf >= float(info.max), xf <= float(info.min)
        safe = np.where(hi | lo | np.isnan(xf), 0, xf).astype(dt.storage)
        return np.where(hi, info.max, np.where(lo, info.min, safe)).astype(dt.storage)
    return x.astype(np.float32 if dt.is_half else dt.storage)


cast = def_op("cast", infer=_cast_infer, impl=_cast_impl, kind=Kind.ELEMWISE, attr_names=("dtype",),
              doc="convert dtype; float->int truncates toward zero and saturates, NaN->0", batch=B.vectorized("cast"))

stop_gradient = def_op("stop_gradient", infer=unary_infer("any"), impl=lambda x: x, kind=Kind.ELEMWISE,
                       vjp=NOT_DIFFERENTIABLE, doc="identity whose gradient is zero",
                       batch=B.vectorized("stop_gradient"))
