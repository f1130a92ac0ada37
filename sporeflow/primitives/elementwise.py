"""Elementwise primitives: unary math, binary arithmetic, comparisons, logic, select, cast.

Binary ops broadcast with numpy rules (kind BROADCAST); both inputs share one dtype, the
frontend inserts the casts. Half-precision inputs are computed in float32 (OpDef.run).
"""
from __future__ import annotations

import math

import numpy as np

from ..ir.dtypes import as_dtype, bool_
from ..ir.registry import Amp, Kind, NOT_DIFFERENTIABLE, def_op
from ..ir.types import TensorType
from .ad_util import bcast, binary_rules, primal, scalar, unary_rules, zeros_if_none
from .common import binary_infer, broadcast_shapes, check_arity, fail, lax, unary_infer
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
             **unary_rules("exp", lambda x, y: lambda g: lax.mul(g, y)), batch=B.vectorized("exp"))
log = def_op("log", infer=unary_infer("float"), impl=_quiet(np.log), kind=Kind.ELEMWISE, amp=Amp.NEVER,
             **unary_rules("log", lambda x, y: lambda g: lax.div(g, x)), batch=B.vectorized("log"))
tanh = def_op("tanh", infer=unary_infer("float"), impl=_quiet(np.tanh), kind=Kind.ELEMWISE, amp=Amp.FOLLOW,
              **unary_rules("tanh", lambda x, y: lambda g: lax.mul(g, lax.sub(scalar(y, 1), lax.mul(y, y)))),
              batch=B.vectorized("tanh"))
sqrt = def_op("sqrt", infer=unary_infer("float"), impl=_quiet(np.sqrt), kind=Kind.ELEMWISE, amp=Amp.NEVER,
              **unary_rules("sqrt", lambda x, y: lambda g: lax.div(g, lax.mul(y, scalar(y, 2)))),
              batch=B.vectorized("sqrt"))
rsqrt = def_op("rsqrt", infer=unary_infer("float"), impl=_quiet(lambda x: 1.0 / np.sqrt(x)),
               kind=Kind.ELEMWISE, amp=Amp.NEVER,  # d/dx x^-1/2 = -y / (2x)
               **unary_rules("rsqrt", lambda x, y: lambda g: lax.mul(g, lax.div(lax.mul(y, scalar(y, -0.5)), x))),
               batch=B.vectorized("rsqrt"))
sin = def_op("sin", infer=unary_infer("float"), impl=_quiet(np.sin), kind=Kind.ELEMWISE, amp=Amp.NEVER,
             **unary_rules("sin", lambda x, y: lambda g: lax.mul(g, lax.cos(x))), batch=B.vectorized("sin"))
cos = def_op("cos", infer=unary_infer("float"), impl=_quiet(np.cos), kind=Kind.ELEMWISE, amp=Amp.NEVER,
             **unary_rules("cos", lambda x, y: lambda g: lax.neg(lax.mul(g, lax.sin(x)))), batch=B.vectorized("cos"))
erf = def_op("erf", infer=unary_infer("float"), impl=lambda x: np.asarray(_erf(x), dtype=x.dtype),
             kind=Kind.ELEMWISE, amp=Amp.NEVER,  # d/dx erf = 2/sqrt(pi) exp(-x^2)
             **unary_rules("erf", lambda x, y: lambda g: lax.mul(g, lax.mul(
                 lax.exp(lax.neg(lax.mul(x, x))), scalar(x, 2.0 / math.sqrt(math.pi))))), batch=B.vectorized("erf"))
floor = def_op("floor", infer=unary_infer("float"), impl=np.floor, kind=Kind.ELEMWISE, vjp=NOT_DIFFERENTIABLE,
               batch=B.vectorized("floor"))
ceil = def_op("ceil", infer=unary_infer("float"), impl=np.ceil, kind=Kind.ELEMWISE, vjp=NOT_DIFFERENTIABLE,
              batch=B.vectorized("ceil"))
is_finite = def_op("is_finite", infer=unary_infer("float", out=bool_), impl=np.isfinite,
                   kind=Kind.ELEMWISE, vjp=NOT_DIFFERENTIABLE, batch=B.vectorized("is_finite"))

# ---- unary numeric ----------------------------------------------------------------------
neg = def_op("neg", infer=unary_infer("numeric"), impl=np.negative, kind=Kind.ELEMWISE,
             **unary_rules("neg", lambda x, y: lax.neg), batch=B.vectorized("neg"))
abs_ = def_op("abs", infer=unary_infer("numeric"), impl=np.abs, kind=Kind.ELEMWISE,  # gradient 0 at 0
              **unary_rules("abs", lambda x, y: lambda g: lax.mul(g, lax.sign(x))), batch=B.vectorized("abs"))
sign = def_op("sign", infer=unary_infer("numeric"), impl=np.sign, kind=Kind.ELEMWISE, vjp=NOT_DIFFERENTIABLE,
              batch=B.vectorized("sign"))
logical_not = def_op("logical_not", infer=unary_infer("bool"), impl=np.logical_not, kind=Kind.ELEMWISE,
                     vjp=NOT_DIFFERENTIABLE, batch=B.vectorized("logical_not"))

# ---- binary arithmetic --------------------------------------------------------------------
_ident = lambda g: g  # noqa: E731


def _winner_weight(x, y, strict):
    """1 where x strictly wins, else 0: on ties the gradient goes to the second operand. So
    relu = maximum(x, 0) and relu6/clamp get gradient 0 at their corners, as MindSpore's ReLU
    and ReLU6 do (JAX would split ties 1/2 each). VJP and JVP use the same weights."""
    return lax.convert(strict(x, y), x.dtype)


def _minmax_partials(strict):
    def partials(x, y, z):
        wx = _winner_weight(x, y, strict)
        return (lambda g: lax.mul(g, wx)), (lambda g: lax.mul(g, lax.sub(scalar(wx, 1), wx)))
    return partials


add = def_op("add", infer=binary_infer("numeric"), impl=_quiet(np.add), kind=Kind.BROADCAST,
             **binary_rules("add", lambda x, y, z: (_ident, _ident)), batch=B.broadcasting("add"))
sub = def_op("sub", infer=binary_infer("numeric"), impl=_quiet(np.subtract), kind=Kind.BROADCAST,
             **binary_rules("sub", lambda x, y, z: (_ident, lax.neg)), batch=B.broadcasting("sub"))
mul = def_op("mul", infer=binary_infer("numeric"), impl=_quiet(np.multiply), kind=Kind.BROADCAST,
             **binary_rules("mul", lambda x, y, z: ((lambda g: lax.mul(g, y)), (lambda g: lax.mul(g, x)))),
             batch=B.broadcasting("mul"))
div = def_op("div", infer=binary_infer("float"), impl=_quiet(np.divide), kind=Kind.BROADCAST,
             **binary_rules("div", lambda x, y, z: ((lambda g: lax.div(g, y)),
                                                    (lambda g: lax.neg(lax.div(lax.mul(g, z), y))))),
             batch=B.broadcasting("div"))
pow_ = def_op("pow", infer=binary_infer("float"), impl=_quiet(np.power), kind=Kind.BROADCAST, amp=Amp.NEVER,
              **binary_rules("pow", lambda x, y, z: (
                  (lambda g: lax.mul(g, lax.mul(y, lax.pow(x, lax.sub(y, scalar(y, 1)))))),
                  (lambda g: lax.mul(g, lax.mul(z, lax.log(x)))))), batch=B.broadcasting("pow"))
maximum = def_op("maximum", infer=binary_infer("numeric"), impl=np.maximum, kind=Kind.BROADCAST,
                 **binary_rules("maximum", _minmax_partials(lambda a, b: lax.gt(a, b))),
                 batch=B.broadcasting("maximum"))
minimum = def_op("minimum", infer=binary_infer("numeric"), impl=np.minimum, kind=Kind.BROADCAST,
                 **binary_rules("minimum", _minmax_partials(lambda a, b: lax.lt(a, b))),
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


def _select_vjp(ins, outs, douts):
    p, a, b = ins
    g = douts[0]
    zero = lax.zeros_like(g)
    return [None, lax.sum_to_shape(lax.select(p, g, zero), a.shape),
            lax.sum_to_shape(lax.select(p, zero, g), b.shape)]


def _select_jvp(primals, tangents):
    p, a, b = primals
    out = primal("select", primals, {})
    if tangents[1] is None and tangents[2] is None:
        return out, [None]
    ta, tb = zeros_if_none(tangents[1], a), zeros_if_none(tangents[2], b)
    return out, [bcast(lax.select(p, ta, tb), out[0].shape)]


select = def_op("select", infer=_select_infer, impl=np.where, kind=Kind.BROADCAST,
                vjp=_select_vjp, jvp=_select_jvp, doc="select(pred, on_true, on_false), broadcasting",
                batch=B.broadcasting("select"))


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


def _cast_vjp(ins, outs, douts, dtype):
    """Gradients flow between float types only (an integer result carries none)."""
    return [lax.convert(douts[0], ins[0].dtype) if ins[0].dtype.is_float else None]


def _cast_jvp(primals, tangents, dtype):
    out = primal("cast", primals, {"dtype": dtype})
    t = tangents[0]
    return out, [lax.convert(t, out[0].dtype) if t is not None and out[0].dtype.is_float else None]


cast = def_op("cast", infer=_cast_infer, impl=_cast_impl, kind=Kind.ELEMWISE, attr_names=("dtype",),
              vjp=_cast_vjp, jvp=_cast_jvp,
              doc="convert dtype; float->int truncates toward zero and saturates, NaN->0", batch=B.vectorized("cast"))

stop_gradient = def_op("stop_gradient", infer=unary_infer("any"), impl=lambda x: x, kind=Kind.ELEMWISE,
                       vjp=NOT_DIFFERENTIABLE, doc="identity whose gradient is zero",
                       batch=B.vectorized("stop_gradient"))
