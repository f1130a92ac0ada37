"""Batched matrix multiply (kind OUT_EWISE_FUSABLE: elementwise epilogues fuse into it)."""
from __future__ import annotations

import numpy as np

from ..registry import Amp, Kind, def_op
from ..types import TensorType
from .common import check_allowed, check_arity, fail, same_dtype
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


matmul = def_op("matmul", infer=_matmul_infer, impl=_matmul_impl, kind=Kind.OUT_EWISE_FUSABLE, amp=Amp.LOW,
                attr_names=("transpose_a", "transpose_b"),
                doc="a[...,m,k] @ b[...,k,n] with equal batch dims; optional transposes of the last two axes",
                batch=B.batch_matmul)
