"""print: MindSpore's ops.Print inside compiled code. It prints its arguments, one per line
(strings as they are, tensors in MindSpore's `Tensor(shape=..., dtype=..., value=...)` form),
each time the compiled step runs, at its place in the step.

Every primitive is pure, so a print is kept alive and in order by a token: its first input is
the current print token (an int32 scalar) and its result is the next one. The frontend threads
the token like a Parameter update (the hidden Parameter `sporeflow.print_token`), so DCE keeps
each print, the passes cannot reorder two prints, and cond/scan/while_loop carry it out of their
bodies like any other state. Attributes: `parts`, one entry per printed argument, a string to
print or the index of the tensor input (after the token) to print there; `dtypes`, the printed
dtype name of each tensor input (checked against the inputs: `impl` sees half types widened).
"""
from __future__ import annotations

import sys

import numpy as np

from ..ir.dtypes import as_dtype, int32
from ..ir.registry import NOT_DIFFERENTIABLE, Amp, Kind, def_op
from ..ir.tensor_format import format_tensor
from ..ir.types import TensorType
from .common import fail, lax

TOKEN = TensorType((), int32)


def _print_infer(ts, attrs):
    if not ts or ts[0] != TOKEN:
        fail("the first input must be the print token (i32[])", ts)
    n = len(ts) - 1
    if tuple(attrs["dtypes"]) != tuple(t.dtype.name for t in ts[1:]):
        fail(f"dtypes {attrs['dtypes']} do not match the printed inputs", ts)
    for p in attrs["parts"]:
        if not isinstance(p, str) and not (isinstance(p, int) and 0 <= p < n):
            fail(f"parts must hold strings or indices of the {n} printed tensors, got {p!r}", ts)
    return TOKEN


def format_parts(parts, arrays, dtypes) -> str:
    """The text one print writes (without its final newline)."""
    return "\n".join(p if isinstance(p, str) else format_tensor(np.asarray(arrays[p]), dtypes[p])
                     for p in parts)


def _print_run(token, *xs, parts, dtypes):
    text = format_parts(parts, xs, [as_dtype(d) for d in dtypes])
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return np.asarray(token + 1, np.int32)


def _print_batch(args, dims, parts, dtypes):
    """vmap: print the batched values (as JAX's debug print does); the token is not batched."""
    token = args[0] if dims[0] is None else fail("the print token cannot be batched")
    return [lax.print(token, *args[1:], parts=parts, dtypes=dtypes)], [None]


print_op = def_op(
    "print", infer=_print_infer, impl=_print_run, kind=Kind.OPAQUE, amp=Amp.FOLLOW,
    attr_names=("parts", "dtypes"), compute_in_f32=True, pure=False,
    vjp=NOT_DIFFERENTIABLE, batch=_print_batch,
    jvp=lambda primals, tangents, **attrs: ([lax.print(*primals, **attrs)], [None]),
    doc="prints strings and tensors (one per line) at run time; token -> next token")
