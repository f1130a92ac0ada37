"""Counter-based random bits (Threefry-2x32, 20 rounds, as in JAX/Random123).

`random_bits(key)` with key u32[2] gives u32[shape]: element i (row-major) is the first word
of threefry2x32(key, (i >> 32, i & 0xffffffff)). Being a pure function of (key, index), every
backend produces the same numbers and runs are reproducible; keys are split by drawing bits.
"""
from __future__ import annotations

import numpy as np

from ..ir.dtypes import uint32
from ..ir.registry import Kind, NOT_DIFFERENTIABLE, def_op
from ..ir.types import TensorType
from .batching import moveaxis
from .common import check_arity, fail, lax
from ..passes import vmap as V

ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
PARITY = 0x1BD11BDA


# ---- random ---------------------------------------------------------------------------------
def batch_random(name: str):
    """A batched key gives each example its own bits: a scan over the keys (the draw is a pure
    function of (key, index), so per-example draws are exactly what a loop would produce)."""
    def rule(args, dims, **attrs):
        keys = moveaxis(args[0], dims[0], 0)
        n = keys.shape[0]
        body = V.trace_graph(lambda k: lax.multi(name, k, **attrs), [TensorType((2,), keys.dtype)],
                             f"{name}_per_key")
        return lax.multi("scan", keys, body=body, num_carry=0, length=n, reverse=False), [0]
    rule.__name__ = f"batch_{name}"
    return rule


def threefry2x32(k0: np.ndarray, k1: np.ndarray, c0: np.ndarray, c1: np.ndarray):
    """Reference Threefry-2x32 on uint32 arrays (broadcasting); returns both output words."""
    u = np.uint32
    ks = (u(k0), u(k1), u(k0) ^ u(k1) ^ u(PARITY))
    x0, x1 = (c0 + ks[0]).astype(np.uint32), (c1 + ks[1]).astype(np.uint32)
    for group in range(5):
        rots = ROTATIONS[:4] if group % 2 == 0 else ROTATIONS[4:]
        for r in rots:
            x0 = x0 + x1
            x1 = ((x1 << u(r)) | (x1 >> u(32 - r))) ^ x0
        x0 = x0 + ks[(group + 1) % 3]
        x1 = x1 + ks[(group + 2) % 3] + u(group + 1)
    return x0, x1


def _bits_infer(ts, attrs):
    check_arity(ts, 1)
    if ts[0].dtype is not uint32 or ts[0].shape != (2,):
        fail("key must be u32[2]", ts)
    if min(attrs["shape"], default=0) < 0:
        fail(f"shape {attrs['shape']} has a negative dimension", ts)
    return TensorType(tuple(attrs["shape"]), uint32)


def _bits_impl(key, shape):
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x0, _ = threefry2x32(key[0], key[1], (i >> np.uint64(32)).astype(np.uint32),
                             (i & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    return x0.reshape(shape)


random_bits = def_op("random_bits", infer=_bits_infer, impl=_bits_impl, kind=Kind.INJECTIVE,
                     vjp=NOT_DIFFERENTIABLE, attr_names=("shape",), compute_in_f32=False,
                     doc="u32 random bits from a u32[2] key, counter-based (Threefry-2x32)",
                     batch=batch_random("random_bits"))


def _uniform_infer(ts, attrs):
    _bits_infer(ts, attrs)
    dt = attrs["dtype"]
    if not dt.is_float:
        fail("dtype must be a float type")
    return TensorType(tuple(attrs["shape"]), dt)


def _uniform_impl(key, shape, dtype):
    u = (_bits_impl(key, shape) >> np.uint32(8)).astype(np.float64) * (1.0 / (1 << 24))
    return u.astype(np.float32 if dtype.is_half else dtype.storage)  # exact: 24-bit values


random_uniform = def_op("random_uniform", infer=_uniform_infer, impl=_uniform_impl, kind=Kind.INJECTIVE,
                        vjp=NOT_DIFFERENTIABLE, attr_names=("shape", "dtype"),
                        doc="floats in [0, 1): (random_bits >> 8) * 2^-24, so every dtype gets the same numbers",
                        batch=batch_random("random_uniform"))
