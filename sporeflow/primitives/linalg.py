"""Batched matrix multiply (kind OUT_EWISE_FUSABLE: elementwise epilogues fuse into it)."""
from __future__ import annotations

import numpy as np

from ..ir.registry import Amp, Kind, def_op
from ..ir.types import TensorType
from .ad_util import bilinear_jvp
from .common import check_allowed, check_arity, fail, lax, same_dtype
from . import batching as B


def _matmul_infer(ts, attrs):
    check_arity(ts, 2)
    check_allowed(ts, "numeric")
    same_dtype(ts)
    a, b = ts
    if a.ndim < 2 or a.ndim != b.ndim or a.shape[:-2] != b.shape[:-2]:
        fail("operands need rank >= 2 and equal batch dims (the frontend broadcasts them)", ts)
    m, k = a.shape[-2:][::-1] if attrs["transpose_a"] else a.shape[-2:]
    k2, n = b.shape[-2:][::-1] if attrs["transpose_b"] else b.shape[-2:]
    if k != k2:
        fail(f"contraction dims differ: {k} vs {k2}", ts)
    return TensorType(a.shape[:-2] + (m, n), a.dtype)


def _matmul_impl(a, b, transpose_a, transpose_b):
    if transpose_a:
        a = np.swapaxes(a, -1, -2)
    if transpose_b:
        b = np.swapaxes(b, -1, -2)
    return np.matmul(a, b)


# (transpose_a, transpose_b) -> how da and db are matmuls of (a, b, g): (lhs, rhs, ta, tb)
_MATMUL_GRADS = {
    (False, False): (("g", "b", False, True), ("a", "g", True, False)),    # da = g b^T, db = a^T g
    (False, True): (("g", "b", False, False), ("g", "a", True, False)),    # da = g b,   db = g^T a
    (True, False): (("b", "g", False, True), ("a", "g", False, False)),    # da = b g^T, db = a g
    (True, True): (("b", "g", True, True), ("g", "a", True, True)),        # da = b^T g^T, db = g^T a^T
}


def _matmul_vjp(ins, outs, douts, transpose_a, transpose_b):
    env = {"a": ins[0], "b": ins[1], "g": douts[0]}
    return [lax.matmul(env[l], env[r], transpose_a=ta, transpose_b=tb)
            for l, r, ta, tb in _MATMUL_GRADS[(bool(transpose_a), bool(transpose_b))]]


matmul = def_op("matmul", infer=_matmul_infer, impl=_matmul_impl, kind=Kind.OUT_EWISE_FUSABLE, amp=Amp.LOW,
                attr_names=("transpose_a", "transpose_b"), vjp=_matmul_vjp, jvp=bilinear_jvp("matmul"),
                transpose_flags=("transpose_a", "transpose_b"),
                doc="a[...,m,k] @ b[...,k,n] with equal batch dims; optional transposes of the last two axes",
                batch=B.batch_matmul)
