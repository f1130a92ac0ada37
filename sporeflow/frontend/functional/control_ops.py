"""Structured control flow: cond, WhileLoop, Scan, ForiLoop (MindSpore names; `cond` as JAX).

Eagerly these run as Python. Under a trace the user functions are traced into closed
subgraphs: whatever they capture (outer traced values, Parameters) becomes extra operands,
so the primitives stay pure and every transform can walk into them.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ...ir import dtypes as D
from ...ir.graph import Graph, Value
from ...ir.types import TensorType
from ...core import lax
from ..pytree import tree_flatten, tree_unflatten
from ..tensor import Tensor
from .. import jit as _jit   # jit imports autograph, which imports this module: the class is read at call time
from ...core.trace import Trace, current_trace
from ...context import get_context
from ...core.source import user_line_description
from ._core import tensor
from .array_ops import stack


def trace_subgraph(fn: Callable, in_types: Sequence[TensorType], name: str,
                   params_out: list | None = None) -> tuple[Graph, list, Any]:
    """Trace fn(*tracers) into a graph. Returns (graph with captured inputs appended,
    captured objects, output treedef). With `params_out` (cond branches), Parameter assignments
    are allowed: the graph gets one extra output per Parameter of `params_out`, its new value if
    fn assigned it, else its current value; `trace_subgraph.updated` lists what fn assigned."""
    with Trace(name) as tr:
        args = [tr.new_input(t) for t in in_types]
        out = fn(*args)
        leaves, td = tree_flatten(out)
        leaves = [x if isinstance(x, Tensor) else tensor(x) for x in leaves]
        updated = [p for p, _ in tr.updates.values()]
        if updated and params_out is None:
            raise NotImplementedError(
                "assigning to a Parameter inside WhileLoop/Scan is not supported (Parameter "
                f"{updated[0].name!r}); return the new value through the loop carry and assign it after the "
                "loop, or use ops.cond, whose branches may assign\n  at " + user_line_description())
        if params_out is not None:
            leaves = leaves + [tr.updates[id(p)][1] if id(p) in tr.updates else p for p in params_out]
            tr.updates.clear()
        graph, captured, _ = tr.finish(leaves)
    trace_subgraph.updated = updated
    return graph, captured, td


def _widen(graph: Graph, n_explicit: int, own: list, union: list) -> Graph:
    """Give `graph` the inputs explicit + union-of-captures (unused ones are fresh values)."""
    own_inputs = {id(o): v for o, v in zip(own, graph.inputs[n_explicit:])}
    extra = [own_inputs.get(id(o)) or Value(o._type, "") for o in union]
    return Graph(graph.name, graph.inputs[:n_explicit] + extra, graph.nodes, graph.outputs)


def _union(*lists) -> list:
    seen, out = set(), []
    for lst in lists:
        for o in lst:
            if id(o) not in seen:
                seen.add(id(o))
                out.append(o)
    return out


def _leaves(tree) -> tuple[list[Tensor], Any]:
    leaves, td = tree_flatten(tree)
    return [x if isinstance(x, Tensor) else tensor(x) for x in leaves], td


def cond(pred, true_fn: Callable, false_fn: Callable, *operands):
    """`true_fn(*operands)` if pred else `false_fn(*operands)`; both must return the same types."""
    p = tensor(pred)
    if current_trace() is None:
        return true_fn(*operands) if bool(p.asnumpy()) else false_fn(*operands)
    if p.shape != () or p.dtype is not D.bool_:
        p = lax.ne(p, lax.zeros_like(p)) if p.shape == () else None
        if p is None:
            raise ValueError("cond: the predicate must be a scalar")
    leaves, td_in = _leaves(list(operands))
    types = [x._type for x in leaves]

    def call(fn):
        return lambda *xs: fn(*tree_unflatten(td_in, xs))

    def both(params):
        gt, ct, td_t = trace_subgraph(call(true_fn), types, "then_branch", params)
        ut = trace_subgraph.updated
        ge, ce, td_e = trace_subgraph(call(false_fn), types, "else_branch", params)
        return (gt, ct, td_t), (ge, ce, td_e), _union(ut, trace_subgraph.updated)

    # Parameters assigned in a branch become extra outputs of both branches (the other branch
    # passes the current value through) and are assigned from the cond's results: the IR stays
    # pure. The branches are traced again when they assign, to give both the same outputs.
    (gt, ct, td_t), (ge, ce, td_e), assigned = both([])
    if assigned:
        (gt, ct, td_t), (ge, ce, td_e), _ = both(assigned)
    if td_t != td_e or gt.out_types != ge.out_types:
        raise TypeError(f"cond: branches return different structures/types: "
                        f"{td_t} {gt.out_types} vs {td_e} {ge.out_types}")
    caps = _union(ct, ce)
    n = len(leaves)
    outs = lax.multi("cond", p, *leaves, *caps, then_branch=_widen(gt, n, ct, caps),
                     else_branch=_widen(ge, n, ce, caps))
    k = len(outs) - len(assigned)
    for param, new_value in zip(assigned, outs[k:], strict=True):
        current_trace().record_update(param, new_value)
    return tree_unflatten(td_t, outs[:k])


def while_loop(cond_fun: Callable, body_fun: Callable, init_val, max_iter: int | None = None):
    """`max_iter` bounds reverse mode only (the forward loop runs until the condition fails): a
    loop whose trip count depends on data is differentiated as a masked scan of max_iter steps
    (default: set_context(max_call_depth=...), 1000), taping the carry of every step; if the loop
    ran longer, its gradient is NaN."""
    leaves, td = _leaves(init_val)
    if current_trace() is None:
        val = init_val
        while bool(tensor(cond_fun(val)).asnumpy()):
            val = body_fun(val)
        return val
    types = [x._type for x in leaves]
    gc, cc, _ = trace_subgraph(lambda *xs: cond_fun(tree_unflatten(td, xs)), types, "cond_graph")
    gb, cb, td_b = trace_subgraph(lambda *xs: body_fun(tree_unflatten(td, xs)), types, "body_graph")
    if td_b != td or gb.out_types != types:
        raise TypeError(f"WhileLoop: the body must return the loop value's structure and types "
                        f"{td} {types}, got {td_b} {gb.out_types}")
    if gc.out_types != [TensorType((), D.bool_)]:
        raise TypeError(f"WhileLoop: the condition must return a bool scalar, got {gc.out_types}")
    caps = _union(cc, cb)
    n = len(leaves)
    gc, gb = _widen(gc, n, cc, caps), _widen(gb, n, cb, caps)
    gb = Graph(gb.name, gb.inputs, gb.nodes, gb.outputs + gb.inputs[n:])  # captures pass through
    bound = int(max_iter) if max_iter is not None else get_context("max_call_depth")
    outs = lax.multi("while_loop", *leaves, *caps, cond_graph=gc, body_graph=gb, max_iter=bound)
    return tree_unflatten(td, outs[:n])


def scan(loop_func: Callable, init, xs, length: int | None = None, reverse: bool = False):
    """(carry, ys) = scan(f, init, xs): f(carry, x) -> (carry, y), ys stacked on axis 0."""
    c_leaves, td_c = _leaves(init)
    x_leaves, td_x = _leaves(xs) if xs is not None else ([], tree_flatten(None)[1])
    if length is None:
        if not x_leaves:
            raise ValueError("Scan: give `length` when xs is None")
        length = x_leaves[0].shape[0]
    if any(x.ndim == 0 or x.shape[0] != length for x in x_leaves):
        raise ValueError(f"Scan: every xs leaf needs a leading axis of length {length}, got "
                         f"{[x.shape for x in x_leaves]}")
    if current_trace() is None and length == 0:
        # nothing to run eagerly, but ys still need their (0, ...) shapes: trace the body for its types
        return _jit.JitFunction(lambda c, x: scan(loop_func, c, x, length, reverse), name="scan")(init, xs)
    if current_trace() is None:
        carry, ys = init, []
        order = range(length - 1, -1, -1) if reverse else range(length)
        for t in order:
            x_t = tree_unflatten(td_x, [x[t] for x in x_leaves]) if x_leaves else None
            carry, y = loop_func(carry, x_t)
            ys.append(y)
        if reverse:
            ys = ys[::-1]
        y_leaves = [tree_flatten(y)[0] for y in ys]
        if not ys:
            return carry, None
        td_y = tree_flatten(ys[0])[1]
        return carry, tree_unflatten(td_y, [stack([yl[j] for yl in y_leaves]) for j in range(len(y_leaves[0]))])
    nc = len(c_leaves)
    types = [c._type for c in c_leaves] + [TensorType(x.shape[1:], x.dtype) for x in x_leaves]
    td_out = {}

    def body(*args):
        carry = tree_unflatten(td_c, args[:nc])
        x_t = tree_unflatten(td_x, args[nc:]) if x_leaves else None
        new_carry, y = loop_func(carry, x_t)
        cl, td_nc = tree_flatten(new_carry)
        if td_nc != td_c:
            raise TypeError(f"Scan: the body must return the carry structure {td_c}, got {td_nc}")
        yl, td_out["y"] = tree_flatten(y)
        return list(cl) + list(yl)
    gb, cb, _ = trace_subgraph(body, types, "body")
    if gb.out_types[:nc] != types[:nc]:
        raise TypeError(f"Scan: the carry changed type: {types[:nc]} -> {gb.out_types[:nc]}")
    ncap = len(cb)
    # captures become extra carries that pass through unchanged
    inputs = gb.inputs[:nc] + gb.inputs[len(types):] + gb.inputs[nc:len(types)]
    outputs = gb.outputs[:nc] + gb.inputs[len(types):] + gb.outputs[nc:]
    gb = Graph(gb.name, inputs, gb.nodes, outputs)
    outs = lax.multi("scan", *c_leaves, *cb, *x_leaves, body=gb, num_carry=nc + ncap, length=length,
                     reverse=bool(reverse))
    carry = tree_unflatten(td_c, outs[:nc])
    return carry, tree_unflatten(td_out["y"], outs[nc + ncap:])


def fori_loop(lower: int, upper: int, loop_func: Callable, init_val):
    """loop_func(i, val) -> val for i in [lower, upper) (a scan with a static trip count)."""
    def body(val, i):
        return loop_func(i, val), None
    idx = lax.add(lax.iota(shape=(max(upper - lower, 0),), axis=0, dtype=D.int32), lax.full((), lower, D.int32))
    out, _ = scan(body, init_val, idx)
    return out


class WhileLoop:
    """ops.WhileLoop()(cond_func, loop_func, init_val)."""

    def __call__(self, cond_func, loop_func, init_val):
        return while_loop(cond_func, loop_func, init_val)


class Scan:
    """ops.Scan()(loop_func, init, xs, length=None, reverse=False, unroll=True)."""

    def __call__(self, loop_func, init, xs, length=None, reverse=False, unroll=True):
        return scan(loop_func, init, xs, length, reverse)


class ForiLoop:
    """ops.ForiLoop()(lower, upper, loop_func, init_val, unroll=True)."""

    def __call__(self, lower, upper, loop_func, init_val, unroll=True):
        return fori_loop(lower, upper, loop_func, init_val)
