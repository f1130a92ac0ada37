"""The op registry: one OpDef per primitive holds everything about it.

An OpDef carries type inference, the numpy reference implementation (used by the interpreter
and by constant folding), the autodiff rules (vjp, jvp), the vmap rule (batch), the fusion
kind, the mixed-precision policy and per-backend lowerings. Rules are written with sporeflow
ops (`sporeflow.core.lax`), so what they emit is again an ordinary graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import OpTypeError
from .dtypes import from_compute, to_compute
from .types import Attrs, TensorType


class Kind(IntEnum):
    """Fusion classes, ordered as in TVM: a lower kind fuses into a higher one."""
    ELEMWISE = 0
    BROADCAST = 1
    INJECTIVE = 2
    REDUCE = 3
    OUT_EWISE_FUSABLE = 4
    OPAQUE = 8


class Amp:
    """Mixed-precision policy of an op."""
    LOW = "low"          # always run in low precision (matmul, conv)
    FOLLOW = "follow"    # run in whatever dtype the inputs have
    NEVER = "never"      # keep float32 (exp, log, reductions, softmax pieces)


class _NotDifferentiable:
    """Marks an op whose outputs carry no gradient (comparisons, argmax, integer ops, bits)."""

    def __repr__(self) -> str:
        return "NOT_DIFFERENTIABLE"


NOT_DIFFERENTIABLE = _NotDifferentiable()


def as_list(x) -> list:
    """A rule's or impl's result(s) as a list: one value, or a list/tuple of them."""
    return list(x) if isinstance(x, (list, tuple)) else [x]


@dataclass
class OpDef:
    name: str
    infer: Callable[..., Any]                 # (in_types, attrs) -> TensorType | list[TensorType]
    impl: Callable[..., Any]                  # (*arrays, **attrs) -> array | tuple of arrays
    kind: Kind = Kind.OPAQUE
    amp: str = Amp.FOLLOW
    # Rule signatures (all values are sporeflow Tensors/Tracers; rules call `lax` ops only):
    #   vjp(inputs, outputs, douts, **attrs) -> list (one per input) of cotangent | None (zero)
    #       douts has one entry per output, None where that output's cotangent is zero.
    #       NOT_DIFFERENTIABLE marks ops whose outputs carry no gradient.
    #   jvp(primals, tangents, **attrs) -> (outputs, output tangents); a tangent None is zero.
    #   batch(args, dims, **attrs) -> (outputs, out_dims); dims[i] is the batched axis of
    #       args[i] or None when args[i] is not batched.
    vjp: Any = None
    jvp: Any = None
    batch: Any = None
    lower: dict = field(default_factory=dict)  # backend name -> lowering rule/template
    attr_names: tuple = ()                    # attributes the op requires (parser and verifier check)
    compute_in_f32: bool = True               # half-precision inputs widen to f32 for `impl`
    pure: bool = True                         # False: talks to other processes (collectives); never folded
    monoid: str | None = None                 # a reduction over axes: its combiner, "sum" | "max" | "min"
                                              # (what fusion's row kernels and the backends accumulate with)
    transpose_flags: tuple = ()               # per operand, the bool attribute that transposes its last
                                              # two axes (matmul); passes/transpose_folding.py reads it
    doc: str = ""

    def infer_types(self, in_types: Sequence[TensorType], attrs: Attrs) -> list[TensorType]:
        missing = [a for a in self.attr_names if a not in attrs]
        if missing:
            raise OpTypeError(f"{self.name}: missing attribute(s) {missing}")
        try:
            out = self.infer(list(in_types), attrs)
        except OpTypeError as e:
            msg = str(e)
            raise OpTypeError(msg if msg.startswith(self.name + ":") else f"{self.name}: {msg}") from None
        return as_list(out)

    def run(self, arrays: Sequence[np.ndarray], attrs: Attrs, in_types: Sequence[TensorType],
            out_types: Sequence[TensorType]) -> list[np.ndarray]:
        """Reference execution on storage arrays, rounding half-precision results once."""
        if self.compute_in_f32:
            arrays = [to_compute(a, t.dtype) for a, t in zip(arrays, in_types)]
        res = self.impl(*arrays, **attrs)
        res = as_list(res)
        out = []
        for r, t in zip(res, out_types):
            # ops that only move data (compute_in_f32=False) return storage arrays already
            r = from_compute(r, t.dtype) if self.compute_in_f32 else np.asarray(r, dtype=t.dtype.storage)
            if r.shape != t.shape:
                r = np.broadcast_to(r, t.shape)
            out.append(r)
        return out


REGISTRY: dict[str, OpDef] = {}


def def_op(name: str, **fields) -> OpDef:
    """Declare a primitive. The one place where everything about the op lives."""
    if name in REGISTRY:
        raise ValueError(f"op {name!r} registered twice")
    op = OpDef(name=name, **fields)
    REGISTRY[name] = op
    return op


def get_op(name: str) -> OpDef:
    try:
        return REGISTRY[name]
    except KeyError:
        raise OpTypeError(f"unknown op {name!r}") from None
