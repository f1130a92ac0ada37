"""Reverse-mode autodiff as a pass: `vjp_graph(graph, wrt) -> Graph`.

The pass traces a fresh Trace: it replays the forward nodes (keeping their loc and scope), then
walks them backwards calling each op's `vjp` rule on Tracers. Rules emit ordinary primitives,
so the result is an ordinary graph that can be differentiated again (grad of grad), batched,
printed and compiled. Gradient nodes get scope `grad/<forward scope>` and the forward op's loc.

Only floating-point values carry gradients; an op marked NOT_DIFFERENTIABLE stops them; an op
with neither a rule nor the mark is an error that names it.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import SporeflowError
from ..ir.graph import Graph, Value
from ..ir.registry import NOT_DIFFERENTIABLE, get_op
from ..ir.types import TensorType
from ..core import lax
from ..core.trace import Trace, emitting_for, replay
from .dce import dce


def differentiable(t: TensorType) -> bool:
    return t.dtype.is_float


def is_marked_nondiff(op: str) -> bool:
    d = get_op(op)
    return d.vjp is NOT_DIFFERENTIABLE or d.jvp is NOT_DIFFERENTIABLE


def active_values(graph: Graph, seeds: Sequence[Value]) -> set[int]:
    """Values that depend differentiably on `seeds` (float results of differentiable ops)."""
    active = {id(v) for v in seeds}
    for node in graph.nodes:
        if any(id(v) in active for v in node.inputs) and not is_marked_nondiff(node.op):
            active.update(id(o) for o in node.outputs if differentiable(o.type))
    return active


def _check_ct(node, i: int, ct, v: Value):
    if tuple(ct.shape) != v.type.shape or ct.dtype is not v.type.dtype:
        raise SporeflowError(f"internal: vjp rule of {node.op} returned {ct._type} for input {i} of type {v.type}")


def vjp_graph(graph: Graph, wrt: Sequence[bool], keep_outputs: bool = True, name: str | None = None) -> Graph:
    """Reverse mode. The result takes graph.inputs + one cotangent per float output of `graph`,
    and returns (graph.outputs if keep_outputs) + one gradient per input selected by `wrt`
    (zeros where the output does not depend on it)."""
    wrt = list(wrt)
    for v, w in zip(graph.inputs, wrt):
        if w and not differentiable(v.type):
            raise SporeflowError(f"cannot differentiate with respect to a {v.type} input (only float tensors)")
    diff_outs = [v for v in graph.outputs if differentiable(v.type)]
    with Trace(name or f"{graph.name}_vjp") as tr:
        tr.scopes, tr.scope_prefix = [], ""
        ins = [tr.new_input(v.type, v.name) for v in graph.inputs]
        cts_in = [tr.new_input(v.type, f"ct{i}") for i, v in enumerate(diff_outs)]
        env = replay(tr, graph, ins)
        active = active_values(graph, [v for v, w in zip(graph.inputs, wrt) if w])
        ct: dict[int, object] = {}

        def accumulate(v: Value, g) -> None:
            if g is None or id(v) not in active:
                return
            prev = ct.get(id(v))
            ct[id(v)] = g if prev is None else lax.add(prev, g)

        for v, c in zip(diff_outs, cts_in):
            accumulate(v, c)
        for node in reversed(graph.nodes):
            douts = [ct.get(id(o)) for o in node.outputs]
            if all(d is None for d in douts) or not any(id(v) in active for v in node.inputs):
                continue
            opdef = get_op(node.op)
            if is_marked_nondiff(node.op):
                continue
            if opdef.vjp is None:
                raise SporeflowError(f"reverse-mode autodiff: op `{node.op}` has no vjp rule "
                                     f"(at {node.loc or '?'}, scope {node.scope or '-'})")
            with emitting_for(tr, node, "grad/"):
                try:
                    grads = opdef.vjp([env[id(v)] for v in node.inputs], [env[id(o)] for o in node.outputs],
                                      douts, **node.attrs)
                except SporeflowError as e:
                    raise type(e)(f"{e}\n  (differentiating `{node.op}` at {node.loc or '?'})") from None
                for i, (v, g) in enumerate(zip(node.inputs, grads)):
                    if g is not None and id(v) in active:
                        _check_ct(node, i, g, v)
                        accumulate(v, g)
        results = [env[id(v)] for v in graph.outputs] if keep_outputs else []
        for v, x, w in zip(graph.inputs, ins, wrt):
            if w:
                g = ct.get(id(v))
                results.append(g if g is not None else lax.zeros_like(x))
        out, _, _ = tr.finish(results)
    return dce(out)
