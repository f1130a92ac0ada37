"""Shape, indexing, creation and matmul ops under MindSpore 2.x names."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...ir import dtypes as D
from ...ir.dtypes import as_dtype
from ...core import lax
from ..tensor import Tensor, Tracer
from ._core import norm_axes, norm_axis, promote, shape_tuple, tensor
from ..pytree import tree_map


# ---- shape ------------------------------------------------------------------------------------
def reshape(input, shape):
    x = tensor(input)
    shape = list(shape_tuple(shape))
    if shape.count(-1) > 1:
        raise ValueError(f"reshape: at most one -1 in {tuple(shape)}")
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1]))
        if known == 0 or x.size % known:
            raise ValueError(f"reshape: cannot reshape {x.shape} to {tuple(shape)}")
        shape[shape.index(-1)] = x.size // known
    shape = tuple(shape)
    return x if shape == x.shape else lax.reshape(x, shape=shape)


def transpose(input, input_perm):
    x = tensor(input)
    perm = tuple(norm_axis(int(p), x.ndim) for p in input_perm)
    return x if perm == tuple(range(x.ndim)) else lax.transpose(x, perm=perm)


permute = transpose


def swapaxes(input, axis0, axis1):
    x = tensor(input)
    perm = list(range(x.ndim))
    a, b = norm_axis(axis0, x.ndim), norm_axis(axis1, x.ndim)
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(x, perm)


def broadcast_to(input, shape):
    x = tensor(input)
    shape = shape_tuple(shape)
    shape = tuple(x.shape[i - len(shape) + x.ndim] if d == -1 else d for i, d in enumerate(shape))
    return x if shape == x.shape else lax.broadcast_to(x, shape=shape)


def expand_dims(input_x, axis):
    x = tensor(input_x)
    ax = norm_axis(axis, x.ndim + 1)
    return lax.reshape(x, shape=x.shape[:ax] + (1,) + x.shape[ax:])


unsqueeze = expand_dims


def squeeze(input, axis=None):
    x = tensor(input)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = norm_axes(axis, x.ndim)
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} of shape {x.shape} is not 1")
    return reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def flatten(input, order="C", *, start_dim=1, end_dim=-1):
    """MindSpore ops.flatten: dims start_dim..end_dim merged (default keeps the batch dim)."""
    x = tensor(input)
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = norm_axis(start_dim, x.ndim), norm_axis(end_dim, x.ndim)
    return reshape(x, x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:])


def cat(tensors: Sequence, axis=0):
    xs = promote(*tensors)
    ax = norm_axis(axis, xs[0].ndim)
    return xs[0] if len(xs) == 1 else lax.concatenate(*xs, axis=ax)


concat = cat


def stack(tensors: Sequence, axis=0):
    xs = promote(*tensors)
    ax = norm_axis(axis, xs[0].ndim + 1)
    return cat([expand_dims(x, ax) for x in xs], ax)


def split(tensor_, split_size_or_sections, axis=0):
    x = tensor(tensor_)
    ax = norm_axis(axis, x.ndim)
    n = x.shape[ax]
    if isinstance(split_size_or_sections, int):
        sizes = [split_size_or_sections] * (n // split_size_or_sections)
        if n % split_size_or_sections:
            sizes.append(n % split_size_or_sections)
    else:
        sizes = list(split_size_or_sections)
    out, start = [], 0
    for s in sizes:
        out.append(narrow(x, ax, start, s))
        start += s
    return tuple(out)


def chunk(input, chunks, axis=0):
    x = tensor(input)
    n = x.shape[norm_axis(axis, x.ndim)]
    return split(x, -(-n // chunks), axis)


def narrow(input, axis, start, length):
    x = tensor(input)
    ax = norm_axis(axis, x.ndim)
    st = [0] * x.ndim
    lim = list(x.shape)
    st[ax], lim[ax] = start, start + length
    return lax.slice(x, start=tuple(st), limit=tuple(lim), strides=(1,) * x.ndim)


def flip(input, dims):
    x = tensor(input)
    return lax.rev(x, axes=norm_axes(dims, x.ndim))


def tile(input, dims):
    x = tensor(input)
    dims = (1,) * (x.ndim - len(dims)) + tuple(dims)
    x = reshape(x, (1,) * (len(dims) - x.ndim) + x.shape)
    inter = []
    for r, d in zip(dims, x.shape):
        inter += [r, d]
    y = broadcast_to(reshape(x, tuple(v for d in x.shape for v in (1, d))), tuple(inter))
    return reshape(y, tuple(r * d for r, d in zip(dims, x.shape)))


def pad(input_x, padding, mode="constant", value=None):
    """ops.pad: `padding` pairs start from the LAST dim, as in MindSpore/PyTorch."""
    if mode != "constant":
        raise NotImplementedError(f"pad mode {mode!r} is not supported (only 'constant')")
    x = tensor(input_x)
    lo, hi = [0] * x.ndim, [0] * x.ndim
    for i in range(len(padding) // 2):
        lo[x.ndim - 1 - i], hi[x.ndim - 1 - i] = int(padding[2 * i]), int(padding[2 * i + 1])
    if min(lo + hi) < 0:
        raise ValueError("negative padding is not supported; slice instead")
    return lax.pad(x, lo=tuple(lo), hi=tuple(hi), interior=(0,) * x.ndim, value=float(value or 0))


# ---- selection / casting ----------------------------------------------------------------------------
def where(condition, x=None, y=None):
    if x is None and y is None:
        raise NotImplementedError("where(condition) returns a data-dependent shape and cannot be compiled")
    c = tensor(condition)
    if c.dtype is not D.bool_:
        c = lax.ne(c, lax.zeros_like(c))
    a, b = promote(x, y)
    return lax.select(c, a, b)


def select(cond, x, y):
    return where(cond, x, y)


def masked_fill(input_x, mask, value):
    x = tensor(input_x)
    return where(mask, lax.full((), value, x.dtype), x)


def cast(input, dtype):
    return lax.convert(tensor(input), as_dtype(dtype))


def stop_gradient(value):
    return tree_map(lambda t: lax.stop_gradient(t) if isinstance(t, Tensor) else t, value)


# ---- creation ---------------------------------------------------------------------------------------
def zeros(size, dtype=None):
    return lax.full(shape_tuple(size), 0, as_dtype(dtype or D.float32))


def ones(size, dtype=None):
    return lax.full(shape_tuple(size), 1, as_dtype(dtype or D.float32))


def full(size, fill_value, *, dtype=None):
    if dtype is None:
        dtype = D.float32 if isinstance(fill_value, float) else (D.bool_ if isinstance(fill_value, bool) else D.int64)
    return lax.full(shape_tuple(size), fill_value, as_dtype(dtype))


def fill(type, shape, value):
    return lax.full(shape_tuple(shape), value, as_dtype(type))


def zeros_like(input, *, dtype=None):
    x = tensor(input)
    return lax.full(x.shape, 0, as_dtype(dtype or x.dtype))


def ones_like(input, *, dtype=None):
    x = tensor(input)
    return lax.full(x.shape, 1, as_dtype(dtype or x.dtype))


def full_like(input, fill_value, *, dtype=None):
    x = tensor(input)
    return lax.full(x.shape, fill_value, as_dtype(dtype or x.dtype))


def arange(start=0, end=None, step=1, *, dtype=None):
    if end is None:
        start, end = 0, start
    n = max(int(np.ceil((end - start) / step)), 0)
    is_float = any(isinstance(v, float) for v in (start, end, step))
    dt = as_dtype(dtype or (D.float32 if is_float else D.int64))
    i = lax.iota(shape=(n,), axis=0, dtype=dt)
    if start == 0 and step == 1:
        return i
    return lax.add(lax.mul(i, lax.full((), step, dt)), lax.full((), start, dt))


def eye(n, m=None, dtype=None):
    m = n if m is None else m
    r = lax.iota(shape=(n, m), axis=0, dtype=D.int32)
    c = lax.iota(shape=(n, m), axis=1, dtype=D.int32)
    return lax.convert(lax.eq(r, c), as_dtype(dtype or D.float32))


def one_hot(indices, depth, on_value=1.0, off_value=0.0, axis=-1):
    idx = tensor(indices)
    ax = norm_axis(axis, idx.ndim + 1)
    shape = idx.shape[:ax] + (depth,) + idx.shape[ax:]
    pos = lax.iota(shape=shape, axis=ax, dtype=idx.dtype)
    hit = lax.eq(pos, lax.broadcast_to(expand_dims(idx, ax), shape=shape))
    on, off = promote(on_value, off_value) if not isinstance(on_value, (int, float)) else (
        lax.full((), on_value, D.float32), lax.full((), off_value, D.float32))
    return lax.select(hit, on, off)


# ---- gather ----------------------------------------------------------------------------------------------
def _index_tensor(idx):
    t = tensor(idx)
    if not t.dtype.is_int:
        raise TypeError(f"indices must be integers, got {t.dtype.name}")
    return t


def gather(input_params, input_indices, axis, batch_dims=0):
    x = tensor(input_params)
    return lax.take(x, _index_tensor(input_indices), axis=norm_axis(axis, x.ndim))


def index_select(input, axis, index):
    return gather(input, index, axis)


def gather_elements(input, dim, index):
    """out[i][j] = input[i][index[i][j]] along `dim` (as take_along_axis), via one-hot select."""
    x = tensor(input)
    ax = norm_axis(dim, x.ndim)
    idx = _index_tensor(index)
    oh = one_hot(idx, x.shape[ax], 1.0, 0.0, axis=ax + 1)  # [..., n_idx, depth, ...]
    xe = expand_dims(x, ax)
    return lax.reduce_sum(lax.mul(lax.convert(oh, x.dtype), xe), axes=(ax + 1,), keepdims=False)


def getitem(x: Tensor, key):
    """Tensor indexing: ints, slices (any step), None, Ellipsis, one integer array/tensor."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(isinstance(k, Tensor) and k.dtype is D.bool_ for k in key) or any(
            isinstance(k, np.ndarray) and k.dtype == np.bool_ for k in key):
        return _bool_mask_getitem(x, key)
    n_explicit = sum(1 for k in key if k is not None and k is not Ellipsis)
    if n_explicit > x.ndim:
        raise IndexError(f"too many indices ({n_explicit}) for a tensor of rank {x.ndim}")
    ells = [i for i, k in enumerate(key) if k is Ellipsis]  # `in` would compare arrays elementwise
    if len(ells) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if ells:
        i = ells[0]
        key = key[:i] + (slice(None),) * (x.ndim - n_explicit) + key[i + 1:]
    else:
        key = key + (slice(None),) * (x.ndim - n_explicit)
    # numpy puts the array index's dims first when advanced indices (ints, the array) are not
    # adjacent, e.g. x[1, :, [0, 2]]
    adv = [i for i, k in enumerate(key) if k is not None and not isinstance(k, slice)]
    has_array = any(isinstance(k, (list, np.ndarray, Tensor)) and not (
        isinstance(k, Tensor) and k.ndim == 0 and not _is_tracer(k) and k.dtype.is_int) for k in key)
    array_first = has_array and adv and adv[-1] - adv[0] + 1 != len(adv)
    starts, limits, strides, flips = [], [], [], []
    out_shape, array_idx = [], None
    dim = 0
    for k in key:
        if k is None:
            out_shape.append(("new", 1))
            continue
        size = x.shape[dim]
        if isinstance(k, slice):
            st, sp, step = k.indices(size)
            if step < 0:
                flips.append(dim)
                st, sp, step = size - 1 - st, size - 1 - sp, -step
            n = max(0, -(-(sp - st) // step))
            starts.append(st)
            limits.append(st + (n - 1) * step + 1 if n else st)
            strides.append(step)
            out_shape.append(("keep", n))
        elif isinstance(k, (int, np.integer)) or (isinstance(k, Tensor) and k.ndim == 0 and not _is_tracer(k)
                                                   and k.dtype.is_int):
            i = int(k)
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of bounds for axis {dim} with size {size}")
            i %= size
            starts.append(i), limits.append(i + 1), strides.append(1)
        elif isinstance(k, (list, np.ndarray, Tensor)):
            if array_idx is not None:
                raise IndexError("only one integer-array index is supported; index in two steps")
            array_idx = (len([s for s in out_shape if s[0] != "gone"]), _index_tensor(k), size)
            starts.append(0), limits.append(size), strides.append(1)
            out_shape.append(("array", size))
        else:
            raise IndexError(f"unsupported index {k!r}")
        dim += 1
    y = lax.rev(x, axes=tuple(flips)) if flips else x
    if (tuple(starts), tuple(limits), tuple(strides)) != ((0,) * x.ndim, x.shape, (1,) * x.ndim):
        y = lax.slice(y, start=tuple(starts), limit=tuple(limits), strides=tuple(strides))
    y = reshape(y, tuple(n for _, n in out_shape))
    if array_idx is not None:
        pos, idx, size = array_idx
        if not _is_tracer(idx) and idx.size and (idx.asnumpy().min() < -size or idx.asnumpy().max() >= size):
            raise IndexError(f"index out of bounds for axis with size {size}")
        if not _is_tracer(idx) and idx.size and idx.asnumpy().min() < 0:
            idx = Tensor(np.where(idx.asnumpy() < 0, idx.asnumpy() + size, idx.asnumpy()))
        elif _is_tracer(idx) and idx.dtype.is_signed:  # negative traced indices count from the end
            idx = lax.select(lax.lt(idx, lax.zeros_like(idx)), lax.add(idx, lax.full((), size, idx.dtype)), idx)
        y = lax.take(y, idx, axis=pos)
        if array_first and pos:
            nd = idx.ndim
            y = transpose(y, list(range(pos, pos + nd)) + list(range(pos)) + list(range(pos + nd, y.ndim)))
    return y


def setitem(x: Tensor, key, value) -> Tensor:
    """x with x[key] = value (numpy broadcasting of value; any key getitem accepts), as a new
    tensor: the positions are found by indexing an iota with the same key, then selected.
    Values pass through float64 (exact for floats and for integers below 2**53)."""
    x = tensor(x)
    pos = lax.iota(shape=x.shape, axis=0, dtype=D.int32) if x.ndim == 1 else reshape(
        lax.iota(shape=(max(x.size, 1),), axis=0, dtype=D.int32)[: x.size], x.shape)
    sel = getitem(pos, key)
    v = lax.convert(tensor(value), x.dtype)
    v = broadcast_to(v, sel.shape) if v.shape != sel.shape else v
    return reshape(scatter_replace(reshape(x, (-1,)), reshape(sel, (-1,)), reshape(v, (-1,))), x.shape)


def scatter_replace(flat_x: Tensor, flat_idx: Tensor, flat_vals: Tensor) -> Tensor:
    """flat_x with flat_x[flat_idx[i]] = flat_vals[i] (1-D operands), differentiable in both.
    Values pass through float64 (exact for floats and for integers below 2**53)."""
    n = flat_x.shape[0]
    hit = lax.scatter_add(lax.full((n,), 0, D.int32), flat_idx, lax.full(flat_idx.shape, 1, D.int32), axis=0)
    # a position written several times (x[[0, 0]] = v) gets the mean of its writes: exact when
    # they agree, as with a scalar value; numpy's "last write wins" has no order to follow here
    acc = D.float64
    vals = lax.scatter_add(lax.full((n,), 0, acc), flat_idx, lax.convert(flat_vals, acc), axis=0)
    vals = lax.div(vals, lax.convert(lax.maximum(hit, lax.full((), 1, D.int32)), acc))
    vals = lax.ne(vals, lax.zeros_like(vals)) if flat_x.dtype is D.bool_ else lax.convert(vals, flat_x.dtype)
    return lax.select(lax.gt(hit, lax.zeros_like(hit)), vals, flat_x)


def _bool_mask_getitem(x: Tensor, key: tuple) -> Tensor:
    """x[mask] with one boolean mask over the leading dims: when the mask is concrete (eagerly,
    or a numpy/constant mask under a trace) the positions are known and it becomes a gather; a
    traced mask would make the shape depend on data."""
    mask = key[0]
    if len(key) != 1 or _is_tracer(mask):
        raise IndexError("boolean-mask indexing gives a data-dependent shape, which compiled code cannot have "
                         "(and sporeflow supports it eagerly only as x[mask]); use ops.where / ops.masked_fill")
    m = mask.asnumpy() if isinstance(mask, Tensor) else np.asarray(mask)
    if m.shape != x.shape[:m.ndim]:
        raise IndexError(f"boolean mask of shape {m.shape} does not match the tensor's leading dims {x.shape}")
    flat = reshape(x, (-1,) + x.shape[m.ndim:])
    return lax.take(flat, Tensor(np.flatnonzero(m).astype(np.int64)), axis=0)


def _is_tracer(x) -> bool:
    return isinstance(x, Tracer)


# ---- matmul --------------------------------------------------------------------------------------------
def matmul(input, other):
    """numpy matmul semantics (1-D operands, broadcast batch dims) on the batched primitive."""
    a, b = promote(input, other)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: scalar operands are not allowed; use mul")
    va, vb = a.ndim == 1, b.ndim == 1
    if va:
        a = reshape(a, (1, a.shape[0]))
    if vb:
        b = reshape(b, (b.shape[0], 1))
    if b.ndim == 2 and a.ndim > 2:
        lead = a.shape[:-1]
        out = lax.matmul(reshape(a, (-1, a.shape[-1])), b, transpose_a=False, transpose_b=False)
        out = reshape(out, lead + (b.shape[-1],))
    else:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a = broadcast_to(a, batch + a.shape[-2:])
        b = broadcast_to(b, batch + b.shape[-2:])
        out = lax.matmul(a, b, transpose_a=False, transpose_b=False)
    if va:
        out = squeeze(out, out.ndim - 2)
    if vb:
        out = squeeze(out, out.ndim - 1)
    return out


def bmm(input_x, mat2):
    return matmul(input_x, mat2)


def dense(input, weight, bias=None):
    """x @ weight.T + bias (weight is [out, in], as nn.Dense stores it)."""
    x, w = promote(input, weight)
    lead = x.shape[:-1]
    y = lax.matmul(reshape(x, (-1, x.shape[-1])), w, transpose_a=False, transpose_b=True)
    if bias is not None:
        y = lax.add(y, lax.convert(tensor(bias), y.dtype))
    return reshape(y, lead + (w.shape[0],))


def tensor_dot(x1, x2, axes):
    a, b = promote(x1, x2)
    if isinstance(axes, int):
        ax_a, ax_b = tuple(range(a.ndim - axes, a.ndim)), tuple(range(axes))
    else:
        ax_a, ax_b = norm_axes(axes[0], a.ndim), norm_axes(axes[1], b.ndim)
    free_a = [i for i in range(a.ndim) if i not in ax_a]
    free_b = [i for i in range(b.ndim) if i not in ax_b]
    k = int(np.prod([a.shape[i] for i in ax_a]))
    am = reshape(transpose(a, free_a + list(ax_a)), (-1, k))
    bm = reshape(transpose(b, list(ax_b) + free_b), (k, -1))
    out = lax.matmul(am, bm, transpose_a=False, transpose_b=False)
    return reshape(out, tuple(a.shape[i] for i in free_a) + tuple(b.shape[i] for i in free_b))


def linspace(start, end, steps):
    """`steps` evenly spaced float32 values from start to end inclusive."""
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"linspace: steps must be >= 0, got {steps}")
    if steps == 0:
        return lax.full((0,), 0.0, D.float32)
    i = lax.iota(shape=(steps,), axis=0, dtype=D.float32)
    step = (float(end) - float(start)) / (steps - 1) if steps > 1 else 0.0
    out = lax.add(lax.mul(i, lax.full((), step, D.float32)), lax.full((), float(start), D.float32))
    if steps > 1:   # the last point is exactly `end`
        out = lax.select(lax.eq(i, lax.full((), steps - 1, D.float32)), lax.full((steps,), float(end), D.float32), out)
    return out
