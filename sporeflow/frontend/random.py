"""Explicit-key random numbers (counter-based Threefry; see primitives/random.py).

`key(seed)` makes a u32[2] key, `split` derives independent keys, `uniform`/`normal`/`bernoulli`
draw from a key. Layers that need randomness without a user key (Dropout) draw from a global
RNG state held in a non-trainable Parameter: drawing splits it and assigns the new state, so a
compiled train step threads the state through its outputs and each step gets new numbers.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import dtypes as D
from ..core import lax
from .tensor import Parameter, Tensor
from .functional.state_ops import assign


def key(seed: int) -> Tensor:
    s = int(seed) & 0xFFFFFFFFFFFFFFFF
    return Tensor(np.array([s >> 32, s & 0xFFFFFFFF], dtype=np.uint32), D.uint32)


PRNGKey = key


def split(k, num: int = 2):
    bits = lax.random_bits(k, shape=(num, 2))
    return [bits[i] for i in range(num)] if num != 2 else (bits[0], bits[1])


def bits(k, shape) -> Tensor:
    return lax.random_bits(k, shape=tuple(shape))


def uniform(k, shape, dtype=D.float32, minval=0.0, maxval=1.0) -> Tensor:
    """Floats in [minval, maxval): the top 24 bits of each draw, scaled by 2^-24."""
    u = lax.random_uniform(k, shape=tuple(shape), dtype=D.as_dtype(dtype))
    if (minval, maxval) != (0.0, 1.0):
        dt = u.dtype
        u = lax.add(lax.mul(u, lax.full((), maxval - minval, dt)), lax.full((), minval, dt))
    return u


def normal(k, shape, dtype=D.float32, mean=0.0, stddev=1.0) -> Tensor:
    """Box-Muller on two uniform draws."""
    k1, k2 = split(k)
    dt = D.as_dtype(dtype)
    u1 = lax.sub(lax.full((), 1.0, dt), uniform(k1, shape, dt))  # (0, 1]
    u2 = uniform(k2, shape, dt)
    r = lax.sqrt(lax.mul(lax.full((), -2.0, dt), lax.log(u1)))
    z = lax.mul(r, lax.cos(lax.mul(u2, lax.full((), 2 * math.pi, dt))))
    if (mean, stddev) != (0.0, 1.0):
        z = lax.add(lax.mul(z, lax.full((), stddev, dt)), lax.full((), mean, dt))
    return z


def bernoulli(k, p, shape) -> Tensor:
    return lax.lt(uniform(k, shape), lax.full((), p, D.float32))


_GLOBAL = {"state": None}


def set_seed(seed: int) -> None:
    """Reset the global RNG state (sf.set_seed); also seeds the dataset pipeline (dataset.config)."""
    _GLOBAL["seed"] = int(seed)
    if _GLOBAL["state"] is None:
        _GLOBAL["state"] = Parameter(key(seed), name="global_rng_state", requires_grad=False)
    else:
        _GLOBAL["state"].set_data(key(seed))
    np.random.seed(seed % (2 ** 32))


def global_state() -> Parameter:
    if _GLOBAL["state"] is None:
        set_seed(0)
    return _GLOBAL["state"]


def next_key(state: Parameter | None = None) -> Tensor:
    """Split `state` (the global RNG state by default), store the new state, return a fresh key."""
    state = state if state is not None else global_state()
    new_state, sub = split(state)
    assign(state, new_state)
    return sub


def default_key(seed=None) -> Tensor:
    return key(seed) if seed is not None else next_key()
