"""Tracer: a value of a graph being traced. It has no data; everything that would need the
data raises a TracerError that says what to write instead.

The frontend's Tracer mixes this class with its eager Tensor (`class Tracer(core.Tracer,
Tensor)`), so a traced value has every Tensor method while its behaviour as a stand-in for a
graph value lives here, below the rules that create tracers.
"""
from __future__ import annotations

from .source import concrete_error, wrap_methods


class Tracer:
    """A Tensor standing for a Value of a graph being traced."""

    def __init__(self, trace, value):
        self._trace = trace
        self._value = value
        self._type = value.type
        self._dtype = value.type.dtype

    @property
    def _data(self):
        raise concrete_error("Reading the data", "Return the tensor from the function, or compute it eagerly.")

    def __bool__(self):
        raise concrete_error("bool() (or an `if`/`while`/`and`/`or` in code sporeflow cannot convert: "
                             "no source, a lambda, a comprehension)",
                             "`if`/`while`/`for` statements in functions and construct compile to cond / "
                             "while_loop / scan; elsewhere use ops.select(cond, a, b) or ops.where for values, "
                             "ops.cond(pred, f, g, *args) for branches, ops.WhileLoop / ops.Scan for loops, or "
                             "make the value a static Python number.")

    def __int__(self):
        raise concrete_error("int()", "Keep it a tensor (ops.cast(x, sf.int32)), or pass a Python int instead.")

    def __float__(self):
        raise concrete_error("float()", "Keep it a tensor, or pass a Python float instead.")

    def __index__(self):
        raise concrete_error("Using as a Python index", "Index with the tensor itself (x[idx_tensor]) "
                             "or with a Python int.")

    def __array__(self, dtype=None, copy=None):
        raise concrete_error("np.asarray()/numpy conversion", "Use sporeflow ops (sf.ops, sf.numpy) inside "
                             "compiled functions; convert results after the call.")

    def asnumpy(self):
        raise concrete_error(".asnumpy()", "Return the tensor from the function and call .asnumpy() on the result.")

    def item(self):
        raise concrete_error(".item()", "Return the tensor and read it after the call.")

    def __repr__(self) -> str:
        return f"Tracer({self._type})"

    __str__ = __repr__


wrap_methods(Tracer)
