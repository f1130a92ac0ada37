"""Parameter assignment. Eagerly it writes the buffer; under a trace it records the update,
which becomes a graph output that the executor writes back after the step (the IR is pure)."""
from __future__ import annotations

import numpy as np

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


_PRINT_TOKEN: list[Parameter] = []


def print_token() -> Parameter:
    """The hidden int32 Parameter that orders prints: each print reads it and assigns the next
    value, so the pure graph keeps every print, in program order (primitives/debug.py)."""
    if not _PRINT_TOKEN:
        _PRINT_TOKEN.append(Parameter(np.zeros((), np.int32), name="sporeflow.print_token", requires_grad=False))
    return _PRINT_TOKEN[0]


def _print_items(items, parts: list, xs: list) -> None:
    for a in items:
        if isinstance(a, str):
            parts.append(a)
        elif isinstance(a, (tuple, list)):
            _print_items(a, parts, xs)
        elif isinstance(a, (bool, int, float, np.ndarray, np.generic)) or hasattr(a, "_type"):
            xs.append(tensor(a))
            parts.append(len(xs) - 1)
        else:
            raise TypeError(f"print_: arguments must be Tensors, bool, int, float, str, tuple or list, "
                            f"got {type(a).__name__}")


def print_(*input_x) -> None:
    """MindSpore's ops.print_ / ops.Print: prints each argument on its own line (tensors as
    `Tensor(shape=..., dtype=..., value=...)`) when the code runs: at once in PyNative mode, each
    time the compiled step runs under jit / GRAPH mode, on every backend."""
    parts: list = []
    xs: list = []
    _print_items(input_x, parts, xs)
    token = print_token()
    new = lax.print(tensor(token) if current_trace() else token.value(), *xs, parts=tuple(parts),
                    dtypes=tuple(x.dtype.name for x in xs))
    assign(token, new)
