"""Shared pieces of op declarations: inference helpers, and `lax` (from the core) for rules.

Inference helpers raise OpTypeError with a message about the inputs; OpDef.infer_types
prefixes the op name, and the frontend adds the user's source line.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import OpTypeError
from ..ir.dtypes import DType, bool_
from ..ir.types import TensorType
from ..core import lax  # noqa: F401  (rules emit their nodes through lax.<op>)




def fail(msg: str, types: Sequence[TensorType] = ()) -> None:
    shown = ", ".join(str(t) for t in types)
    raise OpTypeError(msg + (f" (inputs: {shown})" if types else ""))


def broadcast_shapes(*types: TensorType) -> tuple[int, ...]:
    """numpy broadcasting of the input shapes, or an error naming the shapes."""
    ndim = max(t.ndim for t in types)
    out = []
    for i in range(ndim):
        size = 1
        for t in types:
            j = i - ndim + t.ndim
            d = t.shape[j] if j >= 0 else 1
            if d != 1:
                if size not in (1, d):
                    fail("shapes cannot be broadcast together", types)
                size = d
        out.append(size)
    return tuple(out)


def same_dtype(types: Sequence[TensorType]) -> DType:
    if len({t.dtype for t in types}) != 1:
        fail("inputs must have the same dtype", types)
    return types[0].dtype


def check_arity(types: Sequence[TensorType], n: int) -> None:
    if len(types) != n:
        fail(f"expects {n} input(s), got {len(types)}", types)


def normalize_axis(axis: int, ndim: int) -> int:
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        fail(f"axis {axis} out of range for rank {ndim}")
    return axis % max(ndim, 1)


def check_allowed(ts: Sequence[TensorType], allowed: str) -> None:
    for t in ts:
        ok = {"any": True, "float": t.dtype.is_float, "numeric": t.dtype is not bool_,
              "bool": t.dtype is bool_, "int": t.dtype.is_int}[allowed]
        if not ok:
            fail(f"dtype {t.dtype.name} not supported (needs {allowed})", ts)


def unary_infer(allowed: str = "any", out: DType | None = None):
    """Same shape out as in; same dtype unless `out` is given."""

    def infer(ts: Sequence[TensorType], attrs) -> TensorType:
        check_arity(ts, 1)
        check_allowed(ts, allowed)
        return TensorType(ts[0].shape, out or ts[0].dtype)
    return infer


def binary_infer(allowed: str = "numeric", out: DType | None = None):
    """Broadcasting binary op; both inputs share a dtype (the frontend promotes)."""

    def infer(ts: Sequence[TensorType], attrs) -> TensorType:
        check_arity(ts, 2)
        dt = same_dtype(ts)
        check_allowed(ts, allowed)
        return TensorType(broadcast_shapes(*ts), out or dt)
    return infer
