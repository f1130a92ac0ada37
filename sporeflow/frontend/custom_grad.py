"""Custom backward through `Cell.bprop(self, *inputs, out, dout)`.

Eagerly outside any transform the Cell just runs `construct`. While tracing (sf.grad, sf.jit,
...), `construct` and `bprop` are traced into two subgraphs held by one `custom_vjp` node:
the forward graph runs, and reverse mode inlines the bprop graph instead of differentiating
`construct`. Values either graph reads from outside (Parameters, outer tracers) become extra
operands; they get zero gradients, as MindSpore gives none to parameters of a Cell with bprop.
"""
from __future__ import annotations

from typing import Any

from ..errors import SporeflowError
from ..ir.graph import Graph, Value
from ..core import lax
from .pytree import tree_flatten, tree_unflatten
from .tensor import Tensor
from ..core.trace import Trace, current_trace, inline


def _widen(graph: Graph, n_explicit: int, own: list, union: list, tail: int = 0) -> Graph:
    """Inputs explicit + union-of-captures (+ `tail` inputs kept last, e.g. out/dout)."""
    head = graph.inputs[:n_explicit]
    caps = graph.inputs[len(graph.inputs) - len(own):] if own else []
    rest = graph.inputs[n_explicit:n_explicit + tail]
    by_obj = {id(o): v for o, v in zip(own, caps)}
    extra = [by_obj.get(id(o)) or Value(o._type, "") for o in union]
    return Graph(graph.name, head + extra + rest, graph.nodes, graph.outputs)


def call_with_bprop(cell, args: tuple, kwargs: dict) -> Any:
    if current_trace() is None:
        return cell.construct(*args, **kwargs)
    if kwargs:
        raise SporeflowError(f"{type(cell).__name__}: a Cell with a custom bprop takes positional inputs only")
    leaves, td = tree_flatten(list(args))
    if any(not isinstance(x, Tensor) for x in leaves):
        raise SporeflowError(f"{type(cell).__name__}.bprop: every input must be a Tensor")
    in_types = [x._type for x in leaves]
    with Trace(f"{type(cell).__name__}_fwd") as tf:
        xs = [tf.new_input(t) for t in in_types]
        out = cell.construct(*tree_unflatten(td, xs))
        out_leaves, out_td = tree_flatten(out)
        if any(not isinstance(o, Tensor) for o in out_leaves):
            raise SporeflowError(f"{type(cell).__name__}.construct must return tensors when bprop is defined")
        if tf.updates:
            raise SporeflowError(f"{type(cell).__name__}: assigning Parameters inside a Cell with bprop "
                                 "is not supported")
        fwd, fcaps, _ = tf.finish(out_leaves)
    out_types = fwd.out_types
    float_out = [t for t in out_types if t.dtype.is_float]
    with Trace(f"{type(cell).__name__}_bprop") as tb:
        xs = [tb.new_input(t) for t in in_types]
        outs = [tb.new_input(t, "out") for t in out_types]
        douts = [tb.new_input(t, "dout") for t in float_out]
        it = iter(douts)
        dl = [next(it) if t.dtype.is_float else lax.zeros_like(o) for t, o in zip(out_types, outs)]
        o_tree, d_tree = tree_unflatten(out_td, outs), tree_unflatten(out_td, dl)
        grads = cell.bprop(*tree_unflatten(td, xs), o_tree, d_tree)
        g_leaves = tree_flatten(tuple(grads) if isinstance(grads, (tuple, list)) else (grads,))[0]
        if len(g_leaves) != len(leaves):
            raise SporeflowError(f"{type(cell).__name__}.bprop returned {len(g_leaves)} gradient(s) for "
                                 f"{len(leaves)} input(s)")
        res = []
        for g, x in zip(g_leaves, xs):
            if not x.dtype.is_float:
                continue
            g = g if isinstance(g, Tensor) else lax.full(x.shape, 0 if g is None else g, x.dtype)
            if tuple(g.shape) != tuple(x.shape):
                raise SporeflowError(f"{type(cell).__name__}.bprop: gradient of shape {tuple(g.shape)} "
                                     f"for an input of shape {tuple(x.shape)}")
            res.append(lax.convert(g, x.dtype))
        bwd, bcaps, _ = tb.finish(res)
    caps = list({id(c): c for c in list(fcaps) + list(bcaps)}.values())
    n = len(leaves)
    fwd = _widen(fwd, n, fcaps, caps)
    # bwd: (inputs, caps-of-bwd, out, dout) -> (inputs, all caps, out, dout), and grads for caps = 0
    bwd = _widen(bwd, n, bcaps, caps, tail=len(out_types) + len(float_out))
    with Trace(f"{type(cell).__name__}_bwd") as tp:
        ins = [tp.new_input(v.type) for v in bwd.inputs]
        gs = inline(bwd, ins)
        git = iter(gs)
        cap_in = ins[n:n + len(caps)]
        outs_all = [next(git) if t.dtype.is_float else None for t in in_types]
        outs_all += [lax.zeros_like(c) for c in cap_in if c.dtype.is_float]
        bwd, _, _ = tp.finish([o for o in outs_all if o is not None])
    results = lax.multi("custom_vjp", *leaves, *caps, fwd=fwd, bwd=bwd)
    return tree_unflatten(out_td, results)
