"""Conversions and dtype promotion shared by the functional ops.

Python scalars are "weak": `x * 2.0` keeps x's dtype (an int tensor times a float becomes
float32, as in MindSpore). Two tensors of different dtypes promote by `dtypes.result_type`.
The primitives themselves are strict; the casts are inserted here.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...ir import dtypes as D
from ...ir.dtypes import DType, as_dtype
from ...core import lax
from ..tensor import Tensor
from ...errors import ScalarOverflowError
from ...core.source import user_line_description


def is_tensor(x) -> bool:
    return isinstance(x, Tensor)


def tensor(x, dtype: DType | None = None) -> Tensor:
    """Anything array-like -> Tensor (no copy for a Tensor of the right dtype)."""
    if isinstance(x, Tensor):
        return x if dtype is None or x.dtype is as_dtype(dtype) else lax.convert(x, dtype)
    if dtype is None and isinstance(x, (float, int, bool)) and not isinstance(x, np.ndarray):
        dtype = D.bool_ if isinstance(x, bool) else (D.float32 if isinstance(x, float) else D.int64)
    if isinstance(x, int) and not isinstance(x, bool) and dtype is not None:
        dt = as_dtype(dtype)
        if dt.is_int:   # a weak Python int must fit (numpy 2 and JAX raise too); never wrap around
            info = np.iinfo(dt.storage)
            if not info.min <= x <= info.max:
                raise ScalarOverflowError(f"Python int {x} is out of range for {dt.name} [{info.min}, {info.max}]; "
                                          f"cast the tensor first (e.g. x.astype(sf.int64))\n  at "
                                          f"{user_line_description()}")
    return lax.const(np.asarray(x), dtype or D.from_numpy(np.asarray(x).dtype))


def _weak_dtype(scalar, other: DType) -> DType:
    if isinstance(scalar, bool):
        return other
    if isinstance(scalar, float) and not other.is_float:
        return D.float32
    if isinstance(scalar, int) and other is D.bool_:
        return D.int64   # bool tensor + 1 is int64, as in numpy and MindSpore
    return other


def promote(*xs) -> list[Tensor]:
    """Tensors of one common dtype; Python scalars take the tensors' dtype (weak typing)."""
    tensors = [x for x in xs if isinstance(x, Tensor)]
    if not tensors:
        tensors = [tensor(x) for x in xs]
        xs = tensors
    dt = tensors[0].dtype
    for t in tensors[1:]:
        dt = D.result_type(dt, t.dtype)
    for x in xs:
        if not isinstance(x, Tensor):
            if isinstance(x, np.ndarray):
                dt = D.result_type(dt, D.from_numpy(x.dtype))
            else:
                dt = D.result_type(dt, _weak_dtype(x, dt))
    return [lax.convert(x, dt) if isinstance(x, Tensor) else tensor(x, dt) for x in xs]


def norm_axes(axis, ndim: int) -> tuple[int, ...]:
    """None -> all axes; int or sequence -> sorted non-negative tuple (error when out of range)."""
    if axis is None or (isinstance(axis, (tuple, list)) and len(axis) == 0 and ndim == 0):
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = {norm_axis(int(a), ndim) for a in axes}
    return tuple(sorted(out)) if ndim else ()


def norm_axis(axis: int, ndim: int) -> int:
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise ValueError(f"axis {axis} is out of range for a tensor of rank {ndim}")
    return axis % max(ndim, 1)


def shape_tuple(shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) for d in shape)


def float_of(x: Tensor) -> Tensor:
    """Integer/bool tensors -> float32 (for ops that only make sense on floats)."""
    return x if x.dtype.is_float else lax.convert(x, D.float32)


def seq(xs: Sequence) -> list:
    return list(xs)
