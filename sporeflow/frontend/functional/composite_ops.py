"""Composite ops under MindSpore 2.x names: clipping, einsum, interpolate, shape queries.

Every one is a composition of existing primitives, so grad / vmap / every backend take them
as they are; none needs a kernel of its own.
"""
from __future__ import annotations

import string
from typing import Sequence

import numpy as np

from ...ir import dtypes as D
from ...core import lax
from ..tensor import Tensor
from . import math_ops as M
from ._core import float_of, promote, tensor
from .array_ops import broadcast_to, matmul, reshape, transpose


def shape(input) -> tuple[int, ...]:
    """ops.shape: the static shape as a tuple of ints."""
    return tuple(tensor(input).shape)


def rank(input_x) -> int:
    """ops.rank: the number of dims."""
    return tensor(input_x).ndim


# ---- clipping ------------------------------------------------------------------------------------
def clip_by_value(x, clip_value_min=None, clip_value_max=None):
    """ops.clip_by_value: elementwise clamp of a tensor or of each tensor of a list/tuple."""
    if clip_value_min is None and clip_value_max is None:
        raise ValueError("clip_by_value: at least one of clip_value_min and clip_value_max must be given")
    if isinstance(x, (list, tuple)):
        return type(x)(clip_by_value(t, clip_value_min, clip_value_max) for t in x)
    return M.clamp(x, clip_value_min, clip_value_max)


def global_norm(x: Sequence) -> Tensor:
    """sqrt of the sum of squares of every element of every tensor of `x` (in float64 when
    any tensor is float64, else float32)."""
    ts = [float_of(tensor(t)) for t in x]
    acc = D.float64 if any(t.dtype is D.float64 for t in ts) else D.float32
    total = None
    for t in ts:
        t = lax.convert(t, acc)
        s = lax.reduce_sum(lax.mul(t, t), axes=tuple(range(t.ndim)), keepdims=False)
        total = s if total is None else lax.add(total, s)
    return lax.sqrt(total)


def clip_by_global_norm(x, clip_norm=1.0, use_norm=None):
    """ops.clip_by_global_norm: each t * clip_norm / max(global_norm(x), clip_norm), the
    TensorFlow/MindSpore formula; returns a tuple of the same length."""
    if not isinstance(x, (list, tuple)):
        x = (x,)
    if use_norm is not None:
        raise NotImplementedError("clip_by_global_norm: use_norm is not supported (MindSpore has it only as None too)")
    norm = global_norm(x)
    scale = M.div(float(clip_norm), M.maximum(norm, float(clip_norm)))
    return tuple(M.mul(t, lax.convert(scale, tensor(t).dtype)) if tensor(t).dtype.is_float else t for t in x)


# ---- einsum --------------------------------------------------------------------------------------------
def _expand_ellipsis(terms: list[str], ranks: list[int], out: str | None) -> tuple[list[str], str | None]:
    """'...' -> fresh upper-case letters, right-aligned as numpy broadcasts them."""
    n_ell = max((r - (len(t) - 3) for t, r in zip(terms, ranks) if "..." in t), default=0)
    letters = "".join(c for c in string.ascii_uppercase if not any(c in t for t in terms))[:n_ell]
    new = [t.replace("...", letters[n_ell - (r - (len(t) - 3)):]) if "..." in t else t for t, r in zip(terms, ranks)]
    if out is not None:
        out = out.replace("...", letters)
    return new, out


def _diagonal(x: Tensor, term: str) -> tuple[Tensor, str]:
    """Repeated letters within one operand ('ii') -> their diagonal, one letter each."""
    while len(set(term)) < len(term):
        c = next(ch for ch in term if term.count(ch) > 1)
        i, j = term.index(c), term.index(c, term.index(c) + 1)
        n = x.shape[i]
        if x.shape[j] != n:
            raise ValueError(f"einsum: index {c!r} has sizes {x.shape[i]} and {x.shape[j]}")
        mask_shape = [1] * x.ndim
        mask_shape[i], mask_shape[j] = n, n
        eye = reshape(lax.convert(lax.eq(lax.iota(shape=(n, n), axis=0, dtype=D.int32),
                                         lax.iota(shape=(n, n), axis=1, dtype=D.int32)), x.dtype), tuple(mask_shape))
        x = lax.reduce_sum(M.mul(x, eye), axes=(j,), keepdims=False)
        term = term[:j] + term[j + 1:]
    return x, term


def _sum_out(x: Tensor, term: str, keep: str) -> tuple[Tensor, str]:
    axes = tuple(i for i, c in enumerate(term) if c not in keep)
    if axes:
        x = lax.reduce_sum(x, axes=axes, keepdims=False)
        term = "".join(c for c in term if c in keep)
    return x, term


def _contract_pair(a: Tensor, ta: str, b: Tensor, tb: str, keep: str) -> tuple[Tensor, str]:
    """Two operands -> one batched matmul: batch letters (in both, kept), contracted (in both,
    not kept), and each side's own letters."""
    batch = [c for c in ta if c in tb and c in keep]
    contr = [c for c in ta if c in tb and c not in keep]
    left = [c for c in ta if c not in tb]
    right = [c for c in tb if c not in ta]
    size = {**dict(zip(ta, a.shape)), **dict(zip(tb, b.shape))}
    for c in batch + contr:
        da, db = a.shape[ta.index(c)], b.shape[tb.index(c)]
        if da != db and 1 not in (da, db):
            raise ValueError(f"einsum: index {c!r} has sizes {da} and {db}")
        size[c] = max(da, db)

    def arrange(x, t, order, rows):
        x = transpose(x, [t.index(c) for c in order])
        full = tuple(size[c] for c in order)
        x = broadcast_to(x, full) if x.shape != full else x
        nb = len(batch)
        bshape = full[:nb]
        r = int(np.prod([size[c] for c in rows[0]]))
        k = int(np.prod([size[c] for c in rows[1]]))
        return reshape(x, bshape + (r, k))

    am = arrange(a, ta, batch + left + contr, (left, contr))
    bm = arrange(b, tb, batch + contr + right, (contr, right))
    out = matmul(am, bm)
    term = "".join(batch + left + right)
    return reshape(out, tuple(size[c] for c in term)), term


def einsum(equation: str, *operands):
    """ops.einsum: Einstein summation ('ij,jk->ik', '...ij,...jk', 'ii->i', implicit output).
    Operands are contracted left to right, each pair as one batched matmul."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    lhs, out = (eq.split("->") + [None])[:2] if "->" in eq else (eq, None)
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: {equation!r} names {len(terms)} operand(s), got {len(operands)}")
    xs = promote(*operands)
    for t, x in zip(terms, xs):
        if len(t.replace("...", "")) + (x.ndim - len(t.replace("...", "")) if "..." in t else 0) != x.ndim:
            raise ValueError(f"einsum: term {t!r} does not match an operand of shape {x.shape}")
    terms, out = _expand_ellipsis(terms, [x.ndim for x in xs], out)
    if out is None:   # implicit: the letters seen once, sorted (numpy's rule; broadcast dims first)
        letters = "".join(terms)
        out = "".join(sorted(c for c in set(letters) if c.isupper())) + \
            "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and not c.isupper()))
    pairs = [_diagonal(x, t) for x, t in zip(xs, terms)]
    acc, ta = pairs[0]
    for i, (b, tb) in enumerate(pairs[1:], start=1):
        later = out + "".join(t for _, t in pairs[i + 1:])
        acc, ta = _sum_out(acc, ta, later + tb)
        b, tb = _sum_out(b, tb, later + ta)
        acc, ta = _contract_pair(acc, ta, b, tb, later)
    acc, ta = _sum_out(acc, ta, out)
    missing = [c for c in out if c not in ta]
    if missing:
        raise ValueError(f"einsum: output index {missing[0]!r} appears in no operand")
    return transpose(acc, [ta.index(c) for c in out]) if ta != out else acc


# ---- interpolate -------------------------------------------------------------------------------------
def _source_index(n_in: int, n_out: int, mode: str, align_corners: bool, scale: float | None):
    """Per output position: (i0, i1, w) with out = x[i0] * (1 - w) + x[i1] * w (static numpy)."""
    dst = np.arange(n_out, dtype=np.float64)
    ratio = (n_in / n_out) if scale is None else 1.0 / scale
    if mode in ("nearest", "nearest-exact"):
        src = dst * ratio if mode == "nearest" else (dst + 0.5) * ratio
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        return i0, i0, np.zeros(n_out)
    if align_corners:
        src = dst * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros(n_out)
    else:
        src = np.maximum((dst + 0.5) * ratio - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0


def _resample_axis(x: Tensor, axis: int, n_out: int, mode: str, align_corners: bool, scale) -> Tensor:
    n_in = x.shape[axis]
    if mode == "area":
        # adaptive average: output i averages input [floor(i*n/m), ceil((i+1)*n/m))
        w = np.zeros((n_out, n_in))
        for i in range(n_out):
            lo, hi = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
            w[i, lo:hi] = 1.0 / (hi - lo)
        return _apply_matrix(x, axis, w)
    i0, i1, wt = _source_index(n_in, n_out, mode, align_corners, scale)
    lo = lax.take(x, lax.const(i0.astype(np.int32), D.int32), axis=axis)
    if not wt.any():
        return lo
    hi = lax.take(x, lax.const(i1.astype(np.int32), D.int32), axis=axis)
    shape = [1] * x.ndim
    shape[axis] = n_out
    w = lax.convert(lax.const(wt.reshape(shape), D.float64), x.dtype)
    return M.add(lo, M.mul(M.sub(hi, lo), w))


def _apply_matrix(x: Tensor, axis: int, w: np.ndarray) -> Tensor:
    """y[..., i, ...] = sum_j w[i, j] x[..., j, ...] along `axis`."""
    perm = [i for i in range(x.ndim) if i != axis] + [axis]
    y = transpose(x, perm)
    y = matmul(y, lax.convert(lax.const(w.T, D.float64), x.dtype))
    inv = np.argsort(perm)
    return transpose(y, list(inv))


_MODES_RANK = {"nearest": (3, 4, 5), "nearest-exact": (3, 4), "linear": (3,), "bilinear": (4,),
               "trilinear": (5,), "area": (3, 4, 5)}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None):
    """ops.interpolate on (N, C, [D,] [H,] W) inputs; separable per spatial axis (a static
    gather and a lerp, or an averaging matrix for 'area'). 'bicubic' is not supported."""
    x = float_of(tensor(input))
    if mode not in _MODES_RANK:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported (supported: {sorted(_MODES_RANK)})")
    if x.ndim not in _MODES_RANK[mode]:
        raise ValueError(f"interpolate: mode {mode!r} takes a {_MODES_RANK[mode]}-D input, got shape {x.shape}")
    if align_corners and mode not in ("linear", "bilinear", "trilinear"):
        raise ValueError(f"interpolate: align_corners applies to linear modes only, not {mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    spatial = x.shape[2:]
    if size is not None:
        sizes = (size,) * len(spatial) if isinstance(size, int) else tuple(size)
        scales = (None,) * len(spatial)
    else:
        scales = (scale_factor,) * len(spatial) if isinstance(scale_factor, (int, float)) else tuple(scale_factor)
        sizes = tuple(int(np.floor(n * s)) for n, s in zip(spatial, scales))
        if recompute_scale_factor:
            scales = (None,) * len(spatial)
    if len(sizes) != len(spatial):
        raise ValueError(f"interpolate: size/scale_factor needs {len(spatial)} entries for input {x.shape}")
    for i, (n_out, sc) in enumerate(zip(sizes, scales)):
        if n_out != spatial[i] or sc not in (None, 1, 1.0):
            x = _resample_axis(x, 2 + i, int(n_out), mode, bool(align_corners), sc)
    return x


__all__ = ["shape", "rank", "clip_by_value", "clip_by_global_norm", "einsum", "interpolate"]
