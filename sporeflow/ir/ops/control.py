"""Structured control flow: cond, while_loop, scan. Each carries subgraphs in its attributes.

cond(pred, *operands; then_branch, else_branch): both branches take the operands and return
    the same types.
while_loop(*carry; cond_graph, body_graph): cond_graph(carry) -> bool[]; body(carry) -> carry.
scan(*carry, *xs; body, num_carry, length, reverse): body(carry, x_t) -> (carry, y_t); the
    results are the final carry and the ys stacked along a new leading axis.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import bool_
from ..graph import Graph
from ..registry import Kind, def_op
from ..types import TensorType
from .common import fail
from . import batching_control as BC


def _run(graph: Graph, args):
    from ..interpret import run_graph
    return run_graph(graph, list(args))


def _check_sig(what: str, g, ins, outs=None):
    if not isinstance(g, Graph):
        fail(f"{what} must be a graph")
    if g.in_types != list(ins):
        fail(f"{what} takes ({', '.join(map(str, g.in_types))}) but is given ({', '.join(map(str, ins))})")
    if outs is not None and g.out_types != list(outs):
        fail(f"{what} returns ({', '.join(map(str, g.out_types))}), expected ({', '.join(map(str, outs))})")


def _cond_infer(ts, attrs):
    if not ts or ts[0].dtype is not bool_ or ts[0].shape != ():
        fail("predicate must be bool[]", ts)
    t, e = attrs["then_branch"], attrs["else_branch"]
    _check_sig("then_branch", t, ts[1:])
    _check_sig("else_branch", e, ts[1:], t.out_types)
    return list(t.out_types)


def _cond_impl(pred, *ops, then_branch, else_branch):
    return _run(then_branch if bool(pred) else else_branch, ops)


cond = def_op("cond", infer=_cond_infer, impl=_cond_impl, kind=Kind.OPAQUE, compute_in_f32=False,
              attr_names=("then_branch", "else_branch"), batch=BC.batch_cond)


def _while_infer(ts, attrs):
    _check_sig("cond_graph", attrs["cond_graph"], ts, [TensorType((), bool_)])
    _check_sig("body_graph", attrs["body_graph"], ts, ts)
    return list(ts)


def _while_impl(*carry, cond_graph, body_graph):
    carry = list(carry)
    while bool(_run(cond_graph, carry)[0]):
        carry = _run(body_graph, carry)
    return carry


while_loop = def_op("while_loop", infer=_while_infer, impl=_while_impl, kind=Kind.OPAQUE, compute_in_f32=False,
                    attr_names=("cond_graph", "body_graph"), batch=BC.batch_while)


def _scan_infer(ts, attrs):
    nc, length = attrs["num_carry"], attrs["length"]
    carry, xs = ts[:nc], ts[nc:]
    if any(x.ndim == 0 or x.shape[0] != length for x in xs):
        fail(f"every scanned input needs leading axis of length {length}", ts)
    body = attrs["body"]
    _check_sig("body", body, list(carry) + [TensorType(x.shape[1:], x.dtype) for x in xs])
    if body.out_types[:nc] != list(carry):
        fail("body must return the carry types first")
    return list(carry) + [TensorType((length,) + y.shape, y.dtype) for y in body.out_types[nc:]]


def _scan_impl(*args, body, num_carry, length, reverse):
    carry, xs = list(args[:num_carry]), args[num_carry:]
    n_y = len(body.outputs) - num_carry
    ys = [[None] * length for _ in range(n_y)]
    for step in range(length):
        t = length - 1 - step if reverse else step
        out = _run(body, carry + [x[t] for x in xs])
        carry = out[:num_carry]
        for j in range(n_y):
            ys[j][t] = out[num_carry + j]
    stacked = [np.stack(y) if length else np.zeros((0,) + body.out_types[num_carry + j].shape,
                                                    body.out_types[num_carry + j].dtype.storage)
               for j, y in enumerate(ys)]
    return carry + stacked


scan = def_op("scan", infer=_scan_infer, impl=_scan_impl, kind=Kind.OPAQUE, compute_in_f32=False,
              attr_names=("body", "num_carry", "length", "reverse"), batch=BC.batch_scan)
