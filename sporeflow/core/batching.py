"""Batch-axis builders the vmap pass and the batch rules share: move, materialize, merge and
split a batch axis with ordinary primitives (through `lax`)."""
from __future__ import annotations

from typing import Sequence

from . import lax


def axis_size(args: Sequence, dims: Sequence) -> int:
    """The batch size, read off the first batched argument."""
    return next(a.shape[d] for a, d in zip(args, dims) if d is not None)


def phys(axis: int, d: int | None) -> int:
    """Physical position of logical `axis` of a value batched at `d`."""
    return axis + 1 if d is not None and axis >= d else axis


def transpose(x, perm: Sequence[int]):
    perm = tuple(perm)
    return x if perm == tuple(range(x.ndim)) else lax.transpose(x, perm=perm)


def moveaxis(x, src: int, dst: int):
    """Move axis `src` to position `dst`; the other axes keep their order."""
    if src == dst:
        return x
    perm = [i for i in range(x.ndim) if i != src]
    perm.insert(dst, src)
    return lax.transpose(x, perm=tuple(perm))


def reshape(x, shape: Sequence[int]):
    shape = tuple(shape)
    return x if shape == tuple(x.shape) else lax.reshape(x, shape=shape)


def broadcast_batch(x, size: int, at: int = 0):
    """An unbatched value made batched (every example the same) with the batch axis at `at`."""
    shp = tuple(x.shape)
    y = reshape(x, shp[:at] + (1,) + shp[at:])
    return lax.broadcast_to(y, shape=shp[:at] + (size,) + shp[at:])


def materialize(x, d: int | None, size: int, at: int = 0):
    """x batched at axis `at`, broadcasting it first when it is unbatched."""
    return broadcast_batch(x, size, at) if d is None else moveaxis(x, d, at)


def merge(x, at: int):
    """Merge axes `at` and `at + 1` into one (the first one major)."""
    s = tuple(x.shape)
    return reshape(x, s[:at] + (s[at] * s[at + 1],) + s[at + 2:])


def split(x, at: int, size: int):
    """Split axis `at` into (size, rest), `size` major: the inverse of `merge`."""
    s = tuple(x.shape)
    return reshape(x, s[:at] + (size, s[at] // size) + s[at + 1:])


# ---- factories --------------------------------------------------------------------------------
