"""Parameter assignment. Eagerly it writes the buffer; under a trace it records the update,
which becomes a graph output that the executor writes back after the step (the IR is pure)."""
from __future__ import annotations

from ...errors import ShapeError
from ...core import lax
from ..tensor import Parameter
from ...core.trace import current_trace
from ._core import tensor


def assign(variable: Parameter, value):
    if not isinstance(variable, Parameter):
        raise TypeError(f"assign: the target must be a Parameter, got {type(variable).__name__}")
    v = tensor(value)
    if v.shape != variable.shape:
        raise ShapeError(f"assign: value of shape {v.shape} for Parameter {variable.name} of shape {variable.shape}")
    v = lax.convert(v, variable.dtype)
    trace = current_trace()
    if trace is not None:
        trace.record_update(variable, v)
    else:
        variable._assign_storage(v._data.copy())
    return v


def assign_add(variable: Parameter, value):
    return assign(variable, lax.add(tensor(variable) if current_trace() else variable.value(),
                                    lax.convert(tensor(value), variable.dtype)))


def assign_sub(variable: Parameter, value):
    return assign(variable, lax.sub(tensor(variable) if current_trace() else variable.value(),
                                    lax.convert(tensor(value), variable.dtype)))


def depend(value, expr):
    """Ordering hint in MindSpore; sporeflow's graphs are pure, so it returns `value`."""
    return value
