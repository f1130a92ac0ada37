"""N-d gather/scatter, roll, repeat, strided slices, and the data-dependent-shape ops (unique,
nonzero) under MindSpore 2.x names.

All are compositions of existing primitives: an N-d index becomes a flat offset into the
leading dims (a dot with the row-major strides), then one `take` / `scatter_add` on axis 0.
unique / nonzero have output shapes that depend on the data, which a compiled graph cannot
have (MindSpore's static graph restricts them too): they run eagerly and raise under jit.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...ir import dtypes as D
from ...core import lax
from ..tensor import Tensor, Tracer
from ._core import norm_axis, shape_tuple, tensor
from .array_ops import broadcast_to, cat, getitem, narrow, reshape, scatter_replace


def _int_indices(who: str, indices) -> Tensor:
    idx = tensor(indices)
    if not idx.dtype.is_int:
        raise TypeError(f"{who}: indices must be an integer tensor, got {idx.dtype.name}")
    if idx.ndim == 0:
        raise ValueError(f"{who}: indices must have at least one dim, got a scalar")
    return idx


def _flat_offsets(who: str, idx: Tensor, shape: tuple[int, ...]) -> Tensor:
    """[..., k] N-d indices into the first k dims of `shape` -> [...] int32 row-major offsets;
    negative indices count from the end, as in MindSpore."""
    k = idx.shape[-1]
    if k > len(shape):
        raise ValueError(f"{who}: indices' last dim {k} exceeds the rank {len(shape)} of shape {shape}")
    lead = shape[:k]
    strides = np.array([int(np.prod(lead[i + 1:])) for i in range(k)], dtype=np.int32)
    if not isinstance(idx, Tracer) and idx.size:
        a = idx.asnumpy()
        if (a < -np.array(lead)).any() or (a >= np.array(lead)).any():
            raise IndexError(f"{who}: an index is out of bounds for the dims {lead}")
    i = lax.convert(idx, D.int32)
    if idx.dtype.is_signed:
        dims = lax.const(np.array(lead, dtype=np.int32), D.int32)
        i = lax.select(lax.lt(i, lax.zeros_like(i)), lax.add(i, lax.broadcast_to(dims, shape=i.shape)), i)
    prod = lax.mul(i, lax.broadcast_to(lax.const(strides, D.int32), shape=i.shape))
    return lax.reduce_sum(prod, axes=(i.ndim - 1,), keepdims=False)


def gather_nd(input_x, indices):
    """ops.gather_nd: out[i...] = input_x[indices[i..., 0], ..., indices[i..., k-1], :]."""
    x = tensor(input_x)
    idx = _int_indices("gather_nd", indices)
    k = idx.shape[-1]
    flat = reshape(x, (int(np.prod(x.shape[:k])),) + x.shape[k:])
    return lax.take(flat, _flat_offsets("gather_nd", idx, x.shape), axis=0)


def _scatter_operands(who: str, x_shape: tuple, indices, updates):
    idx = _int_indices(who, indices)
    k = idx.shape[-1]
    want = idx.shape[:-1] + tuple(x_shape[k:])
    upd = tensor(updates)
    if upd.shape != want:
        raise ValueError(f"{who}: updates must have shape indices.shape[:-1] + shape[{k}:] = {want}, "
                         f"got {upd.shape} (indices {idx.shape}, shape {tuple(x_shape)})")
    n_lead = int(np.prod(x_shape[:k]))
    offs = reshape(_flat_offsets(who, idx, tuple(x_shape)), (-1,))
    return offs, reshape(upd, (-1,) + tuple(x_shape[k:])), n_lead


def scatter_nd(indices, updates, shape):
    """ops.scatter_nd: zeros of `shape` with `updates` added at `indices` (duplicates sum)."""
    shape = shape_tuple(shape)
    offs, upd, n_lead = _scatter_operands("scatter_nd", shape, indices, updates)
    zeros = lax.full((n_lead,) + shape[len(shape) - upd.ndim + 1:], 0, upd.dtype)
    return reshape(lax.scatter_add(zeros, offs, upd, axis=0), shape)


def tensor_scatter_update(input_x, indices, updates):
    """ops.tensor_scatter_update: input_x with the slices at `indices` replaced by `updates`
    (a position given twice gets the mean of its updates; MindSpore leaves that order undefined)."""
    x = tensor(input_x)
    offs, upd, n_lead = _scatter_operands("tensor_scatter_update", x.shape, indices, updates)
    upd = lax.convert(upd, x.dtype)
    inner = int(np.prod(upd.shape[1:]))
    # each slice offset -> the offsets of its elements in the flattened tensor
    elem = lax.add(lax.mul(reshape(offs, (-1, 1)), lax.full((), inner, D.int32)),
                   lax.iota(shape=(1, inner), axis=1, dtype=D.int32))
    return reshape(scatter_replace(reshape(x, (-1,)), reshape(elem, (-1,)), reshape(upd, (-1,))), x.shape)


def tensor_scatter_add(input_x, indices, updates):
    """ops.tensor_scatter_add: input_x with `updates` added at `indices` (duplicates sum)."""
    x = tensor(input_x)
    offs, upd, n_lead = _scatter_operands("tensor_scatter_add", x.shape, indices, updates)
    flat = reshape(x, (n_lead,) + upd.shape[1:])
    return reshape(lax.scatter_add(flat, offs, lax.convert(upd, x.dtype), axis=0), x.shape)


def roll(input, shifts, dims=None):
    """ops.roll: elements shifted along `dims` (flattened first when dims is None), wrapping."""
    x = tensor(input)
    if dims is None:
        return reshape(roll(reshape(x, (-1,)), shifts, 0), x.shape)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    for s, d in zip(shifts, dims):
        ax = norm_axis(d, x.ndim)
        n = x.shape[ax]
        s = int(s) % n if n else 0
        if s:
            x = cat([narrow(x, ax, n - s, s), narrow(x, ax, 0, n - s)], ax)
    return x


def repeat_elements(x, rep, axis=0):
    """ops.repeat_elements: every slice along `axis` repeated `rep` times in place (np.repeat)."""
    x = tensor(x)
    ax = norm_axis(axis, x.ndim)
    y = reshape(x, x.shape[:ax + 1] + (1,) + x.shape[ax + 1:])
    y = broadcast_to(y, x.shape[:ax + 1] + (int(rep),) + x.shape[ax + 1:])
    return reshape(y, x.shape[:ax] + (x.shape[ax] * int(rep),) + x.shape[ax + 1:])


def repeat_interleave(input, repeats, axis=None):
    """ops.repeat_interleave / Tensor.repeat: np.repeat semantics (axis None flattens first;
    per-element counts as a list are a gather with static indices)."""
    x = tensor(input)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    ax = norm_axis(axis, x.ndim)
    if isinstance(repeats, Tensor):
        if isinstance(repeats, Tracer):
            raise TypeError("repeat_interleave: traced repeats give a data-dependent shape; pass an int or a list")
        repeats = repeats.asnumpy().tolist()
    if isinstance(repeats, (int, np.integer)):
        return repeat_elements(x, int(repeats), ax)
    repeats = list(repeats)
    if len(repeats) == 1:
        return repeat_elements(x, int(repeats[0]), ax)
    if len(repeats) != x.shape[ax]:
        raise ValueError(f"repeat: {len(repeats)} repeat counts for an axis of size {x.shape[ax]}")
    idx = np.repeat(np.arange(x.shape[ax], dtype=np.int32), repeats)
    return lax.take(x, lax.const(idx, D.int32), axis=ax)


def strided_slice(input_x, begin: Sequence[int], end: Sequence[int], strides: Sequence[int],
                  begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0, shrink_axis_mask=0):
    """ops.StridedSlice's semantics: the masks' bit i refer to entry i of begin/end/strides
    (begin_mask: ignore begin[i]; end_mask: ignore end[i]; ellipsis_mask: entry i is `...`;
    new_axis_mask: entry i inserts a dim; shrink_axis_mask: entry i takes begin[i] and drops the dim).
    Built as the equivalent Python index, so it shares getitem's lowering."""
    key: list = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides)):
        bit = 1 << i
        if ellipsis_mask & bit:
            key.append(Ellipsis)
        elif new_axis_mask & bit:
            key.append(None)
        elif shrink_axis_mask & bit:
            key.append(int(b))
        else:
            key.append(slice(None if begin_mask & bit else int(b), None if end_mask & bit else int(e), int(s)))
    return getitem(tensor(input_x), tuple(key))


def _concrete(who: str, x) -> np.ndarray:
    t = tensor(x)
    if isinstance(t, Tracer):
        raise TypeError(f"ops.{who}: its output shape depends on the data, which a compiled graph cannot have "
                        f"(MindSpore's static graph restricts it too); call it outside jit, or use a "
                        f"fixed-size form (ops.topk, ops.where(cond, x, y), a mask)")
    return t.asnumpy()


def unique(input):
    """ops.unique: (sorted distinct values, int32 index of each input element in them). Eager only."""
    a = _concrete("unique", input)
    vals, inv = np.unique(a, return_inverse=True)
    dt = tensor(input).dtype
    return Tensor(vals, dt), Tensor(inv.reshape(a.shape).astype(np.int32), D.int32)


def nonzero(input, as_tuple=False):
    """ops.nonzero: int64 [N, ndim] coordinates of the non-zero elements (a tuple of ndim
    1-D tensors with as_tuple=True). Eager only."""
    a = _concrete("nonzero", input)
    coords = np.nonzero(a)
    if as_tuple:
        return tuple(Tensor(c.astype(np.int64), D.int64) for c in coords)
    return Tensor(np.stack(coords, axis=1).astype(np.int64).reshape(-1, a.ndim), D.int64)


__all__ = ["gather_nd", "scatter_nd", "tensor_scatter_update", "tensor_scatter_add", "roll", "repeat_elements",
           "repeat_interleave", "strided_slice", "unique", "nonzero"]
