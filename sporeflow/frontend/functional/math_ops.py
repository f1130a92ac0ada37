"""Elementwise math and reductions under MindSpore 2.x names (composites are decompositions)."""
from __future__ import annotations

import math

from ...ir import dtypes as D
from ...core import lax
from ._core import float_of, norm_axes, norm_axis, promote, tensor
from ..tensor import Tensor
from .array_ops import reshape, squeeze


# ---- binary --------------------------------------------------------------------------------
def add(input, other):
    a, b = promote(input, other)
    return lax.add(a, b)


def sub(input, other):
    a, b = promote(input, other)
    return lax.sub(a, b)


def mul(input, other):
    a, b = promote(input, other)
    return lax.mul(a, b)


def div(input, other, rounding_mode=None):
    a, b = promote(input, other)
    if not a.dtype.is_float:
        a, b = lax.convert(a, D.float32), lax.convert(b, D.float32)
    q = lax.div(a, b)
    if rounding_mode == "floor":
        return lax.floor(q)
    if rounding_mode == "trunc":
        return lax.select(lax.lt(q, lax.zeros_like(q)), lax.ceil(q), lax.floor(q))
    return q


def floor_divide(input, other):
    a, b = promote(input, other)
    q = lax.floor(lax.div(float_of(a), float_of(b)))
    return lax.convert(q, a.dtype)


def remainder(input, other):
    a, b = promote(input, other)
    fa, fb = float_of(a), float_of(b)
    r = lax.sub(fa, lax.mul(lax.floor(lax.div(fa, fb)), fb))
    return lax.convert(r, a.dtype)


def pow(input, exponent):
    if isinstance(exponent, (int, float)) and not isinstance(exponent, bool) and tensor_like(input):
        x = input
        if exponent == 2:
            return lax.mul(x, x)
        if exponent == 1:
            return x
        if exponent == 0.5 and x.dtype.is_float:
            return lax.sqrt(x)
    a, b = promote(input, exponent)
    if not a.dtype.is_float:
        return lax.convert(lax.pow(lax.convert(a, D.float32), lax.convert(b, D.float32)), a.dtype)
    return lax.pow(a, b)


def tensor_like(x) -> bool:
    return isinstance(x, Tensor)


def maximum(input, other):
    return lax.maximum(*promote(input, other))


def minimum(input, other):
    return lax.minimum(*promote(input, other))


def equal(input, other): return lax.eq(*promote(input, other))
def not_equal(input, other): return lax.ne(*promote(input, other))
def less(input, other): return lax.lt(*promote(input, other))
def less_equal(input, other): return lax.le(*promote(input, other))
def greater(input, other): return lax.gt(*promote(input, other))
def greater_equal(input, other): return lax.ge(*promote(input, other))


def _bool(x):
    x = tensor(x)
    return x if x.dtype is D.bool_ else lax.ne(x, lax.zeros_like(x))


def logical_and(input, other): return lax.logical_and(_bool(input), _bool(other))
def logical_or(input, other): return lax.logical_or(_bool(input), _bool(other))
def logical_xor(input, other): return lax.logical_xor(_bool(input), _bool(other))
def logical_not(input): return lax.logical_not(_bool(input))


# ---- unary -----------------------------------------------------------------------------------
def _float_unary(prim):
    def op(input):
        return getattr(lax, prim)(float_of(tensor(input)))
    op.__name__ = prim
    return op


exp = _float_unary("exp")
log = _float_unary("log")
tanh = _float_unary("tanh")
sqrt = _float_unary("sqrt")
rsqrt = _float_unary("rsqrt")
sin = _float_unary("sin")
cos = _float_unary("cos")
erf = _float_unary("erf")
floor = _float_unary("floor")
ceil = _float_unary("ceil")


def neg(input): return lax.neg(tensor(input))
def abs(input): return lax.abs(tensor(input))
def sign(input): return lax.sign(tensor(input))
def square(input): return mul(input, input)
def reciprocal(input): return div(1.0, float_of(tensor(input)))
def isfinite(input): return lax.is_finite(float_of(tensor(input)))
def isnan(input):
    x = float_of(tensor(input))
    return lax.ne(x, x)


def exp2(input): return pow(2.0, float_of(tensor(input)))
def log1p(input): return log(add(float_of(tensor(input)), 1.0))
def expm1(input): return sub(exp(input), 1.0)
def tan(input): return div(sin(input), cos(input))


def relu(input):
    x = tensor(input)
    return lax.maximum(x, lax.zeros_like(x))


def relu6(input): return clamp(input, 0.0, 6.0)
def leaky_relu(input, alpha=0.2):
    x = tensor(input)
    return lax.select(lax.gt(x, lax.zeros_like(x)), x, mul(x, alpha))


def sigmoid(input):
    x = float_of(tensor(input))
    return div(1.0, add(lax.exp(lax.neg(x)), 1.0))


def softplus(input, beta=1, threshold=20):
    x = float_of(tensor(input))
    bx = mul(x, float(beta))
    soft = div(log1p(lax.exp(lax.neg(lax.abs(bx)))) + relu(bx), float(beta))
    return lax.select(lax.gt(bx, lax.full(bx.shape, threshold, bx.dtype)), x, soft)


def silu(input):
    x = float_of(tensor(input))
    return mul(x, sigmoid(x))


def gelu(input_x, approximate="none"):
    """GELU; approximate='tanh' uses the tanh form (MindSpore nn.GELU's default), computed as
    x * sigmoid(2u) = x / (1 + exp(-2u)), the same function as 0.5 x (1 + tanh(u)): one exp and
    a division instead of tanh's polynomial, exp and division (the chain kernel's cost), and no
    cancellation in 1 + tanh(u) for negative x. -2u = x (k + 0.044715 k x^2) with k = -2 sqrt(2/pi):
    one multiply fewer than (x + 0.044715 x^3) k."""
    x = float_of(tensor(input_x))
    if approximate == "tanh":
        k = -2.0 * math.sqrt(2.0 / math.pi)
        inner = lax.mul(x, add(mul(lax.mul(x, x), 0.044715 * k), k))
        return div(x, add(lax.exp(inner), 1.0))
    return mul(mul(x, 0.5), add(lax.erf(mul(x, 1.0 / math.sqrt(2.0))), 1.0))


def clamp(input, min=None, max=None):
    x = tensor(input)
    if min is not None:
        x = maximum(x, min)
    if max is not None:
        x = minimum(x, max)
    return x


clip = clamp


# ---- reductions --------------------------------------------------------------------------------
def sum(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    x = tensor(input)
    if dtype is not None:
        x = lax.convert(x, dtype)
    elif x.dtype is D.bool_:
        x = lax.convert(x, D.int64)
    axes = norm_axes(dim if axis is None else axis, x.ndim)
    kd = keepdim if keepdims is None else keepdims
    return lax.reduce_sum(x, axes=axes, keepdims=bool(kd))


def mean(input, axis=None, keep_dims=False, *, dim=None, keepdim=None):
    x = float_of(tensor(input))
    axes = norm_axes(axis if dim is None else dim, x.ndim)
    kd = keep_dims if keepdim is None else keepdim
    n = 1
    for a in axes:
        n *= x.shape[a]
    s = lax.reduce_sum(x, axes=axes, keepdims=bool(kd))
    return mul(s, 1.0 / n) if n else div(s, 0.0)


def amax(input, axis=None, keepdims=False):
    x = tensor(input)
    return lax.reduce_max(x, axes=norm_axes(axis, x.ndim), keepdims=bool(keepdims))


def amin(input, axis=None, keepdims=False):
    x = tensor(input)
    return lax.reduce_min(x, axes=norm_axes(axis, x.ndim), keepdims=bool(keepdims))


def max(input, axis=None, keepdims=False, *, initial=None, where=None):
    """MindSpore 2.x ops.max: with an axis returns (values, indices); without, the max value."""
    x = tensor(input)
    if axis is None:
        return amax(x)
    return amax(x, axis, keepdims), argmax(x, axis, keepdims)


def min(input, axis=None, keepdims=False, *, initial=None, where=None):
    x = tensor(input)
    if axis is None:
        return amin(x)
    return amin(x, axis, keepdims), argmin(x, axis, keepdims)


def _arg(prim, input, axis, keepdims):
    x = tensor(input)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    return getattr(lax, prim)(x, axis=norm_axis(axis, x.ndim), keepdims=bool(keepdims))


def argmax(input, dim=None, keepdim=False, *, axis=None):
    return _arg("argmax", input, dim if axis is None else axis, keepdim)


def argmin(input, axis=None, keepdims=False):
    return _arg("argmin", input, axis, keepdims)


def var(input, axis=None, ddof=0, keepdims=False):
    x = float_of(tensor(input))
    axes = norm_axes(axis, x.ndim)
    mu = mean(x, axes, True)
    d = sub(x, mu)
    n = 1
    for a in axes:
        n *= x.shape[a]
    return mul(lax.reduce_sum(mul(d, d), axes=axes, keepdims=bool(keepdims)), 1.0 / (n - ddof) if n - ddof > 0 else math.inf)


def std(input, axis=None, ddof=0, keepdims=False):
    return sqrt(var(input, axis, ddof, keepdims))


def logsumexp(input, axis, keep_dims=False):
    x = float_of(tensor(input))
    axes = norm_axes(axis, x.ndim)
    m = lax.stop_gradient(lax.reduce_max(x, axes=axes, keepdims=True))
    s = log(lax.reduce_sum(lax.exp(sub(x, m)), axes=axes, keepdims=True))
    out = add(s, m)
    if not keep_dims:
        out = squeeze(out, axes)
    return out


def prod(input, axis=None, keep_dims=False):
    x = float_of(tensor(input))
    return exp(sum(log(x), axis, keep_dims))  # positive inputs only; documented limitation


def all(input, axis=None, keep_dims=False):
    x = _bool(input)
    return lax.eq(lax.reduce_min(lax.convert(x, D.int32), axes=norm_axes(axis, x.ndim), keepdims=keep_dims),
                  lax.full((), 1, D.int32))


def any(input, axis=None, keep_dims=False):
    x = _bool(input)
    return lax.eq(lax.reduce_max(lax.convert(x, D.int32), axes=norm_axes(axis, x.ndim), keepdims=keep_dims),
                  lax.full((), 1, D.int32))


def round(input, *, decimals=0):  # noqa: A001
    """Round half to even (as numpy and MindSpore), optionally to `decimals` places."""
    x = float_of(tensor(input))
    if decimals:
        return div(round(mul(x, 10.0 ** decimals)), 10.0 ** decimals)
    r = lax.floor(x)
    d = lax.sub(x, r)
    half = lax.full((), 0.5, x.dtype)
    odd = lax.ne(lax.sub(r, lax.mul(lax.floor(lax.mul(r, half)), lax.full((), 2.0, x.dtype))), lax.zeros_like(r))
    up = lax.logical_or(lax.gt(d, half), lax.logical_and(lax.eq(d, half), odd))
    return lax.select(up, lax.add(r, lax.full((), 1.0, x.dtype)), r)


def elu(input_x, alpha=1.0):
    x = float_of(tensor(input_x))
    return lax.select(lax.gt(x, lax.zeros_like(x)), x, mul(expm1(x), float(alpha)))


def hardswish(x):
    x = float_of(tensor(x))
    return div(mul(x, relu6(add(x, 3.0))), 6.0)


def hardsigmoid(input):
    return div(relu6(add(float_of(tensor(input)), 3.0)), 6.0)


def mish(x):
    x = float_of(tensor(x))
    return mul(x, tanh(softplus(x)))
