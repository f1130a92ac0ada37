"""Forward-mode autodiff as a pass: `jvp_graph(graph, wrt) -> Graph`.

Each op's `jvp` rule is called on Tracers of a fresh Trace; it emits the primal results and
their tangents together (one pass, no transposition: the rules are written directly).
Tangent nodes get scope `jvp/<forward scope>` and the forward op's loc.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import SporeflowError
from ..ir.graph import Graph
from ..ir.registry import get_op
from .autodiff import differentiable, is_marked_nondiff
from .dce import dce
from ..core import lax
from ..core.trace import Trace, emit_copy, emitting_for


def jvp_graph(graph: Graph, wrt: Sequence[bool], name: str | None = None) -> Graph:
    """The result takes graph.inputs + one tangent per input selected by `wrt`, and returns
    graph.outputs + one tangent per float output (zeros where it does not depend on `wrt`)."""
    wrt = list(wrt)
    for v, w in zip(graph.inputs, wrt):
        if w and not differentiable(v.type):
            raise SporeflowError(f"cannot differentiate with respect to a {v.type} input (only float tensors)")
    with Trace(name or f"{graph.name}_jvp") as tr:
        tr.scopes, tr.scope_prefix = [], ""
        ins = [tr.new_input(v.type, v.name) for v in graph.inputs]
        tans_in = [tr.new_input(v.type, f"t{i}") for i, (v, w) in enumerate(zip(graph.inputs, wrt)) if w]
        env = {id(v): x for v, x in zip(graph.inputs, ins)}
        tan: dict[int, object] = {}
        it = iter(tans_in)
        for v, w in zip(graph.inputs, wrt):
            if w:
                tan[id(v)] = next(it)
        for node in graph.nodes:
            tins = [tan.get(id(v)) for v in node.inputs]
            opdef = get_op(node.op)
            if all(t is None for t in tins) or is_marked_nondiff(node.op):
                for v, o in zip(node.outputs, emit_copy(tr, node, [env[id(v)] for v in node.inputs])):
                    env[id(v)] = o
                continue
            if opdef.jvp is None:
                raise SporeflowError(f"forward-mode autodiff: op `{node.op}` has no jvp rule "
                                     f"(at {node.loc or '?'}, scope {node.scope or '-'})")
            with emitting_for(tr, node, "jvp/"):
                outs, touts = opdef.jvp([env[id(v)] for v in node.inputs], tins, **node.attrs)
            for v, o, t in zip(node.outputs, outs, touts):
                env[id(v)] = o
                if t is not None and differentiable(v.type):
                    if tuple(t.shape) != v.type.shape or t.dtype is not v.type.dtype:
                        raise SporeflowError(f"internal: jvp rule of {node.op} gave tangent {t._type} for {v.type}")
                    tan[id(v)] = t
        results = [env[id(v)] for v in graph.outputs]
        for v in graph.outputs:
            if differentiable(v.type):
                t = tan.get(id(v))
                results.append(t if t is not None else lax.zeros_like(env[id(v)]))
        out, _, _ = tr.finish(results)
    return dce(out)
