"""Linear-algebra and ordering ops under MindSpore names: outer, inner, dot, norm, tril, triu,
diag, cumsum, sort, topk. All are decompositions into primitives (no new primitive needed):
cumsum is a product with a triangular matrix, sort/topk rank each element by counting
comparisons (O(n^2) along the axis, fine for the class counts and sequence lengths they serve).
"""
from __future__ import annotations

import math

from ...ir import dtypes as D
from ...core import lax
from . import math_ops as M
from .array_ops import expand_dims, matmul, reshape, swapaxes, tensor_dot
from ._core import float_of, norm_axes, norm_axis, promote, tensor


def outer(input, vec2):
    a, b = promote(input, vec2)
    return lax.mul(reshape(a, (-1, 1)), reshape(b, (1, -1)))


def inner(input, other):
    a, b = promote(input, other)
    if a.ndim == 0 or b.ndim == 0:
        return M.mul(a, b)
    return tensor_dot(a, b, ((a.ndim - 1,), (b.ndim - 1,)))


def dot(input, other):
    """numpy.dot semantics (see sporeflow.numpy.dot)."""
    a, b = promote(input, other)
    if a.ndim == 0 or b.ndim == 0:
        return M.mul(a, b)
    if b.ndim <= 2:
        return matmul(a, b)
    return tensor_dot(a, b, ((a.ndim - 1,), (b.ndim - 2,)))


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """Vector norms over `dim` (all axes by default): ord None/2 (Euclidean, Frobenius for
    matrices), 1, inf, -inf, 0, or any p > 0. Matrix norms that need an SVD are not supported."""
    x = float_of(tensor(A))
    if dtype is not None:
        x = lax.convert(x, dtype)
    axes = norm_axes(dim, x.ndim)
    kd = bool(keepdim)
    if ord in (None, 2, "fro"):
        if ord == 2 and len(axes) == 2:
            raise NotImplementedError("ops.norm: the matrix 2-norm needs an SVD, which sporeflow does not have; "
                                      "use ord='fro' or a vector norm over one dim")
        return M.sqrt(M.sum(M.mul(x, x), axes, kd))
    if ord == 1:
        return M.sum(M.abs(x), axes, kd)
    if ord == math.inf:
        return M.amax(M.abs(x), axes, kd)
    if ord == -math.inf:
        return M.amin(M.abs(x), axes, kd)
    if ord == 0:
        return M.sum(lax.convert(M.not_equal(x, 0.0), x.dtype), axes, kd)
    if isinstance(ord, (int, float)) and ord > 0:
        return M.pow(M.sum(M.pow(M.abs(x), float(ord)), axes, kd), 1.0 / ord)
    raise NotImplementedError(f"ops.norm: ord={ord!r} is not supported")


def _tri_mask(x, diagonal: int, lower: bool):
    rows, cols = x.shape[-2], x.shape[-1]
    r = lax.iota(shape=(rows, cols), axis=0, dtype=D.int64)
    c = lax.iota(shape=(rows, cols), axis=1, dtype=D.int64)
    shifted = lax.add(r, lax.full((), int(diagonal), D.int64))
    return lax.le(c, shifted) if lower else lax.ge(c, shifted)


def tril(input, diagonal=0):
    x = tensor(input)
    return lax.select(_tri_mask(x, diagonal, True), x, lax.zeros_like(x))


def triu(input, diagonal=0):
    x = tensor(input)
    return lax.select(_tri_mask(x, diagonal, False), x, lax.zeros_like(x))


def diag(input):
    """1-D -> the square matrix with it on the diagonal; 2-D -> its main diagonal."""
    x = tensor(input)
    if x.ndim == 1:
        n = x.shape[0]
        eye = lax.eq(lax.iota(shape=(n, n), axis=0, dtype=D.int32), lax.iota(shape=(n, n), axis=1, dtype=D.int32))
        return lax.select(eye, lax.broadcast_to(reshape(x, (1, n)), shape=(n, n)), lax.zeros_like(
            lax.broadcast_to(reshape(x, (1, n)), shape=(n, n))))
    if x.ndim == 2:
        n = min(x.shape)
        idx = lax.iota(shape=(n,), axis=0, dtype=D.int32)
        rows = lax.take(x, idx, axis=0)                              # [n, cols]
        return lax.reduce_sum(lax.select(lax.eq(lax.iota(shape=rows.shape, axis=1, dtype=D.int32),
                                                lax.broadcast_to(reshape(idx, (n, 1)), shape=rows.shape)),
                                         rows, lax.zeros_like(rows)), axes=(1,), keepdims=False)
    raise ValueError(f"diag: input must be 1-D or 2-D, got shape {x.shape}")


def cumsum(input, axis, dtype=None):
    """Running sum along `axis` (a product with an upper-triangular ones matrix; integers are
    summed in float64, exact below 2**53)."""
    x = tensor(input)
    out_dt = D.as_dtype(dtype) if dtype is not None else (D.int64 if x.dtype is D.bool_ else x.dtype)
    ax = norm_axis(axis, x.ndim)
    work = D.float64 if not out_dt.is_float else (D.float32 if out_dt.is_half else out_dt)
    y = swapaxes(lax.convert(x, work), ax, -1)
    n = y.shape[-1]
    upper = lax.convert(lax.le(lax.iota(shape=(n, n), axis=0, dtype=D.int32),
                               lax.iota(shape=(n, n), axis=1, dtype=D.int32)), work)
    return lax.convert(swapaxes(matmul(y, upper), ax, -1), out_dt)


def _rank(x, descending: bool):
    """Stable sorted position of every element along the last axis: int32 [..., n]."""
    xi, xj = expand_dims(x, -1), expand_dims(x, -2)            # [..., n, 1], [..., 1, n]
    n = x.shape[-1]
    strictly = lax.gt(xj, xi) if descending else lax.lt(xj, xi)
    j_lt_i = lax.lt(lax.iota(shape=(n, n), axis=1, dtype=D.int32), lax.iota(shape=(n, n), axis=0, dtype=D.int32))
    ties = lax.logical_and(lax.eq(xj, xi), lax.broadcast_to(j_lt_i, shape=strictly.shape))
    return lax.reduce_sum(lax.convert(lax.logical_or(strictly, ties), D.int32), axes=(x.ndim,), keepdims=False)


def sort(input_x, axis=-1, descending=False):
    """(sorted values, int32 indices) along `axis`, stable. NaNs are not ordered."""
    x = tensor(input_x)
    ax = norm_axis(axis, x.ndim)
    y = swapaxes(x, ax, -1)
    n = y.shape[-1]
    rank = _rank(y, descending)                                 # [..., n]: where element i goes
    perm = lax.eq(expand_dims(rank, -2), lax.broadcast_to(lax.iota(shape=(n, 1), axis=0, dtype=D.int32),
                                                          shape=rank.shape[:-1] + (n, n)))  # [..., r, i]
    work = D.float64 if not x.dtype.is_float else (D.float32 if x.dtype.is_half else x.dtype)
    vals = lax.reduce_sum(lax.select(perm, lax.convert(lax.broadcast_to(expand_dims(y, -2), shape=perm.shape),
                                                       work), lax.full(perm.shape, 0, work)),
                          axes=(perm.ndim - 1,), keepdims=False)
    idx = lax.reduce_sum(lax.select(perm, lax.iota(shape=perm.shape, axis=perm.ndim - 1, dtype=D.int32),
                                    lax.full(perm.shape, 0, D.int32)), axes=(perm.ndim - 1,), keepdims=False)
    return swapaxes(lax.convert(vals, x.dtype), ax, -1), swapaxes(idx, ax, -1)


def topk(input, k, dim=None, largest=True, sorted=True):
    """(values, int32 indices) of the k largest (smallest) entries along `dim` (last by default)."""
    x = tensor(input)
    ax = norm_axis(-1 if dim is None else dim, x.ndim)
    if not 0 <= k <= x.shape[ax]:
        raise ValueError(f"topk: k={k} out of range for a dim of size {x.shape[ax]}")
    vals, idx = sort(x, ax, descending=largest)
    st, lim = [0] * x.ndim, list(x.shape)
    lim[ax] = k
    cut = dict(start=tuple(st), limit=tuple(lim), strides=(1,) * x.ndim)
    return lax.slice(vals, **cut), lax.slice(idx, **cut)
