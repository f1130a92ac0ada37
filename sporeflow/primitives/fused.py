"""The `fused` primitive: one kernel whose body is a subgraph of other primitives.

The fusion pass (passes/fusion.py) groups nodes into `fused` nodes; backends render each as
one loop nest (LLVM) or kernel (CUDA), the interpreter simply runs the body. Attributes:
  body  the member subgraph (its inputs are the fused node's inputs, its outputs its outputs)
  name  e.g. "fused_matmul_add_relu" (members in order, as TVM names fused functions)
  kind  the group's pattern: "elemwise", "injective", "reduce", "row_reduce", "out_ewise"

Fusion normally runs after every transformation, but a fused graph is still an ordinary graph:
the rules below inline the body and apply each member's own rule, so grad/vmap/jvp of a fused
graph give exactly what they give on the unfused one.
"""
from __future__ import annotations

from ..ir.graph import Graph
from ..ir.registry import NOT_DIFFERENTIABLE, Kind, as_list, def_op, get_op
from .common import fail, lax
from ..ir.interpret import run_graph
from ..passes.loop_nest import NEST_ATTRS, LoopNest, loop_nest

FUSED_KINDS = ("elemwise", "injective", "reduce", "row_reduce", "out_ewise")


def _infer(ts, attrs):
    body = attrs["body"]
    if not isinstance(body, Graph):
        fail("body must be a graph")
    if attrs["kind"] not in FUSED_KINDS:
        fail(f"kind must be one of {FUSED_KINDS}, got {attrs['kind']!r}")
    if body.in_types != list(ts):
        fail(f"body takes ({', '.join(map(str, body.in_types))}) but is given ({', '.join(map(str, ts))})")
    recorded, actual = LoopNest.of(attrs), loop_nest(body)
    if recorded != actual:
        fail(f"the recorded loop nest {recorded} does not describe the body ({actual}); a pass that "
             "rewrites a fused body must record its nest again (passes.loop_nest.with_nest)")
    return list(body.out_types)


def _impl(*arrays, body, name, kind, **nest):
    return run_graph(body, list(arrays))


def _bind_node(node, args):
    """Re-emit one body node on tensors (eager or traced)."""
    return lax.multi(node.op, *args, **dict(node.attrs))


def _replay(body: Graph, args) -> dict:
    env = {id(v): a for v, a in zip(body.inputs, args)}
    for node in body.nodes:
        for v, o in zip(node.outputs, _bind_node(node, [env[id(u)] for u in node.inputs])):
            env[id(v)] = o
    return env


def _accumulate(ct: dict, v, g) -> None:
    if g is None:
        return
    ct[id(v)] = g if id(v) not in ct else lax.add(ct[id(v)], g)


def _vjp(inputs, outputs, douts, *, body, name, kind, **nest):
    """Reverse mode through the body: replay the members forward, then each member's vjp in
    reverse order, summing cotangents of values with several uses."""
    env = _replay(body, inputs)
    ct: dict = {}
    for v, d in zip(body.outputs, douts):
        _accumulate(ct, v, d)
    for node in reversed(body.nodes):
        node_douts = [ct.get(id(o)) for o in node.outputs]
        if all(d is None for d in node_douts):
            continue
        rule = get_op(node.op).vjp
        if rule is NOT_DIFFERENTIABLE:
            continue
        if rule is None:
            fail(f"fused body member {node.op!r} has no vjp rule")
        cts = rule([env[id(u)] for u in node.inputs], [env[id(o)] for o in node.outputs], node_douts,
                   **dict(node.attrs))
        for u, g in zip(node.inputs, cts):
            _accumulate(ct, u, g)
    return [ct.get(id(v)) for v in body.inputs]


def _replay_paired(body: Graph, args, extras, rule):
    """Replay the body carrying one more thing per value (a tangent, a batch dim; None when it
    has none): `rule(node, args, extras)` gives (outputs, their extras), or None to bind the
    node as is. A node none of whose inputs carries anything binds as is."""
    env = {id(v): a for v, a in zip(body.inputs, args)}
    ext = {id(v): e for v, e in zip(body.inputs, extras)}
    for node in body.nodes:
        nargs = [env[id(u)] for u in node.inputs]
        nexts = [ext.get(id(u)) for u in node.inputs]
        res = None if all(e is None for e in nexts) else rule(node, nargs, nexts)
        if res is None:
            outs, oexts = _bind_node(node, nargs), [None] * len(node.outputs)
        else:
            outs, oexts = as_list(res[0]), as_list(res[1])
        for v, o, e in zip(node.outputs, outs, oexts):
            env[id(v)], ext[id(v)] = o, e
    return [env[id(v)] for v in body.outputs], [ext.get(id(v)) for v in body.outputs]


def _jvp(primals, tangents, *, body, name, kind, **nest):
    """Forward mode: each member's jvp rule on the replayed body."""
    def rule(node, args, targs):
        opdef = get_op(node.op)
        if opdef.vjp is NOT_DIFFERENTIABLE and opdef.jvp is None:
            return None
        if opdef.jvp is None:
            fail(f"fused body member {node.op!r} has no jvp rule")
        return opdef.jvp(args, targs, **dict(node.attrs))
    return _replay_paired(body, primals, tangents, rule)


def _batch(args, dims, *, body, name, kind, **nest):
    """vmap: each member's batch rule on the replayed body (unbatched members bind as is)."""
    def rule(node, nargs, ndims):
        batch = get_op(node.op).batch
        if batch is None:
            fail(f"fused body member {node.op!r} has no batch rule")
        return batch(nargs, ndims, **dict(node.attrs))
    return _replay_paired(body, args, dims, rule)


fused = def_op("fused", infer=_infer, impl=_impl, kind=Kind.OPAQUE, compute_in_f32=False,
               vjp=_vjp, jvp=_jvp, batch=_batch, attr_names=("body", "name", "kind") + NEST_ATTRS,
               doc="a fused kernel: runs its body subgraph as one unit (made by passes.fusion)")
