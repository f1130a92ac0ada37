"""MindSpore's printed form of a tensor, shared by `Tensor.__repr__` and the `print` primitive
(which prints from compiled code, so it must not need the frontend's Tensor)."""
from __future__ import annotations

import numpy as np

from .dtypes import DType

_MS_NAMES = {"bool": "Bool", "bfloat16": "BFloat16", "uint8": "UInt8", "uint16": "UInt16", "uint32": "UInt32",
             "uint64": "UInt64"}


def ms_dtype_name(dt: DType) -> str:
    """MindSpore's printed dtype name: Float32, BFloat16, Int64, UInt8, Bool."""
    return _MS_NAMES.get(dt.name, dt.name.capitalize())


def format_tensor(a: np.ndarray, dtype: DType) -> str:
    """`Tensor(shape=[2, 3], dtype=Float32, value=\\n[[...]])`, as MindSpore prints it."""
    if a.ndim == 0:
        return f"Tensor(shape=[], dtype={ms_dtype_name(dtype)}, value= {a.item()})"
    body = np.array2string(a, separator=", ", prefix="")
    return f"Tensor(shape={list(a.shape)}, dtype={ms_dtype_name(dtype)}, value=\n{body})"
