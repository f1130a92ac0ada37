"""`sporeflow.numpy` (MindSpore's `mindspore.numpy`, imported as `mnp`): numpy names on sporeflow
Tensors, backed by `sf.ops`, so everything here works eagerly and inside compiled functions.

Defaults follow mindspore.numpy: float data is float32 (Python floats and float64 numpy input
given to `array` without a dtype keep float32 as MindSpore does for lists; numpy float64 arrays
keep float64), integer data int32 for `arange`/`randint`. Random functions draw from the global
counter-based RNG that `sf.set_seed` resets, so they are reproducible and traceable.
"""
from __future__ import annotations

import builtins as _builtins
import math
from typing import Sequence

import numpy as _np

from .frontend import functional as F
from .frontend.functional._core import norm_axes as _norm_axes, tensor as _tensor
from .frontend.tensor import Tensor
from .ir import dtypes as D
from .frontend.random import next_key, normal, uniform

float16, float32, float64, bfloat16 = D.float16, D.float32, D.float64, D.bfloat16
int8, int16, int32, int64, uint8, bool_ = D.int8, D.int16, D.int32, D.int64, D.uint8, D.bool_
pi, e, inf, nan = math.pi, math.e, math.inf, math.nan
ndarray = Tensor


# ---- creation ----------------------------------------------------------------------------------
def array(obj, dtype=None, copy=True, ndmin=0) -> Tensor:
    if isinstance(obj, Tensor) and dtype is None:
        t = obj
    elif isinstance(obj, (list, tuple)) and _builtins.any(isinstance(o, Tensor) for o in obj):
        t = F.stack([array(o) for o in obj])
        t = t if dtype is None else F.cast(t, dtype)
    else:
        t = _tensor(Tensor(obj, dtype) if not isinstance(obj, Tensor) else obj, dtype)
    while t.ndim < ndmin:
        t = F.expand_dims(t, 0)
    return t


def asarray(a, dtype=None) -> Tensor:
    return array(a, dtype, copy=False)


asfarray = lambda a, dtype=float32: asarray(a, dtype)  # noqa: E731


def zeros(shape, dtype=float32) -> Tensor:
    return F.zeros(shape, dtype)


def ones(shape, dtype=float32) -> Tensor:
    return F.ones(shape, dtype)


def full(shape, fill_value, dtype=None) -> Tensor:
    if isinstance(fill_value, Tensor):
        return F.broadcast_to(fill_value if dtype is None else F.cast(fill_value, dtype), shape)
    return F.full(shape, fill_value, dtype=dtype)


def empty(shape, dtype=float32) -> Tensor:
    return zeros(shape, dtype)


def zeros_like(a, dtype=None) -> Tensor:
    return F.zeros_like(a, dtype=dtype)


def ones_like(a, dtype=None) -> Tensor:
    return F.ones_like(a, dtype=dtype)


def full_like(a, fill_value, dtype=None) -> Tensor:
    return F.full_like(a, fill_value, dtype=dtype)


def arange(start, stop=None, step=1, dtype=None) -> Tensor:
    if dtype is None and not _builtins.any(isinstance(v, float) for v in (start, stop, step)):
        dtype = int32
    return F.arange(start, stop, step, dtype=dtype)


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0) -> Tensor:
    div = (num - 1) if endpoint else num
    step = (stop - start) / div if div > 0 else 0.0
    out = F.add(F.mul(F.arange(0, num, dtype=float32), float(step)), float(start)) if num else zeros((0,))
    if endpoint and num > 1:
        out = F.where(F.equal(F.arange(0, num, dtype=int32), num - 1), float(stop), out)
    out = out if dtype is None else F.cast(out, dtype)
    return (out, step) if retstep else out


def eye(N, M=None, k=0, dtype=float32) -> Tensor:
    if k:
        r = F.arange(0, N, dtype=int32)
        c = F.arange(0, M if M is not None else N, dtype=int32)
        return F.cast(F.equal(F.expand_dims(r, 1) + k, F.expand_dims(c, 0)), dtype)
    return F.eye(N, M, dtype)


identity = lambda n, dtype=float32: eye(n, dtype=dtype)  # noqa: E731


# ---- shape ------------------------------------------------------------------------------------
def reshape(a, newshape) -> Tensor:
    return F.reshape(a, newshape)


def ravel(a) -> Tensor:
    return F.reshape(a, (-1,))


def transpose(a, axes=None) -> Tensor:
    a = _tensor(a)
    return F.transpose(a, tuple(range(a.ndim))[::-1] if axes is None else axes)


def swapaxes(a, axis1, axis2) -> Tensor:
    return F.swapaxes(a, axis1, axis2)


def expand_dims(a, axis) -> Tensor:
    return F.expand_dims(a, axis)


def squeeze(a, axis=None) -> Tensor:
    return F.squeeze(a, axis)


def broadcast_to(a, shape) -> Tensor:
    return F.broadcast_to(a, shape)


def stack(arrays: Sequence, axis=0) -> Tensor:
    return F.stack(list(arrays), axis)


def concatenate(arrays: Sequence, axis=0) -> Tensor:
    arrays = list(arrays)
    if axis is None:
        return F.cat([ravel(a) for a in arrays], 0)
    return F.cat(arrays, axis)


def vstack(tup) -> Tensor:
    return concatenate([a if _tensor(a).ndim > 1 else F.reshape(a, (1, -1)) for a in tup], 0)


def hstack(tup) -> Tensor:
    return concatenate(tup, 0 if _tensor(tup[0]).ndim == 1 else 1)


def split(x, indices_or_sections, axis=0):
    x = _tensor(x)
    n = x.shape[axis]
    if isinstance(indices_or_sections, int):
        if n % indices_or_sections:
            raise ValueError(f"array split does not result in an equal division ({n} by {indices_or_sections})")
        return list(F.split(x, n // indices_or_sections, axis))
    cuts = [0, *indices_or_sections, n]
    return list(F.split(x, [b - a for a, b in zip(cuts, cuts[1:])], axis))


def tile(a, reps) -> Tensor:
    return F.tile(a, (reps,) if isinstance(reps, int) else tuple(reps))


def flip(m, axis=None) -> Tensor:
    m = _tensor(m)
    return F.flip(m, tuple(range(m.ndim)) if axis is None else axis)


def where(condition, x=None, y=None) -> Tensor:
    return F.where(condition, x, y)


def clip(a, a_min, a_max) -> Tensor:
    return F.clamp(a, a_min, a_max)


def pad(array_, pad_width, mode="constant", constant_values=0) -> Tensor:
    x = _tensor(array_)
    pw = [(pad_width, pad_width)] * x.ndim if isinstance(pad_width, int) else list(pad_width)
    if len(pw) == 2 and isinstance(pw[0], int):
        pw = [tuple(pw)] * x.ndim
    flat = [v for pair in reversed(pw) for v in pair]
    return F.pad(x, flat, mode, float(constant_values))


# ---- math ---------------------------------------------------------------------------------------
add, subtract, multiply, divide, true_divide = F.add, F.sub, F.mul, F.div, F.div
power, maximum, minimum, floor_divide, remainder, mod = F.pow, F.maximum, F.minimum, F.floor_divide, \
    F.remainder, F.remainder
exp, log, sqrt, tanh, sin, cos, tan, abs, absolute = F.exp, F.log, F.sqrt, F.tanh, F.sin, F.cos, F.tan, F.abs, F.abs
floor, ceil, sign, negative, square, reciprocal = F.floor, F.ceil, F.sign, F.neg, F.square, F.reciprocal
log1p, expm1, exp2, isnan, isfinite = F.log1p, F.expm1, F.exp2, F.isnan, F.isfinite
equal, not_equal, less, less_equal, greater, greater_equal = F.equal, F.not_equal, F.less, F.less_equal, \
    F.greater, F.greater_equal
logical_and, logical_or, logical_not, logical_xor = F.logical_and, F.logical_or, F.logical_not, F.logical_xor


def log2(x) -> Tensor:
    return F.mul(F.log(x), 1.0 / math.log(2.0))


def log10(x) -> Tensor:
    return F.mul(F.log(x), 1.0 / math.log(10.0))


def isinf(x) -> Tensor:
    return F.logical_and(F.logical_not(F.isfinite(x)), F.logical_not(F.isnan(x)))


def sum(a, axis=None, dtype=None, keepdims=False, initial=None) -> Tensor:  # noqa: A001
    out = F.sum(a, axis, keepdims, dtype=dtype)
    return out if initial is None else F.add(out, initial)


def mean(a, axis=None, dtype=None, keepdims=False) -> Tensor:
    out = F.mean(a, axis, keepdims)
    return out if dtype is None else F.cast(out, dtype)


def amax(a, axis=None, keepdims=False) -> Tensor:
    return F.amax(a, axis, keepdims)


def amin(a, axis=None, keepdims=False) -> Tensor:
    return F.amin(a, axis, keepdims)


max, min = amax, amin  # noqa: A001


def argmax(a, axis=None) -> Tensor:
    return F.argmax(a, axis)


def argmin(a, axis=None) -> Tensor:
    return F.argmin(a, axis)


def var(a, axis=None, ddof=0, keepdims=False) -> Tensor:
    return F.var(a, axis, ddof, keepdims)


def std(a, axis=None, ddof=0, keepdims=False) -> Tensor:
    return F.std(a, axis, ddof, keepdims)


def prod(a, axis=None, keepdims=False) -> Tensor:
    """Exact product (also of zeros and negatives) by repeated multiplication along the axes."""
    x = _tensor(a)
    for ax in sorted(_norm_axes(axis, x.ndim), reverse=True):
        parts = F.split(x, 1, ax)
        acc = parts[0]
        for p in parts[1:]:
            acc = F.mul(acc, p)
        x = acc if keepdims else F.squeeze(acc, ax)
    return x


def all(a, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    return F.all(a, axis, keepdims)


def any(a, axis=None, keepdims=False) -> Tensor:  # noqa: A001
    return F.any(a, axis, keepdims)


# ---- linear algebra ---------------------------------------------------------------------------
def matmul(x1, x2) -> Tensor:
    return F.matmul(x1, x2)


def dot(a, b) -> Tensor:
    """numpy.dot: inner product of vectors, matmul of matrices, otherwise a sum over the last
    axis of `a` and the second-to-last of `b` (the last when b is 1-D)."""
    a, b = _tensor(a), _tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        return F.mul(a, b)
    if b.ndim <= 2:
        return F.matmul(a, b)
    return F.tensor_dot(a, b, ((a.ndim - 1,), (b.ndim - 2,)))


def vdot(a, b) -> Tensor:
    return F.sum(F.mul(ravel(a), ravel(b)))


def inner(a, b) -> Tensor:
    a, b = _tensor(a), _tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        return F.mul(a, b)
    return F.tensor_dot(a, b, ((a.ndim - 1,), (b.ndim - 1,)))


def outer(a, b) -> Tensor:
    return F.mul(F.reshape(a, (-1, 1)), F.reshape(b, (1, -1)))


def tensordot(a, b, axes=2) -> Tensor:
    return F.tensor_dot(a, b, axes)


# ---- random (global counter-based RNG; see sf.set_seed) --------------------------------------------
def _shape_of(args) -> tuple:
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(int(a) for a in args)


def randn(*shape, dtype=float32) -> Tensor:
    return normal(next_key(), _shape_of(shape), dtype)


def rand(*shape, dtype=float32) -> Tensor:
    return uniform(next_key(), _shape_of(shape), dtype)


def randint(minval, maxval=None, shape=None, dtype=int32) -> Tensor:
    """Integers in [minval, maxval) (or [0, minval) when maxval is None)."""
    if maxval is None:
        minval, maxval = 0, minval
    if maxval <= minval:
        raise ValueError(f"randint: maxval ({maxval}) must be greater than minval ({minval})")
    shape = () if shape is None else ((shape,) if isinstance(shape, int) else tuple(shape))
    u = uniform(next_key(), shape, float64 if maxval - minval > 2 ** 24 else float32)
    n = F.floor(F.mul(u, float(maxval - minval)))
    return F.cast(F.add(n, float(minval)), dtype)


def size(a) -> int:
    return _tensor(a).size


def shape(a) -> tuple:
    return _tensor(a).shape


def ndim(a) -> int:
    return _tensor(a).ndim


def asnumpy(a) -> _np.ndarray:
    return _tensor(a).asnumpy()
