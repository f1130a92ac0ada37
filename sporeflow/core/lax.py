"""Primitive-level ops: `lax.<primitive>(*inputs, **attrs)` binds exactly one primitive.

OpDef rules (vjp, jvp, batch) are written with these, so what a rule emits is an ordinary
graph again. Attribute values are passed through unchanged (the registry checks them).
A few helpers used by many rules live here too.
"""
from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType, as_dtype
from ..ir.registry import REGISTRY
from ..ir.types import ConstValue
from .trace import ARRAYS, bind, current_trace


def _make(name: str):
    def prim(*inputs, **attrs):
        outs = bind(name, inputs, attrs)
        return outs[0] if len(outs) == 1 else outs
    prim.__name__ = name
    prim.__doc__ = REGISTRY[name].doc or f"the `{name}` primitive"
    return prim


def __getattr__(name: str):
    key = name[:-1] if name.endswith("_") and name[:-1] in REGISTRY else name
    if key in REGISTRY:
        fn = _make(key)
        globals()[name] = fn
        return fn
    raise AttributeError(f"sporeflow.core.lax has no primitive {name!r}")


def multi(name: str, *inputs, **attrs) -> list:
    """Bind a primitive and always return the list of its results."""
    return bind(name, inputs, attrs)


def const(value, dtype: DType):
    """A constant tensor (recorded as a `constant` node when tracing)."""
    dtype = as_dtype(dtype)
    return bind("constant", [], {"value": ConstValue.of(np.asarray(value), dtype)})[0] \
        if _tracing() else ARRAYS.tensor(np.asarray(value), dtype)


def full(shape, value, dtype: DType):
    shape = tuple(shape)
    c = const(value, dtype)
    return bind("broadcast_to", [c], {"shape": shape})[0] if shape else c


def zeros_like(x):
    return full(x.shape, 0, x.dtype)


def ones_like(x):
    return full(x.shape, 1, x.dtype)


def sum_to_shape(x, shape: tuple):
    """Undo numpy broadcasting: sum `x` down to `shape` (the adjoint of broadcast_to)."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, d in enumerate(shape) if d == 1 and x.shape[i + lead] != 1)
    out = bind("reduce_sum", [x], {"axes": axes, "keepdims": False})[0] if axes else x
    return bind("reshape", [out], {"shape": shape})[0] if out.shape != shape else out


def convert(x, dtype: DType):
    dtype = as_dtype(dtype)
    return x if x.dtype is dtype else bind("cast", [x], {"dtype": dtype})[0]


def _tracing() -> bool:
    return current_trace() is not None
