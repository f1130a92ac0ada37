"""MindSpore 2.x functional random ops (ops.rand, randn, randint, uniform, normal, *_like).

They draw from the explicit-key Threefry generator of frontend/random.py: with `seed` the key is
key(seed) (the same numbers every call), without it the global RNG state (sf.set_seed) is split,
so eager calls and compiled steps both advance it and stay reproducible.
"""
from __future__ import annotations

from ...ir import dtypes as D
from ...core import lax
from .. import random as R
from ._core import shape_tuple, tensor


def _key(seed):
    return R.key(seed) if seed is not None else R.next_key()


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return shape_tuple(size) if size else ()


def rand(*size, dtype=None, seed=None):
    """Uniform [0, 1)."""
    return R.uniform(_key(seed), _size(size), D.as_dtype(dtype or D.float32))


def randn(*size, dtype=None, seed=None):
    """Standard normal."""
    return R.normal(_key(seed), _size(size), D.as_dtype(dtype or D.float32))


def rand_like(input, seed=None, *, dtype=None):
    x = tensor(input)
    return R.uniform(_key(seed), x.shape, D.as_dtype(dtype or (x.dtype if x.dtype.is_float else D.float32)))


def randn_like(input, seed=None, *, dtype=None):
    x = tensor(input)
    return R.normal(_key(seed), x.shape, D.as_dtype(dtype or (x.dtype if x.dtype.is_float else D.float32)))


def randint(low, high, size, seed=None, *, dtype=None):
    """Integers in [low, high)."""
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    u = R.uniform(_key(seed), shape_tuple(size), D.float64)
    n = lax.floor(lax.mul(u, lax.full((), float(high - low), D.float64)))
    return lax.convert(lax.add(n, lax.full((), float(low), D.float64)), D.as_dtype(dtype or D.int64))


def randint_like(input, low, high, seed=None, *, dtype=None):
    x = tensor(input)
    return randint(low, high, x.shape, seed, dtype=dtype or x.dtype)


def uniform(shape, minval, maxval, seed=None, dtype=D.float32):
    """Uniform [minval, maxval) (Python numbers or scalar tensors)."""
    dt = D.as_dtype(dtype)
    lo, hi = lax.convert(tensor(minval), dt), lax.convert(tensor(maxval), dt)
    u = R.uniform(_key(seed), shape_tuple(shape), dt if dt.is_float else D.float32)
    out = lax.add(lax.mul(lax.convert(u, dt) if dt.is_float else u, lax.sub(hi, lo) if dt.is_float else
                          lax.convert(lax.sub(hi, lo), D.float32)), lo if dt.is_float else lax.convert(lo, D.float32))
    return out if dt.is_float else lax.convert(lax.floor(out), dt)


def normal(shape, mean, stddev, seed=None):
    m, s = tensor(mean), tensor(stddev)
    dt = m.dtype if m.dtype.is_float else D.float32
    z = R.normal(_key(seed), shape_tuple(shape), dt)
    return lax.add(lax.mul(z, lax.convert(s, dt)), lax.convert(m, dt))
